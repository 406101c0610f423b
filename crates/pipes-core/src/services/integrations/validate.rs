//! Checks of what a create or update asks for, each error named by its field.

use std::collections::BTreeMap;

use super::super::environments::is_loopback;
use super::*;

pub(super) fn check_api_key_input(method: AuthMethod, input: &ApiKeyInput, errors: &mut Vec<FieldError>) {
    if method != AuthMethod::ApiKey {
        errors.push(FieldError::new(
            "api_key",
            "auth_method_mismatch",
            format!(
                "api_key is only accepted by api_key integrations; this one uses {}.",
                method.as_str()
            ),
        ));
        return;
    }
    if input.secret.expose().chars().count() < 5 {
        errors.push(FieldError::new(
            "api_key.secret",
            "too_short",
            "api_key.secret must be at least 5 characters.",
        ));
    }
}

pub(super) fn validate_description(d: String, errors: &mut Vec<FieldError>) -> String {
    if d.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new(
            "description",
            "too_long",
            format!("description must be at most {MAX_DESCRIPTION} characters."),
        ));
    }
    d
}

pub(super) fn validate_scopes(scopes: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    if scopes.len() > MAX_SCOPES {
        errors.push(FieldError::new(
            "scopes",
            "too_many",
            format!("at most {MAX_SCOPES} scopes are allowed."),
        ));
    }
    let mut out: Vec<String> = vec![];
    for s in scopes {
        if s.is_empty() || s.len() > MAX_SCOPE_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(
                "scopes",
                "invalid",
                format!(
                    "'{}' is not a valid scope: scopes are non-empty and contain no spaces.",
                    s.escape_debug()
                ),
            ));
        } else if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

pub(super) fn validate_config(
    provider: &ProviderRef<'_>,
    config: BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let p = match provider {
        ProviderRef::Custom(_) => {
            if !config.is_empty() {
                errors.push(FieldError::new(
                    "config",
                    "not_allowed",
                    "custom providers declare no config fields.",
                ));
            }
            return BTreeMap::new();
        }
        ProviderRef::Builtin(p) => p,
    };
    for (key, value) in &config {
        match p.config_field(key) {
            Some(field) if field.scope == ConfigScope::Integration => {
                if !field.accepts(value) {
                    errors.push(FieldError::new(
                        format!("config.{key}"),
                        "invalid",
                        format!("'{}' is not a valid {}.", value.escape_debug(), field.label),
                    ));
                }
            }
            Some(_) => errors.push(FieldError::new(
                format!("config.{key}"),
                "installation_scoped",
                format!("config field '{key}' is supplied per connection when authorizing, not on the integration."),
            )),
            None => errors.push(FieldError::new(
                format!("config.{key}"),
                "unknown_field",
                format!("provider '{}' declares no config field '{key}'.", p.slug),
            )),
        }
    }
    config
}

pub(super) fn parse_endpoint(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.contains("${") {
        errors.push(FieldError::new(
            field,
            "placeholders_not_allowed",
            format!("{field} must be a static URL: custom providers cannot use ${{config.…}} placeholders."),
        ));
        return;
    }
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
            if u.fragment().is_some() || !u.username().is_empty() {
                errors.push(FieldError::new(
                    field,
                    "invalid",
                    format!("{field} must not contain a fragment or credentials."),
                ));
            }
        }
        Ok(_) => errors.push(FieldError::new(
            field,
            "invalid",
            format!("{field} must be an https URL (http is allowed only for localhost)."),
        )),
        Err(_) => errors.push(FieldError::new(
            field,
            "invalid",
            format!("{field} must be an absolute URL."),
        )),
    }
}

/// Builds (create) or merges (update) a custom provider definition and validates it whole.
pub(super) fn custom_definition(
    input: CustomProviderInput,
    current: Option<&CustomProviderDefinition>,
    method: AuthMethod,
) -> Result<CustomProviderDefinition, ServiceError> {
    let mut errors = vec![];
    let name = input
        .name
        .or_else(|| current.map(|c| c.name.clone()))
        .unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(
            "custom_provider.name",
            "invalid",
            "custom_provider.name is required: 1-200 characters.",
        ));
    }
    let token_body_content_type = match input.token_body_content_type {
        Some(raw) => TokenBodyContentType::parse(&raw).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "custom_provider.token_body_content_type",
                "invalid",
                "token_body_content_type must be application/x-www-form-urlencoded or application/json.",
            ));
            TokenBodyContentType::Form
        }),
        None => current.map_or(TokenBodyContentType::Form, |c| c.token_body_content_type),
    };
    let authenticate_via = match input.authenticate_via.as_deref() {
        Some("request_body") => AuthenticateVia::RequestBody,
        Some("basic_auth_header") => AuthenticateVia::BasicAuthHeader,
        Some(_) => {
            errors.push(FieldError::new(
                "custom_provider.authenticate_via",
                "invalid",
                "authenticate_via must be request_body or basic_auth_header.",
            ));
            AuthenticateVia::RequestBody
        }
        None => current.map_or(AuthenticateVia::RequestBody, |c| c.authenticate_via),
    };
    let separator = input
        .request_scope_separator
        .or_else(|| current.map(|c| c.request_scope_separator.clone()))
        .unwrap_or_else(|| " ".to_owned());
    if separator.is_empty() || separator.len() > 4 {
        errors.push(FieldError::new(
            "custom_provider.request_scope_separator",
            "invalid",
            "request_scope_separator must be 1-4 characters.",
        ));
    }
    let params = input
        .additional_authorization_parameters
        .or_else(|| current.map(|c| c.additional_authorization_parameters.clone()))
        .unwrap_or_default();
    const RESERVED_PARAMS: &[&str] = &[
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "scope",
    ];
    for key in params.keys() {
        if RESERVED_PARAMS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("custom_provider.additional_authorization_parameters.{key}"),
                "reserved",
                format!("'{key}' is set by Pipes and cannot be overridden."),
            ));
        }
    }
    let def = CustomProviderDefinition {
        name,
        authorization_url: input
            .authorization_url
            .apply(current.and_then(|c| c.authorization_url.clone())),
        token_url: input.token_url.apply(current.and_then(|c| c.token_url.clone())),
        refresh_token_url: input
            .refresh_token_url
            .apply(current.and_then(|c| c.refresh_token_url.clone())),
        pkce_enabled: input.pkce_enabled.or(current.map(|c| c.pkce_enabled)).unwrap_or(true),
        request_scope_separator: separator,
        scopes_required: input
            .scopes_required
            .or(current.map(|c| c.scopes_required))
            .unwrap_or(false),
        client_secret_required: input
            .client_secret_required
            .or(current.map(|c| c.client_secret_required))
            .unwrap_or(true),
        additional_authorization_parameters: params,
        token_body_content_type,
        authenticate_via,
    };
    check_endpoints(&def, method, &mut errors);
    if errors.is_empty() {
        Ok(def)
    } else {
        Err(ServiceError::invalid_fields(errors))
    }
}

/// The endpoints of a custom definition: static URLs, and those its auth method needs.
fn check_endpoints(def: &CustomProviderDefinition, method: AuthMethod, errors: &mut Vec<FieldError>) {
    let endpoints = [
        ("custom_provider.authorization_url", &def.authorization_url),
        ("custom_provider.token_url", &def.token_url),
        ("custom_provider.refresh_token_url", &def.refresh_token_url),
    ];
    for (field, value) in endpoints {
        if let Some(v) = value {
            parse_endpoint(field, v, errors);
        }
    }
    let needs_auth_url = method == AuthMethod::Oauth;
    let needs_token_url = matches!(method, AuthMethod::Oauth | AuthMethod::ClientCredentials);
    if needs_auth_url && def.authorization_url.is_none() {
        errors.push(FieldError::new(
            "custom_provider.authorization_url",
            "required",
            "custom_provider.authorization_url is required for OAuth providers.",
        ));
    }
    if needs_token_url && def.token_url.is_none() {
        errors.push(FieldError::new(
            "custom_provider.token_url",
            "required",
            format!(
                "custom_provider.token_url is required for {} providers.",
                method.as_str()
            ),
        ));
    }
}
