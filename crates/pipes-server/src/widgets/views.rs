//! The objects the widgets read (camelCase where the widget's types say so), built from the
//! services' answers. Installations are the API's connected-account view.

use std::collections::BTreeMap;

use pipes_core::catalog::{Catalog, ConfigScope};
use pipes_core::domain::{
    AccountState, AuthMethod, ConnectedAccount, DataIntegration, Effective, Environment, Ownership,
};
use pipes_core::services::{organization_redirect_uri, Configuration, ProviderListing};
use pipes_core::time::format_ms;
use serde::Serialize;

use crate::api::views::ConnectedAccountView;

/// `{data: [...]}`.
#[derive(Debug, Serialize)]
pub struct Data<T: Serialize> {
    /// The items.
    pub data: Vec<T>,
}

/// A declared config field.
#[derive(Debug, Serialize)]
pub struct ConfigFieldView {
    key: String,
    label: String,
    required: bool,
    scope: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    example: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    secret: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default: Option<String>,
    order: usize,
}

fn config_fields(root: &DataIntegration, catalog: &Catalog) -> Vec<ConfigFieldView> {
    let Some(provider) = catalog.for_root(root) else {
        return Vec::new();
    };
    provider
        .config
        .iter()
        .enumerate()
        .map(|(order, f)| ConfigFieldView {
            key: f.key.clone(),
            label: f.label.clone(),
            required: f.required,
            scope: match f.scope {
                ConfigScope::Integration => "integration",
                ConfigScope::Installation => "installation",
            },
            description: f.description.clone(),
            example: f.example.clone(),
            pattern: f.pattern.clone(),
            secret: f.secret,
            default: f.default.clone(),
            order,
        })
        .collect()
}

fn ownership(root: &DataIntegration) -> &'static str {
    match root.ownership {
        Ownership::User => "userland_user",
        Ownership::Organization => "organization",
    }
}

fn credentials_type(root: &DataIntegration) -> &'static str {
    root.credentials.as_ref().map_or("custom", |c| c.kind.as_str())
}

/// What every provider row shares: identity, how it connects, its fields.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    object: &'static str,
    id: String,
    name: String,
    description: Option<String>,
    slug: String,
    integration_type: String,
    ownership: &'static str,
    auth_methods: [&'static str; 1],
    config_fields: Vec<ConfigFieldView>,
    config: BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
}

impl Provider {
    fn new(object: &'static str, root: &DataIntegration, name: &str, catalog: &Catalog) -> Self {
        Self {
            object,
            id: root.id.to_string(),
            name: name.to_owned(),
            description: root.description.clone(),
            slug: root.slug.to_string(),
            integration_type: root.slug.to_string(),
            ownership: ownership(root),
            auth_methods: [root.auth_method.as_str()],
            config_fields: config_fields(root, catalog),
            config: root.config.clone(),
            created_at: format_ms(root.created_at),
            updated_at: format_ms(root.updated_at),
        }
    }
}

/// A `<Pipes/>` row (`GET …/mine`): a provider with the user's connection.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RowView {
    #[serde(flatten)]
    provider: Provider,
    credentials_type: &'static str,
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_slug: Option<String>,
    installation: Option<ConnectedAccountView>,
    #[serde(rename = "connected_accounts")]
    connected_accounts: Vec<ConnectedAccountView>,
}

impl RowView {
    /// The row of one listing.
    pub fn new(l: &ProviderListing, catalog: &Catalog) -> Self {
        let shown = l.compatibility.as_ref().or(l.listed.first());
        Self {
            provider: Provider::new("data_integration", &l.root, &l.name, catalog),
            credentials_type: credentials_type(&l.root),
            scopes: l.effective.scopes.clone(),
            icon_slug: catalog.for_root(&l.root).map(|p| p.slug.clone()),
            installation: shown.map(ConnectedAccountView::new),
            connected_accounts: l.listed.iter().map(ConnectedAccountView::new).collect(),
        }
    }
}

/// An organization's shared connection of a provider (`GET …/shared-connections`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedView {
    object: &'static str,
    id: String,
    name: String,
    slug: String,
    description: Option<String>,
    ownership: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_slug: Option<String>,
    #[serde(rename = "connected_accounts")]
    connected_accounts: Vec<SharedAccountView>,
}

/// One account of a shared connection: only whether members can use it.
#[derive(Debug, Serialize)]
pub struct SharedAccountView {
    object: &'static str,
    id: String,
    state: &'static str,
    availability: &'static str,
    created_at: String,
    updated_at: String,
}

impl SharedView {
    /// The shared connections of one listing.
    pub fn new(l: &ProviderListing, catalog: &Catalog) -> Self {
        Self {
            object: "data_integration",
            id: l.root.id.to_string(),
            name: l.name.clone(),
            slug: l.root.slug.to_string(),
            description: l.root.description.clone(),
            ownership: "organization",
            icon_slug: catalog.for_root(&l.root).map(|p| p.slug.clone()),
            connected_accounts: l
                .listed
                .iter()
                .map(|a| SharedAccountView {
                    object: "connected_account",
                    id: a.id.to_string(),
                    state: a.state.as_str(),
                    availability: if a.state == AccountState::Connected {
                        "available"
                    } else {
                        "needs_admin_attention"
                    },
                    created_at: format_ms(a.created_at),
                    updated_at: format_ms(a.updated_at),
                })
                .collect(),
        }
    }
}

/// Whose OAuth app a configuration uses and where its provider must send users back.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsView {
    credentials_type: &'static str,
    has_credentials: bool,
    #[serde(rename = "client_id")]
    client_id: Option<String>,
    redacted_client_secret: Option<String>,
    redirect_uri: String,
}

impl CredentialsView {
    fn new(root: &DataIntegration, effective: &Effective, public_url: &str) -> Self {
        let settings = effective.settings.as_ref().filter(|_| root.uses_organization_apps());
        let app = settings.and_then(|s| s.app.as_ref());
        Self {
            credentials_type: credentials_type(root),
            has_credentials: app.is_some(),
            client_id: app.map(|a| a.client_id.clone()),
            redacted_client_secret: app.map(|a| a.client_secret_last_4.clone()),
            redirect_uri: match settings {
                Some(s) => organization_redirect_uri(public_url, root, s),
                None => root.redirect_uri(public_url),
            },
        }
    }
}

/// A `<PipesAdmin/>` provider setting (`GET …/configurations`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigurationView {
    #[serde(flatten)]
    provider: Provider,
    enabled: bool,
    scopes: Option<Vec<String>>,
    default_scopes: Vec<String>,
    available_scopes: Vec<String>,
    credentials: CredentialsView,
}

impl ConfigurationView {
    /// The view of an organization's configuration of a provider.
    pub fn new(c: &Configuration, catalog: &Catalog, public_url: &str) -> Self {
        let mut provider = Provider::new("data_integration_configuration", &c.root, &c.name, catalog);
        provider.config = c.config.clone();
        provider.created_at = format_ms(c.created_at);
        provider.updated_at = format_ms(c.updated_at);
        Self {
            provider,
            enabled: c.effective.enabled,
            scopes: c.effective.scopes.clone(),
            // An organization picks among the scopes the integration requests (the developer's,
            // else the provider's defaults): the defaults and the choice are the same list.
            available_scopes: catalog.requested_scopes(&c.root).unwrap_or_default(),
            default_scopes: catalog.requested_scopes(&c.root).unwrap_or_default(),
            credentials: CredentialsView::new(&c.root, &c.effective, public_url),
        }
    }
}

/// `configuration` of an organization-owned provider (`GET …/organization`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OrganizationConfigurationView {
    has_override: bool,
    root_enabled: bool,
    override_enabled: Option<bool>,
    enabled: bool,
    disabled_source: Option<&'static str>,
    scopes: Option<Vec<String>>,
    default_scopes: Vec<String>,
    available_scopes: Vec<String>,
    credentials: CredentialsView,
    configured: bool,
    config_fields: Vec<ConfigFieldView>,
    config: BTreeMap<String, String>,
}

/// What an administrator may do with an organization-owned provider.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CapabilitiesView {
    can_configure: bool,
    can_connect: bool,
    can_update_credentials: bool,
    can_reauthorize: bool,
    can_disconnect: bool,
}

/// An organization-owned provider with the organization's connection (`GET …/organization`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OrganizationRowView {
    #[serde(flatten)]
    provider: Provider,
    credentials_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    icon_slug: Option<String>,
    #[serde(rename = "connected_accounts")]
    connected_accounts: Vec<ConnectedAccountView>,
    configuration: OrganizationConfigurationView,
    capabilities: CapabilitiesView,
}

impl OrganizationRowView {
    /// The row of an organization-owned provider, its configuration and its connections.
    pub fn new(c: &Configuration, accounts: &[ConnectedAccount], catalog: &Catalog, public_url: &str) -> Self {
        let root = &c.root;
        let settings = c.effective.settings.as_ref();
        let override_enabled = settings.and_then(|s| s.enabled);
        let configured = if root.uses_organization_apps() {
            settings.is_some_and(|s| s.app.is_some())
        } else {
            root.auth_method != AuthMethod::Oauth || root.credentials.is_some()
        };
        let account = accounts.first();
        Self {
            provider: Provider::new("data_integration", root, &c.name, catalog),
            credentials_type: credentials_type(root),
            icon_slug: catalog.for_root(root).map(|p| p.slug.clone()),
            connected_accounts: accounts.iter().map(ConnectedAccountView::new).collect(),
            configuration: OrganizationConfigurationView {
                has_override: settings.is_some_and(|s| s.enabled.is_some() || s.scopes.is_some() || s.app.is_some()),
                root_enabled: root.enabled,
                override_enabled,
                enabled: c.effective.enabled,
                disabled_source: match (c.effective.enabled, override_enabled) {
                    (true, _) => None,
                    (false, Some(false)) => Some("organization"),
                    (false, _) => Some("developer"),
                },
                scopes: c.effective.scopes.clone(),
                available_scopes: catalog.requested_scopes(root).unwrap_or_default(),
                default_scopes: catalog.requested_scopes(root).unwrap_or_default(),
                credentials: CredentialsView::new(root, &c.effective, public_url),
                configured,
                config_fields: config_fields(root, catalog),
                config: c.config.clone(),
            },
            capabilities: CapabilitiesView {
                can_configure: true,
                can_connect: c.effective.enabled && configured && account.is_none(),
                can_update_credentials: account.is_some_and(|a| a.auth_method != AuthMethod::Oauth),
                can_reauthorize: c.effective.enabled && account.is_some_and(|a| a.auth_method == AuthMethod::Oauth),
                can_disconnect: account.is_some(),
            },
        }
    }
}

/// `GET /_widgets/settings`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SettingsView {
    object: &'static str,
    authkit_origin: String,
    team_name: String,
    logo_light_path: Option<String>,
    logo_dark_path: Option<String>,
}

impl SettingsView {
    /// The environment's branding; the popup opens on Pipes' own origin.
    pub fn new(env: &Environment, public_url: &str) -> Self {
        Self {
            object: "settings",
            authkit_origin: public_url.trim_end_matches('/').to_owned(),
            team_name: env
                .settings
                .team_name
                .clone()
                .unwrap_or_else(|| "This application".to_owned()),
            logo_light_path: env.settings.logo_url.clone(),
            logo_dark_path: env.settings.logo_url.clone(),
        }
    }
}

/// An organization the token belongs to (`GET …/UserManagement/organizations`).
#[derive(Debug, Serialize)]
pub struct OrganizationView {
    /// Its id.
    pub id: String,
    /// Pipes knows organizations by id only.
    pub name: String,
    /// The token's organization.
    pub current: bool,
}
