//! `PUT`/`POST /data-integrations/{slug}/api-key` and `…/client-credentials`: connections whose
//! credential the application hands over.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::put;
use axum::{Json, Router};
use pipes_core::domain::AuthMethod;
use pipes_core::fields::Labels;
use pipes_core::ids::ConnectedAccountId;
use pipes_core::secret::SecretString;
use pipes_core::services::{account_not_found, Intent, OwnerInput, Patch, StoreCredential, TenantSecret};
use pipes_core::ServiceError;
use serde::Deserialize;

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

/// The body of the four routes, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct StoreBody {
    user_id: Option<String>,
    organization_id: Option<String>,
    connection_owner: Option<String>,
    /// `add` (POST) or `reauthorize` (PUT).
    connection_intent: Option<String>,
    /// The exact connection to rotate (PUT).
    connected_account_id: Option<String>,
    account_display_name: Patch<String>,
    account_identifier: Patch<String>,
    /// The API key.
    secret: Option<SecretString>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    config: Option<BTreeMap<String, String>>,
}

impl StoreBody {
    fn parse(self, method: AuthMethod, adding: bool) -> Result<StoreCredential, ApiError> {
        let intent = intent(
            adding,
            self.connection_intent.as_deref(),
            self.connected_account_id.as_deref(),
        )?;
        let choice = OwnerInput {
            connection_owner: self.connection_owner.as_deref(),
            user_id: self.user_id.as_deref(),
            organization_id: self.organization_id.as_deref(),
        }
        .parse(true)?;
        let secret = match method {
            AuthMethod::ApiKey => TenantSecret::api_key(self.secret)?,
            _ => TenantSecret::client(self.client_id, self.client_secret)?,
        };
        Ok(StoreCredential {
            choice,
            intent,
            secret,
            labels: Labels::parse(self.account_display_name, self.account_identifier)?,
            config: self.config,
        })
    }
}

/// The connection a write means: POST adds one; PUT creates or rotates the compatibility
/// connection, or the exact one named.
fn intent(adding: bool, intent: Option<&str>, connected_account_id: Option<&str>) -> Result<Intent, ServiceError> {
    match (adding, intent, connected_account_id) {
        (true, Some("add"), None) => Ok(Intent::Add),
        (true, Some("add"), Some(_)) => Err(ServiceError::bad_request(
            "connected_account_id_not_allowed",
            "connected_account_id is not accepted when adding a connection; use PUT to rotate one.",
        )),
        (true, _, _) => Err(ServiceError::bad_request(
            "connection_intent_required",
            "connection_intent must be 'add' here; use PUT to create or rotate the compatibility connection.",
        )),
        (false, None, None) => Ok(Intent::Compatibility),
        (false, None | Some("reauthorize"), Some(id)) => ConnectedAccountId::parse(id)
            .map(Intent::Target)
            .map_err(|_| account_not_found()),
        (false, Some("reauthorize"), None) => Err(ServiceError::bad_request(
            "connected_account_id_required",
            "connection_intent reauthorize requires connected_account_id.",
        )),
        (false, _, _) => Err(ServiceError::bad_request(
            "invalid_connection_intent",
            "connection_intent must be 'reauthorize' here; adding a connection is POST.",
        )),
    }
}

type Stored = Result<(StatusCode, Json<ConnectedAccountView>), ApiError>;

async fn store(app: &App, env: &EnvAuth, raw_slug: &str, method: AuthMethod, adding: bool, body: StoreBody) -> Stored {
    let slug = slug(raw_slug)?;
    let (account, warnings) = app.stored.put(&env.0, &slug, body.parse(method, adding)?).await?;
    let status = if adding { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(ConnectedAccountView::written(&account, &warnings))))
}

async fn put_api_key(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    body: ApiJson<StoreBody>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ApiKey, false, body.0).await
}

async fn add_api_key(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    body: ApiJson<StoreBody>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ApiKey, true, body.0).await
}

async fn put_client_credentials(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    body: ApiJson<StoreBody>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ClientCredentials, false, body.0).await
}

async fn add_client_credentials(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    body: ApiJson<StoreBody>,
) -> Stored {
    store(&app, &env, &slug, AuthMethod::ClientCredentials, true, body.0).await
}
