//! `pipes-bench webhooks [EVENTS] [PER_SECOND]`: webhook delivery under load. A release
//! `pipes serve` gets EVENTS connections imported through the API (one `connected` event each),
//! PER_SECOND a second (0: as fast as the API takes them), while five local
//! endpoints subscribe: three healthy, one slow (answers after 1 s), one failing (always 500).
//! Prints deliveries/s, the event-to-delivery latency of the healthy endpoints (p50/p99/max),
//! what the sick endpoints saw, and the server's peak RSS. The reference is the healthy
//! endpoints themselves: the latency target is absolute (p99 under 100 ms).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::bail;
use axum::http::StatusCode;

use crate::server::{wait_until_up, BenchServer};

#[derive(Clone, Copy)]
enum Behaviour {
    Healthy,
    Slow,
    Failing,
}

#[derive(Default)]
struct Seen {
    latencies_ms: Mutex<Vec<i64>>,
    requests: AtomicUsize,
}

async fn receiver(behaviour: Behaviour) -> anyhow::Result<(String, Arc<Seen>)> {
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                s.requests.fetch_add(1, Ordering::Relaxed);
                match behaviour {
                    Behaviour::Failing => return StatusCode::INTERNAL_SERVER_ERROR,
                    Behaviour::Slow => tokio::time::sleep(Duration::from_secs(1)).await,
                    Behaviour::Healthy => {}
                }
                let now = pipes_core::time::now_ms();
                let created = serde_json::from_slice::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["created_at"].as_str().and_then(pipes_core::time::parse_rfc3339));
                if let Some(created) = created {
                    s.latencies_ms
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(now - created);
                }
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((url, seen))
}

pub(crate) fn peak_rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|kb| kb.parse::<f64>().ok()))
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return -1;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the benchmark against `database_url` (SQLite when `None`).
pub fn run(events: usize, per_second: u32, database_url: Option<String>) -> anyhow::Result<()> {
    let server = BenchServer::start(database_url, "127.0.0.1:18482")?;
    tokio::runtime::Runtime::new()?.block_on(drive(events, per_second, &server.key, server.pid(), server.backend))
}

async fn drive(events: usize, per_second: u32, key: &str, pid: u32, backend: &str) -> anyhow::Result<()> {
    let base = "http://127.0.0.1:18482";
    let http = reqwest::Client::new();
    wait_until_up(base).await;
    let key = key.to_owned();
    let post = move |path: String, body: serde_json::Value| {
        let http = http.clone();
        let key = key.clone();
        async move {
            let r = http
                .post(format!("{base}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("POST {path}: {} {}", r.status(), r.text().await?);
            }
            anyhow::Ok(())
        }
    };
    post(
        "/data-integrations".into(),
        serde_json::json!({"provider": "github",
            "credentials": {"type": "custom", "client_id": "bench", "client_secret": "bench-secret"}}),
    )
    .await?;
    let mut endpoints = Vec::new();
    for behaviour in [
        Behaviour::Healthy,
        Behaviour::Healthy,
        Behaviour::Healthy,
        Behaviour::Slow,
        Behaviour::Failing,
    ] {
        let (url, seen) = receiver(behaviour).await?;
        post(
            "/webhook_endpoints".into(),
            serde_json::json!({"endpoint_url": url, "events": ["pipes.connected_account.connected"]}),
        )
        .await?;
        endpoints.push((behaviour, seen));
    }

    // Events: one import per user, 16 at a time, each at its slot when paced.
    let started = Instant::now();
    let slot =
        move |i: usize| (per_second > 0).then(|| started + Duration::from_secs_f64(i as f64 / f64::from(per_second)));
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..16 {
        let next = next.clone();
        let post = post.clone();
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= events {
                    return anyhow::Ok(());
                }
                if let Some(at) = slot(i) {
                    tokio::time::sleep_until(at.into()).await;
                }
                post(
                    format!("/user_management/users/user_{i}/connected_accounts/github"),
                    serde_json::json!({"access_token": format!("gho_bench_{i}"), "scopes": ["repo"]}),
                )
                .await?;
            }
        }));
    }
    for w in writers {
        w.await??;
    }
    let produced = started.elapsed();

    let healthy: Vec<&Arc<Seen>> = endpoints
        .iter()
        .filter(|(b, _)| matches!(b, Behaviour::Healthy))
        .map(|(_, s)| s)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let done = healthy
            .iter()
            .all(|s| s.latencies_ms.lock().unwrap_or_else(|p| p.into_inner()).len() >= events);
        if done {
            break;
        }
        if Instant::now() > deadline {
            bail!("the healthy endpoints did not get every event within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let delivered = started.elapsed();
    let mut all: Vec<i64> = Vec::new();
    let pace = if per_second > 0 {
        format!("{per_second} events/s")
    } else {
        "unpaced".to_owned()
    };
    println!(
        "webhook delivery, {backend}, {events} events ({pace}) x 5 endpoints (3 healthy, 1 slow at 1 s, 1 failing):"
    );
    println!(
        "  events produced in {:.2} s ({:.0} events/s through the API)",
        produced.as_secs_f64(),
        events as f64 / produced.as_secs_f64()
    );
    for (i, s) in healthy.iter().enumerate() {
        let mut l = s.latencies_ms.lock().unwrap_or_else(|p| p.into_inner()).clone();
        l.sort_unstable();
        println!(
            "  healthy {}: {} delivered, event-to-delivery p50 {} ms p99 {} ms max {} ms",
            i + 1,
            l.len(),
            percentile(&l, 0.5),
            percentile(&l, 0.99),
            l.last().copied().unwrap_or(-1)
        );
        all.extend(l);
    }
    all.sort_unstable();
    println!(
        "  healthy, all: {:.0} deliveries/s over {:.2} s; p50 {} ms, p99 {} ms, max {} ms",
        all.len() as f64 / delivered.as_secs_f64(),
        delivered.as_secs_f64(),
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        all.last().copied().unwrap_or(-1)
    );
    for (b, s) in &endpoints {
        let name = match b {
            Behaviour::Slow => "slow",
            Behaviour::Failing => "failing",
            Behaviour::Healthy => continue,
        };
        println!(
            "  {name}: {} requests received (it backs off or waits its turn; the others do not wait for it)",
            s.requests.load(Ordering::Relaxed)
        );
    }
    println!("  pipes serve peak RSS {:.1} MB", peak_rss_mb(pid));
    Ok(())
}
