//! Token vending against the testkit's mock provider, on SQLite and PostgreSQL: the fresh path,
//! single-flight refresh within and across server instances, rotation without reuse, dead
//! grants and provider outages.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pipes_testkit::mock_provider::{Failure, MockProvider};
use pipes_testkit::{iso_in, read, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    a_fresh_token_needs_no_provider_call,
    a_token_inside_the_margin_is_refreshed_once_and_rotated,
    fifty_concurrent_calls_after_expiry_make_one_refresh,
    two_server_instances_share_one_refresh,
    a_dead_grant_needs_reauthorization_and_stops_refreshing,
    provider_outages_never_kill_the_account,
    selection_and_soft_failures,
    import_validates_token_combinations,
    tokens_are_sealed_at_rest,
    a_bad_key_is_always_a_401,
    cached_reads_follow_writes_at_once_here_and_within_a_second_elsewhere,
    shared_connections_take_the_fast_path_but_follow_membership_and_settings,
);

const CLIENT_ID: &str = "pipes-test-client";
const CLIENT_SECRET: &str = "pipes-test-secret";

async fn setup(app: &TestApp) -> MockProvider {
    let mock = MockProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    app.create_mock_integration(&mock, CLIENT_ID, CLIENT_SECRET, json!({"scopes": ["read", "write"]}))
        .await;
    mock
}

/// The provider saw `refreshes` refreshes, none with a spent or unknown refresh token.
fn assert_clean_refreshes(mock: &MockProvider, refreshes: u64) {
    let c = mock.counters();
    assert_eq!(
        (c.refreshes, c.reused_refresh_tokens, c.invalid_refresh_tokens),
        (refreshes, 0, 0),
        "exactly {refreshes} refresh(es) at the provider, each with a live refresh token"
    );
}

async fn import(app: &TestApp, user: &str, body: Value) -> Value {
    let (status, account) = app
        .post(&format!("/user_management/users/{user}/connected_accounts/mock"), body)
        .await;
    assert_eq!(status, 201, "{account}");
    account
}

/// A grant issued by `mock` and imported for `user`, its access token expiring in `secs`.
async fn connected(app: &TestApp, mock: &MockProvider, user: &str, secs: i64) -> (String, String) {
    let (access, refresh) = mock.issue_grant();
    import(
        app,
        user,
        json!({"access_token": access, "refresh_token": refresh, "expires_at": iso_in(secs)}),
    )
    .await;
    (access, refresh)
}

async fn a_fresh_token_needs_no_provider_call(app: TestApp) {
    let mock = setup(&app).await;
    let (access, refresh) = mock.issue_grant();
    let account = import(
        &app,
        "user_1",
        json!({"access_token": access, "refresh_token": refresh, "expires_at": iso_in(3600), "scopes": ["read"]}),
    )
    .await;
    assert_eq!(account["state"], "connected");
    assert!(account["id"].as_str().unwrap().starts_with("data_installation_"));
    for _ in 0..3 {
        let (status, body) = app.vend("mock", "user_1").await;
        assert_eq!(status, 200);
        assert_eq!(body["active"], true);
        assert_eq!(body["access_token"]["object"], "access_token");
        assert_eq!(body["access_token"]["access_token"], access);
        assert_eq!(body["access_token"]["scopes"], json!(["read"]));
        assert_eq!(body["access_token"]["missing_scopes"], json!(["write"]));
        assert!(body["access_token"]["expires_at"].as_str().unwrap().ends_with('Z'));
    }
    assert_eq!(mock.counters().refreshes, 0);
    // No cache keeps an answer that carries a token.
    let resp = app
        .request(Method::POST, "/data-integrations/mock/token")
        .json(&json!({"user_id": "user_1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

async fn a_token_inside_the_margin_is_refreshed_once_and_rotated(app: TestApp) {
    let mock = setup(&app).await;
    // 200 s left of a one-hour token: inside the 5-minute margin.
    let (access, _) = connected(&app, &mock, "user_1", 200).await;
    let (_, first) = app.vend("mock", "user_1").await;
    let fresh = first["access_token"]["access_token"].as_str().unwrap().to_owned();
    assert_ne!(fresh, access, "a new token was fetched");
    assert_eq!(mock.counters().refreshes, 1);
    let (_, second) = app.vend("mock", "user_1").await;
    assert_eq!(
        second["access_token"]["access_token"],
        fresh.as_str(),
        "the refreshed token is fresh now"
    );
    assert_eq!(mock.counters().refreshes, 1);

    // Short-lived tokens: each call after expiry refreshes with the rotated refresh token.
    mock.set_token_lifetime(1);
    import(&app, "user_2", json!({"refresh_token": mock.issue_grant().1})).await;
    let mut seen = vec![];
    for _ in 0..3 {
        let (status, body) = app.vend("mock", "user_2").await;
        assert_eq!((status, body["active"].as_bool()), (200, Some(true)), "{body}");
        seen.push(body["access_token"]["access_token"].as_str().unwrap().to_owned());
        tokio::time::sleep(Duration::from_millis(1100)).await;
    }
    seen.dedup();
    assert_eq!(seen.len(), 3);
    assert_clean_refreshes(&mock, 4);
}

async fn fifty_concurrent_calls_after_expiry_make_one_refresh(app: TestApp) {
    let mock = setup(&app).await;
    mock.fail_next([Failure::Slow(Duration::from_millis(300))]);
    let (access, _) = connected(&app, &mock, "user_1", -5).await;
    let calls = (0..50).map(|_| app.vend("mock", "user_1"));
    let answers = futures_join_all(calls).await;
    let tokens: Vec<String> = answers
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, 200, "{body}");
            assert_eq!(body["active"], true, "{body}");
            body["access_token"]["access_token"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(tokens.iter().all(|t| *t == tokens[0]), "50 identical answers");
    assert_ne!(tokens[0], access);
    assert_clean_refreshes(&mock, 1);
}

async fn two_server_instances_share_one_refresh(app: TestApp) {
    let mock = setup(&app).await;
    mock.fail_next([Failure::Slow(Duration::from_millis(300))]);
    let sibling = app.sibling().await;
    connected(&app, &mock, "user_1", -5).await;
    let call = |base: String| {
        let http = app.http.clone();
        let key = app.key.clone();
        async move {
            let resp = http
                .post(format!("{base}/data-integrations/mock/token"))
                .bearer_auth(key)
                .json(&json!({"user_id": "user_1"}))
                .send()
                .await
                .unwrap();
            read(resp).await
        }
    };
    let calls = (0..40).map(|i| {
        call(if i % 2 == 0 {
            app.base_url.clone()
        } else {
            sibling.base_url.clone()
        })
    });
    let answers = futures_join_all(calls).await;
    let first = answers[0].1["access_token"]["access_token"].clone();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(
            body["access_token"]["access_token"], first,
            "both instances hand out the one new token"
        );
    }
    assert_clean_refreshes(&mock, 1);
}

async fn a_dead_grant_needs_reauthorization_and_stops_refreshing(app: TestApp) {
    let mock = setup(&app).await;
    connected(&app, &mock, "user_1", -5).await;
    mock.revoke_all();
    let (status, body) = app.vend("mock", "user_1").await;
    assert_eq!(
        (status, body.clone()),
        (200, json!({"active": false, "error": "needs_reauthorization"}))
    );
    let account = app.user_account("user_1", "mock").await;
    assert_eq!(account["state"], "needs_reauthorization");
    let attempts = mock.counters().invalid_refresh_tokens;
    let (_, again) = app.vend("mock", "user_1").await;
    assert_eq!(again["error"], "needs_reauthorization");
    assert_eq!(
        mock.counters().invalid_refresh_tokens,
        attempts,
        "no more attempts with a dead grant"
    );
    // An expired token without a refresh token cannot be refreshed either.
    import(
        &app,
        "user_2",
        json!({"access_token": "at_x", "refresh_token": "rt_unknown", "expires_at": iso_in(-1)}),
    )
    .await;
    let (_, body) = app.vend("mock", "user_2").await;
    assert_eq!(body["error"], "needs_reauthorization");

    // Each death is one event, by Pipes itself, with the reason.
    let (_, events) = app
        .get("/events?events=pipes.connected_account.reauthorization_needed")
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["data"]["user_id"], "user_1");
    assert_eq!(events[0]["data"]["state"], "needs_reauthorization");
    assert_eq!(events[0]["data"]["state_reason"], "invalid_grant");
    assert_eq!(events[0]["context"]["actor"]["source"], "system");
}

async fn provider_outages_never_kill_the_account(app: TestApp) {
    let mock = setup(&app).await;
    // Still valid for 100 s but inside the margin: a failed refresh hands out the current token.
    let (access, _) = connected(&app, &mock, "user_1", 100).await;
    mock.fail_next([Failure::ServerError]);
    let (status, body) = app.vend("mock", "user_1").await;
    assert_eq!(
        (status, body["access_token"]["access_token"].as_str()),
        (200, Some(access.as_str()))
    );
    let account = app.user_account("user_1", "mock").await;
    assert_eq!(account["state"], "connected");

    // Expired and the provider rate-limits: a retryable 503 with Retry-After, then recovery.
    let (access2, refresh2) = mock.issue_grant();
    import(
        &app,
        "user_2",
        json!({"access_token": access2, "refresh_token": refresh2, "expires_at": iso_in(-1)}),
    )
    .await;
    mock.fail_next([Failure::RateLimited(7)]);
    let resp = app
        .request(Method::POST, "/data-integrations/mock/token")
        .json(&json!({"user_id": "user_2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("7")
    );
    let (status, body) = read(resp).await;
    assert_eq!((status, body["code"].as_str()), (503, Some("provider_unavailable")));
    let (status, body) = app.vend("mock", "user_2").await;
    assert_eq!((status, body["active"].as_bool()), (200, Some(true)), "{body}");
    let c = mock.counters();
    assert_eq!((c.reused_refresh_tokens, c.invalid_refresh_tokens), (0, 0));
}

async fn selection_and_soft_failures(app: TestApp) {
    let mock = setup(&app).await;
    let (status, body) = app.vend("mock", "nobody").await;
    assert_eq!(
        (status, body),
        (200, json!({"active": false, "error": "not_installed"}))
    );
    let (status, _) = app.vend("nope", "u").await;
    assert_eq!(status, 404);
    let (status, body) = app.post("/data-integrations/mock/token", json!({})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_request_parameters"))
    );
    let org_call = json!({"user_id": "u", "connection_owner": "organization"});
    let (status, body) = app.post("/data-integrations/mock/token", org_call).await;
    assert_eq!((status, body["code"].as_str()), (422, Some("organization_id_required")));

    let (access, _) = connected(&app, &mock, "user_1", 3600).await;
    let scoped = json!({"user_id": "user_1", "organization_id": "org_1"});
    let (_, body) = app.post("/data-integrations/mock/token", scoped).await;
    assert_eq!(
        body["error"], "not_installed",
        "an org-scoped owner is a different owner"
    );
    let unscoped = json!({"user_id": "user_1", "organization_id": null});
    let (_, body) = app.post("/data-integrations/mock/token", unscoped).await;
    assert_eq!(body["active"], true, "explicit null organization_id means unscoped");

    let (_, cred) = app
        .post("/data-integrations/mock/credentials", json!({"user_id": "user_1"}))
        .await;
    assert_eq!(cred["active"], true);
    let c = &cred["credential"];
    assert_eq!(
        (c["object"].as_str(), c["auth_method"].as_str(), c["value"].as_str()),
        (Some("credential"), Some("oauth"), Some(access.as_str()))
    );
    assert_eq!((c["metadata"].clone(), c["config"].clone()), (json!({}), json!({})));
    assert!(c["expires_at"].is_string() && c["missing_scopes"].is_array());

    let account = app.user_account("user_1", "mock").await;
    let id = account["id"].as_str().unwrap();
    let exact = json!({"user_id": "user_1", "connected_account_id": id});
    assert_eq!(app.post("/data-integrations/mock/token", exact).await.1["active"], true);
    let foreign = json!({"user_id": "user_2", "connected_account_id": id});
    let (status, body) = app.post("/data-integrations/mock/token", foreign).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("connected_account_not_found"))
    );
    let plural = json!({"user_id": "user_1", "supports_multiple_connections": true});
    assert_eq!(
        app.post("/data-integrations/mock/token", plural).await.1["active"],
        true
    );
}

async fn import_validates_token_combinations(app: TestApp) {
    setup(&app).await;
    let cases = [
        (
            json!({"access_token": "a", "expires_at": iso_in(60)}),
            422,
            "invalid_token_combination",
        ),
        (json!({"expires_at": iso_in(60)}), 422, "invalid_token_combination"),
        (json!({"refresh_token": "  "}), 422, "invalid_refresh_token"),
        (json!({"state": "connected"}), 422, "invalid_token_combination"),
        (
            json!({"expires_at": "tomorrow", "access_token": "a", "refresh_token": "r"}),
            422,
            "invalid_request_parameters",
        ),
        (json!({"state": "sleeping"}), 422, "invalid_request_parameters"),
        (
            json!({"connection_intent": "reauthorize"}),
            400,
            "invalid_connection_intent",
        ),
    ];
    for (i, (body, status, code)) in cases.into_iter().enumerate() {
        let path = format!("/user_management/users/bad_{i}/connected_accounts/mock");
        let (got, answer) = app.post(&path, body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    let nothing = import(&app, "user_1", json!({})).await;
    assert_eq!(nothing["state"], "needs_reauthorization");
    let (status, body) = app
        .post("/user_management/users/user_1/connected_accounts/mock", json!({}))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("connected_account_already_exists"))
    );
    let only_access = import(&app, "user_2", json!({"access_token": "forever"})).await;
    assert_eq!(only_access["state"], "connected");
    let (_, t) = app.vend("mock", "user_2").await;
    assert_eq!(t["access_token"]["expires_at"], Value::Null, "non-expiring");

    let path = "/user_management/users/user_1/connected_accounts/mock";
    let (status, updated) = app
        .put(
            path,
            json!({"access_token": "new", "scopes": ["read"], "account_display_name": "Work"}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["state"].as_str(), updated["account_display_name"].as_str()),
        (Some("connected"), Some("Work"))
    );
    let (_, updated) = app.put(path, json!({"state": "needs_reauthorization"})).await;
    assert_eq!(updated["state"], "needs_reauthorization");
    assert_eq!(updated["account_display_name"], "Work", "omitted labels are kept");

    let (_, providers) = app.get("/user_management/users/user_1/data_providers").await;
    let p = &providers["data"][0];
    assert_eq!(
        (p["object"].as_str(), p["slug"].as_str(), p["name"].as_str()),
        (Some("data_provider"), Some("mock"), Some("Mock"))
    );
    assert_eq!(
        (p["connection_owner"].as_str(), p["ownership"].as_str()),
        (Some("user"), Some("userland_user"))
    );
    assert_eq!(p["connected_account"]["userland_user_id"], "user_1");
    assert_eq!(p["connected_account"]["userlandUserId"], "user_1");
    assert_eq!(p["connected_accounts"].as_array().unwrap().len(), 1);
    // The deprecated camelCase duplicates the official specification still requires.
    assert_eq!(
        (p["integrationType"].as_str(), p["credentialsType"].as_str()),
        (Some("mock"), Some("oauth2"))
    );
    assert_eq!((&p["createdAt"], &p["updatedAt"]), (&p["created_at"], &p["updated_at"]));
    let listed = &p["connected_account"];
    assert_eq!(listed["organizationId"], Value::Null);
    assert_eq!(
        (&listed["createdAt"], &listed["updatedAt"]),
        (&listed["created_at"], &listed["updated_at"])
    );
    let (_, empty) = app.get("/user_management/users/user_9/data_providers").await;
    assert_eq!(
        (
            empty["data"][0]["connected_account"].clone(),
            empty["data"][0]["connected_accounts"].clone()
        ),
        (Value::Null, json!([]))
    );

    assert_eq!(app.delete(path).await.0, 204);
    assert_eq!(app.get(path).await.0, 404);
    assert_eq!(app.delete(path).await.0, 404);
}

async fn tokens_are_sealed_at_rest(app: TestApp) {
    let mock = setup(&app).await;
    let access = "at_plaintext_canary_4b1e";
    let refresh = mock.issue_grant().1;
    import(
        &app,
        "user_1",
        json!({"access_token": access, "refresh_token": refresh, "expires_at": iso_in(-1)}),
    )
    .await;
    let (_, t) = app.vend("mock", "user_1").await;
    let fresh = t["access_token"]["access_token"].as_str().unwrap().to_owned();
    let bytes = app.db.bytes();
    for needle in [access, refresh.as_str(), fresh.as_str()] {
        assert!(
            !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle} stored in plaintext"
        );
    }
}

async fn futures_join_all<F: std::future::Future>(futs: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    futures::future::join_all(set).await
}

async fn a_bad_key_is_always_a_401(app: TestApp) {
    setup(&app).await;
    for (path, body) in [
        ("/data-integrations/mock/token", "{\"user_id\": \"u\"}"),
        ("/data-integrations/mock/token", "{"),
        ("/data-integrations/mock/token", "{}"),
        ("/data-integrations/UPPER/token", "{\"user_id\": \"u\"}"),
        ("/data-integrations/nope/credentials", "{\"user_id\": \"u\"}"),
        (
            "/data-integrations/mock/token",
            "{\"user_id\": \"u\", \"supports_multiple_connections\": true}",
        ),
    ] {
        for key in ["sk_test_wrong", "nonsense"] {
            let resp = app.request_as(key, Method::POST, path).body(body).send().await.unwrap();
            let (status, answer) = read(resp).await;
            assert_eq!(
                (status, answer["code"].as_str()),
                (401, Some("unauthorized")),
                "{path} {body} {key}"
            );
        }
    }
    let (status, _) = app
        .post("/data-integrations/UPPER/token", json!({"user_id": "u"}))
        .await;
    assert_eq!(status, 404, "with a good key, an impossible slug is simply not found");
}

async fn cached_reads_follow_writes_at_once_here_and_within_a_second_elsewhere(app: TestApp) {
    let mock = setup(&app).await;
    let (access, refresh) = connected(&app, &mock, "user_1", 3600).await;
    let path = "/user_management/users/user_1/connected_accounts/mock";
    assert_eq!(
        app.vend("mock", "user_1").await.1["access_token"]["access_token"],
        access.as_str()
    );
    // Writes through this server are seen by the very next call.
    app.put(
        path,
        json!({"access_token": "replaced", "expires_at": iso_in(3600), "refresh_token": refresh}),
    )
    .await;
    assert_eq!(
        app.vend("mock", "user_1").await.1["access_token"]["access_token"],
        "replaced"
    );
    assert_eq!(app.delete(path).await.0, 204);
    assert_eq!(app.vend("mock", "user_1").await.1["error"], "not_installed");

    // Writes by another server (or the CLI) are seen within a second.
    import(
        &app,
        "user_2",
        json!({"access_token": "at_two", "refresh_token": "rt_two", "expires_at": iso_in(3600)}),
    )
    .await;
    let sibling = app.sibling().await;
    let via_sibling = || async {
        let resp = app
            .http
            .post(format!("{}/data-integrations/mock/token", sibling.base_url))
            .bearer_auth(&app.key)
            .json(&json!({"user_id": "user_2"}))
            .send()
            .await
            .unwrap();
        read(resp).await
    };
    assert_eq!(via_sibling().await.1["active"], true);
    assert_eq!(
        app.delete("/user_management/users/user_2/connected_accounts/mock")
            .await
            .0,
        204
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(via_sibling().await.1["error"], "not_installed");

    let keys = app.environments.list_keys(&app.env).await.unwrap();
    app.environments.revoke_key(&keys[0].id.to_string()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        app.vend("mock", "user_1").await.0,
        401,
        "a key revoked elsewhere stops vending within a second"
    );
}

async fn shared_connections_take_the_fast_path_but_follow_membership_and_settings(app: TestApp) {
    let mock = setup(&app).await;
    let (status, body) = app
        .post(
            "/data-integrations",
            json!({"provider": "mock", "ownership": "organization", "enabled": true,
                        "credentials": {"type": "custom", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (access, refresh) = mock.issue_grant();
    let (status, body) = app
        .post(
            "/organizations/org_1/connected_accounts/mock",
            json!({"user_id": "user_admin", "access_token": access, "refresh_token": refresh,
                        "expires_at": iso_in(3600), "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let vend = |user: &'static str| {
        app.call(
            Method::POST,
            "/data-integrations/mock/token",
            Some(json!({"user_id": user, "organization_id": "org_1", "connection_owner": "organization"})),
        )
    };
    // Twice: the second answer comes from the cached read.
    for _ in 0..2 {
        let (status, body) = vend("user_member").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["access_token"]["access_token"], access.as_str());
    }
    // A user's own connection scoped to the organization: the organization narrows its scopes,
    // and the next (otherwise cached) answer compares against them at once.
    let (access, refresh) = mock.issue_grant();
    let (status, body) = app
        .post(
            "/user_management/users/user_member/connected_accounts/mock?organization_id=org_1",
            json!({"access_token": access, "refresh_token": refresh, "expires_at": iso_in(3600), "scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let own = || {
        app.call(
            Method::POST,
            "/data-integrations/mock/token",
            Some(json!({"user_id": "user_member", "organization_id": "org_1"})),
        )
    };
    for _ in 0..2 {
        assert_eq!(own().await.1["access_token"]["missing_scopes"], json!(["write"]));
    }
    let (status, body) = app
        .put(
            "/organizations/org_1/data_integration_configurations/mock",
            json!({"scopes": ["read"]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(own().await.1["access_token"]["missing_scopes"], json!([]));
    // The member leaves: refused at once, though their last read was cached.
    let (status, _) = app
        .put(
            "/pipes/organizations/org_1/memberships/user_member",
            json!({"status": "inactive"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = vend("user_member").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("user_not_member_of_organization"))
    );
    let (status, body) = vend("user_admin").await;
    assert_eq!(status, 200, "{body}");
}
