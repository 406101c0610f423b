//! Authorizations and connect sessions: the short-lived, single-use records of the connect flow.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{Authorization, AuthorizationStatus, ConnectSession};

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
    /// Deletes authorizations (and connect sessions) that expired before `before`; returns
    /// how many authorizations.
    async fn purge_authorizations(&self, before: i64) -> StoreResult<u64>;

    /// Stores a new connect session.
    async fn insert_connect_session(&self, s: &ConnectSession) -> StoreResult<()>;
    /// Trades a session's single-use code (its hash) for a cookie (its hash): the session, once,
    /// if unexpired at `now`, now living until `until`; `None` when the code is unknown, used
    /// or expired.
    async fn open_connect_session(
        &self,
        code_hash: &str,
        cookie_hash: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<ConnectSession>>;
    /// The opened session a cookie (its hash) belongs to, if unexpired at `now`.
    async fn connect_session_by_cookie(&self, cookie_hash: &str, now: i64) -> StoreResult<Option<ConnectSession>>;
}
