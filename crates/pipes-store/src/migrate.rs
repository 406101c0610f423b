//! Migrations: one tree per backend, embedded in the binary, applied in order inside one
//! transaction each and recorded in `pipes_migrations`.

use sqlx::AnyPool;
use sqlx::Row;

use crate::Backend;

/// One migration: version, name, SQL.
type Migration = (i64, &'static str, &'static str);

/// Both trees from one list: each migration exists once per backend, under the same file name.
macro_rules! migrations {
    ($($version:literal $number:literal $name:literal),* $(,)?) => {
        const SQLITE: &[Migration] = &[$(
            ($version, $name, include_str!(concat!("../migrations/sqlite/", $number, "_", $name, ".sql"))),
        )*];
        const POSTGRES: &[Migration] = &[$(
            ($version, $name, include_str!(concat!("../migrations/postgres/", $number, "_", $name, ".sql"))),
        )*];
    };
}

migrations!(
    1 "0001" "foundation",
    2 "0002" "idempotency",
    3 "0003" "connected_accounts",
    4 "0004" "events",
    5 "0005" "refresh_ahead",
    6 "0006" "tenants",
    7 "0007" "webhook_subscriptions",
    8 "0008" "widgets",
    9 "0009" "connect_sessions",
    10 "0010" "browser_binding",
    11 "0011" "sealed_idempotency",
);

/// Arbitrary constant for PostgreSQL's advisory lock, so concurrent `pipes serve` processes do
/// not race each other through the migrations.
const PG_LOCK_KEY: i64 = 0x5049_5045_535f_4d47;

/// Applies every pending migration; returns the names of those applied now.
pub async fn run(pool: &AnyPool, backend: Backend) -> Result<Vec<String>, sqlx::Error> {
    let migrations = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    let mut conn = pool.acquire().await?;
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    let result = apply(&mut conn, migrations).await;
    if backend == Backend::Postgres {
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS l")
            .bind(PG_LOCK_KEY)
            .execute(&mut *conn)
            .await?;
    }
    result
}

async fn apply(conn: &mut sqlx::AnyConnection, migrations: &[Migration]) -> Result<Vec<String>, sqlx::Error> {
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS pipes_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let rows = sqlx::query("SELECT version FROM pipes_migrations")
        .fetch_all(&mut *conn)
        .await?;
    let done: Vec<i64> = rows.iter().map(|r| r.try_get::<i64, _>(0)).collect::<Result<_, _>>()?;
    let mut applied = vec![];
    for (version, name, sql) in migrations {
        if done.contains(version) {
            continue;
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(sql).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO pipes_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(*version)
            .bind(*name)
            .bind(pipes_core::time::now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        applied.push(format!("{version:04}_{name}"));
    }
    Ok(applied)
}

/// The latest migration version this binary knows, for `pipes doctor`-style checks.
pub fn latest(backend: Backend) -> i64 {
    let list = match backend {
        Backend::Sqlite => SQLITE,
        Backend::Postgres => POSTGRES,
    };
    list.last().map_or(0, |m| m.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_file_is_registered_on_both_backends() {
        for (dir, list) in [("sqlite", SQLITE), ("postgres", POSTGRES)] {
            let path = format!("{}/migrations/{dir}", env!("CARGO_MANIFEST_DIR"));
            let mut files: Vec<String> = std::fs::read_dir(&path)
                .unwrap_or_else(|e| panic!("{path}: {e}"))
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect();
            files.sort();
            let registered: Vec<String> = list.iter().map(|(v, name, _)| format!("{v:04}_{name}.sql")).collect();
            assert_eq!(files, registered, "{dir}");
        }
        assert_eq!(latest(Backend::Sqlite), latest(Backend::Postgres));
    }
}
