//! `POST /data-integrations/{slug}/authorize` and `POST /data-integrations/finish`.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::services::{AuthorizeRequest, FinishRequest};
use serde::Serialize;

use super::views::ConnectedAccountView;
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route("/data-integrations/{slug}/authorize", post(authorize_data_integration))
        .route("/data-integrations/finish", post(finish_connection.layer(idempotent)))
}

#[derive(Debug, Serialize)]
struct AuthorizeView {
    url: String,
    state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    completion: Option<&'static str>,
}

async fn authorize_data_integration(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(raw_slug): Path<String>,
    ApiJson(req): ApiJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeView>, ApiError> {
    let out = app.connect.authorize(&env, &slug(&raw_slug)?, req).await?;
    Ok(Json(AuthorizeView {
        url: out.url,
        state: out.state,
        completion: out.finish_required.then_some("finish_required"),
    }))
}

#[derive(Debug, Serialize)]
struct FinishView {
    connected_account: ConnectedAccountView,
}

async fn finish_connection(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(req): ApiJson<FinishRequest>,
) -> Result<Json<FinishView>, ApiError> {
    let account = app.connect.finish(&env, req).await?;
    Ok(Json(FinishView {
        connected_account: ConnectedAccountView::new(&account),
    }))
}
