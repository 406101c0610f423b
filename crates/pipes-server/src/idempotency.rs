//! `Idempotency-Key` on resource-creating POSTs (contract §2.9): the same key with the same
//! request replays the stored answer; with a different request, or while the first is still
//! running, it is a 409. Keys are per environment and kept 24 hours (the janitor deletes them
//! after). 5xx answers are not stored, so a retry can succeed. Answers can hold secrets (a new
//! webhook endpoint's signing secret, a connect link), so they are stored sealed by the vault.

use axum::body::Body;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use pipes_core::oauth::random_token;
use pipes_core::store::{IdempotencyBegin, IdempotencyClaim};
use pipes_core::time::now_ms;
use pipes_core::vault::{Sealed, SealedColumn};
use sha2::{Digest, Sha256};

use crate::auth::EnvAuth;
use crate::error::ApiError;
use crate::extract::read_body;
use crate::state::App;

/// How long a key and its answer are kept.
pub const RETENTION_MS: i64 = 24 * 60 * 60 * 1000;
/// A claim older than this whose request never finished belongs to a request that died.
const STALE_MS: i64 = 60 * 1000;

fn conflict(message: &str) -> Response {
    ApiError::new(StatusCode::CONFLICT, "idempotency_key_conflict", message).into_response()
}

/// Middleware for routes that create resources.
pub async fn idempotent(State(app): State<App>, req: Request, next: Next) -> Response {
    let Some(raw) = req.headers().get("idempotency-key").cloned() else {
        return next.run(req).await;
    };
    let key = match raw.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_owned(),
        _ => {
            return ApiError::bad_request("Idempotency-Key must be 1 to 255 visible ASCII characters.").into_response()
        }
    };
    let (mut parts, body) = req.into_parts();
    let env = match EnvAuth::from_request_parts(&mut parts, &app).await {
        Ok(env) => env,
        Err(e) => return e.into_response(),
    };
    let bytes = match read_body(Request::new(body), app.limits.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update([0]);
    hasher.update(parts.uri.path_and_query().map_or("", |p| p.as_str()));
    hasher.update([0]);
    hasher.update(&bytes);
    let fingerprint = pipes_core::hex::encode(&hasher.finalize());
    let now = now_ms();
    let env_id = env.0.id;
    let record_id = random_token(16);
    let claim = IdempotencyClaim {
        env: env_id,
        key: &key,
        record_id: &record_id,
        fingerprint: &fingerprint,
        now,
        expired_before: now - RETENTION_MS,
        stale_before: now - STALE_MS,
    };
    match app.store.idempotency_begin(&claim).await {
        Err(e) => return ApiError::unavailable(e.to_string()).into_response(),
        Ok(IdempotencyBegin::Started) => {}
        Ok(IdempotencyBegin::InFlight) => {
            return conflict("A request with this Idempotency-Key is still being processed; retry shortly.")
        }
        Ok(IdempotencyBegin::Mismatch) => {
            return conflict("This Idempotency-Key was already used for a different request.")
        }
        Ok(IdempotencyBegin::Completed {
            record_id,
            status,
            body,
        }) => {
            let answer = match app
                .vault
                .open(&Sealed(body), SealedColumn::IdempotentAnswer.aad(&record_id))
            {
                Ok(answer) => answer,
                Err(e) => return ApiError::internal(format!("a recorded answer does not open: {e}")).into_response(),
            };
            let mut replay = Response::new(Body::from(answer));
            *replay.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = replay.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            return replay;
        }
    }
    parts.extensions.insert(env);
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let outcome = if parts.status.is_server_error() {
        app.store.idempotency_release(env_id, &key).await
    } else {
        let sealed = app.vault.seal(&bytes, SealedColumn::IdempotentAnswer.aad(&record_id));
        app.store
            .idempotency_complete(env_id, &key, parts.status.as_u16(), &sealed.0)
            .await
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "could not record the idempotency key's outcome");
    }
    Response::from_parts(parts, Body::from(bytes))
}
