//! `POST /data-integrations/{slug}/token` and `/credentials`: a fresh credential in one call.
//! Authentication happens inside the vending read, so a fresh token costs one indexed query.

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::services::{AccountRef, OwnerChoice, OwnerInput, Selector, Vended};
use pipes_core::slug::Slug;
use serde::Deserialize;

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

/// The body of `/token` and `/credentials`, as sent.
#[derive(Debug, Default, Deserialize)]
struct VendBody {
    /// Owner, or acting member.
    user_id: String,
    /// Organization scope or owner; `null` = unscoped.
    #[serde(default)]
    organization_id: Option<String>,
    /// Exact connection.
    #[serde(default)]
    connected_account_id: Option<String>,
    /// `user` or `organization`.
    #[serde(default)]
    connection_owner: Option<String>,
    /// Plural contract.
    #[serde(default)]
    supports_multiple_connections: Option<bool>,
}

type Body = Result<ApiJson<VendBody>, ApiError>;

/// The slug, the owner and the connection a vend request means.
fn parse(raw_slug: &str, body: Body) -> Result<(Slug, OwnerChoice, Selector), ApiError> {
    let ApiJson(body) = body?;
    let choice = OwnerInput {
        connection_owner: body.connection_owner.as_deref(),
        user_id: Some(body.user_id.as_str()),
        organization_id: body.organization_id.as_deref(),
    }
    .parse(true)?;
    let selector = Selector {
        connected_account_id: body.connected_account_id.as_deref().map(AccountRef::parse),
        supports_multiple_connections: body.supports_multiple_connections.unwrap_or(false),
    };
    // No root has an invalid slug; the key is still checked first, below.
    Ok((slug(raw_slug)?, choice, selector))
}

async fn vend(app: &App, key: &BearerKey, raw_slug: &str, body: Body, oauth_only: bool) -> Result<Vended, ApiError> {
    let (slug, choice, selector) = match parse(raw_slug, body) {
        Ok(parsed) => parsed,
        Err(e) => {
            // A bad key is a 401 whatever else is wrong with the request.
            key.environment(app).await?;
            return Err(e);
        }
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
    body: Body,
) -> Result<Json<TokenResponseView>, ApiError> {
    Ok(Json(TokenResponseView::new(vend(&app, &key, &slug, body, true).await?)))
}

async fn create_credential(
    State(app): State<App>,
    key: BearerKey,
    Path(slug): Path<String>,
    body: Body,
) -> Result<Json<CredentialResponseView>, ApiError> {
    Ok(Json(CredentialResponseView::new(
        vend(&app, &key, &slug, body, false).await?,
    )))
}
