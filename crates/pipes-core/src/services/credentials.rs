//! Vending: a fresh credential in one call. A fresh token costs one indexed read and no
//! write. A token inside the refresh margin is refreshed single-flight: one refresh per
//! connection at a time in this process (callers share one future) and across processes (a
//! lease in the database taken by compare-and-set, then a re-read). New tokens are persisted
//! before anyone sees them; a refresh token is never presented twice by us.

use crate::events::{account_events, AccountChange, Actor};
use crate::metrics::{Metrics, RefreshOutcome};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use serde::Deserialize;

use super::accounts::{requested_scopes, Accounts};
use super::organizations::Organizations;
use super::resolve::{resolve_oauth, resolve_provider, uses_organization_apps};
use super::selection::{select, OwnerChoice, Selector};
use super::stored::{stored_api_key, stored_client_app};
use crate::catalog::Catalog;
use crate::domain::{
    AccountState, AuthMethod, ConnectedAccount, DataIntegration, Environment, Ownership, RefreshError, TokenSet,
};
use crate::error::ServiceError;
use crate::ids::ConnectedAccountId;
use crate::oauth::{random_token, ClientApp, OAuthClient, OAuthError, ResolvedProvider};
use crate::secret::SecretString;
use crate::store::Store;
use crate::time::{now_ms, Millis};
use crate::vault::Vault;

/// The body of `/token` and `/credentials`.
#[derive(Debug, Default, Deserialize)]
pub struct VendRequest {
    /// Owner, or acting member.
    pub user_id: String,
    /// Organization scope or owner; `null` = unscoped.
    #[serde(default)]
    pub organization_id: Option<String>,
    /// Exact connection.
    #[serde(default)]
    pub connected_account_id: Option<String>,
    /// `user` or `organization`.
    #[serde(default)]
    pub connection_owner: Option<String>,
    /// Plural contract.
    #[serde(default)]
    pub supports_multiple_connections: Option<bool>,
}

/// How vending answers.
#[derive(Debug)]
pub enum Vended {
    /// A usable credential.
    Active(ActiveCredential),
    /// `not_installed` or `needs_reauthorization`.
    Inactive(&'static str),
}

/// A credential ready to hand out.
#[derive(Debug)]
pub struct ActiveCredential {
    /// How the connection authenticates.
    pub auth_method: AuthMethod,
    /// The token or key.
    pub value: SecretString,
    /// Expiry; `None` = does not expire.
    pub expires_at: Option<Millis>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// Requested but not granted.
    pub missing_scopes: Vec<String>,
    /// Non-secret token-response fields.
    pub metadata: BTreeMap<String, serde_json::Value>,
    /// Config snapshot.
    pub config: BTreeMap<String, String>,
}

/// When to refresh.
#[derive(Debug, Clone, Copy)]
pub struct RefreshPolicy {
    /// Refresh when less than min(this, half the token's lifetime) is left.
    pub max_margin: Duration,
    /// How long a refresh lease lasts: longer than the slowest token endpoint (the OAuth client
    /// gives up after 15 s), and short enough that a process that died mid-refresh leaves the
    /// connection to another within the rotation grace period providers commonly allow (30 s).
    pub lease: Duration,
    /// How long a caller waits for another process's refresh before answering from what it has.
    pub wait: Duration,
    /// How long a vending read may be reused for the same key, provider and owner while this
    /// process writes nothing; zero disables the cache. Writes by other processes (a key revoked
    /// from the CLI, another PostgreSQL instance) take effect within this time.
    pub cache_ttl: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        Self {
            max_margin: Duration::from_secs(300),
            lease: Duration::from_secs(20),
            wait: Duration::from_secs(20),
            cache_ttl: Duration::from_secs(1),
        }
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

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
enum RefreshFailure {
    /// The grant is gone.
    NeedsReauthorization,
    /// Try again later.
    Unavailable { retry_after: Option<u64> },
    /// A fault of ours.
    Internal(String),
    /// Another holder is refreshing (only when not waiting for it).
    Busy,
}

type Flight = Shared<BoxFuture<'static, Result<Arc<ConnectedAccount>, RefreshFailure>>>;

/// (key hash, slug, ownership, owner key and, for shared connections, the acting member): what
/// a selector-free vending call reads.
type VendKey = (String, String, &'static str, String);

/// A vending read reused for a short time. Holds sealed tokens only; they are opened per call.
/// For organizations it also holds what their settings request, and it exists for a shared
/// connection only once the acting member was found active.
#[derive(Clone)]
struct CachedRead {
    root: Arc<DataIntegration>,
    account: Arc<ConnectedAccount>,
    requested: Arc<[String]>,
    epoch: u64,
    at: std::time::Instant,
}

/// Entries beyond this are dropped wholesale rather than tracked.
const CACHE_LIMIT: usize = 100_000;

struct Inner {
    store: Arc<dyn Store>,
    vault: Vault,
    catalog: &'static Catalog,
    accounts: Accounts,
    organizations: Organizations,
    oauth: OAuthClient,
    policy: RefreshPolicy,
    metrics: Arc<Metrics>,
    /// This process's identity as a lease holder.
    instance: String,
    flights: Mutex<HashMap<ConnectedAccountId, Flight>>,
    cache: Mutex<HashMap<VendKey, CachedRead>>,
}

/// Token and credential vending.
#[derive(Clone)]
pub struct Credentials {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("instance", &self.inner.instance)
            .finish()
    }
}

/// 503 with a retry hint; the caller may retry.
pub fn unavailable(retry_after: Option<u64>) -> ServiceError {
    ServiceError::Unavailable {
        message: "The provider could not refresh the token right now; retry shortly.".into(),
        retry_after: retry_after.unwrap_or(1),
    }
}

impl Credentials {
    /// The service.
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: &'static Catalog,
        oauth: OAuthClient,
        policy: RefreshPolicy,
        metrics: Arc<Metrics>,
    ) -> Self {
        let accounts = Accounts::new(store.clone(), vault.clone(), catalog);
        let organizations = Organizations::new(store.clone(), vault.clone(), catalog);
        Self {
            inner: Arc::new(Inner {
                organizations,
                store,
                vault,
                catalog,
                accounts,
                oauth,
                policy,
                metrics,
                instance: format!("pipes-{}", random_token(9)),
                flights: Mutex::new(HashMap::new()),
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// `POST /data-integrations/{slug}/token` (`oauth_only`) and `/credentials` for an
    /// authenticated environment.
    pub async fn vend(
        &self,
        env: &Environment,
        slug: &str,
        choice: &OwnerChoice,
        selector: &Selector<'_>,
        oauth_only: bool,
    ) -> Result<Vended, ServiceError> {
        let (root, account) = select(self.inner.store.as_ref(), env, slug, &choice.owner, selector).await?;
        self.inner.organizations.check_acting_member(env, choice).await?;
        let requested = self.requested(&root, account.as_ref()).await?;
        self.vend_selected(&root, account.map(Arc::new), oauth_only, &requested)
            .await
    }

    /// The scopes the connection's owner requests: an organization's settings may narrow the
    /// integration's (one more read, only for organizations). API keys carry no scopes.
    async fn requested(
        &self,
        root: &DataIntegration,
        account: Option<&ConnectedAccount>,
    ) -> Result<Arc<[String]>, ServiceError> {
        let requested = match account {
            Some(a) if a.auth_method == AuthMethod::ApiKey => None,
            Some(a) if a.owner.organization_id.is_some() => {
                let org = a.owner.organization_id.as_deref();
                self.inner.organizations.effective(root, org).await?.scopes
            }
            _ => requested_scopes(root, self.inner.catalog),
        };
        Ok(requested.unwrap_or_default().into())
    }

    /// Like [`Credentials::vend`] from the presented API key: a selector-free call (the common
    /// case) authenticates, finds the root and the connection in one indexed read. `None` when
    /// the key opens nothing.
    pub async fn vend_with_key(
        &self,
        presented_key: &str,
        slug: &str,
        choice: &OwnerChoice,
        selector: &Selector<'_>,
        oauth_only: bool,
    ) -> Result<Option<Vended>, ServiceError> {
        let Some(hash) = crate::api_keys::lookup_hash(presented_key) else {
            return Ok(None);
        };
        // Selectors need more than one read.
        if selector.connected_account_id.is_some() || selector.supports_multiple_connections {
            let Some(env) = self.inner.store.environment_for_key_hash(&hash).await? else {
                return Ok(None);
            };
            return self.vend(&env, slug, choice, selector, oauth_only).await.map(Some);
        }
        let Ok(slug) = crate::slug::Slug::parse(slug) else {
            // No such root can exist; still, a bad key is told it is a bad key.
            return match self.inner.store.environment_for_key_hash(&hash).await? {
                Some(_) => Err(super::selection::root_not_found()),
                None => Ok(None),
            };
        };
        let owner_key = choice.owner.key();
        let acting = match (choice.owner.ownership, choice.acting_user.as_deref()) {
            (Ownership::Organization, Some(user)) => format!("{owner_key}\u{1f}{user}"),
            _ => owner_key.clone(),
        };
        let cache_key: VendKey = (hash, slug.to_string(), choice.owner.ownership.as_str(), acting);
        if let Some(hit) = self.cached(&cache_key) {
            return self
                .vend_selected(&hit.root, Some(hit.account.clone()), oauth_only, &hit.requested)
                .await
                .map(Some);
        }
        // The epoch is taken before reading: a write that commits meanwhile invalidates this read
        // (and the membership and settings reads that follow it).
        let epoch = self.inner.store.write_epoch();
        let found = self
            .inner
            .store
            .vend_read(&cache_key.0, &slug, choice.owner.ownership, &owner_key)
            .await?;
        let Some((env, root_and_account)) = found else {
            return Ok(None);
        };
        let (root, account) = root_and_account.ok_or_else(super::selection::root_not_found)?;
        self.inner.organizations.check_acting_member(&env, choice).await?;
        let requested = self.requested(&root, account.as_ref()).await?;
        if let Some(a) = account
            .as_ref()
            .filter(|a| a.state == AccountState::Connected && self.is_fresh(a, now_ms()))
        {
            self.remember(cache_key, epoch, &root, a, &requested);
        }
        self.vend_selected(&root, account.map(Arc::new), oauth_only, &requested)
            .await
            .map(Some)
    }

    fn cached(&self, key: &VendKey) -> Option<CachedRead> {
        if self.inner.policy.cache_ttl.is_zero() {
            return None;
        }
        let cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        let hit = cache.get(key)?;
        let current = hit.epoch == self.inner.store.write_epoch() && hit.at.elapsed() < self.inner.policy.cache_ttl;
        // A token inside its refresh margin goes through the refresh path, not the cache.
        (current && self.is_fresh(&hit.account, now_ms())).then(|| hit.clone())
    }

    fn remember(
        &self,
        key: VendKey,
        epoch: u64,
        root: &DataIntegration,
        account: &ConnectedAccount,
        requested: &Arc<[String]>,
    ) {
        if self.inner.policy.cache_ttl.is_zero() {
            return;
        }
        let mut cache = self.inner.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        let entry = CachedRead {
            root: Arc::new(root.clone()),
            account: Arc::new(account.clone()),
            requested: requested.clone(),
            epoch,
            at: std::time::Instant::now(),
        };
        cache.insert(key, entry);
    }

    async fn vend_selected(
        &self,
        root: &DataIntegration,
        account: Option<Arc<ConnectedAccount>>,
        oauth_only: bool,
        requested: &[String],
    ) -> Result<Vended, ServiceError> {
        let Some(account) = account else {
            return Ok(Vended::Inactive("not_installed"));
        };
        if oauth_only && account.auth_method != AuthMethod::Oauth {
            return Err(ServiceError::Invalid {
                code: "auth_method_mismatch",
                message: format!(
                    "This installation uses {} authentication. Use the POST /:slug/credentials endpoint instead.",
                    account.auth_method.as_str()
                ),
                errors: vec![],
            });
        }
        if account.state == AccountState::NeedsReauthorization {
            return Ok(Vended::Inactive("needs_reauthorization"));
        }
        if account.auth_method == AuthMethod::ApiKey {
            let value = stored_api_key(&self.inner.vault, &account)?
                .ok_or_else(|| ServiceError::Internal("API-key connection without a key".into()))?;
            return Ok(Vended::Active(ActiveCredential {
                auth_method: AuthMethod::ApiKey,
                value,
                expires_at: None,
                scopes: Vec::new(),
                missing_scopes: Vec::new(),
                metadata: BTreeMap::new(),
                config: self.config_with_defaults(root, &account),
            }));
        }
        let now = now_ms();
        let account = if self.is_fresh(&account, now) {
            account
        } else if account.tokens.refresh_token.is_none() && account.auth_method == AuthMethod::Oauth {
            if account.tokens.access_token.is_some() && account.tokens.expires_at.is_some_and(|e| e > now) {
                account // inside the margin but no way to refresh: hand out what is still valid
            } else {
                self.mark_dead_without_refresh_token(root, &account).await?;
                return Ok(Vended::Inactive("needs_reauthorization"));
            }
        } else {
            match self.refresh_single_flight(root, &account).await {
                Ok(fresh) => fresh,
                Err(RefreshFailure::NeedsReauthorization) => return Ok(Vended::Inactive("needs_reauthorization")),
                Err(RefreshFailure::Busy) => match account.tokens.expires_at {
                    Some(e) if e > now_ms() && account.tokens.access_token.is_some() => account,
                    _ => return Err(unavailable(Some(1))),
                },
                Err(RefreshFailure::Unavailable { retry_after }) => {
                    // The provider is down: the current token is still good if it has not expired.
                    match account.tokens.expires_at {
                        Some(e) if e > now_ms() && account.tokens.access_token.is_some() => account,
                        _ => return Err(unavailable(retry_after)),
                    }
                }
                Err(RefreshFailure::Internal(cause)) => return Err(ServiceError::Internal(cause)),
            }
        };
        let value = self
            .inner
            .accounts
            .open_access_token(&account)?
            .ok_or_else(|| ServiceError::Internal("refreshed connection has no access token".into()))?;
        let missing_scopes = requested
            .iter()
            .filter(|s| !account.scopes.contains(s))
            .cloned()
            .collect();
        Ok(Vended::Active(ActiveCredential {
            auth_method: account.auth_method,
            value,
            expires_at: account.tokens.expires_at,
            scopes: account.scopes.clone(),
            missing_scopes,
            metadata: account.metadata.clone(),
            config: self.config_with_defaults(root, &account),
        }))
    }

    /// The connection's config snapshot with the provider's current defaults for unset
    /// non-secret fields (contract §3.7).
    fn config_with_defaults(&self, root: &DataIntegration, a: &ConnectedAccount) -> BTreeMap<String, String> {
        let mut config = a.config.clone();
        if let Some(p) = self.inner.catalog.for_root(root) {
            for f in &p.config {
                if let Some(d) = &f.default {
                    config.entry(f.key.clone()).or_insert_with(|| d.clone());
                }
            }
            config.retain(|k, _| p.config_field(k).is_some_and(|f| !f.secret));
        }
        config
    }

    /// Fresh = has an access token that does not expire within the margin.
    fn is_fresh(&self, a: &ConnectedAccount, now: Millis) -> bool {
        if a.tokens.access_token.is_none() {
            return false;
        }
        let Some(expires_at) = a.tokens.expires_at else {
            return true;
        };
        let max_margin = i64::try_from(self.inner.policy.max_margin.as_millis()).unwrap_or(i64::MAX);
        // The lifetime is known from the last refresh or code exchange; for imported tokens it
        // is not, and the full margin applies.
        let margin = match a.last_refreshed_at {
            Some(issued) => max_margin.min((expires_at - issued).max(0) / 2),
            None => max_margin,
        };
        expires_at - now > margin
    }

    async fn mark_dead_without_refresh_token(
        &self,
        root: &DataIntegration,
        a: &ConnectedAccount,
    ) -> Result<(), ServiceError> {
        let mut dead = a.clone();
        dead.state = AccountState::NeedsReauthorization;
        dead.state_reason = Some("access_token_expired".into());
        dead.updated_at = now_ms();
        let events = account_events(
            AccountChange::ReauthorizationNeeded,
            &dead,
            root.slug.as_str(),
            &Actor::System,
        );
        self.inner.store.update_connected_account(&dead, &events).await?;
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
    async fn refresh_single_flight(
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
            .store
            .connected_account(a.environment_id, a.id)
            .await
            .map_err(|e| RefreshFailure::Internal(e.to_string()))?
            .ok_or(RefreshFailure::NeedsReauthorization)
    }

    /// Refreshes under the database lease. With `wait`, waits (up to the policy's `wait`) for
    /// another holder to finish; without, leaves the connection to that holder.
    async fn refresh_across_processes(
        &self,
        root: &DataIntegration,
        seen: &ConnectedAccount,
        wait: bool,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let inner = &self.inner;
        let lease_ms = i64::try_from(inner.policy.lease.as_millis()).unwrap_or(60_000);
        let deadline = now_ms() + i64::try_from(inner.policy.wait.as_millis()).unwrap_or(20_000);
        let holder = format!("{}-{}", inner.instance, random_token(6));
        loop {
            let now = now_ms();
            let taken = inner
                .store
                .take_refresh_lease(seen.id, &holder, now, now + lease_ms)
                .await
                .map_err(|e| RefreshFailure::Internal(e.to_string()))?;
            if taken == Some(true) {
                inner.metrics.refresh_lease_takeover();
                tracing::info!(account.id = %seen.id, "took over a refresh lease whose holder stopped");
            }
            let taken = taken.is_some();
            let current = self.reread(seen).await?;
            if current.state == AccountState::NeedsReauthorization {
                if taken {
                    let _ = inner.store.release_refresh_lease(seen.id, &holder).await;
                }
                return Err(RefreshFailure::NeedsReauthorization);
            }
            if current.refresh_generation != seen.refresh_generation && self.is_fresh(&current, now_ms()) {
                // Someone else refreshed meanwhile.
                if taken {
                    let _ = inner.store.release_refresh_lease(seen.id, &holder).await;
                }
                return Ok(Arc::new(current));
            }
            if taken {
                return self.refresh_holding_lease(root, current, &holder).await;
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
        let internal = |e: String| RefreshFailure::Internal(e);
        let settings = match a.owner.organization_id.as_deref() {
            Some(org) if uses_organization_apps(root) => self
                .inner
                .store
                .organization_settings(root.id, org)
                .await
                .map_err(|e| internal(e.to_string()))?,
            _ => None,
        };
        if a.auth_method == AuthMethod::ClientCredentials {
            let provider = resolve_provider(root, settings.as_ref(), &a.config, self.inner.catalog)
                .map_err(|e| internal(e.to_string()))?;
            let app = stored_client_app(&self.inner.vault, a).map_err(|e| internal(e.to_string()))?;
            return Ok((provider, app));
        }
        resolve_oauth(
            root,
            settings.as_ref(),
            &a.config,
            self.inner.catalog,
            &self.inner.vault,
        )
        .map_err(|e| internal(e.to_string()))
    }

    async fn refresh_holding_lease(
        &self,
        root: &DataIntegration,
        current: ConnectedAccount,
        holder: &str,
    ) -> Result<Arc<ConnectedAccount>, RefreshFailure> {
        let inner = &self.inner;
        let release = || async {
            let _ = inner.store.release_refresh_lease(current.id, holder).await;
        };
        let minting = current.auth_method == AuthMethod::ClientCredentials;
        let refresh_token = match inner.accounts.open_refresh_token(&current) {
            Ok(Some(t)) => Some(t),
            Ok(None) if minting => None,
            Ok(None) => {
                release().await;
                return Err(RefreshFailure::NeedsReauthorization);
            }
            Err(e) => {
                release().await;
                return Err(RefreshFailure::Internal(e.to_string()));
            }
        };
        let (provider, app) = match self.provider_for(root, &current).await {
            Ok(v) => v,
            Err(e) => {
                release().await;
                return Err(e);
            }
        };
        let started = now_ms();
        let clock = std::time::Instant::now();
        let answer = match &refresh_token {
            Some(t) => inner.oauth.refresh(&provider, &app, t).await,
            None => {
                let scopes = match current.owner.organization_id.as_deref() {
                    Some(org) => inner
                        .organizations
                        .effective(root, Some(org))
                        .await
                        .ok()
                        .and_then(|e| e.scopes),
                    None => requested_scopes(root, inner.catalog),
                };
                inner
                    .oauth
                    .client_credentials(&provider, &app, &scopes.unwrap_or_default())
                    .await
            }
        };
        match answer {
            Ok(resp) => {
                inner
                    .metrics
                    .refresh(&provider.slug, RefreshOutcome::Success, clock.elapsed());
                let expires_at = resp.expires_in.map(|s| started + s * 1000);
                // Merge: providers that do not rotate send no refresh token; keep ours.
                let refresh = resp.refresh_token.clone().or(refresh_token);
                let tokens: TokenSet =
                    inner
                        .accounts
                        .seal_tokens(current.id, Some(&resp.access_token), refresh.as_ref(), expires_at);
                let scopes = resp.scopes.clone().unwrap_or_else(|| current.scopes.clone());
                let mut metadata = current.metadata.clone();
                metadata.extend(resp.metadata.clone());
                let metadata_json = serde_json::to_string(&metadata).unwrap_or_else(|_| "{}".into());
                let stored = inner
                    .store
                    .store_refreshed_tokens(
                        current.id,
                        holder,
                        current.refresh_generation,
                        &tokens,
                        &scopes,
                        &metadata_json,
                        started,
                    )
                    .await
                    .map_err(|e| RefreshFailure::Internal(e.to_string()))?;
                if !stored {
                    // Our lease expired and someone else refreshed: their tokens are the live ones.
                    tracing::error!(account.id = %current.id, "refresh result could not be stored: lease lost");
                    return self.reread(&current).await.map(Arc::new);
                }
                tracing::info!(account.id = %current.id, provider = %provider.slug, "token refreshed");
                let mut fresh = current;
                fresh.tokens = tokens;
                fresh.scopes = scopes;
                fresh.metadata = metadata;
                fresh.refresh_generation += 1;
                fresh.last_refreshed_at = Some(started);
                fresh.last_refresh_error = None;
                Ok(Arc::new(fresh))
            }
            Err(err) => {
                let code = err.code();
                // For client credentials the grant is the tenant's client: a rejected client is
                // as dead as a revoked refresh token.
                let dead = err.is_dead_grant() || (minting && err.is_rejected_client());
                if dead {
                    // Before declaring the grant dead: did another process refresh meanwhile?
                    let again = self.reread(&current).await?;
                    if again.refresh_generation != current.refresh_generation {
                        release().await;
                        return Ok(Arc::new(again));
                    }
                }
                let failures = current.last_refresh_error.as_ref().map_or(0, |e| e.failures) + 1;
                let now = now_ms();
                let record = RefreshError {
                    code: code.clone(),
                    at: now,
                    failures,
                    retry_at: (!dead).then(|| now + ms(refresh_backoff(failures))),
                };
                let outcome = if dead {
                    RefreshOutcome::Permanent
                } else {
                    RefreshOutcome::Transient
                };
                inner.metrics.refresh(&provider.slug, outcome, clock.elapsed());
                let events = if dead {
                    let mut snapshot = current.clone();
                    snapshot.state = AccountState::NeedsReauthorization;
                    snapshot.state_reason = Some(code.clone());
                    snapshot.updated_at = record.at;
                    account_events(
                        AccountChange::ReauthorizationNeeded,
                        &snapshot,
                        root.slug.as_str(),
                        &Actor::System,
                    )
                } else {
                    Vec::new()
                };
                let _ = inner
                    .store
                    .record_refresh_failure(current.id, holder, current.refresh_generation, &record, dead, &events)
                    .await;
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
    }
}
