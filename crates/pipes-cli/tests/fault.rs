//! The fault tests. Real `pipes serve` processes, a provider that rotates refresh tokens and
//! revokes a grant whose used token comes back after its 30 s rotation grace period, short token
//! lifetimes, and token calls plus new connections from many callers while something breaks:
//!
//! - three processes on one PostgreSQL, one SIGKILLed and restarted every 10 s;
//! - three processes on a PostgreSQL that restarts every 8 s;
//! - one process on SQLite whose disk fills up, then frees again.
//!
//! Every answer must be an active token, a created connection, or a retryable 503; no call may
//! see `needs_reauthorization`; the provider must never see a used refresh token; every
//! connection a caller was told exists must exist, connected, with its `connected` event; and
//! the server recovers by itself. Loopback only.
#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pipes_testkit::mock_provider::MockProvider;
use pipes_testkit::TestDatabase;
use rand::Rng;
use serde_json::json;

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
        // Thousands of calls a second with one key: these tests are about faults, not limits.
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
    created: AtomicU64,
    retryable: AtomicU64,
    needs_reauthorization: AtomicU64,
    other: AtomicU64,
    unreachable: AtomicU64,
    /// Users whose new connection was answered 201.
    acknowledged: Mutex<Vec<String>>,
}

impl Tally {
    fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Servers on one database with a mock provider, an integration and `accounts` connections.
struct Cluster {
    db: String,
    vault: String,
    key: String,
    mock: MockProvider,
    instances: Vec<Instance>,
    http: reqwest::Client,
    accounts: usize,
}

impl Cluster {
    async fn start(db: &str, instances: usize, accounts: usize) -> Self {
        let vault = cli(db, "", &["vault", "generate-key", "--kid", "fault"])
            .trim()
            .to_owned();
        cli(db, &vault, &["migrate"]);
        cli(db, &vault, &["env", "create", "fault"]);
        let key = cli(db, &vault, &["keys", "create", "--env", "fault"])
            .lines()
            .last()
            .unwrap()
            .to_owned();
        let mock = MockProvider::start("cid", "csecret").await;
        mock.set_token_lifetime(TOKEN_LIFETIME_SECS);
        // A process killed between the provider's answer and our commit loses the rotated
        // token; like Okta (30 s by default), the provider accepts the previous one for a
        // while, and our refresh lease (20 s) hands the connection to another process within
        // that time.
        mock.set_rotation_grace(Duration::from_secs(30));
        let instances: Vec<Instance> = (0..instances)
            .map(|_| {
                let port = free_port();
                Instance {
                    port,
                    child: serve(db, &vault, port),
                }
            })
            .collect();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let cluster = Self {
            db: db.to_owned(),
            vault,
            key,
            mock,
            instances,
            http,
            accounts,
        };
        for i in &cluster.instances {
            ready(&cluster.http, i.port).await;
        }
        let r = cluster
            .post(
                0,
                "/data-integrations",
                json!({
                    "provider": "mock",
                    "credentials": {"type": "custom", "client_id": "cid", "client_secret": "csecret"},
                    "custom_provider": {"name": "Mock", "authorization_url": format!("{}/authorize", cluster.mock.base_url),
                                        "token_url": format!("{}/token", cluster.mock.base_url)}
                }),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        for n in 0..accounts {
            let (access, refresh) = cluster.mock.issue_grant();
            // Expiries spread over the first lifetime, so refreshes never stop during the run.
            let expires = pipes_core::time::now_ms() + rand::thread_rng().gen_range(2_000..TOKEN_LIFETIME_SECS * 1000);
            let r = cluster
                .post(
                    n,
                    &format!("/user_management/users/user_{n}/connected_accounts/mock"),
                    json!({"access_token": access, "refresh_token": refresh,
                           "expires_at": pipes_core::time::format_ms(expires)}),
                )
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
        cluster
    }

    fn ports(&self) -> Vec<u16> {
        self.instances.iter().map(|i| i.port).collect()
    }

    async fn post(&self, instance: usize, path: &str, body: serde_json::Value) -> reqwest::Result<reqwest::Response> {
        let port = self.instances[instance % self.instances.len()].port;
        self.http
            .post(format!("http://127.0.0.1:{port}{path}"))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
    }

    /// Callers until `end`: all but one ask for tokens; one connects a new account (with
    /// provider tokens it got from the mock) ten times a second.
    fn load(&self, end: Instant) -> (Arc<Tally>, Vec<tokio::task::JoinHandle<()>>) {
        let tally = Arc::new(Tally::default());
        let mut callers = Vec::new();
        for caller in 0..CALLERS {
            let (http, key, tally, ports) = (self.http.clone(), self.key.clone(), tally.clone(), self.ports());
            let accounts = self.accounts;
            let mock = self.mock.clone();
            let writer = caller == 0;
            callers.push(tokio::spawn(async move {
                let mut written = 0;
                while Instant::now() < end {
                    let (user, port) = {
                        let mut rng = rand::thread_rng();
                        (rng.gen_range(0..accounts), ports[rng.gen_range(0..ports.len())])
                    };
                    let base = format!("http://127.0.0.1:{port}");
                    let (new_user, request) = if writer {
                        written += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        let new_user = format!("writer_{caller}_{written}");
                        let (access, refresh) = mock.issue_grant();
                        let expires = pipes_core::time::format_ms(pipes_core::time::now_ms() + 600_000);
                        let req = http
                            .post(format!(
                                "{base}/user_management/users/{new_user}/connected_accounts/mock"
                            ))
                            .json(&json!({"access_token": access, "refresh_token": refresh, "expires_at": expires}));
                        (Some(new_user), req)
                    } else {
                        let req = http
                            .post(format!("{base}/data-integrations/mock/token"))
                            .json(&json!({"user_id": format!("user_{user}")}));
                        (None, req)
                    };
                    let Ok(resp) = request.bearer_auth(&key).send().await else {
                        // That instance is down (being killed or restarting): not an answer.
                        tally.unreachable.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let status = resp.status().as_u16();
                    let retry_after = resp.headers().contains_key("retry-after");
                    let body: serde_json::Value = resp.json().await.unwrap_or_default();
                    let counter = match (status, body["active"].as_bool(), body["error"].as_str()) {
                        (201, _, _) if new_user.is_some() => {
                            tally.acknowledged.lock().unwrap().extend(new_user);
                            &tally.created
                        }
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
                        (503, _, _) if retry_after => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            &tally.retryable
                        }
                        _ => {
                            eprintln!("unexpected answer {status}: {body}");
                            &tally.other
                        }
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        (tally, callers)
    }

    /// What must hold after any fault.
    async fn verify(&self, fault: &str, tally: &Tally) {
        let counters = self.mock.counters();
        let t = Tally::get;
        eprintln!(
            "{fault}: {} active, {} created, {} retryable 503, {} needs_reauthorization, {} other, \
             {} calls to a down instance; provider: {} refreshes, {} reused, {} within the grace period, {} invalid",
            t(&tally.active),
            t(&tally.created),
            t(&tally.retryable),
            t(&tally.needs_reauthorization),
            t(&tally.other),
            t(&tally.unreachable),
            counters.refreshes,
            counters.reused_refresh_tokens,
            counters.grace_reuses,
            counters.invalid_refresh_tokens
        );
        assert!(
            counters.refreshes as usize > self.accounts,
            "tokens expired and were refreshed during the run"
        );
        assert!(t(&tally.active) > 1000, "the load ran");
        assert!(t(&tally.created) > 10, "connections were made during the run");
        assert_eq!(t(&tally.needs_reauthorization), 0, "no call saw a dead connection");
        assert_eq!(
            t(&tally.other),
            0,
            "every answer was an active token, a new connection or a retryable 503"
        );
        assert_eq!(
            counters.reused_refresh_tokens, 0,
            "no used refresh token was ever presented"
        );

        let get = |path: String| {
            let port = self.instances[0].port;
            let http = self.http.clone();
            let key = self.key.clone();
            async move {
                let r = http
                    .get(format!("http://127.0.0.1:{port}{path}"))
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                (status, r.json::<serde_json::Value>().await.unwrap_or_default())
            }
        };
        for n in 0..self.accounts {
            let (_, account) = get(format!("/user_management/users/user_{n}/connected_accounts/mock")).await;
            assert_eq!(account["state"], "connected", "user_{n}: {account}");
        }
        // Every connection a caller was told about exists, with its event.
        let acknowledged = tally.acknowledged.lock().unwrap().clone();
        let mut announced = HashSet::new();
        let mut after: Option<String> = None;
        loop {
            let cursor = after.as_ref().map(|a| format!("&after={a}")).unwrap_or_default();
            let (status, page) = get(format!(
                "/events?events=pipes.connected_account.connected&limit=100{cursor}"
            ))
            .await;
            assert_eq!(status, 200, "{page}");
            for e in page["data"].as_array().unwrap() {
                if let Some(user) = e["data"]["user_id"].as_str() {
                    announced.insert(user.to_owned());
                }
            }
            after = page["list_metadata"]["after"].as_str().map(str::to_owned);
            if after.is_none() {
                break;
            }
        }
        for user in &acknowledged {
            let (status, account) = get(format!("/user_management/users/{user}/connected_accounts/mock")).await;
            assert_eq!(
                (status, account["state"].as_str()),
                (200, Some("connected")),
                "{user}: {account}"
            );
            assert!(announced.contains(user), "{user} was connected without its event");
        }
    }

    fn stop(&mut self) {
        for i in &mut self.instances {
            let _ = i.child.kill();
            let _ = i.child.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn seconds(default: u64) -> u64 {
    std::env::var("PIPES_TEST_FAULT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_survive_kills_without_losing_a_grant() {
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let seconds = seconds(60);
    let mut cluster = Cluster::start(&db.url, 3, 200).await;
    let end = Instant::now() + Duration::from_secs(seconds);
    let (tally, callers) = cluster.load(end);
    // Every 10 s one process dies without warning and comes back on the same port.
    let mut kills = 0;
    while Instant::now() + Duration::from_secs(10) <= end {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let (db, vault) = (cluster.db.clone(), cluster.vault.clone());
        let i = &mut cluster.instances[kills % 3];
        i.child.kill().unwrap(); // SIGKILL
        i.child.wait().unwrap();
        i.child = serve(&db, &vault, i.port);
        let port = i.port;
        ready(&cluster.http, port).await;
        kills += 1;
    }
    for c in callers {
        c.await.unwrap();
    }
    assert!(kills as u64 >= seconds / 10 - 1, "the processes were killed");
    cluster.verify(&format!("{kills} kills"), &tally).await;
}

/// `scripts/postgres` of this repository.
fn pg_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/postgres")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_ride_out_postgres_restarts() {
    // Its own server: restarting the shared one would break the other tests.
    if TestDatabase::postgres().await.is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("pg");
    let port = free_port();
    let out = Command::new(pg_script())
        .args(["start", data.to_str().unwrap(), &port.to_string()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let url = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stop = scopeguard(data.clone());

    let seconds = seconds(30);
    let cluster = Cluster::start(&url, 3, 100).await;
    let end = Instant::now() + Duration::from_secs(seconds);
    let (tally, callers) = cluster.load(end);
    let mut restarts = 0;
    while Instant::now() + Duration::from_secs(8) <= end {
        tokio::time::sleep(Duration::from_secs(8)).await;
        let out = Command::new(pg_script())
            .args(["restart", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        restarts += 1;
    }
    for c in callers {
        c.await.unwrap();
    }
    assert!(restarts >= 2, "PostgreSQL was restarted");
    assert!(Tally::get(&tally.retryable) > 0, "the restarts were felt");
    cluster.verify(&format!("{restarts} PostgreSQL restarts"), &tally).await;
    drop(cluster);
    drop(stop);
}

/// Stops the PostgreSQL in `data` when dropped.
struct PgGuard(PathBuf);

fn scopeguard(data: PathBuf) -> PgGuard {
    PgGuard(data)
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        let _ = Command::new(pg_script())
            .args(["stop", self.0.to_str().unwrap()])
            .output();
    }
}

/// A small tmpfs of its own, unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    /// `None` when this process cannot mount (not root, no tmpfs); with
    /// `PIPES_REQUIRE_DISK_FAULT=1` that is a failure.
    fn mount(megabytes: u32) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !mounted {
            assert!(
                std::env::var("PIPES_REQUIRE_DISK_FAULT").as_deref() != Ok("1"),
                "PIPES_REQUIRE_DISK_FAULT=1 but a tmpfs cannot be mounted (run as root)"
            );
            eprintln!("note: cannot mount a tmpfs; skipping the disk-full test");
            return None;
        }
        Some(Self(dir))
    }

    fn path(&self) -> &Path {
        self.0.path()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        use std::io::Write;
        let filler = self.path().join("filler");
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_fails_writes_cleanly_and_recovers_by_itself() {
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let db = format!("sqlite://{}", disk.path().join("pipes.db").display());
    let seconds = seconds(24);
    let cluster = Cluster::start(&db, 1, 60).await;
    let end = Instant::now() + Duration::from_secs(seconds);
    let (tally, callers) = cluster.load(end);

    tokio::time::sleep(Duration::from_secs(seconds / 4)).await;
    let filler = disk.fill();
    let full_since = Instant::now();
    let created_before = Tally::get(&tally.created);
    tokio::time::sleep(Duration::from_secs(seconds / 3)).await;
    let refused_while_full = Tally::get(&tally.retryable);
    std::fs::remove_file(&filler).unwrap();
    let full_for = full_since.elapsed();
    let created_at_recovery = Tally::get(&tally.created);
    for c in callers {
        c.await.unwrap();
    }
    eprintln!(
        "disk full for {full_for:?}: {refused_while_full} retryable answers; {} connections made \
         while full, {} after",
        created_at_recovery - created_before,
        Tally::get(&tally.created) - created_at_recovery
    );
    assert!(refused_while_full > 0, "writes were refused while the disk was full");
    assert!(
        Tally::get(&tally.created) > created_at_recovery,
        "writes work again once there is space, without a restart"
    );
    let port = cluster.instances[0].port;
    ready(&cluster.http, port).await;
    cluster
        .verify(&format!("disk full for {} s", full_for.as_secs()), &tally)
        .await;
}
