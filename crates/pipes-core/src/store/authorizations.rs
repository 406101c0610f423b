//! Authorizations: the short-lived, single-use records of the connect flow.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{Authorization, AuthorizationStatus};

/// Pending and finished connection attempts.
#[async_trait]
pub trait AuthorizationStore: Send + Sync + 'static {
    /// Stores a new pending authorization.
    async fn insert_authorization(&self, a: &Authorization) -> StoreResult<()>;
    /// An authorization by its id (the authorize-URL segment).
    async fn authorization(&self, id: &str) -> StoreResult<Option<Authorization>>;
    /// An authorization by its provider-facing state (the callback).
    async fn authorization_by_provider_state(&self, state: &str) -> StoreResult<Option<Authorization>>;
    /// An authorization by the hash of its connect code (`finish`).
    async fn authorization_by_connect_code(&self, hash: &str) -> StoreResult<Option<Authorization>>;
    /// Writes an authorization's changed fields if its status is still `from`; `false` when
    /// another request moved it first (each step happens once).
    async fn advance_authorization(&self, a: &Authorization, from: AuthorizationStatus) -> StoreResult<bool>;
    /// Deletes authorizations that expired before `before`; returns how many.
    async fn purge_authorizations(&self, before: i64) -> StoreResult<u64>;
}
