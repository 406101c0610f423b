//! Wire shapes (`*View`). Every key the SDKs treat as "always present" is always serialised,
//! `null` included.

use std::collections::BTreeMap;

use pipes_core::domain::{
    AuthMethod, ConnectedAccount, CustomProviderDefinition, DataIntegration, Membership, Ownership,
};
use pipes_core::pagination::Page;
use pipes_core::services::{organization_redirect_uri, Configuration, ProviderListing, Vended, Warning};
use pipes_core::time::format_ms;
use pipes_core::webhooks::OpenedEndpoint;
use serde::Serialize;

/// `list_metadata` of paginated lists.
#[derive(Debug, Serialize)]
pub struct ListMetadata {
    /// Cursor toward the start.
    pub before: Option<String>,
    /// Cursor toward the end; `null` on the last page.
    pub after: Option<String>,
}

/// A paginated list envelope.
#[derive(Debug, Serialize)]
pub struct ListView<T: Serialize> {
    /// Always `list`.
    pub object: &'static str,
    /// The rows.
    pub data: Vec<T>,
    /// Cursors.
    pub list_metadata: ListMetadata,
}

impl<T: Serialize> ListView<T> {
    /// Maps a page's rows into views.
    pub fn from_page<R>(page: Page<R>, view: impl Fn(&R) -> T) -> Self {
        Self {
            object: "list",
            data: page.data.iter().map(view).collect(),
            list_metadata: ListMetadata {
                before: page.before,
                after: page.after,
            },
        }
    }
}

/// `credentials` of a data integration.
#[derive(Debug, Serialize)]
pub struct CredentialView {
    #[serde(rename = "type")]
    kind: &'static str,
    client_id: Option<String>,
    redacted_client_secret: Option<String>,
}

/// The DataIntegration object.
#[derive(Debug, Serialize)]
pub struct DataIntegrationView {
    object: &'static str,
    id: String,
    slug: String,
    integration_type: String,
    ownership: &'static str,
    description: Option<String>,
    enabled: bool,
    state: &'static str,
    scopes: Option<Vec<String>>,
    redirect_uri: String,
    auth_methods: [&'static str; 1],
    credentials: Option<CredentialView>,
    installation: Option<serde_json::Value>,
    config: BTreeMap<String, String>,
    custom_provider: Option<CustomProviderDefinition>,
    created_at: String,
    updated_at: String,
}

impl DataIntegrationView {
    /// The view of a root; `public_url` builds its redirect URI.
    pub fn new(root: &DataIntegration, public_url: &str) -> Self {
        Self {
            object: "data_integration",
            id: root.id.to_string(),
            slug: root.slug.to_string(),
            integration_type: root.slug.to_string(),
            ownership: root.ownership.as_str(),
            description: root.description.clone(),
            enabled: root.enabled,
            state: root.state.as_str(),
            scopes: root.scopes.clone(),
            redirect_uri: root.redirect_uri(public_url),
            auth_methods: [root.auth_method.as_str()],
            credentials: root.credentials.as_ref().map(|c| CredentialView {
                kind: c.kind.as_str(),
                client_id: c.client_id.clone(),
                redacted_client_secret: c.client_secret_last4.clone(),
            }),
            installation: None,
            config: root.config.clone(),
            custom_provider: root.custom_provider.as_ref().map(|cp| cp.definition.clone()),
            created_at: format_ms(root.created_at),
            updated_at: format_ms(
                root.updated_at
                    .max(root.custom_provider.as_ref().map_or(0, |cp| cp.updated_at)),
            ),
        }
    }
}

impl DataIntegrationView {
    /// Adds the tenant an `api_key` block installed (§3.2 `installation`).
    pub fn with_installation(mut self, a: &ConnectedAccount) -> Self {
        self.installation = Some(serde_json::json!({
            "id": a.id.to_string(),
            "connection_role": a.role.as_str(),
            "account_identifier": a.account_identifier,
            "account_display_name": a.account_display_name,
            "user_id": a.owner.user_id,
            "organization_id": a.owner.organization_id,
            "api_key_last_4": a.stored.as_ref().map(|s| s.last_4.clone()),
        }));
        self
    }
}

/// The DataIntegrationConfiguration object (§3.6).
#[derive(Debug, Serialize)]
pub struct ConfigurationView {
    object: &'static str,
    id: String,
    organization_id: String,
    slug: String,
    name: String,
    enabled: bool,
    scopes: Option<Vec<String>>,
    config: BTreeMap<String, String>,
    created_at: String,
    updated_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    credentials: Option<OrganizationCredentialsView>,
}

/// `credentials` of a configuration (organization-credential roots only).
#[derive(Debug, Serialize)]
pub struct OrganizationCredentialsView {
    credentials_type: &'static str,
    has_credentials: bool,
    client_id: Option<String>,
    client_secret_last_four: Option<String>,
    redirect_uri: String,
}

impl ConfigurationView {
    /// The view of a configuration; `public_url` builds the organization's redirect URI.
    pub fn new(c: &Configuration, public_url: &str) -> Self {
        let app = c.effective.settings.as_ref().and_then(|s| s.app.as_ref());
        Self {
            object: "data_integration_configuration",
            id: c.root.id.to_string(),
            organization_id: c.organization_id.clone(),
            slug: c.root.slug.to_string(),
            name: c.name.clone(),
            enabled: c.effective.enabled,
            scopes: c.effective.scopes.clone(),
            config: c.config.clone(),
            created_at: format_ms(c.created_at),
            updated_at: format_ms(c.updated_at),
            credentials: c
                .effective
                .settings
                .as_ref()
                .filter(|_| c.root.uses_organization_apps())
                .map(|s| OrganizationCredentialsView {
                    credentials_type: "organization",
                    has_credentials: app.is_some(),
                    client_id: app.map(|a| a.client_id.clone()),
                    client_secret_last_four: app.map(|a| a.client_secret_last_4.clone()),
                    redirect_uri: organization_redirect_uri(public_url, &c.root, s),
                }),
        }
    }
}

/// A declared organization membership (Pipes' own API).
#[derive(Debug, Serialize)]
pub struct MembershipView {
    object: &'static str,
    organization_id: String,
    user_id: String,
    status: &'static str,
    created_at: String,
    updated_at: String,
}

impl MembershipView {
    /// The view of a membership.
    pub fn new(m: &Membership) -> Self {
        Self {
            object: "organization_membership",
            organization_id: m.organization_id.clone(),
            user_id: m.user_id.clone(),
            status: if m.active { "active" } else { "inactive" },
            created_at: format_ms(m.created_at),
            updated_at: format_ms(m.updated_at),
        }
    }
}

/// The ConnectedAccount object (§3.4).
#[derive(Debug, Serialize)]
pub struct ConnectedAccountView {
    object: &'static str,
    id: String,
    connection_role: &'static str,
    account_identifier: Option<String>,
    account_display_name: Option<String>,
    user_id: Option<String>,
    organization_id: Option<String>,
    scopes: Vec<String>,
    state: &'static str,
    auth_method: &'static str,
    api_key_last_4: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret_last_4: Option<String>,
    config: BTreeMap<String, String>,
    established_by_user_id: Option<String>,
    state_reason: Option<String>,
    /// Pipes' own: when the token was last refreshed or obtained.
    last_refreshed_at: Option<String>,
    /// Pipes' own: the last failed refresh (code and time; never a token), until one succeeds.
    last_refresh_error: Option<RefreshErrorView>,
    created_at: String,
    updated_at: String,
    /// Writes only, and only when there is something to warn about.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warnings: Vec<WarningView>,
}

/// One entry of `warnings`.
#[derive(Debug, Serialize)]
pub struct WarningView {
    code: &'static str,
    message: String,
}

/// `last_refresh_error` of a connection.
#[derive(Debug, Serialize)]
pub struct RefreshErrorView {
    code: String,
    occurred_at: String,
    consecutive_failures: i64,
    next_attempt_at: Option<String>,
}

impl ConnectedAccountView {
    /// The view of a connection.
    pub fn new(a: &ConnectedAccount) -> Self {
        Self {
            object: "connected_account",
            id: a.id.to_string(),
            connection_role: a.role.as_str(),
            account_identifier: a.account_identifier.clone(),
            account_display_name: a.account_display_name.clone(),
            user_id: a.owner.user_id.clone(),
            organization_id: a.owner.organization_id.clone(),
            scopes: a.scopes.clone(),
            state: a.state.as_str(),
            auth_method: a.auth_method.as_str(),
            api_key_last_4: a
                .stored
                .as_ref()
                .filter(|_| a.auth_method == AuthMethod::ApiKey)
                .map(|s| s.last_4.clone()),
            client_id: a
                .stored
                .as_ref()
                .filter(|_| a.auth_method == AuthMethod::ClientCredentials)
                .and_then(|s| s.client_id.clone()),
            client_secret_last_4: a
                .stored
                .as_ref()
                .filter(|_| a.auth_method == AuthMethod::ClientCredentials)
                .map(|s| s.last_4.clone()),
            config: a.config.clone(),
            established_by_user_id: a.established_by_user_id.clone(),
            state_reason: a.state_reason.clone(),
            last_refreshed_at: a.last_refreshed_at.map(format_ms),
            last_refresh_error: a.last_refresh_error.as_ref().map(|e| RefreshErrorView {
                code: e.code.clone(),
                occurred_at: format_ms(e.at),
                consecutive_failures: e.failures,
                next_attempt_at: e.retry_at.map(format_ms),
            }),
            created_at: format_ms(a.created_at),
            updated_at: format_ms(a.updated_at),
            warnings: Vec::new(),
        }
    }

    /// The view of a write's result, with its warnings.
    pub fn written(a: &ConnectedAccount, warnings: &[Warning]) -> Self {
        let mut view = Self::new(a);
        view.warnings = warnings
            .iter()
            .map(|w| WarningView {
                code: w.code,
                message: w.message.clone(),
            })
            .collect();
        view
    }
}

/// A connection inside a data-providers list: the account plus the deprecated owner id under
/// both spellings the SDKs read.
#[derive(Debug, Serialize)]
pub struct ListedAccountView {
    #[serde(flatten)]
    account: ConnectedAccountView,
    userland_user_id: Option<String>,
    #[serde(flatten)]
    deprecated: DeprecatedAccountKeys,
}

/// The camelCase duplicates the official OpenAPI specification still lists as required in
/// `data_providers` accounts (older SDK generations read them; current ones ignore them).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeprecatedAccountKeys {
    userland_user_id: Option<String>,
    organization_id: Option<String>,
    created_at: String,
    updated_at: String,
}

impl ListedAccountView {
    fn new(a: &ConnectedAccount) -> Self {
        Self {
            account: ConnectedAccountView::new(a),
            userland_user_id: a.owner.user_id.clone(),
            deprecated: DeprecatedAccountKeys {
                userland_user_id: a.owner.user_id.clone(),
                organization_id: a.owner.organization_id.clone(),
                created_at: format_ms(a.created_at),
                updated_at: format_ms(a.updated_at),
            },
        }
    }
}

/// The DataProvider object (§3.5).
#[derive(Debug, Serialize)]
pub struct DataProviderView {
    object: &'static str,
    id: String,
    name: String,
    description: Option<String>,
    slug: String,
    integration_type: String,
    credentials_type: &'static str,
    scopes: Option<Vec<String>>,
    auth_methods: [&'static str; 1],
    connection_owner: &'static str,
    ownership: &'static str,
    created_at: String,
    updated_at: String,
    connected_account: Option<ListedAccountView>,
    connected_accounts: Vec<ListedAccountView>,
    #[serde(flatten)]
    deprecated: DeprecatedProviderKeys,
}

/// The camelCase duplicates the official OpenAPI specification still lists as required on a
/// data provider.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DeprecatedProviderKeys {
    integration_type: String,
    credentials_type: &'static str,
    created_at: String,
    updated_at: String,
}

impl DataProviderView {
    /// The view of one listing.
    pub fn new(l: &ProviderListing) -> Self {
        let root = &l.root;
        let credentials_type = match root.auth_method {
            AuthMethod::ApiKey => "api_key",
            _ => "oauth2",
        };
        Self {
            object: "data_provider",
            id: root.id.to_string(),
            name: l.name.clone(),
            description: root.description.clone(),
            slug: root.slug.to_string(),
            integration_type: root.slug.to_string(),
            credentials_type,
            scopes: l.effective.scopes.clone(),
            auth_methods: [root.auth_method.as_str()],
            connection_owner: root.ownership.as_str(),
            ownership: match root.ownership {
                Ownership::User => "userland_user",
                Ownership::Organization => "organization",
            },
            created_at: format_ms(root.created_at),
            updated_at: format_ms(root.updated_at),
            connected_account: l.compatibility.as_ref().map(ListedAccountView::new),
            connected_accounts: l.listed.iter().map(ListedAccountView::new).collect(),
            deprecated: DeprecatedProviderKeys {
                integration_type: root.slug.to_string(),
                credentials_type,
                created_at: format_ms(root.created_at),
                updated_at: format_ms(root.updated_at),
            },
        }
    }
}

/// A plain (unpaginated) list.
#[derive(Debug, Serialize)]
pub struct PlainList<T: Serialize> {
    /// Always `list`.
    pub object: &'static str,
    /// The items.
    pub data: Vec<T>,
}

/// `access_token` of a `/token` answer.
#[derive(Debug, Serialize)]
pub struct AccessTokenView {
    object: &'static str,
    access_token: String,
    expires_at: Option<String>,
    scopes: Vec<String>,
    missing_scopes: Vec<String>,
}

/// `credential` of a `/credentials` answer.
#[derive(Debug, Serialize)]
pub struct CredentialValueView {
    object: &'static str,
    auth_method: &'static str,
    value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    missing_scopes: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<BTreeMap<String, serde_json::Value>>,
    config: BTreeMap<String, String>,
}

/// `/token` answers: `{active: true, access_token}` or `{active: false, error}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum TokenResponseView {
    /// A usable token.
    Active {
        /// Always `true`.
        active: bool,
        /// The token.
        access_token: AccessTokenView,
    },
    /// No usable token.
    Inactive {
        /// Always `false`.
        active: bool,
        /// Why.
        error: &'static str,
    },
}

impl TokenResponseView {
    /// The answer for a vending outcome.
    pub fn new(v: Vended) -> Self {
        match v {
            Vended::Inactive(error) => Self::Inactive { active: false, error },
            Vended::Active(c) => Self::Active {
                active: true,
                access_token: AccessTokenView {
                    object: "access_token",
                    access_token: c.value.expose().to_owned(),
                    expires_at: c.expires_at.map(format_ms),
                    scopes: c.scopes,
                    missing_scopes: c.missing_scopes,
                },
            },
        }
    }
}

/// `/credentials` answers.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum CredentialResponseView {
    /// A usable credential.
    Active {
        /// Always `true`.
        active: bool,
        /// The credential.
        credential: CredentialValueView,
    },
    /// No usable credential.
    Inactive {
        /// Always `false`.
        active: bool,
        /// Why.
        error: &'static str,
    },
}

impl CredentialResponseView {
    /// The answer for a vending outcome.
    pub fn new(v: Vended) -> Self {
        match v {
            Vended::Inactive(error) => Self::Inactive { active: false, error },
            Vended::Active(c) => {
                let token_based = c.auth_method != AuthMethod::ApiKey;
                Self::Active {
                    active: true,
                    credential: CredentialValueView {
                        object: "credential",
                        auth_method: c.auth_method.as_str(),
                        value: c.value.expose().to_owned(),
                        expires_at: token_based.then(|| c.expires_at.map(format_ms)),
                        scopes: token_based.then(|| c.scopes.clone()),
                        missing_scopes: token_based.then(|| c.missing_scopes.clone()),
                        metadata: token_based.then(|| c.metadata.clone()),
                        config: c.config,
                    },
                }
            }
        }
    }
}

/// The WebhookEndpoint object; the secret is part of every read (contract §4.16).
#[derive(Debug, Serialize)]
pub struct WebhookEndpointView {
    object: &'static str,
    id: String,
    endpoint_url: String,
    secret: String,
    status: &'static str,
    events: Vec<&'static str>,
    created_at: String,
    updated_at: String,
}

impl WebhookEndpointView {
    /// The view of an endpoint with its opened secret.
    pub fn new(e: &OpenedEndpoint) -> Self {
        let endpoint = &e.endpoint;
        Self {
            object: "webhook_endpoint",
            id: endpoint.id.to_string(),
            endpoint_url: endpoint.endpoint_url.clone(),
            secret: e.secret.expose().to_owned(),
            status: endpoint.status.as_str(),
            events: endpoint.events.iter().map(|t| t.as_str()).collect(),
            created_at: format_ms(endpoint.created_at),
            updated_at: format_ms(endpoint.updated_at),
        }
    }
}
