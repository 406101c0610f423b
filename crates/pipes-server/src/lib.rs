//! The Pipes HTTP server: the WorkOS-compatible API at the host root.
#![forbid(unsafe_code)]

pub mod api;
mod auth;
mod error;
mod extract;
mod hosted;
mod idempotency;
pub mod jobs;
mod middleware;
mod settings;
mod state;
mod widgets;

use std::future::Future;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

pub use auth::EnvAuth;
pub use error::ApiError;
pub use settings::{JanitorPolicy, RefreshAheadPolicy, Settings};
pub use state::App;

/// The full router: API, health checks, and JSON answers for everything else.
pub fn router(app: App) -> Router {
    Router::new()
        .merge(api::routes(&app))
        .merge(hosted::routes())
        .merge(widgets::routes(&app))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(middleware::no_route)
        .method_not_allowed_fallback(middleware::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            middleware::panic_response,
        ))
        .layer(axum::middleware::from_fn(middleware::edge))
        .with_state(app)
}

/// Serves, with the background workers, until `shutdown` resolves; then finishes in-flight
/// requests and lets deliveries in flight record their outcome.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = jobs::Jobs::start(&app);
    let grace = app.delivery.timeout + std::time::Duration::from_secs(1);
    let served = axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown)
        .await;
    jobs.stop(grace).await;
    served
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
