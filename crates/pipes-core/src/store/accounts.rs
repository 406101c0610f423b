//! Connected accounts: the credentials of owners, and the vending read.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{ConnectedAccount, DataIntegration, Environment, Ownership};
use crate::events::Event;
use crate::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use crate::slug::Slug;

/// What the vending read finds: the key's environment, and the root with the owner's
/// compatibility connection when the root exists.
pub type VendRead = (Environment, Option<(DataIntegration, Option<ConnectedAccount>)>);

/// Connected accounts.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// A counter bumped after every committed write through this store that can change what
    /// vending reads; caches compare it to know their entries are still current in this process.
    fn write_epoch(&self) -> u64;

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
    /// The root of a slug and ownership with the owner's compatibility connection, in one read.
    /// `None` when the root does not exist.
    async fn root_with_compatibility_account(
        &self,
        env: EnvironmentId,
        slug: &Slug,
        ownership: Ownership,
        owner_key: &str,
    ) -> StoreResult<Option<(DataIntegration, Option<ConnectedAccount>)>>;
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
}
