//! Widget and Client API tokens (contract §4.14): `POST /widgets/token`, `POST /client/token`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::secret::SecretString;
use pipes_core::services::{ClientTokenRequest, WidgetTokenRequest};
use serde_json::{json, Value};

use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/widgets/token", post(widget_token))
        .route("/client/token", post(client_token))
}

async fn widget_token(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(req): ApiJson<WidgetTokenRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(created(app.widget_tokens.widget_token(&env, req).await?))
}

async fn client_token(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(req): ApiJson<ClientTokenRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    Ok(created(app.widget_tokens.client_token(&env, req).await?))
}

fn created(token: SecretString) -> (StatusCode, Json<Value>) {
    (StatusCode::CREATED, Json(json!({ "token": token.expose() })))
}
