//! Organizations: declared memberships and per-organization settings of integrations.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{ConnectedAccount, Membership, OrganizationSettings};
use crate::events::Event;
use crate::ids::{DataIntegrationId, DikId, EnvironmentId};

/// Memberships and organization settings.
#[async_trait]
pub trait OrganizationStore: Send + Sync + 'static {
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
}
