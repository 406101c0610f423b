use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::environments::is_loopback;
use super::Patch;
use crate::catalog::{Catalog, ConfigScope, Provider};
use crate::domain::{
    AuthMethod, AuthenticateVia, CredentialsType, CustomProvider, CustomProviderDefinition, DataIntegration,
    Environment, IntegrationCredentials, IntegrationState, Ownership, TokenBodyContentType,
};
use crate::error::{FieldError, ServiceError};
use crate::events::{account_events, AccountChange, Actor};
use crate::ids::{CustomProviderId, DataIntegrationId, DikId};
use crate::pagination::{Page, PageRequest};
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use crate::vault::{SealedColumn, Vault};

const MAX_SCOPES: usize = 100;
const MAX_SCOPE_LEN: usize = 256;
const MAX_DESCRIPTION: usize = 2000;
const MAX_TEXT: usize = 2048;

/// `credentials` in create and update bodies.
#[derive(Debug, Deserialize)]
pub struct CredentialsInput {
    /// `custom` or `organization`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The OAuth app's client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// The OAuth app's client secret.
    #[serde(default)]
    pub client_secret: Option<SecretString>,
}

/// `api_key` in create and update bodies: the first tenant of an API-key integration.
#[derive(Debug, Clone, Deserialize)]
pub struct ApiKeyInput {
    /// The key.
    pub secret: SecretString,
    /// Owner (or acting member).
    pub user_id: String,
    /// Organization scope or owner.
    #[serde(default)]
    pub organization_id: Option<String>,
}

impl ApiKeyInput {
    /// The equivalent `PUT …/api-key` body for a root of `ownership`.
    pub fn as_request(&self, ownership: Ownership) -> super::StoreCredentialRequest {
        super::StoreCredentialRequest {
            user_id: Some(self.user_id.clone()),
            organization_id: self.organization_id.clone(),
            connection_owner: Some(ownership.as_str().to_owned()),
            secret: Some(self.secret.clone()),
            ..Default::default()
        }
    }
}

/// `custom_provider` in create (full) and update (partial) bodies.
#[derive(Debug, Default, Deserialize)]
pub struct CustomProviderInput {
    /// Display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Authorization endpoint.
    #[serde(default)]
    pub authorization_url: Patch<String>,
    /// Token endpoint.
    #[serde(default)]
    pub token_url: Patch<String>,
    /// Refresh endpoint; `null` falls back to the token endpoint.
    #[serde(default)]
    pub refresh_token_url: Patch<String>,
    /// Send PKCE.
    #[serde(default)]
    pub pkce_enabled: Option<bool>,
    /// Joins scopes.
    #[serde(default)]
    pub request_scope_separator: Option<String>,
    /// Connecting requires a scope.
    #[serde(default)]
    pub scopes_required: Option<bool>,
    /// Whether the client secret is mandatory.
    #[serde(default)]
    pub client_secret_required: Option<bool>,
    /// Extra authorization parameters.
    #[serde(default)]
    pub additional_authorization_parameters: Option<BTreeMap<String, String>>,
    /// `application/x-www-form-urlencoded` or `application/json`.
    #[serde(default)]
    pub token_body_content_type: Option<String>,
    /// `request_body` or `basic_auth_header`.
    #[serde(default)]
    pub authenticate_via: Option<String>,
}

/// `POST /data-integrations`.
#[derive(Debug, Deserialize)]
pub struct CreateIntegration {
    /// Built-in slug, new custom slug, or existing custom slug.
    pub provider: String,
    /// `user` (default) or `organization`.
    #[serde(default)]
    pub ownership: Option<String>,
    /// Shown to end users.
    #[serde(default)]
    pub description: Option<String>,
    /// Defaults to `false`.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Requested scopes; absent or `null` = provider defaults.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Exactly one of `oauth`, `api_key`, `client_credentials`.
    #[serde(default)]
    pub auth_methods: Option<Vec<String>>,
    /// Integration-scope config values.
    #[serde(default)]
    pub config: Option<BTreeMap<String, String>>,
    /// The OAuth app.
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
    /// The first tenant of an API-key integration.
    #[serde(default)]
    pub api_key: Option<ApiKeyInput>,
    /// A new custom provider's definition.
    #[serde(default)]
    pub custom_provider: Option<CustomProviderInput>,
}

/// `PUT /data-integrations/{slug}` (partial).
#[derive(Debug, Default, Deserialize)]
pub struct UpdateIntegration {
    /// `null` clears.
    #[serde(default)]
    pub description: Patch<String>,
    /// Enable or disable.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// `null` resets to the provider's defaults.
    #[serde(default)]
    pub scopes: Patch<Vec<String>>,
    /// Replaces the OAuth app.
    #[serde(default)]
    pub credentials: Option<CredentialsInput>,
    /// Installs or rotates a tenant's key (API-key integrations).
    #[serde(default)]
    pub api_key: Option<ApiKeyInput>,
    /// Partial change of the custom provider definition.
    #[serde(default)]
    pub custom_provider: Option<CustomProviderInput>,
}

/// What a root's slug resolves to.
enum ProviderRef<'a> {
    Builtin(&'a Provider),
    Custom(Box<CustomProvider>),
}

/// Data integrations: create, read, update, delete and list roots.
#[derive(Clone)]
pub struct Integrations {
    store: Arc<dyn Store>,
    vault: Vault,
    catalog: &'static Catalog,
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
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog) -> Self {
        Self { store, vault, catalog }
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
        let slug = Slug::parse(&req.provider)
            .map_err(|e| ServiceError::invalid_field("provider", "invalid", e.to_string()))?;
        let ownership = parse_ownership(req.ownership.as_deref())?;
        let requested_method = parse_auth_methods(req.auth_methods.as_deref())?;

        // A built-in provider as described for the requested method (Salesforce also offers
        // client credentials), else its main description (then a mismatch below).
        let builtin = requested_method
            .and_then(|m| self.catalog.get_with(slug.as_str(), m))
            .or_else(|| self.catalog.get(slug.as_str()));
        let existing_custom = self.store.custom_provider(env.id, &slug).await?;
        let now = now_ms();
        let (provider, new_custom) = match (req.custom_provider, builtin, existing_custom) {
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
                let definition = custom_definition(input, None, method)?;
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
        let method = match &provider {
            ProviderRef::Builtin(p) => p.auth_method,
            ProviderRef::Custom(cp) => cp.auth_method,
        };
        if let Some(requested) = requested_method {
            if requested != method {
                let supported: Vec<&str> = match &provider {
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
        let config = validate_config(&provider, req.config.unwrap_or_default(), &mut errors);
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
            enabled: req.enabled.unwrap_or(false),
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
                    cp.definition = custom_definition(input, Some(&cp.definition), cp.auth_method)?;
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
        ownership: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<DataIntegration>, ServiceError> {
        let ownership = match ownership {
            None => None,
            Some(raw) => Some(Ownership::parse(raw).ok_or_else(|| {
                ServiceError::invalid_field("ownership", "invalid", "ownership must be 'user' or 'organization'.")
            })?),
        };
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

fn parse_ownership(raw: Option<&str>) -> Result<Ownership, ServiceError> {
    match raw {
        None => Ok(Ownership::User),
        Some(s) => Ownership::parse(s).ok_or_else(|| {
            ServiceError::invalid_field("ownership", "invalid", "ownership must be 'user' or 'organization'.")
        }),
    }
}

fn parse_auth_methods(raw: Option<&[String]>) -> Result<Option<AuthMethod>, ServiceError> {
    let Some(list) = raw else { return Ok(None) };
    match list {
        [one] => AuthMethod::parse(one).map(Some).ok_or_else(|| {
            ServiceError::invalid_field(
                "auth_methods",
                "invalid",
                "auth_methods must be [\"oauth\"], [\"api_key\"] or [\"client_credentials\"].",
            )
        }),
        _ => Err(ServiceError::invalid_field(
            "auth_methods",
            "invalid",
            "auth_methods must hold exactly one of oauth, api_key, client_credentials.",
        )),
    }
}

fn check_api_key_input(method: AuthMethod, input: &ApiKeyInput, errors: &mut Vec<FieldError>) {
    if method != AuthMethod::ApiKey {
        errors.push(FieldError::new(
            "api_key",
            "auth_method_mismatch",
            format!(
                "api_key is only accepted by api_key integrations; this one uses {}.",
                method.as_str()
            ),
        ));
        return;
    }
    if input.secret.expose().chars().count() < 5 {
        errors.push(FieldError::new(
            "api_key.secret",
            "too_short",
            "api_key.secret must be at least 5 characters.",
        ));
    }
}

fn validate_description(d: String, errors: &mut Vec<FieldError>) -> String {
    if d.chars().count() > MAX_DESCRIPTION {
        errors.push(FieldError::new(
            "description",
            "too_long",
            format!("description must be at most {MAX_DESCRIPTION} characters."),
        ));
    }
    d
}

fn validate_scopes(scopes: Vec<String>, errors: &mut Vec<FieldError>) -> Vec<String> {
    if scopes.len() > MAX_SCOPES {
        errors.push(FieldError::new(
            "scopes",
            "too_many",
            format!("at most {MAX_SCOPES} scopes are allowed."),
        ));
    }
    let mut out: Vec<String> = vec![];
    for s in scopes {
        if s.is_empty() || s.len() > MAX_SCOPE_LEN || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errors.push(FieldError::new(
                "scopes",
                "invalid",
                format!(
                    "'{}' is not a valid scope: scopes are non-empty and contain no spaces.",
                    s.escape_debug()
                ),
            ));
        } else if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn validate_config(
    provider: &ProviderRef<'_>,
    config: BTreeMap<String, String>,
    errors: &mut Vec<FieldError>,
) -> BTreeMap<String, String> {
    let p = match provider {
        ProviderRef::Custom(_) => {
            if !config.is_empty() {
                errors.push(FieldError::new(
                    "config",
                    "not_allowed",
                    "custom providers declare no config fields.",
                ));
            }
            return BTreeMap::new();
        }
        ProviderRef::Builtin(p) => p,
    };
    for (key, value) in &config {
        match p.config_field(key) {
            Some(field) if field.scope == ConfigScope::Integration => {
                if !field.accepts(value) {
                    errors.push(FieldError::new(
                        format!("config.{key}"),
                        "invalid",
                        format!("'{}' is not a valid {}.", value.escape_debug(), field.label),
                    ));
                }
            }
            Some(_) => errors.push(FieldError::new(
                format!("config.{key}"),
                "installation_scoped",
                format!("config field '{key}' is supplied per connection when authorizing, not on the integration."),
            )),
            None => errors.push(FieldError::new(
                format!("config.{key}"),
                "unknown_field",
                format!("provider '{}' declares no config field '{key}'.", p.slug),
            )),
        }
    }
    config
}

fn parse_endpoint(field: &str, value: &str, errors: &mut Vec<FieldError>) {
    if value.contains("${") {
        errors.push(FieldError::new(
            field,
            "placeholders_not_allowed",
            format!("{field} must be a static URL: custom providers cannot use ${{config.…}} placeholders."),
        ));
        return;
    }
    match url::Url::parse(value) {
        Ok(u) if u.scheme() == "https" || (u.scheme() == "http" && is_loopback(&u)) => {
            if u.fragment().is_some() || !u.username().is_empty() {
                errors.push(FieldError::new(
                    field,
                    "invalid",
                    format!("{field} must not contain a fragment or credentials."),
                ));
            }
        }
        Ok(_) => errors.push(FieldError::new(
            field,
            "invalid",
            format!("{field} must be an https URL (http is allowed only for localhost)."),
        )),
        Err(_) => errors.push(FieldError::new(
            field,
            "invalid",
            format!("{field} must be an absolute URL."),
        )),
    }
}

/// Builds (create) or merges (update) a custom provider definition and validates it whole.
fn custom_definition(
    input: CustomProviderInput,
    current: Option<&CustomProviderDefinition>,
    method: AuthMethod,
) -> Result<CustomProviderDefinition, ServiceError> {
    let mut errors = vec![];
    let name = input
        .name
        .or_else(|| current.map(|c| c.name.clone()))
        .unwrap_or_default();
    if name.trim().is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new(
            "custom_provider.name",
            "invalid",
            "custom_provider.name is required: 1-200 characters.",
        ));
    }
    let token_body_content_type = match input.token_body_content_type {
        Some(raw) => TokenBodyContentType::parse(&raw).unwrap_or_else(|| {
            errors.push(FieldError::new(
                "custom_provider.token_body_content_type",
                "invalid",
                "token_body_content_type must be application/x-www-form-urlencoded or application/json.",
            ));
            TokenBodyContentType::Form
        }),
        None => current.map_or(TokenBodyContentType::Form, |c| c.token_body_content_type),
    };
    let authenticate_via = match input.authenticate_via.as_deref() {
        Some("request_body") => AuthenticateVia::RequestBody,
        Some("basic_auth_header") => AuthenticateVia::BasicAuthHeader,
        Some(_) => {
            errors.push(FieldError::new(
                "custom_provider.authenticate_via",
                "invalid",
                "authenticate_via must be request_body or basic_auth_header.",
            ));
            AuthenticateVia::RequestBody
        }
        None => current.map_or(AuthenticateVia::RequestBody, |c| c.authenticate_via),
    };
    let separator = input
        .request_scope_separator
        .or_else(|| current.map(|c| c.request_scope_separator.clone()))
        .unwrap_or_else(|| " ".to_owned());
    if separator.is_empty() || separator.len() > 4 {
        errors.push(FieldError::new(
            "custom_provider.request_scope_separator",
            "invalid",
            "request_scope_separator must be 1-4 characters.",
        ));
    }
    let params = input
        .additional_authorization_parameters
        .or_else(|| current.map(|c| c.additional_authorization_parameters.clone()))
        .unwrap_or_default();
    const RESERVED_PARAMS: &[&str] = &[
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "response_type",
        "scope",
    ];
    for key in params.keys() {
        if RESERVED_PARAMS.contains(&key.as_str()) {
            errors.push(FieldError::new(
                format!("custom_provider.additional_authorization_parameters.{key}"),
                "reserved",
                format!("'{key}' is set by Pipes and cannot be overridden."),
            ));
        }
    }
    let def = CustomProviderDefinition {
        name,
        authorization_url: input
            .authorization_url
            .apply(current.and_then(|c| c.authorization_url.clone())),
        token_url: input.token_url.apply(current.and_then(|c| c.token_url.clone())),
        refresh_token_url: input
            .refresh_token_url
            .apply(current.and_then(|c| c.refresh_token_url.clone())),
        pkce_enabled: input.pkce_enabled.or(current.map(|c| c.pkce_enabled)).unwrap_or(true),
        request_scope_separator: separator,
        scopes_required: input
            .scopes_required
            .or(current.map(|c| c.scopes_required))
            .unwrap_or(false),
        client_secret_required: input
            .client_secret_required
            .or(current.map(|c| c.client_secret_required))
            .unwrap_or(true),
        additional_authorization_parameters: params,
        token_body_content_type,
        authenticate_via,
    };
    let endpoints = [
        ("custom_provider.authorization_url", &def.authorization_url),
        ("custom_provider.token_url", &def.token_url),
        ("custom_provider.refresh_token_url", &def.refresh_token_url),
    ];
    for (field, value) in endpoints {
        if let Some(v) = value {
            parse_endpoint(field, v, &mut errors);
        }
    }
    let needs_auth_url = method == AuthMethod::Oauth;
    let needs_token_url = matches!(method, AuthMethod::Oauth | AuthMethod::ClientCredentials);
    if needs_auth_url && def.authorization_url.is_none() {
        errors.push(FieldError::new(
            "custom_provider.authorization_url",
            "required",
            "custom_provider.authorization_url is required for OAuth providers.",
        ));
    }
    if needs_token_url && def.token_url.is_none() {
        errors.push(FieldError::new(
            "custom_provider.token_url",
            "required",
            format!(
                "custom_provider.token_url is required for {} providers.",
                method.as_str()
            ),
        ));
    }
    if errors.is_empty() {
        Ok(def)
    } else {
        Err(ServiceError::invalid_fields(errors))
    }
}
