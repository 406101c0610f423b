//! The connection flow end to end: authorize, the hosted pages, the mock provider, the
//! callback, finish; with and without session binding, and every way it can fail.
#![allow(clippy::unwrap_used)]

use pipes_core::domain::AllowList;
use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::{spawn_app, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};

const CLIENT_ID: &str = "flow-client";
const CLIENT_SECRET: &str = "flow-secret-value";
const RETURN_TO: &str = "http://localhost:5173/pipes/done";

struct Flow {
    app: TestApp,
    mock: MockProvider,
    browser: reqwest::Client,
}

async fn setup() -> Flow {
    let app = spawn_app().await;
    let mock = MockProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    app.environments
        .allow(&app.env, AllowList::RedirectUris, "http://localhost/pipes/done")
        .await
        .unwrap();
    let body = json!({
        "provider": "mock", "enabled": true, "scopes": ["read"],
        "credentials": {"type": "custom", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        "custom_provider": {"name": "Mock Cloud", "authorization_url": format!("{}/authorize", mock.base_url),
                            "token_url": format!("{}/token", mock.base_url)}
    });
    assert_eq!(app.post("/data-integrations", body).await.0, 201);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Flow { app, mock, browser }
}

fn location(r: &Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// Where the provider sends the browser back, and the cookie that browser holds.
struct Callback {
    url: String,
    cookie: String,
}

/// The flow's browser cookie a response sets (`name=value`).
fn flow_cookie(r: &Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    set.split(';').next().unwrap().to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url).unwrap().query_pairs().into_owned().collect()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl Flow {
    async fn authorize(&self, body: Value) -> (u16, Value) {
        self.app.post("/data-integrations/mock/authorize", body).await
    }

    /// Browser: from the authorize URL through confirmation and the provider to the callback's
    /// answer, which is returned.
    async fn browse(&self, url: &str, confirm: bool) -> Response {
        let to_provider = self.confirm(url, confirm).await;
        if !confirm {
            return to_provider;
        }
        let callback = self.at_provider(to_provider).await;
        self.come_back(&callback).await
    }

    /// The hosted page: the answer that leaves it (to the provider, or back when cancelled).
    async fn confirm(&self, url: &str, confirm: bool) -> Response {
        let landing = self.browser.get(url).send().await.unwrap();
        if landing.status().as_u16() != 200 {
            return landing;
        }
        assert_eq!(landing.headers().get("x-frame-options").unwrap(), "DENY");
        assert!(landing
            .headers()
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
        assert_eq!(landing.headers().get("cache-control").unwrap(), "no-store");
        let html = landing.text().await.unwrap();
        assert!(html.contains("Connect your Mock Cloud account"), "{html}");
        let action = if confirm { "continue" } else { "cancel" };
        self.browser
            .post(url)
            .form(&[("csrf_token", csrf_of(&html)), ("action", action.into())])
            .send()
            .await
            .unwrap()
    }

    /// The provider consents at once: where it sends the browser back to, and the cookie the
    /// browser was given on its way to the provider.
    async fn at_provider(&self, to_provider: Response) -> Callback {
        assert_eq!(to_provider.status().as_u16(), 302);
        let cookie = flow_cookie(&to_provider);
        let provider_url = location(&to_provider);
        assert!(provider_url.starts_with(&self.mock.base_url), "{provider_url}");
        let back = self.browser.get(&provider_url).send().await.unwrap();
        assert_eq!(back.status().as_u16(), 302);
        Callback {
            url: location(&back),
            cookie,
        }
    }

    /// The same browser arrives at the callback.
    async fn come_back(&self, callback: &Callback) -> Response {
        self.browser
            .get(&callback.url)
            .header("cookie", &callback.cookie)
            .send()
            .await
            .unwrap()
    }

    async fn token(&self, user: &str) -> Value {
        self.app
            .post("/data-integrations/mock/token", json!({"user_id": user}))
            .await
            .1
    }
}

#[tokio::test]
async fn a_confirmed_connection_is_saved_and_vends_tokens() {
    let f = setup().await;
    let (status, out) = f
        .authorize(json!({"user_id": "user_1", "return_to": RETURN_TO, "account_display_name": "Work"}))
        .await;
    assert_eq!(status, 200, "{out}");
    let url = out["url"].as_str().unwrap();
    assert!(url.starts_with(&format!("{}/data-integrations/", f.app.base_url)) && url.ends_with("/authorize-redirect"));
    let state = out["state"].as_str().unwrap().to_owned();
    assert!(out.get("completion").is_none(), "completion only with code_challenge");

    // Someone who read the confirmation page cannot make another browser continue from their
    // own site: a cross-site post of the form is refused.
    let html = f.browser.get(url).send().await.unwrap().text().await.unwrap();
    let forged = f
        .browser
        .post(url)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", csrf_of(&html)), ("action", "continue".into())])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(f.mock.counters().authorizations, 0);

    let done = f.browse(url, true).await;
    assert_eq!(done.status().as_u16(), 302);
    let back = location(&done);
    assert!(back.starts_with(RETURN_TO), "{back}");
    assert_eq!(query_of(&back).get("state"), Some(&state));

    let token = f.token("user_1").await;
    assert_eq!(token["active"], true, "{token}");
    assert_eq!(token["access_token"]["scopes"], json!(["read"]));
    let (_, account) = f.app.get("/user_management/users/user_1/connected_accounts/mock").await;
    assert_eq!(
        (
            account["account_display_name"].as_str(),
            account["established_by_user_id"].as_str()
        ),
        (Some("Work"), Some("user_1"))
    );
    assert_eq!(f.mock.counters().code_exchanges, 1);

    // The link is single-use, and says so in a page a person can read.
    let again = f.browser.get(url).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 410);
    assert!(again
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(again.text().await.unwrap().contains("This link has expired"));

    // Connecting again reconnects the same (compatibility) connection in place.
    let (_, out) = f.authorize(json!({"user_id": "user_1", "return_to": RETURN_TO})).await;
    f.browse(out["url"].as_str().unwrap(), true).await;
    let (_, same) = f.app.get("/user_management/users/user_1/connected_accounts/mock").await;
    assert_eq!(same["id"], account["id"]);
    assert_eq!(same["account_display_name"], "Work", "omitted label is kept");

    // Each completed flow is a `connected` event for the same connection, by the user.
    let (_, events) = f.app.get("/events?events=pipes.connected_account.connected").await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    for e in events {
        assert_eq!(e["data"]["id"], account["id"]);
        assert_eq!(e["data"]["account_display_name"], "Work");
        assert_eq!(e["context"]["actor"]["id"], "user_1");
    }
}

#[tokio::test]
async fn session_bound_connections_are_saved_only_by_finish() {
    let f = setup().await;
    let verifier = "a".repeat(20) + "-bcdefghijklmnopqrstuvwxyz0123456789";
    let challenge = pipes_core::oauth::pkce_challenge(&verifier);
    let body = json!({"user_id": "user_1", "return_to": "http://localhost:3000/pipes/done", "code_challenge": challenge, "code_challenge_method": "S256"});
    let (status, out) = f.authorize(body.clone()).await;
    assert_eq!(
        (status, out["completion"].as_str()),
        (200, Some("finish_required")),
        "{out}"
    );
    // A link preview opens the link first: that consumes nothing the user needs.
    let preview = f.browser.get(out["url"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(preview.status().as_u16(), 302);
    let preview = f.at_provider(preview).await;
    let done = f.browse(out["url"].as_str().unwrap(), true).await;
    let q = query_of(&location(&done));
    assert_eq!(q.get("state"), out["state"].as_str().map(str::to_owned).as_ref());
    let code = q.get("connect_code").unwrap().clone();
    assert_eq!(
        f.come_back(&preview).await.status().as_u16(),
        400,
        "used, and by the user"
    );
    assert_eq!(
        f.token("user_1").await["error"],
        "not_installed",
        "nothing is saved before finish"
    );

    let finish = |code: &str, verifier: &str| {
        f.app.call(
            Method::POST,
            "/data-integrations/finish",
            Some(json!({"connect_code": code, "code_verifier": verifier})),
        )
    };
    let wrong = "z".repeat(43);
    let (status, err) = finish(&code, &wrong).await;
    assert_eq!((status, err["code"].as_str()), (400, Some("invalid_connect_code")));
    let (status, _) = finish(&code, &verifier).await;
    assert_eq!(status, 400, "a wrong verifier burns the code");
    assert_eq!(f.token("user_1").await["error"], "not_installed");

    let (_, out) = f.authorize(body).await;
    let done = f.browse(out["url"].as_str().unwrap(), true).await;
    let code = query_of(&location(&done)).get("connect_code").unwrap().clone();
    let (status, saved) = finish(&code, &verifier).await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["connected_account"]["object"], "connected_account");
    assert_eq!(saved["connected_account"]["user_id"], "user_1");
    assert_eq!(f.token("user_1").await["active"], true);
    assert_eq!(finish(&code, &verifier).await.0, 400, "one use");

    let (_, events) = f.app.get("/events").await;
    let codes: Vec<Value> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| json!([e["event"], e["data"]["error_code"]]))
        .collect();
    assert_eq!(
        codes,
        [
            json!(["pipes.connected_account.connection_failed", "invalid_connect_code"]),
            json!(["pipes.account_connection.connection_failed", "invalid_connect_code"]),
            json!(["pipes.connected_account.connected", null]),
            json!(["pipes.account_connection.connected", null]),
        ],
        "the burnt code's second try names no authorization and records nothing"
    );
}

#[tokio::test]
async fn failures_return_to_the_app_with_an_error_and_save_nothing() {
    let f = setup().await;
    f.mock.set_deny(true);
    let (_, out) = f.authorize(json!({"user_id": "user_1", "return_to": RETURN_TO})).await;
    let done = f.browse(out["url"].as_str().unwrap(), true).await;
    let q = query_of(&location(&done));
    assert_eq!(q.get("error").map(String::as_str), Some("access_denied"));
    assert!(q.contains_key("error_description"));
    assert_eq!(q.get("state"), out["state"].as_str().map(str::to_owned).as_ref());
    f.mock.set_deny(false);

    // Cancel on the confirmation screen.
    let (_, out) = f.authorize(json!({"user_id": "user_2", "return_to": RETURN_TO})).await;
    let cancelled = f.browse(out["url"].as_str().unwrap(), false).await;
    assert_eq!(
        query_of(&location(&cancelled)).get("error").map(String::as_str),
        Some("access_denied")
    );

    // Tampered state and replayed callbacks.
    let (_, out) = f.authorize(json!({"user_id": "user_3"})).await;
    let url = out["url"].as_str().unwrap();
    let landing = f.browser.get(url).send().await.unwrap().text().await.unwrap();
    let to_provider = f
        .browser
        .post(url)
        .form(&[("csrf_token", csrf_of(&landing)), ("action", "continue".into())])
        .send()
        .await
        .unwrap();
    let callback = f.at_provider(to_provider).await;
    let tampered = callback.url.replace("state=", "state=x");
    let r = f
        .browser
        .get(&tampered)
        .header("cookie", &callback.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    // The consent link sent on to someone else: their browser lacks the cookie. Nothing is
    // saved, and the flow stays open for the browser that started it.
    let elsewhere = f.browser.get(&callback.url).send().await.unwrap();
    assert_eq!(elsewhere.status().as_u16(), 403);
    let page = elsewhere.text().await.unwrap();
    assert!(
        page.contains("browser_mismatch") && page.contains("where you started"),
        "{page}"
    );
    let forged = f
        .browser
        .get(&callback.url)
        .header(
            "cookie",
            format!("{}=forged", callback.cookie.split('=').next().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status().as_u16(), 403);
    assert_eq!(f.mock.counters().code_exchanges, 0, "the code was never exchanged");
    let ok = f.come_back(&callback).await;
    assert_eq!(ok.status().as_u16(), 200, "no return_to: a page says it worked");
    let ok_page = ok.text().await.unwrap();
    assert!(ok_page.contains("Mock Cloud is connected"));
    let state = out["state"].as_str().unwrap();
    assert!(
        !ok_page.contains(state),
        "the page tells an opener of any origin nothing but success: {ok_page}"
    );
    let replay = f.come_back(&callback).await;
    assert_eq!(replay.status().as_u16(), 400);
    assert_eq!(
        f.mock.counters().code_exchanges,
        1,
        "a replayed callback never reaches the provider"
    );

    // A forged confirmation.
    let (_, out) = f.authorize(json!({"user_id": "user_4", "return_to": RETURN_TO})).await;
    let r = f
        .browser
        .post(out["url"].as_str().unwrap())
        .form(&[("csrf_token", "forged"), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    for user in ["user_1", "user_2", "user_4"] {
        assert_eq!(f.token(user).await["error"], "not_installed", "{user}");
    }

    // The denial and the cancellation are failure events in both families; nothing connected.
    let (_, events) = f.app.get("/events").await;
    let kinds: Vec<&str> = events["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "pipes.connected_account.connection_failed",
            "pipes.account_connection.connection_failed",
            "pipes.connected_account.connection_failed",
            "pipes.account_connection.connection_failed",
            "pipes.connected_account.connected",
            "pipes.account_connection.connected",
        ],
        "user_3's flow without return_to connected"
    );
    let denied = &events["data"][0]["data"];
    assert_eq!(denied["object"], "connection_failed");
    assert_eq!(denied["user_id"], "user_1");
    assert_eq!(denied["provider_slug"], "mock");
    assert_eq!(denied["error_code"], "provider_error");
    assert_eq!(denied["provider_error"], "access_denied");
    assert!(denied["error_reason"].is_string());
    assert_eq!(events["data"][2]["data"]["user_id"], "user_2");
}

#[tokio::test]
async fn authorize_rejects_bad_requests_with_the_contract_codes() {
    let f = setup().await;
    let challenge = pipes_core::oauth::pkce_challenge(&"v".repeat(50));
    let cases = [
        (
            json!({"user_id": "u", "return_to": "https://evil.test/cb"}),
            400,
            "invalid_return_to",
        ),
        (
            json!({"user_id": "u", "return_to": "not a url"}),
            400,
            "invalid_return_to",
        ),
        (
            json!({"user_id": "u", "return_to": "http://localhost/pipes/done?x=1", "code_challenge": challenge}),
            400,
            "return_to_requires_exact_match",
        ),
        (
            json!({"user_id": "u", "code_challenge": challenge}),
            400,
            "return_to_requires_exact_match",
        ),
        (
            json!({"user_id": "u", "code_challenge_method": "S256"}),
            400,
            "code_challenge_not_found",
        ),
        (
            json!({"user_id": "u", "connected_account_id": "data_installation_01EHZNVPK3SFK441A1RGBFSHRT"}),
            400,
            "connected_account_id_not_allowed",
        ),
        (
            json!({"user_id": "u", "connection_intent": "reauthorize"}),
            400,
            "connected_account_id_required",
        ),
        (
            json!({"user_id": "u", "config": {"x": "y"}}),
            422,
            "invalid_request_parameters",
        ),
        (
            json!({"user_id": "u", "connection_owner": "organization"}),
            422,
            "organization_id_required",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = f.authorize(body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(code)),
            "{body} -> {answer}"
        );
    }
    let (status, _) = f
        .app
        .post("/data-integrations/nope/authorize", json!({"user_id": "u"}))
        .await;
    assert_eq!(status, 404);
    f.app.put("/data-integrations/mock", json!({"enabled": false})).await;
    let (status, body) = f.authorize(json!({"user_id": "u"})).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("invalid_data_integration_state"))
    );
}

#[tokio::test]
async fn a_member_who_left_while_at_the_provider_shares_nothing() {
    let f = setup().await;
    let shared_root = json!({
        "provider": "mock", "ownership": "organization", "enabled": true,
        "credentials": {"type": "custom", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
    });
    let (status, body) = f.app.post("/data-integrations", shared_root).await;
    assert_eq!(status, 201, "{body}");
    let (status, out) = f
        .authorize(json!({"user_id": "user_admin", "organization_id": "org_1",
                          "connection_owner": "organization", "return_to": RETURN_TO}))
        .await;
    assert_eq!(status, 200, "{out}");
    let to_provider = f.confirm(out["url"].as_str().unwrap(), true).await;
    let callback = f.at_provider(to_provider).await;

    let ended = f.app.delete("/pipes/organizations/org_1/memberships/user_admin").await;
    assert_eq!(ended.0, 204, "{ended:?}");
    let back = f.come_back(&callback).await;
    let q = query_of(&location(&back));
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("user_not_member_of_organization")
    );
    assert_eq!(q.get("state"), out["state"].as_str().map(str::to_owned).as_ref());
    let (status, _) = f.app.get("/organizations/org_1/connected_accounts/mock").await;
    assert_eq!(status, 404, "nothing was saved");
    let (_, events) = f
        .app
        .get("/events?events=pipes.connected_account.connection_failed")
        .await;
    assert_eq!(
        events["data"][0]["data"]["error_code"],
        "user_not_member_of_organization"
    );
    assert_eq!(events["data"][0]["data"]["organization_id"], "org_1");
}
