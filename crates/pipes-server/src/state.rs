use std::sync::Arc;

use pipes_core::catalog::Catalog;
use pipes_core::services::{Environments, Integrations};
use pipes_core::store::Store;
use pipes_core::vault::Vault;

/// Everything a request handler may use. Cheap to clone.
#[derive(Clone)]
pub struct App {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Environments, keys, redirect URIs.
    pub environments: Environments,
    /// Data integrations.
    pub integrations: Integrations,
    /// The origin browsers and providers reach, without a trailing slash.
    pub public_url: Arc<str>,
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
    /// Wires the services over a store and a vault.
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog, public_url: &str) -> Self {
        Self {
            environments: Environments::new(store.clone()),
            integrations: Integrations::new(store.clone(), vault, catalog),
            store,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }
    }
}
