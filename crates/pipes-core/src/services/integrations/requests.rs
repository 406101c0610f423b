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
pub struct CustomProviderInput {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Authorization endpoint.
    #[serde(default)]
    pub authorization_url: Patch<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_url: Patch<String>,
    /// Refresh endpoint; `null` falls back to the token endpoint.
    #[serde(default)]
    pub refresh_token_url: Patch<String>,
    /// Send PKCE.
    #[serde(default)]
    pub pkce_enabled: Option<bool>,
    /// Joins scopes.
    #[serde(default)]
    pub request_scope_separator: Option<String>,
    /// Connecting requires a scope.
    #[serde(default)]
    pub scopes_required: Option<bool>,
    /// Whether the client secret is mandatory.
    #[serde(default)]
    pub client_secret_required: Option<bool>,
    /// Extra authorization parameters.
    #[serde(default)]
    pub additional_authorization_parameters: Option<BTreeMap<String, String>>,
    /// `application/x-www-form-urlencoded` or `application/json`.
    #[serde(default)]
    pub token_body_content_type: Option<String>,
    /// `request_body` or `basic_auth_header`.
    #[serde(default)]
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
pub struct UpdateIntegration {
    /// `null` clears.
    #[serde(default)]
    pub description: Patch<String>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `null` resets to the provider's defaults.
    #[serde(default)]
    pub scopes: Patch<Vec<String>>,
    /// Replaces the OAuth app.
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
    /// Installs or rotates a tenant's key (API-key integrations).
    #[serde(default)]
    pub api_key: Option<ApiKeyInput>,
    /// Partial change of the custom provider definition.
    #[serde(default)]
    pub custom_provider: Option<CustomProviderInput>,
}
