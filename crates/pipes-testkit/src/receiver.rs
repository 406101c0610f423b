//! A webhook receiver on a free loopback port that records what it is sent and can be told
//! to fail or to be slow.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use tokio::sync::Notify;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// The raw body.
    pub body: String,
    /// The `WorkOS-Signature` header.
    pub signature: String,
    /// `Content-Type`.
    pub content_type: String,
    /// When it arrived (ms since the epoch).
    pub at: i64,
    /// Whether the receiver answered 2xx.
    pub accepted: bool,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    fail_next: AtomicUsize,
    delay_ms: AtomicU64,
    status: AtomicUsize,
    arrived: Notify,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook`
    pub url: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").field("url", &self.url).finish()
    }
}

async fn hook(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let delay = shared.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let fail = shared
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let status = match shared.status.load(Ordering::SeqCst) {
        0 => StatusCode::OK,
        s => StatusCode::from_u16(u16::try_from(s).unwrap_or(500)).unwrap_or(StatusCode::OK),
    };
    let status = if fail {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        status
    };
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    shared
        .received
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(Received {
            body: String::from_utf8_lossy(&body).into_owned(),
            signature: header("workos-signature"),
            content_type: header("content-type"),
            at: pipes_core::time::now_ms(),
            accepted: status.is_success(),
        });
    shared.arrived.notify_waiters();
    status
}

impl Receiver {
    /// Starts a receiver that answers 200.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = Router::new().route("/hook", post(hook)).with_state(shared.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared }
    }

    /// Answers the next `n` requests with 500.
    pub fn fail_next(&self, n: usize) {
        self.shared.fail_next.store(n, Ordering::SeqCst);
    }

    /// Answers every request with `status` from now on (0 = 200).
    pub fn answer(&self, status: u16) {
        self.shared.status.store(usize::from(status), Ordering::SeqCst);
    }

    /// Waits this long before answering.
    pub fn delay(&self, d: Duration) {
        self.shared
            .delay_ms
            .store(u64::try_from(d.as_millis()).unwrap_or(u64::MAX), Ordering::SeqCst);
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The accepted requests, once there are at least `n` (panics after `timeout`).
    pub async fn wait_for_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.shared.arrived.notified();
            let accepted: Vec<Received> = self.received().into_iter().filter(|r| r.accepted).collect();
            if accepted.len() >= n {
                return accepted;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the receiver accepted {} of {n} deliveries within {timeout:?}",
                    accepted.len()
                );
            }
        }
    }
}
