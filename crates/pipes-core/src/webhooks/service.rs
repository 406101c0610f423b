//! Webhook endpoints (contract §4.16) and the operator's view of their deliveries.

use std::sync::Arc;

use rand::distributions::{Alphanumeric, DistString};

use crate::domain::{Delivery, DeliveryAttempt, DeliveryState, EndpointStatus, Environment, WebhookEndpoint};
use crate::egress::Egress;
use crate::error::{FieldError, ServiceError};
use crate::events::EventType;
use crate::ids::{EventId, WebhookEndpointId};
use crate::pagination::{Page, PageRequest};
use crate::secret::SecretString;
use crate::store::{Store, StoreError};
use crate::time::now_ms;
use crate::vault::{SealedColumn, Vault};

/// `POST /webhook_endpoints`, checked.
#[derive(Debug)]
pub struct CreateWebhookEndpoint {
    /// Where to deliver (checked by [`check_endpoint_url`]).
    pub endpoint_url: String,
    /// Subscribed event types, without repeats.
    pub events: Vec<EventType>,
}

impl CreateWebhookEndpoint {
    /// Checks the URL and the event types as sent.
    pub fn parse(endpoint_url: &str, events: &[String]) -> Result<Self, ServiceError> {
        Ok(Self {
            endpoint_url: check_endpoint_url(endpoint_url)?,
            events: check_events(events)?,
        })
    }
}

/// `PATCH /webhook_endpoints/{id}`: any of the fields, checked.
#[derive(Debug, Default)]
pub struct UpdateWebhookEndpoint {
    /// New URL.
    pub endpoint_url: Option<String>,
    /// Enabled or disabled.
    pub status: Option<EndpointStatus>,
    /// New subscriptions.
    pub events: Option<Vec<EventType>>,
}

impl UpdateWebhookEndpoint {
    /// Checks each field sent.
    pub fn parse(
        endpoint_url: Option<&str>,
        status: Option<&str>,
        events: Option<&[String]>,
    ) -> Result<Self, ServiceError> {
        Ok(Self {
            endpoint_url: endpoint_url.map(check_endpoint_url).transpose()?,
            status: status
                .map(|raw| {
                    EndpointStatus::parse(raw).ok_or_else(|| {
                        ServiceError::invalid_field("status", "invalid", "status must be 'enabled' or 'disabled'.")
                    })
                })
                .transpose()?,
            events: events.map(check_events).transpose()?,
        })
    }
}

/// An endpoint with its secret opened (the API returns it on every read).
#[derive(Debug, Clone)]
pub struct OpenedEndpoint {
    /// The endpoint.
    pub endpoint: WebhookEndpoint,
    /// Its signing secret.
    pub secret: SecretString,
}

/// Manages webhook endpoints.
#[derive(Clone)]
pub struct Webhooks {
    store: Arc<dyn Store>,
    vault: Vault,
    egress: Egress,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks").finish_non_exhaustive()
    }
}

fn not_found() -> ServiceError {
    ServiceError::not_found("The webhook endpoint was not found.")
}

fn duplicate() -> ServiceError {
    ServiceError::Conflict {
        code: "duplicate_endpoint",
        message: "A webhook endpoint with this URL already exists.".into(),
    }
}

/// Checks an endpoint URL: absolute https, or http on a loopback host for development; no
/// credentials, no fragment.
pub fn check_endpoint_url(raw: &str) -> Result<String, ServiceError> {
    let invalid = |why: &str| ServiceError::Invalid {
        code: "invalid_url",
        message: format!("endpoint_url is not a valid webhook URL: {why}."),
        errors: vec![FieldError::new("endpoint_url", "invalid_url", why)],
    };
    if raw.len() > 2048 {
        return Err(invalid("it is longer than 2048 characters"));
    }
    let url = url::Url::parse(raw.trim()).map_err(|_| invalid("it is not an absolute URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost") || d.ends_with(".localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid("it has no host")),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => return Err(invalid("it must use https (http only on localhost)")),
        _ => return Err(invalid("it must use https")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("it must not contain credentials"));
    }
    if url.fragment().is_some() {
        return Err(invalid("it must not contain a fragment"));
    }
    Ok(url.into())
}

fn check_events(raw: &[String]) -> Result<Vec<EventType>, ServiceError> {
    if raw.is_empty() {
        return Err(ServiceError::invalid_field(
            "events",
            "required",
            "events must name at least one event type.",
        ));
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for name in raw {
        match EventType::parse(name) {
            Some(t) if !out.contains(&t) => out.push(t),
            Some(_) => {}
            None => errors.push(FieldError::new(
                "events",
                "invalid_event",
                format!("'{name}' is not an event type."),
            )),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ServiceError::invalid_fields(errors))
    }
}

impl Webhooks {
    /// Over a store and the vault.
    pub fn new(store: Arc<dyn Store>, vault: Vault, egress: Egress) -> Self {
        Self { store, vault, egress }
    }

    /// Opens an endpoint's secret.
    pub fn secret(&self, e: &WebhookEndpoint) -> Result<SecretString, ServiceError> {
        let id = e.id.to_string();
        Ok(self
            .vault
            .open_secret(&e.secret, SealedColumn::WebhookSecret.aad(&id))?)
    }

    fn opened(&self, endpoint: WebhookEndpoint) -> Result<OpenedEndpoint, ServiceError> {
        let secret = self.secret(&endpoint)?;
        Ok(OpenedEndpoint { endpoint, secret })
    }

    /// Registers an endpoint with a fresh secret.
    pub async fn create(&self, env: &Environment, req: CreateWebhookEndpoint) -> Result<OpenedEndpoint, ServiceError> {
        let CreateWebhookEndpoint { endpoint_url, events } = req;
        self.egress.policy().check_saved("endpoint_url", &endpoint_url)?;
        let id = WebhookEndpointId::new();
        let secret = SecretString::new(format!(
            "whsec_{}",
            Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
        ));
        let row_id = id.to_string();
        let now = now_ms();
        let endpoint = WebhookEndpoint {
            id,
            environment_id: env.id,
            endpoint_url,
            secret: self
                .vault
                .seal_secret(&secret, SealedColumn::WebhookSecret.aad(&row_id)),
            status: EndpointStatus::Enabled,
            events,
            created_at: now,
            updated_at: now,
        };
        match self.store.insert_webhook_endpoint(&endpoint).await {
            Ok(()) => Ok(OpenedEndpoint { endpoint, secret }),
            Err(StoreError::Conflict(_)) => Err(duplicate()),
            Err(e) => Err(e.into()),
        }
    }

    /// One endpoint.
    pub async fn get(&self, env: &Environment, id: &str) -> Result<WebhookEndpoint, ServiceError> {
        let id = WebhookEndpointId::parse(id).map_err(|_| not_found())?;
        self.store.webhook_endpoint(env.id, id).await?.ok_or_else(not_found)
    }

    /// One endpoint with its secret.
    pub async fn get_opened(&self, env: &Environment, id: &str) -> Result<OpenedEndpoint, ServiceError> {
        let endpoint = self.get(env, id).await?;
        self.opened(endpoint)
    }

    /// A page of endpoints.
    pub async fn list(&self, env: &Environment, page: PageRequest) -> Result<Page<OpenedEndpoint>, ServiceError> {
        if let Some((field, cursor)) = page.cursor() {
            let known = match WebhookEndpointId::parse(cursor) {
                Ok(id) => self.store.webhook_endpoint(env.id, id).await?.is_some(),
                Err(_) => false,
            };
            if !known {
                return Err(ServiceError::invalid_field(
                    field,
                    "invalid_cursor",
                    format!("{field} must be the id of a webhook endpoint in this list."),
                ));
            }
        }
        let rows = self.store.scan_webhook_endpoints(env.id, &page.scan()).await?;
        let rows = rows
            .into_iter()
            .map(|e| self.opened(e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(page.page(rows, |e| e.endpoint.id.to_string()))
    }

    /// Changes an endpoint's URL, status or subscriptions.
    pub async fn update(
        &self,
        env: &Environment,
        id: &str,
        req: UpdateWebhookEndpoint,
    ) -> Result<OpenedEndpoint, ServiceError> {
        let mut endpoint = self.get(env, id).await?;
        if let Some(url) = req.endpoint_url {
            self.egress.policy().check_saved("endpoint_url", &url)?;
            endpoint.endpoint_url = url;
        }
        if let Some(status) = req.status {
            endpoint.status = status;
        }
        if let Some(events) = req.events {
            endpoint.events = events;
        }
        endpoint.updated_at = now_ms();
        match self.store.update_webhook_endpoint(&endpoint).await {
            Ok(()) => self.opened(endpoint),
            Err(StoreError::Conflict(_)) => Err(duplicate()),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes an endpoint and its delivery history.
    pub async fn delete(&self, env: &Environment, id: &str) -> Result<(), ServiceError> {
        let id = WebhookEndpointId::parse(id).map_err(|_| not_found())?;
        if self.store.delete_webhook_endpoint(env.id, id).await? {
            Ok(())
        } else {
            Err(not_found())
        }
    }

    /// An endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        env: &Environment,
        id: &str,
        state: Option<DeliveryState>,
        limit: u32,
    ) -> Result<Vec<Delivery>, ServiceError> {
        let endpoint = self.get(env, id).await?;
        Ok(self.store.list_deliveries(endpoint.id, state, limit).await?)
    }

    /// The attempts to deliver one event to an endpoint.
    pub async fn attempts(
        &self,
        env: &Environment,
        id: &str,
        event: &str,
    ) -> Result<Vec<DeliveryAttempt>, ServiceError> {
        let endpoint = self.get(env, id).await?;
        let event = EventId::parse(event).map_err(|_| ServiceError::not_found("The event was not found."))?;
        Ok(self.store.delivery_attempts(endpoint.id, event).await?)
    }

    /// Sends an event to an endpoint again (or for the first time), ahead of any backoff.
    pub async fn redeliver(&self, env: &Environment, id: &str, event: &str) -> Result<(), ServiceError> {
        let endpoint = self.get(env, id).await?;
        let event = EventId::parse(event).map_err(|_| ServiceError::not_found("The event was not found."))?;
        if self.store.redeliver(endpoint.id, event, now_ms()).await? {
            Ok(())
        } else {
            Err(ServiceError::not_found("The event was not found in this environment."))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_are_https_or_loopback_http() {
        assert!(check_endpoint_url("https://example.com/webhooks").is_ok());
        assert!(check_endpoint_url("http://localhost:3000/hook").is_ok());
        assert!(check_endpoint_url("http://127.0.0.1:9/hook").is_ok());
        assert!(check_endpoint_url("http://[::1]:9/hook").is_ok());
        for bad in [
            "http://example.com/hook",
            "ftp://example.com/hook",
            "example.com/hook",
            "https://user:pw@example.com/hook",
            "https://example.com/hook#frag",
            "",
        ] {
            let err = check_endpoint_url(bad).unwrap_err();
            assert!(
                matches!(
                    err,
                    ServiceError::Invalid {
                        code: "invalid_url",
                        ..
                    }
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn event_lists_must_be_known_and_non_empty() {
        assert!(check_events(&[]).is_err());
        assert!(check_events(&["pipes.nope".into()]).is_err());
        let ok = check_events(&[
            "pipes.connected_account.connected".into(),
            "pipes.connected_account.connected".into(),
        ])
        .unwrap();
        assert_eq!(ok, vec![EventType::ConnectedAccountConnected]);
    }
}
