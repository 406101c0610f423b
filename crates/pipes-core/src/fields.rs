//! Request fields parsed into their types. The HTTP edge calls these while it turns a body into
//! a command, so that a service receives a [`Label`], a timestamp or an [`AccountState`], never
//! the text that was sent. Each failure is the contract's field error for that field.

use crate::domain::{AccountState, AuthMethod, Ownership};
use crate::error::ServiceError;
use crate::services::Patch;
use crate::time::{parse_rfc3339, Millis};

/// A connection's label (`account_display_name`, `account_identifier`): at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label(String);

impl Label {
    /// The longest label, in characters.
    pub const MAX_CHARS: usize = 255;

    /// Checks a label sent as `field`.
    pub fn parse(field: &str, raw: String) -> Result<Self, ServiceError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ServiceError::invalid_field(
                field,
                "too_long",
                format!("{field} must be at most {} characters.", Self::MAX_CHARS),
            ));
        }
        Ok(Self(raw))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The two labels a connection carries, as a partial update.
#[derive(Debug, Clone, Default)]
pub struct Labels {
    /// `account_display_name`.
    pub display_name: Patch<Label>,
    /// `account_identifier`.
    pub identifier: Patch<Label>,
}

impl Labels {
    /// Checks both labels as sent.
    pub fn parse(display_name: Patch<String>, identifier: Patch<String>) -> Result<Self, ServiceError> {
        Ok(Self {
            display_name: display_name.try_map(|v| Label::parse("account_display_name", v))?,
            identifier: identifier.try_map(|v| Label::parse("account_identifier", v))?,
        })
    }

    /// Applies both to a connection's current labels.
    pub fn apply(self, display_name: &mut Option<String>, identifier: &mut Option<String>) {
        *display_name = self.display_name.map(Label::into_string).apply(display_name.take());
        *identifier = self.identifier.map(Label::into_string).apply(identifier.take());
    }

    /// Whether a display name was set (it may now collide with another connection's).
    pub fn sets_display_name(&self) -> bool {
        matches!(self.display_name, Patch::Value(_))
    }
}

/// An RFC 3339 timestamp sent as `field`.
pub fn timestamp(field: &str, raw: &str) -> Result<Millis, ServiceError> {
    parse_rfc3339(raw)
        .ok_or_else(|| ServiceError::invalid_field(field, "invalid", format!("{field} must be an ISO-8601 timestamp.")))
}

/// A connection `state` as sent.
pub fn account_state(raw: &str) -> Result<AccountState, ServiceError> {
    AccountState::parse(raw).ok_or_else(|| {
        ServiceError::invalid_field("state", "invalid", "state must be connected or needs_reauthorization.")
    })
}

/// An integration's `ownership` as sent.
pub fn ownership(raw: &str) -> Result<Ownership, ServiceError> {
    Ownership::parse(raw).ok_or_else(|| {
        ServiceError::invalid_field("ownership", "invalid", "ownership must be 'user' or 'organization'.")
    })
}

/// `auth_methods` as sent: exactly one method.
pub fn auth_methods(list: &[String]) -> Result<AuthMethod, ServiceError> {
    match list {
        [one] => AuthMethod::parse(one).ok_or_else(|| {
            ServiceError::invalid_field(
                "auth_methods",
                "invalid",
                "auth_methods must be [\"oauth\"], [\"api_key\"] or [\"client_credentials\"].",
            )
        }),
        _ => Err(ServiceError::invalid_field(
            "auth_methods",
            "invalid",
            "auth_methods must hold exactly one of oauth, api_key, client_credentials.",
        )),
    }
}

/// The scopes a connection was granted: at most 200, each 1 to 256 characters.
pub fn granted_scopes(list: Vec<String>) -> Result<Vec<String>, ServiceError> {
    if list.len() > 200 || list.iter().any(|s| s.is_empty() || s.len() > 256) {
        return Err(ServiceError::invalid_field(
            "scopes",
            "invalid",
            "scopes must be up to 200 non-empty strings.",
        ));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_counted_in_characters_not_bytes() {
        assert!(Label::parse("account_display_name", "é".repeat(255)).is_ok());
        assert!(Label::parse("account_display_name", "é".repeat(256)).is_err());
    }

    #[test]
    fn a_patch_keeps_absent_and_null_apart() {
        let mut name = Some("old".to_owned());
        let mut id = Some("kept".to_owned());
        Labels::parse(Patch::Null, Patch::Absent)
            .unwrap()
            .apply(&mut name, &mut id);
        assert_eq!((name, id), (None, Some("kept".to_owned())));
    }
}
