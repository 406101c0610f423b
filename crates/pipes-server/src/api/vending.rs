//! `POST /data-integrations/{slug}/token` and `/credentials`: a fresh credential in one call.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::services::{OwnerInput, Selector, VendRequest, Vended};

use super::views::{CredentialResponseView, TokenResponseView};
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/data-integrations/{slug}/token", post(get_access_token))
        .route("/data-integrations/{slug}/credentials", post(create_credential))
}

async fn vend(app: &App, env: &EnvAuth, slug: &str, req: &VendRequest, oauth_only: bool) -> Result<Vended, ApiError> {
    let choice = OwnerInput {
        connection_owner: req.connection_owner.as_deref(),
        user_id: Some(req.user_id.as_str()),
        organization_id: req.organization_id.as_deref(),
    }
    .parse(true)?;
    let selector = Selector {
        connected_account_id: req.connected_account_id.as_deref(),
        supports_multiple_connections: req.supports_multiple_connections.unwrap_or(false),
    };
    Ok(app
        .credentials
        .vend(&env.0, slug, &choice, &selector, oauth_only)
        .await?)
}

async fn get_access_token(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<VendRequest>,
) -> Result<Json<TokenResponseView>, ApiError> {
    Ok(Json(TokenResponseView::new(vend(&app, &env, &slug, &req, true).await?)))
}

async fn create_credential(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<VendRequest>,
) -> Result<Json<CredentialResponseView>, ApiError> {
    Ok(Json(CredentialResponseView::new(
        vend(&app, &env, &slug, &req, false).await?,
    )))
}
