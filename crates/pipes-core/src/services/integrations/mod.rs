use std::sync::Arc;

use super::Patch;
use crate::catalog::{Catalog, ConfigScope, Provider};
use crate::domain::{
    AuthMethod, AuthenticateVia, CredentialsType, CustomProvider, CustomProviderDefinition, DataIntegration,
    Environment, IntegrationCredentials, IntegrationState, Ownership, TokenBodyContentType,
};
use crate::egress::Egress;
use crate::error::{FieldError, ServiceError};
use crate::events::{account_events, AccountChange, Actor};
use crate::ids::{CustomProviderId, DataIntegrationId, DikId};
use crate::pagination::{Page, PageRequest};
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::{Store, StoreError};
use crate::time::{now_ms, Millis};
use crate::vault::{SealedColumn, Vault};

mod requests;
mod validate;

pub use requests::{ApiKeyInput, CreateIntegration, CredentialsInput, CustomProviderInput, UpdateIntegration};
use validate::*;

const MAX_SCOPES: usize = 100;
const MAX_SCOPE_LEN: usize = 256;
const MAX_DESCRIPTION: usize = 2000;
const MAX_TEXT: usize = 2048;

/// What a root's slug resolves to.
enum ProviderRef<'a> {
    Builtin(&'a Provider),
    Custom(Box<CustomProvider>),
}

impl ProviderRef<'_> {
    fn auth_method(&self) -> AuthMethod {
        match self {
            Self::Builtin(p) => p.auth_method,
            Self::Custom(cp) => cp.auth_method,
        }
    }
}

/// Data integrations: create, read, update, delete and list roots.
#[derive(Clone)]
pub struct Integrations {
    store: Arc<dyn Store>,
    vault: Vault,
    catalog: &'static Catalog,
    egress: Egress,
}

impl std::fmt::Debug for Integrations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Integrations")
    }
}

fn not_found_slug() -> ServiceError {
    ServiceError::not_found("Data integration not found for the given provider slug.")
}

impl Integrations {
    /// The service.
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog, egress: Egress) -> Self {
        Self {
            store,
            vault,
            catalog,
            egress,
        }
    }

    /// A custom provider's definition, checked whole, and its server-side endpoints checked
    /// against the egress policy (they are checked again at every call).
    fn checked_definition(
        &self,
        input: CustomProviderInput,
        current: Option<&CustomProviderDefinition>,
        method: AuthMethod,
    ) -> Result<CustomProviderDefinition, ServiceError> {
        let definition = custom_definition(input, current, method)?;
        let called = [
            ("custom_provider.token_url", &definition.token_url),
            ("custom_provider.refresh_token_url", &definition.refresh_token_url),
        ];
        for (field, url) in called {
            if let Some(url) = url {
                self.egress.policy().check_saved(field, url)?;
            }
        }
        Ok(definition)
    }

    /// The catalog this service validates against.
    pub fn catalog(&self) -> &'static Catalog {
        self.catalog
    }

    /// Display name of a root's provider.
    pub fn provider_name(&self, root: &DataIntegration) -> String {
        super::resolve::provider_name(root, self.catalog)
    }

    /// Creates a root.
    pub async fn create(&self, env: &Environment, req: CreateIntegration) -> Result<DataIntegration, ServiceError> {
        let (slug, ownership, requested_method) = (req.provider, req.ownership, req.auth_method);

        let now = now_ms();
        let (provider, new_custom) = self
            .provider_for_create(env, &slug, requested_method, req.custom_provider, now)
            .await?;
        let method = provider.auth_method();
        let id = DataIntegrationId::new();
        let mut errors = vec![];
        let credentials = match (method, req.credentials) {
            (AuthMethod::Oauth, Some(input)) => Some(self.credentials(id, input, &provider, &mut errors)),
            (AuthMethod::Oauth, None) => {
                errors.push(FieldError::new(
                    "credentials",
                    "required",
                    "credentials are required for OAuth integrations: {\"type\": \"custom\", \"client_id\", \"client_secret\"} or {\"type\": \"organization\"}.",
                ));
                None
            }
            (_, Some(_)) => {
                errors.push(FieldError::new(
                    "credentials",
                    "not_allowed",
                    format!(
                        "{} integrations hold no OAuth app credentials; omit credentials.",
                        method.as_str()
                    ),
                ));
                None
            }
            (_, None) => None,
        };
        let config = validate_config(&provider, req.config, &mut errors);
        let scopes = req.scopes.map(|s| validate_scopes(s, &mut errors));
        let description = req.description.map(|d| validate_description(d, &mut errors));
        if let Some(api_key) = &req.api_key {
            check_api_key_input(method, api_key, &mut errors);
        }
        if !errors.is_empty() {
            return Err(ServiceError::invalid_fields(errors));
        }
        let root = DataIntegration {
            id,
            environment_id: env.id,
            slug: slug.clone(),
            ownership,
            description,
            enabled: req.enabled,
            state: IntegrationState::Valid,
            scopes,
            auth_method: method,
            credentials: credentials.flatten(),
            config,
            dik: DikId::new(),
            custom_provider: match provider {
                ProviderRef::Custom(cp) => Some(*cp),
                ProviderRef::Builtin(_) => None,
            },
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_data_integration(&root, new_custom.as_ref()).await {
            Ok(()) => Ok(root),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict {
                code: "data_integration_already_exists",
                message: "A data integration with this slug already exists in the environment.".into(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The provider a new root uses: the built-in one of its slug, an existing custom provider
    /// of the environment, or the custom provider defined in the request (returned second, to
    /// be stored with the root); checked against the auth method asked for.
    async fn provider_for_create(
        &self,
        env: &Environment,
        slug: &Slug,
        requested_method: Option<AuthMethod>,
        custom_provider: Option<CustomProviderInput>,
        now: Millis,
    ) -> Result<(ProviderRef<'static>, Option<CustomProvider>), ServiceError> {
        // A built-in provider as described for the requested method (Salesforce also offers
        // client credentials), else its main description (then a mismatch below).
        let builtin = requested_method
            .and_then(|m| self.catalog.get_with(slug.as_str(), m))
            .or_else(|| self.catalog.get(slug.as_str()));
        let existing_custom = self.store.custom_provider(env.id, slug).await?;
        let resolved = match (custom_provider, builtin, existing_custom) {
            (Some(_), Some(_), _) => {
                return Err(ServiceError::invalid_field(
                    "provider",
                    "shadows_builtin_provider",
                    format!("'{slug}' is a built-in provider; a custom provider cannot use its slug."),
                ))
            }
            (Some(_), None, Some(_)) => {
                return Err(ServiceError::invalid_field(
                    "custom_provider",
                    "custom_provider_exists",
                    format!(
                        "A custom provider '{slug}' already exists; omit custom_provider to add another ownership, or update it with PUT."
                    ),
                ))
            }
            (Some(input), None, None) => {
                let method = requested_method.unwrap_or(AuthMethod::Oauth);
                let definition = self.checked_definition(input, None, method)?;
                let cp = CustomProvider {
                    id: CustomProviderId::new(),
                    environment_id: env.id,
                    slug: slug.clone(),
                    auth_method: method,
                    definition,
                    created_at: now,
                    updated_at: now,
                };
                (ProviderRef::Custom(Box::new(cp.clone())), Some(cp))
            }
            (None, Some(p), _) => (ProviderRef::Builtin(p), None),
            (None, None, Some(cp)) => (ProviderRef::Custom(Box::new(cp)), None),
            (None, None, None) => {
                return Err(ServiceError::not_found(format!(
                    "'{slug}' is not a built-in provider or a custom provider of this environment; supply custom_provider to define it."
                )))
            }
        };
        if let Some(requested) = requested_method {
            if requested != resolved.0.auth_method() {
                let supported: Vec<&str> = match &resolved.0 {
                    ProviderRef::Builtin(_) => self.catalog.auth_methods(slug.as_str()),
                    ProviderRef::Custom(cp) => vec![cp.auth_method],
                }
                .into_iter()
                .map(AuthMethod::as_str)
                .collect();
                return Err(ServiceError::invalid_field(
                    "auth_methods",
                    "auth_method_mismatch",
                    format!(
                        "Provider '{slug}' supports {} authentication, not {}.",
                        supported.join(" or "),
                        requested.as_str()
                    ),
                ));
            }
        }
        Ok(resolved)
    }

    /// The root of a slug and ownership; 404 when it does not exist.
    pub async fn get(
        &self,
        env: &Environment,
        slug: &Slug,
        ownership: Ownership,
    ) -> Result<DataIntegration, ServiceError> {
        self.store
            .data_integration(env.id, slug, ownership)
            .await?
            .ok_or_else(not_found_slug)
    }

    /// Applies a partial update.
    pub async fn update(
        &self,
        env: &Environment,
        slug: &Slug,
        ownership: Ownership,
        req: UpdateIntegration,
    ) -> Result<DataIntegration, ServiceError> {
        let mut root = self.get(env, slug, ownership).await?;
        let mut errors = vec![];
        if req.credentials.is_some() && req.api_key.is_some() {
            return Err(ServiceError::invalid_field(
                "credentials",
                "mutually_exclusive",
                "credentials and api_key cannot be changed in the same request.",
            ));
        }
        if let Some(input) = req.custom_provider {
            match root.custom_provider.as_mut() {
                None => errors.push(FieldError::new(
                    "custom_provider",
                    "not_allowed",
                    format!(
                        "'{}' is a built-in provider; only custom providers can be changed.",
                        root.slug
                    ),
                )),
                Some(cp) => {
                    cp.definition = self.checked_definition(input, Some(&cp.definition), cp.auth_method)?;
                    cp.updated_at = now_ms();
                }
            }
        }
        let provider = match &root.custom_provider {
            Some(cp) => ProviderRef::Custom(Box::new(cp.clone())),
            None => ProviderRef::Builtin(self.catalog.for_root(&root).ok_or_else(|| {
                ServiceError::Internal(format!("built-in provider '{}' vanished from the catalog", root.slug))
            })?),
        };
        if let Some(input) = req.credentials {
            if root.auth_method == AuthMethod::Oauth {
                root.credentials = self.credentials(root.id, input, &provider, &mut errors);
                root.state = IntegrationState::Valid;
            } else {
                errors.push(FieldError::new(
                    "credentials",
                    "not_allowed",
                    format!(
                        "{} integrations hold no OAuth app credentials.",
                        root.auth_method.as_str()
                    ),
                ));
            }
        }
        if let Some(api_key) = &req.api_key {
            check_api_key_input(root.auth_method, api_key, &mut errors);
        }
        match req.scopes {
            Patch::Absent => {}
            Patch::Null => root.scopes = None,
            Patch::Value(s) => root.scopes = Some(validate_scopes(s, &mut errors)),
        }
        match req.description {
            Patch::Absent => {}
            Patch::Null => root.description = None,
            Patch::Value(d) => root.description = Some(validate_description(d, &mut errors)),
        }
        if let Some(enabled) = req.enabled {
            root.enabled = enabled;
        }
        if !errors.is_empty() {
            return Err(ServiceError::invalid_fields(errors));
        }
        root.updated_at = now_ms();
        self.store.update_data_integration(&root).await?;
        Ok(root)
    }

    /// Deletes a root with its connections, each announced as disconnected.
    pub async fn delete(&self, env: &Environment, slug: &Slug, ownership: Ownership) -> Result<(), ServiceError> {
        let root = self.get(env, slug, ownership).await?;
        // A connection made between our read and the delete would vanish unannounced: the store
        // refuses, and we read again.
        for _ in 0..5 {
            let accounts = self.store.accounts_of_owner(root.id, None).await?;
            let events: Vec<_> = accounts
                .iter()
                .flat_map(|a| account_events(AccountChange::Disconnected, a, root.slug.as_str(), &Actor::Unknown))
                .collect();
            let ids: Vec<_> = accounts.iter().map(|a| a.id).collect();
            match self.store.delete_data_integration(env.id, root.id, &ids, &events).await {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(not_found_slug()),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Conflict {
            code: "concurrent_modification",
            message: "Connections kept changing while the integration was deleted; try again.".into(),
        })
    }

    /// A page of roots.
    pub async fn list(
        &self,
        env: &Environment,
        ownership: Option<Ownership>,
        page: PageRequest,
    ) -> Result<Page<DataIntegration>, ServiceError> {
        if let Some((field, cursor)) = page.cursor() {
            let known = match DataIntegrationId::parse(cursor) {
                Ok(id) => self.store.data_integration_exists(env.id, id).await?,
                Err(_) => false,
            };
            if !known {
                return Err(ServiceError::invalid_field(
                    field,
                    "invalid_cursor",
                    format!("{field} must be the id of a data integration in this list."),
                ));
            }
        }
        let rows = self
            .store
            .scan_data_integrations(env.id, ownership, &page.scan())
            .await?;
        Ok(page.page(rows, |r| r.id.to_string()))
    }

    fn credentials(
        &self,
        id: DataIntegrationId,
        input: CredentialsInput,
        provider: &ProviderRef<'_>,
        errors: &mut Vec<FieldError>,
    ) -> Option<IntegrationCredentials> {
        let Some(kind) = CredentialsType::parse(&input.kind) else {
            errors.push(FieldError::new(
                "credentials.type",
                "invalid",
                "credentials.type must be 'custom' or 'organization'.",
            ));
            return None;
        };
        match kind {
            CredentialsType::Organization => {
                if input.client_id.is_some() || input.client_secret.is_some() {
                    errors.push(FieldError::new(
                        "credentials",
                        "not_allowed",
                        "organization credentials take no client_id or client_secret: each organization registers its own app.",
                    ));
                    return None;
                }
                Some(IntegrationCredentials {
                    kind,
                    client_id: None,
                    client_secret: None,
                    client_secret_last4: None,
                })
            }
            CredentialsType::Custom => {
                let client_id = input.client_id.filter(|c| !c.trim().is_empty());
                let secret_required = match provider {
                    ProviderRef::Custom(cp) => cp.definition.client_secret_required,
                    ProviderRef::Builtin(_) => true,
                };
                let secret = input.client_secret.filter(|s| !s.expose().is_empty());
                if client_id.is_none() {
                    errors.push(FieldError::new(
                        "credentials.client_id",
                        "required",
                        "credentials.client_id is required.",
                    ));
                }
                if client_id.as_ref().is_some_and(|c| c.len() > MAX_TEXT) {
                    errors.push(FieldError::new(
                        "credentials.client_id",
                        "too_long",
                        "credentials.client_id is too long.",
                    ));
                }
                if secret.is_none() && secret_required {
                    errors.push(FieldError::new(
                        "credentials.client_secret",
                        "required",
                        "credentials.client_secret is required.",
                    ));
                }
                if secret.as_ref().is_some_and(|s| s.expose().len() > MAX_TEXT) {
                    errors.push(FieldError::new(
                        "credentials.client_secret",
                        "too_long",
                        "credentials.client_secret is too long.",
                    ));
                }
                let row = id.to_string();
                let aad = SealedColumn::IntegrationClientSecret.aad(&row);
                Some(IntegrationCredentials {
                    kind,
                    client_id,
                    client_secret_last4: secret.as_ref().map(SecretString::last4),
                    client_secret: secret.map(|s| self.vault.seal_secret(&s, aad)),
                })
            }
        }
    }
}
