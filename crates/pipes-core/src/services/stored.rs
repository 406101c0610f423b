//! Connections whose credential the application hands over: API keys (contract §4.7) and
//! per-tenant client credentials (§4.8). `PUT` creates or rotates the compatibility connection
//! (or an exact one); `POST` adds another. Client credentials are tried against the provider
//! before anything is saved, and the token that proves them is kept as the first cached token.

use std::collections::BTreeMap;

use super::resolve::{check_installation_config, resolve_provider};
use super::selection::{label_warnings, place, root_not_found, Intent, OwnerChoice, Placement, Warning};
use super::Deps;
use crate::domain::{
    AuthMethod, ConnectedAccount, DataIntegration, Effective, Environment, IntegrationState, StoredSecret, TokenSet,
};
use crate::error::ServiceError;
use crate::events::{account_events, AccountChange, Actor};
use crate::fields::Labels;
use crate::ids::ConnectedAccountId;
use crate::oauth::{ClientApp, OAuthError, TokenResponse};
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::StoreError;
use crate::time::{now_ms, Millis};
use crate::vault::{SealedColumn, Vault};

/// `PUT`/`POST /data-integrations/{slug}/api-key` and `…/client-credentials`, parsed at the
/// edge.
#[derive(Debug)]
pub struct StoreCredential {
    /// Whose connection, and who acts.
    pub choice: OwnerChoice,
    /// [`Intent::Add`] (POST), or the compatibility or an exact connection (PUT).
    pub intent: Intent,
    /// The credential; its kind is the route's.
    pub secret: TenantSecret,
    /// Labels.
    pub labels: Labels,
    /// Installation-scope config values.
    pub config: Option<BTreeMap<String, String>>,
}

/// API-key and client-credentials connections.
#[derive(Clone)]
pub struct StoredCredentials {
    deps: Deps,
}

impl std::fmt::Debug for StoredCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoredCredentials")
    }
}

fn endpoint_of(method: AuthMethod) -> &'static str {
    match method {
        AuthMethod::Oauth => "POST /data-integrations/{slug}/authorize",
        AuthMethod::ApiKey => "PUT /data-integrations/{slug}/api-key",
        AuthMethod::ClientCredentials => "PUT /data-integrations/{slug}/client-credentials",
    }
}

fn mismatch(have: AuthMethod, wanted: AuthMethod, what: &str) -> ServiceError {
    ServiceError::Invalid {
        code: "auth_method_mismatch",
        message: format!(
            "This {what} uses {} authentication, not {}. Use {} instead.",
            have.as_str(),
            wanted.as_str(),
            endpoint_of(have)
        ),
        errors: vec![],
    }
}

/// The tenant's credential, checked.
#[derive(Debug)]
pub enum TenantSecret {
    /// An API key.
    ApiKey(SecretString),
    /// The tenant's own client credentials.
    Client {
        /// Client id.
        client_id: String,
        /// Client secret.
        secret: SecretString,
    },
}

fn too_long(field: &str, max: usize) -> ServiceError {
    ServiceError::invalid_field(field, "too_long", format!("{field} must be at most {max} characters."))
}

impl TenantSecret {
    /// An API key as sent in `secret`.
    pub fn api_key(secret: Option<SecretString>) -> Result<Self, ServiceError> {
        let secret = secret.ok_or_else(|| ServiceError::invalid_field("secret", "required", "secret is required."))?;
        if secret.expose().is_empty() {
            return Err(ServiceError::invalid_field(
                "secret",
                "required",
                "secret must not be empty.",
            ));
        }
        if secret.expose().len() > 4096 {
            return Err(too_long("secret", 4096));
        }
        Ok(Self::ApiKey(secret))
    }

    /// Client credentials as sent in `client_id` and `client_secret`.
    pub fn client(client_id: Option<String>, client_secret: Option<SecretString>) -> Result<Self, ServiceError> {
        let client_id = client_id
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| ServiceError::invalid_field("client_id", "required", "client_id is required."))?;
        let secret = client_secret
            .filter(|s| !s.expose().is_empty())
            .ok_or_else(|| ServiceError::invalid_field("client_secret", "required", "client_secret is required."))?;
        if client_id.len() > 1024 {
            return Err(too_long("client_id", 1024));
        }
        if secret.expose().len() > 4096 {
            return Err(too_long("client_secret", 4096));
        }
        Ok(Self::Client { client_id, secret })
    }

    /// The kind of connection that holds it.
    pub fn method(&self) -> AuthMethod {
        match self {
            Self::ApiKey(_) => AuthMethod::ApiKey,
            Self::Client { .. } => AuthMethod::ClientCredentials,
        }
    }

    fn seal(&self, vault: &Vault, id: ConnectedAccountId) -> StoredSecret {
        let row = id.to_string();
        let aad = SealedColumn::AccountSecret.aad(&row);
        match self {
            Self::ApiKey(key) => StoredSecret {
                client_id: None,
                secret: vault.seal_secret(key, aad),
                last_4: key.last4(),
            },
            Self::Client { client_id, secret } => StoredSecret {
                client_id: Some(client_id.clone()),
                secret: vault.seal_secret(secret, aad),
                last_4: secret.last4(),
            },
        }
    }
}

/// Opens the client app a client-credentials connection stores.
pub fn stored_client_app(vault: &Vault, a: &ConnectedAccount) -> Result<ClientApp, ServiceError> {
    let stored = a
        .stored
        .as_ref()
        .ok_or_else(|| ServiceError::Internal("client-credentials connection without credentials".into()))?;
    Ok(ClientApp {
        client_id: stored.client_id.clone().unwrap_or_default(),
        client_secret: a.stored_secret(vault)?,
    })
}

impl StoredCredentials {
    /// The service.
    pub fn new(deps: Deps) -> Self {
        Self { deps }
    }

    /// Stores an API key or client credentials: adds a connection ([`Intent::Add`]), or creates
    /// or rotates the compatibility connection or the exact one named. Answers the connection
    /// and any label warnings.
    pub async fn put(
        &self,
        env: &Environment,
        slug: &Slug,
        req: StoreCredential,
    ) -> Result<(ConnectedAccount, Vec<Warning>), ServiceError> {
        let StoreCredential {
            choice,
            intent,
            secret,
            labels,
            config,
        } = req;
        let method = secret.method();
        let root = self
            .deps
            .store
            .data_integration(env.id, slug, choice.owner.ownership)
            .await?
            .ok_or_else(root_not_found)?;
        if root.auth_method != method {
            return Err(mismatch(root.auth_method, method, "integration"));
        }
        let config = config
            .map(|c| check_installation_config(&root, c, self.deps.catalog, method == AuthMethod::ClientCredentials))
            .transpose()?;
        let effective = self.deps.organizations.effective_for(env, &root, &choice).await?;
        if !effective.enabled || root.state != IntegrationState::Valid {
            return Err(ServiceError::Invalid {
                code: "invalid_data_integration_state",
                message: "The data integration is disabled; enable it before connecting.".into(),
                errors: vec![],
            });
        }
        let label_given = labels.sets_display_name();
        for _ in 0..3 {
            let placement = place(self.deps.store.as_ref(), env, &root, &choice.owner, intent).await?;
            if let Placement::Existing(a) = &placement {
                if a.auth_method != method {
                    return Err(mismatch(a.auth_method, method, "connection"));
                }
            }
            let now = now_ms();
            let (mut account, created) = match placement {
                Placement::Existing(mut a) => {
                    a.refresh_generation += 1;
                    a.updated_at = now;
                    (*a, false)
                }
                Placement::New(role) => (
                    ConnectedAccount::new(env.id, root.id, choice.owner.clone(), role, method, now),
                    true,
                ),
            };
            account.mark_connected(now);
            account.established_by_user_id = choice.establishing_user();
            labels
                .clone()
                .apply(&mut account.account_display_name, &mut account.account_identifier);
            self.install(&mut account, &root, &secret, config.as_ref(), &effective, now)
                .await?;
            let actor = Actor::from_user(choice.acting_user.as_deref());
            let events = account_events(AccountChange::Connected, &account, root.slug.as_str(), &actor);
            let written = if created {
                self.deps.store.insert_connected_account(&account, &events).await
            } else {
                self.deps.store.update_connected_account(&account, &events).await
            };
            match written {
                Ok(()) => {
                    let warnings = if label_given {
                        label_warnings(self.deps.store.as_ref(), &account).await?
                    } else {
                        Vec::new()
                    };
                    return Ok((account, warnings));
                }
                // Another write filled the compatibility slot first: place again.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict {
            code: "concurrent_request",
            message: "The connection changed concurrently; retry.".into(),
        })
    }

    /// Puts the credential (and config) into a connection; for client credentials, mints the
    /// first token with them, which proves they work.
    async fn install(
        &self,
        account: &mut ConnectedAccount,
        root: &DataIntegration,
        secret: &TenantSecret,
        config: Option<&BTreeMap<String, String>>,
        effective: &Effective,
        now: Millis,
    ) -> Result<(), ServiceError> {
        match config {
            Some(c) => account.config = c.clone(),
            // Minting needs every required field, also when a connection is made without
            // config (rotations keep the stored config).
            None if secret.method() == AuthMethod::ClientCredentials => {
                check_installation_config(root, account.config.clone(), self.deps.catalog, true)?;
            }
            None => {}
        }
        account.stored = Some(secret.seal(&self.deps.vault, account.id));
        account.tokens = TokenSet::default();
        account.metadata = BTreeMap::new();
        if let TenantSecret::Client { client_id, secret } = secret {
            let scopes = effective.scopes.as_deref().unwrap_or_default();
            let minted = self.prove(root, account, client_id, secret, scopes).await?;
            account.tokens = TokenSet::seal(
                &self.deps.vault,
                account.id,
                Some(&minted.access_token),
                None,
                minted.expires_in.map(|s| now + s * 1000),
            );
            account.scopes = minted.scopes.unwrap_or_else(|| scopes.to_vec());
            account.metadata = minted.metadata;
            account.last_refreshed_at = Some(now);
        }
        Ok(())
    }

    /// Mints a token with the tenant's client credentials: the proof they work.
    async fn prove(
        &self,
        root: &DataIntegration,
        account: &ConnectedAccount,
        client_id: &str,
        secret: &SecretString,
        scopes: &[String],
    ) -> Result<TokenResponse, ServiceError> {
        let provider = resolve_provider(root, None, &account.config, self.deps.catalog).map_err(|e| {
            ServiceError::invalid_field("config", "invalid", format!("The provider cannot be reached: {e}"))
        })?;
        let app = ClientApp {
            client_id: client_id.to_owned(),
            client_secret: Some(secret.clone()),
        };
        self.deps
            .oauth
            .client_credentials(&provider, &app, scopes)
            .await
            .map_err(|e| match e {
                OAuthError::Transient { retry_after, .. } => ServiceError::Unavailable {
                    message: "The provider could not be reached to check the client credentials; retry shortly.".into(),
                    retry_after: retry_after.map_or(5, |d| d.as_secs().max(1)),
                },
                OAuthError::Blocked(why) => ServiceError::Invalid {
                    code: "invalid_client_credentials",
                    message: format!("The provider's token endpoint cannot be called: {why}."),
                    errors: vec![],
                },
                OAuthError::Rejected { error } => ServiceError::Invalid {
                    code: "invalid_client_credentials",
                    message: format!("The provider rejected the client credentials ({error})."),
                    errors: vec![],
                },
                OAuthError::Malformed(m) => ServiceError::Invalid {
                    code: "invalid_client_credentials",
                    message: format!("The provider's token endpoint did not answer with a token ({m})."),
                    errors: vec![],
                },
            })
    }
}
