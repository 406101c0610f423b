//! What a root means for talking to its provider: display name, endpoints with config filled
//! in, and the OAuth app with its secret opened. One place for the connect flow and refreshes.

use std::collections::BTreeMap;

use super::integrations::CLIENT_SECRET_PURPOSE;
use crate::catalog::Catalog;
use crate::domain::{CredentialsType, DataIntegration};
use crate::oauth::{ClientApp, ResolvedProvider};
use crate::vault::{Aad, Vault};

/// The display name of a root's provider (a custom provider's own name).
pub fn provider_name(root: &DataIntegration, catalog: &Catalog) -> String {
    match &root.custom_provider {
        Some(cp) => cp.definition.name.clone(),
        None => catalog
            .get(root.slug.as_str())
            .map_or_else(|| root.slug.to_string(), |p| p.name.clone()),
    }
}

/// Why a root cannot be used with its provider right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The root's provider or config cannot produce endpoints.
    Provider(String),
    /// The root has no usable OAuth app.
    NoApp(&'static str),
    /// The stored secret did not open.
    Vault(String),
}

impl std::fmt::Display for ResolveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Provider(m) | Self::Vault(m) => f.write_str(m),
            Self::NoApp(m) => f.write_str(m),
        }
    }
}

/// The provider's endpoints (field defaults, then the root's config, then the connection's
/// installation config) and the root's OAuth app.
pub fn resolve_oauth(
    root: &DataIntegration,
    installation: &BTreeMap<String, String>,
    catalog: &Catalog,
    vault: &Vault,
) -> Result<(ResolvedProvider, ClientApp), ResolveError> {
    let provider = match &root.custom_provider {
        Some(cp) => ResolvedProvider::custom(root.slug.as_str(), &cp.definition),
        None => {
            let p = catalog
                .get(root.slug.as_str())
                .ok_or_else(|| ResolveError::Provider(format!("provider '{}' is not in the catalog", root.slug)))?;
            let mut config: BTreeMap<String, String> = p
                .config
                .iter()
                .filter_map(|f| f.default.clone().map(|d| (f.key.clone(), d)))
                .collect();
            config.extend(root.config.clone());
            config.extend(installation.clone());
            ResolvedProvider::builtin(p, &config).map_err(ResolveError::Provider)?
        }
    };
    let creds = root
        .credentials
        .as_ref()
        .ok_or(ResolveError::NoApp("the integration has no OAuth app configured"))?;
    if creds.kind == CredentialsType::Organization {
        return Err(ResolveError::NoApp("organization OAuth apps are not supported yet"));
    }
    let row = root.id.to_string();
    let client_secret = creds
        .client_secret
        .as_ref()
        .map(|s| {
            vault.open_secret(
                s,
                Aad {
                    purpose: CLIENT_SECRET_PURPOSE,
                    row_id: &row,
                },
            )
        })
        .transpose()
        .map_err(|e| ResolveError::Vault(e.to_string()))?;
    Ok((
        provider,
        ClientApp {
            client_id: creds.client_id.clone().unwrap_or_default(),
            client_secret,
        },
    ))
}
