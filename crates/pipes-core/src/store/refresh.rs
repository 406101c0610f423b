//! Refresh leases: one refresh per connection at a time across processes, and the refresh
//! worker's queue.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{ConnectedAccount, DataIntegration, RefreshError, TokenSet};
use crate::events::Event;
use crate::ids::ConnectedAccountId;

/// A built-in provider whose idle grants must be refreshed: connections of its roots last
/// refreshed (or made) before `idle_before` are due.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    /// The built-in provider's slug.
    pub slug: String,
    /// The cutoff.
    pub idle_before: i64,
}

/// Refresh leases and results.
#[async_trait]
pub trait RefreshStore: Send + Sync + 'static {
    /// Takes the refresh lease of a connection if nobody holds an unexpired one (compare-and-set):
    /// `None` when it is held, `Some(true)` when it took over a lease whose holder stopped.
    async fn take_refresh_lease(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>>;
    /// Gives the lease back (only if `holder` still holds it).
    async fn release_refresh_lease(&self, id: ConnectedAccountId, holder: &str) -> StoreResult<()>;
    /// Persists a refresh's result if the generation is still `generation` and `holder` holds
    /// the lease: new tokens, scopes and metadata, generation + 1, lease and error cleared.
    #[allow(clippy::too_many_arguments)]
    async fn store_refreshed_tokens(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        tokens: &TokenSet,
        scopes: &[String],
        metadata: &str,
        now: i64,
    ) -> StoreResult<bool>;
    /// Records a failed refresh (and, when `needs_reauthorization`, the state change with its
    /// `events`, in one transaction) if `holder` holds the lease and the generation is
    /// unchanged; releases the lease.
    #[allow(clippy::too_many_arguments)]
    async fn record_refresh_failure(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        error: &RefreshError,
        needs_reauthorization: bool,
        events: &[Event],
    ) -> StoreResult<bool>;

    /// Connections the refresh worker should refresh now, soonest expiry first: connected, with a
    /// refresh token, not leased, not backing off, and either expiring within
    /// min(`ahead_ms`, half the token's lifetime) (the rule of
    /// [`crate::domain::TokenSet::fresh_at`]) or idle past their provider's keep-alive.
    async fn accounts_due_for_refresh(
        &self,
        now: i64,
        ahead_ms: i64,
        keepalive: &[KeepAlive],
        limit: u32,
    ) -> StoreResult<Vec<(DataIntegration, ConnectedAccount)>>;
    /// How many connections [`RefreshStore::accounts_due_for_refresh`] would return without a limit.
    async fn count_due_for_refresh(&self, now: i64, ahead_ms: i64, keepalive: &[KeepAlive]) -> StoreResult<i64>;
}
