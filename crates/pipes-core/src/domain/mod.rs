//! The objects Pipes keeps.

mod account;
mod authorization;
mod environment;
mod integration;

pub use account::{valid_external_id, AccountState, ConnectedAccount, ConnectionRole, Owner, RefreshError, TokenSet};
pub use authorization::{Authorization, AuthorizationStatus, ConnectionIntent};
pub use environment::{ApiKey, Environment, EnvironmentName};
pub use integration::{
    AuthMethod, AuthenticateVia, CredentialsType, CustomProvider, CustomProviderDefinition, DataIntegration,
    IntegrationCredentials, IntegrationState, Ownership, TokenBodyContentType,
};
