//! Provider slugs: lowercase kebab-case, `^[a-z0-9][a-z0-9-]{0,62}$`.

use std::fmt;

/// A syntactically valid provider slug.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Slug(String);

/// Words that may not be used as provider slugs because they are route segments.
const RESERVED: &[&str] = &["finish"];

/// Why a string is not a usable slug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidSlug {
    /// Not lowercase kebab-case of 1–63 characters.
    #[error("a provider slug is 1 to 63 characters of a-z, 0-9 and '-', starting with a letter or digit")]
    Syntax,
    /// A route word.
    #[error("'{0}' is reserved and cannot be used as a provider slug")]
    Reserved(String),
}

impl Slug {
    /// Parses a slug.
    pub fn parse(s: &str) -> Result<Self, InvalidSlug> {
        let bytes = s.as_bytes();
        let ok = !bytes.is_empty()
            && bytes.len() <= 63
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes
                .iter()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if !ok {
            return Err(InvalidSlug::Syntax);
        }
        if RESERVED.contains(&s) {
            return Err(InvalidSlug::Reserved(s.to_owned()));
        }
        Ok(Self(s.to_owned()))
    }

    /// The slug text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Slug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Slug({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_kebab_case_and_rejects_the_rest() {
        for ok in ["github", "google-calendar", "a", "0x", "apollo-oauth"] {
            assert!(Slug::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "GitHub", "-x", "a_b", "a/b", "a b", &"x".repeat(64), "finish", "ü"] {
            assert!(Slug::parse(bad).is_err(), "{bad}");
        }
    }
}
