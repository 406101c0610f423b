//! What a root means for talking to its provider: display name, endpoints with config filled
//! in, and the OAuth app with its secret opened. One place for the connect flow and refreshes.

use std::collections::BTreeMap;

use crate::catalog::{Catalog, ConfigScope};
use crate::domain::{CredentialsType, DataIntegration, OrganizationSettings};
use crate::error::{FieldError, ServiceError};
use crate::oauth::{ClientApp, ResolvedProvider};
use crate::vault::{SealedColumn, Vault};

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

/// The provider's endpoints: field defaults, then the root's config, then the organization's
/// (organization-credential roots), then the connection's installation config.
pub fn resolve_provider(
    root: &DataIntegration,
    organization: Option<&OrganizationSettings>,
    installation: &BTreeMap<String, String>,
    catalog: &Catalog,
) -> Result<ResolvedProvider, ResolveError> {
    Ok(match &root.custom_provider {
        Some(cp) => ResolvedProvider::custom(root.slug.as_str(), &cp.definition),
        None => {
            let p = catalog.for_root(root).ok_or_else(|| {
                ResolveError::Provider(format!(
                    "provider '{}' ({}) is not in the catalog",
                    root.slug,
                    root.auth_method.as_str()
                ))
            })?;
            let mut config: BTreeMap<String, String> = p
                .config
                .iter()
                .filter_map(|f| f.default.clone().map(|d| (f.key.clone(), d)))
                .collect();
            config.extend(root.config.clone());
            if let Some(o) = organization.filter(|_| root.uses_organization_apps()) {
                config.extend(o.config.clone());
            }
            config.extend(installation.clone());
            ResolvedProvider::builtin(p, &config).map_err(ResolveError::Provider)?
        }
    })
}

/// The provider's endpoints and the OAuth app that talks to it: the root's, or for
/// organization-credential roots the organization's.
pub fn resolve_oauth(
    root: &DataIntegration,
    organization: Option<&OrganizationSettings>,
    installation: &BTreeMap<String, String>,
    catalog: &Catalog,
    vault: &Vault,
) -> Result<(ResolvedProvider, ClientApp), ResolveError> {
    let provider = resolve_provider(root, organization, installation, catalog)?;
    let creds = root
        .credentials
        .as_ref()
        .ok_or(ResolveError::NoApp("the integration has no OAuth app configured"))?;
    if creds.kind == CredentialsType::Organization {
        let settings = organization.ok_or(ResolveError::NoApp(
            "the organization has not registered its OAuth app for this integration",
        ))?;
        let app = settings.app.as_ref().ok_or(ResolveError::NoApp(
            "the organization has not registered its OAuth app for this integration",
        ))?;
        let row = settings.id.to_string();
        let secret = vault
            .open_secret(&app.client_secret, SealedColumn::OrganizationClientSecret.aad(&row))
            .map_err(|e| ResolveError::Vault(e.to_string()))?;
        return Ok((
            provider,
            ClientApp {
                client_id: app.client_id.clone(),
                client_secret: Some(secret),
            },
        ));
    }
    let row = root.id.to_string();
    let client_secret = creds
        .client_secret
        .as_ref()
        .map(|s| vault.open_secret(s, SealedColumn::IntegrationClientSecret.aad(&row)))
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

/// Validates installation-scope config values against the provider's fields. With `complete`,
/// required fields the root does not pin (and that have no default) must be present.
pub fn check_installation_config(
    root: &DataIntegration,
    config: BTreeMap<String, String>,
    catalog: &Catalog,
    complete: bool,
) -> Result<BTreeMap<String, String>, ServiceError> {
    let Some(p) = catalog.for_root(root) else {
        if config.is_empty() {
            return Ok(config);
        }
        return Err(ServiceError::invalid_field(
            "config",
            "not_allowed",
            "custom providers declare no config fields.",
        ));
    };
    let mut errors = vec![];
    for (key, value) in &config {
        match p.config_field(key) {
            Some(f) if f.scope == ConfigScope::Installation && f.accepts(value) => {}
            Some(f) if f.scope == ConfigScope::Installation => errors.push(FieldError::new(
                format!("config.{key}"),
                "invalid",
                format!("'{}' is not a valid {}.", value.escape_debug(), f.label),
            )),
            Some(_) => errors.push(FieldError::new(
                format!("config.{key}"),
                "integration_scoped",
                format!("config field '{key}' is set on the integration, not per connection."),
            )),
            None => errors.push(FieldError::new(
                format!("config.{key}"),
                "unknown_field",
                format!("provider '{}' declares no config field '{key}'.", p.slug),
            )),
        }
    }
    if complete {
        for f in p
            .config
            .iter()
            .filter(|f| f.scope == ConfigScope::Installation && f.required)
        {
            if !config.contains_key(&f.key) && f.default.is_none() && !root.config.contains_key(&f.key) {
                errors.push(FieldError::new(
                    format!("config.{}", f.key),
                    "required",
                    format!("config.{} ({}) is required.", f.key, f.label),
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(config)
    } else {
        Err(ServiceError::invalid_fields(errors))
    }
}

/// Orders a list of providers as people read it: by display name, ignoring case, then by slug.
pub(super) fn sort_by_provider<T>(items: &mut [T], key: impl Fn(&T) -> (&String, &crate::slug::Slug)) {
    items.sort_by(|a, b| {
        let ((name_a, slug_a), (name_b, slug_b)) = (key(a), key(b));
        name_a
            .to_lowercase()
            .cmp(&name_b.to_lowercase())
            .then(slug_a.cmp(slug_b))
    });
}
