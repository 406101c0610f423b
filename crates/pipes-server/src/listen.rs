//! Accepting connections: at most the configured number at once, each with a deadline for
//! every request head (so silent and dribbling clients are dropped), and a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::limits::default_max_connections;
use crate::state::App;

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
        .header_read_timeout(limits.header_timeout)
        // Heads up to this size are read and answered in JSON by the edge (431/414); hyper
        // answers larger ones itself, without a body.
        .max_buf_size(64 * 1024)
        .max_headers(limits.max_headers * 2);
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
        let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        let metrics = app.metrics.clone();
        metrics.connection(1);
        tokio::spawn(async move {
            let _ = connection.await;
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
