//! Refreshing single-flight: one refresh per connection at a time in this process (callers share
//! one future) and across processes (a lease in the database taken by compare-and-set, then a
//! re-read). New tokens are persisted before anyone sees them; a refresh token is never
//! presented twice by us.

use std::sync::Arc;
use std::time::Duration;

use futures::future::FutureExt;

use super::Credentials;
use crate::domain::{AccountState, AuthMethod, ConnectedAccount, DataIntegration, RefreshError, TokenSet};
use crate::error::ServiceError;
use crate::events::{account_events, AccountChange, Actor};
use crate::ids::ConnectedAccountId;
use crate::metrics::RefreshOutcome;
use crate::oauth::{random_token, ClientApp, OAuthError, ResolvedProvider};
use crate::services::resolve::{resolve_oauth, resolve_provider};
use crate::services::stored::stored_client_app;
use crate::store::{RefreshStore, StoreError};
use crate::time::{millis, now_ms};

/// How long refreshed tokens are retried into a database that refuses writes before they are
/// given up (and the connection with them, for providers that rotate refresh tokens).
const SAVE_PERSISTENCE: Duration = Duration::from_secs(600);

/// How long the refresh worker leaves a connection alone after `failures` transient failures in
/// a row: 30 s doubling to 1 h, ±20 % jitter. Callers that need the token still try at once.
pub fn refresh_backoff(failures: i64) -> Duration {
    use rand::Rng;
    let exp = u32::try_from(failures.clamp(1, 20) - 1).unwrap_or(0);
    let raw = Duration::from_secs(30)
        .saturating_mul(2u32.saturating_pow(exp))
        .min(Duration::from_secs(3600));
    raw.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

/// What a proactive refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AheadOutcome {
    /// New tokens stored (by us, or by another process meanwhile).
    Refreshed,
    /// Another process holds the connection, or there is nothing to refresh with.
    Skipped,
    /// The provider failed transiently; the connection was given a later try.
    Failed,
    /// The grant is dead; the connection needs reauthorization.
    Dead,
}

/// Why a refresh did not produce a token.
#[derive(Debug, Clone)]
pub(super) enum RefreshFailure {
    /// The grant is gone.
    NeedsReauthorization,
    /// Try again later.
    Unavailable { retry_after: Option<u64> },
    /// A fault of ours.
    Internal(String),
    /// Another holder is refreshing (only when not waiting for it).
    Busy,
}

fn internal(e: impl std::fmt::Display) -> RefreshFailure {
    RefreshFailure::Internal(e.to_string())
}

/// A store error: the database being unavailable is worth a retry, anything else is ours.
fn stored(e: StoreError) -> RefreshFailure {
    match e {
        StoreError::Unavailable(cause) => {
            tracing::warn!(error = %cause, "refresh: the database is unavailable");
            RefreshFailure::Unavailable { retry_after: Some(1) }
        }
        other => internal(other),
    }
}

/// A connection's refresh lease, held in the database. Dropping it gives the lease back (on a
/// task of its own); the writes that store a refresh's outcome release it in the same
/// statement, and [`Lease::settled`] then forgets it.
struct Lease {
    store: Arc<dyn RefreshStore>,
    id: ConnectedAccountId,
    holder: String,
    held: bool,
}

impl Lease {
    /// The lease was released by the write that settled the refresh.
    fn settled(mut self) {
        self.held = false;
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if !self.held {
            return;
        }
        let (store, id, holder) = (self.store.clone(), self.id, std::mem::take(&mut self.holder));
        let release = async move {
            if let Err(e) = store.release_refresh_lease(id, &holder).await {
                // It expires on its own; until then other processes wait for it.
                tracing::warn!(account.id = %id, error = %e, "could not give a refresh lease back");
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(release);
            }
            Err(_) => tracing::warn!(account.id = %id, "refresh lease left to expire: no runtime"),
        }
    }
}

impl Credentials {
    /// A connection whose token expired and that has no refresh token: it needs reauthorization.
    pub(super) async fn mark_dead_without_refresh_token(
        &self,
        root: &DataIntegration,
        a: &ConnectedAccount,
    ) -> Result<(), ServiceError> {
        let mut dead = a.clone();
        dead.mark_needs_reauthorization("access_token_expired", now_ms());
        let events = account_events(
            AccountChange::ReauthorizationNeeded,
            &dead,
            root.slug.as_str(),
            &Actor::System,
        );
        self.inner.deps.store.update_connected_account(&dead, &events).await?;
        Ok(())
    }

    /// The refresh worker's entry: refreshes `account` now unless another process holds its
    /// lease. Transient failures are recorded (with the next try) and dead grants marked, exactly
    /// as for a caller's refresh.
    pub async fn refresh_ahead(&self, root: &DataIntegration, account: &ConnectedAccount) -> AheadOutcome {
        if account.tokens.refresh_token.is_none() {
            return AheadOutcome::Skipped;
        }
        match self.refresh_across_processes(root, account, false).await {
            Ok(_) => AheadOutcome::Refreshed,
            Err(RefreshFailure::Busy) => AheadOutcome::Skipped,
            Err(RefreshFailure::NeedsReauthorization) => AheadOutcome::Dead,
            Err(RefreshFailure::Unavailable { .. }) => AheadOutcome::Failed,
            Err(RefreshFailure::Internal(cause)) => {
                tracing::error!(account.id = %account.id, %cause, "proactive refresh failed");
                AheadOutcome::Failed
            }
        }
    }

    /// Joins the refresh in flight for this connection, or starts one.
    pub(super) async fn refresh_single_flight(
        &self,
        root: &DataIntegration,
        account: &ConnectedAccount,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let flight = {
            let mut flights = self.inner.flights.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = flights.get(&account.id) {
                f.clone()
            } else {
                let this = self.clone();
                let (root, account) = (root.clone(), account.clone());
                let id = account.id;
                let fut = async move {
                    let result = this.refresh_across_processes(&root, &account, true).await;
                    this.inner.flights.lock().unwrap_or_else(|p| p.into_inner()).remove(&id);
                    result
                }
                .boxed()
                .shared();
                flights.insert(id, fut.clone());
                fut
            }
        };
        // Run the flight on its own task so that a caller that goes away (client disconnect)
        // cannot cancel a refresh whose new tokens must be persisted.
        let handle = tokio::spawn(flight);
        handle
            .await
            .unwrap_or_else(|e| Err(RefreshFailure::Internal(format!("refresh task failed: {e}"))))
    }

    async fn reread(&self, a: &ConnectedAccount) -> Result<ConnectedAccount, RefreshFailure> {
        self.inner
            .deps
            .store
            .connected_account(a.environment_id, a.id)
            .await
            .map_err(stored)?
            .ok_or(RefreshFailure::NeedsReauthorization)
    }

    /// Takes the connection's lease if it is free: `None` when another holder has it.
    async fn take_lease(&self, id: ConnectedAccountId, holder: &str) -> Result<Option<Lease>, RefreshFailure> {
        let inner = &self.inner;
        let now = now_ms();
        let until = now + millis(inner.policy.lease);
        let taken = inner
            .deps
            .store
            .take_refresh_lease(id, holder, now, until)
            .await
            .map_err(stored)?;
        if taken == Some(true) {
            inner.metrics.refresh_lease_takeover();
            tracing::info!(account.id = %id, "took over a refresh lease whose holder stopped");
        }
        Ok(taken.map(|_| Lease {
            store: inner.deps.store.clone(),
            id,
            holder: holder.to_owned(),
            held: true,
        }))
    }

    /// Refreshes under the database lease. With `wait`, waits (up to the policy's `wait`) for
    /// another holder to finish; without, leaves the connection to that holder.
    async fn refresh_across_processes(
        &self,
        root: &DataIntegration,
        seen: &ConnectedAccount,
        wait: bool,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let deadline = now_ms() + millis(self.inner.policy.wait);
        let holder = format!("{}-{}", self.inner.instance, random_token(6));
        loop {
            let lease = self.take_lease(seen.id, &holder).await?;
            let current = self.reread(seen).await?;
            if current.state == AccountState::NeedsReauthorization {
                return Err(RefreshFailure::NeedsReauthorization);
            }
            if current.refresh_generation != seen.refresh_generation && self.is_fresh(&current) {
                // Someone else refreshed meanwhile.
                return Ok(Arc::new(current));
            }
            if let Some(lease) = lease {
                return self.refresh_holding_lease(root, current, lease).await;
            }
            if !wait {
                return Err(RefreshFailure::Busy);
            }
            if now_ms() > deadline {
                return Err(RefreshFailure::Unavailable { retry_after: Some(1) });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The endpoints and the app a refresh (or a client-credentials mint) uses.
    async fn provider_for(
        &self,
        root: &DataIntegration,
        a: &ConnectedAccount,
    ) -> Result<(ResolvedProvider, ClientApp), RefreshFailure> {
        let settings = match a.owner.organization_id.as_deref() {
            Some(org) if root.uses_organization_apps() => self
                .inner
                .deps
                .store
                .organization_settings(root.id, org)
                .await
                .map_err(stored)?,
            _ => None,
        };
        if a.auth_method == AuthMethod::ClientCredentials {
            let provider =
                resolve_provider(root, settings.as_ref(), &a.config, self.inner.deps.catalog).map_err(internal)?;
            let app = stored_client_app(&self.inner.deps.vault, a).map_err(internal)?;
            return Ok((provider, app));
        }
        resolve_oauth(
            root,
            settings.as_ref(),
            &a.config,
            self.inner.deps.catalog,
            &self.inner.deps.vault,
        )
        .map_err(internal)
    }

    async fn refresh_holding_lease(
        &self,
        root: &DataIntegration,
        current: ConnectedAccount,
        lease: Lease,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let inner = &self.inner;
        let minting = current.auth_method == AuthMethod::ClientCredentials;
        let refresh_token = match current.refresh_token(&inner.deps.vault).map_err(internal)? {
            Some(t) => Some(t),
            None if minting => None,
            None => return Err(RefreshFailure::NeedsReauthorization),
        };
        let (provider, app) = self.provider_for(root, &current).await?;
        let started = now_ms();
        let clock = std::time::Instant::now();
        let answer = match &refresh_token {
            Some(t) => inner.deps.oauth.refresh(&provider, &app, t).await,
            None => {
                let scopes = match current.owner.organization_id.as_deref() {
                    Some(org) => inner
                        .deps
                        .organizations
                        .effective(root, Some(org))
                        .await
                        .ok()
                        .and_then(|e| e.scopes),
                    None => inner.deps.catalog.requested_scopes(root),
                };
                inner
                    .deps
                    .oauth
                    .client_credentials(&provider, &app, &scopes.unwrap_or_default())
                    .await
            }
        };
        let resp = match answer {
            Ok(resp) => resp,
            Err(err) => return self.refresh_failed(root, current, lease, &provider, err, clock).await,
        };
        inner
            .metrics
            .refresh(&provider.slug, RefreshOutcome::Success, clock.elapsed());
        let expires_at = resp.expires_in.map(|s| started + s * 1000);
        // Merge: providers that do not rotate send no refresh token; keep ours.
        let refresh = resp.refresh_token.clone().or(refresh_token);
        let tokens = TokenSet::seal(
            &inner.deps.vault,
            current.id,
            Some(&resp.access_token),
            refresh.as_ref(),
            expires_at,
        );
        let scopes = resp.scopes.clone().unwrap_or_else(|| current.scopes.clone());
        let mut fresh = current.clone();
        fresh.mark_refreshed(tokens, scopes, resp.metadata.clone(), started);
        let metadata_json = serde_json::to_string(&fresh.metadata).unwrap_or_else(|_| "{}".into());
        // The provider may have retired the refresh token we sent: these tokens are now the
        // only ones, so a database that is down or full is waited for, not given up on. This
        // runs on the flight's own task; callers that stop waiting do not stop it.
        let mut delay = Duration::from_millis(100);
        let give_up = std::time::Instant::now() + SAVE_PERSISTENCE;
        let stored = loop {
            let attempt = inner
                .deps
                .store
                .store_refreshed_tokens(
                    current.id,
                    &lease.holder,
                    current.refresh_generation,
                    &fresh.tokens,
                    &fresh.scopes,
                    &metadata_json,
                    started,
                )
                .await;
            match attempt {
                Ok(stored) => break stored,
                Err(StoreError::Unavailable(e)) if std::time::Instant::now() < give_up => {
                    tracing::warn!(account.id = %current.id, error = %e, retry_in_ms = delay.as_millis() as u64, "refreshed tokens not stored yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(account.id = %current.id, error = %e, "refreshed tokens could not be stored");
                    return Err(internal(e));
                }
            }
        };
        if !stored {
            // Another process stored newer tokens meanwhile (our lease ran out): theirs are live.
            tracing::error!(account.id = %current.id, "refresh result not stored: a newer generation exists");
            return self.reread(&current).await.map(Arc::new);
        }
        lease.settled();
        tracing::info!(account.id = %current.id, provider = %provider.slug, "token refreshed");
        Ok(Arc::new(fresh))
    }

    /// Records a failed refresh: a dead grant marks the connection, a transient failure
    /// schedules the next try. A grant reported dead after another process refreshed meanwhile
    /// is not dead: that refresh's result is returned.
    async fn refresh_failed(
        &self,
        root: &DataIntegration,
        current: ConnectedAccount,
        lease: Lease,
        provider: &ResolvedProvider,
        err: OAuthError,
        clock: std::time::Instant,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let inner = &self.inner;
        let code = err.code();
        // For client credentials the grant is the tenant's client: a rejected client is as dead
        // as a revoked refresh token.
        let dead =
            err.is_dead_grant() || (current.auth_method == AuthMethod::ClientCredentials && err.is_rejected_client());
        if dead {
            // Before declaring the grant dead: did another process refresh meanwhile?
            let again = self.reread(&current).await?;
            if again.refresh_generation != current.refresh_generation {
                return Ok(Arc::new(again));
            }
        }
        let failures = current.last_refresh_error.as_ref().map_or(0, |e| e.failures) + 1;
        let now = now_ms();
        let record = RefreshError {
            code: code.clone(),
            at: now,
            failures,
            retry_at: (!dead).then(|| now + millis(refresh_backoff(failures))),
        };
        let outcome = if dead {
            RefreshOutcome::Permanent
        } else {
            RefreshOutcome::Transient
        };
        inner.metrics.refresh(&provider.slug, outcome, clock.elapsed());
        let events = if dead {
            let mut snapshot = current.clone();
            snapshot.mark_needs_reauthorization(&code, record.at);
            account_events(
                AccountChange::ReauthorizationNeeded,
                &snapshot,
                root.slug.as_str(),
                &Actor::System,
            )
        } else {
            Vec::new()
        };
        match inner
            .deps
            .store
            .record_refresh_failure(
                current.id,
                &lease.holder,
                current.refresh_generation,
                &record,
                dead,
                &events,
            )
            .await
        {
            Ok(true) => lease.settled(),
            Ok(false) => tracing::warn!(account.id = %current.id, "refresh failure not recorded: lease lost"),
            Err(e) => tracing::error!(account.id = %current.id, error = %e, "refresh failure could not be recorded"),
        }
        tracing::warn!(account.id = %current.id, provider = %provider.slug, error = %code, "token refresh failed");
        Err(match err {
            _ if dead => RefreshFailure::NeedsReauthorization,
            OAuthError::Transient { retry_after, .. } => RefreshFailure::Unavailable {
                retry_after: retry_after.map(|d| d.as_secs().max(1)),
            },
            _ => RefreshFailure::Unavailable { retry_after: Some(5) },
        })
    }
}
