use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{CustomProviderId, DataIntegrationId, DikId, EnvironmentId};
use crate::slug::Slug;
use crate::time::Millis;
use crate::vault::Sealed;

/// Who connects accounts to a root.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// Users connect their own accounts (the default).
    User,
    /// An organization connects one shared account.
    Organization,
}

impl Ownership {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Organization => "organization",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(Self::User),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// How accounts of a provider authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// Authorization-code flow, refreshable.
    Oauth,
    /// An opaque key per tenant.
    ApiKey,
    /// Per-tenant client id and secret; tokens minted with the client-credentials grant.
    ClientCredentials,
}

impl AuthMethod {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Oauth => "oauth",
            Self::ApiKey => "api_key",
            Self::ClientCredentials => "client_credentials",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "oauth" => Some(Self::Oauth),
            "api_key" => Some(Self::ApiKey),
            "client_credentials" => Some(Self::ClientCredentials),
            _ => None,
        }
    }
}

/// Whose OAuth app an OAuth root uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CredentialsType {
    /// The developer's own app, stored on the root.
    Custom,
    /// Each organization registers its own app.
    Organization,
}

impl CredentialsType {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Custom => "custom",
            Self::Organization => "organization",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "custom" => Some(Self::Custom),
            "organization" => Some(Self::Organization),
            _ => None,
        }
    }
}

/// Whether a root can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntegrationState {
    /// Usable.
    Valid,
    /// An OAuth root whose app credentials are missing or were rejected by the provider.
    Invalid,
}

impl IntegrationState {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Valid => "valid",
            Self::Invalid => "invalid",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "valid" => Some(Self::Valid),
            "invalid" => Some(Self::Invalid),
            _ => None,
        }
    }
}

/// The OAuth app of an OAuth root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrationCredentials {
    /// Custom (stored here) or organization (each organization brings its own).
    pub kind: CredentialsType,
    /// The app's client id (custom only).
    pub client_id: Option<String>,
    /// The app's client secret, sealed (custom only).
    pub client_secret: Option<Sealed>,
    /// The last four characters of the secret, for display.
    pub client_secret_last4: Option<String>,
}

/// How the client authenticates to a custom provider's token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthenticateVia {
    /// `client_id` and `client_secret` in the body.
    RequestBody,
    /// HTTP Basic.
    BasicAuthHeader,
}

/// Body encoding of token requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenBodyContentType {
    /// `application/x-www-form-urlencoded`
    #[serde(rename = "application/x-www-form-urlencoded", alias = "form")]
    Form,
    /// `application/json`
    #[serde(rename = "application/json", alias = "json")]
    Json,
}

impl TokenBodyContentType {
    /// The MIME type.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Form => "application/x-www-form-urlencoded",
            Self::Json => "application/json",
        }
    }

    /// Parses a MIME type.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "application/x-www-form-urlencoded" => Some(Self::Form),
            "application/json" => Some(Self::Json),
            _ => None,
        }
    }
}

/// A custom provider's OAuth definition with every default materialised. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomProviderDefinition {
    /// Display name.
    pub name: String,
    /// Authorization endpoint (OAuth only).
    pub authorization_url: Option<String>,
    /// Token endpoint (OAuth and client credentials).
    pub token_url: Option<String>,
    /// Refresh endpoint; `None` means `token_url`.
    pub refresh_token_url: Option<String>,
    /// Send PKCE (S256).
    pub pkce_enabled: bool,
    /// Joins requested scopes.
    pub request_scope_separator: String,
    /// Connecting requires at least one scope.
    pub scopes_required: bool,
    /// Whether the app's client secret is mandatory.
    pub client_secret_required: bool,
    /// Extra authorization-request parameters.
    pub additional_authorization_parameters: BTreeMap<String, String>,
    /// Token request body encoding.
    pub token_body_content_type: TokenBodyContentType,
    /// Client authentication at the token endpoint.
    pub authenticate_via: AuthenticateVia,
}

/// A custom provider: one definition shared by the roots of its slug in one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomProvider {
    /// Internal id.
    pub id: CustomProviderId,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// The slug, never equal to a built-in one.
    pub slug: Slug,
    /// The auth method every root of this provider uses.
    pub auth_method: AuthMethod,
    /// The definition.
    pub definition: CustomProviderDefinition,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// A data integration ("root"): one provider configured in one environment for one ownership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataIntegration {
    /// `data_integration_…`
    pub id: DataIntegrationId,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// Provider slug (built-in or custom).
    pub slug: Slug,
    /// User- or organization-owned.
    pub ownership: Ownership,
    /// Shown to end users.
    pub description: Option<String>,
    /// Whether users can connect.
    pub enabled: bool,
    /// Usable or not.
    pub state: IntegrationState,
    /// Requested scopes; `None` = the provider's defaults.
    pub scopes: Option<Vec<String>>,
    /// Fixed at creation.
    pub auth_method: AuthMethod,
    /// The OAuth app (OAuth roots only).
    pub credentials: Option<IntegrationCredentials>,
    /// Integration-scope config values pinned on the root.
    pub config: BTreeMap<String, String>,
    /// Redirect key: the provider callback is `/data-integrations/{slug}/{dik}/callback`.
    pub dik: DikId,
    /// The custom provider, for custom slugs.
    pub custom_provider: Option<CustomProvider>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

impl DataIntegration {
    /// The provider callback URL to register at the provider; empty for roots without an
    /// authorization redirect (API-key and client-credentials roots).
    pub fn redirect_uri(&self, public_url: &str) -> String {
        if self.auth_method != AuthMethod::Oauth {
            return String::new();
        }
        format!(
            "{}/data-integrations/{}/{}/callback",
            public_url.trim_end_matches('/'),
            self.slug,
            self.dik
        )
    }
}

impl DataIntegration {
    /// Whether each organization brings its own OAuth app for this root.
    pub fn uses_organization_apps(&self) -> bool {
        self.credentials
            .as_ref()
            .is_some_and(|c| c.kind == CredentialsType::Organization)
    }
}
