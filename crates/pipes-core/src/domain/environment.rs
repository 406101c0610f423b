use std::fmt;

use super::EnvironmentSettings;
use crate::ids::{ApiKeyId, ClientId, EnvironmentId};
use crate::time::Millis;

/// An environment's name: `sandbox`, `production`, `staging-eu`…
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// 1–63 characters of a-z, 0-9, `-`, `_`, starting with a letter or digit.
    pub fn parse(s: &str) -> Result<Self, String> {
        let b = s.as_bytes();
        let ok = !b.is_empty()
            && b.len() <= 63
            && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'_');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(format!(
                "'{s}' is not a valid environment name: use 1-63 characters of a-z, 0-9, '-' and '_'"
            ))
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EnvironmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// A tenant of Pipes. Everything the API shows belongs to exactly one environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    /// `env_…`
    pub id: EnvironmentId,
    /// Unique name.
    pub name: EnvironmentName,
    /// Production environments get `sk_live_` keys.
    pub production: bool,
    /// The public client id (`client_…`).
    pub client_id: ClientId,
    /// Creation time.
    pub created_at: Millis,
    /// Connection-model switches.
    pub settings: EnvironmentSettings,
}

/// A Pipes API key as stored: its hash and a display prefix, never the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_…`
    pub id: ApiKeyId,
    /// The environment the key opens.
    pub environment_id: EnvironmentId,
    /// The first characters of the key, for listings.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// Creation time.
    pub created_at: Millis,
    /// When it was revoked; revoked keys authenticate nothing.
    pub revoked_at: Option<Millis>,
}

/// The per-environment lists of what browsers may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllowList {
    /// Where a connection flow may send the browser back to (`return_to`).
    RedirectUris,
    /// The web origins whose pages may call the widget API (CORS).
    WebOrigins,
}

impl AllowList {
    /// What one entry is called, for messages.
    pub fn entry(self) -> &'static str {
        match self {
            Self::RedirectUris => "redirect URI",
            Self::WebOrigins => "web origin",
        }
    }
}
