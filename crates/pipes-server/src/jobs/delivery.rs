//! Webhook delivery. Work is per endpoint: a worker takes an endpoint's lease, sends its
//! pending deliveries oldest event first, records every attempt in the same transaction that
//! extends the lease, and on a failure leaves the endpoint to back off (exponentially, with
//! jitter) while every other endpoint carries on. A process that dies holding a lease loses
//! nothing: the lease expires, another worker takes it, and the event goes out again with the
//! same id (at-least-once).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipes_core::egress::EgressError;
use pipes_core::ids::WebhookEndpointId;
use pipes_core::secret::SecretString;
use pipes_core::time::{now_ms, Millis};
use pipes_core::webhooks::{
    signature_header, AttemptOutcome, DeliveryAttempt, DeliveryPolicy, DueDelivery, EndpointStatus, WebhookEndpoint,
    SIGNATURE_HEADER,
};
use tokio::sync::{watch, Semaphore};

use super::{holder_name, sleep_or_stop};
use crate::state::App;

const USER_AGENT: &str = concat!("Pipes-Webhooks/", env!("CARGO_PKG_VERSION"));

/// How long a draining worker trusts its copy of the endpoint (URL, secret, status).
const ENDPOINT_REREAD: Duration = Duration::from_secs(2);

struct Worker {
    app: App,
    policy: DeliveryPolicy,
    holder: String,
    /// Endpoints this process is delivering to now.
    active: Mutex<HashSet<WebhookEndpointId>>,
    wake: Arc<tokio::sync::Notify>,
}

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let policy = app.delivery.clone();
    let worker = Arc::new(Worker {
        wake: app.store.events_appended(),
        app,
        holder: holder_name("delivery"),
        active: Mutex::new(HashSet::new()),
        policy,
    });
    let slots = Arc::new(Semaphore::new(worker.policy.concurrency.max(1)));
    let mut running = tokio::task::JoinSet::new();
    loop {
        if *stop.borrow() {
            break;
        }
        if let Err(e) = worker.claim(&slots, &mut running).await {
            tracing::warn!(error = %e, "webhook delivery: could not look for work");
        }
        while running.try_join_next().is_some() {}
        tokio::select! {
            () = worker.wake.notified() => {}
            stopping = sleep_or_stop(worker.policy.poll, &mut stop) => if stopping { break },
        }
    }
    // Let attempts in flight finish and record themselves; the caller bounds the wait.
    while running.join_next().await.is_some() {}
}

impl Worker {
    /// Takes due endpoints while this process has free slots, one task each.
    async fn claim(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
        running: &mut tokio::task::JoinSet<()>,
    ) -> Result<(), pipes_core::store::StoreError> {
        let free = slots.available_permits();
        if free == 0 {
            return Ok(());
        }
        let now = now_ms();
        let due = self
            .app
            .store
            .endpoints_due(now, u32::try_from(free * 2).unwrap_or(128))
            .await?;
        for id in due {
            if self.active.lock().unwrap_or_else(|p| p.into_inner()).contains(&id) {
                continue;
            }
            let Ok(permit) = slots.clone().try_acquire_owned() else {
                break;
            };
            let now = now_ms();
            let Some(took_over) = self
                .app
                .store
                .take_endpoint_lease(id, &self.holder, now, self.policy.lease_until(now))
                .await?
            else {
                continue; // another process got it first
            };
            if took_over {
                self.app.metrics.webhook_lease_takeover();
                tracing::info!(endpoint = %id, "took over a webhook endpoint whose worker stopped");
            }
            self.active.lock().unwrap_or_else(|p| p.into_inner()).insert(id);
            let this = self.clone();
            running.spawn(async move {
                if let Err(e) = this.drain(id).await {
                    tracing::warn!(endpoint = %id, error = %e, "webhook delivery interrupted");
                }
                let _ = this.app.store.release_endpoint_lease(id, &this.holder).await;
                this.active.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                drop(permit);
                // New work may have arrived while this endpoint was held.
                this.wake.notify_one();
            });
        }
        Ok(())
    }

    /// Sends an endpoint's pending deliveries in event order until none is left, one fails,
    /// or the lease is lost.
    async fn drain(&self, id: WebhookEndpointId) -> Result<(), pipes_core::store::StoreError> {
        // The endpoint is re-read now and then, so a change of URL, secret or status applies
        // within a second or two, without a read per delivery.
        let mut current: Option<(WebhookEndpoint, SecretString, Instant)> = None;
        loop {
            if current.as_ref().is_none_or(|(_, _, at)| at.elapsed() > ENDPOINT_REREAD) {
                let Some(endpoint) = self.app.store.webhook_endpoint_by_id(id).await? else {
                    return Ok(());
                };
                if endpoint.status != EndpointStatus::Enabled {
                    return Ok(());
                }
                let secret = match self.app.webhooks.secret(&endpoint) {
                    Ok(s) => s,
                    Err(e) => {
                        // A vault key is missing: nothing can be signed. Record it against the
                        // oldest delivery, where the operator looks, and back off like any failure.
                        tracing::error!(endpoint = %id, error = %e, "webhook secret cannot be opened");
                        if let Some(d) = self.app.store.due_deliveries(id, 1).await?.pop() {
                            let attempt = DeliveryAttempt {
                                attempt: d.attempts + 1,
                                started_at: now_ms(),
                                status: None,
                                latency_ms: 0,
                                error: Some("the endpoint's secret cannot be opened with PIPES_VAULT_KEYS".into()),
                            };
                            let outcome = self.policy.after_failure(&d, now_ms());
                            self.record(id, &mut vec![(d.event_id, attempt, outcome)]).await?;
                        }
                        return Ok(());
                    }
                };
                current = Some((endpoint, secret, Instant::now()));
            }
            let Some((endpoint, secret, _)) = current.as_ref() else {
                return Ok(());
            };
            let batch = self.app.store.due_deliveries(id, 64).await?;
            if batch.is_empty() {
                return Ok(());
            }
            // Outcomes are written in groups, one transaction each: after the batch, at the first
            // failure, and often enough to keep the lease. A crash before a write re-sends those
            // events later, with the same ids.
            let mut outcomes = Vec::new();
            let mut since_write = Instant::now();
            let flush_every = self.policy.lease / 4;
            for d in batch {
                let attempt = self.send(&endpoint.endpoint_url, secret.expose(), &d).await;
                let failed = attempt.error.is_some();
                self.app.metrics.webhook_attempt(!failed);
                let outcome = if failed {
                    tracing::info!(
                        endpoint = %id,
                        event = %d.event_id,
                        attempt = attempt.attempt,
                        error = attempt.error.as_deref().unwrap_or(""),
                        "webhook delivery failed; will retry"
                    );
                    self.policy.after_failure(&d, now_ms())
                } else {
                    AttemptOutcome::Delivered
                };
                outcomes.push((d.event_id, attempt, outcome));
                if failed || since_write.elapsed() >= flush_every {
                    if !self.record(id, &mut outcomes).await? || failed {
                        return Ok(());
                    }
                    since_write = Instant::now();
                }
            }
            if !self.record(id, &mut outcomes).await? {
                return Ok(());
            }
        }
    }

    /// Writes the outcomes gathered so far; `false` when the lease was lost.
    async fn record(
        &self,
        id: WebhookEndpointId,
        outcomes: &mut Vec<(pipes_core::ids::EventId, DeliveryAttempt, AttemptOutcome)>,
    ) -> Result<bool, pipes_core::store::StoreError> {
        let lease_until = self.policy.lease_until(now_ms());
        let kept = self
            .app
            .store
            .record_delivery_attempts(id, &self.holder, outcomes, lease_until)
            .await?;
        outcomes.clear();
        if !kept {
            tracing::warn!(endpoint = %id, "webhook endpoint lease lost; another worker continues");
        }
        Ok(kept)
    }

    /// One signed POST. The signature is made now, so every retry carries a fresh timestamp
    /// over the same bytes.
    async fn send(&self, url: &str, secret: &str, d: &DueDelivery) -> DeliveryAttempt {
        let started_at: Millis = now_ms();
        let clock = Instant::now();
        let signature = signature_header(secret, started_at, &d.body);
        let egress = &self.app.egress;
        let request = egress
            .request(reqwest::Method::POST, url)
            .timeout(self.policy.timeout)
            .header(reqwest::header::USER_AGENT, USER_AGENT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .body(d.body.clone());
        let result = egress.send(request).await;
        let (status, error) = match result {
            Ok(mut resp) => {
                let status = resp.status();
                // Read a little of the answer so the connection can be reused; ignore the rest.
                let mut read = 0usize;
                while read < 64 * 1024 {
                    match resp.chunk().await {
                        Ok(Some(chunk)) => read += chunk.len(),
                        _ => break,
                    }
                }
                let error = if status.is_success() {
                    None
                } else if status.is_redirection() {
                    Some(format!("HTTP {} (redirects are not followed)", status.as_u16()))
                } else {
                    Some(format!("HTTP {}", status.as_u16()))
                };
                (Some(i64::from(status.as_u16())), error)
            }
            Err(e) => (None, Some(describe(&e, self.policy.timeout))),
        };
        DeliveryAttempt {
            attempt: d.attempts + 1,
            started_at,
            status,
            latency_ms: i64::try_from(clock.elapsed().as_millis()).unwrap_or(i64::MAX),
            error,
        }
    }
}

/// A transport failure in words, without the URL (it may carry a token in its query).
fn describe(e: &EgressError, timeout: Duration) -> String {
    match e {
        EgressError::Timeout => format!("timed out after {} ms", timeout.as_millis()),
        EgressError::Refused { reason, .. } => {
            format!("refused: the endpoint is a {reason} address (PIPES_EGRESS_ALLOW_CIDRS can allow it)")
        }
        other => other.to_string(),
    }
}
