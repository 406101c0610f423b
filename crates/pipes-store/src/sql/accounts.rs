//! [`AccountStore`]: connected accounts and the vending read.

use async_trait::async_trait;
use pipes_core::domain::{ConnectedAccount, DataIntegration, Ownership};
use pipes_core::events::Event;
use pipes_core::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use pipes_core::slug::Slug;
use pipes_core::store::{AccountStore, StoreError, StoreResult, VendRead};
use sqlx::any::AnyRow;

use super::membership::check_establishing_member;
use super::{append_events_in, exec, Params, SqlStore};
use crate::backend_err;
use crate::rows::{self, get, ACCOUNT_COLUMNS, ACCOUNT_FROM, ENV_COLUMNS, ROOT_COLUMNS, ROOT_FROM};

/// A connection's mutable columns: what an update writes, and an insert writes with the rest.
pub(super) fn account_columns<'q>(p: &mut Params<'q>, a: &'q ConnectedAccount) {
    let error = a.last_refresh_error.as_ref();
    let stored = a.stored.as_ref();
    p.set("connection_role", a.role.as_str())
        .set("account_identifier", a.account_identifier.as_deref())
        .set("account_display_name", a.account_display_name.as_deref())
        .set("state", a.state.as_str())
        .set("state_reason", a.state_reason.as_deref())
        .set("established_by_user_id", a.established_by_user_id.as_deref())
        .set("scopes", rows::to_json(&a.scopes))
        .set("config", rows::to_json(&a.config))
        .set("metadata", rows::to_json(&a.metadata))
        .set("access_token", a.tokens.access_token.as_ref().map(|s| s.0.clone()))
        .set("expires_at", a.tokens.expires_at)
        .set("refresh_token", a.tokens.refresh_token.as_ref().map(|s| s.0.clone()))
        .set("updated_at", a.updated_at)
        .set("refresh_generation", a.refresh_generation)
        .set("last_refresh_error", error.map(|e| e.code.as_str()))
        .set("last_refresh_error_at", error.map(|e| e.at))
        .set("refresh_failures", error.map_or(0, |e| e.failures))
        .set("refresh_retry_at", error.and_then(|e| e.retry_at))
        .set("client_id", stored.and_then(|s| s.client_id.as_deref()))
        .set("secret", stored.map(|s| s.secret.0.clone()))
        .set("secret_last_4", stored.map(|s| s.last_4.as_str()));
}

/// The compatibility connection of a joined row, when the join found one.
fn joined_account(row: &AnyRow) -> StoreResult<Option<ConnectedAccount>> {
    match get::<Option<String>>(row, "ca_id")? {
        Some(_) => rows::connected_account(row).map(Some),
        None => Ok(None),
    }
}

#[async_trait]
impl AccountStore for SqlStore {
    fn write_epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
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
        let q = q!(&sql, key_hash, slug.as_str(), ownership.as_str(), owner_key);
        self.optional(q, |row| {
            let env = rows::environment(row, "e_")?;
            if get::<Option<String>>(row, "id")?.is_none() {
                return Ok((env, None));
            }
            Ok((env, Some((rows::data_integration(row)?, joined_account(row)?))))
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
        let q = q!(&sql, env.to_string(), slug.as_str(), ownership.as_str(), owner_key);
        self.optional(q, |row| Ok((rows::data_integration(row)?, joined_account(row)?)))
            .await
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
        self.all(q!(&sql, root.to_string(), owner_key), rows::connected_account)
            .await
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
        self.all(
            q!(&sql, env.to_string(), ownership.as_str(), owner_key),
            rows::connected_account,
        )
        .await
    }

    async fn connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
    ) -> StoreResult<Option<ConnectedAccount>> {
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} WHERE ca.environment_id = $1 AND ca.id = $2");
        self.optional(q!(&sql, env.to_string(), id.to_string()), rows::connected_account)
            .await
    }

    async fn insert_connected_account(&self, a: &ConnectedAccount, events: &[Event]) -> StoreResult<()> {
        self.write_account(a, events, true).await
    }

    async fn update_connected_account(&self, a: &ConnectedAccount, events: &[Event]) -> StoreResult<()> {
        self.write_account(a, events, false).await
    }

    async fn delete_connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let done = exec(
                &mut tx,
                q!(
                    "DELETE FROM connected_accounts WHERE environment_id = $1 AND id = $2",
                    env.to_string(),
                    id.to_string()
                ),
            )
            .await?;
            if done != 1 {
                return Ok(false);
            }
            append_events_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }
}

impl SqlStore {
    /// Inserts (`new`) or updates a connection with its events, in one transaction that first
    /// checks its establishing member.
    async fn write_account(&self, a: &ConnectedAccount, events: &[Event], new: bool) -> StoreResult<()> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            check_establishing_member(&mut tx, self.backend, a, new).await?;
            let mut p = Params::default();
            account_columns(&mut p, a);
            if new {
                p.set("id", a.id.to_string())
                    .set("environment_id", a.environment_id.to_string())
                    .set("data_integration_id", a.data_integration_id.to_string())
                    .set("owner_key", a.owner.key())
                    .set("user_id", a.owner.user_id.as_deref())
                    .set("organization_id", a.owner.organization_id.as_deref())
                    .set("auth_method", a.auth_method.as_str())
                    .set("last_refreshed_at", a.last_refreshed_at)
                    .set("created_at", a.created_at);
                let sql = format!("INSERT INTO connected_accounts {}", p.insert());
                exec(&mut tx, p.query(&sql)?).await?;
            } else {
                let sql = format!(
                    "UPDATE connected_accounts SET {} WHERE id = {} AND environment_id = {}",
                    p.assignments(),
                    p.push(a.id.to_string()),
                    p.push(a.environment_id.to_string()),
                );
                if exec(&mut tx, p.query(&sql)?).await? != 1 {
                    return Err(StoreError::Backend(format!(
                        "connected account {} vanished during the update",
                        a.id
                    )));
                }
            }
            append_events_in(&mut tx, events).await?;
            tx.commit().await.map_err(backend_err)
        })
        .await
    }
}
