//! `POST /data-integrations/{slug}/authorize`, `POST /data-integrations/finish`, and Pipes' own
//! `POST /pipes/connect_sessions` (a hosted connect page for apps without React).

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pipes_core::services::{
    code_challenge, connection_intent, display_name, Authorize, FinishRequest, NewConnectSession, OwnerInput, Patch,
};
use pipes_core::slug::Slug;
use pipes_core::time::format_ms;
use pipes_core::ServiceError;
use serde::{Deserialize, Serialize};

use super::views::ConnectedAccountView;
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route("/data-integrations/{slug}/authorize", post(authorize_data_integration))
        .route(
            "/data-integrations/finish",
            post(finish_connection.layer(idempotent.clone())),
        )
        .route(
            "/pipes/connect_sessions",
            post(create_connect_session.layer(idempotent)),
        )
}

/// `POST /data-integrations/{slug}/authorize`, as sent.
#[derive(Debug, Deserialize)]
struct AuthorizeBody {
    /// Owner or acting member.
    user_id: String,
    #[serde(default)]
    organization_id: Option<String>,
    #[serde(default)]
    connection_owner: Option<String>,
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    config: Option<BTreeMap<String, String>>,
    /// `add` or `reauthorize`.
    #[serde(default)]
    connection_intent: Option<String>,
    #[serde(default)]
    connected_account_id: Option<String>,
    #[serde(default)]
    account_display_name: Patch<String>,
}

impl AuthorizeBody {
    fn parse(self) -> Result<Authorize, ApiError> {
        let choice = OwnerInput {
            connection_owner: self.connection_owner.as_deref(),
            user_id: Some(&self.user_id),
            organization_id: self.organization_id.as_deref(),
        }
        .parse(true)?;
        Ok(Authorize {
            code_challenge: code_challenge(self.code_challenge, self.code_challenge_method.as_deref())?,
            intent: connection_intent(self.connection_intent.as_deref(), self.connected_account_id.as_deref())?,
            display_name: display_name(self.account_display_name)?,
            choice,
            user_id: self.user_id,
            return_to: self.return_to,
            config: self.config.unwrap_or_default(),
            handoff: false,
        })
    }
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
    ApiJson(body): ApiJson<AuthorizeBody>,
) -> Result<Json<AuthorizeView>, ApiError> {
    let slug = slug(&raw_slug)?;
    let out = app.connect.authorize(&env, &slug, body.parse()?).await?;
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

/// `POST /pipes/connect_sessions` (Pipes' own): a hosted connect page for one user.
#[derive(Debug, Deserialize)]
struct ConnectSessionBody {
    user_id: String,
    #[serde(default)]
    organization_id: Option<String>,
    /// Offer only these providers (slugs).
    #[serde(default)]
    providers: Vec<String>,
    #[serde(default)]
    return_to: Option<String>,
    #[serde(default)]
    opener_origin: Option<String>,
}

#[derive(Debug, Serialize)]
struct ConnectSessionView {
    object: &'static str,
    url: String,
    expires_at: String,
}

async fn create_connect_session(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(body): ApiJson<ConnectSessionBody>,
) -> Result<(StatusCode, Json<ConnectSessionView>), ApiError> {
    let choice = OwnerInput {
        connection_owner: None,
        user_id: Some(&body.user_id),
        organization_id: body.organization_id.as_deref(),
    }
    .parse(true)?;
    let providers = body
        .providers
        .iter()
        .map(|p| Slug::parse(p).map_err(|e| ServiceError::invalid_field("providers", "invalid", e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let req = NewConnectSession {
        choice,
        providers,
        return_to: body.return_to,
        opener_origin: body.opener_origin,
    };
    let link = app.connect.create_session(&env, req).await?;
    Ok((
        StatusCode::CREATED,
        Json(ConnectSessionView {
            object: "connect_session",
            url: link.url.expose().to_owned(),
            expires_at: format_ms(link.expires_at),
        }),
    ))
}
