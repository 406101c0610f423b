//! [`AuthorizationStore`]: the connect flow's authorizations.

use async_trait::async_trait;
use pipes_core::domain::{Authorization, AuthorizationStatus, ConnectSession, ConnectionIntent};
use pipes_core::store::{AuthorizationStore, StoreResult};

use super::{Params, SqlStore};
use crate::rows;

impl SqlStore {
    async fn authorization_where(&self, column: &'static str, value: &str) -> StoreResult<Option<Authorization>> {
        self.optional(
            q!(&format!("SELECT * FROM authorizations WHERE {column} = $1"), value),
            rows::authorization,
        )
        .await
    }
}

/// What a step of the flow changes in an authorization.
fn progress_columns<'q>(p: &mut Params<'q>, a: &'q Authorization) {
    p.set("status", a.status.as_str())
        .set("connect_code_hash", a.connect_code_hash.as_deref())
        .set("connect_code_expires_at", a.connect_code_expires_at)
        .set("held_tokens", a.held_tokens.as_ref().map(|s| s.0.clone()))
        .set("connected_account_id", a.connected_account_id.map(|id| id.to_string()))
        .set("browser_hash", a.browser_hash.as_deref());
}

#[async_trait]
impl AuthorizationStore for SqlStore {
    async fn insert_authorization(&self, a: &Authorization) -> StoreResult<()> {
        let (intent, target) = match &a.intent {
            ConnectionIntent::Compatibility => (None, None),
            ConnectionIntent::Add => (Some("add"), None),
            ConnectionIntent::Reauthorize(id) => (Some("reauthorize"), Some(id.to_string())),
        };
        let mut p = Params::default();
        p.set("id", a.id.as_str())
            .set("environment_id", a.environment_id.to_string())
            .set("data_integration_id", a.data_integration_id.to_string())
            .set("connection_owner", a.owner.ownership.as_str())
            .set("user_id", a.user_id.as_str())
            .set("organization_id", a.owner.organization_id.as_deref())
            .set("connection_intent", intent)
            .set("target_account_id", target)
            .set("return_to", a.return_to.as_deref())
            .set("state", a.state.as_str())
            .set("provider_state", a.provider_state.as_str())
            .set("pkce_verifier", a.pkce_verifier.as_ref().map(|s| s.0.clone()))
            .set("code_challenge", a.code_challenge.as_deref())
            .set("config", rows::to_json(&a.config))
            .set("account_display_name", a.account_display_name.clone().flatten())
            .set("display_name_given", i64::from(a.account_display_name.is_some()))
            .set("csrf_token", a.csrf_token.as_str())
            .set("handoff", i64::from(a.handoff))
            .set("created_at", a.created_at)
            .set("expires_at", a.expires_at);
        progress_columns(&mut p, a);
        let sql = format!("INSERT INTO authorizations {}", p.insert());
        self.write(p.query(&sql)?).await?;
        Ok(())
    }

    async fn authorization(&self, id: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("id", id).await
    }

    async fn authorization_by_provider_state(&self, state: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("provider_state", state).await
    }

    async fn authorization_by_connect_code(&self, hash: &str) -> StoreResult<Option<Authorization>> {
        self.authorization_where("connect_code_hash", hash).await
    }

    async fn advance_authorization(&self, a: &Authorization, from: AuthorizationStatus) -> StoreResult<bool> {
        let mut p = Params::default();
        progress_columns(&mut p, a);
        let sql = format!(
            "UPDATE authorizations SET {} WHERE id = {} AND status = {}",
            p.assignments(),
            p.push(a.id.as_str()),
            p.push(from.as_str())
        );
        Ok(self.write(p.query(&sql)?).await? == 1)
    }

    async fn purge_authorizations(&self, before: i64) -> StoreResult<u64> {
        self.write(q!("DELETE FROM connect_sessions WHERE expires_at < $1", before))
            .await?;
        self.write(q!("DELETE FROM authorizations WHERE expires_at < $1", before))
            .await
    }

    async fn insert_connect_session(&self, s: &ConnectSession) -> StoreResult<()> {
        let mut p = Params::default();
        p.set("id", s.id.as_str())
            .set("environment_id", s.environment_id.to_string())
            .set("user_id", s.owner.user_id.as_deref().unwrap_or_default())
            .set("organization_id", s.owner.organization_id.as_deref())
            .set("providers", rows::to_json(&s.providers))
            .set("return_to", s.return_to.as_deref())
            .set("opener_origin", s.opener_origin.as_deref())
            .set("code_hash", s.code_hash.as_str())
            .set("cookie_hash", s.cookie_hash.as_deref())
            .set("csrf_token", s.csrf_token.as_str())
            .set("created_at", s.created_at)
            .set("expires_at", s.expires_at);
        let sql = format!("INSERT INTO connect_sessions {}", p.insert());
        self.write(p.query(&sql)?).await?;
        Ok(())
    }

    async fn open_connect_session(
        &self,
        code_hash: &str,
        cookie_hash: &str,
        now: i64,
        until: i64,
    ) -> StoreResult<Option<ConnectSession>> {
        let opened = self
            .write(q!(
                "UPDATE connect_sessions SET cookie_hash = $1, expires_at = $2 \
                 WHERE code_hash = $3 AND cookie_hash IS NULL AND expires_at > $4",
                cookie_hash,
                until,
                code_hash,
                now
            ))
            .await?;
        if opened != 1 {
            return Ok(None);
        }
        self.connect_session_by_cookie(cookie_hash, now).await
    }

    async fn connect_session_by_cookie(&self, cookie_hash: &str, now: i64) -> StoreResult<Option<ConnectSession>> {
        self.optional(
            q!(
                "SELECT * FROM connect_sessions WHERE cookie_hash = $1 AND expires_at > $2",
                cookie_hash,
                now
            ),
            rows::connect_session,
        )
        .await
    }
}
