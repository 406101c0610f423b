//! `/data-integrations` and `/data-integrations/{slug}[/organization]`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipes_core::domain::{DataIntegration, Environment, Ownership};
use pipes_core::fields;
use pipes_core::pagination::Order;
use pipes_core::secret::SecretString;
use pipes_core::services::{
    ApiKeyInput, CreateIntegration, CredentialsInput, CustomProviderInput, OwnerInput, Patch, UpdateIntegration,
};
use pipes_core::slug::Slug;
use pipes_core::ServiceError;
use serde::Deserialize;

use super::views::{DataIntegrationView, ListView};
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson, QueryMap};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route(
            "/data-integrations",
            get(list_data_integrations).post(create_data_integration.layer(idempotent)),
        )
        .route(
            "/data-integrations/{slug}",
            get(get_user_root).put(update_user_root).delete(delete_user_root),
        )
        .route(
            "/data-integrations/{slug}/organization",
            get(get_organization_root)
                .put(update_organization_root)
                .delete(delete_organization_root),
        )
}

type ViewResult = Result<Json<DataIntegrationView>, ApiError>;

/// `POST /data-integrations`, as sent.
#[derive(Debug, Deserialize)]
struct CreateBody {
    provider: String,
    #[serde(default)]
    ownership: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    auth_methods: Option<Vec<String>>,
    #[serde(default)]
    config: Option<BTreeMap<String, String>>,
    #[serde(default)]
    credentials: Option<CredentialsInput>,
    #[serde(default)]
    api_key: Option<ApiKeyBody>,
    #[serde(default)]
    custom_provider: Option<CustomProviderInput>,
}

/// `PUT /data-integrations/{slug}[/organization]`, as sent (every field optional).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateBody {
    description: Patch<String>,
    enabled: Option<bool>,
    scopes: Patch<Vec<String>>,
    credentials: Option<CredentialsInput>,
    api_key: Option<ApiKeyBody>,
    custom_provider: Option<CustomProviderInput>,
}

/// `api_key` in both bodies: the first tenant of an API-key integration.
#[derive(Debug, Deserialize)]
struct ApiKeyBody {
    secret: SecretString,
    user_id: String,
    #[serde(default)]
    organization_id: Option<String>,
}

impl ApiKeyBody {
    fn parse(self, ownership: Ownership) -> Result<ApiKeyInput, ServiceError> {
        let choice = OwnerInput {
            connection_owner: Some(ownership.as_str()),
            user_id: Some(&self.user_id),
            organization_id: self.organization_id.as_deref(),
        }
        .parse(true)?;
        Ok(ApiKeyInput {
            secret: self.secret,
            choice,
        })
    }
}

impl CreateBody {
    fn parse(self) -> Result<CreateIntegration, ServiceError> {
        let provider = Slug::parse(&self.provider)
            .map_err(|e| ServiceError::invalid_field("provider", "invalid", e.to_string()))?;
        let ownership = self
            .ownership
            .as_deref()
            .map(fields::ownership)
            .transpose()?
            .unwrap_or(Ownership::User);
        Ok(CreateIntegration {
            provider,
            ownership,
            auth_method: self.auth_methods.as_deref().map(fields::auth_methods).transpose()?,
            description: self.description,
            enabled: self.enabled.unwrap_or(false),
            scopes: self.scopes,
            config: self.config.unwrap_or_default(),
            credentials: self.credentials,
            api_key: self.api_key.map(|k| k.parse(ownership)).transpose()?,
            custom_provider: self.custom_provider,
        })
    }
}

impl UpdateBody {
    fn parse(self, ownership: Ownership) -> Result<UpdateIntegration, ServiceError> {
        Ok(UpdateIntegration {
            description: self.description,
            enabled: self.enabled,
            scopes: self.scopes,
            credentials: self.credentials,
            api_key: self.api_key.map(|k| k.parse(ownership)).transpose()?,
            custom_provider: self.custom_provider,
        })
    }
}

async fn list_data_integrations(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    query: QueryMap,
) -> Result<Json<ListView<DataIntegrationView>>, ApiError> {
    let page = query.page(Order::Desc)?;
    let ownership = query.one("ownership")?.map(fields::ownership).transpose()?;
    let page = app.integrations.list(&env, ownership, page).await?;
    Ok(Json(ListView::from_page(page, |r| {
        DataIntegrationView::new(r, &app.public_url)
    })))
}

async fn create_data_integration(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<DataIntegrationView>), ApiError> {
    let req = body.parse()?;
    let api_key = req.api_key.clone();
    let root = app.integrations.create(&env, req).await?;
    let view = install_api_key(&app, &env, &root, api_key).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The view of a root after installing the tenant of its `api_key` block, if it had one.
async fn install_api_key(
    app: &App,
    env: &Environment,
    root: &DataIntegration,
    api_key: Option<ApiKeyInput>,
) -> Result<DataIntegrationView, ApiError> {
    let view = DataIntegrationView::new(root, &app.public_url);
    let Some(key) = api_key else { return Ok(view) };
    let (account, _) = app.stored.put(env, &root.slug, key.command()?).await?;
    Ok(view.with_installation(&account))
}

async fn get_root(app: &App, env: &EnvAuth, raw_slug: &str, ownership: Ownership) -> ViewResult {
    let root = app.integrations.get(&env.0, &slug(raw_slug)?, ownership).await?;
    Ok(Json(DataIntegrationView::new(&root, &app.public_url)))
}

async fn update_root(app: &App, env: &EnvAuth, raw_slug: &str, ownership: Ownership, body: UpdateBody) -> ViewResult {
    let slug = slug(raw_slug)?;
    let req = body.parse(ownership)?;
    let api_key = req.api_key.clone();
    let root = app.integrations.update(&env.0, &slug, ownership, req).await?;
    Ok(Json(install_api_key(app, &env.0, &root, api_key).await?))
}

async fn delete_root(app: &App, env: &EnvAuth, raw_slug: &str, ownership: Ownership) -> Result<StatusCode, ApiError> {
    app.integrations.delete(&env.0, &slug(raw_slug)?, ownership).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn get_user_root(State(app): State<App>, env: EnvAuth, Path(slug): Path<String>) -> ViewResult {
    get_root(&app, &env, &slug, Ownership::User).await
}

async fn update_user_root(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<UpdateBody>,
) -> ViewResult {
    update_root(&app, &env, &slug, Ownership::User, req).await
}

async fn delete_user_root(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_root(&app, &env, &slug, Ownership::User).await
}

async fn get_organization_root(State(app): State<App>, env: EnvAuth, Path(slug): Path<String>) -> ViewResult {
    get_root(&app, &env, &slug, Ownership::Organization).await
}

async fn update_organization_root(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
    ApiJson(req): ApiJson<UpdateBody>,
) -> ViewResult {
    update_root(&app, &env, &slug, Ownership::Organization, req).await
}

async fn delete_organization_root(
    State(app): State<App>,
    env: EnvAuth,
    Path(slug): Path<String>,
) -> Result<StatusCode, ApiError> {
    delete_root(&app, &env, &slug, Ownership::Organization).await
}
