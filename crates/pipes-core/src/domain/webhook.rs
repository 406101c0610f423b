use super::EventType;
use crate::ids::{EnvironmentId, EventId, WebhookEndpointId};
use crate::time::Millis;
use crate::vault::Sealed;

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointStatus {
    /// Receives the events it subscribes to.
    Enabled,
    /// Receives nothing; events during this time are not replayed on re-enable.
    Disabled,
}

impl EndpointStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Enabled => "enabled",
            Self::Disabled => "disabled",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(Self::Enabled),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

/// An application's webhook receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    /// `we_…`
    pub id: WebhookEndpointId,
    /// Owning environment.
    pub environment_id: EnvironmentId,
    /// Where deliveries go (https, or http on loopback).
    pub endpoint_url: String,
    /// The sealed signing secret (`whsec_…`).
    pub secret: Sealed,
    /// Enabled or disabled.
    pub status: EndpointStatus,
    /// The event types it subscribes to.
    pub events: Vec<EventType>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// Where one event stands toward one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not delivered yet; will be tried (again).
    Pending,
    /// A 2xx was received.
    Delivered,
    /// Given up after the retry period, or never deliverable.
    Failed,
}

impl DeliveryState {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// The delivery of one event to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The endpoint.
    pub endpoint_id: WebhookEndpointId,
    /// The event.
    pub event_id: EventId,
    /// The event's type.
    pub event: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: i64,
    /// When it (last) became pending: retries stop a retry period after this.
    pub pending_since: Millis,
    /// When it was delivered or given up.
    pub finished_at: Option<Millis>,
    /// HTTP status of the last attempt, if one was received.
    pub last_status: Option<i64>,
    /// Error of the last attempt (never the secret or the body).
    pub last_error: Option<String>,
}

/// A pending delivery with the exact body to send.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    /// The event.
    pub event_id: EventId,
    /// The event's compact JSON.
    pub body: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When it became pending.
    pub pending_since: Millis,
    /// When the event was created.
    pub event_created_at: Millis,
}

/// One attempt to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// 1, 2, …
    pub attempt: i64,
    /// When it started.
    pub started_at: Millis,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<i64>,
    /// Time to the answer or the failure.
    pub latency_ms: i64,
    /// Connection error, timeout, or the non-2xx status's reason.
    pub error: Option<String>,
}

/// What an attempt leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// 2xx: done; the endpoint is healthy again.
    Delivered,
    /// Failed: the endpoint waits until `retry_at`; deliveries pending since before
    /// `give_up_before` are marked failed.
    Retry {
        /// When the endpoint is tried next.
        retry_at: Millis,
        /// Consecutive failures of the endpoint, this one included.
        failure_streak: i64,
        /// Deliveries pending since before this are given up.
        give_up_before: Millis,
    },
}
