//! Test support: throwaway databases on both backends.
//!
//! PostgreSQL tests run when `PIPES_TEST_POSTGRES_URL` names a server the tests may create
//! databases on (the test command starts one). Each call gets a fresh database, so tests never
//! see each other's rows.

use rand::Rng;

/// Environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_ENV: &str = "PIPES_TEST_POSTGRES_URL";

/// A database for one test. Keeps its temp directory alive for SQLite.
#[derive(Debug)]
pub struct TestDatabase {
    /// The `PIPES_DATABASE_URL` for it.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// A fresh SQLite file in a temp directory.
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("pipes.db").display());
        Self { url, _dir: Some(dir) }
    }

    /// A fresh PostgreSQL database, or `None` when no test server is configured.
    /// With `PIPES_REQUIRE_POSTGRES=1` a missing server is an error, so CI cannot skip silently.
    pub async fn postgres() -> Option<Self> {
        let Ok(admin) = std::env::var(POSTGRES_ENV) else {
            assert!(
                std::env::var("PIPES_REQUIRE_POSTGRES").as_deref() != Ok("1"),
                "PIPES_REQUIRE_POSTGRES=1 but {POSTGRES_ENV} is not set"
            );
            eprintln!("note: {POSTGRES_ENV} not set; skipping the PostgreSQL variant");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("pipes_test_{:016x}", rand::thread_rng().gen::<u64>());
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect to the PostgreSQL test server");
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let mut url = url::Url::parse(&admin).expect("PostgreSQL test URL");
        url.set_path(&name);
        Some(Self {
            url: url.to_string(),
            _dir: None,
        })
    }

    /// Every byte the database holds: the SQLite file with its WAL and shared memory, or a
    /// `pg_dump` of the PostgreSQL database.
    pub fn bytes(&self) -> Vec<u8> {
        if let Some(path) = self.url.strip_prefix("sqlite://") {
            let mut out = vec![];
            for suffix in ["", "-wal", "-shm"] {
                out.extend(std::fs::read(format!("{path}{suffix}")).unwrap_or_default());
            }
            return out;
        }
        let pg_dump = ["/usr/lib/postgresql/15/bin/pg_dump", "pg_dump"]
            .into_iter()
            .find(|p| std::process::Command::new(p).arg("--version").output().is_ok())
            .expect("pg_dump is installed with PostgreSQL");
        let out = std::process::Command::new(pg_dump)
            .arg("--data-only")
            .arg(&self.url)
            .output()
            .expect("pg_dump");
        assert!(
            out.status.success(),
            "pg_dump failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}
