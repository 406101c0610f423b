//! Cross-cutting HTTP behaviour: request ids, the access log, and JSON bodies on every error.

use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pipes_core::ids::RequestId;

use crate::error::{ApiError, InternalCause};
use crate::state::App;

/// The edge of every request: admission (sizes and rate limits) and the request timeout, an
/// `X-Request-ID` on every response, the contract's JSON body on every error the framework
/// produced without one, and one log line per request. Only the path is logged, never the
/// query string (provider callbacks carry codes there) or any header.
pub async fn edge(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let id = RequestId::new().to_string();
    let started = Instant::now();
    let method = req.method().clone();
    let path = loggable(req.uri().path());
    req.extensions_mut().insert(id.clone());
    let mut response = match app.admission.admit(&req, &app.metrics) {
        Err(refused) => {
            if refused.status == StatusCode::PAYLOAD_TOO_LARGE {
                drain(req, app.limits.request_timeout).await;
            }
            refused.into_response()
        }
        Ok(()) => match tokio::time::timeout(app.limits.request_timeout, next.run(req)).await {
            Ok(response) => json_errors(response),
            Err(_) => {
                app.metrics.request_timed_out();
                let mut late = ApiError {
                    retry_after: Some(1),
                    ..ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "request_timeout",
                        format!(
                            "The request did not complete within {} s.",
                            app.limits.request_timeout.as_secs()
                        ),
                    )
                }
                .into_response();
                // The body may be half read: this connection cannot carry another request.
                late.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                late
            }
        },
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    // Answers carry tokens, secrets and single-use links: no cache keeps them.
    if !response.headers().contains_key(header::CACHE_CONTROL) {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        // The rest of the body was never read, so this connection cannot carry another
        // request: say so, or a client reuses it and its next request fails.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match response.extensions().get::<InternalCause>() {
        Some(InternalCause(cause)) => {
            tracing::error!(request_id = %id, %method, %path, status, latency_ms, cause = %cause, "request failed")
        }
        None => tracing::info!(request_id = %id, %method, %path, status, latency_ms, "request"),
    }
    response
}

/// Bodies refused for their declared size are still read (and dropped) while they keep
/// arriving, up to this much, so that a client still sending sees the 413 rather than a reset
/// connection; larger or stalled ones are cut.
const DRAIN_MAX: usize = 16 * 1024 * 1024;

async fn drain(req: Request, within: std::time::Duration) {
    use http_body_util::BodyExt;
    let stalled = std::time::Duration::from_millis(500);
    let mut body = req.into_body();
    let mut read = 0usize;
    let _ = tokio::time::timeout(within, async {
        while let Ok(Some(Ok(frame))) = tokio::time::timeout(stalled, body.frame()).await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > DRAIN_MAX {
                break;
            }
        }
    })
    .await;
}

/// The path as the access log may show it: an authorize link's id is the link's secret.
fn loggable(path: &str) -> String {
    match path
        .strip_prefix("/data-integrations/")
        .and_then(|rest| rest.strip_suffix("/authorize-redirect"))
    {
        Some(id) if !id.contains('/') => "/data-integrations/{id}/authorize-redirect".to_owned(),
        _ => path.to_owned(),
    }
}

/// Replaces an error response without a typed body (framework rejections come bodiless or as
/// plain text) with one in the contract's shape, so SDKs always get `{code, message}`. Our own
/// errors are JSON and the hosted pages are HTML: those pass untouched.
fn json_errors(response: Response) -> Response {
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", "Not found."),
        StatusCode::METHOD_NOT_ALLOWED => ("method_not_allowed", "This method is not allowed on this path."),
        StatusCode::PAYLOAD_TOO_LARGE => ("payload_too_large", "The request body is too large."),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            "Send JSON with Content-Type: application/json.",
        ),
        s if s.is_server_error() => ("internal_error", "An internal error occurred."),
        _ => ("bad_request", "The request could not be processed."),
    };
    let mut fixed = ApiError::new(status, code, message).into_response();
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            fixed.headers_mut().insert(name.clone(), value.clone());
        }
    }
    fixed
}

/// Unknown paths.
pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("No route for {method} {}.", uri.path()),
    )
}

/// Known paths, wrong method.
pub async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("{method} is not allowed on {}.", uri.path()),
    )
}

/// A handler panicked: answer 500 in the contract's shape; the panic itself is logged.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = err
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_else(|| "panic".to_owned());
    ApiError::internal(format!("handler panicked: {detail}")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorize_link_ids_never_reach_the_log() {
        assert_eq!(
            loggable("/data-integrations/Zk3vQ9secret/authorize-redirect"),
            "/data-integrations/{id}/authorize-redirect"
        );
        assert_eq!(loggable("/data-integrations/github"), "/data-integrations/github");
    }
}
