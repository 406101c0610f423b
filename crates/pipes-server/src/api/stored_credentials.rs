//! `PUT`/`POST /data-integrations/{slug}/api-key` and `…/client-credentials`: connections whose
//! credential the application hands over.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use pipes_core::domain::AuthMethod;
use pipes_core::services::StoreCredentialRequest;

use super::views::ConnectedAccountView;
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route(
            "/data-integrations/{slug}/api-key",
            put(put_api_key).post(add_api_key.layer(idempotent.clone())),
        )
        .route(
            "/data-integrations/{slug}/client-credentials",
            put(put_client_credentials).post(add_client_credentials.layer(idempotent)),
        )
}

async fn store(
    app: &App,
    env: &EnvAuth,
    raw_slug: &str,
    method: AuthMethod,
    adding: bool,
    req: StoreCredentialRequest,
) -> Result<(StatusCode, Json<ConnectedAccountView>), ApiError> {
    let (account, warnings) = app.stored.put(&env.0, &slug(raw_slug)?, method, adding, req).await?;
    let status = if adding { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ConnectedAccountView::written(&account, &warnings))))
}

type Stored = Result<(StatusCode, Json<ConnectedAccountView>), ApiError>;

async fn put_api_key(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<StoreCredentialRequest>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ApiKey, false, req).await
}

async fn add_api_key(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<StoreCredentialRequest>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ApiKey, true, req).await
}

async fn put_client_credentials(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<StoreCredentialRequest>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ClientCredentials, false, req).await
}

async fn add_client_credentials(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<StoreCredentialRequest>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ClientCredentials, true, req).await
}
