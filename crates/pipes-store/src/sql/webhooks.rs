//! [`WebhookStore`]: endpoints, their subscriptions, deliveries and attempts.

use async_trait::async_trait;
use pipes_core::domain::{AttemptOutcome, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, WebhookEndpoint};
use pipes_core::ids::{EnvironmentId, EventId, WebhookEndpointId};
use pipes_core::pagination::Scan;
use pipes_core::store::{StoreError, StoreResult, WebhookStore};

use super::{direction, exec, release_lease, take_lease, LeaseColumns, Params, SqlStore, Tx};
use crate::backend_err;
use crate::rows::{self, get};

const ENDPOINT_LEASE: LeaseColumns = LeaseColumns {
    table: "webhook_endpoints",
    owner: "lease_owner",
    until: "lease_until",
    reentrant: false,
};

/// An endpoint's columns the API can change.
fn endpoint_columns<'q>(p: &mut Params<'q>, e: &'q WebhookEndpoint) {
    let events: Vec<&str> = e.events.iter().map(|t| t.as_str()).collect();
    p.set("endpoint_url", e.endpoint_url.as_str())
        .set("status", e.status.as_str())
        .set("events", rows::to_json(&events))
        .set("updated_at", e.updated_at);
}

/// Replaces an endpoint's subscriptions (the rows events are matched against).
async fn subscribe(tx: &mut Tx, e: &WebhookEndpoint) -> StoreResult<()> {
    sqlx::query("DELETE FROM webhook_subscriptions WHERE endpoint_id = $1")
        .bind(e.id.to_string())
        .execute(&mut **tx)
        .await
        .map_err(backend_err)?;
    let mut types: Vec<&str> = e.events.iter().map(|t| t.as_str()).collect();
    types.sort_unstable();
    types.dedup();
    if types.is_empty() {
        return Ok(());
    }
    let mut p = Params::default();
    let id = p.push(e.id.to_string());
    let values: Vec<String> = types.into_iter().map(|t| format!("({id}, {})", p.push(t))).collect();
    let sql = format!(
        "INSERT INTO webhook_subscriptions (endpoint_id, event) VALUES {}",
        values.join(", ")
    );
    p.query(&sql)?.execute(&mut **tx).await.map_err(backend_err)?;
    Ok(())
}

#[async_trait]
impl WebhookStore for SqlStore {
    async fn insert_webhook_endpoint(&self, e: &WebhookEndpoint) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut p = Params::default();
        endpoint_columns(&mut p, e);
        p.set("id", e.id.to_string())
            .set("environment_id", e.environment_id.to_string())
            .set("secret", e.secret.0.clone())
            .set("created_at", e.created_at);
        let sql = format!("INSERT INTO webhook_endpoints {}", p.insert());
        exec(&mut tx, p.query(&sql)?).await?;
        subscribe(&mut tx, e).await?;
        tx.commit().await.map_err(backend_err)
    }

    async fn webhook_endpoint(
        &self,
        env: EnvironmentId,
        id: WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        self.optional(
            q!(
                "SELECT * FROM webhook_endpoints WHERE environment_id = $1 AND id = $2",
                env.to_string(),
                id.to_string()
            ),
            rows::webhook_endpoint,
        )
        .await
    }

    async fn scan_webhook_endpoints(&self, env: EnvironmentId, scan: &Scan) -> StoreResult<Vec<WebhookEndpoint>> {
        let (cmp, dir) = direction(scan);
        let sql = format!(
            "SELECT * FROM webhook_endpoints WHERE environment_id = $1 AND ($2 IS NULL OR id {cmp} $2) \
             ORDER BY id {dir} LIMIT $3"
        );
        self.all(
            q!(&sql, env.to_string(), scan.cursor.as_deref(), i64::from(scan.limit)),
            rows::webhook_endpoint,
        )
        .await
    }

    async fn all_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        self.all(
            q!("SELECT * FROM webhook_endpoints ORDER BY id"),
            rows::webhook_endpoint,
        )
        .await
    }

    async fn update_webhook_endpoint(&self, e: &WebhookEndpoint) -> StoreResult<()> {
        let mut tx = self.begin_write().await?;
        let mut p = Params::default();
        endpoint_columns(&mut p, e);
        let sql = format!(
            "UPDATE webhook_endpoints SET {} WHERE id = {} AND environment_id = {}",
            p.assignments(),
            p.push(e.id.to_string()),
            p.push(e.environment_id.to_string())
        );
        let done = exec(&mut tx, p.query(&sql)?).await?;
        if done == 1 {
            subscribe(&mut tx, e).await?;
        }
        tx.commit().await.map_err(backend_err)
    }

    async fn delete_webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId) -> StoreResult<bool> {
        Ok(self
            .write(q!(
                "DELETE FROM webhook_endpoints WHERE environment_id = $1 AND id = $2",
                env.to_string(),
                id.to_string()
            ))
            .await?
            == 1)
    }

    async fn endpoints_due(&self, now: i64, limit: u32) -> StoreResult<Vec<WebhookEndpointId>> {
        let due = q!(
            "SELECT e.id FROM webhook_endpoints e WHERE e.status = 'enabled' AND e.retry_at <= $1 \
             AND (e.lease_until IS NULL OR e.lease_until < $1) \
             AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending') \
             ORDER BY e.retry_at LIMIT $2",
            now,
            i64::from(limit)
        );
        self.all(due, |r| {
            WebhookEndpointId::parse(&get::<String>(r, "id")?)
                .map_err(|e| StoreError::Backend(format!("unreadable webhook endpoint id: {e}")))
        })
        .await
    }

    async fn take_endpoint_lease(
        &self,
        id: WebhookEndpointId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>> {
        take_lease(self, &ENDPOINT_LEASE, id.to_string(), holder, now, until).await
    }

    async fn release_endpoint_lease(&self, id: WebhookEndpointId, holder: &str) -> StoreResult<()> {
        release_lease(self, &ENDPOINT_LEASE, id.to_string(), holder).await
    }

    async fn webhook_endpoint_by_id(&self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        self.optional(
            q!("SELECT * FROM webhook_endpoints WHERE id = $1", id.to_string()),
            rows::webhook_endpoint,
        )
        .await
    }

    async fn due_deliveries(&self, id: WebhookEndpointId, limit: u32) -> StoreResult<Vec<DueDelivery>> {
        self.all(
            q!(
                "SELECT d.event_id, d.attempts, d.pending_since, ev.body, ev.created_at \
             FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
             WHERE d.endpoint_id = $1 AND d.state = 'pending' ORDER BY d.event_id LIMIT $2",
                id.to_string(),
                i64::from(limit)
            ),
            rows::due_delivery,
        )
        .await
    }

    async fn record_delivery_attempts(
        &self,
        endpoint: WebhookEndpointId,
        holder: &str,
        attempts: &[(EventId, DeliveryAttempt, AttemptOutcome)],
        lease_until: i64,
    ) -> StoreResult<bool> {
        let Some((_, _, last)) = attempts.last() else {
            return Ok(true);
        };
        let endpoint = endpoint.to_string();
        let mut tx = self.begin_write().await?;
        let (streak, retry_at) = match *last {
            AttemptOutcome::Delivered => (0, 0),
            AttemptOutcome::Retry {
                retry_at,
                failure_streak,
                ..
            } => (failure_streak, retry_at),
        };
        let held = exec(
            &mut tx,
            q!(
                "UPDATE webhook_endpoints SET lease_until = $1, failure_streak = $2, retry_at = $3 \
             WHERE id = $4 AND lease_owner = $5",
                lease_until,
                streak,
                retry_at,
                endpoint.as_str(),
                holder
            ),
        )
        .await?;
        if held != 1 {
            return Ok(false);
        }
        // Successes by status, one statement per status; then the one failure, if any.
        let mut statuses: Vec<Option<i64>> = Vec::new();
        for (_, a, o) in attempts {
            if *o == AttemptOutcome::Delivered && !statuses.contains(&a.status) {
                statuses.push(a.status);
            }
        }
        let finished = attempts
            .iter()
            .map(|(_, a, _)| a.started_at + a.latency_ms)
            .max()
            .unwrap_or(0);
        for status in statuses {
            let events = attempts
                .iter()
                .filter(|(_, a, o)| *o == AttemptOutcome::Delivered && a.status == status)
                .map(|(e, _, _)| e.to_string());
            let mut p = Params::default();
            p.set("last_status", status).set("finished_at", finished);
            let sql = format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = NULL, state = 'delivered', {} \
                 WHERE endpoint_id = {} AND event_id IN {}",
                p.assignments(),
                p.push(endpoint.as_str()),
                p.list(events)
            );
            exec(&mut tx, p.query(&sql)?).await?;
        }
        for (event, attempt, outcome) in attempts {
            let AttemptOutcome::Retry { give_up_before, .. } = outcome else {
                continue;
            };
            let finished = attempt.started_at + attempt.latency_ms;
            exec(
                &mut tx,
                q!(
                    "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1, last_error = $2 \
                 WHERE endpoint_id = $3 AND event_id = $4",
                    attempt.status,
                    attempt.error.as_deref(),
                    endpoint.as_str(),
                    event.to_string()
                ),
            )
            .await?;
            exec(
                &mut tx,
                q!(
                    "UPDATE webhook_deliveries SET state = 'failed', finished_at = $1 \
                 WHERE endpoint_id = $2 AND state = 'pending' AND pending_since < $3",
                    finished,
                    endpoint.as_str(),
                    give_up_before
                ),
            )
            .await?;
        }
        // Every attempt, in one statement.
        let mut p = Params::default();
        let rows: Vec<String> = attempts
            .iter()
            .map(|(event, a, _)| {
                let values = [
                    p.push(endpoint.as_str()),
                    p.push(event.to_string()),
                    p.push(a.attempt),
                    p.push(a.started_at),
                    p.push(a.status),
                    p.push(a.latency_ms),
                    p.push(a.error.as_deref()),
                ];
                format!("({})", values.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, started_at, status, latency_ms, error) \
             VALUES {}",
            rows.join(", ")
        );
        exec(&mut tx, p.query(&sql)?).await?;
        tx.commit().await.map_err(backend_err)?;
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        self.all(
            q!(
                "SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 IS NULL OR state = $2) \
             ORDER BY event_id DESC LIMIT $3",
                endpoint.to_string(),
                state.map(DeliveryState::as_str),
                i64::from(limit)
            ),
            rows::delivery,
        )
        .await
    }

    async fn delivery_attempts(
        &self,
        endpoint: WebhookEndpointId,
        event: EventId,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows =
            sqlx::query("SELECT * FROM webhook_attempts WHERE endpoint_id = $1 AND event_id = $2 ORDER BY attempt")
                .bind(endpoint.to_string())
                .bind(event.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
        rows.iter().map(rows::delivery_attempt).collect()
    }

    async fn redeliver(&self, endpoint: WebhookEndpointId, event: EventId, now: i64) -> StoreResult<bool> {
        let redelivered = self
            .counted(async {
                let mut tx = self.begin_write().await?;
                let again = exec(&mut tx, q!("UPDATE webhook_deliveries SET state = 'pending', pending_since = $1, finished_at = NULL \
                     WHERE endpoint_id = $2 AND event_id = $3", now, endpoint.to_string(), event.to_string())).await?;
                if again == 0 {
                    // An event the endpoint never received (it subscribed later, or was disabled).
                    let created = exec(&mut tx, q!("INSERT INTO webhook_deliveries (endpoint_id, event_id, event, state, attempts, pending_since) \
                         SELECT e.id, ev.id, ev.event, 'pending', 0, $1 FROM webhook_endpoints e \
                         JOIN events ev ON ev.environment_id = e.environment_id WHERE e.id = $2 AND ev.id = $3", now, endpoint.to_string(), event.to_string())).await?;
                    if created == 0 {
                        return Ok(false);
                    }
                }
                exec(&mut tx, q!("UPDATE webhook_endpoints SET retry_at = 0, failure_streak = 0 WHERE id = $1", endpoint.to_string())).await?;
                tx.commit().await.map_err(backend_err)?;
                Ok(true)
            })
            .await?;
        self.events_appended.notify_one();
        Ok(redelivered)
    }
}
