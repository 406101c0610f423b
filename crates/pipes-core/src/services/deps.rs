//! What the services that read and write connections share, built once by whoever wires the
//! services (the server's state) and cloned into each.

use std::sync::Arc;

use super::organizations::Organizations;
use crate::catalog::Catalog;
use crate::oauth::OAuthClient;
use crate::store::Store;
use crate::vault::Vault;

/// The store, the vault, the catalog, the organizations service and the OAuth client.
#[derive(Clone)]
pub struct Deps {
    /// The database.
    pub store: Arc<dyn Store>,
    /// Seals and opens secrets.
    pub vault: Vault,
    /// The built-in providers.
    pub catalog: &'static Catalog,
    /// Memberships and per-organization settings.
    pub organizations: Organizations,
    /// Talks to providers' token endpoints.
    pub oauth: OAuthClient,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deps")
    }
}
