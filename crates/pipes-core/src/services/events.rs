//! `GET /events` (contract §4.15): filters, cursors, and the stored bodies as they are.

use std::sync::Arc;

use crate::domain::Environment;
use crate::error::{FieldError, ServiceError};
use crate::events::EventType;
use crate::ids::EventId;
use crate::pagination::{Page, PageRequest};
use crate::store::{EventFilter, Store, StoredEvent};
use crate::time::parse_rfc3339;

/// The filters of `GET /events`, as received.
#[derive(Debug, Default)]
pub struct EventQuery<'a> {
    /// Event type names; empty = all.
    pub events: Vec<&'a str>,
    /// Created at or after (RFC 3339).
    pub range_start: Option<&'a str>,
    /// Created strictly before (RFC 3339).
    pub range_end: Option<&'a str>,
    /// `data.organization_id`.
    pub organization_id: Option<&'a str>,
}

/// Reads events.
#[derive(Clone)]
pub struct Events {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Over a store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// One page of the environment's events.
    pub async fn list(
        &self,
        env: &Environment,
        query: EventQuery<'_>,
        page: PageRequest,
    ) -> Result<Page<StoredEvent>, ServiceError> {
        let mut errors = Vec::new();
        let mut types = Vec::new();
        for name in &query.events {
            match EventType::parse(name) {
                Some(t) if !types.contains(&t) => types.push(t),
                Some(_) => {}
                None => errors.push(FieldError::new(
                    "events",
                    "invalid_event",
                    format!("'{name}' is not an event type."),
                )),
            }
        }
        let mut time = |field: &str, raw: Option<&str>| {
            raw.and_then(|raw| {
                let parsed = parse_rfc3339(raw);
                if parsed.is_none() {
                    errors.push(FieldError::new(
                        field,
                        "invalid_date",
                        format!("{field} must be an ISO 8601 timestamp such as 2026-01-15T12:00:00.000Z."),
                    ));
                }
                parsed
            })
        };
        let range_start = time("range_start", query.range_start);
        let range_end = time("range_end", query.range_end);
        if let (Some(start), Some(end)) = (range_start, range_end) {
            if start > end {
                errors.push(FieldError::new(
                    "range_end",
                    "invalid_range",
                    "range_end must not be before range_start.",
                ));
            }
        }
        if let Some((field, cursor)) = page.cursor() {
            let known = match EventId::parse(cursor) {
                Ok(id) => self.store.event_exists(env.id, id).await?,
                Err(_) => false,
            };
            if !known {
                errors.push(FieldError::new(
                    field,
                    "invalid_cursor",
                    format!("{field} must be the id of an event in this list."),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(ServiceError::invalid_fields(errors));
        }
        let filter = EventFilter {
            types,
            range_start,
            range_end,
            organization_id: query.organization_id.map(str::to_owned),
        };
        let rows = self.store.scan_events(env.id, &filter, &page.scan()).await?;
        Ok(page.page(rows, |e| e.id.clone()))
    }
}
