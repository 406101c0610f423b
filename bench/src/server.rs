//! A release `pipes serve` set up as an operator would: a vault key, an environment and an API
//! key made with the CLI, on a temporary SQLite file or the given database.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::bail;

/// A running server; killed on drop.
pub struct BenchServer {
    /// The API key of its environment.
    pub key: String,
    /// `SQLite` or `PostgreSQL`.
    pub backend: &'static str,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The `pipes` binary next to this one.
pub fn pipes_binary() -> anyhow::Result<PathBuf> {
    let pipes = std::env::current_exe()?.with_file_name("pipes");
    if !pipes.exists() {
        bail!(
            "{} not found: build with cargo build --release -p pipes-cli -p pipes-bench",
            pipes.display()
        );
    }
    Ok(pipes)
}

impl BenchServer {
    /// Sets up an environment on `database_url` (a fresh SQLite file when `None`) and serves
    /// it on `listen`.
    pub fn start(database_url: Option<String>, listen: &str) -> anyhow::Result<Self> {
        let pipes = pipes_binary()?;
        let dir = tempfile::tempdir()?;
        let db = database_url.unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
        let backend = if db.starts_with("postgres") {
            "PostgreSQL"
        } else {
            "SQLite"
        };
        let cli = |args: &[&str], vault: &str| -> anyhow::Result<String> {
            let out = Command::new(&pipes)
                .args(args)
                .env("PIPES_DATABASE_URL", &db)
                .env("PIPES_VAULT_KEYS", vault)
                .output()?;
            if !out.status.success() {
                bail!("pipes {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(String::from_utf8(out.stdout)?)
        };
        let vault = cli(&["vault", "generate-key", "--kid", "bench"], "")?.trim().to_owned();
        let env_name = format!("bench{}", std::process::id());
        cli(&["env", "create", &env_name], &vault)?;
        let key = cli(&["keys", "create", "--env", &env_name], &vault)?
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        let child = Command::new(&pipes)
            .arg("serve")
            .env("PIPES_DATABASE_URL", &db)
            .env("PIPES_VAULT_KEYS", &vault)
            .env("PIPES_LISTEN", listen)
            .env("PIPES_EGRESS_ALLOW_CIDRS", "127.0.0.0/8")
            // The limiter runs on every request (its cost is measured) but never refuses one.
            .env("PIPES_RATE_LIMIT_PER_KEY", "1000000")
            .env("PIPES_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(Self {
            key,
            backend,
            child,
            _dir: dir,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

/// Waits until the server at `base` answers `/healthz`.
pub async fn wait_until_up(base: &str) {
    for _ in 0..100 {
        if reqwest::get(format!("{base}/healthz")).await.is_ok() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
