//! `<Pipes/>`: a user's own connections, and the organization's shared ones they can use.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use pipes_core::domain::ConnectionIntent;
use pipes_core::fields::Labels;
use pipes_core::secret::SecretString;
use pipes_core::services::{Authorize, AuthorizeOutcome, Intent, Listing, OwnerChoice, StoreCredential, TenantSecret};
use serde::{Deserialize, Serialize};

use super::views::{Data, OrganizationView, RowView, SettingsView, SharedView};
use super::{deleted, preflight, Widget};
use crate::api::views::ConnectedAccountView;
use crate::error::ApiError;
use crate::extract::{slug, ApiJson};
use crate::state::App;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/_widgets/DataIntegrations/mine", preflight(get(mine)))
        .route("/_widgets/settings", preflight(get(settings)))
        .route(
            "/_widgets/DataIntegrations/{slug}/authorize",
            preflight(post(authorize::<false>)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/api-key",
            preflight(put(api_key::<false>)),
        )
        .route(
            "/_widgets/DataIntegrations/{slug}/client-credentials",
            preflight(put(client_credentials::<false>)),
        )
        .route(
            "/_widgets/DataIntegrations/installations/{id}",
            preflight(delete(disconnect::<false>)),
        )
        .route(
            "/_widgets/DataIntegrations/shared-connections",
            preflight(get(shared_connections)),
        )
        .route("/_widgets/UserManagement/organizations", preflight(get(organizations)))
}

type Answer<T> = Result<Json<T>, ApiError>;

/// P1: what the user's organization enabled, and whatever the user is still connected to.
async fn mine(State(app): State<App>, w: Widget) -> Answer<Data<RowView>> {
    let listing = Listing {
        plural: true,
        keep_connected: true,
    };
    let rows = app.accounts.data_providers(&w.env, &w.member()?, listing).await?;
    Ok(Json(Data {
        data: rows.iter().map(|l| RowView::new(l, app.catalog)).collect(),
    }))
}

/// P2.
async fn settings(State(app): State<App>, w: Widget) -> Answer<SettingsView> {
    Ok(Json(SettingsView::new(&w.env, &app.public_url)))
}

/// P3 and A5: the connection's config fields. (`requireHandoff`, which the widget always sends,
/// is not read: every widget flow is a handoff flow.)
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct AuthorizeBody {
    config: Option<BTreeMap<String, String>>,
}

/// Where the widget sends its popup, and the tokens of the handoff.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AuthorizeView {
    url: String,
    redirect_token: String,
    handoff_token: Option<String>,
}

/// Whose connection a handler acts on: the token's user's own (`SHARED = false`, `<Pipes/>`)
/// or, for an administrator, the organization's shared one (`SHARED = true`, `<PipesAdmin/>`).
fn owner<const SHARED: bool>(w: &Widget) -> Result<OwnerChoice, ApiError> {
    if SHARED {
        w.managed_organization()?;
        w.shared()
    } else {
        w.member()
    }
}

/// P3 and A5: a handoff flow for the compatibility connection (connect or reauthorize).
pub(super) async fn authorize<const SHARED: bool>(
    State(app): State<App>,
    w: Widget,
    Path(raw_slug): Path<String>,
    ApiJson(body): ApiJson<AuthorizeBody>,
) -> Answer<AuthorizeView> {
    let choice = owner::<SHARED>(&w)?;
    let slug = slug(&raw_slug)?;
    let req = Authorize {
        user_id: w.user_id()?,
        choice,
        return_to: None,
        code_challenge: None,
        config: body.config.unwrap_or_default(),
        intent: ConnectionIntent::Compatibility,
        display_name: None,
        handoff: true,
    };
    let AuthorizeOutcome {
        url,
        state,
        handoff_token,
        ..
    } = app.connect.authorize(&w.env, &slug, req).await?;
    Ok(Json(AuthorizeView {
        url,
        redirect_token: state,
        handoff_token: handoff_token.map(|t| t.expose().to_owned()),
    }))
}

/// P4 and A6: `{secret}`.
#[derive(Debug, Deserialize)]
pub(super) struct ApiKeyBody {
    secret: Option<SecretString>,
}

/// P5 and A7: `client_id`, `client_secret` and, when sent, the whole installation config.
#[derive(Debug, Deserialize)]
pub(super) struct ClientCredentialsBody {
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    /// Replaces the stored config wholesale when present.
    #[serde(default)]
    config: Option<BTreeMap<String, String>>,
}

/// Stores a credential as the compatibility connection of `choice`: created, or replaced.
async fn store(
    app: &App,
    w: &Widget,
    raw_slug: &str,
    choice: OwnerChoice,
    secret: TenantSecret,
    config: Option<BTreeMap<String, String>>,
) -> Answer<ConnectedAccountView> {
    let slug = slug(raw_slug)?;
    let req = StoreCredential {
        choice,
        intent: Intent::Compatibility,
        secret,
        labels: Labels::default(),
        config,
    };
    let (account, _) = app.stored.put(&w.env, &slug, req).await?;
    Ok(Json(ConnectedAccountView::new(&account)))
}

/// P4 and A6: an API key, as the widget sends it (trimmed).
pub(super) async fn api_key<const SHARED: bool>(
    State(app): State<App>,
    w: Widget,
    Path(raw_slug): Path<String>,
    ApiJson(body): ApiJson<ApiKeyBody>,
) -> Answer<ConnectedAccountView> {
    let choice = owner::<SHARED>(&w)?;
    let secret = TenantSecret::api_key(body.secret.map(|s| SecretString::new(s.expose().trim())))?;
    store(&app, &w, &raw_slug, choice, secret, None).await
}

/// P5 and A7.
pub(super) async fn client_credentials<const SHARED: bool>(
    State(app): State<App>,
    w: Widget,
    Path(raw_slug): Path<String>,
    ApiJson(body): ApiJson<ClientCredentialsBody>,
) -> Answer<ConnectedAccountView> {
    let choice = owner::<SHARED>(&w)?;
    let secret = TenantSecret::client(body.client_id, body.client_secret)?;
    store(&app, &w, &raw_slug, choice, secret, body.config).await
}

/// P6 and A8.
pub(super) async fn disconnect<const SHARED: bool>(
    State(app): State<App>,
    w: Widget,
    Path(id): Path<String>,
) -> Answer<serde_json::Value> {
    let choice = owner::<SHARED>(&w)?;
    app.accounts.delete_owned(&w.env, &choice, &id).await?;
    Ok(deleted())
}

/// P7: the organization's shared connections the user may use.
async fn shared_connections(State(app): State<App>, w: Widget) -> Answer<Data<SharedView>> {
    let listing = Listing {
        plural: true,
        keep_connected: false,
    };
    let rows = app.accounts.data_providers(&w.env, &w.shared()?, listing).await?;
    Ok(Json(Data {
        data: rows
            .iter()
            .filter(|l| !l.listed.is_empty())
            .map(|l| SharedView::new(l, app.catalog))
            .collect(),
    }))
}

/// P8 and A9: the token's organization (Pipes knows organizations by id only).
pub(super) async fn organizations(w: Widget) -> Answer<Data<OrganizationView>> {
    Ok(Json(Data {
        data: w
            .organization()
            .ok()
            .map(|id| OrganizationView {
                id: id.to_owned(),
                name: id.to_owned(),
                current: true,
            })
            .into_iter()
            .collect(),
    }))
}
