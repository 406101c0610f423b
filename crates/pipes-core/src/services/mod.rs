//! Services: the operations the API and the CLI perform, with their validation.

mod accounts;
mod connect;
mod credentials;
mod environments;
mod events;
mod integrations;
mod organizations;
mod patch;
mod resolve;
mod rotation;
mod selection;
mod stored;
mod widget_tokens;

mod deps;

pub use accounts::{Accounts, ImportAccount, Listing, PlainTokens, ProviderListing, UpdateAccount};
pub use connect::{
    append_query, code_challenge, connection_intent, constant_time_eq, display_name, Authorize, AuthorizeOutcome,
    CallbackQuery, ConfirmScreen, Connect, Ending, FinishRequest, NewConnectSession, PageOutcome, SessionLink,
    CONNECT_PAGE,
};
pub use credentials::{refresh_backoff, ActiveCredential, AheadOutcome, Credentials, RefreshPolicy, Vended};
pub use deps::Deps;
pub use environments::{Environments, NewKey};
pub use events::{EventQuery, Events};
pub use integrations::{
    ApiKeyInput, CreateIntegration, CredentialsInput, CustomProviderInput, Integrations, UpdateIntegration,
};
pub use organizations::{
    organization_redirect_uri, Configuration, ConfigureIntegration, Organizations, MEMBERSHIP_ENDED,
};
pub use patch::Patch;
pub use resolve::{provider_name, resolve_oauth, ResolveError};
pub use rotation::{rotate_vault, RotationProgress, RotationReport};
pub use selection::{
    account_not_found, root_not_found, select, AccountRef, Intent, OwnerChoice, OwnerInput, Selector, Warning,
};
pub use stored::{StoreCredential, StoredCredentials, TenantSecret};
pub use widget_tokens::{
    sign_token, verify_token, Audience, ClientTokenRequest, TokenClaims, TokenError, WidgetTokenRequest, WidgetTokens,
    WIDGET_SCOPES, WIDGET_TOKEN_TTL_SECONDS,
};
