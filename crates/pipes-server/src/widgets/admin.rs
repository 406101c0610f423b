//! `<PipesAdmin/>`: an organization administrator (`widgets:pipes:manage`) configures which
//! providers members may connect, with which scopes and OAuth app, and manages the
//! organization's shared connections.

use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use pipes_core::domain::Ownership;
use pipes_core::services::Listing;

use super::member::{api_key, authorize, client_credentials, disconnect};
use super::views::{ConfigurationView, Data, OrganizationRowView};
use super::{preflight, Widget};
use crate::api::organizations::ConfigureBody;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route(
            "/_widgets/DataIntegrations/configurations",
            preflight(get(configurations)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/configuration",
            preflight(put(configure_member)),
        )
        .route(
            "/_widgets/DataIntegrations/organization",
            preflight(get(organization_rows)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/organization/configuration",
            preflight(put(configure_shared)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/organization/authorize",
            preflight(post(authorize::<true>)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/organization/api-key",
            preflight(put(api_key::<true>)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/organization/client-credentials",
            preflight(put(client_credentials::<true>)),
        )
        .route(
            "/_widgets/DataIntegrations/organization/installations/{id}",
            preflight(delete(disconnect::<true>)),
        )
}

type Answer<T> = Result<Json<T>, ApiError>;

/// A1: every provider members connect on their own, as the organization has it.
async fn configurations(State(app): State<App>, w: Widget) -> Answer<Data<ConfigurationView>> {
    let org = w.managed_organization()?;
    let list = app.organizations.configurations(&w.env, org).await?;
    Ok(Json(Data {
        data: list
            .iter()
            .map(|c| ConfigurationView::new(c, app.catalog, &app.public_url))
            .collect(),
    }))
}

async fn configure(
    app: &App,
    w: &Widget,
    raw_slug: &str,
    ownership: Ownership,
    body: ConfigureBody,
) -> Answer<ConfigurationView> {
    let org = w.managed_organization()?;
    let slug = slug(raw_slug)?;
    let req = body.parse()?;
    let c = app
        .organizations
        .configure_ownership(&w.env, org, &slug, ownership, req)
        .await?;
    Ok(Json(ConfigurationView::new(&c, app.catalog, &app.public_url)))
}

async fn configure_member(
    State(app): State<App>,
    w: Widget,
    Path(raw_slug): Path<String>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> Answer<ConfigurationView> {
    configure(&app, &w, &raw_slug, Ownership::User, body).await
}

async fn configure_shared(
    State(app): State<App>,
    w: Widget,
    Path(raw_slug): Path<String>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> Answer<ConfigurationView> {
    configure(&app, &w, &raw_slug, Ownership::Organization, body).await
}

/// A3: every organization-owned provider with its configuration, the organization's
/// connection and what the administrator may do.
async fn organization_rows(State(app): State<App>, w: Widget) -> Answer<Data<OrganizationRowView>> {
    let org = w.managed_organization()?;
    let configurations = app
        .organizations
        .configurations_of(&w.env, org, Ownership::Organization)
        .await?;
    let listing = Listing {
        plural: true,
        keep_connected: true,
    };
    let listings = app.accounts.data_providers(&w.env, &w.shared()?, listing).await?;
    Ok(Json(Data {
        data: configurations
            .iter()
            .map(|c| {
                let accounts = listings
                    .iter()
                    .find(|l| l.root.id == c.root.id)
                    .map_or(&[][..], |l| &l.listed[..]);
                OrganizationRowView::new(c, accounts, app.catalog, &app.public_url)
            })
            .collect(),
    }))
}
