//! Events: what changed, as the application sees it (contract §5). Each event is built once,
//! serialised once into the exact bytes that `GET /events` returns and webhooks deliver, and
//! appended in the same transaction as the change it describes.

use serde::Serialize;

pub use crate::domain::EventType;
use crate::domain::{ConnectedAccount, ConnectionRole, Owner, Ownership};
use crate::ids::{EnvironmentId, EventId};
use crate::time::{format_ms, Millis};

/// A change to a connection, which fans out into one event per family that sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// Created in, or returned to, `connected`.
    Connected,
    /// Entered `needs_reauthorization`.
    ReauthorizationNeeded,
    /// Deleted.
    Disconnected,
}

impl AccountChange {
    /// The legacy family fires for compatibility connections only; the newer one for all.
    fn types(self, role: ConnectionRole) -> Vec<EventType> {
        let (legacy, all) = match self {
            Self::Connected => (
                EventType::ConnectedAccountConnected,
                EventType::AccountConnectionConnected,
            ),
            Self::ReauthorizationNeeded => (
                EventType::ConnectedAccountReauthorizationNeeded,
                EventType::AccountConnectionReauthorizationNeeded,
            ),
            Self::Disconnected => (
                EventType::ConnectedAccountDisconnected,
                EventType::AccountConnectionDisconnected,
            ),
        };
        match role {
            ConnectionRole::Compatibility => vec![legacy, all],
            ConnectionRole::Standard => vec![all],
        }
    }
}

/// Who caused an event (`context.actor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An API call made on behalf of this user.
    User(String),
    /// Pipes itself (background refresh).
    System,
    /// Nobody the application could name (an organization call without a member).
    Unknown,
}

impl Actor {
    /// The user the request names, if any.
    pub fn from_user(user_id: Option<&str>) -> Self {
        user_id.map_or(Self::Unknown, |u| Self::User(u.to_owned()))
    }

    fn context(&self) -> Option<Context> {
        let actor = match self {
            Self::User(id) => ActorView {
                id: id.clone(),
                source: "api",
                name: None,
            },
            Self::System => ActorView {
                id: "pipes".into(),
                source: "system",
                name: Some("Pipes".into()),
            },
            Self::Unknown => return None,
        };
        Some(Context { actor })
    }
}

#[derive(Serialize)]
struct ActorView {
    id: String,
    source: &'static str,
    name: Option<String>,
}

#[derive(Serialize)]
struct Context {
    actor: ActorView,
}

#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    object: &'static str,
    id: String,
    event: &'static str,
    data: &'a D,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<Context>,
}

/// One event, ready to append: `body` is the exact JSON served and delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `event_…`; orders `/events`.
    pub id: EventId,
    /// The environment it belongs to.
    pub environment_id: EnvironmentId,
    /// Its type.
    pub event: EventType,
    /// `data.organization_id`, for filtering.
    pub organization_id: Option<String>,
    /// When it happened.
    pub created_at: Millis,
    /// The envelope as compact JSON (what JavaScript's `JSON.stringify` gives for it parsed).
    pub body: String,
}

impl Event {
    fn new<D: Serialize>(
        environment_id: EnvironmentId,
        event: EventType,
        organization_id: Option<String>,
        data: &D,
        actor: &Actor,
        at: Millis,
    ) -> Self {
        let id = EventId::new();
        let envelope = Envelope {
            object: "event",
            id: id.to_string(),
            event: event.as_str(),
            data,
            created_at: format_ms(at),
            context: actor.context(),
        };
        // Serialising plain structs of strings cannot fail.
        let body = serde_json::to_string(&envelope).unwrap_or_default();
        Self {
            id,
            environment_id,
            event,
            organization_id,
            created_at: at,
            body,
        }
    }
}

/// `data` of connection events: the connection without secrets or config (contract §5.3).
#[derive(Serialize)]
struct AccountData<'a> {
    object: &'static str,
    id: String,
    data_integration_id: String,
    provider_slug: &'a str,
    user_id: Option<&'a str>,
    organization_id: Option<&'a str>,
    scopes: &'a [String],
    state: &'a str,
    created_at: String,
    updated_at: String,
    connection_role: &'static str,
    account_identifier: Option<&'a str>,
    account_display_name: Option<&'a str>,
    auth_method: &'static str,
    api_key_last_4: Option<&'a str>,
    established_by_user_id: Option<&'a str>,
    state_reason: Option<&'a str>,
}

/// The events of a change to `account` (whose root has `provider_slug`), timed at its
/// `updated_at` (or now, for a deletion).
pub fn account_events(
    change: AccountChange,
    account: &ConnectedAccount,
    provider_slug: &str,
    actor: &Actor,
) -> Vec<Event> {
    let at = match change {
        AccountChange::Disconnected => crate::time::now_ms(),
        _ => account.updated_at,
    };
    let data = AccountData {
        object: "connected_account",
        id: account.id.to_string(),
        data_integration_id: account.data_integration_id.to_string(),
        provider_slug,
        user_id: account.owner.user_id.as_deref(),
        organization_id: account.owner.organization_id.as_deref(),
        scopes: &account.scopes,
        state: match change {
            AccountChange::Disconnected => "disconnected",
            _ => account.state.as_str(),
        },
        created_at: format_ms(account.created_at),
        updated_at: format_ms(at.max(account.updated_at)),
        connection_role: account.role.as_str(),
        account_identifier: account.account_identifier.as_deref(),
        account_display_name: account.account_display_name.as_deref(),
        auth_method: account.auth_method.as_str(),
        api_key_last_4: None,
        established_by_user_id: account.established_by_user_id.as_deref(),
        state_reason: account.state_reason.as_deref(),
    };
    change
        .types(account.role)
        .into_iter()
        .map(|t| {
            Event::new(
                account.environment_id,
                t,
                account.owner.organization_id.clone(),
                &data,
                actor,
                at,
            )
        })
        .collect()
}

/// An attempt to connect that failed with nothing saved.
#[derive(Debug, Clone)]
pub struct ConnectionFailure<'a> {
    /// The environment.
    pub environment_id: EnvironmentId,
    /// The root it targeted.
    pub data_integration_id: String,
    /// Its provider slug.
    pub provider_slug: &'a str,
    /// The owner it was for.
    pub owner: &'a Owner,
    /// Whether it was made with `connection_intent: "add"`.
    pub add: bool,
    /// Our error code (the finish vocabulary).
    pub error_code: &'a str,
    /// Human-readable reason.
    pub error_reason: Option<&'a str>,
    /// The provider's raw `error`.
    pub provider_error: Option<&'a str>,
    /// The provider's `error_description`.
    pub provider_error_description: Option<&'a str>,
    /// Developer-attested account id, when the attempt named one.
    pub account_identifier: Option<&'a str>,
    /// The user who tried.
    pub actor: Actor,
}

#[derive(Serialize)]
struct FailureData<'a> {
    object: &'static str,
    data_integration_id: &'a str,
    provider_slug: &'a str,
    user_id: Option<&'a str>,
    organization_id: Option<&'a str>,
    error_code: &'a str,
    error_reason: Option<&'a str>,
    provider_error: Option<&'a str>,
    provider_error_description: Option<&'a str>,
    created_at: String,
    account_identifier: Option<&'a str>,
}

/// The events of a failed attempt: `add_failed` for an `add`, else both `connection_failed`.
pub fn failure_events(f: &ConnectionFailure<'_>) -> Vec<Event> {
    let at = crate::time::now_ms();
    let data = FailureData {
        object: "connection_failed",
        data_integration_id: &f.data_integration_id,
        provider_slug: f.provider_slug,
        user_id: match f.owner.ownership {
            Ownership::User => f.owner.user_id.as_deref(),
            Ownership::Organization => match &f.actor {
                Actor::User(u) => Some(u.as_str()),
                _ => None,
            },
        },
        organization_id: f.owner.organization_id.as_deref(),
        error_code: f.error_code,
        error_reason: f.error_reason,
        provider_error: f.provider_error,
        provider_error_description: f.provider_error_description,
        created_at: format_ms(at),
        account_identifier: f.account_identifier,
    };
    let types = if f.add {
        vec![EventType::AccountConnectionAddFailed]
    } else {
        vec![
            EventType::ConnectedAccountConnectionFailed,
            EventType::AccountConnectionConnectionFailed,
        ]
    };
    types
        .into_iter()
        .map(|t| {
            Event::new(
                f.environment_id,
                t,
                f.owner.organization_id.clone(),
                &data,
                &f.actor,
                at,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::domain::AuthMethod;
    use crate::ids::DataIntegrationId;

    #[test]
    fn every_type_round_trips() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("pipes.connected_account.exploded"), None);
    }

    fn account(role: ConnectionRole) -> ConnectedAccount {
        let mut a = ConnectedAccount::new(
            EnvironmentId::new(),
            DataIntegrationId::new(),
            Owner::user("user_1", Some("org_1")),
            role,
            AuthMethod::Oauth,
            1_768_478_400_000,
        );
        a.account_display_name = Some("Work \"GitHub\"\n".into());
        a.established_by_user_id = Some("user_1".into());
        a.scopes = vec!["repo".into()];
        a.config = BTreeMap::from([("secretish".to_owned(), "config-value".to_owned())]);
        a
    }

    #[test]
    fn connection_events_carry_the_contract_payload_and_no_config() {
        let a = account(ConnectionRole::Compatibility);
        let events = account_events(AccountChange::Connected, &a, "github", &Actor::User("user_1".into()));
        let types: Vec<_> = events.iter().map(|e| e.event).collect();
        assert_eq!(
            types,
            [
                EventType::ConnectedAccountConnected,
                EventType::AccountConnectionConnected
            ]
        );
        let v: serde_json::Value = serde_json::from_str(&events[0].body).unwrap();
        assert_eq!(v["object"], "event");
        assert_eq!(v["id"], events[0].id.to_string());
        assert_eq!(v["data"]["provider_slug"], "github");
        assert_eq!(v["data"]["organization_id"], "org_1");
        assert_eq!(v["data"]["state"], "connected");
        assert_eq!(v["data"]["created_at"], "2026-01-15T12:00:00.000Z");
        assert_eq!(v["context"]["actor"]["source"], "api");
        assert!(v["data"].get("config").is_none());
        assert!(!events[0].body.contains("config-value"));
        // Compact, and re-serialising the parsed value gives the same bytes (JSON.stringify).
        assert_eq!(serde_json::to_string(&v).unwrap().len(), events[0].body.len());
        assert!(!events[0].body.contains(": "));

        let standard = account(ConnectionRole::Standard);
        let gone = account_events(AccountChange::Disconnected, &standard, "github", &Actor::System);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].event, EventType::AccountConnectionDisconnected);
        assert!(gone[0].body.contains(r#""state":"disconnected""#));
    }

    #[test]
    fn failures_of_an_add_are_add_failed_only() {
        let owner = Owner::user("user_1", None);
        let mut f = ConnectionFailure {
            environment_id: EnvironmentId::new(),
            data_integration_id: DataIntegrationId::new().to_string(),
            provider_slug: "github",
            owner: &owner,
            add: true,
            error_code: "provider_error",
            error_reason: Some("denied"),
            provider_error: Some("access_denied"),
            provider_error_description: None,
            account_identifier: None,
            actor: Actor::User("user_1".into()),
        };
        let add = failure_events(&f);
        assert_eq!(add.len(), 1);
        assert_eq!(add[0].event, EventType::AccountConnectionAddFailed);
        f.add = false;
        let plain = failure_events(&f);
        assert_eq!(plain.len(), 2);
        let v: serde_json::Value = serde_json::from_str(&plain[0].body).unwrap();
        assert_eq!(v["data"]["object"], "connection_failed");
        assert_eq!(v["data"]["provider_error"], "access_denied");
        assert!(v["data"].get("id").is_none());
    }
}
