//! Connected accounts: import, read, update and delete (contract §4.9), and the per-user list
//! of providers with their connections (§4.11).

use super::resolve::{provider_name, sort_by_provider};
use super::selection::{label_warnings, place, select, Intent, OwnerChoice, Placement, Selector, Warning};
use super::Deps;
use super::Patch;
use crate::domain::{
    AccountState, AuthMethod, ConnectedAccount, ConnectionRole, DataIntegration, Effective, Environment,
    IntegrationState, TokenSet,
};
use crate::error::ServiceError;
use crate::events::{account_events, AccountChange, Actor};
use crate::fields::Labels;
use crate::ids::ConnectedAccountId;
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::StoreError;
use crate::time::{now_ms, Millis};
use crate::vault::Vault;

/// The change that brings a connection into `state`.
fn change_into(state: AccountState) -> AccountChange {
    match state {
        AccountState::Connected => AccountChange::Connected,
        AccountState::NeedsReauthorization => AccountChange::ReauthorizationNeeded,
    }
}

/// The user an API call acts for.
fn actor(choice: &OwnerChoice) -> Actor {
    Actor::from_user(choice.acting_user.as_deref().or(choice.owner.user_id.as_deref()))
}

/// `POST …/connected_accounts/{slug}`: import tokens obtained elsewhere, parsed at the edge.
#[derive(Debug)]
pub struct ImportAccount {
    /// The tokens.
    pub tokens: PlainTokens,
    /// Granted scopes (checked by [`crate::fields::granted_scopes`]).
    pub scopes: Option<Vec<String>>,
    /// Explicit state.
    pub state: Option<AccountState>,
    /// [`Intent::Compatibility`], or [`Intent::Add`] for another connection.
    pub intent: Intent,
    /// Labels.
    pub labels: Labels,
}

/// `PUT …/connected_accounts/{slug}`: replace tokens, scopes, state or labels, parsed at the
/// edge.
#[derive(Debug, Default)]
pub struct UpdateAccount {
    /// `null` clears.
    pub access_token: Patch<SecretString>,
    /// `null` clears.
    pub refresh_token: Patch<SecretString>,
    /// `null` clears.
    pub expires_at: Patch<Millis>,
    /// Granted scopes (checked by [`crate::fields::granted_scopes`]).
    pub scopes: Option<Vec<String>>,
    /// Explicit state.
    pub state: Option<AccountState>,
    /// Labels.
    pub labels: Labels,
}

impl UpdateAccount {
    fn changes_tokens(&self) -> bool {
        self.access_token.is_sent() || self.refresh_token.is_sent() || self.expires_at.is_sent()
    }
}

/// Which providers a data-providers list shows, and how many connections of each.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing {
    /// Every connection of the owner, not only the compatibility connection.
    pub plural: bool,
    /// Also providers no longer enabled for the owner that it is still connected to (so that
    /// it can disconnect them).
    pub keep_connected: bool,
}

/// One provider of the data-providers list with the owner's connections.
#[derive(Debug)]
pub struct ProviderListing {
    /// The root.
    pub root: DataIntegration,
    /// Display name.
    pub name: String,
    /// What applies to the owner: enabled, requested scopes, the organization's settings.
    pub effective: Effective,
    /// The compatibility connection.
    pub compatibility: Option<ConnectedAccount>,
    /// The connections to list.
    pub listed: Vec<ConnectedAccount>,
}

/// Connected accounts.
#[derive(Clone)]
pub struct Accounts {
    deps: Deps,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Accounts")
    }
}

/// The new state of an API-key or client-credentials connection: only its state and labels
/// change here; its credential changes through its own endpoint.
fn stored_state(account: &ConnectedAccount, req: &UpdateAccount) -> Result<AccountState, ServiceError> {
    if req.changes_tokens() {
        return Err(ServiceError::Invalid {
            code: "auth_method_mismatch",
            message: format!(
                "This connection uses {} authentication and holds no OAuth tokens; change its credential \
                 with PUT /data-integrations/{{slug}}/{}.",
                account.auth_method.as_str(),
                if account.auth_method == AuthMethod::ApiKey {
                    "api-key"
                } else {
                    "client-credentials"
                }
            ),
            errors: vec![],
        });
    }
    let state = req.state.unwrap_or(account.state);
    if state == AccountState::Connected && account.stored.is_none() {
        return Err(invalid_combination(
            "This connection holds no credential; supply one through its endpoint to reconnect it.",
        ));
    }
    Ok(state)
}

fn already_exists() -> ServiceError {
    ServiceError::Conflict {
        code: "connected_account_already_exists",
        message: "A connected account already exists for this user, integration, and organization.".into(),
    }
}

fn invalid_combination(message: &str) -> ServiceError {
    ServiceError::Invalid {
        code: "invalid_token_combination",
        message: message.to_owned(),
        errors: vec![],
    }
}

/// The plain token set a request describes, before sealing.
#[derive(Debug, Default)]
pub struct PlainTokens {
    /// Access token.
    pub access: Option<SecretString>,
    /// Refresh token.
    pub refresh: Option<SecretString>,
    /// Access-token expiry.
    pub expires_at: Option<Millis>,
}

impl PlainTokens {
    /// Applies the contract's token-combination table; returns the derived state.
    fn validate(&self, explicit: Option<AccountState>) -> Result<AccountState, ServiceError> {
        if self.refresh.as_ref().is_some_and(|r| r.expose().trim().is_empty()) {
            return Err(ServiceError::Invalid {
                code: "invalid_refresh_token",
                message: "refresh_token must not be empty.".into(),
                errors: vec![],
            });
        }
        if self.access.as_ref().is_some_and(|a| a.expose().is_empty()) {
            return Err(invalid_combination("access_token must not be empty."));
        }
        let derived =
            match (&self.access, &self.refresh, self.expires_at) {
                (None, None, None) => AccountState::NeedsReauthorization,
                (None, _, Some(_)) => return Err(invalid_combination("expires_at requires an access_token.")),
                (Some(_), None, Some(_)) => return Err(invalid_combination(
                    "An expiring access_token needs a refresh_token; omit expires_at for a token that does not expire.",
                )),
                _ => AccountState::Connected,
            };
        match explicit {
            Some(AccountState::Connected) if self.access.is_none() && self.refresh.is_none() => Err(
                invalid_combination("state connected needs an access_token or a refresh_token."),
            ),
            Some(state) => Ok(state),
            None => Ok(derived),
        }
    }

    fn seal(&self, vault: &Vault, id: ConnectedAccountId) -> TokenSet {
        TokenSet::seal(vault, id, self.access.as_ref(), self.refresh.as_ref(), self.expires_at)
    }
}

impl Accounts {
    /// The service.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    /// Imports a connection.
    pub async fn import(
        &self,
        env: &Environment,
        slug: &Slug,
        choice: &OwnerChoice,
        req: ImportAccount,
    ) -> Result<(ConnectedAccount, Vec<Warning>), ServiceError> {
        let (root, _) = select(self.deps.store.as_ref(), env, slug, &choice.owner, &Selector::default()).await?;
        self.check_root_for_tokens(&root, choice.owner.organization_id.as_deref())
            .await?;
        self.deps.organizations.check_acting_member(env, choice).await?;
        let role = match place(self.deps.store.as_ref(), env, &root, &choice.owner, req.intent).await? {
            Placement::New(role) => role,
            Placement::Existing(_) => return Err(already_exists()),
        };
        let state = req.tokens.validate(req.state)?;
        let mut account =
            ConnectedAccount::new(env.id, root.id, choice.owner.clone(), role, AuthMethod::Oauth, now_ms());
        req.labels
            .apply(&mut account.account_display_name, &mut account.account_identifier);
        account.state = state;
        account.established_by_user_id = choice.establishing_user();
        account.scopes = req.scopes.unwrap_or_default();
        account.tokens = req.tokens.seal(&self.deps.vault, account.id);
        let events = account_events(change_into(account.state), &account, root.slug.as_str(), &actor(choice));
        match self.deps.store.insert_connected_account(&account, &events).await {
            Ok(()) => {
                let warnings = label_warnings(self.deps.store.as_ref(), &account).await?;
                Ok((account, warnings))
            }
            Err(StoreError::Conflict(_)) => Err(already_exists()),
            Err(e) => Err(e.into()),
        }
    }

    async fn check_root_for_tokens(
        &self,
        root: &DataIntegration,
        organization: Option<&str>,
    ) -> Result<(), ServiceError> {
        if root.auth_method != AuthMethod::Oauth {
            return Err(ServiceError::Invalid {
                code: "auth_method_mismatch",
                message: format!(
                    "This integration uses {} authentication; tokens cannot be imported.",
                    root.auth_method.as_str()
                ),
                errors: vec![],
            });
        }
        if root.state != IntegrationState::Valid {
            return Err(ServiceError::Invalid {
                code: "invalid_data_integration_state",
                message: "The data integration is not in a usable state.".into(),
                errors: vec![],
            });
        }
        let has_app = match organization {
            Some(org) => self
                .deps
                .store
                .organization_settings(root.id, org)
                .await?
                .is_some_and(|s| s.app.is_some()),
            None => false,
        };
        if root.uses_organization_apps() && !has_app {
            return Err(ServiceError::Invalid {
                code: "client_credentials_not_configured",
                message: "The organization has not registered its OAuth app for this integration.".into(),
                errors: vec![],
            });
        }
        Ok(())
    }

    /// The selected connection; 404 when the slot is empty.
    pub async fn get(
        &self,
        env: &Environment,
        slug: &Slug,
        choice: &OwnerChoice,
        selector: &Selector,
    ) -> Result<ConnectedAccount, ServiceError> {
        let (_, account) = select(self.deps.store.as_ref(), env, slug, &choice.owner, selector).await?;
        account.ok_or_else(|| ServiceError::not_found("The user, organization, or connected account was not found."))
    }

    /// Updates the selected connection.
    pub async fn update(
        &self,
        env: &Environment,
        slug: &Slug,
        choice: &OwnerChoice,
        selector: &Selector,
        req: UpdateAccount,
    ) -> Result<(ConnectedAccount, Vec<Warning>), ServiceError> {
        let selector = Selector {
            supports_multiple_connections: false,
            ..selector.clone()
        };
        let mut account = self.get(env, slug, choice, &selector).await?;
        self.deps.organizations.check_acting_member(env, choice).await?;
        let before = account.state;
        account.state = if account.auth_method == AuthMethod::Oauth {
            self.replace_tokens(&mut account, &req)?
        } else {
            stored_state(&account, &req)?
        };
        self.save_update(slug, choice, account, before, req.scopes, req.labels)
            .await
    }

    /// Applies an update's token changes to an OAuth connection; answers its new state.
    fn replace_tokens(
        &self,
        account: &mut ConnectedAccount,
        req: &UpdateAccount,
    ) -> Result<AccountState, ServiceError> {
        let vault = &self.deps.vault;
        let tokens = PlainTokens {
            access: req.access_token.clone().apply(account.access_token(vault)?),
            refresh: req.refresh_token.clone().apply(account.refresh_token(vault)?),
            expires_at: req.expires_at.clone().apply(account.tokens.expires_at),
        };
        let changed = req.changes_tokens();
        let state = tokens.validate(req.state.or(if changed { None } else { Some(account.state) }))?;
        if changed {
            account.tokens = tokens.seal(vault, account.id);
            // Any refresh in flight started from the old tokens: make its write lose.
            account.refresh_generation += 1;
        }
        Ok(state)
    }

    /// Applies the changes every kind of connection shares (scopes, state reason, labels),
    /// writes the connection with the event its state change calls for, and answers it with
    /// label warnings.
    async fn save_update(
        &self,
        slug: &Slug,
        choice: &OwnerChoice,
        mut account: ConnectedAccount,
        before: AccountState,
        scopes: Option<Vec<String>>,
        labels: Labels,
    ) -> Result<(ConnectedAccount, Vec<Warning>), ServiceError> {
        if let Some(scopes) = scopes {
            account.scopes = scopes;
        }
        if account.state == AccountState::Connected {
            account.state_reason = None;
        }
        let label_given = labels.sets_display_name();
        labels.apply(&mut account.account_display_name, &mut account.account_identifier);
        account.updated_at = now_ms();
        let events = if account.state == before {
            Vec::new()
        } else {
            account_events(change_into(account.state), &account, slug.as_str(), &actor(choice))
        };
        self.deps.store.update_connected_account(&account, &events).await?;
        let warnings = if label_given {
            label_warnings(self.deps.store.as_ref(), &account).await?
        } else {
            Vec::new()
        };
        Ok((account, warnings))
    }

    /// Deletes one of the owner's connections by id (the widget's Disconnect); 404 when it is
    /// not the owner's.
    pub async fn delete_owned(&self, env: &Environment, choice: &OwnerChoice, id: &str) -> Result<(), ServiceError> {
        let not_found = || ServiceError::not_found("The connected account was not found.");
        let id = ConnectedAccountId::parse(id).map_err(|_| not_found())?;
        let account = self
            .deps
            .store
            .connected_account(env.id, id)
            .await?
            .filter(|a| a.owner == choice.owner)
            .ok_or_else(not_found)?;
        let roots = self
            .deps
            .store
            .all_data_integrations(env.id, account.owner.ownership)
            .await?;
        let slug = roots
            .iter()
            .find(|r| r.id == account.data_integration_id)
            .map(|r| r.slug.as_str())
            .ok_or_else(not_found)?;
        let events = account_events(AccountChange::Disconnected, &account, slug, &actor(choice));
        if self
            .deps
            .store
            .delete_connected_account(env.id, account.id, &events)
            .await?
        {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// Deletes the selected connection and its tokens.
    pub async fn delete(
        &self,
        env: &Environment,
        slug: &Slug,
        choice: &OwnerChoice,
        selector: &Selector,
    ) -> Result<ConnectedAccount, ServiceError> {
        let account = self.get(env, slug, choice, selector).await?;
        let events = account_events(AccountChange::Disconnected, &account, slug.as_str(), &actor(choice));
        if !self
            .deps
            .store
            .delete_connected_account(env.id, account.id, &events)
            .await?
        {
            return Err(ServiceError::not_found(
                "The user, organization, or connected account was not found.",
            ));
        }
        Ok(account)
    }

    /// Every enabled root of the owner's ownership with the owner's connections, by name.
    pub async fn data_providers(
        &self,
        env: &Environment,
        choice: &OwnerChoice,
        listing: Listing,
    ) -> Result<Vec<ProviderListing>, ServiceError> {
        let roots = self
            .deps
            .store
            .all_data_integrations(env.id, choice.owner.ownership)
            .await?;
        let overrides = match choice.owner.organization_id.as_deref() {
            Some(org) => self.deps.store.organization_settings_of(env.id, org).await?,
            None => Vec::new(),
        };
        let accounts = self
            .deps
            .store
            .accounts_of_owner_in_env(env.id, choice.owner.ownership, &choice.owner.key())
            .await?;
        let mut out: Vec<ProviderListing> = roots
            .into_iter()
            .filter_map(|root| {
                let settings = overrides.iter().find(|s| s.data_integration_id == root.id).cloned();
                let effective = self.deps.catalog.effective(&root, settings);
                let connected = || accounts.iter().any(|a| a.data_integration_id == root.id);
                (effective.enabled || (listing.keep_connected && connected())).then_some((root, effective))
            })
            .map(|(root, effective)| {
                let mine: Vec<ConnectedAccount> = accounts
                    .iter()
                    .filter(|a| a.data_integration_id == root.id)
                    .cloned()
                    .collect();
                let compatibility = mine.iter().find(|a| a.role == ConnectionRole::Compatibility).cloned();
                let listed = if listing.plural {
                    mine
                } else {
                    compatibility.iter().cloned().collect()
                };
                let name = provider_name(&root, self.deps.catalog);
                ProviderListing {
                    effective,
                    name,
                    root,
                    compatibility,
                    listed,
                }
            })
            .collect();
        sort_by_provider(&mut out, |c| (&c.name, &c.root.slug));
        Ok(out)
    }
}
