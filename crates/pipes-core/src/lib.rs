//! The Pipes domain. No HTTP framework and no SQL live here: the server and the store depend
//! on this crate, never the other way round.
#![forbid(unsafe_code)]

pub mod api_keys;
pub mod catalog;
pub mod domain;
pub mod egress;
pub mod error;
pub mod events;
pub mod fields;
pub mod hex;
pub mod ids;
pub mod metrics;
pub mod oauth;
pub mod pagination;
pub mod secret;
pub mod services;
pub mod slug;
pub mod store;
pub mod time;
pub mod vault;
pub mod webhooks;

pub use error::{FieldError, ServiceError};
