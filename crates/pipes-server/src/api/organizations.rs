//! An organization's provider settings (`/organizations/{id}/data_integration_configurations`)
//! and Pipes' membership API (`/pipes/organizations/{id}/memberships/{user_id}`), through which
//! the application declares who is an active member.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use std::collections::BTreeMap;

use pipes_core::secret::SecretString;
use pipes_core::services::{ConfigureIntegration, Patch};
use serde::Deserialize;

use super::views::{ConfigurationView, MembershipView, PlainList};
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/organizations/{organization_id}/data_integration_configurations",
            get(list_configurations),
        )
        .route(
            "/organizations/{organization_id}/data_integration_configurations/{slug}",
            put(configure),
        )
        .route(
            "/pipes/organizations/{organization_id}/memberships",
            get(list_memberships),
        )
        .route(
            "/pipes/organizations/{organization_id}/memberships/{user_id}",
            put(put_membership).delete(end_membership),
        )
}

async fn list_configurations(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(organization_id): Path<String>,
) -> Result<Json<PlainList<ConfigurationView>>, ApiError> {
    let list = app.organizations.configurations(&env, &organization_id).await?;
    Ok(Json(PlainList {
        object: "list",
        data: list
            .iter()
            .map(|c| ConfigurationView::new(c, &app.public_url))
            .collect(),
    }))
}

/// `PUT …/data_integration_configurations/{slug}`, as sent (the admin widget sends the same).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConfigureBody {
    enabled: Option<bool>,
    scopes: Patch<Vec<String>>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    config: Option<BTreeMap<String, String>>,
}

impl ConfigureBody {
    pub(crate) fn parse(self) -> Result<ConfigureIntegration, ApiError> {
        Ok(ConfigureIntegration::parse(
            self.enabled,
            self.scopes,
            self.client_id,
            self.client_secret,
            self.config,
        )?)
    }
}

async fn configure(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, raw_slug)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> Result<Json<ConfigurationView>, ApiError> {
    let req = body.parse()?;
    let c = app
        .organizations
        .configure(&env, &organization_id, &slug(&raw_slug)?, req)
        .await?;
    Ok(Json(ConfigurationView::new(&c, &app.public_url)))
}

async fn list_memberships(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(organization_id): Path<String>,
) -> Result<Json<PlainList<MembershipView>>, ApiError> {
    let members = app.organizations.members(&env, &organization_id).await?;
    Ok(Json(PlainList {
        object: "list",
        data: members.iter().map(MembershipView::new).collect(),
    }))
}

/// `PUT …/memberships/{user_id}`: `{"status": "active" | "inactive"}` (default active).
#[derive(Debug, Default, Deserialize)]
struct PutMembership {
    #[serde(default)]
    status: Option<String>,
}

async fn put_membership(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, user_id)): Path<(String, String)>,
    ApiJson(req): ApiJson<PutMembership>,
) -> Result<Json<MembershipView>, ApiError> {
    let active = match req.status.as_deref() {
        None | Some("active") => true,
        Some("inactive") => false,
        Some(_) => {
            return Err(pipes_core::ServiceError::invalid_field(
                "status",
                "invalid",
                "status must be active or inactive.",
            )
            .into())
        }
    };
    let (m, _) = app
        .organizations
        .set_membership(&env, &organization_id, &user_id, active)
        .await?;
    Ok(Json(MembershipView::new(&m)))
}

async fn end_membership(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path((organization_id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app.organizations
        .set_membership(&env, &organization_id, &user_id, false)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
