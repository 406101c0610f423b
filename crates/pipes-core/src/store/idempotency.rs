//! Idempotency keys: answers replayed to a retried request.

use async_trait::async_trait;

use super::StoreResult;
use crate::ids::EnvironmentId;

/// What [`IdempotencyStore::idempotency_begin`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotencyBegin {
    /// The key was free: this request now owns it.
    Started,
    /// Another request with this key is still running.
    InFlight,
    /// The key was used for a different request.
    Mismatch,
    /// The key's request completed: replay its answer.
    Completed {
        /// HTTP status.
        status: u16,
        /// Response body.
        body: Vec<u8>,
    },
}

/// Idempotency records, per environment and key.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for a request with `fingerprint`, or reports what already holds it. Records
    /// created before `expired_before` are forgotten; unfinished ones created before
    /// `stale_before` are taken over (their request died).
    async fn idempotency_begin(
        &self,
        env: EnvironmentId,
        key: &str,
        fingerprint: &str,
        now: i64,
        expired_before: i64,
        stale_before: i64,
    ) -> StoreResult<IdempotencyBegin>;
    /// Stores the answer of the request that owns `key`.
    async fn idempotency_complete(&self, env: EnvironmentId, key: &str, status: u16, body: &[u8]) -> StoreResult<()>;
    /// Releases `key` without an answer (the request failed in a way a retry may fix).
    async fn idempotency_release(&self, env: EnvironmentId, key: &str) -> StoreResult<()>;
}
