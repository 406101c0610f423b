//! The WorkOS-compatible REST API, one module per resource.

mod connect;
mod connected_accounts;
mod data_integrations;
mod events;
pub(crate) mod organizations;
mod stored_credentials;
mod vending;
pub mod views;
mod webhook_endpoints;
mod widget_tokens;

use axum::Router;

use crate::state::App;

/// Every API route.
pub fn routes(app: &App) -> Router<App> {
    Router::new()
        .merge(data_integrations::routes(app))
        .merge(vending::routes())
        .merge(connect::routes(app))
        .merge(connected_accounts::routes(app))
        .merge(events::routes())
        .merge(organizations::routes())
        .merge(stored_credentials::routes(app))
        .merge(webhook_endpoints::routes(app))
        .merge(widget_tokens::routes())
}
