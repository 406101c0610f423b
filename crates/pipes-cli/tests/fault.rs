//! The fault test: three `pipes serve` processes on one PostgreSQL, a provider that rotates
//! refresh tokens and revokes a grant whose used token comes back after its 30 s rotation grace
//! period, short token lifetimes, 200
//! connections, and token calls spread over all three processes for 60 s
//! (`PIPES_TEST_FAULT_SECONDS`) while one process is SIGKILLed and restarted every 10 s. Every
//! answer must be an active token or a retryable 503; no call may see `needs_reauthorization`;
//! the provider must never see a used refresh token; every connection must be connected at the
//! end. Loopback only.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::TestDatabase;
use rand::Rng;
use serde_json::json;

const ACCOUNTS: usize = 200;
const INSTANCES: usize = 3;
const CALLERS: usize = 24;
const TOKEN_LIFETIME_SECS: i64 = 20;

struct Instance {
    port: u16,
    child: Child,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn cli(db: &str, vault: &str, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_pipes"))
        .args(args)
        .env("PIPES_DATABASE_URL", db)
        .env("PIPES_VAULT_KEYS", vault)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pipes {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn serve(db: &str, vault: &str, port: u16) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pipes"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PIPES_")) {
        cmd.env_remove(k);
    }
    cmd.arg("serve")
        .env("PIPES_DATABASE_URL", db)
        .env("PIPES_VAULT_KEYS", vault)
        .env("PIPES_LISTEN", format!("127.0.0.1:{port}"))
        .env("PIPES_WORKER_POLL_MS", "200")
        .env("PIPES_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")
        // Thousands of calls a second with one key: this test is about faults, not limits.
        .env("PIPES_RATE_LIMIT_PER_KEY", "0")
        .env("PIPES_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn ready(http: &reqwest::Client, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("http://127.0.0.1:{port}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        assert!(Instant::now() < deadline, "instance on {port} never became ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(Default)]
struct Tally {
    active: AtomicU64,
    retryable: AtomicU64,
    needs_reauthorization: AtomicU64,
    other: AtomicU64,
    unreachable: AtomicU64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_survive_kills_without_losing_a_grant() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let seconds: u64 = std::env::var("PIPES_TEST_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let vault = cli(&db.url, "", &["vault", "generate-key", "--kid", "fault"])
        .trim()
        .to_owned();
    cli(&db.url, &vault, &["migrate"]);
    cli(&db.url, &vault, &["env", "create", "fault"]);
    let key = cli(&db.url, &vault, &["keys", "create", "--env", "fault"])
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let mock = MockProvider::start("cid", "csecret").await;
    mock.set_token_lifetime(TOKEN_LIFETIME_SECS);
    // A process killed between the provider's answer and our commit loses the rotated token;
    // like Okta (30 s by default), the provider accepts the previous one for a while, and our
    // refresh lease (20 s) hands the connection to another process within that time.
    mock.set_rotation_grace(Duration::from_secs(30));

    let mut instances: Vec<Instance> = (0..INSTANCES)
        .map(|_| {
            let port = free_port();
            Instance {
                port,
                child: serve(&db.url, &vault, port),
            }
        })
        .collect();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    for i in &instances {
        ready(&http, i.port).await;
    }
    let ports: Vec<u16> = instances.iter().map(|i| i.port).collect();
    let base = |port: u16| format!("http://127.0.0.1:{port}");
    let r = http
        .post(format!("{}/data-integrations", base(ports[0])))
        .bearer_auth(&key)
        .json(&json!({
            "provider": "mock",
            "credentials": {"type": "custom", "client_id": "cid", "client_secret": "csecret"},
            "custom_provider": {"name": "Mock", "authorization_url": format!("{}/authorize", mock.base_url),
                                "token_url": format!("{}/token", mock.base_url)}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    for n in 0..ACCOUNTS {
        let (access, refresh) = mock.issue_grant();
        // Expiries spread over the first lifetime, so refreshes never stop during the run.
        let expires = pipes_core::time::now_ms() + rand::thread_rng().gen_range(2_000..TOKEN_LIFETIME_SECS * 1000);
        let r = http
            .post(format!(
                "{}/user_management/users/user_{n}/connected_accounts/mock",
                base(ports[n % INSTANCES])
            ))
            .bearer_auth(&key)
            .json(&json!({"access_token": access, "refresh_token": refresh,
                          "expires_at": pipes_core::time::format_ms(expires)}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    let tally = Arc::new(Tally::default());
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut callers = Vec::new();
    for _ in 0..CALLERS {
        let (http, key, tally, ports) = (http.clone(), key.clone(), tally.clone(), ports.clone());
        callers.push(tokio::spawn(async move {
            while Instant::now() < end {
                let (user, port) = {
                    let mut rng = rand::thread_rng();
                    (rng.gen_range(0..ACCOUNTS), ports[rng.gen_range(0..INSTANCES)])
                };
                let sent = http
                    .post(format!("http://127.0.0.1:{port}/data-integrations/mock/token"))
                    .bearer_auth(&key)
                    .json(&json!({"user_id": format!("user_{user}")}))
                    .send()
                    .await;
                let Ok(resp) = sent else {
                    // That instance is down (being killed or restarting): not an answer.
                    tally.unreachable.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let status = resp.status().as_u16();
                let retry_after = resp.headers().contains_key("retry-after");
                let body: serde_json::Value = resp.json().await.unwrap_or_default();
                let counter = match (status, body["active"].as_bool(), body["error"].as_str()) {
                    (200, Some(true), _) => {
                        let expires = body["access_token"]["expires_at"].as_str().unwrap_or_default();
                        let expires = pipes_core::time::parse_rfc3339(expires).unwrap_or(0);
                        if expires > pipes_core::time::now_ms() {
                            &tally.active
                        } else {
                            eprintln!("an expired token was handed out: {body}");
                            &tally.other
                        }
                    }
                    (200, Some(false), Some("needs_reauthorization")) => {
                        eprintln!("user_{user}: needs_reauthorization");
                        &tally.needs_reauthorization
                    }
                    (503, _, _) if retry_after => &tally.retryable,
                    _ => {
                        eprintln!("unexpected answer {status}: {body}");
                        &tally.other
                    }
                };
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }

    // Every 10 s one process dies without warning and comes back on the same port.
    let mut victim = 0;
    let mut kills = 0;
    while Instant::now() + Duration::from_secs(10) <= end {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let i = &mut instances[victim % INSTANCES];
        i.child.kill().unwrap(); // SIGKILL
        i.child.wait().unwrap();
        i.child = serve(&db.url, &vault, i.port);
        ready(&http, i.port).await;
        victim += 1;
        kills += 1;
    }
    for c in callers {
        c.await.unwrap();
    }

    let counters = mock.counters();
    let t = |c: &AtomicU64| c.load(Ordering::Relaxed);
    eprintln!(
        "fault test: {kills} kills; {} active, {} retryable 503, {} needs_reauthorization, {} other, \
         {} calls to a down instance; provider: {} refreshes, {} reused, {} within the grace period, {} invalid",
        t(&tally.active),
        t(&tally.retryable),
        t(&tally.needs_reauthorization),
        t(&tally.other),
        t(&tally.unreachable),
        counters.refreshes,
        counters.reused_refresh_tokens,
        counters.grace_reuses,
        counters.invalid_refresh_tokens
    );
    assert!(kills >= seconds / 10 - 1, "the processes were killed");
    assert!(
        counters.refreshes as usize > ACCOUNTS,
        "tokens expired and were refreshed during the run"
    );
    assert!(t(&tally.active) > 1000, "the load ran");
    assert_eq!(t(&tally.needs_reauthorization), 0, "no call saw a dead connection");
    assert_eq!(
        t(&tally.other),
        0,
        "every answer was an active token or a retryable 503"
    );
    assert_eq!(
        counters.reused_refresh_tokens, 0,
        "no used refresh token was ever presented"
    );

    for n in 0..ACCOUNTS {
        let r = http
            .get(format!(
                "{}/user_management/users/user_{n}/connected_accounts/mock",
                base(ports[0])
            ))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        let account: serde_json::Value = r.json().await.unwrap();
        assert_eq!(account["state"], "connected", "user_{n}: {account}");
    }
    for mut i in instances {
        let _ = i.child.kill();
        let _ = i.child.wait();
    }
}
