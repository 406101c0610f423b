//! Secret values. Their `Debug` never shows the value; the memory is wiped on drop.

use std::fmt;

use zeroize::Zeroize;

/// A secret string: a client secret, a token, an API key. Read it with [`SecretString::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself. Call sites are the places where a secret leaves the vault.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The last four characters (or fewer), which the API may show.
    pub fn last4(&self) -> String {
        let chars: Vec<char> = self.0.chars().collect();
        chars[chars.len().saturating_sub(4)..].iter().collect()
    }
}

impl Drop for SecretString {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString([REDACTED])")
    }
}

impl<'de> serde::Deserialize<'de> for SecretString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = SecretString::new("super-secret-value-1234");
        assert!(!format!("{s:?}").contains("super-secret"));
        assert_eq!(s.last4(), "1234");
        assert_eq!(SecretString::new("ab").last4(), "ab");
    }
}
