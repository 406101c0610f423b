//! The Pipes HTTP server: the WorkOS-compatible API at the host root.
#![forbid(unsafe_code)]

pub mod api;
mod auth;
mod error;
mod extract;
mod hosted;
mod idempotency;
pub mod jobs;
mod limits;
mod listen;
mod middleware;
mod settings;
mod state;
mod widgets;

use axum::routing::get;
use axum::Router;

pub use auth::EnvAuth;
pub use error::ApiError;
pub use limits::{Rate, ServerLimits};
pub use listen::{raise_descriptor_limit, serve};
pub use settings::{JanitorPolicy, RefreshAheadPolicy, Settings};
pub use state::App;

/// The full router: API, health checks, and JSON answers for everything else.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(api::routes(&app))
        // The API's JSON bodies are read with the limit by `ApiJson`; the hosted pages' forms
        // by axum's extractors, which take it from this layer.
        .merge(hosted::routes().layer(axum::extract::DefaultBodyLimit::max(app.limits.max_body_bytes)))
        .merge(widgets::routes(&app))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(middleware::no_route)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(app.clone(), middleware::edge))
        .with_state(app)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Prometheus text format. Unauthenticated, like the health checks: it names providers and
/// counts, never an owner, a tenant or a secret. Keep it off the public network.
async fn metrics(axum::extract::State(app): axum::extract::State<App>) -> impl axum::response::IntoResponse {
    (
        [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

async fn readyz(
    axum::extract::State(app): axum::extract::State<App>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    app.store
        .ping()
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    Ok(axum::Json(
        serde_json::json!({ "status": "ready", "database": app.store.backend() }),
    ))
}
