use std::collections::BTreeMap;

use crate::domain::{AuthMethod, Ownership};
use crate::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use crate::secret::SecretString;
use crate::time::Millis;
use crate::vault::{Sealed, SealedColumn, Vault, VaultError};

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

impl TokenSet {
    /// Seals plain tokens for the connection `id`.
    pub fn seal(
        vault: &Vault,
        id: ConnectedAccountId,
        access: Option<&SecretString>,
        refresh: Option<&SecretString>,
        expires_at: Option<Millis>,
    ) -> Self {
        let row = id.to_string();
        Self {
            access_token: access.map(|t| vault.seal_secret(t, SealedColumn::AccountAccessToken.aad(&row))),
            expires_at,
            refresh_token: refresh.map(|t| vault.seal_secret(t, SealedColumn::AccountRefreshToken.aad(&row))),
        }
    }
}

/// How much life a token must have left to be handed out without a refresh: min(`max_margin`,
/// half its lifetime), the full margin when the lifetime is unknown (imported tokens). The SQL
/// of the refresh worker's queue (`pipes-store/src/sql/refresh.rs`) states the same rule.
pub fn refresh_margin(expires_at: Millis, issued_at: Option<Millis>, max_margin: Millis) -> Millis {
    match issued_at {
        Some(issued) => max_margin.min((expires_at - issued).max(0) / 2),
        None => max_margin,
    }
}

impl ConnectedAccount {
    /// A new, connected connection of `owner` on a root, with nothing stored yet.
    pub fn new(
        environment_id: EnvironmentId,
        data_integration_id: DataIntegrationId,
        owner: Owner,
        role: ConnectionRole,
        auth_method: AuthMethod,
        now: Millis,
    ) -> Self {
        Self {
            id: ConnectedAccountId::new(),
            environment_id,
            data_integration_id,
            owner,
            role,
            account_identifier: None,
            account_display_name: None,
            auth_method,
            state: AccountState::Connected,
            state_reason: None,
            established_by_user_id: None,
            scopes: Vec::new(),
            config: BTreeMap::new(),
            metadata: BTreeMap::new(),
            tokens: TokenSet::default(),
            stored: None,
            refresh_generation: 0,
            last_refreshed_at: None,
            last_refresh_error: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// Usable again: connected, with no reason and no refresh error on record.
    pub fn mark_connected(&mut self, now: Millis) {
        self.state = AccountState::Connected;
        self.state_reason = None;
        self.last_refresh_error = None;
        self.updated_at = now;
    }

    /// Unusable until the owner reconnects; `reason` says why (`invalid_grant`, …).
    pub fn mark_needs_reauthorization(&mut self, reason: &str, now: Millis) {
        self.state = AccountState::NeedsReauthorization;
        self.state_reason = Some(reason.to_owned());
        self.updated_at = now;
    }

    /// New tokens replace the stored ones. The generation moves on, so a refresh that started
    /// from the old tokens cannot store its result over these.
    pub fn replace_tokens(&mut self, tokens: TokenSet, now: Millis) {
        self.tokens = tokens;
        self.refresh_generation += 1;
        self.updated_at = now;
    }

    /// What a refresh (or a code exchange) issued at `issued_at`: the tokens, the granted scopes
    /// and the provider's metadata, the error cleared.
    pub fn mark_refreshed(
        &mut self,
        tokens: TokenSet,
        scopes: Vec<String>,
        metadata: BTreeMap<String, serde_json::Value>,
        issued_at: Millis,
    ) {
        self.replace_tokens(tokens, issued_at);
        self.scopes = scopes;
        self.metadata.extend(metadata);
        self.last_refreshed_at = Some(issued_at);
        self.last_refresh_error = None;
    }

    /// Every credential removed (its establishing member left): it needs reauthorization.
    pub fn wipe(&mut self, reason: &str, now: Millis) {
        self.mark_needs_reauthorization(reason, now);
        self.established_by_user_id = None;
        self.stored = None;
        self.last_refresh_error = None;
        self.replace_tokens(TokenSet::default(), now);
    }

    /// Whether the access token can be handed out without a refresh at `now`: it exists and has
    /// more than [`refresh_margin`] left (a token without expiry is always fresh).
    pub fn is_fresh(&self, now: Millis, max_margin: Millis) -> bool {
        if self.tokens.access_token.is_none() {
            return false;
        }
        match self.tokens.expires_at {
            None => true,
            Some(expires_at) => expires_at - now > refresh_margin(expires_at, self.last_refreshed_at, max_margin),
        }
    }

    /// Opens the access token.
    pub fn access_token(&self, vault: &Vault) -> Result<Option<SecretString>, VaultError> {
        self.open(
            vault,
            self.tokens.access_token.as_ref(),
            SealedColumn::AccountAccessToken,
        )
    }

    /// Opens the refresh token.
    pub fn refresh_token(&self, vault: &Vault) -> Result<Option<SecretString>, VaultError> {
        self.open(
            vault,
            self.tokens.refresh_token.as_ref(),
            SealedColumn::AccountRefreshToken,
        )
    }

    /// Opens the stored API key or client secret.
    pub fn stored_secret(&self, vault: &Vault) -> Result<Option<SecretString>, VaultError> {
        self.open(
            vault,
            self.stored.as_ref().map(|s| &s.secret),
            SealedColumn::AccountSecret,
        )
    }

    fn open(
        &self,
        vault: &Vault,
        sealed: Option<&Sealed>,
        column: SealedColumn,
    ) -> Result<Option<SecretString>, VaultError> {
        let row = self.id.to_string();
        sealed.map(|s| vault.open_secret(s, column.aad(&row))).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn account(expires_at: Option<Millis>, issued: Option<Millis>) -> ConnectedAccount {
        let mut a = ConnectedAccount::new(
            EnvironmentId::new(),
            DataIntegrationId::new(),
            Owner::user("user_1", None),
            ConnectionRole::Compatibility,
            AuthMethod::Oauth,
            0,
        );
        a.tokens = TokenSet {
            access_token: Some(Sealed(vec![1])),
            expires_at,
            refresh_token: None,
        };
        a.last_refreshed_at = issued;
        a
    }

    #[test]
    fn fresh_means_more_than_the_smaller_of_the_margin_and_half_the_lifetime_left() {
        // An hour-long token with a 5-minute margin: fresh until 5 minutes before expiry.
        let hour = account(Some(3_600_000), Some(0));
        assert!(hour.is_fresh(3_600_000 - 300_001, 300_000));
        assert!(!hour.is_fresh(3_600_000 - 300_000, 300_000));
        // A 2-minute token: half its life (60 s) is the margin.
        let short = account(Some(120_000), Some(0));
        assert!(short.is_fresh(59_999, 300_000));
        assert!(!short.is_fresh(60_000, 300_000));
        // Imported (lifetime unknown): the full margin.
        let imported = account(Some(120_000), None);
        assert!(!imported.is_fresh(0, 300_000));
        // No expiry: fresh; no token: never.
        assert!(account(None, None).is_fresh(i64::MAX / 2, 300_000));
        let mut none = account(None, None);
        none.tokens.access_token = None;
        assert!(!none.is_fresh(0, 300_000));
    }

    #[test]
    fn state_changes_move_the_generation_when_tokens_change() {
        let mut a = account(Some(10), Some(0));
        a.mark_needs_reauthorization("invalid_grant", 5);
        assert_eq!(
            (a.state, a.state_reason.as_deref(), a.updated_at),
            (AccountState::NeedsReauthorization, Some("invalid_grant"), 5)
        );
        a.mark_refreshed(TokenSet::default(), vec!["repo".into()], BTreeMap::new(), 7);
        assert_eq!((a.refresh_generation, a.last_refreshed_at), (1, Some(7)));
        a.mark_connected(8);
        assert_eq!((a.state, a.state_reason.clone()), (AccountState::Connected, None));
        a.established_by_user_id = Some("user_1".into());
        a.wipe("membership_ended", 9);
        assert_eq!(a.tokens, TokenSet::default());
        assert_eq!((a.refresh_generation, a.established_by_user_id.clone()), (2, None));
        assert_eq!(a.state, AccountState::NeedsReauthorization);
    }
}
