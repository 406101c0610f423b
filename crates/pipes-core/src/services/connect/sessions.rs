//! Hosted connect sessions: the page an application without React sends a user to. The
//! application asks for a session with its API key and gets a link carrying a single-use code;
//! the first visit trades the code for a cookie, and the page then acts for that session alone.

use super::super::selection::OwnerChoice;
use super::*;
use crate::domain::{AllowList, ConnectSession, Owner};
use crate::time::Millis;

/// How long a link works if nobody opens it.
const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// How long the page works once opened.
const PAGE_TTL_MS: i64 = 30 * 60 * 1000;

/// Where the connect page lives, relative to Pipes' public URL.
pub const CONNECT_PAGE: &str = "/pipes/connect";

/// `POST /pipes/connect_sessions`, parsed at the edge.
#[derive(Debug)]
pub struct NewConnectSession {
    /// The user (and the organization the connections are scoped to).
    pub choice: OwnerChoice,
    /// Offer only these providers; empty offers every enabled one.
    pub providers: Vec<Slug>,
    /// Where "Done" sends a full-page visit; a registered redirect URI.
    pub return_to: Option<String>,
    /// The origin a popup reports its result to; an allowed web origin.
    pub opener_origin: Option<String>,
}

/// A new session: the link to hand the user, and when it stops working unopened.
#[derive(Debug)]
pub struct SessionLink {
    /// `{public_url}/pipes/connect?code=…`.
    pub url: SecretString,
    /// Unopened, the link expires then.
    pub expires_at: Millis,
}

impl Connect {
    /// Creates a connect session for a user.
    pub async fn create_session(&self, env: &Environment, req: NewConnectSession) -> Result<SessionLink, ServiceError> {
        let store = self.deps.store.as_ref();
        if let Some(raw) = &req.return_to {
            let registered = store.allowed(env.id, AllowList::RedirectUris).await?;
            parse_return_to(Some(raw), false, &registered)?;
        }
        if let Some(origin) = &req.opener_origin {
            if !store.allowed(env.id, AllowList::WebOrigins).await?.contains(origin) {
                return Err(ServiceError::invalid_field(
                    "opener_origin",
                    "invalid",
                    "opener_origin must be one of the environment's web origins (pipes origins add).",
                ));
            }
        }
        for slug in &req.providers {
            if store.data_integration(env.id, slug, Ownership::User).await?.is_none() {
                return Err(ServiceError::invalid_field(
                    "providers",
                    "not_found",
                    format!("No data integration '{slug}' exists in this environment."),
                ));
            }
        }
        let code = random_token(32);
        let now = now_ms();
        let owner = &req.choice.owner;
        let session = ConnectSession {
            id: random_token(18),
            environment_id: env.id,
            owner: Owner::user(
                owner.user_id.as_deref().unwrap_or_default(),
                owner.organization_id.as_deref(),
            ),
            providers: req.providers.iter().map(ToString::to_string).collect(),
            return_to: req.return_to,
            opener_origin: req.opener_origin,
            code_hash: sha256_hex(&code),
            cookie_hash: None,
            csrf_token: random_token(24),
            created_at: now,
            expires_at: now + CODE_TTL_MS,
        };
        store.insert_connect_session(&session).await?;
        Ok(SessionLink {
            url: SecretString::new(format!("{}{CONNECT_PAGE}?code={code}", self.public_url)),
            expires_at: session.expires_at,
        })
    }

    /// The first visit: trades the link's code for a cookie value, once.
    pub async fn open_session(&self, code: &str) -> Result<Option<SecretString>, ServiceError> {
        let cookie = random_token(32);
        let now = now_ms();
        let opened = self
            .deps
            .store
            .open_connect_session(&sha256_hex(code), &sha256_hex(&cookie), now, now + PAGE_TTL_MS)
            .await?;
        Ok(opened.map(|_| SecretString::new(cookie)))
    }

    /// The session a cookie opens, with its environment.
    pub async fn session(&self, cookie: &str) -> Result<Option<(Environment, ConnectSession)>, ServiceError> {
        let store = self.deps.store.as_ref();
        let Some(session) = store.connect_session_by_cookie(&sha256_hex(cookie), now_ms()).await? else {
            return Ok(None);
        };
        Ok(store
            .environment(session.environment_id)
            .await?
            .map(|env| (env, session)))
    }

    /// The connect page's own URL: where its OAuth flows return.
    pub fn connect_page(&self) -> String {
        format!("{}{CONNECT_PAGE}", self.public_url)
    }
}
