//! The SQL behind [`Store`], shared by both backends.

use async_trait::async_trait;
use pipes_core::domain::{
    ApiKey, AttemptOutcome, Authorization, AuthorizationStatus, ConnectedAccount, ConnectionIntent, CustomProvider,
    DataIntegration, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, Environment, EnvironmentName,
    EnvironmentSettings, Membership, MembershipMode, OrganizationSettings, Ownership, RefreshError, TokenSet,
    WebhookEndpoint,
};
use pipes_core::events::{Event, EventType};
use pipes_core::ids::{
    ApiKeyId, ConnectedAccountId, DataIntegrationId, DikId, EnvironmentId, EventId, WebhookEndpointId,
};
use pipes_core::pagination::Scan;
use pipes_core::slug::Slug;
use pipes_core::store::{
    EventFilter, IdempotencyBegin, KeepAlive, SealedColumn, SealedRow, Store, StoreError, StoreResult, StoredEvent,
    VendRead,
};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool};

use crate::rows::{self, get, ACCOUNT_COLUMNS, ACCOUNT_FROM, ENV_COLUMNS, ROOT_COLUMNS, ROOT_FROM};
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
    epoch: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Notified after a committed write appended events.
    events_appended: std::sync::Arc<tokio::sync::Notify>,
}

type Q<'q> = Query<'q, Any, AnyArguments<'q>>;

fn sealed_table(column: SealedColumn) -> (&'static str, &'static str) {
    match column {
        SealedColumn::IntegrationClientSecret => ("data_integrations", "client_secret"),
        SealedColumn::WebhookSecret => ("webhook_endpoints", "secret"),
        SealedColumn::AccountAccessToken => ("connected_accounts", "access_token"),
        SealedColumn::AccountRefreshToken => ("connected_accounts", "refresh_token"),
        SealedColumn::AccountSecret => ("connected_accounts", "secret"),
        SealedColumn::OrganizationClientSecret => ("organization_settings", "client_secret"),
    }
}

/// Appends events and fans each out into a pending delivery per enabled endpoint of its
/// environment that subscribes to its type, inside the caller's transaction.
async fn append_in(tx: &mut sqlx::Transaction<'static, Any>, events: &[Event]) -> StoreResult<()> {
    for e in events {
        sqlx::query(
            "INSERT INTO events (id, environment_id, event, organization_id, created_at, body) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.id.to_string())
        .bind(e.environment_id.to_string())
        .bind(e.event.as_str())
        .bind(e.organization_id.as_deref())
        .bind(e.created_at)
        .bind(e.body.as_str())
        .execute(&mut **tx)
        .await
        .map_err(backend_err)?;
        sqlx::query(
            "INSERT INTO webhook_deliveries (endpoint_id, event_id, event, state, attempts, pending_since) \
             SELECT id, $1, $2, 'pending', 0, $3 FROM webhook_endpoints \
             WHERE environment_id = $4 AND status = 'enabled' AND events LIKE $5 ESCAPE '\\'",
        )
        .bind(e.id.to_string())
        .bind(e.event.as_str())
        .bind(e.created_at)
        .bind(e.environment_id.to_string())
        .bind(subscription_pattern(e.event))
        .execute(&mut **tx)
        .await
        .map_err(backend_err)?;
    }
    Ok(())
}

/// Serializes, per environment, organization and user, the writes that make the user the
/// establishing member of a shared connection with the writes that change that membership
/// (PostgreSQL: a transaction-scoped advisory lock; SQLite serializes every write already).
async fn lock_member(
    tx: &mut sqlx::Transaction<'static, Any>,
    backend: Backend,
    env: &str,
    organization: &str,
    user: &str,
) -> StoreResult<()> {
    if backend == Backend::Postgres {
        // Ids are visible ASCII, so the unit separator keeps the key unambiguous.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("member\u{1f}{env}\u{1f}{organization}\u{1f}{user}"))
            .execute(&mut **tx)
            .await
            .map_err(backend_err)?;
    }
    Ok(())
}

/// Refuses, inside the write's transaction, a write that makes a user the establishing member
/// of an organization's connection unless the user is an active member: declared active, or in
/// trust mode not declared inactive. A write that keeps the establishing member is not checked
/// (a connection is cleared when its member leaves); who established it is read under the
/// member's lock, so a membership that ends meanwhile is seen.
async fn check_establishing_member(
    tx: &mut sqlx::Transaction<'static, Any>,
    backend: Backend,
    a: &ConnectedAccount,
    inserting: bool,
) -> StoreResult<()> {
    let (Ownership::Organization, Some(org), Some(user)) = (
        a.owner.ownership,
        a.owner.organization_id.as_deref(),
        a.established_by_user_id.as_deref(),
    ) else {
        return Ok(());
    };
    let env = a.environment_id.to_string();
    lock_member(tx, backend, &env, org, user).await?;
    if !inserting {
        let previous: Option<String> =
            sqlx::query("SELECT established_by_user_id FROM connected_accounts WHERE id = $1 AND environment_id = $2")
                .bind(a.id.to_string())
                .bind(&env)
                .fetch_optional(&mut **tx)
                .await
                .map_err(backend_err)?
                .map(|r| get(&r, "established_by_user_id"))
                .transpose()?
                .flatten();
        if previous.as_deref() == Some(user) {
            return Ok(());
        }
    }
    let row = sqlx::query(
        "SELECT e.membership AS membership, m.active AS active FROM environments e \
         LEFT JOIN organization_members m ON m.environment_id = e.id AND m.organization_id = $2 AND m.user_id = $3 \
         WHERE e.id = $1",
    )
    .bind(&env)
    .bind(org)
    .bind(user)
    .fetch_one(&mut **tx)
    .await
    .map_err(backend_err)?;
    let declared: Option<i64> = get(&row, "active")?;
    let mode: String = get(&row, "membership")?;
    let mode =
        MembershipMode::parse(&mode).ok_or_else(|| StoreError::Backend(format!("unknown membership mode '{mode}'")))?;
    if mode.is_active(declared.map(|flag| flag != 0)) {
        Ok(())
    } else {
        Err(StoreError::NotMember)
    }
}

/// Shared connections ($1 environment, $2 organization) whose establishing member is $3.
const ESTABLISHED_BY: &str = "ca.environment_id = $1 AND di.ownership = 'organization' \
     AND ca.organization_id = $2 AND ca.established_by_user_id = $3";

/// The condition of [`Store::accounts_due_for_refresh`]: $1 now, $2 the lead, then a (slug,
/// cutoff) pair per keep-alive provider.
fn due_for_refresh(keepalive: &[KeepAlive]) -> String {
    let mut idle: Vec<String> = keepalive
        .iter()
        .enumerate()
        .map(|(i, _)| {
            format!(
                "(di.custom_provider_id IS NULL AND di.slug = ${} AND COALESCE(ca.last_refreshed_at, ca.created_at) < ${})",
                3 + 2 * i,
                4 + 2 * i
            )
        })
        .collect();
    idle.insert(
        0,
        "(ca.expires_at IS NOT NULL AND ca.expires_at < $1 + $2 \
         AND (ca.last_refreshed_at IS NULL OR ca.expires_at - $1 < (ca.expires_at - ca.last_refreshed_at) / 2))"
            .to_owned(),
    );
    format!(
        "ca.state = 'connected' AND ca.refresh_token IS NOT NULL \
         AND (ca.refresh_lease_until IS NULL OR ca.refresh_lease_until < $1) \
         AND (ca.refresh_retry_at IS NULL OR ca.refresh_retry_at <= $1) AND ({})",
        idle.join(" OR ")
    )
}

fn bind_due<'q>(q: Q<'q>, now: i64, ahead_ms: i64, keepalive: &'q [KeepAlive]) -> Q<'q> {
    let mut q = q.bind(now).bind(ahead_ms);
    for k in keepalive {
        q = q.bind(k.slug.as_str()).bind(k.idle_before);
    }
    q
}

/// An endpoint's subscriptions as stored: a JSON array of type names.
fn endpoint_events_json(types: &[EventType]) -> String {
    rows::to_json(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
}

/// The `LIKE` pattern that finds a type in an endpoint's JSON array of types.
fn subscription_pattern(t: EventType) -> String {
    let escaped = t.as_str().replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%\"{escaped}\"%")
}

/// Binds a connection's mutable columns, in the order of [`ACCOUNT_MUTABLE`].
fn bind_account<'q>(q: Q<'q>, a: &'q ConnectedAccount) -> Q<'q> {
    q.bind(a.role.as_str())
        .bind(a.account_identifier.as_deref())
        .bind(a.account_display_name.as_deref())
        .bind(a.state.as_str())
        .bind(a.state_reason.as_deref())
        .bind(a.established_by_user_id.as_deref())
        .bind(rows::to_json(&a.scopes))
        .bind(rows::to_json(&a.config))
        .bind(rows::to_json(&a.metadata))
        .bind(a.tokens.access_token.as_ref().map(|s| s.0.clone()))
        .bind(a.tokens.expires_at)
        .bind(a.tokens.refresh_token.as_ref().map(|s| s.0.clone()))
        .bind(a.updated_at)
        .bind(a.refresh_generation)
        .bind(a.last_refresh_error.as_ref().map(|e| e.code.clone()))
        .bind(a.last_refresh_error.as_ref().map(|e| e.at))
        .bind(a.last_refresh_error.as_ref().map_or(0, |e| e.failures))
        .bind(a.last_refresh_error.as_ref().and_then(|e| e.retry_at))
        .bind(a.stored.as_ref().and_then(|s| s.client_id.as_deref()))
        .bind(a.stored.as_ref().map(|s| s.secret.0.clone()))
        .bind(a.stored.as_ref().map(|s| s.last_4.as_str()))
}

/// The columns [`bind_account`] binds, $1..$21.
const ACCOUNT_MUTABLE: [&str; 21] = [
    "connection_role",
    "account_identifier",
    "account_display_name",
    "state",
    "state_reason",
    "established_by_user_id",
    "scopes",
    "config",
    "metadata",
    "access_token",
    "expires_at",
    "refresh_token",
    "updated_at",
    "refresh_generation",
    "last_refresh_error",
    "last_refresh_error_at",
    "refresh_failures",
    "refresh_retry_at",
    "client_id",
    "secret",
    "secret_last_4",
];

fn bind_root<'q>(q: Q<'q>, r: &'q DataIntegration) -> Q<'q> {
    let creds = r.credentials.as_ref();
    q.bind(r.description.as_deref())
        .bind(i64::from(r.enabled))
        .bind(r.state.as_str())
        .bind(r.scopes.as_ref().map(rows::to_json))
        .bind(creds.map(|c| c.kind.as_str()))
        .bind(creds.and_then(|c| c.client_id.as_deref()))
        .bind(creds.and_then(|c| c.client_secret.as_ref()).map(|s| s.0.clone()))
        .bind(creds.and_then(|c| c.client_secret_last4.as_deref()))
        .bind(rows::to_json(&r.config))
        .bind(r.updated_at)
}

impl SqlStore {
    async fn authorization_where(&self, column: &'static str, value: &str) -> StoreResult<Option<Authorization>> {
        let row = sqlx::query(&format!("SELECT * FROM authorizations WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::authorization(&r)).transpose()
    }

    pub(crate) fn new(pool: AnyPool, writer: AnyPool, backend: Backend) -> Self {
        Self {
            pool,
            writer,
            backend,
            epoch: Default::default(),
            events_appended: Default::default(),
        }
    }

    /// Runs a write and, once it has committed, bumps the write epoch, so a reader that took the
    /// epoch before reading sees its read invalidated.
    /// A write transaction. On SQLite it takes the write lock at `BEGIN IMMEDIATE`: a deferred
    /// transaction that reads before it writes fails with `SQLITE_BUSY_SNAPSHOT` when another
    /// connection to the file committed in between, and no busy handler can recover that.
    async fn begin_write(&self) -> StoreResult<sqlx::Transaction<'static, Any>> {
        match self.backend {
            Backend::Sqlite => self.writer.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.writer.begin().await,
        }
        .map_err(backend_err)
    }

    async fn counted<T>(&self, write: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let result = write.await;
        if result.is_ok() {
            self.epoch.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
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

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    fn write_epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map_err(backend_err)?;
        Ok(())
    }

    async fn insert_environment(&self, env: &Environment) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO environments (id, name, production, client_id, created_at, multiple_connections, \
             connection_limit, membership) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(env.id.to_string())
        .bind(env.name.as_str())
        .bind(i64::from(env.production))
        .bind(env.client_id.to_string())
        .bind(env.created_at)
        .bind(i64::from(env.settings.multiple_connections))
        .bind(i64::from(env.settings.connection_limit))
        .bind(env.settings.membership.as_str())
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn environment(&self, id: EnvironmentId) -> StoreResult<Option<Environment>> {
        let row = sqlx::query("SELECT * FROM environments WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::environment(&r, "")).transpose()
    }

    async fn environment_by_name(&self, name: &EnvironmentName) -> StoreResult<Option<Environment>> {
        let row = sqlx::query("SELECT * FROM environments WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::environment(&r, "")).transpose()
    }

    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        let rows = sqlx::query("SELECT * FROM environments ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(|r| rows::environment(r, "")).collect()
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_keys (id, environment_id, prefix, key_hash, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(key.id.to_string())
        .bind(key.environment_id.to_string())
        .bind(key.prefix.as_str())
        .bind(key.hash.as_str())
        .bind(key.created_at)
        .bind(key.revoked_at)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn environment_for_key_hash(&self, hash: &str) -> StoreResult<Option<Environment>> {
        let sql = format!(
            "SELECT {ENV_COLUMNS} FROM api_keys k JOIN environments e ON e.id = k.environment_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(hash)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::environment(&r, "e_")).transpose()
    }

    async fn list_api_keys(&self, env: EnvironmentId) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query("SELECT * FROM api_keys WHERE environment_id = $1 ORDER BY id")
            .bind(env.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::api_key).collect()
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: i64) -> StoreResult<bool> {
        self.counted(async {
            let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(id.to_string())
                .execute(&self.writer)
                .await
                .map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn update_environment_settings(
        &self,
        env: EnvironmentId,
        settings: &EnvironmentSettings,
    ) -> StoreResult<bool> {
        self.counted(async {
            let done = sqlx::query(
                "UPDATE environments SET multiple_connections = $1, connection_limit = $2, membership = $3 \
                 WHERE id = $4",
            )
            .bind(i64::from(settings.multiple_connections))
            .bind(i64::from(settings.connection_limit))
            .bind(settings.membership.as_str())
            .bind(env.to_string())
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn membership(&self, env: EnvironmentId, organization: &str, user: &str) -> StoreResult<Option<Membership>> {
        let row = sqlx::query(
            "SELECT * FROM organization_members WHERE environment_id = $1 AND organization_id = $2 AND user_id = $3",
        )
        .bind(env.to_string())
        .bind(organization)
        .bind(user)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        row.map(|r| rows::membership(&r)).transpose()
    }

    async fn organization_known(&self, env: EnvironmentId, organization: &str) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM organization_members WHERE environment_id = $1 AND organization_id = $2 LIMIT 1",
        )
        .bind(env.to_string())
        .bind(organization)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        Ok(row.is_some())
    }

    async fn memberships(&self, env: EnvironmentId, organization: &str) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT * FROM organization_members WHERE environment_id = $1 AND organization_id = $2 ORDER BY user_id",
        )
        .bind(env.to_string())
        .bind(organization)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter().map(rows::membership).collect()
    }

    async fn put_membership(&self, m: &Membership, cleared: &[ConnectedAccount], events: &[Event]) -> StoreResult<()> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let env = m.environment_id.to_string();
            lock_member(&mut tx, self.backend, &env, &m.organization_id, &m.user_id).await?;
            sqlx::query(
                "INSERT INTO organization_members (environment_id, organization_id, user_id, active, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (environment_id, organization_id, user_id) \
                 DO UPDATE SET active = excluded.active, updated_at = excluded.updated_at",
            )
            .bind(m.environment_id.to_string())
            .bind(m.organization_id.as_str())
            .bind(m.user_id.as_str())
            .bind(i64::from(m.active))
            .bind(m.created_at)
            .bind(m.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
            let sets: Vec<String> = ACCOUNT_MUTABLE
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 1))
                .collect();
            // Only a connection still established by this member is cleared: a reconnect by
            // someone else meanwhile wins, and the caller re-reads.
            let sql = format!(
                "UPDATE connected_accounts SET {} WHERE id = $22 AND environment_id = $23 \
                 AND established_by_user_id = $24",
                sets.join(", ")
            );
            for a in cleared {
                let done = bind_account(sqlx::query(&sql), a)
                    .bind(a.id.to_string())
                    .bind(a.environment_id.to_string())
                    .bind(m.user_id.as_str())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
                if done.rows_affected() != 1 {
                    return Err(StoreError::Conflict(format!("connected account {} changed", a.id)));
                }
            }
            if !m.active {
                // A connection this member established after the caller listed them would
                // outlive the membership: refuse, and let the caller list again.
                let left = sqlx::query(&format!(
                    "SELECT COUNT(*) AS n FROM {ACCOUNT_FROM} WHERE {ESTABLISHED_BY}"
                ))
                .bind(&env)
                .bind(m.organization_id.as_str())
                .bind(m.user_id.as_str())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend_err)?;
                let n: i64 = get(&left, "n")?;
                if n != 0 {
                    return Err(StoreError::Conflict(format!(
                        "{n} connection(s) established by the member were not listed"
                    )));
                }
            }
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn accounts_established_by(
        &self,
        env: EnvironmentId,
        organization: &str,
        user: &str,
    ) -> StoreResult<Vec<ConnectedAccount>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} WHERE {ESTABLISHED_BY} ORDER BY ca.id");
        let rows = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(organization)
            .bind(user)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::connected_account).collect()
    }

    async fn organization_settings(
        &self,
        root: DataIntegrationId,
        organization: &str,
    ) -> StoreResult<Option<OrganizationSettings>> {
        let row =
            sqlx::query("SELECT * FROM organization_settings WHERE data_integration_id = $1 AND organization_id = $2")
                .bind(root.to_string())
                .bind(organization)
                .fetch_optional(&self.pool)
                .await
                .map_err(backend_err)?;
        row.map(|r| rows::organization_settings(&r)).transpose()
    }

    async fn organization_settings_by_id(&self, id: DikId) -> StoreResult<Option<OrganizationSettings>> {
        let row = sqlx::query("SELECT * FROM organization_settings WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::organization_settings(&r)).transpose()
    }

    async fn organization_settings_of(
        &self,
        env: EnvironmentId,
        organization: &str,
    ) -> StoreResult<Vec<OrganizationSettings>> {
        let rows = sqlx::query(
            "SELECT * FROM organization_settings WHERE environment_id = $1 AND organization_id = $2 ORDER BY id",
        )
        .bind(env.to_string())
        .bind(organization)
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter().map(rows::organization_settings).collect()
    }

    async fn put_organization_settings(&self, o: &OrganizationSettings, overwrite: bool) -> StoreResult<()> {
        self.counted(async {
            let app = o.app.as_ref();
            let on_conflict = if overwrite {
                "DO UPDATE SET enabled = excluded.enabled, scopes = excluded.scopes, client_id = excluded.client_id, \
                 client_secret = excluded.client_secret, client_secret_last_4 = excluded.client_secret_last_4, \
                 config = excluded.config, updated_at = excluded.updated_at"
            } else {
                "DO NOTHING"
            };
            let sql = format!(
                "INSERT INTO organization_settings (id, environment_id, data_integration_id, organization_id, enabled, \
                 scopes, client_id, client_secret, client_secret_last_4, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 ON CONFLICT (data_integration_id, organization_id) {on_conflict}"
            );
            sqlx::query(&sql)
                .bind(o.id.to_string())
                .bind(o.environment_id.to_string())
                .bind(o.data_integration_id.to_string())
                .bind(o.organization_id.as_str())
                .bind(o.enabled.map(i64::from))
                .bind(o.scopes.as_ref().map(rows::to_json))
                .bind(app.map(|a| a.client_id.as_str()))
                .bind(app.map(|a| a.client_secret.0.clone()))
                .bind(app.map(|a| a.client_secret_last_4.as_str()))
                .bind(rows::to_json(&o.config))
                .bind(o.created_at)
                .bind(o.updated_at)
                .execute(&self.writer)
                .await
                .map_err(backend_err)?;
            Ok(())
        })
        .await
    }

    async fn add_redirect_uri(&self, env: EnvironmentId, uri: &str, at: i64) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO redirect_uris (environment_id, uri, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(env.to_string())
        .bind(uri)
        .bind(at)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn list_redirect_uris(&self, env: EnvironmentId) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT uri FROM redirect_uris WHERE environment_id = $1 ORDER BY created_at, uri")
            .bind(env.to_string())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(|r| get::<String>(r, "uri")).collect()
    }

    async fn remove_redirect_uri(&self, env: EnvironmentId, uri: &str) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM redirect_uris WHERE environment_id = $1 AND uri = $2")
            .bind(env.to_string())
            .bind(uri)
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn custom_provider(&self, env: EnvironmentId, slug: &Slug) -> StoreResult<Option<CustomProvider>> {
        let row = sqlx::query("SELECT * FROM custom_providers WHERE environment_id = $1 AND slug = $2")
            .bind(env.to_string())
            .bind(slug.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::custom_provider(&r)).transpose()
    }

    async fn insert_data_integration(
        &self,
        root: &DataIntegration,
        new_custom_provider: Option<&CustomProvider>,
    ) -> StoreResult<()> {
        self.counted(async {

        let mut tx = self.begin_write().await?;
        if let Some(cp) = new_custom_provider {
            sqlx::query(
                "INSERT INTO custom_providers (id, environment_id, slug, auth_method, definition, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(cp.id.to_string())
            .bind(cp.environment_id.to_string())
            .bind(cp.slug.as_str())
            .bind(cp.auth_method.as_str())
            .bind(rows::to_json(&cp.definition))
            .bind(cp.created_at)
            .bind(cp.updated_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        }
        let q = sqlx::query(
            "INSERT INTO data_integrations (description, enabled, state, scopes, credentials_type, client_id, \
             client_secret, client_secret_last4, config, updated_at, id, environment_id, slug, ownership, auth_method, \
             dik, custom_provider_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        );
        bind_root(q, root)
            .bind(root.id.to_string())
            .bind(root.environment_id.to_string())
            .bind(root.slug.as_str())
            .bind(root.ownership.as_str())
            .bind(root.auth_method.as_str())
            .bind(root.dik.to_string())
            .bind(root.custom_provider.as_ref().map(|cp| cp.id.to_string()))
            .bind(root.created_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        tx.commit().await.map_err(backend_err)
            })
        .await
    }

    async fn data_integration(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
    ) -> StoreResult<Option<DataIntegration>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 AND di.slug = $2 AND di.ownership = $3"
        );
        let row = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(slug.as_str())
            .bind(ownership.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::data_integration(&r)).transpose()
    }

    async fn data_integration_exists(&self, env: EnvironmentId, id: DataIntegrationId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM data_integrations WHERE environment_id = $1 AND id = $2")
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(row.is_some())
    }

    async fn scan_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Option<Ownership>,
        scan: &Scan,
    ) -> StoreResult<Vec<DataIntegration>> {
        let (cmp, dir) = if scan.newer { (">", "ASC") } else { ("<", "DESC") };
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 \
             AND ($2 IS NULL OR di.ownership = $2) AND ($3 IS NULL OR di.id {cmp} $3) \
             ORDER BY di.id {dir} LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(ownership.map(Ownership::as_str))
            .bind(scan.cursor.as_deref())
            .bind(i64::from(scan.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::data_integration).collect()
    }

    async fn update_data_integration(&self, root: &DataIntegration) -> StoreResult<()> {
        self.counted(async {
            let mut tx = self.begin_write().await?;
            if let Some(cp) = &root.custom_provider {
                sqlx::query("UPDATE custom_providers SET definition = $1, updated_at = $2 WHERE id = $3")
                    .bind(rows::to_json(&cp.definition))
                    .bind(cp.updated_at)
                    .bind(cp.id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(backend_err)?;
            }
            let q = sqlx::query(
                "UPDATE data_integrations SET description = $1, enabled = $2, state = $3, scopes = $4, \
             credentials_type = $5, client_id = $6, client_secret = $7, client_secret_last4 = $8, config = $9, \
             updated_at = $10 WHERE id = $11 AND environment_id = $12",
            );
            bind_root(q, root)
                .bind(root.id.to_string())
                .bind(root.environment_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn delete_data_integration(
        &self,
        env: EnvironmentId,
        id: DataIntegrationId,
        accounts: &[ConnectedAccountId],
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let current = sqlx::query("SELECT id FROM connected_accounts WHERE data_integration_id = $1")
                .bind(id.to_string())
                .fetch_all(&mut *tx)
                .await
                .map_err(backend_err)?;
            let mut current: Vec<String> = current.iter().map(|r| get(r, "id")).collect::<StoreResult<_>>()?;
            let mut expected: Vec<String> = accounts.iter().map(ToString::to_string).collect();
            current.sort();
            expected.sort();
            if current != expected {
                return Err(StoreError::Conflict(
                    "the integration's connections changed meanwhile".into(),
                ));
            }
            let gone = sqlx::query(
                "DELETE FROM data_integrations WHERE environment_id = $1 AND id = $2 RETURNING custom_provider_id",
            )
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
            let Some(row) = gone else {
                return Ok(false);
            };
            if let Some(cp) = get::<Option<String>>(&row, "custom_provider_id")? {
                sqlx::query(
                    "DELETE FROM custom_providers WHERE id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM data_integrations WHERE custom_provider_id = $1)",
                )
                .bind(cp)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            }
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }

    async fn root_with_compatibility_account(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Option<(DataIntegration, Option<ConnectedAccount>)>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS}, {ACCOUNT_COLUMNS} FROM {ROOT_FROM} \
             LEFT JOIN connected_accounts ca ON ca.data_integration_id = di.id AND ca.owner_key = $4 \
             AND ca.connection_role = 'compatibility' \
             WHERE di.environment_id = $1 AND di.slug = $2 AND di.ownership = $3"
        );
        let row = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(slug.as_str())
            .bind(ownership.as_str())
            .bind(owner_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        let Some(row) = row else { return Ok(None) };
        let root = rows::data_integration(&row)?;
        let account = match get::<Option<String>>(&row, "ca_id")? {
            Some(_) => Some(rows::connected_account(&row)?),
            None => None,
        };
        Ok(Some((root, account)))
    }

    async fn vend_read(
        &self,
        key_hash: &str,
        slug: &Slug,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Option<VendRead>> {
        let sql = format!(
            "SELECT {ENV_COLUMNS}, {ROOT_COLUMNS}, {ACCOUNT_COLUMNS} \
             FROM api_keys k JOIN environments e ON e.id = k.environment_id \
             LEFT JOIN data_integrations di ON di.environment_id = e.id AND di.slug = $2 AND di.ownership = $3 \
             LEFT JOIN custom_providers cp ON cp.id = di.custom_provider_id \
             LEFT JOIN connected_accounts ca ON ca.data_integration_id = di.id AND ca.owner_key = $4 \
             AND ca.connection_role = 'compatibility' \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
        );
        let row = sqlx::query(&sql)
            .bind(key_hash)
            .bind(slug.as_str())
            .bind(ownership.as_str())
            .bind(owner_key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        let Some(row) = row else { return Ok(None) };
        let env = rows::environment(&row, "e_")?;
        if get::<Option<String>>(&row, "id")?.is_none() {
            return Ok(Some((env, None)));
        }
        let root = rows::data_integration(&row)?;
        let account = match get::<Option<String>>(&row, "ca_id")? {
            Some(_) => Some(rows::connected_account(&row)?),
            None => None,
        };
        Ok(Some((env, Some((root, account)))))
    }

    async fn accounts_of_owner(
        &self,
        root: DataIntegrationId,
        owner_key: Option<&str>,
    ) -> StoreResult<Vec<ConnectedAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} \
             WHERE ca.data_integration_id = $1 AND ($2 IS NULL OR ca.owner_key = $2) ORDER BY ca.id"
        );
        let rows = sqlx::query(&sql)
            .bind(root.to_string())
            .bind(owner_key)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::connected_account).collect()
    }

    async fn accounts_of_owner_in_env(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Vec<ConnectedAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} \
             WHERE ca.environment_id = $1 AND di.ownership = $2 AND ca.owner_key = $3 ORDER BY ca.id"
        );
        let rows = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(ownership.as_str())
            .bind(owner_key)
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::connected_account).collect()
    }

    async fn all_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
    ) -> StoreResult<Vec<DataIntegration>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS} FROM {ROOT_FROM} WHERE di.environment_id = $1 AND di.ownership = $2 ORDER BY di.id"
        );
        let rows = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(ownership.as_str())
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::data_integration).collect()
    }

    async fn connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
    ) -> StoreResult<Option<ConnectedAccount>> {
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} \
             WHERE ca.environment_id = $1 AND ca.id = $2"
        );
        let row = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::connected_account(&r)).transpose()
    }

    async fn insert_connected_account(&self, a: &ConnectedAccount, events: &[Event]) -> StoreResult<()> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            check_establishing_member(&mut tx, self.backend, a, true).await?;
            let columns = ACCOUNT_MUTABLE.join(", ");
            let sql = format!(
                "INSERT INTO connected_accounts ({columns}, id, environment_id, data_integration_id, owner_key, \
                 user_id, organization_id, auth_method, last_refreshed_at, created_at) VALUES ({})",
                (1..=30).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
            );
            bind_account(sqlx::query(&sql), a)
                .bind(a.id.to_string())
                .bind(a.environment_id.to_string())
                .bind(a.data_integration_id.to_string())
                .bind(a.owner.key())
                .bind(a.owner.user_id.as_deref())
                .bind(a.owner.organization_id.as_deref())
                .bind(a.auth_method.as_str())
                .bind(a.last_refreshed_at)
                .bind(a.created_at)
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn update_connected_account(&self, a: &ConnectedAccount, events: &[Event]) -> StoreResult<()> {
        self.with_events(events, async {
            let sets: Vec<String> = ACCOUNT_MUTABLE
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c} = ${}", i + 1))
                .collect();
            let sql = format!(
                "UPDATE connected_accounts SET {} WHERE id = $22 AND environment_id = $23",
                sets.join(", ")
            );
            let mut tx = self.begin_write().await?;
            check_establishing_member(&mut tx, self.backend, a, false).await?;
            let done = bind_account(sqlx::query(&sql), a)
                .bind(a.id.to_string())
                .bind(a.environment_id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Backend(format!(
                    "connected account {} vanished during the update",
                    a.id
                )));
            }
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn delete_connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query("DELETE FROM connected_accounts WHERE environment_id = $1 AND id = $2")
                .bind(env.to_string())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }

    async fn take_refresh_lease(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>> {
        let mut tx = self.begin_write().await?;
        let before = sqlx::query("SELECT refresh_lease_owner FROM connected_accounts WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
        let Some(before) = before else {
            return Ok(None);
        };
        let previous: Option<String> = get(&before, "refresh_lease_owner")?;
        let done = sqlx::query(
            "UPDATE connected_accounts SET refresh_lease_owner = $1, refresh_lease_until = $2 \
             WHERE id = $3 AND (refresh_lease_until IS NULL OR refresh_lease_until < $4 OR refresh_lease_owner = $1)",
        )
        .bind(holder)
        .bind(until)
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
        if done.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await.map_err(backend_err)?;
        // A lease still named by another holder after its expiry: that holder stopped.
        Ok(Some(previous.is_some_and(|p| p != holder)))
    }

    async fn release_refresh_lease(&self, id: ConnectedAccountId, holder: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE connected_accounts SET refresh_lease_owner = NULL, refresh_lease_until = NULL \
             WHERE id = $1 AND refresh_lease_owner = $2",
        )
        .bind(id.to_string())
        .bind(holder)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn store_refreshed_tokens(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        tokens: &TokenSet,
        scopes: &[String],
        metadata: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.counted(async {
            let done = sqlx::query(
                "UPDATE connected_accounts SET access_token = $1, expires_at = $2, refresh_token = $3, scopes = $4, \
             metadata = $5, refresh_generation = refresh_generation + 1, last_refreshed_at = $6, updated_at = $6, \
             last_refresh_error = NULL, last_refresh_error_at = NULL, refresh_failures = 0, \
             refresh_retry_at = NULL, refresh_lease_owner = NULL, \
             refresh_lease_until = NULL \
             WHERE id = $7 AND refresh_generation = $8 AND refresh_lease_owner = $9",
            )
            .bind(tokens.access_token.as_ref().map(|s| s.0.clone()))
            .bind(tokens.expires_at)
            .bind(tokens.refresh_token.as_ref().map(|s| s.0.clone()))
            .bind(rows::to_json(&scopes))
            .bind(metadata)
            .bind(now)
            .bind(id.to_string())
            .bind(generation)
            .bind(holder)
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }

    async fn record_refresh_failure(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        error: &RefreshError,
        needs_reauthorization: bool,
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let done = sqlx::query(
                "UPDATE connected_accounts SET last_refresh_error = $1, last_refresh_error_at = $2, \
             refresh_failures = $7, refresh_retry_at = $8, \
             state = CASE WHEN $3 = 1 THEN 'needs_reauthorization' ELSE state END, \
             state_reason = CASE WHEN $3 = 1 THEN $1 ELSE state_reason END, \
             updated_at = CASE WHEN $3 = 1 THEN $2 ELSE updated_at END, \
             refresh_lease_owner = NULL, refresh_lease_until = NULL \
             WHERE id = $4 AND refresh_generation = $5 AND refresh_lease_owner = $6",
            )
            .bind(error.code.as_str())
            .bind(error.at)
            .bind(i64::from(needs_reauthorization))
            .bind(id.to_string())
            .bind(generation)
            .bind(holder)
            .bind(error.failures)
            .bind(error.retry_at)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
            if done.rows_affected() != 1 {
                return Ok(false);
            }
            if needs_reauthorization {
                append_in(&mut tx, events).await?;
            }
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }

    async fn accounts_due_for_refresh(
        &self,
        now: i64,
        ahead_ms: i64,
        keepalive: &[KeepAlive],
        limit: u32,
    ) -> StoreResult<Vec<(DataIntegration, ConnectedAccount)>> {
        let sql = format!(
            "SELECT {ROOT_COLUMNS}, {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} \
             LEFT JOIN custom_providers cp ON cp.id = di.custom_provider_id WHERE {} \
             ORDER BY COALESCE(ca.expires_at, 9223372036854775807) LIMIT ${}",
            due_for_refresh(keepalive),
            3 + 2 * keepalive.len()
        );
        let rows = bind_due(sqlx::query(&sql), now, ahead_ms, keepalive)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| Ok((rows::data_integration(r)?, rows::connected_account(r)?)))
            .collect()
    }

    async fn count_due_for_refresh(&self, now: i64, ahead_ms: i64, keepalive: &[KeepAlive]) -> StoreResult<i64> {
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {ACCOUNT_FROM} WHERE {}",
            due_for_refresh(keepalive)
        );
        let row = bind_due(sqlx::query(&sql), now, ahead_ms, keepalive)
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)?;
        get(&row, "n")
    }

    async fn insert_authorization(&self, a: &Authorization) -> StoreResult<()> {
        let (intent, target) = match &a.intent {
            ConnectionIntent::Compatibility => (None, None),
            ConnectionIntent::Add => (Some("add"), None),
            ConnectionIntent::Reauthorize(id) => (Some("reauthorize"), Some(id.to_string())),
        };
        sqlx::query(
            "INSERT INTO authorizations (id, environment_id, data_integration_id, connection_owner, user_id, \
             organization_id, connection_intent, target_account_id, return_to, state, provider_state, pkce_verifier, \
             code_challenge, config, account_display_name, display_name_given, csrf_token, status, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(a.id.as_str())
        .bind(a.environment_id.to_string())
        .bind(a.data_integration_id.to_string())
        .bind(a.owner.ownership.as_str())
        .bind(a.user_id.as_str())
        .bind(a.owner.organization_id.as_deref())
        .bind(intent)
        .bind(target)
        .bind(a.return_to.as_deref())
        .bind(a.state.as_str())
        .bind(a.provider_state.as_str())
        .bind(a.pkce_verifier.as_ref().map(|s| s.0.clone()))
        .bind(a.code_challenge.as_deref())
        .bind(rows::to_json(&a.config))
        .bind(a.account_display_name.clone().flatten())
        .bind(i64::from(a.account_display_name.is_some()))
        .bind(a.csrf_token.as_str())
        .bind(a.status.as_str())
        .bind(a.created_at)
        .bind(a.expires_at)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn authorization(&self, id: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("id", id).await
    }

    async fn authorization_by_provider_state(&self, state: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("provider_state", state).await
    }

    async fn authorization_by_connect_code(&self, hash: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("connect_code_hash", hash).await
    }

    async fn advance_authorization(&self, a: &Authorization, from: AuthorizationStatus) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE authorizations SET status = $1, connect_code_hash = $2, connect_code_expires_at = $3, \
             held_tokens = $4, connected_account_id = $5 WHERE id = $6 AND status = $7",
        )
        .bind(a.status.as_str())
        .bind(a.connect_code_hash.as_deref())
        .bind(a.connect_code_expires_at)
        .bind(a.held_tokens.as_ref().map(|s| s.0.clone()))
        .bind(a.connected_account_id.map(|id| id.to_string()))
        .bind(a.id.as_str())
        .bind(from.as_str())
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn append_events(&self, events: &[Event]) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            append_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }

    async fn scan_events(
        &self,
        env: EnvironmentId,
        filter: &EventFilter,
        scan: &Scan,
    ) -> StoreResult<Vec<StoredEvent>> {
        let (cmp, dir) = if scan.newer { (">", "ASC") } else { ("<", "DESC") };
        let types: Vec<String> = (0..filter.types.len()).map(|i| format!("${}", i + 7)).collect();
        let type_clause = if types.is_empty() {
            String::new()
        } else {
            format!(" AND event IN ({})", types.join(", "))
        };
        let sql = format!(
            "SELECT id, body FROM events WHERE environment_id = $1 AND ($2 IS NULL OR id {cmp} $2) \
             AND ($3 IS NULL OR created_at >= $3) AND ($4 IS NULL OR created_at < $4) \
             AND ($5 IS NULL OR organization_id = $5){type_clause} ORDER BY id {dir} LIMIT $6"
        );
        let mut q = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(scan.cursor.as_deref())
            .bind(filter.range_start)
            .bind(filter.range_end)
            .bind(filter.organization_id.as_deref())
            .bind(i64::from(scan.limit));
        for t in &filter.types {
            q = q.bind(t.as_str());
        }
        let rows = q.fetch_all(&self.pool).await.map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok(StoredEvent {
                    id: get(r, "id")?,
                    body: get(r, "body")?,
                })
            })
            .collect()
    }

    async fn event_exists(&self, env: EnvironmentId, id: EventId) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM events WHERE environment_id = $1 AND id = $2")
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(row.is_some())
    }

    async fn purge_events(&self, before: i64, limit: u32) -> StoreResult<u64> {
        let mut tx = self.begin_write().await?;
        let old = sqlx::query("SELECT id FROM events WHERE created_at < $1 ORDER BY created_at LIMIT $2")
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend_err)?;
        let Some(last) = old.last() else {
            return Ok(0);
        };
        let last: String = get(last, "id")?;
        let bound = sqlx::query("SELECT created_at FROM events WHERE id = $1")
            .bind(&last)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend_err)?;
        let bound: i64 = get(&bound, "created_at")?;
        // Everything up to and including the last selected timestamp, still older than `before`.
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE event_id IN \
             (SELECT id FROM events WHERE created_at <= $1 AND created_at < $2)",
        )
        .bind(bound)
        .bind(before)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
        let done = sqlx::query("DELETE FROM events WHERE created_at <= $1 AND created_at < $2")
            .bind(bound)
            .bind(before)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        tx.commit().await.map_err(backend_err)?;
        Ok(done.rows_affected())
    }

    fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.events_appended.clone()
    }

    async fn insert_webhook_endpoint(&self, e: &WebhookEndpoint) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO webhook_endpoints (id, environment_id, endpoint_url, secret, status, events, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(e.id.to_string())
        .bind(e.environment_id.to_string())
        .bind(e.endpoint_url.as_str())
        .bind(e.secret.0.clone())
        .bind(e.status.as_str())
        .bind(endpoint_events_json(&e.events))
        .bind(e.created_at)
        .bind(e.updated_at)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn webhook_endpoint(
        &self,
        env: EnvironmentId,
        id: WebhookEndpointId,
    ) -> StoreResult<Option<WebhookEndpoint>> {
        let row = sqlx::query("SELECT * FROM webhook_endpoints WHERE environment_id = $1 AND id = $2")
            .bind(env.to_string())
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::webhook_endpoint(&r)).transpose()
    }

    async fn scan_webhook_endpoints(&self, env: EnvironmentId, scan: &Scan) -> StoreResult<Vec<WebhookEndpoint>> {
        let (cmp, dir) = if scan.newer { (">", "ASC") } else { ("<", "DESC") };
        let sql = format!(
            "SELECT * FROM webhook_endpoints WHERE environment_id = $1 AND ($2 IS NULL OR id {cmp} $2) \
             ORDER BY id {dir} LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(env.to_string())
            .bind(scan.cursor.as_deref())
            .bind(i64::from(scan.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::webhook_endpoint).collect()
    }

    async fn update_webhook_endpoint(&self, e: &WebhookEndpoint) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhook_endpoints SET endpoint_url = $1, status = $2, events = $3, updated_at = $4 \
             WHERE id = $5 AND environment_id = $6",
        )
        .bind(e.endpoint_url.as_str())
        .bind(e.status.as_str())
        .bind(endpoint_events_json(&e.events))
        .bind(e.updated_at)
        .bind(e.id.to_string())
        .bind(e.environment_id.to_string())
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn delete_webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM webhook_endpoints WHERE environment_id = $1 AND id = $2")
            .bind(env.to_string())
            .bind(id.to_string())
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
        Ok(done.rows_affected() == 1)
    }

    async fn endpoints_due(&self, now: i64, limit: u32) -> StoreResult<Vec<WebhookEndpointId>> {
        let rows = sqlx::query(
            "SELECT e.id FROM webhook_endpoints e WHERE e.status = 'enabled' AND e.retry_at <= $1 \
             AND (e.lease_until IS NULL OR e.lease_until < $1) \
             AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id AND d.state = 'pending') \
             ORDER BY e.retry_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                WebhookEndpointId::parse(&get::<String>(r, "id")?)
                    .map_err(|e| StoreError::Backend(format!("unreadable webhook endpoint id: {e}")))
            })
            .collect()
    }

    async fn take_endpoint_lease(
        &self,
        id: WebhookEndpointId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>> {
        let mut tx = self.begin_write().await?;
        // A lease still named after its expiry means its holder died holding it.
        let before = sqlx::query("SELECT lease_owner FROM webhook_endpoints WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend_err)?;
        let Some(before) = before else {
            return Ok(None);
        };
        let previous: Option<String> = get(&before, "lease_owner")?;
        let taken = sqlx::query(
            "UPDATE webhook_endpoints SET lease_owner = $1, lease_until = $2 \
             WHERE id = $3 AND (lease_until IS NULL OR lease_until < $4)",
        )
        .bind(holder)
        .bind(until)
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
        if taken.rows_affected() != 1 {
            return Ok(None);
        }
        tx.commit().await.map_err(backend_err)?;
        Ok(Some(previous.is_some()))
    }

    async fn release_endpoint_lease(&self, id: WebhookEndpointId, holder: &str) -> StoreResult<()> {
        sqlx::query(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id.to_string())
        .bind(holder)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn webhook_endpoint_by_id(&self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>> {
        let row = sqlx::query("SELECT * FROM webhook_endpoints WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(backend_err)?;
        row.map(|r| rows::webhook_endpoint(&r)).transpose()
    }

    async fn due_deliveries(&self, id: WebhookEndpointId, limit: u32) -> StoreResult<Vec<DueDelivery>> {
        let rows = sqlx::query(
            "SELECT d.event_id, d.attempts, d.pending_since, ev.body, ev.created_at \
             FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
             WHERE d.endpoint_id = $1 AND d.state = 'pending' ORDER BY d.event_id LIMIT $2",
        )
        .bind(id.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter().map(rows::due_delivery).collect()
    }

    async fn record_delivery_attempts(
        &self,
        endpoint: WebhookEndpointId,
        holder: &str,
        attempts: &[(EventId, DeliveryAttempt, AttemptOutcome)],
        lease_until: i64,
    ) -> StoreResult<bool> {
        let Some((_, _, last)) = attempts.last() else {
            return Ok(true);
        };
        let mut tx = self.begin_write().await?;
        let (streak, retry_at) = match *last {
            AttemptOutcome::Delivered => (0, 0),
            AttemptOutcome::Retry {
                retry_at,
                failure_streak,
                ..
            } => (failure_streak, retry_at),
        };
        let held = sqlx::query(
            "UPDATE webhook_endpoints SET lease_until = $1, failure_streak = $2, retry_at = $3 \
             WHERE id = $4 AND lease_owner = $5",
        )
        .bind(lease_until)
        .bind(streak)
        .bind(retry_at)
        .bind(endpoint.to_string())
        .bind(holder)
        .execute(&mut *tx)
        .await
        .map_err(backend_err)?;
        if held.rows_affected() != 1 {
            return Ok(false);
        }
        // Successes by status, one statement per status; then the one failure, if any.
        let mut statuses: Vec<Option<i64>> = Vec::new();
        for (_, a, o) in attempts {
            if *o == AttemptOutcome::Delivered && !statuses.contains(&a.status) {
                statuses.push(a.status);
            }
        }
        for status in statuses {
            let events: Vec<String> = attempts
                .iter()
                .filter(|(_, a, o)| *o == AttemptOutcome::Delivered && a.status == status)
                .map(|(e, _, _)| e.to_string())
                .collect();
            let finished = attempts
                .iter()
                .map(|(_, a, _)| a.started_at + a.latency_ms)
                .max()
                .unwrap_or(0);
            let list: Vec<String> = (0..events.len()).map(|i| format!("${}", i + 4)).collect();
            let sql = format!(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1, last_error = NULL, \
                 state = 'delivered', finished_at = $2 WHERE endpoint_id = $3 AND event_id IN ({})",
                list.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(status).bind(finished).bind(endpoint.to_string());
            for e in &events {
                q = q.bind(e.as_str());
            }
            q.execute(&mut *tx).await.map_err(backend_err)?;
        }
        for (event, attempt, outcome) in attempts {
            let AttemptOutcome::Retry { give_up_before, .. } = outcome else {
                continue;
            };
            let finished = attempt.started_at + attempt.latency_ms;
            sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $1, last_error = $2 \
                 WHERE endpoint_id = $3 AND event_id = $4",
            )
            .bind(attempt.status)
            .bind(attempt.error.as_deref())
            .bind(endpoint.to_string())
            .bind(event.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
            sqlx::query(
                "UPDATE webhook_deliveries SET state = 'failed', finished_at = $1 \
                 WHERE endpoint_id = $2 AND state = 'pending' AND pending_since < $3",
            )
            .bind(finished)
            .bind(endpoint.to_string())
            .bind(give_up_before)
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
        }
        // Every attempt, in one statement.
        let rows: Vec<String> = (0..attempts.len())
            .map(|i| {
                let b = i * 7;
                format!(
                    "(${}, ${}, ${}, ${}, ${}, ${}, ${})",
                    b + 1,
                    b + 2,
                    b + 3,
                    b + 4,
                    b + 5,
                    b + 6,
                    b + 7
                )
            })
            .collect();
        let sql = format!(
            "INSERT INTO webhook_attempts (endpoint_id, event_id, attempt, started_at, status, latency_ms, error) \
             VALUES {}",
            rows.join(", ")
        );
        let mut q = sqlx::query(&sql);
        for (event, a, _) in attempts {
            q = q
                .bind(endpoint.to_string())
                .bind(event.to_string())
                .bind(a.attempt)
                .bind(a.started_at)
                .bind(a.status)
                .bind(a.latency_ms)
                .bind(a.error.as_deref());
        }
        q.execute(&mut *tx).await.map_err(backend_err)?;
        tx.commit().await.map_err(backend_err)?;
        Ok(true)
    }

    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(
            "SELECT * FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 IS NULL OR state = $2) \
             ORDER BY event_id DESC LIMIT $3",
        )
        .bind(endpoint.to_string())
        .bind(state.map(DeliveryState::as_str))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend_err)?;
        rows.iter().map(rows::delivery).collect()
    }

    async fn delivery_attempts(
        &self,
        endpoint: WebhookEndpointId,
        event: EventId,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows =
            sqlx::query("SELECT * FROM webhook_attempts WHERE endpoint_id = $1 AND event_id = $2 ORDER BY attempt")
                .bind(endpoint.to_string())
                .bind(event.to_string())
                .fetch_all(&self.pool)
                .await
                .map_err(backend_err)?;
        rows.iter().map(rows::delivery_attempt).collect()
    }

    async fn redeliver(&self, endpoint: WebhookEndpointId, event: EventId, now: i64) -> StoreResult<bool> {
        self.with_events(&[], async {
            let mut tx = self.begin_write().await?;
            let again = sqlx::query(
                "UPDATE webhook_deliveries SET state = 'pending', pending_since = $1, finished_at = NULL \
                 WHERE endpoint_id = $2 AND event_id = $3",
            )
            .bind(now)
            .bind(endpoint.to_string())
            .bind(event.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend_err)?;
            if again.rows_affected() == 0 {
                // An event the endpoint never received (it subscribed later, or was disabled).
                let created = sqlx::query(
                    "INSERT INTO webhook_deliveries (endpoint_id, event_id, event, state, attempts, pending_since) \
                     SELECT e.id, ev.id, ev.event, 'pending', 0, $1 FROM webhook_endpoints e \
                     JOIN events ev ON ev.environment_id = e.environment_id WHERE e.id = $2 AND ev.id = $3",
                )
                .bind(now)
                .bind(endpoint.to_string())
                .bind(event.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
                if created.rows_affected() == 0 {
                    return Ok(false);
                }
            }
            sqlx::query("UPDATE webhook_endpoints SET retry_at = 0, failure_streak = 0 WHERE id = $1")
                .bind(endpoint.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend_err)?;
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
        .inspect(|_| self.events_appended.notify_one())
    }

    async fn all_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>> {
        let rows = sqlx::query("SELECT * FROM webhook_endpoints ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter().map(rows::webhook_endpoint).collect()
    }

    async fn purge_authorizations(&self, before: i64) -> StoreResult<u64> {
        let done = sqlx::query("DELETE FROM authorizations WHERE expires_at < $1")
            .bind(before)
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
        Ok(done.rows_affected())
    }

    async fn idempotency_begin(
        &self,
        env: EnvironmentId,
        key: &str,
        fingerprint: &str,
        now: i64,
        expired_before: i64,
        stale_before: i64,
    ) -> StoreResult<IdempotencyBegin> {
        let env = env.to_string();
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2 \
             AND (created_at < $3 OR (status = 0 AND created_at < $4))",
        )
        .bind(&env)
        .bind(key)
        .bind(expired_before)
        .bind(stale_before)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (environment_id, idempotency_key, fingerprint, status, body, created_at) \
             VALUES ($1, $2, $3, 0, NULL, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&env)
        .bind(key)
        .bind(fingerprint)
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        if inserted.rows_affected() == 1 {
            return Ok(IdempotencyBegin::Started);
        }
        let row = sqlx::query(
            "SELECT fingerprint, status, body FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2",
        )
        .bind(&env)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend_err)?;
        let Some(row) = row else {
            // Released between our insert and read: the caller may simply retry.
            return Ok(IdempotencyBegin::InFlight);
        };
        if get::<String>(&row, "fingerprint")? != fingerprint {
            return Ok(IdempotencyBegin::Mismatch);
        }
        match get::<i64>(&row, "status")? {
            0 => Ok(IdempotencyBegin::InFlight),
            status => Ok(IdempotencyBegin::Completed {
                status: u16::try_from(status).unwrap_or(500),
                body: get::<Option<Vec<u8>>>(&row, "body")?.unwrap_or_default(),
            }),
        }
    }

    async fn idempotency_complete(&self, env: EnvironmentId, key: &str, status: u16, body: &[u8]) -> StoreResult<()> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, body = $2 WHERE environment_id = $3 AND idempotency_key = $4",
        )
        .bind(i64::from(status))
        .bind(body.to_vec())
        .bind(env.to_string())
        .bind(key)
        .execute(&self.writer)
        .await
        .map_err(backend_err)?;
        Ok(())
    }

    async fn idempotency_release(&self, env: EnvironmentId, key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM idempotency_keys WHERE environment_id = $1 AND idempotency_key = $2 AND status = 0")
            .bind(env.to_string())
            .bind(key)
            .execute(&self.writer)
            .await
            .map_err(backend_err)?;
        Ok(())
    }

    async fn sealed_values(
        &self,
        column: SealedColumn,
        after: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<SealedRow>> {
        let (table, col) = sealed_table(column);
        let sql = format!(
            "SELECT id, {col} AS sealed FROM {table} WHERE {col} IS NOT NULL AND ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend_err)?;
        rows.iter()
            .map(|r| {
                Ok(SealedRow {
                    id: get(r, "id")?,
                    sealed: get(r, "sealed")?,
                })
            })
            .collect()
    }

    async fn count_sealed(&self, column: SealedColumn) -> StoreResult<u64> {
        let (table, col) = sealed_table(column);
        let row = sqlx::query(&format!("SELECT COUNT(*) AS n FROM {table} WHERE {col} IS NOT NULL"))
            .fetch_one(&self.pool)
            .await
            .map_err(backend_err)?;
        Ok(u64::try_from(get::<i64>(&row, "n")?).unwrap_or(0))
    }

    async fn replace_sealed(&self, column: SealedColumn, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.counted(async {
            let (table, col) = sealed_table(column);
            let done = sqlx::query(&format!("UPDATE {table} SET {col} = $1 WHERE id = $2 AND {col} = $3"))
                .bind(new.to_vec())
                .bind(id)
                .bind(old.to_vec())
                .execute(&self.writer)
                .await
                .map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
        })
        .await
    }
}
