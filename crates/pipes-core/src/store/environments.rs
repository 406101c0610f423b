//! Environments, their API keys, settings and allow-lists (redirect URIs, web origins).

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{AllowList, ApiKey, Environment, EnvironmentName, EnvironmentSettings};
use crate::ids::{ApiKeyId, EnvironmentId};

/// Environments and what belongs to them alone.
#[async_trait]
pub trait EnvironmentStore: Send + Sync + 'static {
    /// Inserts an environment; `Conflict` when the name is taken.
    async fn insert_environment(&self, env: &Environment) -> StoreResult<()>;
    /// An environment by id.
    async fn environment(&self, id: EnvironmentId) -> StoreResult<Option<Environment>>;
    /// An environment by name.
    async fn environment_by_name(&self, name: &EnvironmentName) -> StoreResult<Option<Environment>>;
    /// Every environment, oldest first.
    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;
    /// Replaces an environment's connection settings; `false` when it does not exist.
    async fn update_environment_settings(
        &self,
        env: EnvironmentId,
        settings: &EnvironmentSettings,
    ) -> StoreResult<bool>;

    /// Inserts an API key record.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The environment a non-revoked key hash opens: the authentication read.
    async fn environment_for_key_hash(&self, hash: &str) -> StoreResult<Option<Environment>>;
    /// An environment's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, env: EnvironmentId) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key; `false` when no such unrevoked key exists.
    async fn revoke_api_key(&self, id: ApiKeyId, at: i64) -> StoreResult<bool>;

    /// Adds an entry to one of the environment's allow-lists; `false` when it was there.
    async fn allow(&self, env: EnvironmentId, list: AllowList, entry: &str, at: i64) -> StoreResult<bool>;
    /// An allow-list's entries, in the order they were added.
    async fn allowed(&self, env: EnvironmentId, list: AllowList) -> StoreResult<Vec<String>>;
    /// Removes an entry; `false` when it was not there.
    async fn disallow(&self, env: EnvironmentId, list: AllowList, entry: &str) -> StoreResult<bool>;
    /// Whether any environment allows this web origin (for CORS preflights, which carry no
    /// credentials and so name no environment).
    async fn origin_allowed_anywhere(&self, origin: &str) -> StoreResult<bool>;
}
