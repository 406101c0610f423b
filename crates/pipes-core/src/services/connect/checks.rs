//! The checks of an authorize request, each a function of what it reads: the edge parses the
//! body with the first three; the service checks the rest against what is stored.

use super::*;
use crate::domain::Effective;

/// `code_challenge` and its method: S256 only, a 43-character base64url value.
pub fn code_challenge(challenge: Option<String>, method: Option<&str>) -> Result<Option<String>, ServiceError> {
    if method.is_some() && challenge.is_none() {
        return Err(ServiceError::bad_request(
            "code_challenge_not_found",
            "code_challenge_method was sent without code_challenge.",
        ));
    }
    if method.is_some_and(|m| m != "S256") {
        return Err(ServiceError::bad_request(
            "invalid_code_challenge_method",
            "Only S256 is supported as code_challenge_method.",
        ));
    }
    if let Some(ch) = &challenge {
        if ch.len() != 43 || !ch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(ServiceError::bad_request(
                "invalid_code_challenge",
                "code_challenge must be the base64url SHA-256 of your code_verifier (43 characters).",
            ));
        }
    }
    Ok(challenge)
}

/// `return_to`: absolute http(s); with `code_challenge`, exactly a registered redirect URI;
/// without, a registered one (loopback: any port), query allowed. Required with a challenge.
pub(super) fn parse_return_to(
    raw: Option<&str>,
    challenge: bool,
    registered: &[String],
) -> Result<Option<String>, ServiceError> {
    Ok(match raw {
        None if challenge => {
            return Err(ServiceError::bad_request(
                "return_to_requires_exact_match",
                "return_to is required with code_challenge.",
            ))
        }
        None => None,
        Some(raw) => {
            let parsed = url::Url::parse(raw)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                .ok_or_else(|| {
                    ServiceError::bad_request("invalid_return_to", "return_to must be an absolute http(s) URL.")
                })?;
            if challenge {
                if parsed.query().is_some()
                    || parsed.fragment().is_some()
                    || !matches_registered(&parsed, registered, false)
                {
                    return Err(ServiceError::bad_request(
                        "return_to_requires_exact_match",
                        "With code_challenge, return_to must exactly match a registered redirect URI (pipes redirect-uris add).",
                    ));
                }
            } else if parsed.fragment().is_some() || !matches_registered(&parsed, registered, true) {
                return Err(ServiceError::bad_request(
                    "invalid_return_to",
                    "return_to must match a redirect URI registered for this environment (pipes redirect-uris add).",
                ));
            }
            Some(raw.to_owned())
        }
    })
}

/// `connection_intent` and `connected_account_id`.
pub fn connection_intent(intent: Option<&str>, account: Option<&str>) -> Result<ConnectionIntent, ServiceError> {
    Ok(match (intent, account) {
        (None, None) => ConnectionIntent::Compatibility,
        (Some("add"), None) => ConnectionIntent::Add,
        (Some("reauthorize"), Some(id)) => {
            ConnectionIntent::Reauthorize(ConnectedAccountId::parse(id).map_err(|_| account_not_found())?)
        }
        (Some("reauthorize"), None) => {
            return Err(ServiceError::bad_request(
                "connected_account_id_required",
                "connection_intent reauthorize requires connected_account_id.",
            ))
        }
        (_, Some(_)) => {
            return Err(ServiceError::bad_request(
                "connected_account_id_not_allowed",
                "connected_account_id is only accepted with connection_intent reauthorize.",
            ))
        }
        (Some(_), None) => {
            return Err(ServiceError::invalid_field(
                "connection_intent",
                "invalid",
                "connection_intent must be add or reauthorize.",
            ))
        }
    })
}

/// A label: absent, cleared, or at most 255 characters.
pub fn display_name(label: Patch<String>) -> Result<Option<Option<Label>>, ServiceError> {
    Ok(match label.try_map(|v| Label::parse("account_display_name", v))? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Value(v) => Some(Some(v)),
    })
}

/// Whether users may connect to `root` now: enabled for them, valid, and with an OAuth app
/// (the organization's own, for organization-credential integrations).
pub(super) fn check_connectable(root: &DataIntegration, effective: &Effective) -> Result<(), ServiceError> {
    if !effective.enabled || root.state != crate::domain::IntegrationState::Valid {
        return Err(ServiceError::Invalid {
            code: "invalid_data_integration_state",
            message: "The data integration is disabled or not configured; enable it before connecting.".into(),
            errors: vec![],
        });
    }
    if root.credentials.is_none()
        || (root.uses_organization_apps() && effective.settings.as_ref().is_none_or(|s| s.app.is_none()))
    {
        return Err(ServiceError::Invalid {
            code: "invalid_data_integration_state",
            message: "This integration uses each organization's own OAuth app, and the organization has not \
                      registered one (PUT /organizations/{id}/data_integration_configurations/{slug})."
                .into(),
            errors: vec![],
        });
    }
    Ok(())
}
