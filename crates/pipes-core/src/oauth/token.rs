use std::collections::BTreeMap;
use std::time::Duration;

use super::ResolvedProvider;
use crate::catalog::TokenExpiry;
use crate::egress::{Egress, EgressError};
use crate::secret::SecretString;

/// Why a token request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// The provider answered with an OAuth error (`invalid_grant`, `invalid_client`…). Only
    /// the code is kept: the provider's own words go to the log, never back to a caller.
    #[error("provider rejected the request: {error}")]
    Rejected {
        /// The `error` value, when it reads as an OAuth error code; `http_<status>` otherwise.
        error: String,
    },
    /// Worth retrying later: timeout, network failure, 5xx, 429.
    #[error("provider unavailable: {reason}")]
    Transient {
        /// What happened (never a token).
        reason: String,
        /// The provider's `Retry-After`, if it sent one.
        retry_after: Option<Duration>,
    },
    /// The egress policy refused the endpoint's address: the operator's setting, not the
    /// provider's state.
    #[error("{0}")]
    Blocked(String),
    /// The answer was not a token response.
    #[error("unexpected response from the provider: {0}")]
    Malformed(String),
}

impl OAuthError {
    /// Errors that mean the grant is gone and only the user can fix it.
    pub fn is_dead_grant(&self) -> bool {
        matches!(self, Self::Rejected { error, .. }
            if matches!(error.as_str(), "invalid_grant" | "unauthorized_client" | "access_denied" | "token_revoked" | "invalid_token"))
    }

    /// The provider refused the client itself (wrong id or secret, or a disabled client).
    pub fn is_rejected_client(&self) -> bool {
        matches!(self, Self::Rejected { error, .. } if matches!(error.as_str(), "invalid_client" | "unauthorized_client"))
    }

    /// A short code for records and events.
    pub fn code(&self) -> String {
        match self {
            Self::Rejected { error, .. } => error.clone(),
            Self::Transient { reason, .. } => format!("provider_{reason}"),
            Self::Blocked(_) => "egress_refused".into(),
            Self::Malformed(_) => "unexpected_response_format".into(),
        }
    }
}

/// A successful token response.
#[derive(Debug, Clone)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: SecretString,
    /// A (new) refresh token, when the provider sent one.
    pub refresh_token: Option<SecretString>,
    /// Seconds until the access token expires; `None` = does not expire (or unknown).
    pub expires_in: Option<i64>,
    /// Granted scopes, when the provider said.
    pub scopes: Option<Vec<String>>,
    /// Fields the provider's data asks to keep.
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Splits a granted-scope value: a string separated by spaces and/or commas, or an array.
pub fn parse_scopes(v: &serde_json::Value) -> Option<Vec<String>> {
    match v {
        serde_json::Value::String(s) => Some(
            s.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        serde_json::Value::Array(items) => Some(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect()),
        _ => None,
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let raw = resp.headers().get("retry-after")?.to_str().ok()?;
    raw.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// An `error` value as a caller may see it: an OAuth error code (RFC 6749 §5.2 codes are
/// short ASCII words), or `provider_error` for anything else a provider wrote there.
fn error_code(raw: &str) -> String {
    let plain = !raw.is_empty()
        && raw.len() <= 64
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if plain {
        raw.to_owned()
    } else {
        "provider_error".to_owned()
    }
}

/// A provider's `error_description` as the log may keep it: some providers quote the token they
/// were given, so every run of 16 or more token characters is cut out; no control characters;
/// at most 200 characters.
fn loggable(description: &str) -> String {
    let tokenish = |c: char| c.is_ascii_alphanumeric() || "-._~+/=".contains(c);
    let mut out = String::new();
    let mut run = String::new();
    for c in description.chars().filter(|c| !c.is_control()) {
        if tokenish(c) {
            run.push(c);
            continue;
        }
        out.push_str(if run.len() >= 16 { "[…]" } else { &run });
        run.clear();
        out.push(c);
    }
    out.push_str(if run.len() >= 16 { "[…]" } else { &run });
    out.chars().take(200).collect()
}

pub(super) async fn read_token_response(
    resp: reqwest::Response,
    p: &ResolvedProvider,
    egress: &Egress,
) -> Result<TokenResponse, OAuthError> {
    let status = resp.status();
    if status.is_server_error() || status.as_u16() == 429 {
        return Err(OAuthError::Transient {
            reason: format!("http_{}", status.as_u16()),
            retry_after: retry_after(&resp),
        });
    }
    let is_form = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded") || v.starts_with("text/plain"));
    let bytes = egress.read_body(resp).await.map_err(|e| match e {
        EgressError::TooLarge { .. } => OAuthError::Malformed(e.code().into()),
        _ => OAuthError::Transient {
            reason: "unreadable_response".into(),
            retry_after: None,
        },
    })?;
    let body: serde_json::Map<String, serde_json::Value> = if is_form {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
            .map(|pairs| {
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect()
            })
            .unwrap_or_default()
    } else {
        match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(serde_json::Value::Object(map)) => map,
            _ if !status.is_success() => {
                return Err(OAuthError::Rejected {
                    error: format!("http_{}", status.as_u16()),
                })
            }
            _ => return Err(OAuthError::Malformed("the token response is not a JSON object".into())),
        }
    };
    let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let slack_style_failure = body.get("ok") == Some(&serde_json::Value::Bool(false));
    if let Some(error) = text("error").filter(|_| {
        !status.is_success() || p.errors_in_success_body || !body.contains_key("access_token") || slack_style_failure
    }) {
        if let Some(description) = text("error_description") {
            let shown = loggable(&description);
            tracing::info!(provider = %p.slug, error = %error_code(&error), description = %shown, "token endpoint refused");
        }
        return Err(OAuthError::Rejected {
            error: error_code(&error),
        });
    }
    if !status.is_success() {
        return Err(OAuthError::Rejected {
            error: format!("http_{}", status.as_u16()),
        });
    }
    let access_token = text("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| OAuthError::Malformed("missing_access_token".into()))?;
    let expires_in = match body.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_i64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
    .filter(|secs| *secs > 0)
    .or(p.assumed_lifetime_seconds)
    .filter(|_| p.token_expiry != TokenExpiry::Never);
    let metadata = p
        .metadata_fields
        .iter()
        .filter_map(|k| body.get(k).map(|v| (k.clone(), v.clone())))
        .collect();
    Ok(TokenResponse {
        access_token: SecretString::new(access_token),
        refresh_token: text("refresh_token").filter(|t| !t.is_empty()).map(SecretString::new),
        expires_in,
        scopes: body.get("scope").and_then(parse_scopes),
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_split_on_commas_spaces_or_arrays() {
        assert_eq!(
            parse_scopes(&serde_json::json!("repo,user:email")),
            Some(vec!["repo".into(), "user:email".into()])
        );
        assert_eq!(
            parse_scopes(&serde_json::json!("a b  c")),
            Some(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            parse_scopes(&serde_json::json!(["x", "y"])),
            Some(vec!["x".into(), "y".into()])
        );
        assert_eq!(parse_scopes(&serde_json::json!(null)), None);
    }

    #[test]
    fn only_grant_errors_are_dead_grants() {
        let rejected = |e: &str| OAuthError::Rejected { error: e.into() };
        assert!(rejected("invalid_grant").is_dead_grant());
        assert!(!rejected("invalid_client").is_dead_grant());
        assert!(!OAuthError::Transient {
            reason: "timeout".into(),
            retry_after: None
        }
        .is_dead_grant());
    }

    #[test]
    fn a_provider_error_reaches_callers_only_as_a_code() {
        assert_eq!(error_code("invalid_grant"), "invalid_grant");
        assert_eq!(error_code("urn:ietf:params:oauth:error"), "provider_error");
        assert_eq!(
            error_code("<html>Connection refused by 10.0.0.5:22</html>"),
            "provider_error"
        );
        assert_eq!(error_code(&"a".repeat(65)), "provider_error");
    }

    #[test]
    fn descriptions_reach_the_log_without_the_tokens_they_quote() {
        assert_eq!(
            loggable("Refresh token rt_Zk3vQ9secret1234abcd is invalid.\n"),
            "Refresh token […] is invalid."
        );
        assert_eq!(loggable("Invalid client secret"), "Invalid client secret");
    }
}
