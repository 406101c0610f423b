//! Identifiers: a type prefix plus a ULID, so they sort by creation time and one kind of id
//! cannot be passed where another is expected.

use std::fmt;
use std::str::FromStr;

use std::sync::Mutex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use ulid::{Generator, Ulid};

/// ULIDs minted in one millisecond by `Ulid::new()` are in random order; lists page by id and
/// promise creation order, so ids come from one monotonic generator per process.
fn next_ulid() -> Ulid {
    static GENERATOR: Mutex<Option<Generator>> = Mutex::new(None);
    let mut guard = GENERATOR.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    guard
        .get_or_insert_with(Generator::new)
        .generate()
        .unwrap_or_else(|_| Ulid::new())
}

/// A string that is not an id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid {kind} id")]
pub struct InvalidId {
    /// The prefix that was expected.
    pub kind: &'static str,
}

macro_rules! prefixed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Ulid);

        impl $name {
            /// The textual prefix of this kind of id.
            pub const PREFIX: &'static str = $prefix;

            /// A new id for an object created now.
            #[allow(clippy::new_without_default)]
            pub fn new() -> Self {
                Self(next_ulid())
            }

            /// Parses `prefix_ULID`; anything else is rejected.
            pub fn parse(s: &str) -> Result<Self, InvalidId> {
                s.strip_prefix($prefix)
                    .filter(|rest| rest.len() == 26)
                    .and_then(|rest| Ulid::from_string(rest).ok())
                    .map(Self)
                    .ok_or(InvalidId { kind: $prefix })
            }

            /// Milliseconds since the Unix epoch at which the id was minted.
            pub fn timestamp_ms(&self) -> u64 {
                self.0.timestamp_ms()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}{}", $prefix, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

prefixed_id!(
    /// An environment (a tenant: `sandbox`, `production`, …).
    EnvironmentId, "env_"
);
prefixed_id!(
    /// A Pipes API key (the record, not the secret).
    ApiKeyId, "key_"
);
prefixed_id!(
    /// The public client id of an environment.
    ClientId, "client_"
);
prefixed_id!(
    /// A data integration ("root").
    DataIntegrationId, "data_integration_"
);
prefixed_id!(
    /// The redirect key of an integration's OAuth app; appears only inside redirect URIs.
    DikId, "dik_"
);
prefixed_id!(
    /// A custom provider definition, shared by the roots of one custom slug.
    CustomProviderId, "custom_provider_"
);
prefixed_id!(
    /// A connected account ("installation").
    ConnectedAccountId, "data_installation_"
);
prefixed_id!(
    /// The id of one HTTP request, echoed as `X-Request-ID`.
    RequestId, "req_"
);
prefixed_id!(
    /// An event (`GET /events`, webhook bodies).
    EventId, "event_"
);
prefixed_id!(
    /// A webhook endpoint.
    WebhookEndpointId, "we_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_other_prefixes() {
        let id = DataIntegrationId::new();
        let text = id.to_string();
        assert!(text.starts_with("data_integration_"));
        assert_eq!(DataIntegrationId::parse(&text), Ok(id));
        assert!(EnvironmentId::parse(&text).is_err());
        assert!(DataIntegrationId::parse("data_integration_").is_err());
        assert!(DataIntegrationId::parse("data_integration_01EHZNVPK3SFK441A1RGBFSHR!").is_err());
    }

    #[test]
    fn ids_sort_by_creation_even_within_one_millisecond() {
        let ids: Vec<String> = (0..1000).map(|_| DikId::new().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
