//! Environments, their API keys, connection settings and redirect URIs.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{ApiKey, Environment, EnvironmentName, EnvironmentSettings};
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

    /// Registers a redirect URI; `false` when it was already registered.
    async fn add_redirect_uri(&self, env: EnvironmentId, uri: &str, at: i64) -> StoreResult<bool>;
    /// The registered redirect URIs, in registration order.
    async fn list_redirect_uris(&self, env: EnvironmentId) -> StoreResult<Vec<String>>;
    /// Removes a redirect URI; `false` when it was not registered.
    async fn remove_redirect_uri(&self, env: EnvironmentId, uri: &str) -> StoreResult<bool>;
}
