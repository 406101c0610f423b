//! Pipes API keys: `sk_test_…` / `sk_live_…`, shown once, stored only as a SHA-256 hash.
//!
//! The keys carry 238 bits of randomness, so a plain SHA-256 is the right hash: a slow password
//! hash would only slow down every request.

use rand::distributions::Alphanumeric;
use rand::Rng;

use crate::secret::SecretString;

/// How many characters of a key are kept in clear for listing.
pub const PREFIX_LEN: usize = 14;

/// A freshly minted key: the secret (shown once) and what is stored.
#[derive(Debug)]
pub struct MintedKey {
    /// The key itself. Never stored.
    pub secret: SecretString,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The first [`PREFIX_LEN`] characters, for listings.
    pub prefix: String,
}

/// Mints a key for a production (`sk_live_`) or non-production (`sk_test_`) environment.
pub fn mint(production: bool) -> MintedKey {
    let body: String = rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(40)
        .map(char::from)
        .collect();
    let key = format!("{}{body}", if production { "sk_live_" } else { "sk_test_" });
    MintedKey {
        hash: hash(&key),
        prefix: key[..PREFIX_LEN].to_owned(),
        secret: SecretString::new(key),
    }
}

/// The hash to look a presented key up by, or `None` when it cannot be a Pipes key.
pub fn lookup_hash(presented: &str) -> Option<String> {
    let plausible = (presented.starts_with("sk_test_") || presented.starts_with("sk_live_")) && presented.len() <= 200;
    plausible.then(|| hash(presented))
}

/// The stored form of a presented key.
pub fn hash(key: &str) -> String {
    crate::hex::sha256(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_look_like_workos_keys_and_hash_stably() {
        let k = mint(false);
        assert!(k.secret.expose().starts_with("sk_test_"));
        assert_eq!(k.secret.expose().len(), 48);
        assert_eq!(k.hash, hash(k.secret.expose()));
        assert!(k.secret.expose().starts_with(&k.prefix));
        assert!(mint(true).secret.expose().starts_with("sk_live_"));
        assert_ne!(mint(false).hash, k.hash);
    }
}
