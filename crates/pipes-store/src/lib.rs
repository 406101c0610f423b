//! The Pipes [`Store`] on SQLite (the embedded default) and PostgreSQL.
//!
//! Both backends run the same SQL through `sqlx::Any` (`$N` placeholders work on both); each has
//! its own migration tree. The backend is chosen by the URL scheme: `sqlite://…` or
//! `postgres://…`.
#![forbid(unsafe_code)]

mod migrate;
mod rows;
mod sql;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use pipes_core::store::{Store, StoreError};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use migrate::latest as latest_migration;
pub use sql::SqlStore;

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, WAL, one server process.
    Sqlite,
    /// Shared by any number of server processes.
    Postgres,
}

impl Backend {
    /// The backend of a database URL.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else {
            Err(StoreError::Backend(
                "PIPES_DATABASE_URL must start with sqlite:// or postgres://".into(),
            ))
        }
    }
}

/// Redacts the password of a database URL for messages and logs.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("****"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

fn backend_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict(db.message().to_owned()),
        sqlx::Error::Database(db) if db.code().is_some_and(|c| is_transient_code(&c)) => {
            StoreError::Unavailable(e.to_string())
        }
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Backend(e.to_string()),
    }
}

/// Error codes that say "not now" rather than "never": PostgreSQL's connection exceptions
/// (08…), insufficient resources such as a full disk (53…) and shutdowns (57P01–57P03);
/// SQLite's busy, locked, I/O error and full (primary codes 5, 6, 10, 13, under any extended
/// code).
fn is_transient_code(code: &str) -> bool {
    if let Ok(sqlite) = code.parse::<i64>() {
        return matches!(sqlite & 0xff, 5 | 6 | 10 | 13);
    }
    code.starts_with("08") || code.starts_with("53") || matches!(code, "57P01" | "57P02" | "57P03")
}

/// Opens the database a URL names, creating a SQLite file (and its directory) when missing.
/// Does not migrate; call [`SqlStore::migrate`].
pub async fn connect(url: &str) -> Result<SqlStore, StoreError> {
    sqlx::any::install_default_drivers();
    let backend = Backend::of(url)?;
    let url = match backend {
        Backend::Sqlite => sqlite_url(url)?,
        Backend::Postgres => url.to_owned(),
    };
    let options = AnyConnectOptions::from_str(&url)
        .map_err(|e| StoreError::Backend(format!("invalid database URL {}: {e}", redact_url(&url))))?;
    let sqlite_pool = |max: u32| {
        pool_options().max_connections(max).after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute("PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                    .await?;
                Ok(())
            })
        })
    };
    let cannot_open = |e: sqlx::Error| StoreError::Backend(format!("cannot open {}: {e}", redact_url(&url)));
    let (pool, writer) = match backend {
        Backend::Sqlite => {
            let pool: AnyPool = sqlite_pool(8)
                .connect_with(options.clone())
                .await
                .map_err(cannot_open)?;
            // WAL is a property of the file: set once, it stays.
            sqlx::raw_sql("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(backend_err)?;
            // SQLite takes one writer at a time, and writers that collide wait in its busy
            // handler, which sleeps up to 100 ms per try. Writes queue for one connection
            // instead, in order and without sleeping.
            let writer = sqlite_pool(1).connect_with(options).await.map_err(cannot_open)?;
            (pool, writer)
        }
        Backend::Postgres => {
            let pool: AnyPool = pool_options()
                .max_connections(16)
                .connect_with(options)
                .await
                .map_err(cannot_open)?;
            (pool.clone(), pool)
        }
    };
    Ok(SqlStore::new(pool, writer, backend))
}

/// Pool settings for both backends. A connection still inside a transaction when it is taken
/// from the pool is closed instead of used: when a COMMIT fails (a full disk, a server going
/// away) the database may already have ended the transaction, the ROLLBACK that follows then
/// fails too, and the driver would otherwise refuse every later BEGIN on that connection.
fn pool_options() -> AnyPoolOptions {
    AnyPoolOptions::new()
        .acquire_timeout(Duration::from_secs(10))
        .before_acquire(|conn, _| {
            Box::pin(async move {
                let depth = |c: &sqlx::AnyConnection| {
                    <<sqlx::Any as sqlx::Database>::TransactionManager as sqlx::TransactionManager>::get_transaction_depth(c)
                };
                if depth(conn) > 0 {
                    // A rollback queued by a dropped transaction runs before the ping.
                    let _ = sqlx::Connection::ping(conn).await;
                }
                Ok(depth(conn) == 0)
            })
        })
}

/// Held by a server for as long as it serves a SQLite database (see [`lock_for_server`]).
#[derive(Debug)]
pub struct ServerLock {
    _file: std::fs::File,
}

/// SQLite serves one server process: takes an exclusive lock on `<database>.server.lock` for the
/// life of the returned guard, or explains who holds it. PostgreSQL needs no lock (any number of
/// servers share it) and gets `None`. Operator commands do not take the lock, so they keep
/// working while the server runs.
pub fn lock_for_server(url: &str) -> Result<Option<ServerLock>, StoreError> {
    if Backend::of(url)? != Backend::Sqlite {
        return Ok(None);
    }
    let normalized = sqlite_url(url)?;
    let path = normalized
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    let lock_path = format!("{path}.server.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(format!("cannot open {lock_path}: {e}")))?;
    match file.try_lock() {
        Ok(()) => {
            use std::io::Write;
            let _ = file.set_len(0);
            let _ = write!(file, "{}", std::process::id());
            Ok(Some(ServerLock { _file: file }))
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&lock_path).unwrap_or_default();
            Err(StoreError::Backend(format!(
                "another pipes server (pid {}) is already serving {path}. SQLite serves one server process; \
                 stop it first, or use PostgreSQL (PIPES_DATABASE_URL=postgres://…) to run several.",
                holder.trim()
            )))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(format!("cannot lock {lock_path}: {e}"))),
    }
}

/// Opens and migrates; the usual way to get a store.
pub async fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    let store = connect(url).await?;
    store.migrate().await?;
    Ok(Arc::new(store))
}

/// Creates a new database file readable and writable by its owner only; SQLite gives its WAL and
/// shared-memory files the same permissions. An existing file is left as it is.
fn create_private(path: &str) -> Result<(), StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(format!("cannot create {path}: {e}"))),
    }
}

/// Normalises a `sqlite://` URL: creates the parent directory and asks for create-if-missing.
fn sqlite_url(url: &str) -> Result<String, StoreError> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or_default();
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Backend(
            "PIPES_DATABASE_URL must name a SQLite file, e.g. sqlite://./pipes-data/pipes.db".into(),
        ));
    }
    if let Some(parent) = std::path::Path::new(path).parent() {
        if !parent.as_os_str().is_empty() {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", parent.display())))?;
        }
    }
    create_private(path)?;
    let query = if query.contains("mode=") {
        query.to_owned()
    } else if query.is_empty() {
        "mode=rwc".to_owned()
    } else {
        format!("{query}&mode=rwc")
    };
    Ok(format!("sqlite://{path}?{query}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_backend_by_scheme_and_redacts_passwords() {
        assert_eq!(Backend::of("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(Backend::of("postgres://u:p@h/db").unwrap(), Backend::Postgres);
        assert!(Backend::of("mysql://h/db").is_err());
        assert_eq!(redact_url("postgres://u:hunter2@h/db"), "postgres://u:****@h/db");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_is_readable_by_its_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("pipes-perm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let db = dir.join("pipes.db");
        let store = open(&format!("sqlite://{}", db.display())).await.unwrap();
        store.list_environments().await.unwrap();
        for file in ["pipes.db", "pipes.db-wal", "pipes.db-shm"] {
            let path = dir.join(file);
            if let Ok(meta) = std::fs::metadata(&path) {
                assert_eq!(meta.permissions().mode() & 0o777, 0o600, "{}", path.display());
            } else {
                assert_ne!(file, "pipes.db", "the database exists");
            }
        }
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
