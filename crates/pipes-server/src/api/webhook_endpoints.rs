//! `/webhook_endpoints` (contract §4.16).

use axum::extract::{Path, State};
use axum::handler::Handler;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use pipes_core::pagination::Order;
use pipes_core::webhooks::{CreateWebhookEndpoint, UpdateWebhookEndpoint};
use serde::Deserialize;

use super::views::{ListView, WebhookEndpointView};
use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::{ApiJson, QueryMap};
use crate::state::App;

pub fn routes(app: &App) -> Router<App> {
    let idempotent = axum::middleware::from_fn_with_state(app.clone(), crate::idempotency::idempotent);
    Router::new()
        .route(
            "/webhook_endpoints",
            get(list_endpoints).post(create_endpoint.layer(idempotent)),
        )
        .route(
            "/webhook_endpoints/{id}",
            get(get_endpoint).patch(update_endpoint).delete(delete_endpoint),
        )
}

type ViewResult = Result<Json<WebhookEndpointView>, ApiError>;

/// `POST /webhook_endpoints`, as sent.
#[derive(Debug, Deserialize)]
struct CreateBody {
    endpoint_url: String,
    events: Vec<String>,
}

/// `PATCH /webhook_endpoints/{id}`, as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct UpdateBody {
    endpoint_url: Option<String>,
    /// `enabled` or `disabled`.
    status: Option<String>,
    events: Option<Vec<String>>,
}

async fn list_endpoints(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    query: QueryMap,
) -> Result<Json<ListView<WebhookEndpointView>>, ApiError> {
    let page = query.page(Order::Desc)?;
    let page = app.webhooks.list(&env, page).await?;
    Ok(Json(ListView::from_page(page, WebhookEndpointView::new)))
}

async fn create_endpoint(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    ApiJson(body): ApiJson<CreateBody>,
) -> Result<(StatusCode, Json<WebhookEndpointView>), ApiError> {
    let req = CreateWebhookEndpoint::parse(&body.endpoint_url, &body.events)?;
    let created = app.webhooks.create(&env, req).await?;
    Ok((StatusCode::CREATED, Json(WebhookEndpointView::new(&created))))
}

async fn get_endpoint(State(app): State<App>, EnvAuth(env): EnvAuth, Path(id): Path<String>) -> ViewResult {
    let endpoint = app.webhooks.get_opened(&env, &id).await?;
    Ok(Json(WebhookEndpointView::new(&endpoint)))
}

async fn update_endpoint(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateBody>,
) -> ViewResult {
    let req = UpdateWebhookEndpoint::parse(
        body.endpoint_url.as_deref(),
        body.status.as_deref(),
        body.events.as_deref(),
    )?;
    let endpoint = app.webhooks.update(&env, &id, req).await?;
    Ok(Json(WebhookEndpointView::new(&endpoint)))
}

async fn delete_endpoint(
    State(app): State<App>,
    EnvAuth(env): EnvAuth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.webhooks.delete(&env, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
