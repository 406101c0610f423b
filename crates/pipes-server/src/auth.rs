//! API-key authentication as extractors: a handler that takes [`EnvAuth`] only runs for a
//! caller holding a valid key, and only sees that key's environment. [`BearerKey`] only reads
//! the header, for the vending path that authenticates inside its one database read.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use pipes_core::domain::Environment;

use crate::error::ApiError;
use crate::state::App;

/// The environment of the presented API key.
#[derive(Debug, Clone)]
pub struct EnvAuth(pub Environment);

/// The presented API key, not yet checked against the database.
pub struct BearerKey(pub String);

impl std::fmt::Debug for BearerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerKey([REDACTED])")
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(|k| BearerKey(k.trim().to_owned()))
            .ok_or_else(ApiError::unauthorized)
    }
}

impl BearerKey {
    /// Authenticates the key: the environment it opens, or 401.
    pub async fn environment(&self, app: &App) -> Result<Environment, ApiError> {
        app.environments
            .authenticate(&self.0)
            .await?
            .ok_or_else(ApiError::unauthorized)
    }
}

impl FromRequestParts<App> for EnvAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        // Already authenticated by a middleware (idempotency) for this request.
        if let Some(env) = parts.extensions.get::<EnvAuth>() {
            return Ok(env.clone());
        }
        let key = BearerKey::from_request_parts(parts, app).await?;
        Ok(EnvAuth(key.environment(app).await?))
    }
}
