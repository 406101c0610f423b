//! `pipes-bench token [SECONDS] [ROUNDS] [user|organization]`: throughput and latency of
//! `POST /data-integrations/{slug}/token` on a fresh token (release `pipes serve`, SQLite, 1 000
//! connected accounts: users' own, or organizations' shared connections vended to a member),
//! against a reference axum server that returns the same JSON with no work, in the same run,
//! under `wrk` with 32 connections. Rounds alternate between the two; medians are reported.
//!
//! `pipes-bench reference ADDR` runs the reference server alone (used by `token`).
//!
//! `pipes-bench webhooks [EVENTS] [PER_SECOND]`: webhook delivery under load (see `webhooks.rs`); set
//! `PIPES_BENCH_DATABASE_URL=postgres://…` to run it on PostgreSQL.
//!
//! `pipes-bench refresh [ACCOUNTS]`: proactive refresh of connections whose tokens all expire in
//! the same minute (see `refresh.rs`).
#![forbid(unsafe_code)]

mod refresh;
mod server;
mod webhooks;

use std::process::{Command, Stdio};

use anyhow::{bail, Context};

const ACCOUNTS: usize = 1000;
const CONNECTIONS: u32 = 32;
const THREADS: u32 = 2;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("reference") => reference(args.get(2).map_or("127.0.0.1:0", String::as_str)),
        Some("webhooks") => webhooks::run(
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(0),
            std::env::var("PIPES_BENCH_DATABASE_URL").ok(),
        ),
        Some("refresh") => refresh::run(
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000),
            std::env::var("PIPES_BENCH_DATABASE_URL").ok(),
        ),
        Some("token") => token(
            args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(3),
            match args.get(4).map(String::as_str) {
                None | Some("user") => Owners::Users,
                Some("organization") => Owners::Organizations,
                Some(other) => bail!("owners must be user or organization, not {other}"),
            },
        ),
        _ => {
            eprintln!(
                "usage: pipes-bench token [SECONDS_PER_ROUND] [ROUNDS] [user|organization] | pipes-bench webhooks [EVENTS] [PER_SECOND] | pipes-bench refresh [ACCOUNTS] \
                 | pipes-bench reference ADDR"
            );
            std::process::exit(2)
        }
    }
}

/// The reference: the same answer, no authentication, no database, no crypto.
fn reference(addr: &str) -> anyhow::Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let body = serde_json::json!({"active": true, "access_token": {"object": "access_token",
            "access_token": "at_reference_token_0123456789", "expires_at": "2030-01-01T00:00:00.000Z",
            "scopes": ["read"], "missing_scopes": []}});
        let app = axum::Router::new().route(
            "/data-integrations/{slug}/token",
            axum::routing::post(move || {
                let body = body.clone();
                async move { axum::Json(body) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        println!("{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}

/// Whose connections are vended.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Owners {
    /// Each user's own (`{"user_id"}`): the single-read path.
    Users,
    /// Each organization's shared connection, for an acting member
    /// (`{"user_id", "organization_id", "connection_owner": "organization"}`).
    Organizations,
}

impl Owners {
    /// The Lua expression of the request body for account `n`.
    fn lua_body(self) -> String {
        match self {
            Self::Users => format!("'{{\"user_id\":\"user_' .. (n % {ACCOUNTS}) .. '\"}}'"),
            Self::Organizations => format!(
                "'{{\"user_id\":\"user_' .. (n % {ACCOUNTS}) .. '\",\"organization_id\":\"org_' .. (n % {ACCOUNTS}) \
                 .. '\",\"connection_owner\":\"organization\"}}'"
            ),
        }
    }

    fn label(self) -> &'static str {
        match self {
            Self::Users => "users' own connections",
            Self::Organizations => "organizations' shared connections",
        }
    }
}

struct Figures {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn parse_duration_ms(s: &str) -> Option<f64> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        _ => return None,
    })
}

fn wrk(url: &str, key: &str, seconds: u32, owners: Owners) -> anyhow::Result<Figures> {
    let script = tempfile::Builder::new().suffix(".lua").tempfile()?;
    std::fs::write(
        script.path(),
        format!(
            "local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format('POST', nil, \
             {{['Authorization'] = 'Bearer {key}', ['Content-Type'] = 'application/json'}}, \
             {})\nend\n\
             done = function(summary, latency, requests)\n  io.write(string.format('non2xx %d\\n', summary.errors.status))\nend\n",
            owners.lua_body()
        ),
    )?;
    let out = Command::new("wrk")
        .args([
            "-t",
            &THREADS.to_string(),
            "-c",
            &CONNECTIONS.to_string(),
            "-d",
            &format!("{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script.path())
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.starts_with(prefix))
            .map(str::to_owned)
    };
    let rps = line("Requests/sec:")
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .context(format!("wrk output without Requests/sec:\n{text}"))?;
    let pct = |p: &str| line(p).and_then(|l| l.split_whitespace().nth(1).and_then(parse_duration_ms));
    if let Some(errors) = line("non2xx").and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok())) {
        if errors > 0 {
            bail!("{errors} non-2xx answers from {url}");
        }
    }
    Ok(Figures {
        rps,
        p50_ms: pct("50%").unwrap_or(f64::NAN),
        p99_ms: pct("99%").unwrap_or(f64::NAN),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn token(seconds: u32, rounds: usize, owners: Owners) -> anyhow::Result<()> {
    let server = server::BenchServer::start(None, "127.0.0.1:18480")?;
    let mut reference = Command::new(std::env::current_exe()?)
        .args(["reference", "127.0.0.1:18481"])
        .stdout(Stdio::null())
        .spawn()?;
    let result = run_rounds(&server.key, seconds, rounds, owners);
    let _ = reference.kill();
    result
}

fn run_rounds(key: &str, seconds: u32, rounds: usize, owners: Owners) -> anyhow::Result<()> {
    let pipes_url = "http://127.0.0.1:18480";
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let http = reqwest::Client::new();
        server::wait_until_up(pipes_url).await;
        let ownership = match owners {
            Owners::Users => "user",
            Owners::Organizations => "organization",
        };
        let integration = serde_json::json!({"provider": "bench", "ownership": ownership, "enabled": true, "scopes": ["read"],
            "credentials": {"type": "custom", "client_id": "bench", "client_secret": "bench-secret"},
            "custom_provider": {"name": "Bench", "authorization_url": "https://bench.invalid/authorize",
                                "token_url": "https://bench.invalid/token"}});
        let r = http.post(format!("{pipes_url}/data-integrations")).bearer_auth(key).json(&integration).send().await?;
        if !r.status().is_success() {
            bail!("creating the integration: {}", r.text().await?);
        }
        for i in 0..ACCOUNTS {
            let mut body = serde_json::json!({"access_token": format!("at_bench_{i:06}_abcdefghijklmnop"),
                "refresh_token": format!("rt_bench_{i:06}"), "expires_at": "2030-01-01T00:00:00.000Z", "scopes": ["read"]});
            if owners == Owners::Organizations {
                // The member who establishes the shared connection.
                body["user_id"] = serde_json::json!(format!("user_{i}"));
            }
            let path = match owners {
                Owners::Users => format!("/user_management/users/user_{i}/connected_accounts/bench"),
                Owners::Organizations => format!("/organizations/org_{i}/connected_accounts/bench"),
            };
            let r = http
                .post(format!("{pipes_url}{path}"))
                .bearer_auth(key)
                .json(&body)
                .send()
                .await?;
            if !r.status().is_success() {
                bail!("importing account {i}: {}", r.text().await?);
            }
        }
        anyhow::Ok(())
    })?;
    let pipes_token = format!("{pipes_url}/data-integrations/bench/token");
    let reference_token = "http://127.0.0.1:18481/data-integrations/bench/token";
    // Warm both up.
    wrk(&pipes_token, key, 2, owners)?;
    wrk(reference_token, key, 2, owners)?;
    let (mut p, mut r) = (vec![], vec![]);
    for round in 1..=rounds {
        let a = wrk(&pipes_token, key, seconds, owners)?;
        let b = wrk(reference_token, key, seconds, owners)?;
        println!(
            "round {round}: pipes {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms | reference {:>9.0} req/s p50 {:.2} ms p99 {:.2} ms",
            a.rps, a.p50_ms, a.p99_ms, b.rps, b.p50_ms, b.p99_ms
        );
        p.push(a);
        r.push(b);
    }
    let med = |v: &[Figures], f: fn(&Figures) -> f64| median(v.iter().map(f).collect());
    let (prps, rrps) = (med(&p, |f| f.rps), med(&r, |f| f.rps));
    println!();
    println!(
        "POST /data-integrations/{{slug}}/token, fresh token, SQLite, {ACCOUNTS} {}, wrk -t{THREADS} -c{CONNECTIONS}, {rounds} x {seconds}s, medians:",
        owners.label()
    );
    println!(
        "  pipes      {prps:>9.0} req/s   p50 {:.2} ms   p99 {:.2} ms",
        med(&p, |f| f.p50_ms),
        med(&p, |f| f.p99_ms)
    );
    println!(
        "  reference  {rrps:>9.0} req/s   p50 {:.2} ms   p99 {:.2} ms",
        med(&r, |f| f.p50_ms),
        med(&r, |f| f.p99_ms)
    );
    println!("  ratio      {:.1}% of the reference's throughput", 100.0 * prps / rrps);
    Ok(())
}
