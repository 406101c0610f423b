//! Background workers that run in every `pipes serve`: proactive refresh, webhook delivery and
//! the janitor.
//! Every one of them coordinates through the database (leases), never through process
//! memory alone, so any number of instances can share one PostgreSQL.

mod delivery;
mod janitor;
mod refresh;

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::state::App;

/// The running workers; [`Jobs::stop`] lets them finish what they hold.
#[derive(Debug)]
pub struct Jobs {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Jobs {
    /// Starts every worker.
    pub fn start(app: &App) -> Self {
        let (stop, rx) = watch::channel(false);
        let mut tasks = JoinSet::new();
        tasks.spawn(delivery::run(app.clone(), rx.clone()));
        tasks.spawn(janitor::run(app.clone(), rx.clone()));
        tasks.spawn(refresh::run(app.clone(), rx));
        Self { stop, tasks }
    }

    /// Asks every worker to stop and waits up to `grace` for deliveries in flight.
    pub async fn stop(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("background work still running at shutdown; its leases will expire");
            self.tasks.abort_all();
        }
    }
}

/// A name for this process's leases: host, pid and a random part.
pub(crate) fn holder_name(kind: &str) -> String {
    format!("{kind}-{}-{}", std::process::id(), pipes_core::oauth::random_token(6))
}

/// Waits for `d` or until stop is asked; `true` when stopping.
pub(crate) async fn sleep_or_stop(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        () = tokio::time::sleep(d) => *stop.borrow(),
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}
