//! Widget and Client API tokens (contract §4.14), on SQLite and PostgreSQL: what they say, that
//! they verify under the server's vault and only for their own API, that they are not API
//! keys, and who may get one.
#![allow(clippy::unwrap_used)]

use pipes_core::domain::{EnvironmentSettings, MembershipMode};
use pipes_core::services::{verify_token, Audience, TokenError};
use pipes_core::time::now_ms;
use pipes_core::vault::Vault;
use pipes_testkit::TestApp;
use reqwest::Method;
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    tokens_carry_the_caller_and_verify_for_their_api_only,
    bad_requests_are_refused_with_the_contract_codes,
    only_active_members_get_organization_tokens,
);

async fn token(app: &TestApp, path: &str, body: Value) -> String {
    let (status, answer) = app.post(path, body).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer.as_object().unwrap().len(), 1, "only the token: {answer}");
    answer["token"].as_str().unwrap().to_owned()
}

fn error(app_answer: (u16, Value)) -> (u16, String) {
    (
        app_answer.0,
        app_answer.1["code"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn tokens_carry_the_caller_and_verify_for_their_api_only(app: TestApp) {
    let vault = Vault::from_spec(&app.vault_spec).unwrap();
    let now = now_ms() / 1000;
    let widget = token(
        &app,
        "/widgets/token",
        json!({"organization_id": "org_1", "user_id": "user_1",
               "scopes": ["widgets:pipes:manage", "widgets:pipes:manage"]}),
    )
    .await;
    let claims = verify_token(&vault, &widget, Audience::Widgets, now).unwrap();
    assert_eq!(claims.env, app.env.id.to_string());
    assert_eq!(claims.sub.as_deref(), Some("user_1"));
    assert_eq!(claims.org_id.as_deref(), Some("org_1"));
    assert_eq!(claims.scopes, vec!["widgets:pipes:manage"]);
    assert_eq!(claims.exp - claims.iat, 3600);
    assert!((claims.iat - now).abs() <= 5);
    assert_eq!(
        verify_token(&vault, &widget, Audience::Client, now),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        verify_token(&vault, &widget, Audience::Widgets, claims.exp),
        Err(TokenError::Expired)
    );

    // Organization-only (an admin widget) and user-only tokens.
    let admin = token(
        &app,
        "/widgets/token",
        json!({"organization_id": "org_1", "scopes": ["widgets:pipes:manage"]}),
    )
    .await;
    let admin = verify_token(&vault, &admin, Audience::Widgets, now).unwrap();
    assert_eq!((admin.sub, admin.org_id.as_deref()), (None, Some("org_1")));
    let personal = token(&app, "/widgets/token", json!({"user_id": "user_1"})).await;
    let personal = verify_token(&vault, &personal, Audience::Widgets, now).unwrap();
    assert!(personal.org_id.is_none() && personal.scopes.is_empty());

    let client = token(
        &app,
        "/client/token",
        json!({"organization_id": "org_1", "user_id": "user_1"}),
    )
    .await;
    let client_claims = verify_token(&vault, &client, Audience::Client, now).unwrap();
    assert!(client_claims.scopes.is_empty());
    assert_ne!(client_claims.jti, claims.jti);

    // Another server's vault does not accept them, and a token is never an API key.
    let stranger = Vault::from_spec(&Vault::generate_key_spec("test")).unwrap();
    assert_eq!(
        verify_token(&stranger, &widget, Audience::Widgets, now),
        Err(TokenError::Invalid)
    );
    for t in [&widget, &client] {
        let resp = app
            .request_as(t, Method::GET, "/data-integrations")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401);
    }

    // Another environment's token names that environment.
    let (other, other_key) = app.other_tenant("elsewhere").await;
    let resp = app
        .request_as(&other_key, Method::POST, "/widgets/token")
        .json(&json!({"user_id": "user_1"}))
        .send()
        .await
        .unwrap();
    let (status, body) = pipes_testkit::read(resp).await;
    assert_eq!(status, 201);
    let theirs = verify_token(&vault, body["token"].as_str().unwrap(), Audience::Widgets, now).unwrap();
    assert_eq!(theirs.env, other.id.to_string());
}

async fn bad_requests_are_refused_with_the_contract_codes(app: TestApp) {
    let cases = [
        (
            "/widgets/token",
            json!({"scopes": ["widgets:pipes:manage"], "user_id": "user_1"}),
            400,
            "organization_id_required",
        ),
        ("/widgets/token", json!({}), 400, "invalid_request"),
        (
            "/widgets/token",
            json!({"organization_id": "org_1", "scopes": ["widgets:everything"]}),
            422,
            "invalid_request_parameters",
        ),
        (
            "/widgets/token",
            json!({"organization_id": "org 1"}),
            422,
            "invalid_request_parameters",
        ),
        (
            "/widgets/token",
            json!({"organization_id": "org_1", "scopes": "widgets:pipes:manage"}),
            400,
            "bad_request",
        ),
        (
            "/client/token",
            json!({"organization_id": "org_1"}),
            422,
            "invalid_request_parameters",
        ),
        (
            "/client/token",
            json!({"user_id": "user_1"}),
            422,
            "invalid_request_parameters",
        ),
    ];
    for (path, body, status, code) in cases {
        let answer = app.post(path, body.clone()).await;
        assert_eq!(error(answer), (status, code.to_owned()), "{path} {body}");
    }
    let (_, both) = app.post("/client/token", json!({})).await;
    let fields: Vec<&str> = both["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["organization_id", "user_id"]);
    let resp = app
        .request(Method::POST, "/widgets/token")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

async fn only_active_members_get_organization_tokens(app: TestApp) {
    let set = |active: bool| {
        let status = if active { "active" } else { "inactive" };
        app.call(
            Method::PUT,
            "/pipes/organizations/org_1/memberships/user_left",
            Some(json!({ "status": status })),
        )
    };
    // Trust mode: anyone the application names, except a member it said has left.
    assert_eq!(set(false).await.0, 200);
    let body = json!({"organization_id": "org_1", "user_id": "user_left"});
    for path in ["/widgets/token", "/client/token"] {
        let answer = app.post(path, body.clone()).await;
        assert_eq!(answer.0, 422, "{answer:?}");
        assert_eq!(answer.1["errors"][0]["code"], "user_not_member_of_organization");
    }
    token(
        &app,
        "/widgets/token",
        json!({"organization_id": "org_1", "user_id": "user_new"}),
    )
    .await;

    // Registry mode: only declared members of declared organizations.
    let registry = EnvironmentSettings {
        membership: MembershipMode::Registry,
        ..EnvironmentSettings::default()
    };
    app.environments.update_settings("sandbox", registry).await.unwrap();
    let unknown_org = json!({"organization_id": "org_nobody", "user_id": "user_new"});
    assert_eq!(app.post("/widgets/token", unknown_org).await.0, 404);
    let no_user = json!({"organization_id": "org_nobody", "scopes": ["widgets:pipes:manage"]});
    assert_eq!(
        app.post("/widgets/token", no_user).await.0,
        404,
        "an undeclared organization, even without a user"
    );
    let answer = app
        .post(
            "/client/token",
            json!({"organization_id": "org_1", "user_id": "user_new"}),
        )
        .await;
    assert_eq!(answer.0, 422, "{answer:?}");
    assert_eq!(set(true).await.0, 200);
    token(&app, "/client/token", body).await;
}
