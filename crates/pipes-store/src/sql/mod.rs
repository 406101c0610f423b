//! The SQL behind the [`pipes_core::store`] traits, shared by both backends: one file per
//! aggregate, and here the pieces they share (the store itself, transactions, bound parameters,
//! the event append and the lease compare-and-set).

/// `sqlx::query(sql).bind(a).bind(b)…` for a fixed statement and its values, in order.
macro_rules! q {
    ($sql:expr $(, $value:expr)* $(,)?) => {
        sqlx::query($sql)$(.bind($value))*
    };
}

mod accounts;
mod authorizations;
mod environments;
mod events;
mod idempotency;
mod integrations;
mod maintenance;
mod membership;
mod organizations;
mod refresh;
mod webhooks;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use pipes_core::events::Event;
use pipes_core::pagination::Scan;
use pipes_core::store::{StoreError, StoreResult};
use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyPool, Arguments};

use crate::rows::get;
use crate::{backend_err, migrate, Backend};

/// A store over a SQLite or PostgreSQL pool.
#[derive(Debug, Clone)]
pub struct SqlStore {
    /// Reads.
    pool: AnyPool,
    /// Writes: the same pool on PostgreSQL, one connection on SQLite.
    writer: AnyPool,
    backend: Backend,
    /// Bumped after every committed write that can change what vending reads.
    epoch: Arc<AtomicU64>,
    /// Notified after a committed write appended events.
    events_appended: Arc<tokio::sync::Notify>,
}

type Tx = sqlx::Transaction<'static, Any>;
type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

impl SqlStore {
    pub(crate) fn new(pool: AnyPool, writer: AnyPool, backend: Backend) -> Self {
        Self {
            pool,
            writer,
            backend,
            epoch: Default::default(),
            events_appended: Default::default(),
        }
    }

    /// A write transaction. On SQLite it takes the write lock at `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads before it writes fails with `SQLITE_BUSY_SNAPSHOT` when another
    /// connection to the file committed in between, and no busy handler can recover that.
    async fn begin_write(&self) -> StoreResult<Tx> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .map_err(backend_err)
    }

    /// Runs a write and, once it has committed, bumps the write epoch, so a reader that took the
    /// epoch before reading sees its read invalidated.
    async fn counted<T>(&self, write: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let result = write.await;
        if result.is_ok() {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
        result
    }

    /// [`Self::counted`], and wakes the delivery worker when the write appended events.
    async fn with_events<T>(
        &self,
        events: &[Event],
        write: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let result = self.counted(write).await;
        if result.is_ok() && !events.is_empty() {
            self.events_appended.notify_one();
        }
        result
    }

    /// A read of at most one row, converted by `row`.
    async fn optional<T>(&self, q: Q<'_>, row: impl FnOnce(&AnyRow) -> StoreResult<T>) -> StoreResult<Option<T>> {
        q.fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?
            .map(|r| row(&r))
            .transpose()
    }

    /// A read of every row, each converted by `row`.
    async fn all<T>(&self, q: Q<'_>, row: impl FnMut(&AnyRow) -> StoreResult<T>) -> StoreResult<Vec<T>> {
        let rows = q.fetch_all(&self.pool).await.map_err(backend_err)?;
        rows.iter().map(row).collect()
    }

    /// Whether a read finds a row.
    async fn exists(&self, q: Q<'_>) -> StoreResult<bool> {
        Ok(q.fetch_optional(&self.pool).await.map_err(backend_err)?.is_some())
    }

    /// A `SELECT COUNT(*) AS n …`.
    async fn count(&self, q: Q<'_>) -> StoreResult<i64> {
        get(&q.fetch_one(&self.pool).await.map_err(backend_err)?, "n")
    }

    /// A single-statement write; returns how many rows it changed.
    async fn write(&self, q: Q<'_>) -> StoreResult<u64> {
        Ok(q.execute(&self.writer).await.map_err(backend_err)?.rows_affected())
    }

    /// Applies pending migrations; returns their names.
    pub async fn migrate(&self) -> StoreResult<Vec<String>> {
        migrate::run(&self.pool, self.backend).await.map_err(backend_err)
    }

    /// The pool, for backend-specific tests.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Closes the pools.
    pub async fn close(&self) {
        self.pool.close().await;
        self.writer.close().await;
    }
}

/// Values bound in the order they are named, each returning its own placeholder, so no SQL
/// text numbers a `$N` by hand. Named values ([`Params::set`]) also make the column list of an
/// `INSERT` ([`Params::insert`]) or an `UPDATE` ([`Params::assignments`]) from one definition.
#[derive(Default)]
pub(crate) struct Params<'q> {
    args: AnyArguments<'q>,
    columns: Vec<(&'static str, String)>,
    error: Option<String>,
}

impl<'q> Params<'q> {
    /// Binds a value; returns its placeholder.
    pub(crate) fn push<T>(&mut self, value: T) -> String
    where
        T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        if let Err(e) = self.args.add(value) {
            self.error.get_or_insert_with(|| e.to_string());
        }
        format!("${}", self.args.len())
    }

    /// Binds a column's value.
    pub(crate) fn set<T>(&mut self, column: &'static str, value: T) -> &mut Self
    where
        T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        let placeholder = self.push(value);
        self.columns.push((column, placeholder));
        self
    }

    /// Binds each value; returns `($1, $2, …)` for an `IN` list (`(NULL)` when empty).
    pub(crate) fn list<T, I>(&mut self, values: I) -> String
    where
        I: IntoIterator<Item = T>,
        T: 'q + sqlx::Encode<'q, Any> + sqlx::Type<Any>,
    {
        let names: Vec<String> = values.into_iter().map(|v| self.push(v)).collect();
        if names.is_empty() {
            "(NULL)".to_owned()
        } else {
            format!("({})", names.join(", "))
        }
    }

    /// How many columns are set so far: a mark for [`Params::excluded_assignments`].
    pub(crate) fn mark(&self) -> usize {
        self.columns.len()
    }

    /// `c = excluded.c` for each column set after `mark`: the update list of an upsert.
    pub(crate) fn excluded_assignments(&self, mark: usize) -> String {
        let sets: Vec<String> = self.columns[mark..]
            .iter()
            .map(|(c, _)| format!("{c} = excluded.{c}"))
            .collect();
        sets.join(", ")
    }

    /// `(a, b) VALUES ($1, $2)` over the columns set so far.
    pub(crate) fn insert(&self) -> String {
        let (names, values): (Vec<&str>, Vec<&str>) = self.columns.iter().map(|(c, p)| (*c, p.as_str())).unzip();
        format!("({}) VALUES ({})", names.join(", "), values.join(", "))
    }

    /// `a = $1, b = $2` over the columns set so far.
    pub(crate) fn assignments(&self) -> String {
        let sets: Vec<String> = self.columns.iter().map(|(c, p)| format!("{c} = {p}")).collect();
        sets.join(", ")
    }

    /// The query with these values bound.
    pub(crate) fn query(self, sql: &'q str) -> StoreResult<Query<'q, Any, AnyArguments<'q>>> {
        match self.error {
            Some(e) => Err(StoreError::Backend(format!("cannot bind a value: {e}"))),
            None => Ok(sqlx::query_with(sql, self.args)),
        }
    }
}

/// Which way a page runs: the id comparison and the order.
/// Runs a write inside a transaction; returns how many rows it changed.
pub(crate) async fn exec(tx: &mut Tx, q: Q<'_>) -> StoreResult<u64> {
    Ok(q.execute(&mut **tx).await.map_err(backend_err)?.rows_affected())
}

pub(crate) fn direction(scan: &Scan) -> (&'static str, &'static str) {
    if scan.newer {
        (">", "ASC")
    } else {
        ("<", "DESC")
    }
}

/// Appends events and fans each out into a pending delivery per enabled endpoint of its
/// environment that subscribes to its type, inside the caller's transaction.
pub(crate) async fn append_events_in(tx: &mut Tx, events: &[Event]) -> StoreResult<()> {
    for e in events {
        let mut p = Params::default();
        p.set("id", e.id.to_string())
            .set("environment_id", e.environment_id.to_string())
            .set("event", e.event.as_str())
            .set("organization_id", e.organization_id.as_deref())
            .set("created_at", e.created_at)
            .set("body", e.body.as_str());
        let sql = format!("INSERT INTO events {}", p.insert());
        p.query(&sql)?.execute(&mut **tx).await.map_err(backend_err)?;

        let mut p = Params::default();
        let sql = format!(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event, state, attempts, pending_since) \
             SELECT e.id, {event_id}, s.event, 'pending', 0, {created_at} FROM webhook_endpoints e \
             JOIN webhook_subscriptions s ON s.endpoint_id = e.id AND s.event = {event} \
             WHERE e.environment_id = {env} AND e.status = 'enabled'",
            event_id = p.push(e.id.to_string()),
            created_at = p.push(e.created_at),
            event = p.push(e.event.as_str()),
            env = p.push(e.environment_id.to_string()),
        );
        p.query(&sql)?.execute(&mut **tx).await.map_err(backend_err)?;
    }
    Ok(())
}

/// The columns of a lease: which table, which row, who holds it and until when.
pub(crate) struct LeaseColumns {
    pub table: &'static str,
    pub owner: &'static str,
    pub until: &'static str,
    /// Whether the holder may take its own unexpired lease again (extending it).
    pub reentrant: bool,
}

/// Takes a lease by compare-and-set if nobody holds an unexpired one: `None` when it is held
/// (or the row does not exist), `Some(true)` when it took over a lease another holder let expire.
pub(crate) async fn take_lease(
    store: &SqlStore,
    lease: &LeaseColumns,
    id: String,
    holder: &str,
    now: i64,
    until: i64,
) -> StoreResult<Option<bool>> {
    let LeaseColumns {
        table,
        owner,
        until: until_col,
        reentrant,
    } = *lease;
    let mut tx = store.begin_write().await?;
    let mut p = Params::default();
    let sql = format!("SELECT {owner} AS owner FROM {table} WHERE id = {}", p.push(id.clone()));
    let Some(before) = p.query(&sql)?.fetch_optional(&mut *tx).await.map_err(backend_err)? else {
        return Ok(None);
    };
    let previous: Option<String> = get(&before, "owner")?;
    let mut p = Params::default();
    p.set(owner, holder).set(until_col, until);
    let mut free = format!("{until_col} IS NULL OR {until_col} < {}", p.push(now));
    if reentrant {
        free = format!("{free} OR {owner} = {}", p.push(holder));
    }
    let sql = format!(
        "UPDATE {table} SET {} WHERE id = {} AND ({free})",
        p.assignments(),
        p.push(id)
    );
    let done = exec(&mut tx, p.query(&sql)?).await?;
    if done != 1 {
        return Ok(None);
    }
    tx.commit().await.map_err(backend_err)?;
    // A lease still named by another holder after its expiry: that holder stopped.
    Ok(Some(previous.is_some_and(|p| p != holder)))
}

/// Gives a lease back, only if `holder` still holds it.
pub(crate) async fn release_lease(store: &SqlStore, lease: &LeaseColumns, id: String, holder: &str) -> StoreResult<()> {
    let LeaseColumns {
        table, owner, until, ..
    } = *lease;
    let mut p = Params::default();
    let sql = format!(
        "UPDATE {table} SET {owner} = NULL, {until} = NULL WHERE id = {} AND {owner} = {}",
        p.push(id),
        p.push(holder)
    );
    p.query(&sql)?.execute(&store.writer).await.map_err(backend_err)?;
    Ok(())
}
