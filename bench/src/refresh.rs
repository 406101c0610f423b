//! `pipes-bench refresh [ACCOUNTS]`: proactive refresh under a thundering herd. ACCOUNTS
//! connections (default 10 000) are imported into a release `pipes serve` with tokens that all
//! expire within the same minute, five minutes from now; the testkit provider answers each
//! refresh after 20 ms. Prints how long until every token was refreshed, refreshes/s, the most
//! refreshes the provider saw at once, when refreshes happened (per 5 s), and the server's peak
//! RSS. Set `PIPES_BENCH_DATABASE_URL=postgres://…/EMPTY_DB` for PostgreSQL.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use pipes_mock_provider::MockProvider;

use crate::server::{wait_until_up, BenchServer};
use crate::webhooks::peak_rss_mb;

/// Runs the benchmark.
pub fn run(accounts: usize, database_url: Option<String>) -> anyhow::Result<()> {
    let server = BenchServer::start(database_url, "127.0.0.1:18483")?;
    tokio::runtime::Runtime::new()?.block_on(drive(accounts, server.key.clone(), server.pid(), server.backend))
}

async fn drive(accounts: usize, key: String, pid: u32, backend: &str) -> anyhow::Result<()> {
    let base = "http://127.0.0.1:18483";
    wait_until_up(base).await;
    let mock = Arc::new(MockProvider::start("bench", "bench-secret").await);
    mock.set_latency(Duration::from_millis(20));
    let http = reqwest::Client::new();
    let r = http
        .post(format!("{base}/data-integrations"))
        .bearer_auth(&key)
        .json(&serde_json::json!({
            "provider": "mock",
            "credentials": {"type": "custom", "client_id": "bench", "client_secret": "bench-secret"},
            "custom_provider": {"name": "Mock", "authorization_url": format!("{}/authorize", mock.base_url),
                                "token_url": format!("{}/token", mock.base_url)}
        }))
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("creating the integration: {}", r.text().await?);
    }
    // Every token expires in the same minute, starting five minutes from now.
    let started = Instant::now();
    let t0 = pipes_core::time::now_ms();
    let first_expiry = t0 + 300_000;
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for _ in 0..16 {
        let (next, http, key, mock) = (next.clone(), http.clone(), key.clone(), mock.clone());
        writers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= accounts {
                    return anyhow::Ok(());
                }
                let (access, refresh) = mock.issue_grant();
                let expires = first_expiry + (i as i64 * 60_000) / accounts as i64;
                let r = http
                    .post(format!("{base}/user_management/users/user_{i}/connected_accounts/mock"))
                    .bearer_auth(&key)
                    .json(&serde_json::json!({"access_token": access, "refresh_token": refresh,
                                              "expires_at": pipes_core::time::format_ms(expires)}))
                    .send()
                    .await?;
                if !r.status().is_success() {
                    bail!("importing {i}: {}", r.text().await?);
                }
            }
        }));
    }
    for w in writers {
        w.await??;
    }
    let imported = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(600);
    while (mock.counters().refreshes as usize) < accounts {
        if Instant::now() > deadline {
            bail!(
                "only {} of {accounts} refreshed after 10 minutes",
                mock.counters().refreshes
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let done = started.elapsed();
    let times = mock.refresh_times();
    let counters = mock.counters();
    let (first, last) = (times[0], times[times.len() - 1]);
    println!(
        "proactive refresh, {backend}, {accounts} connections expiring in one minute, 5 min from now; provider 20 ms:"
    );
    println!("  imported through the API in {:.1} s", imported.as_secs_f64());
    println!(
        "  all refreshed {:.1} s after the first import ({:.1} s before the first expiry)",
        done.as_secs_f64(),
        (first_expiry - last) as f64 / 1000.0
    );
    println!(
        "  {:.0} refreshes/s from the first to the last; at most {} at the provider at once; {} reused tokens",
        accounts as f64 / ((last - first).max(1) as f64 / 1000.0),
        counters.max_in_flight,
        counters.reused_refresh_tokens
    );
    let mut buckets = std::collections::BTreeMap::<i64, usize>::new();
    for t in &times {
        *buckets.entry((t - t0) / 5000).or_default() += 1;
    }
    let spread: Vec<String> = buckets
        .iter()
        .map(|(b, n)| format!("{}-{}s:{n}", b * 5, b * 5 + 5))
        .collect();
    println!("  refreshes per 5 s after the first import: {}", spread.join(" "));
    println!("  pipes serve peak RSS {:.1} MB", peak_rss_mb(pid));
    if counters.refreshes as usize > accounts {
        println!("  note: {} refreshes for {accounts} connections", counters.refreshes);
    }
    Ok(())
}
