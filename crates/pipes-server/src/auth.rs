//! API-key authentication as an extractor: a handler that takes [`EnvAuth`] only runs for a
//! caller holding a valid key, and only sees that key's environment.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use pipes_core::domain::Environment;

use crate::error::ApiError;
use crate::state::App;

/// The environment of the presented API key.
#[derive(Debug, Clone)]
pub struct EnvAuth(pub Environment);

impl FromRequestParts<App> for EnvAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        // Already authenticated by a middleware (idempotency) for this request.
        if let Some(env) = parts.extensions.get::<EnvAuth>() {
            return Ok(env.clone());
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        match app.environments.authenticate(key).await? {
            Some(env) => Ok(EnvAuth(env)),
            None => Err(ApiError::unauthorized()),
        }
    }
}
