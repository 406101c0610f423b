//! The one error type at the HTTP edge. Bodies follow the contract: `{"code", "message"}` plus
//! `errors` on validation failures. Internal causes go to the log, never into a body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use pipes_core::{FieldError, ServiceError};
use serde::Serialize;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: &'static str,
    /// Human-readable message (never a secret, never an internal detail).
    pub message: String,
    /// Field errors for 422.
    pub errors: Vec<FieldError>,
    /// Logged, not shown.
    pub internal: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    /// Seconds to wait, in 429 bodies (as the contract gives them).
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_after: Option<u64>,
}

/// The logged cause of a 5xx, carried to the access log as a response extension.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            errors: vec![],
            internal: None,
            retry_after: None,
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401 `unauthorized`.
    pub fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Invalid API key.")
    }

    /// 503 for a dependency that is down; the cause is logged.
    pub fn unavailable(cause: String) -> Self {
        Self {
            internal: Some(cause),
            ..Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "The service is temporarily unavailable.",
            )
        }
    }

    /// 413 `payload_too_large` for a body over `limit` bytes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("The request body is larger than {limit} bytes."),
        )
    }

    /// 429 `rate_limit_exceeded`: try again after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        Self {
            retry_after: Some(secs),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_exceeded",
                format!("Too many requests; retry after {secs} s."),
            )
        }
    }

    /// 500; the cause is logged.
    pub fn internal(cause: String) -> Self {
        Self {
            internal: Some(cause),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "An internal error occurred.",
            )
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::BadRequest { code, message } => Self::new(StatusCode::BAD_REQUEST, code, message),
            ServiceError::Forbidden { code, message } => Self::new(StatusCode::FORBIDDEN, code, message),
            ServiceError::NotFound { code, message } => Self::new(StatusCode::NOT_FOUND, code, message),
            ServiceError::Conflict { code, message } => Self::new(StatusCode::CONFLICT, code, message),
            ServiceError::Invalid { code, message, errors } => Self {
                errors,
                ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            },
            ServiceError::Unavailable { message, retry_after } => Self {
                retry_after: Some(retry_after),
                ..Self::new(StatusCode::SERVICE_UNAVAILABLE, "provider_unavailable", message)
            },
            ServiceError::StorageUnavailable(cause) => Self {
                retry_after: Some(1),
                ..Self::unavailable(cause)
            },
            ServiceError::Internal(cause) => Self::internal(cause),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.code,
            message: &self.message,
            errors: &self.errors,
            retry_after: self
                .retry_after
                .filter(|_| self.status == StatusCode::TOO_MANY_REQUESTS),
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = axum::http::HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        if let Some(cause) = self.internal {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}
