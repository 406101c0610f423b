//! The way back: the provider's callback, saving the connection, and `finish` for flows bound
//! to the application's session.

use super::types::{FlowError, HeldTokens};
use super::*;
use crate::domain::Effective;

/// An authorization a callback matched and claimed, with what it needs to finish.
struct Claimed {
    a: Authorization,
    root: DataIntegration,
    effective: Effective,
    callback_uri: String,
}

impl Connect {
    /// Marks an authorization completed with the connection it made (unless it already
    /// failed).
    async fn complete(&self, mut done: Authorization, account: ConnectedAccountId) -> Result<(), ServiceError> {
        done.status = AuthorizationStatus::Completed;
        done.connected_account_id = Some(account);
        self.deps
            .store
            .advance_authorization(&done, AuthorizationStatus::Failed)
            .await?;
        Ok(())
    }

    /// `GET /data-integrations/{slug}/{dik}/callback`.
    pub async fn callback(
        &self,
        slug: &str,
        dik: &str,
        q: CallbackQuery,
        browser: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Ending, ServiceError> {
        let Claimed {
            a,
            root,
            effective,
            callback_uri,
        } = match self.claim(slug, dik, &q, browser).await? {
            Ok(claimed) => claimed,
            Err(outcome) => return Ok(Ending::Page(outcome)),
        };
        let held = match self.exchange(&a, &root, &effective, &callback_uri, &q).await? {
            Ok(held) => held,
            Err(e) => return Ok(self.fail(&a, &root, e).await),
        };
        if a.code_challenge.is_some() {
            return self.hold(&a, &held).await;
        }
        match self.save(&a, &root, held).await {
            Ok(account) => {
                self.complete(a.clone(), account.id).await?;
                Ok(match &a.return_to {
                    Some(rt) => Ending::Redirect(append_query(rt, &[("state", &a.state)])),
                    None => Ending::Page(PageOutcome::Connected {
                        provider: self.provider_name(&root),
                        state: a.state.clone(),
                    }),
                })
            }
            Err(e) => Ok(self.fail(&a, &root, e).await),
        }
    }

    /// The opened authorization a callback answers, claimed so that a replay finds it closed;
    /// the page to show instead when the state, slug or callback path match no open
    /// authorization, or when `browser` (the cookie of an authorization, by id) does not bring
    /// back the cookie the flow was sent to the provider with.
    async fn claim(
        &self,
        slug: &str,
        dik: &str,
        q: &CallbackQuery,
        browser: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> Result<Result<Claimed, PageOutcome>, ServiceError> {
        let unmatched = Ok(Err(PageOutcome::Unmatched));
        let Some(state) = q.state.as_deref().filter(|s| !s.is_empty() && s.len() < 200) else {
            return unmatched;
        };
        let Some(a) = self.deps.store.authorization_by_provider_state(state).await? else {
            return unmatched;
        };
        let Some(root) = self.root_of(&a).await? else {
            return unmatched;
        };
        let effective = self
            .deps
            .organizations
            .effective(&root, a.owner.organization_id.as_deref())
            .await?;
        let callback_uri = self.callback_uri(&root, effective.settings.as_ref());
        let expected_dik = callback_uri.rsplit('/').nth(1).unwrap_or_default();
        if a.status != AuthorizationStatus::Opened || root.slug.as_str() != slug || expected_dik != dik {
            return unmatched;
        }
        let brought = browser(&a.id).map(|b| sha256_hex(&b));
        if a.browser_hash.is_some() && brought != a.browser_hash {
            // Left open: the browser that started the flow may still come back.
            return Ok(Err(PageOutcome::WrongBrowser {
                provider: self.provider_name(&root),
            }));
        }
        let mut claimed = a.clone();
        claimed.status = AuthorizationStatus::Failed;
        if !self
            .deps
            .store
            .advance_authorization(&claimed, AuthorizationStatus::Opened)
            .await?
        {
            return unmatched;
        }
        Ok(Ok(Claimed {
            a,
            root,
            effective,
            callback_uri,
        }))
    }

    /// Exchanges the callback's code for tokens; the inner error is why the flow failed (the
    /// authorization expired, the provider refused, no code, the exchange failed).
    async fn exchange(
        &self,
        a: &Authorization,
        root: &DataIntegration,
        effective: &Effective,
        callback_uri: &str,
        q: &CallbackQuery,
    ) -> Result<Result<HeldTokens, FlowError>, ServiceError> {
        if a.expires_at < now_ms() {
            return Ok(Err(FlowError::new(
                "authorization_state_expired",
                "The authorization expired before it was completed.",
            )));
        }
        if let Some(error) = q.error.as_deref() {
            let description = q
                .error_description
                .clone()
                .unwrap_or_else(|| format!("The provider answered '{error}'."));
            let code = if error == "access_denied" {
                "access_denied"
            } else {
                "provider_error"
            };
            return Ok(Err(FlowError::refused(
                code,
                description,
                error,
                q.error_description.clone(),
            )));
        }
        let Some(code) = q.code.as_ref().map(SecretString::expose).filter(|c| !c.is_empty()) else {
            return Ok(Err(FlowError::new(
                "missing_code",
                "The provider sent no authorization code.",
            )));
        };
        let (provider, app) = match self.resolve(root, effective.settings.as_ref(), &a.config) {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let verifier = self.pkce_verifier(a)?;
        let exchanged_at = now_ms();
        let resp = self
            .deps
            .oauth
            .exchange_code(
                &provider,
                &app,
                code,
                callback_uri,
                verifier.as_ref().map(SecretString::expose),
            )
            .await;
        Ok(resp
            .map(|resp| HeldTokens {
                access_token: resp.access_token.expose().to_owned(),
                refresh_token: resp.refresh_token.as_ref().map(|t| t.expose().to_owned()),
                expires_at: resp.expires_in.map(|s| exchanged_at + s * 1000),
                scopes: resp
                    .scopes
                    .clone()
                    .unwrap_or_else(|| effective.scopes.clone().unwrap_or_default()),
                metadata: resp.metadata.clone(),
                exchanged_at,
            })
            .map_err(|e| {
                let code = match &e {
                    crate::oauth::OAuthError::Malformed(m) if m == "missing_access_token" => "missing_access_token",
                    crate::oauth::OAuthError::Malformed(_) => "unexpected_response_format",
                    _ => "authorization_code_exchange_error",
                };
                FlowError::new(
                    code,
                    format!("The provider did not accept the authorization code ({}).", e.code()),
                )
            }))
    }

    /// Holds the tokens of a session-bound flow (sealed) for `finish`, and sends the browser
    /// back with a single-use connect code.
    async fn hold(&self, a: &Authorization, held: &HeldTokens) -> Result<Ending, ServiceError> {
        let connect_code = random_token(32);
        let sealed = self.deps.vault.seal(
            serde_json::to_vec(held).unwrap_or_default().as_slice(),
            SealedColumn::HeldTokens.aad(&a.id),
        );
        let mut waiting = a.clone();
        waiting.status = AuthorizationStatus::Held;
        waiting.connect_code_hash = Some(sha256_hex(&connect_code));
        waiting.connect_code_expires_at = Some(now_ms() + CONNECT_CODE_TTL_MS);
        waiting.held_tokens = Some(sealed);
        // The row is ours (claimed as failed); move it to held.
        self.deps
            .store
            .advance_authorization(&waiting, AuthorizationStatus::Failed)
            .await?;
        let rt = a.return_to.clone().unwrap_or_default();
        Ok(Ending::Redirect(append_query(
            &rt,
            &[("connect_code", &connect_code), ("state", &a.state)],
        )))
    }

    /// Saves the connection an authorization produced, per its intent.
    async fn save(
        &self,
        a: &Authorization,
        root: &DataIntegration,
        held: HeldTokens,
    ) -> Result<ConnectedAccount, FlowError> {
        let internal =
            |e: String| FlowError::new("installation_failed", format!("The connection could not be saved: {e}"));
        // A member whose membership ended while at the provider does not establish a shared
        // connection: the store refuses the write (it checks inside the write's transaction).
        let not_member = || {
            FlowError::new(
                "user_not_member_of_organization",
                "The user is no longer an active member of the organization.",
            )
        };
        let env = self
            .deps
            .store
            .environment(a.environment_id)
            .await
            .map_err(|e| internal(e.to_string()))?
            .ok_or_else(|| internal("the environment no longer exists".into()))?;
        let wanted = Intent::from(&a.intent);
        let placement = place(self.deps.store.as_ref(), &env, root, &a.owner, wanted)
            .await
            .map_err(|e| match e {
                ServiceError::NotFound {
                    code: "connected_account_not_found",
                    ..
                } => FlowError::new("target_deleted", "The connection to reauthorize no longer exists."),
                ServiceError::NotFound { code, message } | ServiceError::Conflict { code, message } => {
                    FlowError::new(code, message)
                }
                other => internal(other.to_string()),
            })?;
        let (target, role) = match placement {
            Placement::Existing(account) => (Some(*account), ConnectionRole::Standard),
            Placement::New(role) => (None, role),
        };
        let now = now_ms();
        let access = SecretString::new(held.access_token);
        let refresh = held.refresh_token.map(SecretString::new);
        let established_by = Some(a.user_id.clone());
        let actor = Actor::User(a.user_id.clone());
        match target {
            Some(mut account) => {
                let keep_refresh = if refresh.is_none() {
                    account.refresh_token(&self.deps.vault).ok().flatten()
                } else {
                    None
                };
                let tokens = TokenSet::seal(
                    &self.deps.vault,
                    account.id,
                    Some(&access),
                    refresh.as_ref().or(keep_refresh.as_ref()),
                    held.expires_at,
                );
                account.mark_refreshed(tokens, held.scopes, held.metadata, held.exchanged_at);
                account.mark_connected(now);
                account.config = a.config.clone();
                account.established_by_user_id = established_by;
                if let Some(label) = &a.account_display_name {
                    account.account_display_name = label.clone();
                }
                let events = account_events(AccountChange::Connected, &account, root.slug.as_str(), &actor);
                match self.deps.store.update_connected_account(&account, &events).await {
                    Ok(()) => Ok(account),
                    Err(StoreError::NotMember) => Err(not_member()),
                    Err(e) => Err(internal(e.to_string())),
                }
            }
            None => {
                let mut account =
                    ConnectedAccount::new(a.environment_id, root.id, a.owner.clone(), role, AuthMethod::Oauth, now);
                account.account_display_name = a.account_display_name.clone().flatten();
                account.established_by_user_id = established_by;
                account.scopes = held.scopes;
                account.config = a.config.clone();
                account.metadata = held.metadata;
                account.tokens = TokenSet::seal(
                    &self.deps.vault,
                    account.id,
                    Some(&access),
                    refresh.as_ref(),
                    held.expires_at,
                );
                account.last_refreshed_at = Some(held.exchanged_at);
                let events = account_events(AccountChange::Connected, &account, root.slug.as_str(), &actor);
                match self.deps.store.insert_connected_account(&account, &events).await {
                    Ok(()) => Ok(account),
                    Err(StoreError::Conflict(_)) => Err(FlowError::new(
                        "installation_failed",
                        "A connection was created concurrently; connect again.",
                    )),
                    Err(StoreError::NotMember) => Err(not_member()),
                    Err(e) => Err(internal(e.to_string())),
                }
            }
        }
    }

    /// `POST /data-integrations/finish`: saves a session-bound connection.
    pub async fn finish(&self, env: &Environment, req: FinishRequest) -> Result<ConnectedAccount, ServiceError> {
        let invalid = || {
            ServiceError::bad_request(
                "invalid_connect_code",
                "The connect code is unknown, expired, already used, or the verifier is wrong.",
            )
        };
        let (connect_code, code_verifier) = (req.connect_code.expose(), req.code_verifier.expose());
        if connect_code.is_empty() || connect_code.len() > 200 {
            return Err(invalid());
        }
        let Some(a) = self
            .deps
            .store
            .authorization_by_connect_code(&sha256_hex(connect_code))
            .await?
        else {
            return Err(invalid());
        };
        if a.environment_id != env.id {
            return Err(ServiceError::Forbidden {
                code: "connect_code_environment_mismatch",
                message: "This connect code belongs to another environment.".into(),
            });
        }
        if a.status != AuthorizationStatus::Held {
            return Err(invalid());
        }
        // Any attempt consumes the code, whatever its outcome.
        let mut consumed = a.clone();
        consumed.status = AuthorizationStatus::Failed;
        consumed.held_tokens = None;
        if !self
            .deps
            .store
            .advance_authorization(&consumed, AuthorizationStatus::Held)
            .await?
        {
            return Err(ServiceError::bad_request(
                "concurrent_request",
                "A finish for this connect code is already running.",
            ));
        }
        if req.state.as_deref().is_some_and(|s| s != a.state) {
            tracing::warn!(authorization = %a.id, "finish called with a state that does not match the authorization");
        }
        let root = self.root_of(&a).await?.ok_or_else(|| {
            ServiceError::bad_request(
                "invalid_data_integration",
                "The data integration was deleted meanwhile.",
            )
        })?;
        if a.connect_code_expires_at.is_none_or(|t| t < now_ms()) {
            let e = FlowError::new(
                "authorization_state_expired",
                "The connect code expired: finish within 90 seconds of the redirect.",
            );
            self.record_failure(&a, &root, &e).await;
            return Err(ServiceError::bad_request(e.code, &e.description));
        }
        let challenge_ok = valid_verifier(code_verifier)
            && a.code_challenge
                .as_deref()
                .is_some_and(|c| constant_time_eq(pkce_challenge(code_verifier).as_bytes(), c.as_bytes()));
        if !challenge_ok {
            let e = FlowError::new(
                "invalid_connect_code",
                "The code verifier does not match the challenge.",
            );
            self.record_failure(&a, &root, &e).await;
            return Err(invalid());
        }
        let sealed = a.held_tokens.as_ref().ok_or_else(invalid)?;
        let bytes = self.deps.vault.open(sealed, SealedColumn::HeldTokens.aad(&a.id))?;
        let held: HeldTokens = serde_json::from_slice(&bytes).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let account = match self.save(&a, &root, held).await {
            Ok(account) => account,
            Err(e) => {
                self.record_failure(&a, &root, &e).await;
                return Err(ServiceError::bad_request(e.code, &e.description));
            }
        };
        self.complete(consumed, account.id).await?;
        Ok(account)
    }
}
