//! The bodies of the data-integration API, as the requests send them.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::Patch;
use crate::domain::Ownership;
use crate::secret::SecretString;

/// `credentials` in create and update bodies.
#[derive(Debug, Deserialize)]
pub struct CredentialsInput {
    /// `custom` or `organization`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The OAuth app's client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The OAuth app's client secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
}

/// `api_key` in create and update bodies: the first tenant of an API-key integration.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyInput {
    /// The key.
    pub secret: SecretString,
    /// Owner (or acting member).
    pub user_id: String,
    /// Organization scope or owner.
    #[serde(default)]
    pub organization_id: Option<String>,
}

impl ApiKeyInput {
    /// The equivalent `PUT …/api-key` body for a root of `ownership`.
    pub fn as_request(&self, ownership: Ownership) -> super::super::StoreCredentialRequest {
        super::super::StoreCredentialRequest {
            user_id: Some(self.user_id.clone()),
            organization_id: self.organization_id.clone(),
            connection_owner: Some(ownership.as_str().to_owned()),
            secret: Some(self.secret.clone()),
            ..Default::default()
        }
    }
}

/// `custom_provider` in create (full) and update (partial) bodies.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct CustomProviderInput {
    /// Display name.
    pub name: Option<String>,
    /// Authorization endpoint.
    pub authorization_url: Patch<String>,
    /// Token endpoint.
    pub token_url: Patch<String>,
    /// Refresh endpoint; `null` falls back to the token endpoint.
    pub refresh_token_url: Patch<String>,
    /// Send PKCE.
    pub pkce_enabled: Option<bool>,
    /// Joins scopes.
    pub request_scope_separator: Option<String>,
    /// Connecting requires a scope.
    pub scopes_required: Option<bool>,
    /// Whether the client secret is mandatory.
    pub client_secret_required: Option<bool>,
    /// Extra authorization parameters.
    pub additional_authorization_parameters: Option<BTreeMap<String, String>>,
    /// `application/x-www-form-urlencoded` or `application/json`.
    pub token_body_content_type: Option<String>,
    /// `request_body` or `basic_auth_header`.
    pub authenticate_via: Option<String>,
}

/// `POST /data-integrations`.
#[derive(Debug, Deserialize)]
pub struct CreateIntegration {
    /// Built-in slug, new custom slug, or existing custom slug.
    pub provider: String,
    /// `user` (default) or `organization`.
    #[serde(default)]
    pub ownership: Option<String>,
    /// Shown to end users.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to `false`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Requested scopes; absent or `null` = provider defaults.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Exactly one of `oauth`, `api_key`, `client_credentials`.
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
    /// Integration-scope config values.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
    /// The OAuth app.
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
    /// The first tenant of an API-key integration.
    #[serde(default)]
    pub api_key: Option<ApiKeyInput>,
    /// A new custom provider's definition.
    #[serde(default)]
    pub custom_provider: Option<CustomProviderInput>,
}

/// `PUT /data-integrations/{slug}` (partial).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UpdateIntegration {
    /// `null` clears.
    pub description: Patch<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// `null` resets to the provider's defaults.
    pub scopes: Patch<Vec<String>>,
    /// Replaces the OAuth app.
    pub credentials: Option<CredentialsInput>,
    /// Installs or rotates a tenant's key (API-key integrations).
    pub api_key: Option<ApiKeyInput>,
    /// Partial change of the custom provider definition.
    pub custom_provider: Option<CustomProviderInput>,
}
