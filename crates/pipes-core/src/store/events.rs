//! Events: the append-only record of connection changes, fanned out to webhook deliveries.

use async_trait::async_trait;

use super::StoreResult;
use crate::events::{Event, EventType};
use crate::ids::{EnvironmentId, EventId};
use crate::pagination::Scan;

/// `GET /events` filters.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types; empty = all.
    pub types: Vec<EventType>,
    /// Created at or after.
    pub range_start: Option<i64>,
    /// Created strictly before.
    pub range_end: Option<i64>,
    /// `data.organization_id` equals.
    pub organization_id: Option<String>,
}

/// An event as stored: its id and exact JSON.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// `event_…`
    pub id: String,
    /// The envelope's compact JSON.
    pub body: String,
}

/// Events. Writes of the other aggregates append theirs in their own transaction.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends events on their own (a failed attempt saves nothing else), with their
    /// deliveries, in one transaction.
    async fn append_events(&self, events: &[Event]) -> StoreResult<()>;
    /// A page of an environment's events per [`Scan`] and filter.
    async fn scan_events(&self, env: EnvironmentId, filter: &EventFilter, scan: &Scan)
        -> StoreResult<Vec<StoredEvent>>;
    /// Whether an event exists in the environment (cursor validation).
    async fn event_exists(&self, env: EnvironmentId, id: EventId) -> StoreResult<bool>;
    /// Deletes up to `limit` events created before `before`, with their deliveries; returns how many.
    async fn purge_events(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Notified after every committed write that appended events in this process.
    fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify>;
}
