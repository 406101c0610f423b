//! The data-integrations API against a real server, on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used)]

use pipes_testkit::{read, TestApp, TestDatabase};
use reqwest::Method;
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    every_call_needs_a_valid_key,
    tenants_never_see_each_other,
    create_get_update_delete_a_builtin_integration,
    custom_providers_materialise_defaults_and_share_one_definition,
    custom_slugs_never_shadow_builtins_and_urls_are_static,
    validation_failures_are_422_with_field_errors,
    malformed_bodies_are_400_and_oversized_ones_413,
    lists_page_with_cursors_in_every_order,
    unknown_routes_and_methods_answer_json,
    client_secrets_are_sealed_at_rest,
);

fn github(secret: &str) -> Value {
    json!({
        "provider": "github",
        "credentials": {"type": "custom", "client_id": "Iv1.abc", "client_secret": secret},
        "description": null,
        "scopes": ["repo"]
    })
}

async fn every_call_needs_a_valid_key(app: TestApp) {
    for key in ["", "sk_test_wrong", "Basic abc"] {
        let (status, body) = read(
            app.request_as(key, Method::GET, "/data-integrations")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 401);
        assert_eq!(body["code"], "unauthorized");
    }
    let resp = app
        .http
        .get(format!("{}/data-integrations", app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await.0, 401, "no Authorization header at all");
    let (_, key) = app.other_tenant("other").await;
    let keys = app
        .environments
        .list_keys(&app.environments.by_name("other").await.unwrap())
        .await
        .unwrap();
    app.environments.revoke_key(&keys[0].id.to_string()).await.unwrap();
    let (status, _) = read(
        app.request_as(&key, Method::GET, "/data-integrations")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a revoked key stops working at once");
}

async fn tenants_never_see_each_other(app: TestApp) {
    let (status, created) = app.post("/data-integrations", github("secret-one")).await;
    assert_eq!(status, 201);
    let (_, other) = app.other_tenant("production-eu").await;
    let as_other = |m: Method, p: &str| app.request_as(&other, m, p);
    let (status, list) = read(as_other(Method::GET, "/data-integrations").send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(list["data"], json!([]));
    assert_eq!(
        read(as_other(Method::GET, "/data-integrations/github").send().await.unwrap())
            .await
            .0,
        404
    );
    assert_eq!(
        read(
            as_other(Method::DELETE, "/data-integrations/github")
                .send()
                .await
                .unwrap()
        )
        .await
        .0,
        404
    );
    let cursor = created["id"].as_str().unwrap();
    let (status, _) = read(
        as_other(Method::GET, &format!("/data-integrations?after={cursor}"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 422, "another tenant's id is not a cursor here");
    let (status, _) = read(
        as_other(Method::POST, "/data-integrations")
            .json(&github("secret-two"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "the same slug is free in another environment");
    assert_eq!(
        app.get("/data-integrations/github").await.1["credentials"]["redacted_client_secret"],
        "-one"
    );
}

async fn create_get_update_delete_a_builtin_integration(app: TestApp) {
    let (status, body) = app.post("/data-integrations", github("s3cr3t-1234")).await;
    assert_eq!(status, 201);
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("data_integration_") && id.len() == "data_integration_".len() + 26);
    assert_eq!(body["object"], "data_integration");
    assert_eq!(body["slug"], "github");
    assert_eq!(body["integration_type"], "github");
    assert_eq!(body["ownership"], "user");
    assert_eq!(body["description"], Value::Null);
    assert_eq!(body["enabled"], false);
    assert_eq!(body["state"], "valid");
    assert_eq!(body["scopes"], json!(["repo"]));
    assert_eq!(body["auth_methods"], json!(["oauth"]));
    assert_eq!(
        body["credentials"],
        json!({"type": "custom", "client_id": "Iv1.abc", "redacted_client_secret": "1234"})
    );
    assert_eq!(body["installation"], Value::Null);
    assert_eq!(body["config"], json!({}));
    assert_eq!(body["custom_provider"], Value::Null);
    let redirect = body["redirect_uri"].as_str().unwrap();
    assert!(
        redirect.starts_with(&format!("{}/data-integrations/github/dik_", app.base_url)),
        "{redirect}"
    );
    assert!(redirect.ends_with("/callback"));
    assert!(body["created_at"].as_str().unwrap().ends_with('Z') && body["created_at"].as_str().unwrap().len() == 24);
    assert!(!body.to_string().contains("s3cr3t"), "the secret never comes back");

    let (status, got) = app.get("/data-integrations/github").await;
    assert_eq!((status, &got), (200, &body));
    let (status, conflict) = app.post("/data-integrations", github("x")).await;
    assert_eq!(status, 409);
    assert_eq!(
        conflict["message"],
        "A data integration with this slug already exists in the environment."
    );

    let org = json!({"provider": "github", "ownership": "organization", "credentials": {"type": "organization"}, "enabled": true});
    let (status, org_root) = app.post("/data-integrations", org).await;
    assert_eq!(status, 201, "{org_root}");
    assert_eq!(
        org_root["credentials"],
        json!({"type": "organization", "client_id": null, "redacted_client_secret": null})
    );
    assert_eq!(
        app.get("/data-integrations/github/organization").await.1["id"],
        org_root["id"]
    );

    let (status, updated) = app
        .put(
            "/data-integrations/github",
            json!({"description": "Prod app", "enabled": true, "scopes": null}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(updated["description"], "Prod app");
    assert_eq!(updated["enabled"], true);
    assert_eq!(updated["scopes"], Value::Null, "null resets to the provider's defaults");
    assert_eq!(
        updated["credentials"]["redacted_client_secret"], "1234",
        "untouched fields keep their values"
    );
    let rotated = json!({"credentials": {"type": "custom", "client_id": "Iv1.new", "client_secret": "rotated-9876"}, "description": null});
    let (_, updated) = app.put("/data-integrations/github", rotated).await;
    assert_eq!(updated["credentials"]["redacted_client_secret"], "9876");
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(
        updated["redirect_uri"], body["redirect_uri"],
        "the redirect URI never changes"
    );

    let resp = app
        .request(Method::DELETE, "/data-integrations/github")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert!(resp.headers().get("x-request-id").is_some());
    assert!(resp.bytes().await.unwrap().is_empty());
    assert_eq!(app.get("/data-integrations/github").await.0, 404);
    assert_eq!(app.delete("/data-integrations/github").await.0, 404);
    assert_eq!(app.get("/data-integrations/github/organization").await.0, 200);
}

async fn custom_providers_materialise_defaults_and_share_one_definition(app: TestApp) {
    let create = json!({
        "provider": "acme-crm",
        "credentials": {"type": "custom", "client_id": "acme-id", "client_secret": "acme-secret"},
        "custom_provider": {
            "name": "Acme CRM",
            "authorization_url": "https://auth.acme.test/oauth/authorize",
            "token_url": "https://auth.acme.test/oauth/token",
            "refresh_token_url": null
        }
    });
    let (status, body) = app.post("/data-integrations", create).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        body["custom_provider"],
        json!({
            "name": "Acme CRM",
            "authorization_url": "https://auth.acme.test/oauth/authorize",
            "token_url": "https://auth.acme.test/oauth/token",
            "refresh_token_url": null,
            "pkce_enabled": true,
            "request_scope_separator": " ",
            "scopes_required": false,
            "client_secret_required": true,
            "additional_authorization_parameters": {},
            "token_body_content_type": "application/x-www-form-urlencoded",
            "authenticate_via": "request_body"
        })
    );
    let patch = json!({"custom_provider": {"refresh_token_url": "https://auth.acme.test/oauth/refresh", "authenticate_via": "basic_auth_header", "request_scope_separator": ","}});
    let (status, body) = app.put("/data-integrations/acme-crm", patch).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["custom_provider"]["refresh_token_url"],
        "https://auth.acme.test/oauth/refresh"
    );
    assert_eq!(body["custom_provider"]["authenticate_via"], "basic_auth_header");
    assert_eq!(
        body["custom_provider"]["token_url"], "https://auth.acme.test/oauth/token",
        "partial update keeps the rest"
    );

    // Adding the organization-owned root of an existing custom slug shares the definition.
    let org = json!({"provider": "acme-crm", "ownership": "organization", "credentials": {"type": "organization"}});
    let (status, org_root) = app.post("/data-integrations", org).await;
    assert_eq!(status, 201, "{org_root}");
    assert_eq!(org_root["custom_provider"]["authenticate_via"], "basic_auth_header");
    app.put(
        "/data-integrations/acme-crm/organization",
        json!({"custom_provider": {"name": "Acme CRM 2", "refresh_token_url": null}}),
    )
    .await;
    let (_, user_root) = app.get("/data-integrations/acme-crm").await;
    assert_eq!(user_root["custom_provider"]["name"], "Acme CRM 2");
    assert_eq!(
        user_root["custom_provider"]["refresh_token_url"],
        Value::Null,
        "null clears, as Python sends it"
    );

    // client_secret_required: false lets a public client omit the secret.
    let public = json!({
        "provider": "public-app", "credentials": {"type": "custom", "client_id": "pub"},
        "custom_provider": {"name": "Public", "authorization_url": "https://p.test/a", "token_url": "https://p.test/t", "client_secret_required": false}
    });
    let (status, body) = app.post("/data-integrations", public).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["credentials"]["redacted_client_secret"], Value::Null);

    // API-key custom providers need no endpoints and have no redirect URI.
    let api_key =
        json!({"provider": "acme-keys", "auth_methods": ["api_key"], "custom_provider": {"name": "Acme Keys"}});
    let (status, body) = app.post("/data-integrations", api_key).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["redirect_uri"], "");
    assert_eq!(body["credentials"], Value::Null);
    assert_eq!(body["auth_methods"], json!(["api_key"]));
}

async fn custom_slugs_never_shadow_builtins_and_urls_are_static(app: TestApp) {
    let shadow = json!({
        "provider": "github", "credentials": {"type": "custom", "client_id": "a", "client_secret": "b"},
        "custom_provider": {"name": "Fake", "authorization_url": "https://evil.test/a", "token_url": "https://evil.test/t"}
    });
    let (status, body) = app.post("/data-integrations", shadow).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["code"], "shadows_builtin_provider");
    let placeholder = json!({
        "provider": "tmpl", "credentials": {"type": "custom", "client_id": "a", "client_secret": "b"},
        "custom_provider": {"name": "T", "authorization_url": "https://${config.sub}.t.test/a", "token_url": "http://remote.test/t"}
    });
    let (status, body) = app.post("/data-integrations", placeholder).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec!["custom_provider.authorization_url", "custom_provider.token_url"]
    );
    let builtin_patch = json!({"custom_provider": {"name": "x"}});
    app.post("/data-integrations", github("abcdef")).await;
    assert_eq!(app.put("/data-integrations/github", builtin_patch).await.0, 422);
}

async fn validation_failures_are_422_with_field_errors(app: TestApp) {
    let cases: Vec<(Value, u16, &str)> = vec![
        (
            json!({"provider": "not-a-provider", "credentials": {"type": "organization"}}),
            404,
            "",
        ),
        (
            json!({"provider": "Bad Slug!", "credentials": {"type": "organization"}}),
            422,
            "provider",
        ),
        (json!({"provider": "github"}), 422, "credentials"),
        (
            json!({"provider": "github", "credentials": {"type": "custom"}}),
            422,
            "credentials.client_id",
        ),
        (
            json!({"provider": "github", "credentials": {"type": "custom", "client_id": "a"}}),
            422,
            "credentials.client_secret",
        ),
        (
            json!({"provider": "github", "credentials": {"type": "shared"}}),
            422,
            "credentials.type",
        ),
        (
            json!({"provider": "github", "credentials": {"type": "organization", "client_id": "x"}}),
            422,
            "credentials",
        ),
        (
            json!({"provider": "github", "auth_methods": ["api_key"], "credentials": {"type": "organization"}}),
            422,
            "auth_methods",
        ),
        (
            json!({"provider": "github", "auth_methods": ["oauth", "api_key"]}),
            422,
            "auth_methods",
        ),
        (
            json!({"provider": "github", "ownership": "team", "credentials": {"type": "organization"}}),
            422,
            "ownership",
        ),
        (
            json!({"provider": "github", "scopes": ["has space"], "credentials": {"type": "organization"}}),
            422,
            "scopes",
        ),
        (
            json!({"provider": "gitlab", "config": {"host": "bad host/../x"}, "credentials": {"type": "organization"}}),
            422,
            "config.host",
        ),
        (
            json!({"provider": "gitlab", "config": {"color": "blue"}, "credentials": {"type": "organization"}}),
            422,
            "config.color",
        ),
        (
            json!({"provider": "zendesk", "config": {"subdomain": "acme"}, "credentials": {"type": "organization"}}),
            422,
            "config.subdomain",
        ),
        (
            json!({"provider": "freshdesk", "credentials": {"type": "organization"}}),
            422,
            "credentials",
        ),
        (json!({"credentials": {"type": "organization"}}), 422, "provider"),
    ];
    for (body, status, field) in cases {
        let (got, answer) = app.post("/data-integrations", body.clone()).await;
        assert_eq!(got, status, "{body} -> {answer}");
        if status == 422 {
            assert_eq!(answer["code"], "invalid_request_parameters", "{answer}");
            let errors = answer["errors"].as_array().expect("errors[]");
            assert!(errors.iter().all(|e| e["code"].is_string()), "{answer}");
            assert!(errors.iter().any(|e| e["field"] == field), "{body} -> {answer}");
        }
    }
    let (status, body) = app.post("/data-integrations", json!({"provider": "gitlab", "config": {"host": "gitlab.acme.test"}, "credentials": {"type": "organization"}})).await;
    assert_eq!(status, 201);
    assert_eq!(body["config"], json!({"host": "gitlab.acme.test"}));
}

async fn malformed_bodies_are_400_and_oversized_ones_413(app: TestApp) {
    for raw in [
        "{",
        "[]",
        "{\"provider\": 42}",
        "{\"provider\":\"github\",\"enabled\":\"yes\"}",
        "{} trailing",
        "\u{0}",
    ] {
        let resp = app
            .request(Method::POST, "/data-integrations")
            .body(raw.to_owned())
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 400, "{raw} -> {body}");
        assert_eq!(body["code"], "bad_request");
    }
    let resp = app
        .request(Method::PUT, "/data-integrations/github")
        .body("{\"scopes\": \"repo\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(read(resp).await.0, 400);
    let huge = format!(
        "{{\"provider\":\"github\",\"description\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let resp = app
        .request(Method::POST, "/data-integrations")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers().get("connection").unwrap(), "close");
    let (status, body) = read(resp).await;
    assert_eq!(status, 413);
    assert_eq!(body["code"], "payload_too_large");
    let unknown_fields =
        json!({"provider": "github", "credentials": {"type": "organization"}, "future_field": {"nested": [1, 2]}});
    assert_eq!(
        app.post("/data-integrations", unknown_fields).await.0,
        201,
        "unknown fields are ignored"
    );
    // A body is the JSON object the endpoint expects: an array is not applied field by position.
    for raw in [r#"["x", false]"#, "null", "7", r#""text""#] {
        let resp = app
            .request(Method::PUT, "/data-integrations/github")
            .body(raw.to_owned())
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{raw} -> {body}"
        );
    }
    assert_eq!(app.get("/data-integrations/github").await.1["description"], Value::Null);
    for path in [
        "/data-integrations/%2E%2E",
        "/data-integrations/UPPER",
        "/data-integrations/a%2Fb",
        "/data-integrations/%F0%9F%92%A5",
    ] {
        assert_eq!(app.get(path).await.0, 404, "{path}");
    }
}

async fn lists_page_with_cursors_in_every_order(app: TestApp) {
    let slugs = ["github", "gitlab", "slack", "notion", "linear"];
    let mut ids = vec![];
    for slug in slugs {
        let (status, body) = app
            .post(
                "/data-integrations",
                json!({"provider": slug, "credentials": {"type": "organization"}}),
            )
            .await;
        assert_eq!(status, 201);
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    let (_, page) = app.get("/data-integrations?limit=2&order=desc").await;
    let got: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, vec![ids[4].as_str(), ids[3].as_str()]);
    assert_eq!(page["list_metadata"], json!({"before": null, "after": ids[3]}));
    let mut walked = vec![];
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(a) => format!("/data-integrations?limit=2&after={a}"),
            None => "/data-integrations?limit=2".to_owned(),
        };
        let (_, page) = app.get(&path).await;
        walked.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["id"].as_str().unwrap().to_owned()),
        );
        match page["list_metadata"]["after"].as_str() {
            Some(a) => after = Some(a.to_owned()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(walked, expected);
    let (_, page) = app
        .get(&format!("/data-integrations?order=asc&limit=10&after={}", ids[1]))
        .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 3);
    assert_eq!(page["list_metadata"]["after"], Value::Null);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "order=up",
        "ownership=team",
        "after=nope",
        "before=a&after=b",
        "after=data_integration_01EHZNVPK3SFK441A1RGBFSHRT",
    ] {
        let (status, body) = app.get(&format!("/data-integrations?{bad}")).await;
        assert_eq!(status, 422, "{bad} -> {body}");
    }
    let (_, page) = app.get("/data-integrations?ownership=organization&limit=").await;
    assert_eq!(
        page["data"].as_array().unwrap().len(),
        0,
        "empty values are absent; no organization roots"
    );
}

async fn unknown_routes_and_methods_answer_json(app: TestApp) {
    let (status, body) = app.get("/nope").await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")));
    let (status, body) = app.call(Method::PATCH, "/data-integrations", None).await;
    assert_eq!((status, body["code"].as_str()), (405, Some("method_not_allowed")));
    let (status, body) = app.get("/healthz").await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, _) = app.get("/readyz").await;
    assert_eq!(status, 200);
}

async fn client_secrets_are_sealed_at_rest(app: TestApp) {
    let secret = "plaintext-canary-7f3a9c";
    assert_eq!(app.post("/data-integrations", github(secret)).await.0, 201);
    let rotated =
        json!({"credentials": {"type": "custom", "client_id": "x", "client_secret": "rotated-canary-0b1d2e"}});
    let (_, _) = app.put("/data-integrations/github", rotated).await;
    let dump = app.db.bytes();
    assert!(!dump.is_empty());
    for needle in [secret, "rotated-canary-0b1d2e", &app.key] {
        assert!(
            !contains(&dump, needle.as_bytes()),
            "'{needle}' found in plaintext at rest"
        );
    }
    assert!(
        contains(&dump, b"Iv1.abc") || contains(&dump, b"data_integration_"),
        "the dump is real"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

mod idempotency {
    use super::*;

    async fn post(app: &TestApp, key: &str, body: &Value) -> (u16, Value, bool) {
        let resp = app
            .request(Method::POST, "/data-integrations")
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let replayed = resp.headers().get("idempotent-replayed").is_some();
        let (status, body) = read(resp).await;
        (status, body, replayed)
    }

    async fn retries_replay_and_reuse_conflicts(app: TestApp) {
        let (status, first, replayed) = post(&app, "retry-7f9c", &github("secret-abcd")).await;
        assert_eq!((status, replayed), (201, false));
        let (status, again, replayed) = post(&app, "retry-7f9c", &github("secret-abcd")).await;
        assert_eq!((status, replayed), (201, true));
        assert_eq!(again, first, "a retry gets the same integration, not a 409");
        let (status, body, _) = post(&app, "retry-7f9c", &github("another-secret")).await;
        assert_eq!(status, 409);
        assert_eq!(body["code"], "idempotency_key_conflict");
        let (status, _, _) = post(&app, "fresh-key", &github("secret-abcd")).await;
        assert_eq!(status, 409, "without the key, a duplicate is still a duplicate");
        let invalid = json!({"provider": "gitlab"});
        let (s1, b1, _) = post(&app, "bad-1", &invalid).await;
        let (s2, b2, r2) = post(&app, "bad-1", &invalid).await;
        assert_eq!((s1, s2, r2), (422, 422, true));
        assert_eq!(b1, b2);
        let (_, other_key) = app.other_tenant("other").await;
        let resp = app
            .request_as(&other_key, Method::POST, "/data-integrations")
            .header("idempotency-key", "retry-7f9c")
            .json(&github("secret-abcd"))
            .send()
            .await
            .unwrap();
        let (status, body) = read(resp).await;
        assert_eq!(status, 201, "keys are per environment");
        assert_ne!(body["id"], first["id"]);
        let resp = app
            .request(Method::POST, "/data-integrations")
            .header("idempotency-key", "x".repeat(256))
            .json(&invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(read(resp).await.0, 400);
        let resp = app
            .request_as("sk_test_nope", Method::POST, "/data-integrations")
            .header("idempotency-key", "k")
            .json(&invalid)
            .send()
            .await
            .unwrap();
        assert_eq!(read(resp).await.0, 401);
    }

    #[tokio::test]
    async fn on_sqlite() {
        retries_replay_and_reuse_conflicts(pipes_testkit::spawn_app().await).await;
    }

    #[tokio::test]
    async fn on_postgres() {
        if let Some(db) = TestDatabase::postgres().await {
            retries_replay_and_reuse_conflicts(pipes_testkit::spawn_app_on(db).await).await;
        }
    }
}
