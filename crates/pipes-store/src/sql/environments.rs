//! [`EnvironmentStore`]: environments, API keys, settings, allow-lists.

use async_trait::async_trait;
use pipes_core::domain::{AllowList, ApiKey, Environment, EnvironmentName, EnvironmentSettings};
use pipes_core::ids::{ApiKeyId, EnvironmentId};
use pipes_core::store::{EnvironmentStore, StoreResult};

use super::{Params, SqlStore};
use crate::rows::{self, get, ENV_COLUMNS};

/// An environment's settings, as columns.
fn settings_columns<'q>(p: &mut Params<'q>, s: &'q EnvironmentSettings) {
    p.set("multiple_connections", i64::from(s.multiple_connections))
        .set("connection_limit", i64::from(s.connection_limit))
        .set("membership", s.membership.as_str())
        .set("team_name", s.team_name.as_deref())
        .set("logo_url", s.logo_url.as_deref());
}

/// The table of an allow-list and its entry column.
fn allow_list_table(list: AllowList) -> (&'static str, &'static str) {
    match list {
        AllowList::RedirectUris => ("redirect_uris", "uri"),
        AllowList::WebOrigins => ("web_origins", "origin"),
    }
}

#[async_trait]
impl EnvironmentStore for SqlStore {
    async fn insert_environment(&self, env: &Environment) -> StoreResult<()> {
        let mut p = Params::default();
        p.set("id", env.id.to_string())
            .set("name", env.name.as_str())
            .set("production", i64::from(env.production))
            .set("client_id", env.client_id.to_string())
            .set("created_at", env.created_at);
        settings_columns(&mut p, &env.settings);
        let sql = format!("INSERT INTO environments {}", p.insert());
        self.write(p.query(&sql)?).await?;
        Ok(())
    }

    async fn environment(&self, id: EnvironmentId) -> StoreResult<Option<Environment>> {
        self.optional(q!("SELECT * FROM environments WHERE id = $1", id.to_string()), |r| {
            rows::environment(r, "")
        })
        .await
    }

    async fn environment_by_name(&self, name: &EnvironmentName) -> StoreResult<Option<Environment>> {
        self.optional(q!("SELECT * FROM environments WHERE name = $1", name.as_str()), |r| {
            rows::environment(r, "")
        })
        .await
    }

    async fn list_environments(&self) -> StoreResult<Vec<Environment>> {
        self.all(q!("SELECT * FROM environments ORDER BY id"), |r| {
            rows::environment(r, "")
        })
        .await
    }

    async fn update_environment_settings(
        &self,
        env: EnvironmentId,
        settings: &EnvironmentSettings,
    ) -> StoreResult<bool> {
        self.counted(async {
            let mut p = Params::default();
            settings_columns(&mut p, settings);
            let sql = format!(
                "UPDATE environments SET {} WHERE id = {}",
                p.assignments(),
                p.push(env.to_string())
            );
            let done = self.write(p.query(&sql)?).await?;
            Ok(done == 1)
        })
        .await
    }

    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()> {
        let mut p = Params::default();
        p.set("id", key.id.to_string())
            .set("environment_id", key.environment_id.to_string())
            .set("prefix", key.prefix.as_str())
            .set("key_hash", key.hash.as_str())
            .set("created_at", key.created_at)
            .set("revoked_at", key.revoked_at);
        let sql = format!("INSERT INTO api_keys {}", p.insert());
        self.write(p.query(&sql)?).await?;
        Ok(())
    }

    async fn environment_for_key_hash(&self, hash: &str) -> StoreResult<Option<Environment>> {
        let sql = format!(
            "SELECT {ENV_COLUMNS} FROM api_keys k JOIN environments e ON e.id = k.environment_id \
             WHERE k.key_hash = $1 AND k.revoked_at IS NULL"
        );
        self.optional(q!(&sql, hash), |r| rows::environment(r, "e_")).await
    }

    async fn list_api_keys(&self, env: EnvironmentId) -> StoreResult<Vec<ApiKey>> {
        self.all(
            q!(
                "SELECT * FROM api_keys WHERE environment_id = $1 ORDER BY id",
                env.to_string()
            ),
            rows::api_key,
        )
        .await
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: i64) -> StoreResult<bool> {
        self.counted(async {
            Ok(self
                .write(q!(
                    "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
                    at,
                    id.to_string()
                ))
                .await?
                == 1)
        })
        .await
    }

    async fn allow(&self, env: EnvironmentId, list: AllowList, entry: &str, at: i64) -> StoreResult<bool> {
        let (table, column) = allow_list_table(list);
        let sql = format!(
            "INSERT INTO {table} (environment_id, {column}, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
        );
        Ok(self.write(q!(&sql, env.to_string(), entry, at)).await? == 1)
    }

    async fn allowed(&self, env: EnvironmentId, list: AllowList) -> StoreResult<Vec<String>> {
        let (table, column) = allow_list_table(list);
        let sql = format!("SELECT {column} FROM {table} WHERE environment_id = $1 ORDER BY created_at, {column}");
        self.all(q!(&sql, env.to_string()), |r| get::<String>(r, column)).await
    }

    async fn disallow(&self, env: EnvironmentId, list: AllowList, entry: &str) -> StoreResult<bool> {
        let (table, column) = allow_list_table(list);
        let sql = format!("DELETE FROM {table} WHERE environment_id = $1 AND {column} = $2");
        Ok(self.write(q!(&sql, env.to_string(), entry)).await? == 1)
    }

    async fn origin_allowed_anywhere(&self, origin: &str) -> StoreResult<bool> {
        self.exists(q!("SELECT 1 FROM web_origins WHERE origin = $1 LIMIT 1", origin))
            .await
    }
}
