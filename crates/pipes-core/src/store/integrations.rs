//! Data integrations (roots) and the custom providers they define.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{CustomProvider, DataIntegration, Ownership};
use crate::events::Event;
use crate::ids::{ConnectedAccountId, DataIntegrationId, EnvironmentId};
use crate::pagination::Scan;
use crate::slug::Slug;

/// Roots and custom providers.
#[async_trait]
pub trait IntegrationStore: Send + Sync + 'static {
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
    /// Every root of an environment of one ownership (for listings that are not paginated).
    async fn all_data_integrations(
        &self,
        env: EnvironmentId,
        ownership: Ownership,
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
}
