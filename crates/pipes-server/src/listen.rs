//! Accepting connections: at most the configured number at once, each with a deadline for
//! every request head (so silent and dribbling clients are dropped), and a graceful stop.
//!
//! The head deadline is kept by one watchdog per connection rather than by hyper's
//! header-read timer: that timer is re-armed in the runtime's timer wheel for every request,
//! which cost a fifth of the vending path's instructions; the watchdog wakes once per quarter
//! of the deadline whatever the request rate.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::limits::default_max_connections;
use crate::state::App;

/// What a connection's watchdog knows: requests being answered, and since when none is.
#[derive(Debug)]
struct Activity {
    busy: AtomicUsize,
    idle_since: AtomicU64,
    epoch: Instant,
}

impl Activity {
    fn new() -> Self {
        Self {
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Resolves once no request has been in progress for `deadline`: the client had that long
    /// to send a whole request head, on a new connection or between two requests, and did not.
    async fn idle_for(&self, deadline: Duration) {
        let limit = u64::try_from(deadline.as_millis()).unwrap_or(u64::MAX);
        let tick = (deadline / 4).max(Duration::from_millis(50));
        loop {
            tokio::time::sleep(tick).await;
            let idle_since = self.idle_since.load(Ordering::Acquire);
            if self.busy.load(Ordering::Acquire) == 0 && self.now().saturating_sub(idle_since) >= limit {
                return;
            }
        }
    }
}

/// A request in progress on a connection; when it is answered the connection is idle again.
struct Busy(Arc<Activity>);

impl Busy {
    fn start(activity: Arc<Activity>) -> Self {
        activity.busy.fetch_add(1, Ordering::AcqRel);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.0.now();
        self.0.idle_since.store(now, Ordering::Release);
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Raises the soft limit on open files to the hard limit; returns the limit in force.
pub fn raise_descriptor_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|_| open_file_limit())
}

/// The soft limit on open files.
fn open_file_limit() -> u64 {
    rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Serves, with the background workers, until `shutdown` resolves; then finishes in-flight
/// requests (for at most the request timeout) and lets deliveries in flight record their
/// outcome.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let jobs = crate::jobs::Jobs::start(&app);
    let limits = app.limits.clone();
    let max_connections = match limits.max_connections {
        0 => default_max_connections(open_file_limit()),
        n => n,
    };
    tracing::debug!(max_connections, "accepting connections");
    let slots = Arc::new(Semaphore::new(max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(None)
        // Heads up to this size (and up to hyper's 100 headers) are read and answered in JSON
        // by the edge (431/414); hyper answers larger ones itself, without a body. Setting
        // hyper's header count would move its header arrays from the stack to the heap on
        // every request.
        .max_buf_size(64 * 1024);
    let router = crate::router(app.clone());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a little
                    // rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let activity = Arc::new(Activity::new());
        let watched = activity.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            // Only the per-address rate limit reads the peer, and only for requests without a
            // key: the others skip the extension's allocation.
            if !req.headers().contains_key(hyper::header::AUTHORIZATION) {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            }
            let busy = Busy::start(watched.clone());
            let answer = router.clone().oneshot(req.map(axum::body::Body::new));
            async move {
                let answer = answer.await;
                drop(busy);
                answer
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let metrics = app.metrics.clone();
        metrics.connection(1);
        let deadline = limits.header_timeout;
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = activity.idle_for(deadline) => {}
            }
            metrics.connection(-1);
            drop(permit);
        });
    }
    drop(listener);
    let grace = limits.request_timeout + Duration::from_secs(1);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("stopped with requests still in flight after {} s", grace.as_secs());
    }
    jobs.stop(app.delivery.timeout + Duration::from_secs(1)).await;
    Ok(())
}
