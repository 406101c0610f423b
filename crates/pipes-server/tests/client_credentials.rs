//! Built-in providers with a client-credentials variant (Salesforce): the provider data decides
//! the token endpoint (the tenant's My Domain), the metadata kept from the token response and
//! the lifetime assumed when the response has none; the API picks the variant from
//! `auth_methods` and demands the tenant's config before it calls anyone.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use pipes_core::catalog::Catalog;
use pipes_core::domain::AuthMethod;
use pipes_core::egress::{Egress, EgressPolicy};
use pipes_core::oauth::{ClientApp, OAuthClient, ResolvedProvider};
use pipes_core::secret::SecretString;
use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::TestApp;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn salesforce_client_credentials_follow_the_provider_data() {
    let catalog = Catalog::builtin().unwrap();
    let variant = catalog.get_with("salesforce", AuthMethod::ClientCredentials).unwrap();
    let config = BTreeMap::from([("my_domain".to_owned(), "acme.my.salesforce.com".to_owned())]);
    let mut resolved = ResolvedProvider::builtin(variant, &config).unwrap();
    assert_eq!(
        resolved.token_url,
        "https://acme.my.salesforce.com/services/oauth2/token"
    );

    // The same request against a local provider that answers like Salesforce.
    let mock = MockProvider::start("consumer-key", "consumer-secret").await;
    resolved.token_url = format!("{}/token", mock.base_url);
    let app = ClientApp {
        client_id: "consumer-key".into(),
        client_secret: Some(SecretString::new("consumer-secret")),
    };
    let minted = OAuthClient::new(Egress::new(EgressPolicy::allowing_loopback()))
        .client_credentials(&resolved, &app, &[])
        .await
        .unwrap();
    assert_eq!(minted.expires_in, Some(3600), "assumed lifetime from the provider data");
    assert!(minted.refresh_token.is_none());
    assert_eq!(minted.metadata["instance_url"], json!(mock.base_url));
    assert!(minted.metadata["id"].as_str().unwrap().contains("/id/00D"));
    assert!(!minted.metadata.contains_key("signature") && !minted.metadata.contains_key("issued_at"));
    assert_eq!(mock.counters().client_credentials, 1);

    let wrong = ClientApp {
        client_id: "consumer-key".into(),
        client_secret: Some(SecretString::new("wrong")),
    };
    let err = OAuthClient::new(Egress::new(EgressPolicy::allowing_loopback()))
        .client_credentials(&resolved, &wrong, &[])
        .await
        .unwrap_err();
    assert!(err.is_rejected_client(), "{err:?}");
}

pipes_testkit::on_both_backends!(the_api_picks_the_variant_and_wants_its_config);

async fn the_api_picks_the_variant_and_wants_its_config(app: TestApp) {
    let (status, root) = app
        .post(
            "/data-integrations",
            json!({"provider": "salesforce", "enabled": true, "auth_methods": ["client_credentials"]}),
        )
        .await;
    assert_eq!(status, 201, "{root}");
    assert_eq!(root["auth_methods"], json!(["client_credentials"]));

    // The OAuth description of the same provider is still there for another ownership.
    let (status, oauth) = app
        .post(
            "/data-integrations",
            json!({"provider": "salesforce", "ownership": "organization", "enabled": true,
                        "credentials": {"type": "custom", "client_id": "a", "client_secret": "b"}}),
        )
        .await;
    assert_eq!(status, 201, "{oauth}");
    assert_eq!(oauth["auth_methods"], json!(["oauth"]));

    let (status, err) = app
        .post(
            "/data-integrations",
            json!({"provider": "github", "enabled": true, "auth_methods": ["client_credentials"]}),
        )
        .await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["code"], "auth_method_mismatch");

    // Without the tenant's My Domain, or with a host that is not one, nothing is called.
    let put = |config: Option<serde_json::Value>| {
        let mut body = json!({"user_id": "user_1", "client_id": "consumer-key", "client_secret": "consumer-secret"});
        if let Some(c) = config {
            body["config"] = c;
        }
        app.call(
            Method::PUT,
            "/data-integrations/salesforce/client-credentials",
            Some(body),
        )
    };
    let (status, err) = put(None).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["field"], "config.my_domain");
    assert_eq!(err["errors"][0]["code"], "required");
    let (status, err) = put(Some(json!({"my_domain": "169.254.169.254"}))).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["field"], "config.my_domain");
    let (status, err) = put(Some(json!({"login_host": "login.salesforce.com"}))).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["errors"][0]["code"], "unknown_field");
    let (status, list) = app.get("/user_management/users/user_1/data_providers").await;
    assert_eq!(status, 200);
    assert!(list["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["connected_accounts"].as_array().is_none_or(|a| a.is_empty())));
}
