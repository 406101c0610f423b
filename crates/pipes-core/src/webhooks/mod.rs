//! Webhooks, the one place for them: endpoints and deliveries (their types live with the other
//! aggregates' in `domain::webhook` and are re-exported here), the API's operations on endpoints
//! ([`Webhooks`]), signing ([`signature_header`]) and when a failed delivery is retried or given
//! up ([`DeliveryPolicy`]). Which endpoints an event goes to is a join in the
//! store (`webhook_subscriptions`), written in the transaction that appends the event; the
//! server keeps only the delivery loop and the HTTP call (`pipes-server/src/jobs/delivery.rs`).

mod policy;
mod service;
mod signing;

pub use crate::domain::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, EndpointStatus, WebhookEndpoint,
};
pub use policy::DeliveryPolicy;
pub use service::{check_endpoint_url, CreateWebhookEndpoint, OpenedEndpoint, UpdateWebhookEndpoint, Webhooks};
pub use signing::{signature_header, SIGNATURE_HEADER};
