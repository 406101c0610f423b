//! `POST /data-integrations/{slug}/token` and `/credentials`: a fresh credential in one call.
//! Authentication happens inside the vending read, so a fresh token costs one indexed query.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::services::{AccountRef, OwnerInput, Selector, VendRequest, Vended};

use super::views::{CredentialResponseView, TokenResponseView};
use crate::auth::BearerKey;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/data-integrations/{slug}/token", post(get_access_token))
        .route("/data-integrations/{slug}/credentials", post(create_credential))
}

async fn vend(
    app: &App,
    key: &BearerKey,
    raw_slug: &str,
    req: Result<ApiJson<VendRequest>, ApiError>,
    oauth_only: bool,
) -> Result<Vended, ApiError> {
    // A bad key is a 401 whatever else is wrong with the request.
    let fail = |e: ApiError| async move {
        key.environment(app).await?;
        Err(e)
    };
    let req = match req {
        Ok(ApiJson(req)) => req,
        Err(e) => return fail(e).await,
    };
    let owner = OwnerInput {
        connection_owner: req.connection_owner.as_deref(),
        user_id: Some(req.user_id.as_str()),
        organization_id: req.organization_id.as_deref(),
    };
    let choice = match owner.parse(true) {
        Ok(c) => c,
        Err(e) => return fail(e.into()).await,
    };
    // No root has an invalid slug; still, a bad key is told it is a bad key.
    let slug = match slug(raw_slug) {
        Ok(s) => s,
        Err(e) => return fail(e).await,
    };
    let selector = Selector {
        connected_account_id: req.connected_account_id.as_deref().map(AccountRef::parse),
        supports_multiple_connections: req.supports_multiple_connections.unwrap_or(false),
    };
    app.credentials
        .vend_with_key(&key.0, &slug, &choice, &selector, oauth_only)
        .await?
        .ok_or_else(ApiError::unauthorized)
}

async fn get_access_token(
    State(app): State<App>,
    key: BearerKey,
    Path(slug): Path<String>,
    req: Result<ApiJson<VendRequest>, ApiError>,
) -> Result<Json<TokenResponseView>, ApiError> {
    Ok(Json(TokenResponseView::new(vend(&app, &key, &slug, req, true).await?)))
}

async fn create_credential(
    State(app): State<App>,
    key: BearerKey,
    Path(slug): Path<String>,
    req: Result<ApiJson<VendRequest>, ApiError>,
) -> Result<Json<CredentialResponseView>, ApiError> {
    Ok(Json(CredentialResponseView::new(
        vend(&app, &key, &slug, req, false).await?,
    )))
}
