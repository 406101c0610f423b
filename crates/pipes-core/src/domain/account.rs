use std::collections::BTreeMap;

use crate::domain::{AuthMethod, Ownership};
use crate::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use crate::time::Millis;
use crate::vault::Sealed;

/// An id of the application's identity system (`user_…`, `org_…`, or its own ids):
/// 1–255 visible ASCII characters.
pub fn valid_external_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 255 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Who a connected account belongs to: a user (optionally scoped to an organization), or an
/// organization (a shared connection).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner {
    /// User-owned or organization-owned.
    pub ownership: Ownership,
    /// The owning user (user-owned only).
    pub user_id: Option<String>,
    /// The organization scope (user-owned) or the owner (organization-owned).
    pub organization_id: Option<String>,
}

impl Owner {
    /// A user's own connection, optionally scoped to an organization.
    pub fn user(user_id: &str, organization_id: Option<&str>) -> Self {
        Self {
            ownership: Ownership::User,
            user_id: Some(user_id.to_owned()),
            organization_id: organization_id.map(str::to_owned),
        }
    }

    /// An organization's shared connection.
    pub fn organization(organization_id: &str) -> Self {
        Self {
            ownership: Ownership::Organization,
            user_id: None,
            organization_id: Some(organization_id.to_owned()),
        }
    }

    /// The owner shape as one indexed string. Ids never contain U+001F (they are visible ASCII).
    pub fn key(&self) -> String {
        format!(
            "{}\u{1f}{}",
            self.user_id.as_deref().unwrap_or(""),
            self.organization_id.as_deref().unwrap_or("")
        )
    }
}

/// Which requests see a connection (contract §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionRole {
    /// The one connection selector-free requests see.
    Compatibility,
    /// Visible only to callers that opt in to several connections.
    Standard,
}

impl ConnectionRole {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Compatibility => "compatibility",
            Self::Standard => "standard",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "compatibility" => Some(Self::Compatibility),
            "standard" => Some(Self::Standard),
            _ => None,
        }
    }
}

/// Whether a connection can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountState {
    /// Usable.
    Connected,
    /// The owner must reconnect.
    NeedsReauthorization,
}

impl AccountState {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::NeedsReauthorization => "needs_reauthorization",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "connected" => Some(Self::Connected),
            "needs_reauthorization" => Some(Self::NeedsReauthorization),
            _ => None,
        }
    }
}

/// The sealed token set of a connection and its expiry.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenSet {
    /// Sealed access token.
    pub access_token: Option<Sealed>,
    /// Access-token expiry; `None` = does not expire.
    pub expires_at: Option<Millis>,
    /// Sealed refresh token.
    pub refresh_token: Option<Sealed>,
}

/// The last refresh failure of a connection (never a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshError {
    /// Short code: `invalid_grant`, `provider_unavailable`, `timeout`…
    pub code: String,
    /// When it happened.
    pub at: Millis,
    /// Failures in a row, this one included.
    pub failures: i64,
    /// When the refresh worker tries again (`None`: when a caller needs the token).
    pub retry_at: Option<Millis>,
}

/// What an API-key or client-credentials connection stores besides tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSecret {
    /// The tenant's client id (client credentials only).
    pub client_id: Option<String>,
    /// The sealed API key or client secret.
    pub secret: Sealed,
    /// Its last four characters, for display.
    pub last_4: String,
}

/// One stored credential of one owner for one provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectedAccount {
    /// `data_installation_…`
    pub id: ConnectedAccountId,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// The root it belongs to.
    pub data_integration_id: DataIntegrationId,
    /// The owner shape.
    pub owner: Owner,
    /// Compatibility or standard.
    pub role: ConnectionRole,
    /// Developer-attested provider account id.
    pub account_identifier: Option<String>,
    /// Mutable label.
    pub account_display_name: Option<String>,
    /// How it authenticates.
    pub auth_method: AuthMethod,
    /// Usable or not.
    pub state: AccountState,
    /// Why the server changed the state, when it did.
    pub state_reason: Option<String>,
    /// Who established it.
    pub established_by_user_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Installation-scope config snapshot.
    pub config: BTreeMap<String, String>,
    /// Non-secret token-response fields (`instance_url`…).
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// The sealed tokens (for client credentials: the cached minted token).
    pub tokens: TokenSet,
    /// The API key or client credentials.
    pub stored: Option<StoredSecret>,
    /// Bumped by each successful refresh.
    pub refresh_generation: i64,
    /// Last successful refresh.
    pub last_refreshed_at: Option<Millis>,
    /// Last refresh failure.
    pub last_refresh_error: Option<RefreshError>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}
