//! The objects Pipes keeps.

mod environment;
mod integration;

pub use environment::{ApiKey, Environment, EnvironmentName};
pub use integration::{
    AuthMethod, AuthenticateVia, CredentialsType, CustomProvider, CustomProviderDefinition,
    DataIntegration, IntegrationCredentials, IntegrationState, Ownership, TokenBodyContentType,
};
