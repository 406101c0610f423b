//! The objects Pipes keeps.

mod account;
mod authorization;
mod environment;
mod event_type;
mod integration;
mod organization;
mod webhook;

pub use account::{
    valid_external_id, AccountState, ConnectedAccount, ConnectionRole, Owner, RefreshError, StoredSecret, TokenSet,
};
pub use authorization::{Authorization, AuthorizationStatus, ConnectSession, ConnectionIntent};
pub use environment::{AllowList, ApiKey, Environment, EnvironmentName};
pub use event_type::EventType;
pub use integration::{
    AuthMethod, AuthenticateVia, CredentialsType, CustomProvider, CustomProviderDefinition, DataIntegration,
    IntegrationCredentials, IntegrationState, Ownership, TokenBodyContentType,
};
pub use organization::{
    Effective, EnvironmentSettings, Membership, MembershipMode, OrganizationApp, OrganizationSettings,
};
pub use webhook::{
    AttemptOutcome, Delivery, DeliveryAttempt, DeliveryState, DueDelivery, EndpointStatus, WebhookEndpoint,
};
