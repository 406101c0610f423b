//! The WorkOS-compatible REST API, one module per resource.

mod data_integrations;
pub mod views;

use axum::Router;

use crate::state::App;

/// Every API route.
pub fn routes(app: &App) -> Router<App> {
    Router::new().merge(data_integrations::routes(app))
}
