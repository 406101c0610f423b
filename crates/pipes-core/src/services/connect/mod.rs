//! The connection flow: `POST …/authorize` creates a single-use authorization; the browser
//! lands on the hosted page, goes to the provider and comes back to the callback, where the
//! code is exchanged and the connection saved (or held for `finish` when the app bound the
//! flow to its session with a `code_challenge`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::organizations::organization_redirect_uri;
use super::resolve::{check_installation_config, provider_name, resolve_oauth, ResolveError};
use super::selection::{account_not_found, place, select, Intent, Placement, Selector};
use super::Deps;
use super::Patch;
use crate::domain::{
    AllowList, AuthMethod, Authorization, AuthorizationStatus, ConnectedAccount, ConnectionIntent, ConnectionRole,
    DataIntegration, Environment, OrganizationSettings, Ownership, TokenSet,
};
use crate::error::ServiceError;
use crate::events::{account_events, failure_events, AccountChange, Actor, ConnectionFailure};
use crate::fields::Label;
use crate::ids::ConnectedAccountId;
use crate::oauth::{pkce_challenge, random_token, ClientApp, ResolvedProvider};
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::StoreError;
use crate::time::now_ms;
use crate::vault::SealedColumn;

mod callback;
mod checks;
mod sessions;
mod types;

use checks::{check_connectable, parse_return_to};
pub use checks::{code_challenge, connection_intent, display_name};
pub use sessions::{NewConnectSession, SessionLink, CONNECT_PAGE};
use types::FlowError;
pub use types::{Authorize, AuthorizeOutcome, CallbackQuery, ConfirmScreen, Ending, FinishRequest, PageOutcome};

/// An authorization link works for 10 minutes if never opened.
const LINK_TTL_MS: i64 = 10 * 60 * 1000;
/// Once opened, the user has until 30 minutes after creation to come back.
const TOTAL_TTL_MS: i64 = 30 * 60 * 1000;
/// A connect code works for 90 seconds.
const CONNECT_CODE_TTL_MS: i64 = 90 * 1000;

/// The connection flow.
#[derive(Clone)]
pub struct Connect {
    deps: Deps,
    public_url: Arc<str>,
}

impl std::fmt::Debug for Connect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connect")
    }
}

fn sha256_hex(s: &str) -> String {
    crate::hex::sha256(s.as_bytes())
}

fn is_loopback_host(u: &url::Url) -> bool {
    super::environments::is_loopback(u)
}

/// Whether `return_to` matches a registered redirect URI: exactly, except that loopback URIs
/// match on any port. `ignore_query`: compare without the query (non-bound flows may carry one).
fn matches_registered(return_to: &url::Url, registered: &[String], ignore_query: bool) -> bool {
    registered.iter().filter_map(|r| url::Url::parse(r).ok()).any(|r| {
        let same_port = r.port_or_known_default() == return_to.port_or_known_default() || is_loopback_host(&r);
        let same_query = ignore_query || r.query() == return_to.query();
        r.scheme() == return_to.scheme()
            && r.host_str() == return_to.host_str()
            && same_port
            && r.path() == return_to.path()
            && same_query
    })
}

fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

impl Connect {
    /// The service; `public_url` is the origin browsers reach.
    pub fn new(deps: Deps, public_url: &str) -> Self {
        Self {
            deps,
            public_url: Arc::from(public_url.trim_end_matches('/')),
        }
    }

    fn provider_name(&self, root: &DataIntegration) -> String {
        provider_name(root, self.deps.catalog)
    }

    /// Creates a pending authorization and returns the hosted URL.
    pub async fn authorize(
        &self,
        env: &Environment,
        slug: &Slug,
        req: Authorize,
    ) -> Result<AuthorizeOutcome, ServiceError> {
        let Authorize {
            choice,
            user_id,
            return_to,
            code_challenge,
            config,
            intent,
            display_name,
            handoff,
        } = req;
        let mut registered = self.deps.store.allowed(env.id, AllowList::RedirectUris).await?;
        // Pipes' own connect page is where its flows come back to.
        registered.push(self.connect_page());
        let return_to = parse_return_to(return_to.as_deref(), code_challenge.is_some(), &registered)?;
        let (root, _) = select(self.deps.store.as_ref(), env, slug, &choice.owner, &Selector::default()).await?;
        if root.auth_method != AuthMethod::Oauth {
            return Err(ServiceError::Invalid {
                code: "auth_method_mismatch",
                message: format!(
                    "This integration uses {} authentication and has no authorization flow.",
                    root.auth_method.as_str()
                ),
                errors: vec![],
            });
        }
        let effective = self.deps.organizations.effective_for(env, &root, &choice).await?;
        check_connectable(&root, &effective)?;
        place(
            self.deps.store.as_ref(),
            env,
            &root,
            &choice.owner,
            Intent::from(&intent),
        )
        .await?;
        let config = check_installation_config(&root, config, self.deps.catalog, true)?;
        let id = random_token(18).replace(['-', '_'], "x");
        let pkce = match &root.custom_provider {
            Some(cp) => cp.definition.pkce_enabled,
            None => self.deps.catalog.for_root(&root).is_some_and(|p| p.pkce),
        };
        let pkce_verifier = pkce.then(|| {
            let verifier = SecretString::new(random_token(48));
            self.deps
                .vault
                .seal_secret(&verifier, SealedColumn::PkceVerifier.aad(&id))
        });
        let now = now_ms();
        let authorization = Authorization {
            id: id.clone(),
            environment_id: env.id,
            data_integration_id: root.id,
            owner: choice.owner,
            user_id,
            intent,
            return_to,
            state: format!("st_{}", random_token(18)),
            provider_state: random_token(24),
            pkce_verifier,
            code_challenge,
            config,
            account_display_name: display_name.map(|label| label.map(Label::into_string)),
            csrf_token: random_token(24),
            handoff,
            browser_hash: None,
            status: AuthorizationStatus::Pending,
            connect_code_hash: None,
            connect_code_expires_at: None,
            held_tokens: None,
            connected_account_id: None,
            created_at: now,
            expires_at: now + LINK_TTL_MS,
        };
        self.deps.store.insert_authorization(&authorization).await?;
        Ok(AuthorizeOutcome {
            url: format!("{}/data-integrations/{id}/authorize-redirect", self.public_url),
            id,
            finish_required: authorization.code_challenge.is_some(),
            handoff_token: handoff.then(|| SecretString::new(authorization.csrf_token.clone())),
            state: authorization.state,
        })
    }

    async fn live_authorization(&self, id: &str) -> Result<Option<(Authorization, DataIntegration)>, ServiceError> {
        let Some(a) = self.deps.store.authorization(id).await? else {
            return Ok(None);
        };
        // A session-bound link may be opened again while it waits at the provider (a link
        // preview, then the user): each visit re-binds the flow to the browser that made it.
        let reopenable = a.status == AuthorizationStatus::Opened && a.code_challenge.is_some();
        if !(a.status == AuthorizationStatus::Pending || reopenable) || a.expires_at < now_ms() {
            return Ok(None);
        }
        let root = self.root_of(&a).await?;
        Ok(root.map(|r| (a, r)))
    }

    async fn root_of(&self, a: &Authorization) -> Result<Option<DataIntegration>, ServiceError> {
        let roots = self
            .deps
            .store
            .all_data_integrations(a.environment_id, a.owner.ownership)
            .await?;
        Ok(roots.into_iter().find(|r| r.id == a.data_integration_id))
    }

    /// `GET …/authorize-redirect`: the confirmation screen, or straight to the provider when
    /// the flow is session-bound.
    pub async fn land(&self, id: &str) -> Result<Ending, ServiceError> {
        let Some((a, root)) = self.live_authorization(id).await? else {
            return Ok(Ending::Page(PageOutcome::Expired));
        };
        if a.code_challenge.is_some() {
            return self.go_to_provider(a, &root).await;
        }
        if a.handoff {
            let origins = self.deps.store.allowed(a.environment_id, AllowList::WebOrigins).await?;
            return Ok(Ending::Handoff {
                provider: self.provider_name(&root),
                origins,
            });
        }
        Ok(Ending::Confirm(ConfirmScreen {
            provider: self.provider_name(&root),
            user_id: a.user_id.clone(),
            organization_id: a.owner.organization_id.clone(),
            organization_owned: a.owner.ownership == Ownership::Organization,
            account_display_name: a.account_display_name.clone().flatten(),
            csrf_token: a.csrf_token.clone(),
        }))
    }

    /// The confirmation form: continue to the provider, or cancel.
    pub async fn confirm(&self, id: &str, csrf_token: &str, cancel: bool) -> Result<Ending, ServiceError> {
        let Some((a, root)) = self.live_authorization(id).await? else {
            return Ok(Ending::Page(PageOutcome::Expired));
        };
        if !constant_time_eq(csrf_token.as_bytes(), a.csrf_token.as_bytes()) {
            return Ok(Ending::Page(PageOutcome::Unverified));
        }
        if cancel {
            let mut failed = a.clone();
            failed.status = AuthorizationStatus::Failed;
            if !self
                .deps
                .store
                .advance_authorization(&failed, AuthorizationStatus::Pending)
                .await?
            {
                return Ok(Ending::Page(PageOutcome::Expired));
            }
            let description = "The user cancelled the connection.".to_owned();
            return Ok(self
                .fail(
                    &a,
                    &root,
                    FlowError::refused("access_denied", description, "access_denied", None),
                )
                .await);
        }
        self.go_to_provider(a, &root).await
    }

    async fn go_to_provider(&self, a: Authorization, root: &DataIntegration) -> Result<Ending, ServiceError> {
        let effective = self
            .deps
            .organizations
            .effective(root, a.owner.organization_id.as_deref())
            .await?;
        let (provider, app) = match self.resolve(root, effective.settings.as_ref(), &a.config) {
            Ok(v) => v,
            Err(e) => return Ok(self.fail(&a, root, e).await),
        };
        let verifier = self.pkce_verifier(&a)?;
        let scopes = effective.scopes.clone().unwrap_or_default();
        let url = match self.deps.oauth.authorize_url(
            &provider,
            &app.client_id,
            &self.callback_uri(root, effective.settings.as_ref()),
            &scopes,
            &a.provider_state,
            verifier.as_ref().map(SecretString::expose),
        ) {
            Ok(u) => u,
            Err(e) => {
                let e = FlowError::new("invalid_authorization_url", e.to_string());
                return Ok(self.fail(&a, root, e).await);
            }
        };
        let browser = SecretString::new(random_token(24));
        let mut opened = a.clone();
        opened.status = AuthorizationStatus::Opened;
        opened.expires_at = a.created_at + TOTAL_TTL_MS;
        opened.browser_hash = Some(sha256_hex(browser.expose()));
        if !self.deps.store.advance_authorization(&opened, a.status).await? {
            return Ok(Ending::Page(PageOutcome::Expired));
        }
        Ok(Ending::ToProvider {
            url,
            authorization: a.id,
            browser,
        })
    }

    /// The provider callback URL of a flow: the organization's own for organization apps.
    fn callback_uri(&self, root: &DataIntegration, settings: Option<&OrganizationSettings>) -> String {
        match settings.filter(|_| root.uses_organization_apps()) {
            Some(s) => organization_redirect_uri(&self.public_url, root, s),
            None => root.redirect_uri(&self.public_url),
        }
    }

    fn resolve(
        &self,
        root: &DataIntegration,
        settings: Option<&OrganizationSettings>,
        installation: &BTreeMap<String, String>,
    ) -> Result<(ResolvedProvider, ClientApp), FlowError> {
        resolve_oauth(root, settings, installation, self.deps.catalog, &self.deps.vault).map_err(|e| match e {
            ResolveError::Provider(m) => FlowError::new("invalid_data_integration", m),
            ResolveError::NoApp(m) => FlowError::new("invalid_client_id", m),
            ResolveError::Vault(m) => FlowError::new("installation_failed", m),
        })
    }

    /// Our PKCE verifier toward the provider, opened.
    fn pkce_verifier(&self, a: &Authorization) -> Result<Option<SecretString>, ServiceError> {
        let aad = SealedColumn::PkceVerifier.aad(&a.id);
        Ok(a.pkce_verifier
            .as_ref()
            .map(|s| self.deps.vault.open_secret(s, aad))
            .transpose()?)
    }

    /// Records a failed attempt as its events. Nothing else was saved, so the events are the
    /// whole record; a store failure is logged, never shown to the user in place of the outcome.
    async fn record_failure(&self, a: &Authorization, root: &DataIntegration, e: &FlowError) {
        let (provider_error, provider_error_description) = match &e.provider_error {
            Some((error, description)) => (Some(error.as_str()), description.as_deref()),
            None => (None, None),
        };
        let events = failure_events(&ConnectionFailure {
            environment_id: a.environment_id,
            data_integration_id: root.id.to_string(),
            provider_slug: root.slug.as_str(),
            owner: &a.owner,
            add: a.intent == ConnectionIntent::Add,
            error_code: if provider_error.is_some() {
                "provider_error"
            } else {
                e.code
            },
            error_reason: Some(&e.description),
            provider_error,
            provider_error_description,
            account_identifier: None,
            actor: Actor::User(a.user_id.clone()),
        });
        if let Err(err) = self.deps.store.append_events(&events).await {
            tracing::error!(authorization = %a.id, error = %err, "could not record the failed connection's events");
        }
    }

    /// Ends a flow in failure: back to `return_to` with the error, or an explanatory page.
    async fn fail(&self, a: &Authorization, root: &DataIntegration, e: FlowError) -> Ending {
        tracing::info!(authorization = %a.id, provider = %root.slug, error = e.code, "connection failed");
        self.record_failure(a, root, &e).await;
        match &a.return_to {
            Some(rt) => Ending::Redirect(append_query(
                rt,
                &[
                    ("error", e.code),
                    ("error_description", &e.description),
                    ("state", &a.state),
                ],
            )),
            None => Ending::Page(PageOutcome::Failed {
                provider: self.provider_name(root),
                code: e.code,
                description: e.description,
                state: a.state.clone(),
            }),
        }
    }
}

/// Appends query parameters to a URL, keeping the ones it has.
pub fn append_query(base: &str, pairs: &[(&str, &str)]) -> String {
    match url::Url::parse(base) {
        Ok(mut u) => {
            {
                let mut q = u.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
            }
            u.into()
        }
        Err(_) => base.to_owned(),
    }
}

/// Compares secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_matching_is_exact_except_loopback_ports() {
        let reg = vec!["https://app.test/cb".to_owned(), "http://localhost/cb".to_owned()];
        let m = |u: &str, ignore_query: bool| matches_registered(&url::Url::parse(u).unwrap(), &reg, ignore_query);
        assert!(m("https://app.test/cb", false));
        assert!(m("http://localhost:5173/cb", false));
        assert!(!m("https://app.test/cb/other", false));
        assert!(!m("https://evil.test/cb", false));
        assert!(!m("https://app.test:8443/cb", false));
        assert!(!m("https://app.test/cb?x=1", false));
        assert!(m("https://app.test/cb?x=1", true));
    }

    #[test]
    fn debug_output_holds_no_codes_or_verifiers() {
        let finish: FinishRequest =
            serde_json::from_value(serde_json::json!({"connect_code": "cc-secret-1", "code_verifier": "cv-secret-2"}))
                .unwrap();
        let callback: CallbackQuery =
            serde_json::from_value(serde_json::json!({"code": "ac-secret-3", "state": "s"})).unwrap();
        let screen = ConfirmScreen {
            provider: "P".into(),
            user_id: "u".into(),
            organization_id: None,
            organization_owned: false,
            account_display_name: None,
            csrf_token: "csrf-secret-4".into(),
        };
        let text = format!("{finish:?} {callback:?} {screen:?}");
        for secret in ["cc-secret-1", "cv-secret-2", "ac-secret-3", "csrf-secret-4"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }

    #[test]
    fn appends_to_existing_queries() {
        assert_eq!(
            append_query("https://a.test/cb?x=1", &[("state", "s t")]),
            "https://a.test/cb?x=1&state=s+t"
        );
    }
}
