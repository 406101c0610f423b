//! Organizations as Pipes sees them: who is an active member (declared by the application, or
//! vouched for per call), and each organization's settings for a provider (contract §4.13):
//! enabled, requested scopes, and for organization-credential integrations its own OAuth app.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::resolve::{provider_name, sort_by_provider};
use super::selection::{check_id, root_not_found, OwnerChoice};
use super::Patch;
use crate::catalog::{Catalog, ConfigScope};
use crate::domain::{
    DataIntegration, Effective, Environment, Membership, MembershipMode, OrganizationApp, OrganizationSettings,
    Ownership,
};
use crate::error::ServiceError;
use crate::events::{account_events, AccountChange, Actor};
use crate::ids::DikId;
use crate::secret::SecretString;
use crate::slug::Slug;
use crate::store::{Store, StoreError};
use crate::time::{now_ms, Millis};
use crate::vault::{SealedColumn, Vault};

/// Why the server cleared a connection whose establishing member left.
pub const MEMBERSHIP_ENDED: &str = "establishing_member_membership_ended";

/// `PUT /organizations/{id}/data_integration_configurations/{slug}`, checked.
#[derive(Debug, Default)]
pub struct ConfigureIntegration {
    /// Enabled override.
    pub enabled: Option<bool>,
    /// Scopes override; `null` inherits.
    pub scopes: Patch<Vec<String>>,
    /// The organization's OAuth app: client id and secret.
    pub app: Option<(String, SecretString)>,
    /// Integration-scope config (organization-credential roots).
    pub config: Option<BTreeMap<String, String>>,
}

impl ConfigureIntegration {
    /// Checks the fields as sent: at least one, and the app's id and secret together.
    pub fn parse(
        enabled: Option<bool>,
        scopes: Patch<Vec<String>>,
        client_id: Option<String>,
        client_secret: Option<SecretString>,
        config: Option<BTreeMap<String, String>>,
    ) -> Result<Self, ServiceError> {
        let invalid = |message: &str| ServiceError::bad_request("invalid_request", message);
        let app = match (client_id, client_secret) {
            (None, None) => None,
            (Some(id), Some(secret)) => {
                if id.trim().is_empty() || id.len() > 512 || secret.expose().is_empty() || secret.expose().len() > 2048
                {
                    return Err(invalid("client_id and client_secret must be non-empty."));
                }
                Some((id, secret))
            }
            _ => return Err(invalid("client_id and client_secret must be sent together.")),
        };
        if enabled.is_none() && !scopes.is_sent() && app.is_none() && config.is_none() {
            return Err(invalid(
                "Send at least one of enabled, scopes, client_id and client_secret, or config.",
            ));
        }
        Ok(Self {
            enabled,
            scopes,
            app,
            config,
        })
    }
}

/// One row of the organization's provider configuration list.
#[derive(Debug, Clone)]
pub struct Configuration {
    /// The root.
    pub root: DataIntegration,
    /// Display name.
    pub name: String,
    /// The organization.
    pub organization_id: String,
    /// What applies.
    pub effective: Effective,
    /// The config in force for the organization.
    pub config: BTreeMap<String, String>,
    /// Of the override, else of the root.
    pub created_at: Millis,
    /// Of the override, else of the root.
    pub updated_at: Millis,
}

/// Organizations.
#[derive(Clone)]
pub struct Organizations {
    store: Arc<dyn Store>,
    vault: Vault,
    catalog: &'static Catalog,
}

impl std::fmt::Debug for Organizations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Organizations")
    }
}

/// The callback URL an organization registers for its own OAuth app.
pub fn organization_redirect_uri(public_url: &str, root: &DataIntegration, settings: &OrganizationSettings) -> String {
    format!(
        "{}/data-integrations/{}/{}/callback",
        public_url.trim_end_matches('/'),
        root.slug,
        settings.id
    )
}

impl Organizations {
    /// The service.
    pub fn new(store: Arc<dyn Store>, vault: Vault, catalog: &'static Catalog) -> Self {
        Self { store, vault, catalog }
    }

    /// Refuses a call made for an organization's shared connection by someone who is not an
    /// active member: 403 `user_not_member_of_organization`; in registry mode an organization
    /// nobody declared is 404.
    pub async fn check_acting_member(&self, env: &Environment, choice: &OwnerChoice) -> Result<(), ServiceError> {
        if choice.owner.ownership != Ownership::Organization {
            return Ok(());
        }
        let (Some(org), Some(user)) = (choice.owner.organization_id.as_deref(), choice.acting_user.as_deref()) else {
            return Ok(());
        };
        if self.is_active_member(env, org, user).await? {
            Ok(())
        } else {
            Err(ServiceError::Forbidden {
                code: "user_not_member_of_organization",
                message: "The user is not an active member of the organization.".into(),
            })
        }
    }

    /// Whether `user` is an active member of `organization`: as declared, else (trust mode)
    /// yes. In registry mode an organization nobody declared is 404.
    pub async fn is_active_member(&self, env: &Environment, org: &str, user: &str) -> Result<bool, ServiceError> {
        let declared = self.store.membership(env.id, org, user).await?.map(|m| m.active);
        if declared.is_none() {
            self.check_organization_known(env, org).await?;
        }
        Ok(env.settings.membership.is_active(declared))
    }

    /// In registry mode, 404 for an organization nobody was declared a member of.
    pub async fn check_organization_known(&self, env: &Environment, org: &str) -> Result<(), ServiceError> {
        if env.settings.membership == MembershipMode::Registry && !self.store.organization_known(env.id, org).await? {
            return Err(ServiceError::not_found("The organization was not found."));
        }
        Ok(())
    }

    /// The declared members of an organization.
    pub async fn members(&self, env: &Environment, organization: &str) -> Result<Vec<Membership>, ServiceError> {
        check_id("organization_id", organization)?;
        Ok(self.store.memberships(env.id, organization).await?)
    }

    /// Declares a membership active or ended. Ending one clears, in the same transaction,
    /// every shared connection the member established in the organization: credentials wiped,
    /// `needs_reauthorization` with `state_reason` `establishing_member_membership_ended`, and
    /// a `reauthorization_needed` event. Returns the membership and how many were cleared.
    pub async fn set_membership(
        &self,
        env: &Environment,
        organization: &str,
        user: &str,
        active: bool,
    ) -> Result<(Membership, usize), ServiceError> {
        check_id("organization_id", organization)?;
        check_id("user_id", user)?;
        for _ in 0..5 {
            let now = now_ms();
            let current = self.store.membership(env.id, organization, user).await?;
            let membership = Membership {
                environment_id: env.id,
                organization_id: organization.to_owned(),
                user_id: user.to_owned(),
                active,
                created_at: current.as_ref().map_or(now, |m| m.created_at),
                updated_at: now,
            };
            let mut cleared = Vec::new();
            let mut events = Vec::new();
            if !active {
                let slugs = self.slugs(env).await?;
                for account in self.store.accounts_established_by(env.id, organization, user).await? {
                    let mut wiped = account;
                    wiped.wipe(MEMBERSHIP_ENDED, now);
                    let slug = slugs.get(&wiped.data_integration_id).cloned().unwrap_or_default();
                    events.extend(account_events(
                        AccountChange::ReauthorizationNeeded,
                        &wiped,
                        &slug,
                        &Actor::System,
                    ));
                    cleared.push(wiped);
                }
            }
            match self.store.put_membership(&membership, &cleared, &events).await {
                Ok(()) => return Ok((membership, cleared.len())),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ServiceError::Unavailable {
            message: "The organization's connections kept changing; retry.".into(),
            retry_after: 1,
        })
    }

    async fn slugs(
        &self,
        env: &Environment,
    ) -> Result<std::collections::HashMap<crate::ids::DataIntegrationId, String>, ServiceError> {
        // Shared connections live on organization-owned roots only.
        let roots = self
            .store
            .all_data_integrations(env.id, Ownership::Organization)
            .await?;
        Ok(roots.into_iter().map(|r| (r.id, r.slug.to_string())).collect())
    }

    /// What applies to `organization` (if any) for `root`.
    pub async fn effective(
        &self,
        root: &DataIntegration,
        organization: Option<&str>,
    ) -> Result<Effective, ServiceError> {
        let settings = match organization {
            Some(org) => self.store.organization_settings(root.id, org).await?,
            None => None,
        };
        Ok(self.catalog.effective(root, settings))
    }

    /// What applies when `choice` connects to `root`, once its acting member is checked.
    pub async fn effective_for(
        &self,
        env: &Environment,
        root: &DataIntegration,
        choice: &OwnerChoice,
    ) -> Result<Effective, ServiceError> {
        self.check_acting_member(env, choice).await?;
        self.effective(root, choice.owner.organization_id.as_deref()).await
    }

    /// The root an organization configures for a slug: the user-owned one, else the
    /// organization-owned one.
    async fn configurable_root(
        &self,
        env: &Environment,
        slug: &Slug,
        ownership: Option<Ownership>,
    ) -> Result<DataIntegration, ServiceError> {
        if let Some(ownership) = ownership {
            return self
                .store
                .data_integration(env.id, slug, ownership)
                .await?
                .ok_or_else(root_not_found);
        }
        if let Some(root) = self.store.data_integration(env.id, slug, Ownership::User).await? {
            return Ok(root);
        }
        self.store
            .data_integration(env.id, slug, Ownership::Organization)
            .await?
            .ok_or_else(root_not_found)
    }

    /// Every user-owned root as the organization sees it. Organization-credential roots get
    /// their override (and so their redirect URI) created on first sight, so an administrator
    /// can register the URI before supplying the app.
    pub async fn configurations(
        &self,
        env: &Environment,
        organization: &str,
    ) -> Result<Vec<Configuration>, ServiceError> {
        self.configurations_of(env, organization, Ownership::User).await
    }

    /// Every root of `ownership` as the organization sees it (see [`Self::configurations`]).
    pub async fn configurations_of(
        &self,
        env: &Environment,
        organization: &str,
        ownership: Ownership,
    ) -> Result<Vec<Configuration>, ServiceError> {
        check_id("organization_id", organization)?;
        if env.settings.membership == MembershipMode::Registry
            && !self.store.organization_known(env.id, organization).await?
        {
            return Err(ServiceError::not_found("The organization was not found."));
        }
        let overrides = self.store.organization_settings_of(env.id, organization).await?;
        let mut out = Vec::new();
        for root in self.store.all_data_integrations(env.id, ownership).await? {
            let mut settings = overrides.iter().find(|s| s.data_integration_id == root.id).cloned();
            if settings.is_none() && root.uses_organization_apps() {
                settings = Some(self.ensure_settings(env, &root, organization).await?);
            }
            out.push(self.configuration(root, organization, settings));
        }
        sort_by_provider(&mut out, |c| (&c.name, &c.root.slug));
        Ok(out)
    }

    async fn ensure_settings(
        &self,
        env: &Environment,
        root: &DataIntegration,
        organization: &str,
    ) -> Result<OrganizationSettings, ServiceError> {
        let now = now_ms();
        let blank = OrganizationSettings {
            id: DikId::new(),
            environment_id: env.id,
            data_integration_id: root.id,
            organization_id: organization.to_owned(),
            enabled: None,
            scopes: None,
            app: None,
            config: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        };
        self.store.put_organization_settings(&blank, false).await?;
        self.store
            .organization_settings(root.id, organization)
            .await?
            .ok_or_else(|| ServiceError::Internal("organization settings vanished".into()))
    }

    fn configuration(
        &self,
        root: DataIntegration,
        organization: &str,
        settings: Option<OrganizationSettings>,
    ) -> Configuration {
        let org_credentials = root.uses_organization_apps();
        let config = match (&settings, org_credentials) {
            (Some(s), true) => s.config.clone(),
            (None, true) => BTreeMap::new(),
            _ => root.config.clone(),
        };
        let (created_at, updated_at) = settings
            .as_ref()
            .map_or((root.created_at, root.updated_at), |s| (s.created_at, s.updated_at));
        Configuration {
            name: provider_name(&root, self.catalog),
            organization_id: organization.to_owned(),
            effective: self.catalog.effective(&root, settings),
            config,
            created_at,
            updated_at,
            root,
        }
    }

    /// Creates or changes an organization's override of a provider.
    pub async fn configure(
        &self,
        env: &Environment,
        organization: &str,
        slug: &Slug,
        req: ConfigureIntegration,
    ) -> Result<Configuration, ServiceError> {
        check_id("organization_id", organization)?;
        let root = self.configurable_root(env, slug, None).await?;
        self.configure_root(env, organization, root, req).await
    }

    /// Changes an organization's override of the root of `slug` with this ownership.
    pub async fn configure_ownership(
        &self,
        env: &Environment,
        organization: &str,
        slug: &Slug,
        ownership: Ownership,
        req: ConfigureIntegration,
    ) -> Result<Configuration, ServiceError> {
        check_id("organization_id", organization)?;
        let root = self.configurable_root(env, slug, Some(ownership)).await?;
        self.configure_root(env, organization, root, req).await
    }

    async fn configure_root(
        &self,
        env: &Environment,
        organization: &str,
        root: DataIntegration,
        req: ConfigureIntegration,
    ) -> Result<Configuration, ServiceError> {
        let org_credentials = root.uses_organization_apps();
        if req.app.is_some() && !org_credentials {
            return Err(ServiceError::bad_request(
                "invalid_request",
                "This integration does not use organization OAuth apps; its credentials belong on the integration.",
            ));
        }
        if req.config.is_some() && !org_credentials {
            return Err(ServiceError::bad_request(
                "invalid_request",
                "config belongs on the integration unless the organization brings its own OAuth app.",
            ));
        }
        if let Some(config) = &req.config {
            self.check_config(&root, config)?;
        }
        if let Patch::Value(scopes) = &req.scopes {
            let allowed = self.catalog.requested_scopes(&root).unwrap_or_default();
            let outside: Vec<&String> = scopes.iter().filter(|s| !allowed.contains(s)).collect();
            if !outside.is_empty() || scopes.len() > 200 {
                return Err(ServiceError::invalid_field(
                    "scopes",
                    "invalid_scopes",
                    format!(
                        "Scopes must be among the integration's scopes ({}); not allowed: {}.",
                        allowed.join(", "),
                        outside.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
        let now = now_ms();
        let mut settings = match self.store.organization_settings(root.id, organization).await? {
            Some(s) => s,
            None => self.ensure_settings(env, &root, organization).await?,
        };
        if let Some(enabled) = req.enabled {
            settings.enabled = Some(enabled);
        }
        settings.scopes = req.scopes.apply(settings.scopes.take());
        if let Some((client_id, secret)) = req.app {
            let row = settings.id.to_string();
            settings.app = Some(OrganizationApp {
                client_id,
                client_secret: self
                    .vault
                    .seal_secret(&secret, SealedColumn::OrganizationClientSecret.aad(&row)),
                client_secret_last_4: secret.last4(),
            });
        }
        if let Some(config) = req.config {
            settings.config = config;
        }
        settings.updated_at = now;
        self.store.put_organization_settings(&settings, true).await?;
        Ok(self.configuration(root, organization, Some(settings)))
    }

    fn check_config(&self, root: &DataIntegration, config: &BTreeMap<String, String>) -> Result<(), ServiceError> {
        let provider = self.catalog.for_root(root);
        for (key, value) in config {
            let field = provider.and_then(|p| p.config_field(key));
            match field {
                Some(f) if f.scope == ConfigScope::Integration && f.accepts(value) => {}
                Some(f) if f.scope == ConfigScope::Integration => {
                    return Err(ServiceError::bad_request(
                        "invalid_request",
                        format!("config.{key}: '{}' is not a valid {}.", value.escape_debug(), f.label),
                    ))
                }
                _ => {
                    return Err(ServiceError::bad_request(
                        "invalid_request",
                        format!("config.{key}: the provider declares no organization-level config field '{key}'."),
                    ))
                }
            }
        }
        Ok(())
    }
}
