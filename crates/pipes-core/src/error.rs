//! The errors services report. The HTTP edge maps each to a status and the contract's body.

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Machine-readable reason.
    pub code: String,
    /// The field, dotted for nested ones (`custom_provider.token_url`).
    pub field: String,
    /// What is wrong, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl FieldError {
    /// A field error with a message.
    pub fn new(field: impl Into<String>, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            field: field.into(),
            message: Some(message.into()),
        }
    }
}

/// A failure a caller can act on, or an internal fault.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// 400: malformed or contradictory request.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// 403: the caller may not do this.
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// 404: the named thing does not exist (for this environment).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// 409: the request conflicts with the current state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// 422: the request is well-formed but invalid.
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        errors: Vec<FieldError>,
    },
    /// 503: a dependency (a provider) is temporarily unavailable; the caller may retry.
    #[error("{message}")]
    Unavailable { message: String, retry_after: u64 },
    /// 503: the database refuses work for now (down, restarting, full); the caller may retry.
    /// The detail goes to the log.
    #[error("storage unavailable: {0}")]
    StorageUnavailable(String),
    /// 5xx: a real fault. The detail goes to the log, never to the caller.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// 400 with a machine-readable code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// `404 entity_not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            code: "entity_not_found",
            message: message.into(),
        }
    }

    /// `422 invalid_request_parameters` for a single field.
    pub fn invalid_field(field: &str, code: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::Invalid {
            code: "invalid_request_parameters",
            message: message.clone(),
            errors: vec![FieldError::new(field, code, message)],
        }
    }

    /// `422 invalid_request_parameters` for several fields at once.
    pub fn invalid_fields(errors: Vec<FieldError>) -> Self {
        let message = errors
            .iter()
            .map(|e| e.message.clone().unwrap_or_else(|| format!("{}: {}", e.field, e.code)))
            .collect::<Vec<_>>()
            .join("; ");
        Self::Invalid {
            code: "invalid_request_parameters",
            message,
            errors,
        }
    }
}

impl From<crate::store::StoreError> for ServiceError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            crate::store::StoreError::NotMember => Self::Forbidden {
                code: "user_not_member_of_organization",
                message: "The user is not an active member of the organization.".into(),
            },
            crate::store::StoreError::Unavailable(cause) => Self::StorageUnavailable(cause),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<crate::vault::VaultError> for ServiceError {
    fn from(e: crate::vault::VaultError) -> Self {
        Self::Internal(e.to_string())
    }
}
