use std::collections::BTreeMap;

use crate::catalog::{placeholders, Provider, TokenExpiry};
use crate::domain::{AuthenticateVia, CustomProviderDefinition, TokenBodyContentType};
use crate::secret::SecretString;

/// A provider's endpoints and quirks with every `${config.key}` placeholder filled in.
#[derive(Debug, Clone)]
pub struct ResolvedProvider {
    /// Slug, for logs.
    pub slug: String,
    /// Authorization endpoint.
    pub authorization_url: String,
    /// Token endpoint.
    pub token_url: String,
    /// Refresh endpoint (the token endpoint unless the provider has its own).
    pub refresh_url: String,
    /// Joins requested scopes.
    pub scope_separator: String,
    /// Whether to send PKCE.
    pub pkce: bool,
    /// Client authentication at the token endpoint.
    pub client_auth: AuthenticateVia,
    /// Token request body encoding.
    pub token_body: TokenBodyContentType,
    /// Extra token-request headers.
    pub token_headers: BTreeMap<String, String>,
    /// Errors may come in 2xx bodies.
    pub errors_in_success_body: bool,
    /// Extra authorization parameters.
    pub authorization_params: BTreeMap<String, String>,
    /// Scopes when the integration sets none.
    pub default_scopes: Vec<String>,
    /// Access-token lifetime model.
    pub token_expiry: TokenExpiry,
    /// Token-response fields kept as metadata.
    pub metadata_fields: Vec<String>,
    /// Lifetime assumed when a token response has no `expires_in`.
    pub assumed_lifetime_seconds: Option<i64>,
}

/// The OAuth app used with a provider.
#[derive(Debug, Clone)]
pub struct ClientApp {
    /// Client id.
    pub client_id: String,
    /// Client secret (public clients have none).
    pub client_secret: Option<SecretString>,
}

fn fill(template: &str, config: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = template.to_owned();
    for key in placeholders(template) {
        let value = config
            .get(key)
            .ok_or_else(|| format!("config field '{key}' has no value"))?;
        out = out.replace(&format!("${{config.{key}}}"), value);
    }
    Ok(out)
}

impl ResolvedProvider {
    /// A built-in provider with `config` (root values, installation values and field defaults,
    /// already merged and validated against the fields' patterns).
    pub fn builtin(p: &Provider, config: &BTreeMap<String, String>) -> Result<Self, String> {
        let authorization_url = fill(p.authorization_url.as_deref().unwrap_or_default(), config)?;
        let token_url = fill(p.token_url.as_deref().unwrap_or_default(), config)?;
        let refresh_url = match &p.refresh_token_url {
            Some(u) => fill(u, config)?,
            None => token_url.clone(),
        };
        Ok(Self {
            slug: p.slug.clone(),
            authorization_url,
            token_url,
            refresh_url,
            scope_separator: p.scope_separator.clone(),
            pkce: p.pkce,
            client_auth: p.client_auth,
            token_body: p.token_body,
            token_headers: p.token_request_headers.clone(),
            errors_in_success_body: p.errors_in_success_body,
            authorization_params: p.authorization_params.clone(),
            default_scopes: p.default_scopes.clone(),
            token_expiry: p.token_expiry,
            metadata_fields: p.metadata_fields.clone(),
            assumed_lifetime_seconds: p.assumed_lifetime_seconds,
        })
    }

    /// A custom provider (static URLs, no config fields).
    pub fn custom(slug: &str, d: &CustomProviderDefinition) -> Self {
        let token_url = d.token_url.clone().unwrap_or_default();
        Self {
            slug: slug.to_owned(),
            authorization_url: d.authorization_url.clone().unwrap_or_default(),
            refresh_url: d.refresh_token_url.clone().unwrap_or_else(|| token_url.clone()),
            token_url,
            scope_separator: d.request_scope_separator.clone(),
            pkce: d.pkce_enabled,
            client_auth: d.authenticate_via,
            token_body: d.token_body_content_type,
            token_headers: BTreeMap::new(),
            errors_in_success_body: true,
            authorization_params: d.additional_authorization_parameters.clone(),
            default_scopes: vec![],
            token_expiry: TokenExpiry::FromResponse,
            metadata_fields: vec![],
            assumed_lifetime_seconds: None,
        }
    }
}
