//! The egress policy at the API: destinations on refused addresses are refused when they are
//! saved, and what a provider writes in an error stays out of the answers callers get.
#![allow(clippy::unwrap_used)]

use pipes_core::egress::EgressPolicy;
use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::{spawn_app_with, test_settings, TestApp, TestDatabase};
use reqwest::Method;
use serde_json::json;

async fn app_with(egress: EgressPolicy) -> TestApp {
    let mut settings = test_settings();
    settings.egress = egress;
    spawn_app_with(TestDatabase::sqlite(), settings).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_on_refused_addresses_are_refused_when_saved() {
    let app = app_with(EgressPolicy::default()).await;
    for url in [
        "http://127.0.0.1:9/hook",
        "http://localhost:3000/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.8/hook",
        "https://[fd00:ec2::254]/hook",
    ] {
        let (status, err) = app
            .post(
                "/webhook_endpoints",
                json!({"endpoint_url": url, "events": ["pipes.connected_account.connected"]}),
            )
            .await;
        assert_eq!(status, 422, "{url}: {err}");
        assert_eq!(err["errors"][0]["field"], "endpoint_url", "{err}");
        assert_eq!(err["errors"][0]["code"], "egress_refused", "{err}");
    }
    // A name is checked when it is called: nothing is resolved at save time.
    let (status, created) = app
        .post(
            "/webhook_endpoints",
            json!({"endpoint_url": "https://hooks.example.com/pipes", "events": ["pipes.connected_account.connected"]}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap();
    let (status, err) = app
        .call(
            Method::PATCH,
            &format!("/webhook_endpoints/{id}"),
            Some(json!({"endpoint_url": "https://192.168.1.10/hook"})),
        )
        .await;
    assert_eq!(
        (status, err["errors"][0]["code"].as_str()),
        (422, Some("egress_refused")),
        "{err}"
    );

    let custom = |token_url: &str| {
        json!({
            "provider": "intranet",
            "credentials": {"type": "custom", "client_id": "a", "client_secret": "b"},
            "custom_provider": {
                "name": "Intranet",
                "authorization_url": "https://sso.example.com/authorize",
                "token_url": token_url,
            }
        })
    };
    let (status, err) = app.post("/data-integrations", custom("https://10.1.2.3/token")).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["field"], "custom_provider.token_url", "{err}");
    assert_eq!(err["errors"][0]["code"], "egress_refused", "{err}");
    // The authorization URL is visited by browsers, not by Pipes: an intranet SSO page is fine.
    let (status, body) = app
        .post(
            "/data-integrations",
            json!({
                "provider": "intranet",
                "credentials": {"type": "custom", "client_id": "a", "client_secret": "b"},
                "custom_provider": {
                    "name": "Intranet",
                    "authorization_url": "https://10.1.2.3/authorize",
                    "token_url": "https://sso.example.com/token",
                }
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, err) = app
        .put(
            "/data-integrations/intranet",
            json!({"custom_provider": {"refresh_token_url": "http://localhost:8080/refresh"}}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["field"], "custom_provider.refresh_token_url", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_provider_writes_in_an_error_stays_out_of_answers() {
    let app = app_with(EgressPolicy::allowing_loopback()).await;
    let mock = MockProvider::start("tenant-app", "tenant-secret").await;
    let (status, body) = app
        .post(
            "/data-integrations",
            json!({
                "provider": "machine",
                "enabled": true,
                "auth_methods": ["client_credentials"],
                "custom_provider": {"name": "Machine", "token_url": format!("{}/token", mock.base_url)},
            }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, err) = app
        .call(
            Method::PUT,
            "/data-integrations/machine/client-credentials",
            Some(json!({"user_id": "user_1", "client_id": "tenant-app", "client_secret": "wrong"})),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["code"], "invalid_client_credentials");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("invalid_client"), "the OAuth code is kept: {message}");
    assert!(
        !message.contains("mock provider"),
        "the provider's description is not: {message}"
    );
}
