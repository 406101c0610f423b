//! The hosted connect page for applications without React: a single-use link traded for a
//! cookie, the session's providers, OAuth / API-key / client-credential connections,
//! reauthorization and disconnection, CSRF on every form, on both databases.
#![allow(clippy::unwrap_used)]

use pipes_core::domain::AllowList;
use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::TestApp;
use reqwest::Response;
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    a_user_connects_through_the_hosted_page,
    links_work_once_and_sessions_act_for_their_user_alone,
    sessions_are_checked_when_they_are_made,
);

const CLIENT_ID: &str = "page-client";
const CLIENT_SECRET: &str = "page-secret-value";

struct Page {
    app: TestApp,
    mock: MockProvider,
    browser: reqwest::Client,
}

async fn setup(app: TestApp) -> Page {
    let mock = MockProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    app.create_mock_integration(&mock, CLIENT_ID, CLIENT_SECRET, json!({}))
        .await;
    let keyed = json!({
        "provider": "keyed", "enabled": true, "auth_methods": ["api_key"], "custom_provider": {"name": "Keyed"}
    });
    assert_eq!(app.post("/data-integrations", keyed).await.0, 201);
    let hidden = json!({
        "provider": "hidden", "enabled": true, "auth_methods": ["api_key"], "custom_provider": {"name": "Hidden"}
    });
    assert_eq!(app.post("/data-integrations", hidden).await.0, 201);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Page { app, mock, browser }
}

fn location(r: &Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf_token\" value=\"").unwrap() + 25;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

impl Page {
    async fn session(&self, body: Value) -> (u16, Value) {
        self.app.post("/pipes/connect_sessions", body).await
    }

    /// Opens a session's link: the cookie it sets.
    async fn open(&self, url: &str) -> String {
        let first = self.browser.get(url).send().await.unwrap();
        assert_eq!(first.status(), 303);
        assert_eq!(location(&first), "/pipes/connect", "the code leaves the address bar");
        let cookie = first.headers()["set-cookie"].to_str().unwrap().to_owned();
        for attribute in ["HttpOnly", "SameSite=Lax", "Path=/pipes/connect"] {
            assert!(cookie.contains(attribute), "{cookie}");
        }
        cookie.split(';').next().unwrap().to_owned()
    }

    async fn get(&self, cookie: &str, path: &str) -> (u16, String) {
        let resp = self
            .browser
            .get(format!("{}{path}", self.app.base_url))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn post(&self, cookie: &str, path: &str, form: &[(&str, &str)]) -> Response {
        self.browser
            .post(format!("{}{path}", self.app.base_url))
            .header("cookie", cookie)
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

async fn a_user_connects_through_the_hosted_page(app: TestApp) {
    let p = setup(app).await;
    let (status, session) = p
        .session(json!({"user_id": "user_1", "organization_id": "org_1", "providers": ["mock", "keyed"]}))
        .await;
    assert_eq!(status, 201, "{session}");
    assert_eq!(session["object"], "connect_session");
    let cookie = p.open(session["url"].as_str().unwrap()).await;
    let (status, html) = p.get(&cookie, "/pipes/connect").await;
    assert_eq!(status, 200);
    assert!(html.contains("Mock") && html.contains("Keyed"), "{html}");
    assert!(!html.contains("Hidden"), "only the session's providers");
    // A crafted link cannot put its own words on the page.
    let (_, crafted) = p
        .get(
            &cookie,
            "/pipes/connect?error=access_denied&error_description=Your+account+is+locked.+Call+555-0100",
        )
        .await;
    assert!(crafted.contains("The connection was cancelled."), "{crafted}");
    assert!(!crafted.contains("555-0100"), "{crafted}");

    // A form without the page's token changes nothing.
    let forged = p
        .post(
            &cookie,
            "/pipes/connect/keyed/api-key",
            &[("secret", "forged_key_0000")],
        )
        .await;
    assert_eq!(forged.status(), 400);
    assert!(html.contains("saved for user <strong>user_1</strong> in organization <strong>org_1</strong>"));
    let csrf = csrf_of(&html);
    // Only the session's providers, also when a form is made up.
    let outside = p
        .post(
            &cookie,
            "/pipes/connect/hidden/api-key",
            &[("csrf_token", &csrf), ("secret", "outside_key_0000")],
        )
        .await;
    assert_eq!(outside.status(), 400);
    let saved = p
        .post(
            &cookie,
            "/pipes/connect/keyed/api-key",
            &[("csrf_token", &csrf), ("secret", "page_key_1234")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let (_, vended) = p
        .app
        .post(
            "/data-integrations/keyed/credentials",
            json!({"user_id": "user_1", "organization_id": "org_1"}),
        )
        .await;
    assert_eq!(vended["credential"]["value"], "page_key_1234", "{vended}");
    let (_, hidden) = p
        .app
        .post(
            "/data-integrations/hidden/credentials",
            json!({"user_id": "user_1", "organization_id": "org_1"}),
        )
        .await;
    assert_eq!(hidden["error"], "not_installed");

    // OAuth: straight to the provider, back to the page.
    let to_provider = p
        .post(&cookie, "/pipes/connect/mock/authorize", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(to_provider.status(), 302);
    let provider = location(&to_provider);
    assert!(provider.starts_with(&p.mock.base_url), "{provider}");
    let flow = to_provider.headers()["set-cookie"].to_str().unwrap();
    let flow = flow.split(';').next().unwrap().to_owned();
    let back = p.browser.get(&provider).send().await.unwrap();
    let callback = p
        .browser
        .get(location(&back))
        .header("cookie", format!("{cookie}; {flow}"))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 302);
    let page = location(&callback);
    assert!(
        page.starts_with(&format!("{}/pipes/connect?", p.app.base_url)),
        "{page}"
    );
    let (status, html) = p.get(&cookie, &page.replace(&p.app.base_url, "")).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches(">Connected<").count(), 2, "{html}");

    // Disconnect.
    let (_, token) = p
        .app
        .post(
            "/data-integrations/mock/token",
            json!({"user_id": "user_1", "organization_id": "org_1"}),
        )
        .await;
    assert_eq!(token["active"], true, "{token}");
    let id = html
        .split("/pipes/connect/installations/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let gone = p
        .post(
            &cookie,
            &format!("/pipes/connect/installations/{id}/disconnect"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(gone.status(), 303);
    let (_, html) = p.get(&cookie, "/pipes/connect").await;
    assert_eq!(html.matches(">Connected<").count(), 1, "{html}");
}

async fn links_work_once_and_sessions_act_for_their_user_alone(app: TestApp) {
    let p = setup(app).await;
    let (_, session) = p.session(json!({"user_id": "user_1"})).await;
    let url = session["url"].as_str().unwrap();
    let cookie = p.open(url).await;
    let again = p.browser.get(url).send().await.unwrap();
    assert_eq!(again.status(), 410, "a link opens one session, once");
    assert_eq!(p.get("pipes_connect=guessed", "/pipes/connect").await.0, 410);

    // Another user's connection cannot be disconnected through this session.
    let (_, other) = p.session(json!({"user_id": "user_2"})).await;
    let other_cookie = p.open(other["url"].as_str().unwrap()).await;
    let (_, html) = p.get(&other_cookie, "/pipes/connect").await;
    let csrf = csrf_of(&html);
    let saved = p
        .post(
            &other_cookie,
            "/pipes/connect/keyed/api-key",
            &[("csrf_token", &csrf), ("secret", "user2_key_5678")],
        )
        .await;
    assert_eq!(saved.status(), 303);
    let (_, html) = p.get(&other_cookie, "/pipes/connect").await;
    let id = html
        .split("/pipes/connect/installations/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let (_, mine) = p.get(&cookie, "/pipes/connect").await;
    let attempt = p
        .post(
            &cookie,
            &format!("/pipes/connect/installations/{id}/disconnect"),
            &[("csrf_token", &csrf_of(&mine))],
        )
        .await;
    assert_eq!(attempt.status(), 400);
    // And one session's token does not work with another session's cookie.
    let crossed = p
        .post(
            &cookie,
            &format!("/pipes/connect/installations/{id}/disconnect"),
            &[("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(crossed.status(), 400);
    let (_, html) = p.get(&other_cookie, "/pipes/connect").await;
    assert!(html.contains(">Connected<"), "user_2's key is still there");
}

async fn sessions_are_checked_when_they_are_made(app: TestApp) {
    let p = setup(app).await;
    for (body, field) in [
        (json!({}), "user_id"),
        (json!({"user_id": "u", "providers": ["nope"]}), "providers"),
        (json!({"user_id": "u", "providers": ["Not A Slug"]}), "providers"),
        (json!({"user_id": "u", "return_to": "https://evil.test/x"}), ""),
        (
            json!({"user_id": "u", "opener_origin": "https://evil.test"}),
            "opener_origin",
        ),
    ] {
        let (status, answer) = p.session(body.clone()).await;
        assert!((400..500).contains(&status), "{body}: {status} {answer}");
        if !field.is_empty() {
            assert_eq!(answer["errors"][0]["field"], field, "{answer}");
        }
    }
    p.app
        .environments
        .allow(&p.app.env, AllowList::RedirectUris, "https://app.test/done")
        .await
        .unwrap();
    p.app
        .environments
        .allow(&p.app.env, AllowList::WebOrigins, "https://app.test")
        .await
        .unwrap();
    let (status, answer) = p
        .session(json!({"user_id": "u", "return_to": "https://app.test/done", "opener_origin": "https://app.test"}))
        .await;
    assert_eq!(status, 201, "{answer}");
    let cookie = p.open(answer["url"].as_str().unwrap()).await;
    let (_, html) = p.get(&cookie, "/pipes/connect").await;
    assert!(
        html.contains("href=\"https://app.test/done\""),
        "Done goes back: {html}"
    );
    assert!(
        html.contains("\"https://app.test\""),
        "the opener is told at its origin"
    );
}
