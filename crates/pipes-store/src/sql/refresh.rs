//! [`RefreshStore`]: refresh leases on connections, refresh results and the refresh worker's
//! queue.

use async_trait::async_trait;
use pipes_core::domain::{AccountState, ConnectedAccount, DataIntegration, RefreshError, TokenSet};
use pipes_core::events::Event;
use pipes_core::ids::ConnectedAccountId;
use pipes_core::store::{KeepAlive, RefreshStore, StoreResult};

use super::{append_events_in, exec, release_lease, take_lease, LeaseColumns, Params, SqlStore};
use crate::backend_err;
use crate::rows::{self, ACCOUNT_COLUMNS, ACCOUNT_FROM, ROOT_COLUMNS};

const REFRESH_LEASE: LeaseColumns = LeaseColumns {
    table: "connected_accounts",
    owner: "refresh_lease_owner",
    until: "refresh_lease_until",
    reentrant: true,
};

/// The condition of [`RefreshStore::accounts_due_for_refresh`], binding its values.
///
/// "Due" is the SQL side of the freshness rule in
/// `pipes_core::domain::ConnectedAccount::is_fresh`: less than min(`ahead_ms`, half the
/// token's lifetime) left, the full lead when the lifetime is unknown. The contract case
/// `refresh_candidates_follow_expiry_backoff_and_keepalive` pins the two together.
fn due_for_refresh<'q>(p: &mut Params<'q>, now: i64, ahead_ms: i64, keepalive: &'q [KeepAlive]) -> String {
    let now = p.push(now);
    let ahead = p.push(ahead_ms);
    let mut due = vec![format!(
        "(ca.expires_at IS NOT NULL AND ca.expires_at < {now} + {ahead} \
         AND (ca.last_refreshed_at IS NULL OR ca.expires_at - {now} < (ca.expires_at - ca.last_refreshed_at) / 2))"
    )];
    for k in keepalive {
        due.push(format!(
            "(di.custom_provider_id IS NULL AND di.slug = {} AND COALESCE(ca.last_refreshed_at, ca.created_at) < {})",
            p.push(k.slug.as_str()),
            p.push(k.idle_before)
        ));
    }
    format!(
        "ca.state = 'connected' AND ca.refresh_token IS NOT NULL \
         AND (ca.refresh_lease_until IS NULL OR ca.refresh_lease_until < {now}) \
         AND (ca.refresh_retry_at IS NULL OR ca.refresh_retry_at <= {now}) AND ({})",
        due.join(" OR ")
    )
}

#[async_trait]
impl RefreshStore for SqlStore {
    async fn take_refresh_lease(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>> {
        take_lease(self, &REFRESH_LEASE, id.to_string(), holder, now, until).await
    }

    async fn release_refresh_lease(&self, id: ConnectedAccountId, holder: &str) -> StoreResult<()> {
        release_lease(self, &REFRESH_LEASE, id.to_string(), holder).await
    }

    async fn store_refreshed_tokens(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        tokens: &TokenSet,
        scopes: &[String],
        metadata: &str,
        now: i64,
    ) -> StoreResult<bool> {
        self.counted(async {
            let mut p = Params::default();
            p.set("access_token", tokens.access_token.as_ref().map(|s| s.0.clone()))
                .set("expires_at", tokens.expires_at)
                .set("refresh_token", tokens.refresh_token.as_ref().map(|s| s.0.clone()))
                .set("scopes", rows::to_json(&scopes))
                .set("metadata", metadata)
                .set("last_refreshed_at", now)
                .set("updated_at", now);
            // The generation alone decides: tokens a provider issued for the generation we read
            // are the newest there are, even when our lease ran out meanwhile (a database outage
            // longer than the lease); another holder's refresh of the same generation then finds
            // the generation moved and uses these. A lease is released only by its holder.
            let holder = p.push(holder);
            let sql = format!(
                "UPDATE connected_accounts SET {}, refresh_generation = refresh_generation + 1, \
                 last_refresh_error = NULL, last_refresh_error_at = NULL, refresh_failures = 0, \
                 refresh_retry_at = NULL, \
                 refresh_lease_until = CASE WHEN refresh_lease_owner = {holder} THEN NULL ELSE refresh_lease_until END, \
                 refresh_lease_owner = CASE WHEN refresh_lease_owner = {holder} THEN NULL ELSE refresh_lease_owner END \
                 WHERE id = {} AND refresh_generation = {}",
                p.assignments(),
                p.push(id.to_string()),
                p.push(generation),
            );
            let done = self.write(p.query(&sql)?).await?;
            Ok(done == 1)
        })
        .await
    }

    async fn record_refresh_failure(
        &self,
        id: ConnectedAccountId,
        holder: &str,
        generation: i64,
        error: &RefreshError,
        needs_reauthorization: bool,
        events: &[Event],
    ) -> StoreResult<bool> {
        self.with_events(events, async {
            let mut tx = self.begin_write().await?;
            let mut p = Params::default();
            p.set("last_refresh_error", error.code.as_str())
                .set("last_refresh_error_at", error.at)
                .set("refresh_failures", error.failures)
                .set("refresh_retry_at", error.retry_at);
            if needs_reauthorization {
                p.set("state", AccountState::NeedsReauthorization.as_str())
                    .set("state_reason", error.code.as_str())
                    .set("updated_at", error.at);
            }
            let sql = format!(
                "UPDATE connected_accounts SET {}, refresh_lease_owner = NULL, refresh_lease_until = NULL \
                 WHERE id = {} AND refresh_generation = {} AND refresh_lease_owner = {}",
                p.assignments(),
                p.push(id.to_string()),
                p.push(generation),
                p.push(holder),
            );
            let done = exec(&mut tx, p.query(&sql)?).await?;
            if done != 1 {
                return Ok(false);
            }
            if needs_reauthorization {
                append_events_in(&mut tx, events).await?;
            }
            tx.commit().await.map_err(backend_err)?;
            Ok(true)
        })
        .await
    }

    async fn accounts_due_for_refresh(
        &self,
        now: i64,
        ahead_ms: i64,
        keepalive: &[KeepAlive],
        limit: u32,
    ) -> StoreResult<Vec<(DataIntegration, ConnectedAccount)>> {
        let mut p = Params::default();
        let due = due_for_refresh(&mut p, now, ahead_ms, keepalive);
        let sql = format!(
            "SELECT {ROOT_COLUMNS}, {ACCOUNT_COLUMNS} FROM {ACCOUNT_FROM} \
             LEFT JOIN custom_providers cp ON cp.id = di.custom_provider_id WHERE {due} \
             ORDER BY COALESCE(ca.expires_at, 9223372036854775807) LIMIT {}",
            p.push(i64::from(limit))
        );
        self.all(p.query(&sql)?, |r| {
            Ok((rows::data_integration(r)?, rows::connected_account(r)?))
        })
        .await
    }

    async fn count_due_for_refresh(&self, now: i64, ahead_ms: i64, keepalive: &[KeepAlive]) -> StoreResult<i64> {
        let mut p = Params::default();
        let sql = format!(
            "SELECT COUNT(*) AS n FROM {ACCOUNT_FROM} WHERE {}",
            due_for_refresh(&mut p, now, ahead_ms, keepalive)
        );
        self.count(p.query(&sql)?).await
    }
}
