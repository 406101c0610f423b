use std::collections::BTreeMap;

use crate::domain::Owner;
use crate::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use crate::time::Millis;
use crate::vault::Sealed;

/// Where a pending authorization is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationStatus {
    /// Created; the link has not been used.
    Pending,
    /// The user went on to the provider.
    Opened,
    /// Tokens exchanged and held until the app finishes (session binding).
    Held,
    /// The connection was saved.
    Completed,
    /// It ended without a connection (declined, failed, expired, wrong verifier).
    Failed,
}

impl AuthorizationStatus {
    /// Storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Opened => "opened",
            Self::Held => "held",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "opened" => Some(Self::Opened),
            "held" => Some(Self::Held),
            "completed" => Some(Self::Completed),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// What a connect attempt should do with the owner's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectionIntent {
    /// The compatibility connection: create it or reconnect it in place.
    Compatibility,
    /// A new connection.
    Add,
    /// Exactly this connection.
    Reauthorize(ConnectedAccountId),
}

/// A single-use, short-lived authorization created by `POST …/authorize`. Its `Debug` shows
/// no state, token or code: they are bearer values while the flow runs.
#[derive(Clone, PartialEq, Eq)]
pub struct Authorization {
    /// Opaque, URL-safe, unguessable; the path segment of the authorize URL.
    pub id: String,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// The root being connected.
    pub data_integration_id: DataIntegrationId,
    /// Who will own the connection.
    pub owner: Owner,
    /// The user who authorizes (the owner, or the acting member).
    pub user_id: String,
    /// Which connection it targets.
    pub intent: ConnectionIntent,
    /// Where the browser goes at the end.
    pub return_to: Option<String>,
    /// Caller-facing state, appended to `return_to`.
    pub state: String,
    /// Provider-facing state: finds this authorization at the callback.
    pub provider_state: String,
    /// Our PKCE verifier toward the provider, sealed.
    pub pkce_verifier: Option<Sealed>,
    /// The caller's session-binding challenge.
    pub code_challenge: Option<String>,
    /// Installation-scope config values.
    pub config: BTreeMap<String, String>,
    /// Label for the connection: `None` keeps, `Some(None)` clears, `Some(Some)` sets.
    pub account_display_name: Option<Option<String>>,
    /// Protects the confirmation form; in a widget flow, the handoff token the widget hands the
    /// hosted page (never shown in it).
    pub csrf_token: String,
    /// A widget flow: the hosted page waits for the opener's handoff instead of offering a
    /// Continue button, so a forwarded link connects nothing.
    pub handoff: bool,
    /// SHA-256 of the cookie given to the browser sent to the provider; the callback must
    /// bring it.
    pub browser_hash: Option<String>,
    /// Life-cycle status.
    pub status: AuthorizationStatus,
    /// SHA-256 of the connect code, once issued.
    pub connect_code_hash: Option<String>,
    /// When the connect code stops working.
    pub connect_code_expires_at: Option<Millis>,
    /// Exchanged tokens held for `finish`, sealed.
    pub held_tokens: Option<Sealed>,
    /// The connection it produced.
    pub connected_account_id: Option<ConnectedAccountId>,
    /// Creation time.
    pub created_at: Millis,
    /// When it stops being usable.
    pub expires_at: Millis,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("data_integration_id", &self.data_integration_id)
            .field("owner", &self.owner)
            .field("intent", &self.intent)
            .field("status", &self.status)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A hosted connect session: the page an application without React sends its user to, for
/// one user (and organization) and, optionally, a few providers. The application gets a link
/// with a single-use code; the first visit trades the code for a cookie, so no credential that
/// lasts stays in a URL.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectSession {
    /// Random, opaque.
    pub id: String,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// Whose connections the page shows and changes.
    pub owner: Owner,
    /// The providers it offers (slugs); empty means every enabled one.
    pub providers: Vec<String>,
    /// Where "Done" sends a full-page visit (a registered redirect URI).
    pub return_to: Option<String>,
    /// The origin a popup's opener is told the result at.
    pub opener_origin: Option<String>,
    /// SHA-256 of the link's single-use code.
    pub code_hash: String,
    /// SHA-256 of the cookie the first visit set.
    pub cookie_hash: Option<String>,
    /// Protects the page's forms.
    pub csrf_token: String,
    /// Creation time.
    pub created_at: Millis,
    /// When it stops working (the code: 10 minutes unopened; the page: 30 minutes).
    pub expires_at: Millis,
}

impl std::fmt::Debug for ConnectSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectSession")
            .field("id", &self.id)
            .field("environment_id", &self.environment_id)
            .field("owner", &self.owner)
            .field("providers", &self.providers)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{DataIntegrationId, EnvironmentId};

    #[test]
    fn debug_shows_no_state_or_csrf_token() {
        let a = Authorization {
            id: "auth1".into(),
            environment_id: EnvironmentId::new(),
            data_integration_id: DataIntegrationId::new(),
            owner: Owner::user("u", None),
            user_id: "u".into(),
            intent: ConnectionIntent::Compatibility,
            return_to: None,
            state: "caller-state-secret".into(),
            provider_state: "provider-state-secret".into(),
            pkce_verifier: None,
            code_challenge: Some("challenge-secret".into()),
            config: BTreeMap::new(),
            account_display_name: None,
            csrf_token: "csrf-secret".into(),
            handoff: false,
            browser_hash: None,
            status: AuthorizationStatus::Pending,
            connect_code_hash: Some("code-hash-secret".into()),
            connect_code_expires_at: None,
            held_tokens: None,
            connected_account_id: None,
            created_at: 0,
            expires_at: 0,
        };
        let text = format!("{a:?}");
        for secret in [
            "caller-state",
            "provider-state",
            "challenge-secret",
            "csrf-secret",
            "code-hash",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}
