use std::sync::Arc;

use crate::api_keys;
use crate::domain::{AllowList, ApiKey, Environment, EnvironmentName, EnvironmentSettings};
use crate::error::ServiceError;
use crate::ids::{ApiKeyId, ClientId, EnvironmentId};
use crate::secret::SecretString;
use crate::store::{Store, StoreError};
use crate::time::now_ms;

/// A key that was just created: the record and the secret, shown once.
#[derive(Debug)]
pub struct NewKey {
    /// What is stored.
    pub record: ApiKey,
    /// The key itself.
    pub secret: SecretString,
}

/// Environments, API keys and redirect URIs: what operators manage with the CLI.
#[derive(Clone)]
pub struct Environments {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Environments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Environments")
    }
}

impl Environments {
    /// The service over a store.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }

    /// Creates an environment; 409 when the name is taken.
    pub async fn create(&self, name: &str, production: bool) -> Result<Environment, ServiceError> {
        let name = EnvironmentName::parse(name).map_err(|m| ServiceError::invalid_field("name", "invalid", m))?;
        let env = Environment {
            id: EnvironmentId::new(),
            name,
            production,
            client_id: ClientId::new(),
            created_at: now_ms(),
            settings: EnvironmentSettings::default(),
        };
        match self.store.insert_environment(&env).await {
            Ok(()) => Ok(env),
            Err(StoreError::Conflict(_)) => Err(ServiceError::Conflict {
                code: "environment_already_exists",
                message: format!("An environment named '{}' already exists.", env.name),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Changes an environment's connection settings.
    pub async fn update_settings(
        &self,
        name: &str,
        settings: EnvironmentSettings,
    ) -> Result<Environment, ServiceError> {
        if settings.connection_limit == 0 || settings.connection_limit > 1000 {
            return Err(ServiceError::invalid_field(
                "connection_limit",
                "invalid",
                "connection_limit must be between 1 and 1000.",
            ));
        }
        if settings.team_name.as_ref().is_some_and(|t| t.chars().count() > 100) {
            return Err(ServiceError::invalid_field(
                "team_name",
                "too_long",
                "team_name must be at most 100 characters.",
            ));
        }
        if let Some(url) = &settings.logo_url {
            let ok = url::Url::parse(url).is_ok_and(|u| u.scheme() == "https" || is_loopback(&u));
            if !ok || url.len() > 2048 {
                return Err(ServiceError::invalid_field(
                    "logo_url",
                    "invalid",
                    "logo_url must be an https URL (http only on localhost).",
                ));
            }
        }
        let mut env = self.by_name(name).await?;
        if !self.store.update_environment_settings(env.id, &settings).await? {
            return Err(ServiceError::not_found(format!("No environment named '{name}'.")));
        }
        env.settings = settings;
        Ok(env)
    }

    /// An environment by name; 404 when unknown.
    pub async fn by_name(&self, name: &str) -> Result<Environment, ServiceError> {
        let parsed = EnvironmentName::parse(name).map_err(|m| ServiceError::invalid_field("name", "invalid", m))?;
        self.store
            .environment_by_name(&parsed)
            .await?
            .ok_or_else(|| ServiceError::not_found(format!("No environment named '{name}'.")))
    }

    /// An environment by name, created when missing (used by `pipes dev`).
    pub async fn ensure(&self, name: &str, production: bool) -> Result<(Environment, bool), ServiceError> {
        match self.by_name(name).await {
            Ok(env) => Ok((env, false)),
            Err(ServiceError::NotFound { .. }) => Ok((self.create(name, production).await?, true)),
            Err(e) => Err(e),
        }
    }

    /// Every environment.
    pub async fn list(&self) -> Result<Vec<Environment>, ServiceError> {
        Ok(self.store.list_environments().await?)
    }

    /// Mints a key for an environment. The secret is returned once and never stored.
    pub async fn create_key(&self, env: &Environment) -> Result<NewKey, ServiceError> {
        let minted = api_keys::mint(env.production);
        let record = ApiKey {
            id: ApiKeyId::new(),
            environment_id: env.id,
            prefix: minted.prefix,
            hash: minted.hash,
            created_at: now_ms(),
            revoked_at: None,
        };
        self.store.insert_api_key(&record).await?;
        Ok(NewKey {
            record,
            secret: minted.secret,
        })
    }

    /// The environment a presented key opens, if any: the authentication of every API call.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<Environment>, ServiceError> {
        match api_keys::lookup_hash(presented) {
            Some(hash) => Ok(self.store.environment_for_key_hash(&hash).await?),
            None => Ok(None),
        }
    }

    /// An environment's keys.
    pub async fn list_keys(&self, env: &Environment) -> Result<Vec<ApiKey>, ServiceError> {
        Ok(self.store.list_api_keys(env.id).await?)
    }

    /// Revokes a key by id; 404 when there is no such active key.
    pub async fn revoke_key(&self, id: &str) -> Result<(), ServiceError> {
        let id = ApiKeyId::parse(id).map_err(|e| ServiceError::invalid_field("key_id", "invalid", e.to_string()))?;
        if self.store.revoke_api_key(id, now_ms()).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found(format!("No active API key with id {id}.")))
        }
    }

    /// Adds a redirect URI (an allowed `return_to`) or a web origin (allowed to call the
    /// widget API). Returns whether it was new.
    pub async fn allow(&self, env: &Environment, list: AllowList, entry: &str) -> Result<bool, ServiceError> {
        let normalized = normalize(list, entry)?;
        Ok(self.store.allow(env.id, list, &normalized, now_ms()).await?)
    }

    /// An allow-list's entries.
    pub async fn allowed(&self, env: &Environment, list: AllowList) -> Result<Vec<String>, ServiceError> {
        Ok(self.store.allowed(env.id, list).await?)
    }

    /// Removes an entry (as given, or as it was normalized when added); 404 when absent.
    pub async fn disallow(&self, env: &Environment, list: AllowList, entry: &str) -> Result<(), ServiceError> {
        let normalized = normalize(list, entry).unwrap_or_else(|_| entry.to_owned());
        if self.store.disallow(env.id, list, &normalized).await? || self.store.disallow(env.id, list, entry).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found(format!(
                "'{entry}' is not a registered {}.",
                list.entry()
            )))
        }
    }
}

/// An entry as the list stores it.
fn normalize(list: AllowList, entry: &str) -> Result<String, ServiceError> {
    match list {
        AllowList::RedirectUris => validate_redirect_uri(entry).map(String::from),
        AllowList::WebOrigins => validate_origin(entry),
    }
}

/// A web origin: `scheme://host[:port]`, https (http only on loopback), nothing after it.
pub fn validate_origin(origin: &str) -> Result<String, ServiceError> {
    let parsed = web_url("origin", origin)?;
    if parsed.path() != "/" || parsed.query().is_some() || !parsed.username().is_empty() {
        return Err(ServiceError::invalid_field(
            "origin",
            "invalid",
            format!("'{origin}' must be only a scheme, a host and a port, such as https://app.example.com"),
        ));
    }
    Ok(parsed.origin().ascii_serialization())
}

/// A redirect URI must be an absolute http(s) URL without a fragment; plain http only on loopback.
pub fn validate_redirect_uri(uri: &str) -> Result<url::Url, ServiceError> {
    web_url("uri", uri)
}

/// An absolute URL a browser is sent to or comes from: https, or http on loopback; a host
/// without wildcards; no fragment.
fn web_url(field: &str, raw: &str) -> Result<url::Url, ServiceError> {
    let bad = |m: &str| ServiceError::invalid_field(field, "invalid", format!("'{raw}' {m}"));
    let parsed = url::Url::parse(raw).map_err(|_| bad("is not an absolute URL"))?;
    match parsed.scheme() {
        "https" => {}
        "http" if is_loopback(&parsed) => {}
        "http" => {
            return Err(bad(
                "must use https (plain http is only allowed for localhost, 127.0.0.1 and [::1])",
            ))
        }
        _ => return Err(bad("must be an http or https URL")),
    }
    if parsed.fragment().is_some() {
        return Err(bad("must not contain a fragment"));
    }
    if parsed.host_str().is_none_or(|h| h.contains('*')) {
        return Err(bad("must name a host without wildcards"));
    }
    Ok(parsed)
}

/// Whether a URL points at this machine (`localhost`, `127.0.0.0/8`, `[::1]`).
pub fn is_loopback(u: &url::Url) -> bool {
    match u.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn web_origins_are_stored_as_the_browser_sends_them() {
        assert_eq!(
            validate_origin("https://App.Example.com:443/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(
            validate_origin("http://127.0.0.1:4200").unwrap(),
            "http://127.0.0.1:4200"
        );
        for bad in [
            "http://app.example.com",
            "https://app.example.com/path",
            "https://*.example.com",
            "app.example.com",
        ] {
            assert!(validate_origin(bad).is_err(), "{bad}");
        }
    }
}
