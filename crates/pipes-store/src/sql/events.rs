//! [`EventStore`]: appending, reading and purging events.

use async_trait::async_trait;
use pipes_core::events::Event;
use pipes_core::ids::{EnvironmentId, EventId};
use pipes_core::pagination::Scan;
use pipes_core::store::{EventFilter, EventStore, StoreResult, StoredEvent};

use super::{append_events_in, direction, exec, Params, SqlStore};
use crate::backend_err;
use crate::rows::get;

#[async_trait]
impl EventStore for SqlStore {
    async fn append_events(&self, events: &[Event]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            append_events_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn scan_events(
        &self,
        env: EnvironmentId,
        filter: &EventFilter,
        scan: &Scan,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (cmp, dir) = direction(scan);
        let mut p = Params::default();
        let mut conditions = vec![format!("environment_id = {}", p.push(env.to_string()))];
        if let Some(cursor) = scan.cursor.as_deref() {
            conditions.push(format!("id {cmp} {}", p.push(cursor)));
        }
        if let Some(start) = filter.range_start {
            conditions.push(format!("created_at >= {}", p.push(start)));
        }
        if let Some(end) = filter.range_end {
            conditions.push(format!("created_at < {}", p.push(end)));
        }
        if let Some(org) = filter.organization_id.as_deref() {
            conditions.push(format!("organization_id = {}", p.push(org)));
        }
        if !filter.types.is_empty() {
            conditions.push(format!("event IN {}", p.list(filter.types.iter().map(|t| t.as_str()))));
        }
        let sql = format!(
            "SELECT id, body FROM events WHERE {} ORDER BY id {dir} LIMIT {}",
            conditions.join(" AND "),
            p.push(i64::from(scan.limit))
        );
        self.all(p.query(&sql)?, |r| {
            Ok(StoredEvent {
                id: get(r, "id")?,
                body: get(r, "body")?,
            })
        })
        .await
    }

    async fn event_exists(&self, env: EnvironmentId, id: EventId) -> StoreResult<bool> {
        self.exists(q!(
            "SELECT 1 FROM events WHERE environment_id = $1 AND id = $2",
            env.to_string(),
            id.to_string()
        ))
        .await
    }

    async fn purge_events(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let old = sqlx::query("SELECT id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2")
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_err)?;
        let Some(last) = old.last() else {
            return Ok(0);
        };
        let last: String = get(last, "id")?;
        let bound = sqlx::query("SELECT created_at FROM events WHERE id = $1")
            .bind(&last)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend_err)?;
        let bound: i64 = get(&bound, "created_at")?;
        // Everything up to and including the last selected timestamp, still older than `before`.
        exec(
            &mut tx,
            q!(
                "DELETE FROM webhook_deliveries WHERE event_id IN \
             (SELECT id FROM events WHERE created_at <= $1 AND created_at < $2)",
                bound,
                before
            ),
        )
        .await?;
        let done = exec(
            &mut tx,
            q!(
                "DELETE FROM events WHERE created_at <= $1 AND created_at < $2",
                bound,
                before
            ),
        )
        .await?;
        tx.commit().await.map_err(backend_err)?;
        Ok(done)
    }

    fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.events_appended.clone()
    }
}
