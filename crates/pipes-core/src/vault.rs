//! The vault: every secret at rest is sealed here with AES-256-GCM.
//!
//! Sealed layout: `0x01 | kid length (1 byte) | kid | 12-byte nonce | ciphertext and tag`.
//! The associated data names what the value is and the row it belongs to, so a ciphertext
//! copied into another row or another column fails to open.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::secret::SecretString;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 12;

/// Problems with the vault's configuration or a sealed value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// `PIPES_VAULT_KEYS` is empty or malformed.
    #[error("invalid vault key list: {0}")]
    InvalidKeys(String),
    /// The sealed bytes are not in the vault's format.
    #[error("sealed value is malformed")]
    Malformed,
    /// The value was sealed under a key id that is not configured.
    #[error("sealed value uses key id '{0}', which is not in PIPES_VAULT_KEYS")]
    UnknownKey(String),
    /// Authentication failed: wrong key, wrong row, or tampered bytes.
    #[error("sealed value failed to open (wrong key, wrong row or tampered)")]
    Tampered,
}

/// A column that holds vault-sealed values. Its purpose string is part of every value's
/// associated data, so this enum is the one definition used to seal, to open and to rotate:
/// a value sealed for one column never opens as another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SealedColumn {
    /// `data_integrations.client_secret`
    IntegrationClientSecret,
    /// `organization_settings.client_secret`
    OrganizationClientSecret,
    /// `webhook_endpoints.secret`
    WebhookSecret,
    /// `connected_accounts.access_token`
    AccountAccessToken,
    /// `connected_accounts.refresh_token`
    AccountRefreshToken,
    /// `connected_accounts.secret`: an API key or a client secret.
    AccountSecret,
    /// `authorizations.pkce_verifier`
    PkceVerifier,
    /// `authorizations.held_tokens`: tokens awaiting `finish`.
    HeldTokens,
    /// `idempotency_keys.body`: an answer replayed to a retried request.
    IdempotentAnswer,
}

impl SealedColumn {
    /// Every sealed column, for `pipes vault rotate`.
    pub const ALL: &'static [SealedColumn] = &[
        SealedColumn::IntegrationClientSecret,
        SealedColumn::OrganizationClientSecret,
        SealedColumn::WebhookSecret,
        SealedColumn::AccountAccessToken,
        SealedColumn::AccountRefreshToken,
        SealedColumn::AccountSecret,
        SealedColumn::PkceVerifier,
        SealedColumn::HeldTokens,
        SealedColumn::IdempotentAnswer,
    ];

    /// The purpose named in the associated data: `table.column`, as the store names them.
    pub fn purpose(self) -> &'static str {
        match self {
            Self::IntegrationClientSecret => "data_integrations.client_secret",
            Self::OrganizationClientSecret => "organization_settings.client_secret",
            Self::WebhookSecret => "webhook_endpoints.secret",
            Self::AccountAccessToken => "connected_accounts.access_token",
            Self::AccountRefreshToken => "connected_accounts.refresh_token",
            Self::AccountSecret => "connected_accounts.secret",
            Self::PkceVerifier => "authorizations.pkce_verifier",
            Self::HeldTokens => "authorizations.held_tokens",
            Self::IdempotentAnswer => "idempotency_keys.body",
        }
    }

    /// The table and the column that hold the values (from [`SealedColumn::purpose`]).
    pub fn table_and_column(self) -> (&'static str, &'static str) {
        self.purpose().split_once('.').unwrap_or((self.purpose(), ""))
    }

    /// The associated data of this column's value in row `row_id`.
    pub fn aad(self, row_id: &str) -> Aad<'_> {
        Aad { column: self, row_id }
    }
}

/// Which column a sealed value belongs to and which row holds it; used as AEAD associated data.
#[derive(Debug, Clone, Copy)]
pub struct Aad<'a> {
    /// What the value is.
    pub column: SealedColumn,
    /// The id of the row that holds it.
    pub row_id: &'a str,
}

impl Aad<'_> {
    fn bytes(&self) -> Vec<u8> {
        let purpose = self.column.purpose();
        let mut out = Vec::with_capacity(purpose.len() + self.row_id.len() + 1);
        out.extend_from_slice(purpose.as_bytes());
        out.push(0);
        out.extend_from_slice(self.row_id.as_bytes());
        out
    }
}

/// Ciphertext as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed(pub Vec<u8>);

impl Sealed {
    /// The key id this value was sealed under.
    pub fn kid(&self) -> Result<&str, VaultError> {
        let (kid, _) = split(&self.0)?;
        Ok(kid)
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sealed({} bytes)", self.0.len())
    }
}

fn split(bytes: &[u8]) -> Result<(&str, &[u8]), VaultError> {
    let (&version, rest) = bytes.split_first().ok_or(VaultError::Malformed)?;
    if version != VERSION {
        return Err(VaultError::Malformed);
    }
    let (&kid_len, rest) = rest.split_first().ok_or(VaultError::Malformed)?;
    let kid_len = usize::from(kid_len);
    if rest.len() < kid_len + NONCE_LEN + 16 {
        return Err(VaultError::Malformed);
    }
    let kid = std::str::from_utf8(&rest[..kid_len]).map_err(|_| VaultError::Malformed)?;
    Ok((kid, &rest[kid_len..]))
}

struct VaultKey {
    cipher: Aes256Gcm,
    /// Root of the keys this vault key signs with, derived from it so the raw key is never
    /// used for two algorithms: HMAC-SHA256(key, "pipes vault signing v1").
    signing_root: Zeroizing<[u8; 32]>,
}

impl VaultKey {
    fn signing_key(&self, purpose: &str) -> Hmac<Sha256> {
        let mut derive = hmac_with(&self.signing_root[..]);
        derive.update(purpose.as_bytes());
        let key: Zeroizing<[u8; 32]> = Zeroizing::new(derive.finalize().into_bytes().into());
        hmac_with(&key[..])
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length.
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Seals and opens secrets. The first configured key seals; every configured key opens.
#[derive(Clone)]
pub struct Vault {
    primary: String,
    keys: Arc<HashMap<String, VaultKey>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.keys.keys().collect();
        kids.sort();
        f.debug_struct("Vault")
            .field("primary", &self.primary)
            .field("kids", &kids)
            .finish()
    }
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty() && kid.len() <= 32 && kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Vault {
    /// Parses `kid:base64key[,kid:base64key…]`. Keys are 32 random bytes in standard base64.
    pub fn from_spec(spec: &str) -> Result<Self, VaultError> {
        let mut keys = HashMap::new();
        let mut primary = None;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (kid, b64) = entry
                .split_once(':')
                .ok_or_else(|| VaultError::InvalidKeys("each entry must look like kid:base64key".into()))?;
            if !valid_kid(kid) {
                return Err(VaultError::InvalidKeys(format!(
                    "key id '{kid}' must be 1-32 characters of A-Z a-z 0-9 - _"
                )));
            }
            let raw = STANDARD
                .decode(b64.trim())
                .map_err(|_| VaultError::InvalidKeys(format!("key '{kid}' is not valid base64")))?;
            if raw.len() != 32 {
                return Err(VaultError::InvalidKeys(format!(
                    "key '{kid}' must decode to 32 bytes, not {}",
                    raw.len()
                )));
            }
            let cipher = Aes256Gcm::new_from_slice(&raw)
                .map_err(|_| VaultError::InvalidKeys(format!("key '{kid}' is unusable")))?;
            let mut derive = hmac_with(&raw);
            derive.update(b"pipes vault signing v1");
            let signing_root = Zeroizing::new(derive.finalize().into_bytes().into());
            if keys.insert(kid.to_owned(), VaultKey { cipher, signing_root }).is_some() {
                return Err(VaultError::InvalidKeys(format!("key id '{kid}' appears twice")));
            }
            primary.get_or_insert_with(|| kid.to_owned());
        }
        let primary = primary.ok_or_else(|| VaultError::InvalidKeys("no key given".into()))?;
        Ok(Self {
            primary,
            keys: Arc::new(keys),
        })
    }

    /// A fresh random key in the `kid:base64key` form.
    pub fn generate_key_spec(kid: &str) -> String {
        let mut raw = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut raw);
        format!("{kid}:{}", STANDARD.encode(raw))
    }

    /// The key id new values are sealed under.
    pub fn primary_kid(&self) -> &str {
        &self.primary
    }

    /// Seals `plain` for the row and purpose in `aad`.
    pub fn seal(&self, plain: &[u8], aad: Aad<'_>) -> Sealed {
        let key = &self.keys[&self.primary];
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let aad = aad.bytes();
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .unwrap_or_default();
        let mut out = Vec::with_capacity(2 + self.primary.len() + NONCE_LEN + ciphertext.len());
        out.push(VERSION);
        out.push(self.primary.len() as u8);
        out.extend_from_slice(self.primary.as_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Sealed(out)
    }

    /// Seals a secret string.
    pub fn seal_secret(&self, secret: &SecretString, aad: Aad<'_>) -> Sealed {
        self.seal(secret.expose().as_bytes(), aad)
    }

    /// Opens a sealed value; fails if it belongs to another row or purpose or was tampered with.
    pub fn open(&self, sealed: &Sealed, aad: Aad<'_>) -> Result<Vec<u8>, VaultError> {
        let (kid, rest) = split(&sealed.0)?;
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| VaultError::UnknownKey(kid.to_owned()))?;
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let aad = aad.bytes();
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Tampered)
    }

    /// Opens a sealed secret string.
    pub fn open_secret(&self, sealed: &Sealed, aad: Aad<'_>) -> Result<SecretString, VaultError> {
        let bytes = self.open(sealed, aad)?;
        String::from_utf8(bytes)
            .map(SecretString::new)
            .map_err(|_| VaultError::Malformed)
    }

    /// The HMAC-SHA256 tag of `data` under a key derived from the primary key (the one
    /// [`Vault::primary_kid`] names) for `purpose`; keys for different purposes are unrelated.
    pub fn sign(&self, purpose: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = self.keys[&self.primary].signing_key(purpose);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// Checks, in constant time, a tag made by [`Vault::sign`] under any configured key.
    pub fn verify(&self, kid: &str, purpose: &str, data: &[u8], tag: &[u8]) -> Result<(), VaultError> {
        let key = self
            .keys
            .get(kid)
            .ok_or_else(|| VaultError::UnknownKey(kid.to_owned()))?;
        let mut mac = key.signing_key(purpose);
        mac.update(data);
        mac.verify_slice(tag).map_err(|_| VaultError::Tampered)
    }

    /// Re-seals under the primary key; `None` when it already uses the primary key.
    pub fn reseal(&self, sealed: &Sealed, aad: Aad<'_>) -> Result<Option<Sealed>, VaultError> {
        if sealed.kid()? == self.primary {
            return Ok(None);
        }
        let plain = self.open(sealed, aad)?;
        Ok(Some(self.seal(&plain, aad)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AAD: Aad<'static> = Aad {
        column: SealedColumn::AccountSecret,
        row_id: "row_1",
    };

    #[test]
    fn seal_open_round_trip_and_binding_to_the_row() {
        let vault = Vault::from_spec(&Vault::generate_key_spec("k1")).unwrap();
        let sealed = vault.seal(b"s3cr3t", AAD);
        assert!(!sealed.0.windows(6).any(|w| w == b"s3cr3t"));
        assert_eq!(vault.open(&sealed, AAD).unwrap(), b"s3cr3t");
        let other_row = SealedColumn::AccountSecret.aad("row_2");
        assert_eq!(vault.open(&sealed, other_row), Err(VaultError::Tampered));
        let other_column = SealedColumn::AccountAccessToken.aad("row_1");
        assert_eq!(vault.open(&sealed, other_column), Err(VaultError::Tampered));
        let mut tampered = sealed.clone();
        let last = tampered.0.len() - 1;
        tampered.0[last] ^= 1;
        assert_eq!(vault.open(&tampered, AAD), Err(VaultError::Tampered));
    }

    #[test]
    fn first_key_seals_all_keys_open_and_reseal_moves_to_the_first() {
        let old = Vault::generate_key_spec("old");
        let new = Vault::generate_key_spec("new");
        let before = Vault::from_spec(&old).unwrap();
        let sealed = before.seal(b"value", AAD);
        let after = Vault::from_spec(&format!("{new},{old}")).unwrap();
        assert_eq!(after.open(&sealed, AAD).unwrap(), b"value");
        let resealed = after.reseal(&sealed, AAD).unwrap().unwrap();
        assert_eq!(resealed.kid().unwrap(), "new");
        assert!(after.reseal(&resealed, AAD).unwrap().is_none());
        let only_new = Vault::from_spec(&new).unwrap();
        assert_eq!(only_new.open(&resealed, AAD).unwrap(), b"value");
        assert_eq!(only_new.open(&sealed, AAD), Err(VaultError::UnknownKey("old".into())));
    }

    #[test]
    fn signatures_bind_purpose_and_key_and_survive_rotation() {
        let old = Vault::generate_key_spec("old");
        let before = Vault::from_spec(&old).unwrap();
        let tag = before.sign("widget_token", b"payload");
        assert!(before.verify("old", "widget_token", b"payload", &tag).is_ok());
        assert_eq!(
            before.verify("old", "widget_token", b"payloaD", &tag),
            Err(VaultError::Tampered)
        );
        assert_eq!(
            before.verify("old", "other", b"payload", &tag),
            Err(VaultError::Tampered)
        );
        assert_eq!(
            before.verify("old", "widget_token", b"payload", &tag[..31]),
            Err(VaultError::Tampered)
        );
        let rotated = Vault::from_spec(&format!("{},{old}", Vault::generate_key_spec("new"))).unwrap();
        assert!(rotated.verify("old", "widget_token", b"payload", &tag).is_ok());
        assert_eq!(rotated.primary_kid(), "new");
        assert_ne!(rotated.sign("widget_token", b"payload"), tag);
        let unrelated = Vault::from_spec(&Vault::generate_key_spec("old")).unwrap();
        assert_eq!(
            unrelated.verify("old", "widget_token", b"payload", &tag),
            Err(VaultError::Tampered)
        );
    }

    #[test]
    fn every_column_has_its_own_purpose_naming_its_table_and_column() {
        let purposes: std::collections::HashSet<_> = SealedColumn::ALL.iter().map(|c| c.purpose()).collect();
        assert_eq!(purposes.len(), SealedColumn::ALL.len());
        for c in SealedColumn::ALL {
            let (table, column) = c.table_and_column();
            assert!(
                !table.is_empty() && !column.is_empty() && !column.contains('.'),
                "{c:?}"
            );
        }
    }

    #[test]
    fn rejects_bad_key_lists() {
        for bad in ["", "nokey", "k1:notbase64!!", "k1:AAAA", "bad kid:AAAA"] {
            assert!(Vault::from_spec(bad).is_err(), "{bad}");
        }
        let k = Vault::generate_key_spec("a");
        assert!(Vault::from_spec(&format!("{k},{k}")).is_err());
        assert!(!format!("{:?}", Vault::from_spec(&k).unwrap()).contains(k.split(':').nth(1).unwrap()));
    }
}
