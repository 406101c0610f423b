use std::sync::Arc;

use pipes_core::catalog::Catalog;
use std::time::Duration;

use pipes_core::oauth::OAuthClient;
use pipes_core::services::{Accounts, Connect, Credentials, Environments, Integrations, RefreshPolicy};
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
    /// Token and credential vending.
    pub credentials: Credentials,
    /// The connection flow.
    pub connect: Connect,
    /// The origin browsers and providers reach, without a trailing slash.
    pub public_url: Arc<str>,
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
    /// Wires the services over a store and a vault.
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog, public_url: &str) -> Self {
        Self::with_policy(store, vault, catalog, public_url, RefreshPolicy::default())
    }

    /// Like [`App::new`] with an explicit refresh policy.
    pub fn with_policy(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: &'static Catalog,
        public_url: &str,
        policy: RefreshPolicy,
    ) -> Self {
        let oauth = OAuthClient::new(Duration::from_secs(15));
        Self(Arc::new(AppParts {
            environments: Environments::new(store.clone()),
            integrations: Integrations::new(store.clone(), vault.clone(), catalog),
            accounts: Accounts::new(store.clone(), vault.clone(), catalog),
            connect: Connect::new(store.clone(), vault.clone(), catalog, oauth.clone(), public_url),
            credentials: Credentials::new(store.clone(), vault, catalog, oauth, policy),
            store,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }))
    }
}
