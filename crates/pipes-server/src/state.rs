use std::sync::Arc;

use pipes_core::catalog::Catalog;
use pipes_core::egress::Egress;
use pipes_core::oauth::OAuthClient;
use pipes_core::services::{
    Accounts, Connect, Credentials, Deps, Environments, Events, Integrations, Organizations, StoredCredentials,
    WidgetTokens,
};
use pipes_core::webhooks::{DeliveryPolicy, Webhooks};

use pipes_core::metrics::Metrics;

use crate::limits::{Admission, ServerLimits};
use crate::settings::{JanitorPolicy, RefreshAheadPolicy, Settings};
use pipes_core::store::Store;
use pipes_core::vault::Vault;

/// Everything a request handler may use. One `Arc`, so cloning it per request is one increment.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

impl std::ops::Deref for App {
    type Target = AppParts;
    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// The parts of [`App`].
pub struct AppParts {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Environments, keys, redirect URIs.
    pub environments: Environments,
    /// Data integrations.
    pub integrations: Integrations,
    /// Connected accounts.
    pub accounts: Accounts,
    /// Memberships and per-organization settings.
    pub organizations: Organizations,
    /// API-key and client-credentials connections.
    pub stored: StoredCredentials,
    /// Token and credential vending.
    pub credentials: Credentials,
    /// The connection flow.
    pub connect: Connect,
    /// The events API.
    pub events: Events,
    /// Webhook endpoints.
    pub webhooks: Webhooks,
    /// Widget and Client API tokens.
    pub widget_tokens: WidgetTokens,
    /// How webhooks are delivered.
    pub delivery: DeliveryPolicy,
    /// What the janitor keeps.
    pub janitor: JanitorPolicy,
    /// Proactive refresh.
    pub refresh_ahead: RefreshAheadPolicy,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// The built-in providers.
    pub catalog: &'static Catalog,
    /// The origin browsers and providers reach, without a trailing slash.
    pub public_url: Arc<str>,
    /// The client for every outbound request.
    pub egress: Egress,
    /// Seals what the server itself keeps (replayed answers).
    pub vault: Vault,
    /// Limits of incoming requests.
    pub limits: ServerLimits,
    /// The checks before routing.
    pub admission: Admission,
}

impl std::fmt::Debug for AppParts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppParts")
            .field("backend", &self.store.backend())
            .finish()
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("backend", &self.store.backend())
            .field("public_url", &self.public_url)
            .finish()
    }
}

impl App {
    /// Whether browsers reach this server over https (cookies are then `Secure`).
    pub fn is_https(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// Wires the services over a store and a vault.
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog, public_url: &str) -> Self {
        Self::with_settings(store, vault, catalog, public_url, Settings::default())
    }

    /// Like [`App::new`] with explicit settings.
    pub fn with_settings(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: &'static Catalog,
        public_url: &str,
        settings: Settings,
    ) -> Self {
        // Each service is built once, here, and handed to those that use it.
        let metrics = Arc::new(Metrics::default());
        let egress = Egress::new(settings.egress);
        let organizations = Organizations::new(store.clone(), vault.clone(), catalog);
        let deps = Deps {
            store: store.clone(),
            vault: vault.clone(),
            catalog,
            organizations: organizations.clone(),
            oauth: OAuthClient::new(egress.clone()),
        };
        Self(Arc::new(AppParts {
            metrics: metrics.clone(),
            environments: Environments::new(store.clone()),
            integrations: Integrations::new(store.clone(), vault.clone(), catalog, egress.clone()),
            accounts: Accounts::new(deps.clone()),
            widget_tokens: WidgetTokens::new(organizations.clone(), vault.clone()),
            stored: StoredCredentials::new(deps.clone()),
            connect: Connect::new(deps.clone(), public_url),
            events: Events::new(store.clone()),
            webhooks: Webhooks::new(store.clone(), vault.clone(), egress.clone()),
            vault,
            credentials: Credentials::new(deps, settings.refresh, metrics.clone()),
            organizations,
            delivery: settings.delivery,
            janitor: settings.janitor,
            refresh_ahead: settings.refresh_ahead,
            catalog,
            store,
            public_url: Arc::from(public_url.trim_end_matches('/')),
            egress,
            admission: Admission::new(&settings.limits),
            limits: settings.limits,
        }))
    }
}
