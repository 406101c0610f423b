//! The OAuth 2.0 client side: authorization URLs, code exchange and refresh. Every provider
//! difference (client authentication, body encoding, scope separator, errors in 2xx bodies,
//! extra headers and parameters, metadata to keep) comes from the provider's data.

mod provider;
mod token;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub use provider::{ClientApp, ResolvedProvider};
pub use token::{parse_scopes, OAuthError, TokenResponse};

use crate::domain::{AuthenticateVia, TokenBodyContentType};
use crate::egress::{Egress, EgressError};
use crate::secret::SecretString;

/// A random URL-safe string with `bytes` bytes of entropy.
pub fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The S256 challenge of a PKCE verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Talks to providers' token endpoints, under the egress policy. Cheap to clone.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    egress: Egress,
}

impl OAuthClient {
    /// A client whose requests go out through `egress`.
    pub fn new(egress: Egress) -> Self {
        Self { egress }
    }

    /// The URL that sends a browser to the provider's consent screen.
    pub fn authorize_url(
        &self,
        p: &ResolvedProvider,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[String],
        state: &str,
        pkce_verifier: Option<&str>,
    ) -> Result<String, OAuthError> {
        let mut url = url::Url::parse(&p.authorization_url)
            .map_err(|e| OAuthError::Malformed(format!("authorization URL: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code");
            q.append_pair("client_id", client_id);
            q.append_pair("redirect_uri", redirect_uri);
            if !scopes.is_empty() {
                q.append_pair("scope", &scopes.join(&p.scope_separator));
            }
            q.append_pair("state", state);
            if let Some(verifier) = pkce_verifier {
                q.append_pair("code_challenge", &pkce_challenge(verifier));
                q.append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &p.authorization_params {
                q.append_pair(k, v);
            }
        }
        Ok(url.into())
    }

    /// Exchanges an authorization code for tokens.
    pub async fn exchange_code(
        &self,
        p: &ResolvedProvider,
        app: &ClientApp,
        code: &str,
        redirect_uri: &str,
        pkce_verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let mut params = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
        ];
        params.push(("redirect_uri", redirect_uri.to_owned()));
        if let Some(v) = pkce_verifier {
            params.push(("code_verifier", v.to_owned()));
        }
        self.token_request(p, &p.token_url, app, params).await
    }

    /// Uses a refresh token.
    pub async fn refresh(
        &self,
        p: &ResolvedProvider,
        app: &ClientApp,
        refresh_token: &SecretString,
    ) -> Result<TokenResponse, OAuthError> {
        let params = vec![
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", refresh_token.expose().to_owned()),
        ];
        self.token_request(p, &p.refresh_url, app, params).await
    }

    /// Mints an access token with the client-credentials grant.
    pub async fn client_credentials(
        &self,
        p: &ResolvedProvider,
        app: &ClientApp,
        scopes: &[String],
    ) -> Result<TokenResponse, OAuthError> {
        let mut params = vec![("grant_type", "client_credentials".to_owned())];
        if !scopes.is_empty() {
            params.push(("scope", scopes.join(&p.scope_separator)));
        }
        self.token_request(p, &p.token_url, app, params).await
    }

    async fn token_request(
        &self,
        p: &ResolvedProvider,
        url: &str,
        app: &ClientApp,
        mut params: Vec<(&'static str, String)>,
    ) -> Result<TokenResponse, OAuthError> {
        let mut req = self
            .egress
            .request(reqwest::Method::POST, url)
            .header("accept", "application/json");
        for (k, v) in &p.token_headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match p.client_auth {
            AuthenticateVia::BasicAuthHeader => {
                let secret = app.client_secret.as_ref().map_or("", SecretString::expose);
                let basic = STANDARD.encode(format!("{}:{}", form_encode(&app.client_id), form_encode(secret)));
                req = req.header("authorization", format!("Basic {basic}"));
            }
            AuthenticateVia::RequestBody => {
                params.push(("client_id", app.client_id.clone()));
                if let Some(secret) = &app.client_secret {
                    params.push(("client_secret", secret.expose().to_owned()));
                }
            }
        }
        req = match p.token_body {
            TokenBodyContentType::Form => req.form(&params),
            TokenBodyContentType::Json => {
                let map: serde_json::Map<String, serde_json::Value> = params
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                    .collect();
                req.json(&map)
            }
        };
        let resp = self.egress.send(req).await.map_err(|e| match e {
            EgressError::Refused { .. } | EgressError::Invalid(_) => OAuthError::Blocked(e.to_string()),
            _ => OAuthError::Transient {
                reason: e.code().into(),
                retry_after: None,
            },
        })?;
        token::read_token_response(resp, p, &self.egress).await
    }
}

/// RFC 6749 §2.3.1: client id and secret are form-encoded before Basic encoding.
fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
