//! Webhook endpoints, their deliveries and attempts.

use async_trait::async_trait;

use super::StoreResult;
use crate::domain::{AttemptOutcome, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, WebhookEndpoint};
use crate::ids::{EnvironmentId, EventId, WebhookEndpointId};
use crate::pagination::Scan;

/// Webhook endpoints and delivery.
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    /// Inserts an endpoint; `Conflict` when its URL is registered in the environment.
    async fn insert_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// An endpoint by id within an environment.
    async fn webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId)
        -> StoreResult<Option<WebhookEndpoint>>;
    /// A page of an environment's endpoints per [`Scan`].
    async fn scan_webhook_endpoints(&self, env: EnvironmentId, scan: &Scan) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Every endpoint of every environment (operator listing).
    async fn all_webhook_endpoints(&self) -> StoreResult<Vec<WebhookEndpoint>>;
    /// Writes an endpoint's URL, status and events; `Conflict` on a registered URL.
    async fn update_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> StoreResult<()>;
    /// Deletes an endpoint and its deliveries; `false` when it did not exist.
    async fn delete_webhook_endpoint(&self, env: EnvironmentId, id: WebhookEndpointId) -> StoreResult<bool>;

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
}
