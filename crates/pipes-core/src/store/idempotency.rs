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
        /// The record's id (the sealed answer's associated data).
        record_id: String,
        /// HTTP status.
        status: u16,
        /// The response body, as the caller stored it (sealed).
        body: Vec<u8>,
    },
}

/// A request's claim on an idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyClaim<'a> {
    /// The environment the key belongs to.
    pub env: EnvironmentId,
    /// The `Idempotency-Key` value.
    pub key: &'a str,
    /// A fresh id for the record, should this claim create it.
    pub record_id: &'a str,
    /// The digest of the request.
    pub fingerprint: &'a str,
    /// Now.
    pub now: i64,
    /// Records created before this are forgotten.
    pub expired_before: i64,
    /// Unfinished records created before this are taken over (their request died).
    pub stale_before: i64,
}

/// Idempotency records, per environment and key.
#[async_trait]
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims a key for a request, or reports what already holds it.
    async fn idempotency_begin(&self, claim: &IdempotencyClaim<'_>) -> StoreResult<IdempotencyBegin>;
    /// Stores the answer (sealed by the caller) of the request that owns `key`.
    async fn idempotency_complete(&self, env: EnvironmentId, key: &str, status: u16, body: &[u8]) -> StoreResult<()>;
    /// Forgets records created before `before`; returns how many.
    async fn purge_idempotency(&self, before: i64) -> StoreResult<u64>;
    /// Releases `key` without an answer (the request failed in a way a retry may fix).
    async fn idempotency_release(&self, env: EnvironmentId, key: &str) -> StoreResult<()>;
}
