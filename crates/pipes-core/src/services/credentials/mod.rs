//! Vending: a fresh credential in one call. A fresh token costs one indexed read and no
//! write (and, within `cache_ttl`, often not even that: [`cache`]). A token inside the refresh
//! margin is refreshed single-flight ([`refresh`]).

mod cache;
mod refresh;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, Shared};

pub use refresh::{refresh_backoff, AheadOutcome};

use self::cache::{VendCache, VendKey};
use self::refresh::RefreshFailure;
use super::selection::{select, OwnerChoice, Selector};
use super::Deps;
use crate::domain::{AccountState, AuthMethod, ConnectedAccount, DataIntegration, Environment, Ownership};
use crate::error::ServiceError;
use crate::ids::ConnectedAccountId;
use crate::metrics::Metrics;
use crate::oauth::random_token;
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::time::{millis, now_ms, Millis};

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

type Flight = Shared<BoxFuture<'static, Result<Arc<ConnectedAccount>, RefreshFailure>>>;

struct Inner {
    deps: Deps,
    policy: RefreshPolicy,
    metrics: Arc<Metrics>,
    /// This process's identity as a lease holder.
    instance: String,
    flights: Mutex<HashMap<ConnectedAccountId, Flight>>,
    cache: VendCache,
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
    pub fn new(deps: Deps, policy: RefreshPolicy, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::new(Inner {
                deps,
                policy,
                metrics,
                instance: format!("pipes-{}", random_token(9)),
                flights: Mutex::new(HashMap::new()),
                cache: VendCache::new(policy.cache_ttl),
            }),
        }
    }

    /// Whether a connection's token can be handed out without a refresh now.
    fn is_fresh(&self, a: &ConnectedAccount) -> bool {
        a.is_fresh(now_ms(), millis(self.inner.policy.max_margin))
    }

    /// `POST /data-integrations/{slug}/token` (`oauth_only`) and `/credentials` for an
    /// authenticated environment.
    pub async fn vend(
        &self,
        env: &Environment,
        slug: &Slug,
        choice: &OwnerChoice,
        selector: &Selector,
        oauth_only: bool,
    ) -> Result<Vended, ServiceError> {
        let (root, account) = select(self.inner.deps.store.as_ref(), env, slug, &choice.owner, selector).await?;
        self.inner.deps.organizations.check_acting_member(env, choice).await?;
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
                self.inner.deps.organizations.effective(root, org).await?.scopes
            }
            _ => self.inner.deps.catalog.requested_scopes(root),
        };
        Ok(requested.unwrap_or_default().into())
    }

    /// Like [`Credentials::vend`] from the presented API key: a selector-free call (the common
    /// case) authenticates, finds the root and the connection in one indexed read. `None` when
    /// the key opens nothing.
    pub async fn vend_with_key(
        &self,
        presented_key: &str,
        slug: &Slug,
        choice: &OwnerChoice,
        selector: &Selector,
        oauth_only: bool,
    ) -> Result<Option<Vended>, ServiceError> {
        let Some(hash) = crate::api_keys::lookup_hash(presented_key) else {
            return Ok(None);
        };
        // Selectors need more than one read.
        if selector.connected_account_id.is_some() || selector.supports_multiple_connections {
            let Some(env) = self.inner.deps.store.environment_for_key_hash(&hash).await? else {
                return Ok(None);
            };
            return self.vend(&env, slug, choice, selector, oauth_only).await.map(Some);
        }
        let owner_key = choice.owner.key();
        let acting = match (choice.owner.ownership, choice.acting_user.as_deref()) {
            (Ownership::Organization, Some(user)) => format!("{owner_key}\u{1f}{user}"),
            _ => owner_key.clone(),
        };
        let cache_key: VendKey = (hash, slug.to_string(), choice.owner.ownership.as_str(), acting);
        // A token inside its refresh margin goes through the refresh path, not the cache.
        let hit = self.inner.cache.get(&cache_key, self.inner.deps.store.write_epoch());
        if let Some(hit) = hit.filter(|hit| self.is_fresh(&hit.account)) {
            return self
                .vend_selected(&hit.root, Some(hit.account.clone()), oauth_only, &hit.requested)
                .await
                .map(Some);
        }
        // The epoch is taken before reading: a write that commits meanwhile invalidates this read
        // (and the membership and settings reads that follow it).
        let epoch = self.inner.deps.store.write_epoch();
        let found = self
            .inner
            .deps
            .store
            .vend_read(&cache_key.0, slug, choice.owner.ownership, &owner_key)
            .await?;
        let Some((env, root_and_account)) = found else {
            return Ok(None);
        };
        let (root, account) = root_and_account.ok_or_else(super::selection::root_not_found)?;
        self.inner.deps.organizations.check_acting_member(&env, choice).await?;
        let requested = self.requested(&root, account.as_ref()).await?;
        if let Some(a) = account
            .as_ref()
            .filter(|a| a.state == AccountState::Connected && self.is_fresh(a))
        {
            self.inner.cache.put(cache_key, epoch, &root, a, &requested);
        }
        self.vend_selected(&root, account.map(Arc::new), oauth_only, &requested)
            .await
            .map(Some)
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
            let value = account
                .stored_secret(&self.inner.deps.vault)?
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
        let account = if self.is_fresh(&account) {
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
        let value = account
            .access_token(&self.inner.deps.vault)?
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
        if let Some(p) = self.inner.deps.catalog.for_root(root) {
            for f in &p.config {
                if let Some(d) = &f.default {
                    config.entry(f.key.clone()).or_insert_with(|| d.clone());
                }
            }
            config.retain(|k, _| p.config_field(k).is_some_and(|f| !f.secret));
        }
        config
    }
}
