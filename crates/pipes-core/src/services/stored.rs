//! Connections whose credential the application hands over: API keys (contract §4.7) and
//! per-tenant client credentials (§4.8). `PUT` creates or rotates the compatibility connection
//! (or an exact one); `POST` adds another. Client credentials are tried against the provider
//! before anything is saved, and the token that proves them is kept as the first cached token.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::organizations::Organizations;
use super::resolve::{check_installation_config, resolve_provider};
use super::selection::{label_warnings, place, root_not_found, Intent, OwnerInput, Placement, Warning};
use super::Patch;
use crate::catalog::Catalog;
use crate::domain::{
    AuthMethod, ConnectedAccount, DataIntegration, Environment, IntegrationState, Ownership, StoredSecret, TokenSet,
};
use crate::error::ServiceError;
use crate::events::{account_events, AccountChange, Actor};
use crate::ids::ConnectedAccountId;
use crate::oauth::{ClientApp, OAuthClient, OAuthError, TokenResponse};
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use crate::vault::{SealedColumn, Vault};

/// The body of `PUT`/`POST /data-integrations/{slug}/api-key` and `…/client-credentials`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct StoreCredentialRequest {
    /// Owner, or acting member.
    pub user_id: Option<String>,
    /// Organization scope or owner.
    pub organization_id: Option<String>,
    /// `user` or `organization`.
    pub connection_owner: Option<String>,
    /// `add` (POST) or `reauthorize` (PUT).
    pub connection_intent: Option<String>,
    /// The exact connection to rotate (PUT).
    pub connected_account_id: Option<String>,
    /// Label.
    pub account_display_name: Patch<String>,
    /// Developer-attested account id.
    pub account_identifier: Patch<String>,
    /// The API key.
    pub secret: Option<SecretString>,
    /// The tenant's client id.
    pub client_id: Option<String>,
    /// The tenant's client secret.
    pub client_secret: Option<SecretString>,
    /// Installation-scope config values.
    pub config: Option<BTreeMap<String, String>>,
}

/// API-key and client-credentials connections.
#[derive(Clone)]
pub struct StoredCredentials {
    store: Arc<dyn Store>,
    vault: Vault,
    catalog: &'static Catalog,
    oauth: OAuthClient,
    organizations: Organizations,
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

/// The tenant's credential as sent, checked.
enum Secret {
    ApiKey(SecretString),
    Client { client_id: String, secret: SecretString },
}

impl Secret {
    fn parse(method: AuthMethod, req: &mut StoreCredentialRequest) -> Result<Self, ServiceError> {
        let too_long = |field: &str| {
            ServiceError::invalid_field(field, "too_long", format!("{field} must be at most 4096 characters."))
        };
        match method {
            AuthMethod::ApiKey => {
                let secret = req
                    .secret
                    .take()
                    .ok_or_else(|| ServiceError::invalid_field("secret", "required", "secret is required."))?;
                if secret.expose().is_empty() {
                    return Err(ServiceError::invalid_field(
                        "secret",
                        "required",
                        "secret must not be empty.",
                    ));
                }
                if secret.expose().len() > 4096 {
                    return Err(too_long("secret"));
                }
                Ok(Self::ApiKey(secret))
            }
            _ => {
                let client_id =
                    req.client_id.take().filter(|c| !c.trim().is_empty()).ok_or_else(|| {
                        ServiceError::invalid_field("client_id", "required", "client_id is required.")
                    })?;
                let secret = req
                    .client_secret
                    .take()
                    .filter(|s| !s.expose().is_empty())
                    .ok_or_else(|| {
                        ServiceError::invalid_field("client_secret", "required", "client_secret is required.")
                    })?;
                if client_id.len() > 1024 {
                    return Err(too_long("client_id"));
                }
                if secret.expose().len() > 4096 {
                    return Err(too_long("client_secret"));
                }
                Ok(Self::Client { client_id, secret })
            }
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
    pub fn new(
        store: Arc<dyn Store>,
        vault: Vault,
        catalog: &'static Catalog,
        organizations: Organizations,
        oauth: OAuthClient,
    ) -> Self {
        Self {
            organizations,
            store,
            vault,
            catalog,
            oauth,
        }
    }

    /// Stores an API key or client credentials. `adding`: the POST route (`connection_intent`
    /// must be `add`); otherwise PUT (create or rotate the compatibility connection, or the
    /// exact one named). Answers the connection and any label warnings.
    pub async fn put(
        &self,
        env: &Environment,
        slug: &Slug,
        method: AuthMethod,
        adding: bool,
        mut req: StoreCredentialRequest,
    ) -> Result<(ConnectedAccount, Vec<Warning>), ServiceError> {
        let intent = parse_intent(adding, &req)?;
        let choice = OwnerInput {
            connection_owner: req.connection_owner.as_deref(),
            user_id: req.user_id.as_deref(),
            organization_id: req.organization_id.as_deref(),
        }
        .parse(true)?;
        let root = self
            .store
            .data_integration(env.id, slug, choice.owner.ownership)
            .await?
            .ok_or_else(root_not_found)?;
        if root.auth_method != method {
            return Err(mismatch(root.auth_method, method, "integration"));
        }
        let secret = Secret::parse(method, &mut req)?;
        for (field, label) in [
            ("account_display_name", &req.account_display_name),
            ("account_identifier", &req.account_identifier),
        ] {
            if label.value().is_some_and(|v| v.chars().count() > 255) {
                return Err(ServiceError::invalid_field(
                    field,
                    "too_long",
                    format!("{field} must be at most 255 characters."),
                ));
            }
        }
        let config = req
            .config
            .take()
            .map(|c| check_installation_config(&root, c, self.catalog, method == AuthMethod::ClientCredentials))
            .transpose()?;
        self.organizations.check_acting_member(env, &choice).await?;
        let effective = self
            .organizations
            .effective(&root, choice.owner.organization_id.as_deref())
            .await?;
        if !effective.enabled || root.state != IntegrationState::Valid {
            return Err(ServiceError::Invalid {
                code: "invalid_data_integration_state",
                message: "The data integration is disabled; enable it before connecting.".into(),
                errors: vec![],
            });
        }
        let label_given = matches!(req.account_display_name, Patch::Value(_));
        for _ in 0..3 {
            let placement = place(self.store.as_ref(), env, &root, &choice.owner, intent).await?;
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
            account.established_by_user_id = match choice.owner.ownership {
                Ownership::Organization => choice.acting_user.clone(),
                Ownership::User => None,
            };
            account.account_display_name = req
                .account_display_name
                .clone()
                .apply(account.account_display_name.take());
            account.account_identifier = req.account_identifier.clone().apply(account.account_identifier.take());
            match &config {
                Some(c) => account.config = c.clone(),
                // Minting needs every required field, also when a connection is made without
                // config (rotations keep the stored config).
                None if method == AuthMethod::ClientCredentials => {
                    check_installation_config(&root, account.config.clone(), self.catalog, true)?;
                }
                None => {}
            }
            account.stored = Some(secret.seal(&self.vault, account.id));
            account.tokens = TokenSet::default();
            account.metadata = BTreeMap::new();
            if let Secret::Client { client_id, secret } = &secret {
                let minted = self
                    .prove(
                        &root,
                        &account,
                        client_id,
                        secret,
                        effective.scopes.as_deref().unwrap_or_default(),
                    )
                    .await?;
                let started = now;
                account.tokens = TokenSet::seal(
                    &self.vault,
                    account.id,
                    Some(&minted.access_token),
                    None,
                    minted.expires_in.map(|s| started + s * 1000),
                );
                account.scopes = minted
                    .scopes
                    .clone()
                    .unwrap_or_else(|| effective.scopes.clone().unwrap_or_default());
                account.metadata = minted.metadata.clone();
                account.last_refreshed_at = Some(started);
            }
            let actor = Actor::from_user(choice.acting_user.as_deref());
            let events = account_events(AccountChange::Connected, &account, root.slug.as_str(), &actor);
            let written = if created {
                self.store.insert_connected_account(&account, &events).await
            } else {
                self.store.update_connected_account(&account, &events).await
            };
            match written {
                Ok(()) => {
                    let warnings = if label_given {
                        label_warnings(self.store.as_ref(), &account).await?
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

    /// Mints a token with the tenant's client credentials: the proof they work.
    async fn prove(
        &self,
        root: &DataIntegration,
        account: &ConnectedAccount,
        client_id: &str,
        secret: &SecretString,
        scopes: &[String],
    ) -> Result<TokenResponse, ServiceError> {
        let provider = resolve_provider(root, None, &account.config, self.catalog).map_err(|e| {
            ServiceError::invalid_field("config", "invalid", format!("The provider cannot be reached: {e}"))
        })?;
        let app = ClientApp {
            client_id: client_id.to_owned(),
            client_secret: Some(secret.clone()),
        };
        self.oauth
            .client_credentials(&provider, &app, scopes)
            .await
            .map_err(|e| match e {
                OAuthError::Transient { retry_after, .. } => ServiceError::Unavailable {
                    message: "The provider could not be reached to check the client credentials; retry shortly.".into(),
                    retry_after: retry_after.map_or(5, |d| d.as_secs().max(1)),
                },
                OAuthError::Rejected { error, description } => ServiceError::Invalid {
                    code: "invalid_client_credentials",
                    message: format!(
                        "The provider rejected the client credentials ({error}{}).",
                        description.map(|d| format!(": {d}")).unwrap_or_default()
                    ),
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

fn parse_intent(adding: bool, req: &StoreCredentialRequest) -> Result<Intent, ServiceError> {
    match (
        adding,
        req.connection_intent.as_deref(),
        req.connected_account_id.as_deref(),
    ) {
        (true, Some("add"), None) => Ok(Intent::Add),
        (true, Some("add"), Some(_)) => Err(ServiceError::bad_request(
            "connected_account_id_not_allowed",
            "connected_account_id is not accepted when adding a connection; use PUT to rotate one.",
        )),
        (true, _, _) => Err(ServiceError::bad_request(
            "connection_intent_required",
            "connection_intent must be 'add' here; use PUT to create or rotate the compatibility connection.",
        )),
        (false, None, None) => Ok(Intent::Compatibility),
        (false, None | Some("reauthorize"), Some(id)) => ConnectedAccountId::parse(id)
            .map(Intent::Target)
            .map_err(|_| super::selection::account_not_found()),
        (false, Some("reauthorize"), None) => Err(ServiceError::bad_request(
            "connected_account_id_required",
            "connection_intent reauthorize requires connected_account_id.",
        )),
        (false, _, _) => Err(ServiceError::bad_request(
            "invalid_connection_intent",
            "connection_intent must be 'reauthorize' here; adding a connection is POST.",
        )),
    }
}
