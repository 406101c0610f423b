//! The server's own limits, tried the way an attacker or a broken client would: silent and
//! dribbling connections, more connections than the cap, oversized heads and bodies, slow
//! uploads, and request floods. Every refusal is the contract's JSON error.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pipes_server::{Rate, ServerLimits};
use pipes_testkit::{spawn_app_with, test_settings, TestApp, TestDatabase};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn app_with(limits: ServerLimits) -> TestApp {
    let mut settings = test_settings();
    settings.limits = limits;
    spawn_app_with(TestDatabase::sqlite(), settings).await
}

/// Sends `head` (and `body`) on a fresh connection and reads the answer until the server
/// closes or `wait` passes: (status, JSON body, whether the server closed).
async fn raw(app: &TestApp, head: &str, body: &[u8], wait: Duration) -> (u16, Value, bool) {
    let mut socket = TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    let _ = socket.write_all(body).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    let closed = loop {
        match tokio::time::timeout(wait, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    (status, json, closed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_dribbling_connections_are_closed() {
    let app = app_with(ServerLimits {
        header_timeout: Duration::from_millis(500),
        ..ServerLimits::default()
    })
    .await;
    let started = Instant::now();
    let (_, _, closed) = raw(&app, "", b"", Duration::from_secs(5)).await;
    assert!(closed, "a connection that sends nothing is closed");
    let (_, _, closed) = raw(
        &app,
        "GET /healthz HTTP/1.1\r\nHost: x\r\n",
        b"",
        Duration::from_secs(5),
    )
    .await;
    assert!(closed, "a head that never ends is closed");
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_and_the_server_stays_reachable() {
    let app = app_with(ServerLimits {
        max_connections: 4,
        header_timeout: Duration::from_millis(800),
        ..ServerLimits::default()
    })
    .await;
    let mut idle = vec![];
    for _ in 0..12 {
        idle.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let started = Instant::now();
    let metrics = tokio::time::timeout(Duration::from_secs(15), app.metrics())
        .await
        .expect("answered while idle connections come and go");
    let open: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("pipes_http_connections_open "))
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=4).contains(&open), "never more than the cap: {open}");
    assert!(started.elapsed() < Duration::from_secs(12), "{:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_heads_and_bodies_get_json_errors() {
    let app = app_with(ServerLimits {
        max_body_bytes: 64 * 1024,
        ..ServerLimits::default()
    })
    .await;
    let wait = Duration::from_secs(5);
    // A GET whose target or extra header lines are too much: (status, error code).
    let get = |target: String, extra: String| {
        let app = &app;
        async move {
            let head = format!("GET {target} HTTP/1.1\r\nHost: x\r\n{extra}Connection: close\r\n\r\n");
            let (status, body, _) = raw(app, &head, b"", wait).await;
            (status, body["code"].as_str().map(str::to_owned))
        }
    };
    let too_large = |code: &str| Some(code.to_owned());
    let long_path = format!("/data-integrations?x={}", "a".repeat(10_000));
    assert_eq!(get(long_path, String::new()).await, (414, too_large("uri_too_long")));
    let big_header = format!("X-Padding: {}\r\n", "b".repeat(20_000));
    let fields = too_large("request_header_fields_too_large");
    assert_eq!(get("/healthz".into(), big_header).await, (431, fields.clone()));
    let many: String = (0..80).map(|i| format!("X-H{i}: v\r\n")).collect();
    assert_eq!(get("/healthz".into(), many).await, (431, fields));

    // Declared too large: refused before a byte of the body is read.
    let head = format!(
        "POST /data-integrations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        app.key
    );
    let (status, body, closed) = raw(&app, &head, b"", wait).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
    assert!(closed, "the unread body cannot carry another request");

    // Chunked, size unknown until it is read: refused once past the limit.
    let head = format!(
        "POST /data-integrations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.key
    );
    let chunk = format!("{:x}\r\n{}\r\n", 100_000, "c".repeat(100_000));
    let (status, body, _) = raw(&app, &head, chunk.as_bytes(), wait).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_never_arrives_times_out() {
    let app = app_with(ServerLimits {
        request_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    })
    .await;
    let head = format!(
        "POST /data-integrations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n",
        app.key
    );
    let started = Instant::now();
    let (status, body, _) = raw(&app, &head, b"{\"provider\":", Duration::from_secs(5)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("request_timeout")),
        "{body}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_get_429_with_retry_after_per_key_and_per_address() {
    // One request a second, bursts of two: a loop of requests outpaces that on any machine.
    let app = app_with(ServerLimits {
        per_key: Rate::per_second(1),
        per_address: Rate::per_second(1),
        ..ServerLimits::default()
    })
    .await;
    let mut passed = 0;
    let refused = loop {
        let resp = app
            .request(reqwest::Method::GET, "/data-integrations")
            .send()
            .await
            .unwrap();
        if resp.status() == 429 {
            break resp;
        }
        assert_eq!(resp.status(), 200);
        passed += 1;
        assert!(passed < 30, "never limited");
    };
    assert!(passed >= 2, "the burst passes: {passed}");
    let retry_after: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "rate_limit_exceeded");
    assert_eq!(body["retry_after"], retry_after);
    assert!(retry_after >= 1);

    // Another key of the same environment has its own budget.
    let other = app.environments.create_key(&app.env).await.unwrap();
    let resp = app
        .request_as(other.secret.expose(), reqwest::Method::GET, "/data-integrations")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Without a key, the client address is limited; monitoring never is.
    for _ in 0..20 {
        let resp = app.http.get(format!("{}/healthz", app.base_url)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let mut statuses = vec![];
    while !statuses.contains(&429) {
        let resp = app
            .http
            .get(format!("{}/pipes/redirecting", app.base_url))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        assert!(statuses.len() < 30, "never limited: {statuses:?}");
    }
    assert!(statuses.len() >= 3, "the burst passes: {statuses:?}");

    let metrics = app.metrics().await;
    for by in ["key", "address"] {
        let count: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("pipes_http_rate_limited_total{{by=\"{by}\"}} ")))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(count >= 1, "{by}: {metrics}");
    }
}
