//! The janitor: forgets events past their retention (with their deliveries), authorizations
//! long expired, and idempotency keys past their 24 hours.

use std::time::Duration;

use pipes_core::time::{millis, now_ms};
use tokio::sync::watch;

use super::sleep_or_stop;
use crate::settings::JanitorPolicy;
use crate::state::App;

/// Expired authorizations are kept this long for diagnosis, then deleted.
const AUTHORIZATION_GRACE_MS: i64 = 24 * 3600 * 1000;

pub(super) async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let policy = app.janitor.clone();
    // Let start-up settle first; then run on schedule.
    if sleep_or_stop(Duration::from_secs(5).min(policy.every), &mut stop).await {
        return;
    }
    loop {
        sweep(&app, &policy).await;
        if sleep_or_stop(policy.every, &mut stop).await {
            return;
        }
    }
}

async fn sweep(app: &App, policy: &JanitorPolicy) {
    let cutoff = now_ms() - millis(policy.event_retention);
    let mut purged = 0u64;
    // In batches, so a large backlog never holds one long transaction.
    loop {
        match app.store.purge_events(cutoff, 1000).await {
            Ok(0) => break,
            Ok(n) => purged += n,
            Err(e) => {
                tracing::warn!(error = %e, "janitor: could not purge events");
                break;
            }
        }
    }
    if purged > 0 {
        tracing::info!(purged, "janitor: events past retention deleted");
    }
    match app.store.purge_authorizations(now_ms() - AUTHORIZATION_GRACE_MS).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(purged = n, "janitor: expired authorizations deleted"),
        Err(e) => tracing::warn!(error = %e, "janitor: could not purge authorizations"),
    }
    match app
        .store
        .purge_idempotency(now_ms() - crate::idempotency::RETENTION_MS)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::info!(purged = n, "janitor: expired idempotency keys deleted"),
        Err(e) => tracing::warn!(error = %e, "janitor: could not purge idempotency keys"),
    }
}
