//! Services: the operations the API and the CLI perform, with their validation.

mod environments;
mod integrations;
mod patch;

pub use environments::{Environments, NewKey};
pub use integrations::{
    ApiKeyInput, CreateIntegration, CredentialsInput, CustomProviderInput, Integrations, UpdateIntegration,
};
pub use patch::Patch;
