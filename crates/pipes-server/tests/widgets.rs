//! The widget API (`/_widgets/…`) as `<Pipes/>` and `<PipesAdmin/>` call it: widget tokens
//! only, CORS from allowed origins only, the handoff flow, and no reach into another user's,
//! organization's or environment's data.
#![allow(clippy::unwrap_used)]

use pipes_core::domain::AllowList;
use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::{read, TestApp};
use reqwest::{Method, Response};
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    a_member_connects_with_the_handoff_and_sees_it_at_once,
    a_forwarded_handoff_link_connects_nothing,
    api_keys_connect_rotate_and_disconnect,
    tokens_reach_only_their_own_user_organization_and_environment,
    only_widget_tokens_open_the_widget_api,
    cors_answers_allowed_origins_on_widget_routes_only,
    administrators_configure_what_members_may_connect,
    an_organization_connects_a_shared_connection_its_members_can_use,
    bad_input_never_reaches_a_5xx,
);

const CLIENT_ID: &str = "widget-client";
const CLIENT_SECRET: &str = "widget-secret-value";
const PAGE: &str = "http://127.0.0.1:4200";

struct Widgets {
    app: TestApp,
    mock: MockProvider,
    browser: reqwest::Client,
}

async fn setup(app: TestApp) -> Widgets {
    let mock = MockProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    app.create_mock_integration(&mock, CLIENT_ID, CLIENT_SECRET, json!({"scopes": ["read"]}))
        .await;
    let keyed = json!({
        "provider": "keyed", "enabled": true, "auth_methods": ["api_key"],
        "description": "Paste an API key", "custom_provider": {"name": "Keyed"}
    });
    assert_eq!(app.post("/data-integrations", keyed).await.0, 201);
    app.environments
        .allow(&app.env, AllowList::WebOrigins, PAGE)
        .await
        .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Widgets { app, mock, browser }
}

impl Widgets {
    /// A widget token minted through the API, as the app's backend would.
    async fn token(&self, body: Value) -> String {
        let (status, answer) = self.app.post("/widgets/token", body).await;
        assert_eq!(status, 201, "{answer}");
        answer["token"].as_str().unwrap().to_owned()
    }

    /// A widget call from the page's origin.
    async fn call(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .browser
            .request(method, format!("{}{path}", self.app.base_url))
            .header("origin", PAGE)
            .header("workos-widgets-type", "pipes")
            .header("workos-widgets-version", "1")
            .header("content-type", "application/json");
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(
            resp.headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(PAGE),
            "every answer to an allowed origin is readable, errors included"
        );
        read(resp).await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.call(token, Method::GET, path, None).await
    }

    /// The popup: from the authorize answer through the handoff and the provider's consent to
    /// the final page.
    async fn connect_in_popup(&self, authorize: &Value) -> Response {
        let url = authorize["url"].as_str().unwrap();
        let landing = self.browser.get(url).send().await.unwrap();
        assert_eq!(landing.status(), 200);
        let html = landing.text().await.unwrap();
        let handoff = authorize["handoffToken"].as_str().unwrap();
        assert!(!html.contains(handoff), "the page never shows the handoff token");
        assert!(
            html.contains("postMessage") && html.contains("Connecting to Mock"),
            "{html}"
        );
        // What the page's script does once the widget's message arrives.
        let to_provider = self
            .browser
            .post(url)
            .header("sec-fetch-site", "same-origin")
            .form(&[("csrf_token", handoff), ("action", "continue")])
            .send()
            .await
            .unwrap();
        assert_eq!(to_provider.status(), 302);
        let provider = to_provider.headers()["location"].to_str().unwrap().to_owned();
        assert!(provider.starts_with(&self.mock.base_url), "{provider}");
        // The popup's browser holds the flow's cookie when the provider sends it back.
        let flow = to_provider.headers()["set-cookie"].to_str().unwrap();
        let flow = flow.split(';').next().unwrap().to_owned();
        let back = self.browser.get(&provider).send().await.unwrap();
        let callback = back.headers()["location"].to_str().unwrap().to_owned();
        self.browser.get(callback).header("cookie", flow).send().await.unwrap()
    }
}

fn row<'a>(mine: &'a Value, slug: &str) -> &'a Value {
    mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["slug"] == slug)
        .unwrap_or_else(|| panic!("no {slug} in {mine}"))
}

async fn a_member_connects_with_the_handoff_and_sees_it_at_once(app: TestApp) {
    let w = setup(app).await;
    let token = w.token(json!({"user_id": "user_1", "organization_id": "org_1"})).await;
    let payload = token.split('.').nth(1).unwrap();
    assert!(!payload.contains(['-', '_']), "atob must decode the payload: {payload}");

    let (status, mine) = w.get(&token, "/_widgets/DataIntegrations/mine").await;
    assert_eq!(status, 200, "{mine}");
    let mock = row(&mine, "mock");
    assert_eq!(mock["object"], "data_integration");
    assert_eq!(mock["name"], "Mock");
    assert_eq!(mock["ownership"], "userland_user");
    assert_eq!(mock["authMethods"], json!(["oauth"]));
    assert!(mock["installation"].is_null());
    assert_eq!(row(&mine, "keyed")["authMethods"], json!(["api_key"]));

    let (_, settings) = w.get(&token, "/_widgets/settings").await;
    assert_eq!(settings["authkitOrigin"], json!(w.app.base_url));
    assert_eq!(settings["teamName"], "This application");
    let redirecting = w
        .browser
        .get(format!("{}/pipes/redirecting", w.app.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(redirecting.status(), 200);

    let (status, authorize) = w
        .call(
            &token,
            Method::POST,
            "/_widgets/DataIntegrations/mock/authorize",
            Some(json!({"requireHandoff": true, "config": {}})),
        )
        .await;
    assert_eq!(status, 200, "{authorize}");
    let url = authorize["url"].as_str().unwrap();
    assert!(
        url.starts_with(&w.app.base_url),
        "an absolute URL on Pipes' origin: {url}"
    );
    assert!(authorize["redirectToken"].as_str().is_some_and(|t| !t.is_empty()));

    let done = w.connect_in_popup(&authorize).await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("You can close this window"));

    let (_, mine) = w.get(&token, "/_widgets/DataIntegrations/mine").await;
    let installation = &row(&mine, "mock")["installation"];
    assert_eq!(installation["state"], "connected", "{mine}");
    assert_eq!(installation["auth_method"], "oauth");
    assert_eq!(installation["user_id"], "user_1");
    assert_eq!(installation["organization_id"], "org_1");

    // Reauthorize goes through the same flow and keeps the one connection.
    let (_, again) = w
        .call(
            &token,
            Method::POST,
            "/_widgets/DataIntegrations/mock/authorize",
            Some(json!({"requireHandoff": true})),
        )
        .await;
    assert_eq!(w.connect_in_popup(&again).await.status(), 200);
    let (_, mine) = w.get(&token, "/_widgets/DataIntegrations/mine").await;
    assert_eq!(row(&mine, "mock")["connected_accounts"].as_array().unwrap().len(), 1);
    assert_eq!(row(&mine, "mock")["installation"]["id"], installation["id"]);

    // Disconnect answers JSON, and the row is empty again.
    let id = installation["id"].as_str().unwrap();
    let path = format!("/_widgets/DataIntegrations/installations/{id}");
    let (status, body) = w.call(&token, Method::DELETE, &path, None).await;
    assert_eq!((status, body), (200, json!({"success": true})));
    let (_, mine) = w.get(&token, "/_widgets/DataIntegrations/mine").await;
    assert!(row(&mine, "mock")["installation"].is_null());
}

async fn a_forwarded_handoff_link_connects_nothing(app: TestApp) {
    let w = setup(app).await;
    let token = w.token(json!({"user_id": "user_1"})).await;
    let (_, authorize) = w
        .call(
            &token,
            Method::POST,
            "/_widgets/DataIntegrations/mock/authorize",
            Some(json!({"requireHandoff": true, "config": {}})),
        )
        .await;
    let url = authorize["url"].as_str().unwrap();
    // Someone else opens the link: the page offers nothing to press, and a guessed token fails.
    let html = w.browser.get(url).send().await.unwrap().text().await.unwrap();
    assert!(!html.contains("Continue to"), "{html}");
    let forged = w
        .browser
        .post(url)
        .form(&[("csrf_token", "guess"), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    // The widget's own user cannot use their token to make someone else's browser continue
    // from another site: the browser says the form came from elsewhere.
    let handoff = authorize["handoffToken"].as_str().unwrap();
    let cross_site = w
        .browser
        .post(url)
        .header("sec-fetch-site", "cross-site")
        .form(&[("csrf_token", handoff), ("action", "continue")])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    // And the page takes a handoff only from its opener at one of the environment's origins.
    assert!(html.contains(&format!("var allowedOrigins = [\"{PAGE}\"]")), "{html}");
    assert_eq!(w.mock.counters().authorizations, 0, "the provider was never reached");
    // The widget's own handoff still works afterwards.
    assert_eq!(w.connect_in_popup(&authorize).await.status(), 200);
}

async fn api_keys_connect_rotate_and_disconnect(app: TestApp) {
    let w = setup(app).await;
    let token = w.token(json!({"user_id": "user_1"})).await;
    let path = "/_widgets/DataIntegrations/keyed/api-key";
    let (status, body) = w.call(&token, Method::PUT, path, Some(json!({"secret": "  "}))).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("secret"), "{body}");
    let (status, first) = w
        .call(&token, Method::PUT, path, Some(json!({"secret": "key_first_1111"})))
        .await;
    assert_eq!(status, 200, "{first}");
    let (status, rotated) = w
        .call(&token, Method::PUT, path, Some(json!({"secret": "key_second_2222"})))
        .await;
    assert_eq!(status, 200, "{rotated}");
    assert_eq!(rotated["id"], first["id"], "rotation keeps the connection");
    let (_, mine) = w.get(&token, "/_widgets/DataIntegrations/mine").await;
    let installation = &row(&mine, "keyed")["installation"];
    assert_eq!(installation["api_key_last_4"], "2222");
    assert!(!mine.to_string().contains("key_second"), "never the key itself");
    // The vended credential is the new key.
    let (_, vended) = w
        .app
        .post("/data-integrations/keyed/credentials", json!({"user_id": "user_1"}))
        .await;
    assert_eq!(vended["credential"]["value"], "key_second_2222", "{vended}");
}

async fn tokens_reach_only_their_own_user_organization_and_environment(app: TestApp) {
    let w = setup(app).await;
    let alice = w.token(json!({"user_id": "alice", "organization_id": "org_1"})).await;
    let bob = w.token(json!({"user_id": "bob", "organization_id": "org_1"})).await;
    let path = "/_widgets/DataIntegrations/keyed/api-key";
    let (_, installed) = w
        .call(&alice, Method::PUT, path, Some(json!({"secret": "alice_key_9999"})))
        .await;
    let id = installed["id"].as_str().unwrap();
    // Bob sees no connection of Alice's and cannot remove hers.
    let (_, mine) = w.get(&bob, "/_widgets/DataIntegrations/mine").await;
    assert!(row(&mine, "keyed")["installation"].is_null());
    let theirs = format!("/_widgets/DataIntegrations/installations/{id}");
    assert_eq!(w.call(&bob, Method::DELETE, &theirs, None).await.0, 404);
    // Nor can an administrator of the organization through the shared-connection routes.
    let admin = w
        .token(json!({"user_id": "carol", "organization_id": "org_1", "scopes": ["widgets:pipes:manage"]}))
        .await;
    let shared = format!("/_widgets/DataIntegrations/organization/installations/{id}");
    assert_eq!(w.call(&admin, Method::DELETE, &shared, None).await.0, 404);

    // Another environment's token, even from an origin that environment allows, reads only its
    // own (empty) environment.
    let (other_env, other_key) = w.app.other_tenant("production").await;
    w.app
        .environments
        .allow(&other_env, AllowList::WebOrigins, PAGE)
        .await
        .unwrap();
    let resp = w
        .app
        .request_as(&other_key, Method::POST, "/widgets/token")
        .json(&json!({"user_id": "alice"}))
        .send()
        .await
        .unwrap();
    let foreign = read(resp).await.1["token"].as_str().unwrap().to_owned();
    let (status, mine) = w.get(&foreign, "/_widgets/DataIntegrations/mine").await;
    assert_eq!((status, mine["data"].clone()), (200, json!([])));
    assert_eq!(w.call(&foreign, Method::DELETE, &theirs, None).await.0, 404);
    assert_eq!(w.get(&alice, "/_widgets/DataIntegrations/mine").await.0, 200);
}

async fn only_widget_tokens_open_the_widget_api(app: TestApp) {
    let w = setup(app).await;
    let mine = "/_widgets/DataIntegrations/mine";
    // No token (a function token's first request), an API key, a Client API token, junk.
    let client = w
        .app
        .post("/client/token", json!({"user_id": "u", "organization_id": "o"}))
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_owned();
    for token in ["", w.app.key.as_str(), client.as_str(), "a.b.c"] {
        let (status, body) = w.get(token, mine).await;
        assert_eq!(status, 403, "{token}: {body}");
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    }
    // An expired token is refused with the message the widget turns into "Session expired".
    let vault = pipes_core::vault::Vault::from_spec(&w.app.vault_spec).unwrap();
    let now = pipes_core::time::now_ms() / 1000;
    let expired = pipes_core::services::sign_token(
        &vault,
        &pipes_core::services::TokenClaims {
            iss: "pipes".into(),
            aud: pipes_core::services::Audience::Widgets,
            env: w.app.env.id.to_string(),
            sub: Some("user_1".into()),
            org_id: None,
            scopes: vec![],
            permissions: vec![],
            iat: now - 7200,
            exp: now - 3600,
            jti: "expired".into(),
        },
    );
    let (status, body) = w.get(expired.expose(), mine).await;
    assert_eq!(status, 403);
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");

    // A widget token opens nothing of the API-key API.
    let token = w.token(json!({"user_id": "user_1"})).await;
    let resp = w
        .app
        .request_as(&token, Method::GET, "/data-integrations")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
}

async fn cors_answers_allowed_origins_on_widget_routes_only(app: TestApp) {
    let w = setup(app).await;
    let preflight = |origin: &'static str, path: &'static str| {
        let browser = w.browser.clone();
        let url = format!("{}{path}", w.app.base_url);
        async move {
            browser
                .request(Method::OPTIONS, url)
                .header("origin", origin)
                .header("access-control-request-method", "PUT")
                .header(
                    "access-control-request-headers",
                    "authorization,content-type,workos-widgets-type,workos-widgets-version",
                )
                .send()
                .await
                .unwrap()
        }
    };
    let ok = preflight(PAGE, "/_widgets/DataIntegrations/keyed/api-key").await;
    assert!(ok.status().is_success(), "{}", ok.status());
    let h = ok.headers();
    assert_eq!(h["access-control-allow-origin"], PAGE);
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    assert!(["GET", "POST", "PUT", "DELETE"].iter().all(|m| methods.contains(m)));
    let headers = h["access-control-allow-headers"].to_str().unwrap().to_lowercase();
    for needed in [
        "authorization",
        "content-type",
        "workos-widgets-type",
        "workos-widgets-version",
    ] {
        assert!(headers.contains(needed), "{headers}");
    }
    let stranger = preflight("https://evil.test", "/_widgets/DataIntegrations/mine").await;
    assert!(stranger.headers().get("access-control-allow-origin").is_none());
    let api = preflight(PAGE, "/data-integrations").await;
    assert!(
        api.headers().get("access-control-allow-origin").is_none(),
        "the API stays backend-only"
    );

    // A page on an origin the environment does not allow gets nothing, even with a good token.
    let token = w.token(json!({"user_id": "user_1"})).await;
    let resp = w
        .browser
        .get(format!("{}/_widgets/DataIntegrations/mine", w.app.base_url))
        .header("origin", "https://evil.test")
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

async fn administrators_configure_what_members_may_connect(app: TestApp) {
    let w = setup(app).await;
    let member = w.token(json!({"user_id": "user_1", "organization_id": "org_1"})).await;
    let (status, body) = w.get(&member, "/_widgets/DataIntegrations/configurations").await;
    assert_eq!(status, 403, "no widgets:pipes:manage, no admin data: {body}");
    let admin = w
        .token(json!({"user_id": "admin_1", "organization_id": "org_1", "scopes": ["widgets:pipes:manage"]}))
        .await;
    let (status, list) = w.get(&admin, "/_widgets/DataIntegrations/configurations").await;
    assert_eq!(status, 200, "{list}");
    let mock = row(&list, "mock");
    assert_eq!(mock["object"], "data_integration_configuration");
    assert_eq!(mock["enabled"], true);
    assert_eq!(mock["defaultScopes"], json!(["read"]));
    assert!(mock["credentials"]["redirectUri"]
        .as_str()
        .unwrap()
        .starts_with(&w.app.base_url));

    // Disabled for the organization: its members no longer see it, other organizations do.
    let (status, saved) = w
        .call(
            &admin,
            Method::PUT,
            "/_widgets/DataIntegrations/mock/configuration",
            Some(json!({"enabled": false, "scopes": ["read"]})),
        )
        .await;
    assert_eq!(status, 200, "{saved}");
    let (_, list) = w.get(&admin, "/_widgets/DataIntegrations/configurations").await;
    assert_eq!(row(&list, "mock")["enabled"], false);
    let (_, mine) = w.get(&member, "/_widgets/DataIntegrations/mine").await;
    assert!(
        mine["data"].as_array().unwrap().iter().all(|r| r["slug"] != "mock"),
        "{mine}"
    );
    let elsewhere = w.token(json!({"user_id": "user_1", "organization_id": "org_2"})).await;
    let (_, mine) = w.get(&elsewhere, "/_widgets/DataIntegrations/mine").await;
    row(&mine, "mock");

    // Scopes outside the integration's are refused with a message a person can read.
    let (status, body) = w
        .call(
            &admin,
            Method::PUT,
            "/_widgets/DataIntegrations/mock/configuration",
            Some(json!({"enabled": true, "scopes": ["admin:everything"]})),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["message"].as_str().unwrap().contains("admin:everything"), "{body}");
}

async fn an_organization_connects_a_shared_connection_its_members_can_use(app: TestApp) {
    let w = setup(app).await;
    let keyed = json!({
        "provider": "keyed", "ownership": "organization", "enabled": true, "auth_methods": ["api_key"]
    });
    assert_eq!(w.app.post("/data-integrations", keyed).await.0, 201);
    let admin = w
        .token(json!({"user_id": "admin_1", "organization_id": "org_1", "scopes": ["widgets:pipes:manage"]}))
        .await;
    let (_, rows) = w.get(&admin, "/_widgets/DataIntegrations/organization").await;
    let keyed_row = row(&rows, "keyed");
    assert_eq!(keyed_row["capabilities"]["canConnect"], true, "{rows}");
    assert_eq!(keyed_row["capabilities"]["canDisconnect"], false);
    let (status, shared) = w
        .call(
            &admin,
            Method::PUT,
            "/_widgets/DataIntegrations/keyed/organization/api-key",
            Some(json!({"secret": "org_key_4242"})),
        )
        .await;
    assert_eq!(status, 200, "{shared}");
    assert_eq!(shared["organization_id"], "org_1");
    let (_, rows) = w.get(&admin, "/_widgets/DataIntegrations/organization").await;
    let keyed_row = row(&rows, "keyed");
    assert_eq!(keyed_row["connected_accounts"][0]["api_key_last_4"], "4242");
    assert_eq!(keyed_row["capabilities"]["canUpdateCredentials"], true);

    // A member sees it as available, and a member of another organization does not.
    let member = w.token(json!({"user_id": "user_1", "organization_id": "org_1"})).await;
    let (status, list) = w.get(&member, "/_widgets/DataIntegrations/shared-connections").await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(
        row(&list, "keyed")["connected_accounts"][0]["availability"],
        "available"
    );
    let outsider = w.token(json!({"user_id": "user_9", "organization_id": "org_9"})).await;
    let (_, list) = w.get(&outsider, "/_widgets/DataIntegrations/shared-connections").await;
    assert_eq!(list["data"], json!([]));
    let (_, orgs) = w.get(&member, "/_widgets/UserManagement/organizations").await;
    assert_eq!(orgs["data"], json!([{"id": "org_1", "name": "org_1", "current": true}]));

    // Only an administrator disconnects it.
    let id = shared["id"].as_str().unwrap();
    let path = format!("/_widgets/DataIntegrations/organization/installations/{id}");
    assert_eq!(w.call(&member, Method::DELETE, &path, None).await.0, 403);
    let (status, body) = w.call(&admin, Method::DELETE, &path, None).await;
    assert_eq!((status, body), (200, json!({"success": true})));
}

async fn bad_input_never_reaches_a_5xx(app: TestApp) {
    let w = setup(app).await;
    let member = w.token(json!({"user_id": "user_1", "organization_id": "org_1"})).await;
    let admin = w
        .token(json!({"user_id": "admin_1", "organization_id": "org_1", "scopes": ["widgets:pipes:manage"]}))
        .await;
    let routes: &[(Method, &str)] = &[
        (Method::GET, "/_widgets/DataIntegrations/mine"),
        (Method::GET, "/_widgets/settings"),
        (Method::POST, "/_widgets/DataIntegrations/mock/authorize"),
        (Method::POST, "/_widgets/DataIntegrations/NOPE!/authorize"),
        (Method::PUT, "/_widgets/DataIntegrations/keyed/api-key"),
        (Method::PUT, "/_widgets/DataIntegrations/mock/api-key"),
        (Method::PUT, "/_widgets/DataIntegrations/keyed/client-credentials"),
        (Method::DELETE, "/_widgets/DataIntegrations/installations/not-an-id"),
        (
            Method::DELETE,
            "/_widgets/DataIntegrations/installations/data_installation_01M99",
        ),
        (Method::GET, "/_widgets/DataIntegrations/shared-connections"),
        (Method::GET, "/_widgets/UserManagement/organizations"),
        (Method::GET, "/_widgets/DataIntegrations/configurations"),
        (Method::PUT, "/_widgets/DataIntegrations/mock/configuration"),
        (Method::PUT, "/_widgets/DataIntegrations/nothing/configuration"),
        (Method::GET, "/_widgets/DataIntegrations/organization"),
        (
            Method::PUT,
            "/_widgets/DataIntegrations/mock/organization/configuration",
        ),
        (Method::POST, "/_widgets/DataIntegrations/mock/organization/authorize"),
        (Method::PUT, "/_widgets/DataIntegrations/keyed/organization/api-key"),
        (
            Method::PUT,
            "/_widgets/DataIntegrations/keyed/organization/client-credentials",
        ),
        (
            Method::DELETE,
            "/_widgets/DataIntegrations/organization/installations/x",
        ),
    ];
    let long = "x".repeat(10_000);
    let bodies = [
        String::new(),
        "{".into(),
        "[]".into(),
        "null".into(),
        r#"{"secret": 5, "config": "no", "scopes": {"a": 1}}"#.into(),
        r#"{"secret": null, "client_id": [], "enabled": "yes"}"#.into(),
        format!(r#"{{"secret": "{long}", "client_id": "{long}", "client_secret": "{long}"}}"#),
        r#"{"config": {"a": "b"}, "requireHandoff": "maybe"}"#.into(),
        r#"{"scopes": ["", " ", "a b"], "client_id": "only-id"}"#.into(),
    ];
    for token in [&member, &admin] {
        for (method, path) in routes {
            // Browsers send bodies with writes only.
            let sent = if matches!(*method, Method::GET | Method::DELETE) {
                &bodies[..1]
            } else {
                &bodies[..]
            };
            for body in sent {
                let resp = w
                    .browser
                    .request(method.clone(), format!("{}{path}", w.app.base_url))
                    .header("origin", PAGE)
                    .bearer_auth(token)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap();
                let status = resp.status().as_u16();
                let (_, answer) = read(resp).await;
                assert!(status < 500, "{method} {path} {body:.60}: {status} {answer}");
                if status >= 400 {
                    assert!(
                        answer["message"].as_str().is_some_and(|m| !m.is_empty()),
                        "{method} {path}: {answer}"
                    );
                }
            }
        }
    }
}
