//! Widget and Client API tokens (contract §4.14): short-lived bearer tokens a browser holds
//! instead of the application's API key.
//!
//! A token is a JWT signed with HS256 under a key the vault derives from its primary key for
//! this purpose alone; the header's `kid` names the vault key, so tokens minted before a key
//! rotation verify until they expire. Claims: `iss` "pipes", `aud` ("widgets" or "client"),
//! `env` (the environment), `sub` (the user), `org_id`, `scopes`, `iat`, `exp` (one hour) and a
//! random `jti`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};

use super::organizations::Organizations;
use super::selection::check_id;
use crate::domain::Environment;
use crate::error::{FieldError, ServiceError};
use crate::oauth::random_token;
use crate::secret::SecretString;
use crate::time::now_ms;
use crate::vault::Vault;

/// Vault signing purpose of widget and Client API tokens.
pub const WIDGET_TOKEN_PURPOSE: &str = "widget_token";

/// How long a token lives, in seconds.
pub const WIDGET_TOKEN_TTL_SECONDS: i64 = 3600;

/// The scopes a widget token may carry (the SDKs' enum). Pipes acts on
/// `widgets:pipes:manage`; the others are carried for applications that mint one token for
/// several widgets.
pub const WIDGET_SCOPES: &[&str] = &[
    "widgets:pipes:manage",
    "widgets:users-table:manage",
    "widgets:user-api-keys:manage-self",
    "widgets:user-api-keys:manage-all",
    "widgets:domain-verification:manage",
    "widgets:sso:manage",
    "widgets:api-keys:manage",
    "widgets:dsync:manage",
    "widgets:audit-log-streaming:manage",
];

const ALG: &str = "HS256";
const HEADER_TYP: &str = "JWT";
const ISSUER: &str = "pipes";

/// Which API a token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// `POST /widgets/token`: the widgets.
    Widgets,
    /// `POST /client/token`: the Client API.
    Client,
}

/// `POST /widgets/token`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WidgetTokenRequest {
    /// Required whenever `scopes` is given.
    pub organization_id: Option<String>,
    /// The user the token acts for.
    pub user_id: Option<String>,
    /// Among [`WIDGET_SCOPES`].
    pub scopes: Option<Vec<String>>,
}

/// `POST /client/token`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientTokenRequest {
    /// Required.
    pub organization_id: Option<String>,
    /// Required.
    pub user_id: Option<String>,
}

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenClaims {
    /// Always "pipes".
    pub iss: String,
    /// Which API the token is for.
    pub aud: Audience,
    /// The environment's id.
    pub env: String,
    /// The user, when the token acts for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The organization, when the token is scoped to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The same scopes under the name the widgets read (`<PipesAdmin/>` requires
    /// `widgets:pipes:manage` here).
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Issued at, seconds since the epoch.
    pub iat: i64,
    /// Expires at, seconds since the epoch.
    pub exp: i64,
    /// Unique per token.
    pub jti: String,
}

#[derive(Serialize, Deserialize)]
struct Header {
    alg: String,
    typ: String,
    kid: String,
}

/// Why a presented token was refused. Deliberately coarse: the caller learns nothing about keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not a token this server could have minted, or signed with a key it does not hold.
    #[error("the token is malformed or its signature does not verify")]
    Invalid,
    /// Minted for the other API.
    #[error("the token is for another API")]
    WrongAudience,
    /// Past its `exp`.
    #[error("the token has expired")]
    Expired,
}

/// Mints widget and Client API tokens ([`verify_token`] checks them).
#[derive(Clone)]
pub struct WidgetTokens {
    organizations: Organizations,
    vault: Vault,
}

impl std::fmt::Debug for WidgetTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WidgetTokens")
    }
}

impl WidgetTokens {
    /// The service.
    pub fn new(organizations: Organizations, vault: Vault) -> Self {
        Self { organizations, vault }
    }

    /// `POST /widgets/token`: 400 for scopes without an organization or for neither a user
    /// nor an organization, 422 for an unknown scope or a user who is not an active member,
    /// 404 for an organization nobody declared (registry membership).
    pub async fn widget_token(&self, env: &Environment, req: WidgetTokenRequest) -> Result<SecretString, ServiceError> {
        let mut scopes = req.scopes.unwrap_or_default();
        if !scopes.is_empty() && req.organization_id.is_none() {
            return Err(ServiceError::bad_request(
                "organization_id_required",
                "organization_id is required when scopes are given.",
            ));
        }
        if req.organization_id.is_none() && req.user_id.is_none() {
            return Err(ServiceError::bad_request(
                "invalid_request",
                "Send user_id, organization_id, or both.",
            ));
        }
        if let Some(unknown) = scopes.iter().find(|s| !WIDGET_SCOPES.contains(&s.as_str())) {
            return Err(ServiceError::invalid_field(
                "scopes",
                "invalid_scope",
                format!(
                    "'{}' is not a widget scope; known scopes: {}.",
                    unknown.escape_debug(),
                    WIDGET_SCOPES.join(", ")
                ),
            ));
        }
        scopes.sort();
        scopes.dedup();
        self.check_subject(env, req.organization_id.as_deref(), req.user_id.as_deref())
            .await?;
        Ok(self.mint(env, Audience::Widgets, req.user_id, req.organization_id, scopes))
    }

    /// `POST /client/token`: both ids required (422 otherwise), the user an active member.
    pub async fn client_token(&self, env: &Environment, req: ClientTokenRequest) -> Result<SecretString, ServiceError> {
        let (org, user) = match (req.organization_id, req.user_id) {
            (Some(org), Some(user)) => (org, user),
            (org, user) => {
                let missing = [("organization_id", org.is_none()), ("user_id", user.is_none())];
                return Err(ServiceError::invalid_fields(
                    missing
                        .iter()
                        .filter(|(_, absent)| *absent)
                        .map(|(field, _)| FieldError::new(*field, "required", format!("{field} is required.")))
                        .collect(),
                ));
            }
        };
        self.check_subject(env, Some(&org), Some(&user)).await?;
        Ok(self.mint(env, Audience::Client, Some(user), Some(org), Vec::new()))
    }

    async fn check_subject(
        &self,
        env: &Environment,
        org: Option<&str>,
        user: Option<&str>,
    ) -> Result<(), ServiceError> {
        if let Some(org) = org {
            check_id("organization_id", org)?;
        }
        if let Some(user) = user {
            check_id("user_id", user)?;
        }
        if let (Some(org), None) = (org, user) {
            self.organizations.check_organization_known(env, org).await?;
        }
        if let (Some(org), Some(user)) = (org, user) {
            if !self.organizations.is_active_member(env, org, user).await? {
                return Err(ServiceError::invalid_field(
                    "user_id",
                    "user_not_member_of_organization",
                    "The user is not an active member of the organization.",
                ));
            }
        }
        Ok(())
    }

    /// The claims of a widget token this server minted, unexpired now.
    pub fn verify_widget_token(&self, token: &str) -> Result<TokenClaims, TokenError> {
        verify_token(&self.vault, token, Audience::Widgets, now_ms() / 1000)
    }

    fn mint(
        &self,
        env: &Environment,
        aud: Audience,
        sub: Option<String>,
        org_id: Option<String>,
        scopes: Vec<String>,
    ) -> SecretString {
        let iat = now_ms() / 1000;
        let claims = TokenClaims {
            iss: ISSUER.into(),
            aud,
            env: env.id.to_string(),
            sub,
            org_id,
            permissions: scopes.clone(),
            scopes,
            iat,
            exp: iat + WIDGET_TOKEN_TTL_SECONDS,
            jti: random_token(16),
        };
        sign_token(&self.vault, &claims)
    }
}

/// A signed token carrying `claims`, under the vault's primary key.
pub fn sign_token(vault: &Vault, claims: &TokenClaims) -> SecretString {
    let header = Header {
        alg: ALG.into(),
        typ: HEADER_TYP.into(),
        kid: vault.primary_kid().to_owned(),
    };
    let payload = URL_SAFE_NO_PAD.encode(atob_safe_json(claims));
    let signing_input = format!("{}.{payload}", encode_part(&header));
    let tag = vault.sign(WIDGET_TOKEN_PURPOSE, signing_input.as_bytes());
    SecretString::new(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// The claims of a token signed under any of the vault's keys, for `aud`, unexpired at `now`
/// (seconds since the epoch).
pub fn verify_token(vault: &Vault, token: &str, aud: Audience, now: i64) -> Result<TokenClaims, TokenError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(claims_b64), Some(tag_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Invalid);
    };
    let header: Header = decode_part(header_b64)?;
    if header.alg != ALG || header.typ != HEADER_TYP {
        return Err(TokenError::Invalid);
    }
    let tag = URL_SAFE_NO_PAD.decode(tag_b64).map_err(|_| TokenError::Invalid)?;
    let signing_input = &token[..header_b64.len() + 1 + claims_b64.len()];
    vault
        .verify(&header.kid, WIDGET_TOKEN_PURPOSE, signing_input.as_bytes(), &tag)
        .map_err(|_| TokenError::Invalid)?;
    let claims: TokenClaims = decode_part(claims_b64)?;
    if claims.iss != ISSUER {
        return Err(TokenError::Invalid);
    }
    if claims.aud != aud {
        return Err(TokenError::WrongAudience);
    }
    if claims.exp <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

fn encode_part<T: Serialize>(value: &T) -> String {
    // Serializing these plain structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap_or_default())
}

/// The claims as JSON whose base64url form contains no `-` or `_`, so that a browser's `atob`
/// (which knows only the standard alphabet) decodes it, as the widgets do. In ASCII JSON only
/// `>`, `?`, `~` and DEL (and any non-ASCII byte) can produce those two characters; they occur
/// only inside strings, where `\uXXXX` says the same thing.
fn atob_safe_json(claims: &TokenClaims) -> Vec<u8> {
    // Serializing this plain struct cannot fail.
    let json = serde_json::to_string(claims).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if c.is_ascii() && !matches!(c, '>' | '?' | '~' | '\u{7f}') {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out.into_bytes()
}

fn decode_part<T: for<'de> Deserialize<'de>>(part: &str) -> Result<T, TokenError> {
    let bytes = URL_SAFE_NO_PAD.decode(part).map_err(|_| TokenError::Invalid)?;
    serde_json::from_slice(&bytes).map_err(|_| TokenError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(aud: Audience, exp: i64) -> TokenClaims {
        TokenClaims {
            iss: ISSUER.into(),
            aud,
            env: "env_1".into(),
            sub: Some("user_1".into()),
            org_id: Some("org_1".into()),
            scopes: vec!["widgets:pipes:manage".into()],
            permissions: vec!["widgets:pipes:manage".into()],
            iat: exp - WIDGET_TOKEN_TTL_SECONDS,
            exp,
            jti: "j".into(),
        }
    }

    #[test]
    fn round_trip_and_every_refusal() {
        let old = Vault::generate_key_spec("old");
        let vault = Vault::from_spec(&old).unwrap();
        let c = claims(Audience::Widgets, 2_000);
        let token = sign_token(&vault, &c);
        let token = token.expose();
        assert_eq!(verify_token(&vault, token, Audience::Widgets, 1_999), Ok(c.clone()));
        assert_eq!(
            verify_token(&vault, token, Audience::Widgets, 2_000),
            Err(TokenError::Expired)
        );
        assert_eq!(
            verify_token(&vault, token, Audience::Client, 1_000),
            Err(TokenError::WrongAudience)
        );

        // A changed claim, a token with alg "none", and garbage all fail.
        let parts: Vec<&str> = token.split('.').collect();
        let mut forged = c.clone();
        forged.org_id = Some("org_2".into());
        let forged = format!("{}.{}.{}", parts[0], encode_part(&forged), parts[2]);
        assert_eq!(
            verify_token(&vault, &forged, Audience::Widgets, 1_000),
            Err(TokenError::Invalid)
        );
        let none = Header {
            alg: "none".into(),
            typ: HEADER_TYP.into(),
            kid: "old".into(),
        };
        let unsigned = format!("{}.{}.", encode_part(&none), parts[1]);
        assert_eq!(
            verify_token(&vault, &unsigned, Audience::Widgets, 1_000),
            Err(TokenError::Invalid)
        );
        for junk in ["", "a.b", "a.b.c.d", "!!.!!.!!"] {
            assert_eq!(
                verify_token(&vault, junk, Audience::Widgets, 1_000),
                Err(TokenError::Invalid)
            );
        }

        // After a key rotation old tokens verify until they expire; without the old key they fail.
        let rotated = Vault::from_spec(&format!("{},{old}", Vault::generate_key_spec("new"))).unwrap();
        assert!(verify_token(&rotated, token, Audience::Widgets, 1_000).is_ok());
        let only_new = Vault::from_spec(&Vault::generate_key_spec("new")).unwrap();
        assert_eq!(
            verify_token(&only_new, token, Audience::Widgets, 1_000),
            Err(TokenError::Invalid)
        );
        assert!(!format!("{:?}", sign_token(&vault, &c)).contains(parts[2]));
    }

    #[test]
    fn payloads_survive_a_browsers_atob_whatever_the_ids_hold() {
        let vault = Vault::from_spec(&Vault::generate_key_spec("k")).unwrap();
        for (i, user) in ["a>b?c~d", "~~~~~~", "???>>>", "ü€😀\u{7f}", "plain", "x>", "xx>"]
            .iter()
            .enumerate()
        {
            let mut c = claims(Audience::Widgets, 2_000 + i as i64);
            c.sub = Some((*user).to_owned());
            c.org_id = Some(format!("org{}", user.repeat(i + 1)));
            let token = sign_token(&vault, &c);
            let payload = token.expose().split('.').nth(1).unwrap().to_owned();
            assert!(!payload.contains(['-', '_']), "{user}: {payload}");
            assert_eq!(verify_token(&vault, token.expose(), Audience::Widgets, 1_000), Ok(c));
        }
    }
}
