//! What creating and updating a data integration takes. The server parses the bodies into
//! these: slugs, ownership, auth methods and owners arrive typed; the parts checked against the
//! provider (credentials, config, scopes, the custom definition) are checked here together so
//! that one answer lists every field at fault.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::super::selection::{Intent, OwnerChoice};
use super::super::stored::{StoreCredential, TenantSecret};
use super::super::Patch;
use crate::domain::{AuthMethod, Ownership};
use crate::error::ServiceError;
use crate::fields::Labels;
use crate::secret::SecretString;
use crate::slug::Slug;

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
#[derive(Debug, Clone)]
pub struct ApiKeyInput {
    /// The key.
    pub secret: SecretString,
    /// The tenant, with the integration's ownership.
    pub choice: OwnerChoice,
}

impl ApiKeyInput {
    /// The equivalent `PUT …/api-key` command.
    pub fn command(&self) -> Result<StoreCredential, ServiceError> {
        Ok(StoreCredential {
            choice: self.choice.clone(),
            intent: Intent::Compatibility,
            secret: TenantSecret::api_key(Some(self.secret.clone()))?,
            labels: Labels::default(),
            config: None,
        })
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
#[derive(Debug)]
pub struct CreateIntegration {
    /// Built-in slug, new custom slug, or existing custom slug.
    pub provider: Slug,
    /// Whose connections it makes.
    pub ownership: Ownership,
    /// The one auth method asked for, if any.
    pub auth_method: Option<AuthMethod>,
    /// Shown to end users.
    pub description: Option<String>,
    /// Defaults to `false`.
    pub enabled: bool,
    /// Requested scopes; `None` = provider defaults.
    pub scopes: Option<Vec<String>>,
    /// Integration-scope config values.
    pub config: BTreeMap<String, String>,
    /// The OAuth app.
    pub credentials: Option<CredentialsInput>,
    /// The first tenant of an API-key integration.
    pub api_key: Option<ApiKeyInput>,
    /// A new custom provider's definition.
    pub custom_provider: Option<CustomProviderInput>,
}

/// `PUT /data-integrations/{slug}` (partial).
#[derive(Debug, Default)]
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
