//! `/data-integrations` and `/data-integrations/{slug}[/organization]`.

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipes_core::domain::{AuthMethod, DataIntegration, Environment, Ownership};
use pipes_core::pagination::{Order, PageRequest};
use pipes_core::services::{ApiKeyInput, CreateIntegration, UpdateIntegration};

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

async fn list_data_integrations(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    query: QueryMap,
) -> Result<Json<ListView<DataIntegrationView>>, ApiError> {
    let page = PageRequest::parse(
        query.one("limit")?,
        query.one("before")?,
        query.one("after")?,
        query.one("order")?,
        Order::Desc,
    )?;
    let page = app.integrations.list(&env, query.one("ownership")?, page).await?;
    Ok(Json(ListView::from_page(page, |r| {
        DataIntegrationView::new(r, &app.public_url)
    })))
}

async fn create_data_integration(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(req): ApiJson<CreateIntegration>,
) -> Result<(StatusCode, Json<DataIntegrationView>), ApiError> {
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
    let (account, _) = app
        .stored
        .put(
            env,
            &root.slug,
            AuthMethod::ApiKey,
            false,
            key.as_request(root.ownership),
        )
        .await?;
    Ok(view.with_installation(&account))
}

async fn get_root(app: &App, env: &EnvAuth, raw_slug: &str, ownership: Ownership) -> ViewResult {
    let root = app.integrations.get(&env.0, &slug(raw_slug)?, ownership).await?;
    Ok(Json(DataIntegrationView::new(&root, &app.public_url)))
}

async fn update_root(
    app: &App,
    env: &EnvAuth,
    raw_slug: &str,
    ownership: Ownership,
    req: UpdateIntegration,
) -> ViewResult {
    let api_key = req.api_key.clone();
    let root = app
        .integrations
        .update(&env.0, &slug(raw_slug)?, ownership, req)
        .await?;
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
    ApiJson(req): ApiJson<UpdateIntegration>,
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
    ApiJson(req): ApiJson<UpdateIntegration>,
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
