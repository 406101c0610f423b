//! Who a widget request acts for: the claims of its widget token, checked against the page's
//! origin. Every refusal is a 403, the status on which the widgets fetch a new token and retry
//! once (and, if the token has expired, say "Session expired").

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use pipes_core::domain::{AllowList, Environment};
use pipes_core::ids::EnvironmentId;
use pipes_core::services::{OwnerChoice, OwnerInput, TokenError};

use crate::error::ApiError;
use crate::state::App;

/// The permission `<PipesAdmin/>` needs.
pub const MANAGE: &str = "widgets:pipes:manage";

/// An authenticated widget request.
#[derive(Debug)]
pub struct Widget {
    /// The token's environment.
    pub env: Environment,
    /// The user the token acts for.
    user: Option<String>,
    /// The organization it is scoped to.
    org: Option<String>,
    /// Its permissions.
    permissions: Vec<String>,
}

fn refused(message: &str) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

impl Widget {
    /// The user's own connections (scoped to the token's organization, if any).
    pub fn member(&self) -> Result<OwnerChoice, ApiError> {
        let user = self
            .user
            .as_deref()
            .ok_or_else(|| refused("This widget token names no user; mint one with a user_id."))?;
        Ok(OwnerInput {
            connection_owner: None,
            user_id: Some(user),
            organization_id: self.org.as_deref(),
        }
        .parse(true)?)
    }

    /// The token's organization.
    pub fn organization(&self) -> Result<&str, ApiError> {
        self.org
            .as_deref()
            .ok_or_else(|| refused("This widget token names no organization; mint one with an organization_id."))
    }

    /// The organization an administrator (`widgets:pipes:manage`) manages.
    pub fn managed_organization(&self) -> Result<&str, ApiError> {
        if !self.permissions.iter().any(|p| p == MANAGE) {
            return Err(refused(
                "This widget token lacks the widgets:pipes:manage permission needed to manage integrations.",
            ));
        }
        self.organization()
    }

    /// The organization's shared connections, acted on by the token's user.
    pub fn shared(&self) -> Result<OwnerChoice, ApiError> {
        Ok(OwnerInput {
            connection_owner: Some("organization"),
            user_id: self.user.as_deref(),
            organization_id: Some(self.organization()?),
        }
        .parse(false)?)
    }

    /// The user the token acts for (the one who authorizes a flow).
    pub fn user_id(&self) -> Result<String, ApiError> {
        self.user
            .clone()
            .ok_or_else(|| refused("This widget token names no user; mint one with a user_id."))
    }
}

impl FromRequestParts<App> for Widget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| refused("A widget token is required (Authorization: Bearer)."))?;
        let claims = app.widget_tokens.verify_widget_token(token).map_err(|e| match e {
            TokenError::Expired => refused("The session has expired; reload the page."),
            TokenError::Invalid | TokenError::WrongAudience => refused("The widget token is not valid."),
        })?;
        let env_id = EnvironmentId::parse(&claims.env).map_err(|_| refused("The widget token is not valid."))?;
        let env = app
            .store
            .environment(env_id)
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?
            .ok_or_else(|| refused("The widget token is not valid."))?;
        if let Some(origin) = parts.headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
            let allowed = app
                .store
                .allowed(env.id, AllowList::WebOrigins)
                .await
                .map_err(|e| ApiError::unavailable(e.to_string()))?;
            if !allowed.iter().any(|a| a == origin) {
                return Err(refused(
                    "This page's origin may not use this environment's widgets (pipes origins add).",
                ));
            }
        }
        Ok(Self {
            env,
            user: claims.sub,
            org: claims.org_id,
            permissions: claims.permissions,
        })
    }
}
