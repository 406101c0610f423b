//! The storage boundary: one small trait per aggregate, implemented for SQLite and PostgreSQL
//! in `pipes-store` and checked by one contract suite on both. [`Store`] is their sum; a
//! service asks for the traits it uses.
//!
//! Adding a store method touches three files: the sub-trait here, its SQL file in
//! `pipes-store/src/sql/` and its case in `pipes-store/tests/contract/`.

mod accounts;
mod authorizations;
mod environments;
mod events;
mod idempotency;
mod integrations;
mod maintenance;
mod organizations;
mod refresh;
mod webhooks;

pub use accounts::{AccountStore, VendRead};
pub use authorizations::AuthorizationStore;
pub use environments::EnvironmentStore;
pub use events::{EventFilter, EventStore, StoredEvent};
pub use idempotency::{IdempotencyBegin, IdempotencyClaim, IdempotencyStore};
pub use integrations::IntegrationStore;
pub use maintenance::{MaintenanceStore, SealedRow};
pub use organizations::OrganizationStore;
pub use refresh::{KeepAlive, RefreshStore};
pub use webhooks::WebhookStore;

/// Storage failures.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint refused the write.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write would make a user the establishing member of an organization's connection,
    /// and that user is not an active member (checked inside the write's transaction).
    #[error("the establishing user is not an active member of the organization")]
    NotMember,
    /// The database cannot take work now but may soon: connection lost or refused, server
    /// restarting, disk full, pool exhausted.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else: corrupt rows, a failed statement.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// Declares `Store` as the sum of the aggregates' traits, implemented for any type that
/// implements all of them.
macro_rules! sum_of {
    ($first:ident $(+ $rest:ident)*) => {
        /// Everything Pipes persists: the sum of the aggregates' traits. Implementations must be
        /// safe to share between tasks; any type that implements every sub-trait is a `Store`.
        pub trait Store: $first $(+ $rest)* {}

        impl<T: $first $(+ $rest)*> Store for T {}
    };
}

sum_of!(
    EnvironmentStore
        + OrganizationStore
        + IntegrationStore
        + AccountStore
        + RefreshStore
        + AuthorizationStore
        + EventStore
        + WebhookStore
        + IdempotencyStore
        + MaintenanceStore
);
