//! Proactive refresh. Every `pipes serve` looks for connections whose access tokens expire
//! within min(`ahead`, half their lifetime), or whose provider expires idle grants and that were
//! not refreshed for its keep-alive interval, and refreshes them before any caller asks. Work is
//! claimed through the same database lease as a caller's refresh, so no refresh runs twice
//! across processes. Each provider gets a bounded number of refreshes at a time and pauses, with
//! growing delays, when it keeps failing; each connection backs off on its own too. Only a
//! confirmed dead grant marks a connection `needs_reauthorization`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipes_core::catalog::Catalog;
use pipes_core::domain::ConnectedAccount;
use pipes_core::ids::ConnectedAccountId;
use pipes_core::services::AheadOutcome;
use pipes_core::store::KeepAlive;
use pipes_core::time::{millis, now_ms};
use tokio::sync::{watch, Semaphore};

use super::sleep_or_stop;
use crate::settings::RefreshAheadPolicy;
use crate::state::App;

/// A provider's state in this process: its slots, and a pause after failures in a row.
struct ProviderGate {
    slots: Arc<Semaphore>,
    failures: u32,
    paused_until: Option<Instant>,
}

struct Worker {
    app: App,
    policy: RefreshAheadPolicy,
    gates: Mutex<HashMap<String, ProviderGate>>,
    active: Mutex<HashSet<ConnectedAccountId>>,
    /// Notified when a refresh finishes: its slot is free for the next due connection.
    freed: tokio::sync::Notify,
}

/// The keep-alive cutoffs of the built-in providers that declare one.
fn keepalive(catalog: &Catalog, now: i64) -> Vec<KeepAlive> {
    catalog
        .iter()
        .filter_map(|p| {
            p.keepalive_hours.map(|h| KeepAlive {
                slug: p.slug.clone(),
                idle_before: now - i64::from(h) * 3_600_000,
            })
        })
        .collect()
}

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let policy = app.refresh_ahead.clone();
    if !policy.enabled {
        return;
    }
    let worker = Arc::new(Worker {
        app,
        policy,
        gates: Mutex::new(HashMap::new()),
        active: Mutex::new(HashSet::new()),
        freed: tokio::sync::Notify::new(),
    });
    let total = Arc::new(Semaphore::new(worker.policy.total.max(1)));
    let mut running = tokio::task::JoinSet::new();
    loop {
        if let Err(e) = worker.claim(&total, &mut running).await {
            tracing::warn!(error = %e, "proactive refresh: could not look for work");
        }
        while running.try_join_next().is_some() {}
        // Look again when a slot frees up (a backlog drains at the providers' pace), or on the
        // next tick for connections that become due.
        tokio::select! {
            () = worker.freed.notified() => {}
            stopping = sleep_or_stop(worker.policy.every, &mut stop) => if stopping { break },
        }
    }
    while running.join_next().await.is_some() {}
}

impl Worker {
    async fn claim(
        self: &Arc<Self>,
        total: &Arc<Semaphore>,
        running: &mut tokio::task::JoinSet<()>,
    ) -> Result<(), pipes_core::store::StoreError> {
        let now = now_ms();
        let catalog = self.app.catalog;
        let keep = keepalive(catalog, now);
        let ahead = millis(self.policy.ahead);
        let depth = self.app.store.count_due_for_refresh(now, ahead, &keep).await?;
        self.app.metrics.set_refresh_queue_depth(depth);
        let free = total.available_permits();
        if depth == 0 || free == 0 {
            return Ok(());
        }
        let due = self
            .app
            .store
            .accounts_due_for_refresh(now, ahead, &keep, u32::try_from(free * 2).unwrap_or(256))
            .await?;
        for (root, account) in due {
            if self
                .active
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&account.id)
            {
                continue;
            }
            let provider = root.slug.as_str().to_owned();
            let Some(slot) = self.provider_slot(&provider) else {
                continue; // paused, or at its limit: next round
            };
            let Ok(permit) = total.clone().try_acquire_owned() else {
                break;
            };
            self.active.lock().unwrap_or_else(|p| p.into_inner()).insert(account.id);
            let this = self.clone();
            running.spawn(async move {
                let outcome = this.app.credentials.refresh_ahead(&root, &account).await;
                this.settle(&provider, &account, outcome);
                this.active
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&account.id);
                drop((slot, permit));
                this.freed.notify_one();
            });
        }
        Ok(())
    }

    /// A slot of the provider's, unless it is paused or busy.
    fn provider_slot(&self, provider: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let gate = gates.entry(provider.to_owned()).or_insert_with(|| ProviderGate {
            slots: Arc::new(Semaphore::new(self.policy.per_provider.max(1))),
            failures: 0,
            paused_until: None,
        });
        if gate.paused_until.is_some_and(|t| t > Instant::now()) {
            return None;
        }
        gate.slots.clone().try_acquire_owned().ok()
    }

    /// Adjusts the provider's pause after a refresh: failures in a row pause it for 1 s doubling
    /// up to 5 min; a success clears it.
    fn settle(&self, provider: &str, account: &ConnectedAccount, outcome: AheadOutcome) {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        let Some(gate) = gates.get_mut(provider) else { return };
        match outcome {
            AheadOutcome::Refreshed | AheadOutcome::Dead => {
                gate.failures = 0;
                gate.paused_until = None;
            }
            AheadOutcome::Failed => {
                gate.failures += 1;
                if gate.failures >= 3 {
                    let pause = Duration::from_secs(1)
                        .saturating_mul(2u32.saturating_pow(gate.failures - 3))
                        .min(Duration::from_secs(300));
                    gate.paused_until = Some(Instant::now() + pause);
                    tracing::warn!(
                        provider,
                        failures = gate.failures,
                        pause_ms = pause.as_millis() as u64,
                        account.id = %account.id,
                        "provider keeps failing refreshes; pausing proactive refresh for it"
                    );
                }
            }
            AheadOutcome::Skipped => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn keepalive_comes_from_provider_data() {
        let catalog = Catalog::builtin().unwrap();
        let k = keepalive(catalog, 1_000_000_000_000);
        let google = k.iter().find(|k| k.slug == "google").unwrap();
        assert_eq!(google.idle_before, 1_000_000_000_000 - 168 * 3_600_000);
        assert!(k.iter().all(|k| k.slug != "github"), "GitHub grants do not idle out");
    }
}
