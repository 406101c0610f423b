//! The objects Pipes keeps.

mod environment;
mod integration;

pub use environment::{ApiKey, Environment, EnvironmentName};
pub use integration::{
    AuthMethod, AuthenticateVia, CustomProvider, CustomProviderDefinition, DataIntegration,
    IntegrationCredentials, CredentialsType, IntegrationState, Ownership, TokenBodyContentType,
};
