//! The storage boundary: one narrow trait, implemented for SQLite and PostgreSQL in
//! `pipes-store` and checked by one contract suite on both.

use async_trait::async_trait;

use crate::domain::{
    ApiKey, AttemptOutcome, Authorization, AuthorizationStatus, ConnectedAccount, CustomProvider, DataIntegration,
    Delivery, DeliveryAttempt, DeliveryState, DueDelivery, Environment, EnvironmentName, EnvironmentSettings,
    Membership, OrganizationSettings, Ownership, RefreshError, TokenSet, WebhookEndpoint,
};
use crate::events::{Event, EventType};
use crate::ids::{ApiKeyId, ConnectedAccountId, DataIntegrationId, DikId, EnvironmentId, EventId, WebhookEndpointId};
use crate::pagination::Scan;
use crate::slug::Slug;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write would make a user the establishing member of an organization's connection,
    /// and that user is not an active member (checked inside the write's transaction).
    #[error("the establishing user is not an active member of the organization")]
    NotMember,
    /// Anything else: connection loss, corrupt rows, I/O.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// A column that holds vault-sealed values, for key rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedColumn {
    /// `data_integrations.client_secret`
    IntegrationClientSecret,
    /// `webhook_endpoints.secret`
    WebhookSecret,
    /// `connected_accounts.access_token`
    AccountAccessToken,
    /// `connected_accounts.refresh_token`
    AccountRefreshToken,
    /// `connected_accounts.secret`
    AccountSecret,
    /// `organization_settings.client_secret`
    OrganizationClientSecret,
}

impl SealedColumn {
    /// Every sealed column, for `pipes vault rotate`.
    pub const ALL: &'static [SealedColumn] = &[
        SealedColumn::IntegrationClientSecret,
        SealedColumn::WebhookSecret,
        SealedColumn::AccountAccessToken,
        SealedColumn::AccountRefreshToken,
        SealedColumn::AccountSecret,
        SealedColumn::OrganizationClientSecret,
    ];

    /// The vault purpose (associated data) of values in this column.
    pub fn purpose(self) -> &'static str {
        match self {
            Self::IntegrationClientSecret => "data_integrations.client_secret",
            Self::WebhookSecret => "webhook_endpoints.secret",
            Self::AccountAccessToken => "connected_accounts.access_token",
            Self::AccountRefreshToken => "connected_accounts.refresh_token",
            Self::AccountSecret => "connected_accounts.secret",
            Self::OrganizationClientSecret => "organization_settings.client_secret",
        }
    }
}

/// One sealed value and the id of its row.
#[derive(Debug, Clone)]
pub struct SealedRow {
    /// Row id (the vault's associated data).
    pub id: String,
    /// The ciphertext.
    pub sealed: Vec<u8>,
}

/// What [`Store::idempotency_begin`] found for a key.
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

/// What the vending read finds: the key's environment, and the root with the owner's
/// compatibility connection when the root exists.
pub type VendRead = (Environment, Option<(DataIntegration, Option<ConnectedAccount>)>);

/// Everything Pipes persists. Implementations must be safe to share between tasks.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A counter bumped after every committed write through this store that can change what
    /// vending reads; caches compare it to know their entries are still current in this process.
    fn write_epoch(&self) -> u64;

    /// Cheap liveness check for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    // --- environments and keys ---

    /// Inserts an environment; `Conflict` when the name is taken.
    async fn insert_environment(&self, env: &Environment) -> StoreResult<()>;
    /// An environment by id.
    async fn environment(&self, id: EnvironmentId) -> StoreResult<Option<Environment>>;
    /// An environment by name.
    async fn environment_by_name(&self, name: &EnvironmentName) -> StoreResult<Option<Environment>>;
    /// Every environment, oldest first.
    async fn list_environments(&self) -> StoreResult<Vec<Environment>>;
    /// Inserts an API key record.
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The environment a non-revoked key hash opens: the authentication read.
    async fn environment_for_key_hash(&self, hash: &str) -> StoreResult<Option<Environment>>;
    /// An environment's keys, revoked ones included, oldest first.
    async fn list_api_keys(&self, env: EnvironmentId) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key; `false` when no such unrevoked key exists.
    async fn revoke_api_key(&self, id: ApiKeyId, at: i64) -> StoreResult<bool>;
    /// Replaces an environment's connection settings; `false` when it does not exist.
    async fn update_environment_settings(
        &self,
        env: EnvironmentId,
        settings: &EnvironmentSettings,
    ) -> StoreResult<bool>;

    // --- organizations ---

    /// A declared membership.
    async fn membership(&self, env: EnvironmentId, organization: &str, user: &str) -> StoreResult<Option<Membership>>;
    /// Whether any membership of the organization was declared.
    async fn organization_known(&self, env: EnvironmentId, organization: &str) -> StoreResult<bool>;
    /// The declared memberships of an organization, by user id.
    async fn memberships(&self, env: EnvironmentId, organization: &str) -> StoreResult<Vec<Membership>>;
    /// Writes a membership and, in the same transaction, the connections its change cleared
    /// with their events. `Conflict` when one of those connections changed since it was read.
    async fn put_membership(&self, m: &Membership, cleared: &[ConnectedAccount], events: &[Event]) -> StoreResult<()>;
    /// The organization-owned connections a member established in an organization.
    async fn accounts_established_by(
        &self,
        env: EnvironmentId,
        organization: &str,
        user: &str,
    ) -> StoreResult<Vec<ConnectedAccount>>;
    /// An organization's override of a root.
    async fn organization_settings(
        &self,
        root: DataIntegrationId,
        organization: &str,
    ) -> StoreResult<Option<OrganizationSettings>>;
    /// An override by its redirect key (the provider callback).
    async fn organization_settings_by_id(&self, id: DikId) -> StoreResult<Option<OrganizationSettings>>;
    /// Every override of an organization.
    async fn organization_settings_of(
        &self,
        env: EnvironmentId,
        organization: &str,
    ) -> StoreResult<Vec<OrganizationSettings>>;
    /// Inserts an override, or replaces the one of its root and organization when `overwrite`
    /// (otherwise an existing one is kept).
    async fn put_organization_settings(&self, s: &OrganizationSettings, overwrite: bool) -> StoreResult<()>;

    // --- redirect URIs ---

    /// Registers a redirect URI; `false` when it was already registered.
    async fn add_redirect_uri(&self, env: EnvironmentId, uri: &str, at: i64) -> StoreResult<bool>;
    /// The registered redirect URIs, in registration order.
    async fn list_redirect_uris(&self, env: EnvironmentId) -> StoreResult<Vec<String>>;
    /// Removes a redirect URI; `false` when it was not registered.
    async fn remove_redirect_uri(&self, env: EnvironmentId, uri: &str) -> StoreResult<bool>;

    // --- custom providers and data integrations ---

    /// The custom provider of a slug in an environment.
    async fn custom_provider(&self, env: EnvironmentId, slug: &Slug) -> StoreResult<Option<CustomProvider>>;
    /// Inserts a root, and its new custom provider when given, in one transaction.
    /// `Conflict` when a root with this slug and ownership exists.
    async fn insert_data_integration(
        &self,
        root: &DataIntegration,
        new_custom_provider: Option<&CustomProvider>,
    ) -> StoreResult<()>;
    /// The root of a slug and ownership.
    async fn data_integration(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
    ) -> StoreResult<Option<DataIntegration>>;
    /// Whether a root with this id exists in the environment (cursor validation).
    async fn data_integration_exists(&self, env: EnvironmentId, id: DataIntegrationId) -> StoreResult<bool>;
    /// A page of roots per [`Scan`], optionally of one ownership.
    async fn scan_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Option<Ownership>,
        scan: &Scan,
    ) -> StoreResult<Vec<DataIntegration>>;
    /// Writes a changed root, and its changed custom provider definition, in one transaction.
    async fn update_data_integration(&self, root: &DataIntegration) -> StoreResult<()>;
    /// Deletes a root, its connections (and its custom provider once no root references it),
    /// appending `events`, in one transaction; `false` when it did not exist. `Conflict` when
    /// its connections are no longer exactly `accounts` (the events would be wrong: re-read).
    async fn delete_data_integration(
        &self,
        env: EnvironmentId,
        id: DataIntegrationId,
        accounts: &[ConnectedAccountId],
        events: &[Event],
    ) -> StoreResult<bool>;

    // --- connected accounts ---

    /// The root of a slug and ownership with the owner's compatibility connection, in one read:
    /// the vending path. `None` when the root does not exist.
    async fn root_with_compatibility_account(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Option<(DataIntegration, Option<ConnectedAccount>)>>;
    /// The whole vending read in one query: the environment a non-revoked key (by hash) opens,
    /// its root of `slug` and `ownership`, and that root's compatibility connection of the owner.
    /// `None` when the key opens nothing.
    async fn vend_read(
        &self,
        key_hash: &str,
        slug: &Slug,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Option<VendRead>>;
    /// Every connection of an owner shape on a root (of every owner when `None`), oldest first.
    async fn accounts_of_owner(
        &self,
        root: DataIntegrationId,
        owner_key: Option<&str>,
    ) -> StoreResult<Vec<ConnectedAccount>>;
    /// Every connection of an owner shape across an environment's roots of one ownership.
    async fn accounts_of_owner_in_env(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Vec<ConnectedAccount>>;
    /// Every root of an environment (for listings that are not paginated).
    async fn all_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
    ) -> StoreResult<Vec<DataIntegration>>;
    /// A connection by id within an environment.
    async fn connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
    ) -> StoreResult<Option<ConnectedAccount>>;
    /// Inserts a connection and appends `events`, in one transaction; `Conflict` when the
    /// owner's compatibility slot is taken.
    async fn insert_connected_account(&self, account: &ConnectedAccount, events: &[Event]) -> StoreResult<()>;
    /// Writes a connection's mutable fields (labels, state, scopes, config, metadata, tokens)
    /// and appends `events`, in one transaction.
    async fn update_connected_account(&self, account: &ConnectedAccount, events: &[Event]) -> StoreResult<()>;
    /// Deletes a connection and its tokens and appends `events`, in one transaction; `false`
    /// (and no events) when it did not exist.
    async fn delete_connected_account(
        &self,
        env: EnvironmentId,
        id: ConnectedAccountId,
        events: &[Event],
    ) -> StoreResult<bool>;
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
    /// min(`ahead_ms`, half the token's lifetime) or idle past their provider's keep-alive.
    async fn accounts_due_for_refresh(
        &self,
        now: i64,
        ahead_ms: i64,
        keepalive: &[KeepAlive],
        limit: u32,
    ) -> StoreResult<Vec<(DataIntegration, ConnectedAccount)>>;
    /// How many connections [`Store::accounts_due_for_refresh`] would return without a limit.
    async fn count_due_for_refresh(&self, now: i64, ahead_ms: i64, keepalive: &[KeepAlive]) -> StoreResult<i64>;

    // --- authorizations ---

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

    // --- events ---

    /// Appends events on their own (a failed attempt saves nothing else), with their
    /// deliveries, in one transaction.
    async fn append_events(&self, events: &[Event]) -> StoreResult<()>;
    /// A page of an environment's events per [`Scan`] and filter.
    async fn scan_events(&self, env: EnvironmentId, filter: &EventFilter, scan: &Scan)
        -> StoreResult<Vec<StoredEvent>>;
    /// Whether an event exists in the environment (cursor validation).
    async fn event_exists(&self, env: EnvironmentId, id: EventId) -> StoreResult<bool>;
    /// Deletes up to `limit` events created before `before`, with their deliveries; returns how many.
    async fn purge_events(&self, before: i64, limit: u32) -> StoreResult<u64>;
    /// Notified after every committed write that appended events in this process.
    fn events_appended(&self) -> std::sync::Arc<tokio::sync::Notify>;

    // --- webhook endpoints ---

    /// Inserts an endpoint; `Conflict` when its URL is registered in the environment.
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// An endpoint by id within an environment.
    async fn webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId)
        -> StoreResult<Option<WebhookEndpoint>>;
    /// A page of an environment's endpoints per [`Scan`].
    async fn scan_webhook_endpoints(&self, env: EnvironmentId, scan: &Scan) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Writes an endpoint's URL, status and events; `Conflict` on a registered URL.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// Deletes an endpoint and its deliveries; `false` when it did not exist.
    async fn delete_webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId) -> StoreResult<bool>;

    // --- webhook delivery ---

    /// Up to `limit` enabled endpoints with pending deliveries, not backing off and not leased.
    async fn endpoints_due(&self, now: i64, limit: u32) -> StoreResult<Vec<WebhookEndpointId>>;
    /// Takes an endpoint's delivery lease if nobody holds an unexpired one; `Some(true)` when it
    /// took over a lease that had expired (its holder died), `None` when it is held.
    async fn take_endpoint_lease(
        &self,
        id: WebhookEndpointId,
        holder: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<bool>>;
    /// Gives the lease back (only if `holder` still holds it).
    async fn release_endpoint_lease(&self, id: WebhookEndpointId, holder: &str) -> StoreResult<()>;
    /// An endpoint by id alone: the delivery worker's read (it serves every environment).
    async fn webhook_endpoint_by_id(&self, id: WebhookEndpointId) -> StoreResult<Option<WebhookEndpoint>>;
    /// An endpoint's oldest pending deliveries, in event order, with their bodies.
    async fn due_deliveries(&self, id: WebhookEndpointId, limit: u32) -> StoreResult<Vec<DueDelivery>>;
    /// Records attempts to one endpoint and their outcomes, in order, and extends the lease to
    /// `lease_until`, in one transaction; `false` (and nothing written) when `holder` lost the
    /// lease. The endpoint's schedule follows the last outcome.
    async fn record_delivery_attempts(
        &self,
        endpoint: WebhookEndpointId,
        holder: &str,
        attempts: &[(EventId, DeliveryAttempt, AttemptOutcome)],
        lease_until: i64,
    ) -> StoreResult<bool>;
    /// An endpoint's deliveries, newest first, optionally of one state.
    async fn list_deliveries(
        &self,
        endpoint: WebhookEndpointId,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// The attempts of one delivery, in order.
    async fn delivery_attempts(&self, endpoint: WebhookEndpointId, event: EventId)
        -> StoreResult<Vec<DeliveryAttempt>>;
    /// Makes a delivery pending again and the endpoint due now; `false` when there is no such
    /// delivery. A delivery for an event the endpoint never received is created.
    async fn redeliver(&self, endpoint: WebhookEndpointId, event: EventId, now: i64) -> StoreResult<bool>;
    /// Every endpoint of every environment (operator listing).
    async fn all_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;

    /// Deletes authorizations that expired before `before`; returns how many.
    async fn purge_authorizations(&self, before: i64) -> StoreResult<u64>;

    // --- idempotency keys ---

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

    // --- vault rotation ---

    /// Up to `limit` sealed values of a column with row id greater than `after`, by id.
    async fn sealed_values(&self, column: SealedColumn, after: Option<&str>, limit: u32)
        -> StoreResult<Vec<SealedRow>>;
    /// How many sealed values a column holds.
    async fn count_sealed(&self, column: SealedColumn) -> StoreResult<u64>;
    /// Replaces a sealed value only if it still equals `old` (a concurrent write wins).
    async fn replace_sealed(&self, column: SealedColumn, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool>;
}

/// `GET /events` filters.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only these types; empty = all.
    pub types: Vec<EventType>,
    /// Created at or after.
    pub range_start: Option<i64>,
    /// Created strictly before.
    pub range_end: Option<i64>,
    /// `data.organization_id` equals.
    pub organization_id: Option<String>,
}

/// An event as stored: its id and exact JSON.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// `event_…`
    pub id: String,
    /// The envelope's compact JSON.
    pub body: String,
}

/// A built-in provider whose idle grants must be refreshed: connections of its roots last
/// refreshed (or made) before `idle_before` are due.
#[derive(Debug, Clone)]
pub struct KeepAlive {
    /// The built-in provider's slug.
    pub slug: String,
    /// The cutoff.
    pub idle_before: i64,
}
