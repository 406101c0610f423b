//! [`EnvironmentStore`]: environments, API keys, settings, redirect URIs.

use async_trait::async_trait;
use pipes_core::domain::{ApiKey, Environment, EnvironmentName, EnvironmentSettings};
use pipes_core::ids::{ApiKeyId, EnvironmentId};
use pipes_core::store::{EnvironmentStore, StoreResult};

use super::{Params, SqlStore};
use crate::backend_err;
use crate::rows::{self, get, ENV_COLUMNS};

/// An environment's connection settings, as columns.
fn settings_columns<'q>(p: &mut Params<'q>, s: &'q EnvironmentSettings) {
    p.set("multiple_connections", i64::from(s.multiple_connections))
        .set("connection_limit", i64::from(s.connection_limit))
        .set("membership", s.membership.as_str());
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
        p.query(&sql)?.execute(&self.writer).await.map_err(backend_err)?;
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
            let done = p.query(&sql)?.execute(&self.writer).await.map_err(backend_err)?;
            Ok(done.rows_affected() == 1)
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
        p.query(&sql)?.execute(&self.writer).await.map_err(backend_err)?;
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
}
