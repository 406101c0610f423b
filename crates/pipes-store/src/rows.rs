//! Row → domain conversions. A row that does not convert is a storage fault, reported as such.

use std::collections::BTreeMap;

use pipes_core::domain::{
    AccountState, ApiKey, AuthMethod, Authorization, AuthorizationStatus, ConnectSession, ConnectedAccount,
    ConnectionIntent, ConnectionRole, CredentialsType, CustomProvider, DataIntegration, Delivery, DeliveryAttempt,
    DeliveryState, DueDelivery, EndpointStatus, Environment, EnvironmentName, EnvironmentSettings,
    IntegrationCredentials, IntegrationState, Membership, MembershipMode, OrganizationApp, OrganizationSettings, Owner,
    Ownership, RefreshError, StoredSecret, TokenSet, WebhookEndpoint,
};
use pipes_core::events::EventType;
use pipes_core::ids::{
    ApiKeyId, ClientId, ConnectedAccountId, CustomProviderId, DataIntegrationId, DikId, EnvironmentId, EventId,
    WebhookEndpointId,
};
use pipes_core::slug::Slug;
use pipes_core::store::{StoreError, StoreResult};
use pipes_core::vault::Sealed;
use sqlx::any::AnyRow;
use sqlx::Row;

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("unreadable {what}: {detail}"))
}

pub(crate) fn get<'r, T>(row: &'r AnyRow, col: &str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    row.try_get(col).map_err(|e| corrupt(col, e))
}

/// A text column parsed into its type; a value that does not parse is a corrupt row.
fn parsed<T, E: std::fmt::Display>(
    row: &AnyRow,
    col: &str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> StoreResult<T> {
    parse(&get::<String>(row, col)?).map_err(|e| corrupt(col, e))
}

/// A text column holding one of a type's known spellings.
fn known<T>(row: &AnyRow, col: &str, parse: impl FnOnce(&str) -> Option<T>) -> StoreResult<T> {
    parse(&get::<String>(row, col)?).ok_or_else(|| corrupt(col, "unknown value"))
}

fn parse<T, E: std::fmt::Display>(what: &str, r: Result<T, E>) -> StoreResult<T> {
    r.map_err(|e| corrupt(what, e))
}

pub(crate) fn environment(row: &AnyRow, prefix: &str) -> StoreResult<Environment> {
    let col = |c: &str| format!("{prefix}{c}");
    Ok(Environment {
        id: parsed(row, &col("id"), EnvironmentId::parse)?,
        name: parsed(row, &col("name"), EnvironmentName::parse)?,
        production: get::<i64>(row, &col("production"))? != 0,
        client_id: parsed(row, &col("client_id"), ClientId::parse)?,
        created_at: get(row, &col("created_at"))?,
        settings: EnvironmentSettings {
            multiple_connections: get::<i64>(row, &col("multiple_connections"))? != 0,
            connection_limit: u32::try_from(get::<i64>(row, &col("connection_limit"))?)
                .map_err(|e| corrupt("connection limit", e))?,
            membership: known(row, &col("membership"), MembershipMode::parse)?,
            team_name: get(row, &col("team_name"))?,
            logo_url: get(row, &col("logo_url"))?,
        },
    })
}

/// The environment columns under the `e_` prefix, for joins.
pub(crate) const ENV_COLUMNS: &str = "e.id AS e_id, e.name AS e_name, e.production AS e_production, \
    e.client_id AS e_client_id, e.created_at AS e_created_at, e.multiple_connections AS e_multiple_connections, \
    e.connection_limit AS e_connection_limit, e.membership AS e_membership, e.team_name AS e_team_name, \
    e.logo_url AS e_logo_url";

pub(crate) fn membership(row: &AnyRow) -> StoreResult<Membership> {
    Ok(Membership {
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        organization_id: get(row, "organization_id")?,
        user_id: get(row, "user_id")?,
        active: get::<i64>(row, "active")? != 0,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn organization_settings(row: &AnyRow) -> StoreResult<OrganizationSettings> {
    let app = match (
        get::<Option<String>>(row, "client_id")?,
        get::<Option<Vec<u8>>>(row, "client_secret")?,
    ) {
        (Some(client_id), Some(secret)) => Some(OrganizationApp {
            client_id,
            client_secret: Sealed(secret),
            client_secret_last_4: get::<Option<String>>(row, "client_secret_last_4")?.unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(OrganizationSettings {
        id: parsed(row, "id", DikId::parse)?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        data_integration_id: parsed(row, "data_integration_id", DataIntegrationId::parse)?,
        organization_id: get(row, "organization_id")?,
        enabled: get::<Option<i64>>(row, "enabled")?.map(|v| v != 0),
        scopes: get::<Option<String>>(row, "scopes")?
            .map(|j| json("scopes", &j))
            .transpose()?,
        app,
        config: json("config", &get::<String>(row, "config")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn api_key(row: &AnyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: parsed(row, "id", ApiKeyId::parse)?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        prefix: get(row, "prefix")?,
        hash: get(row, "key_hash")?,
        created_at: get(row, "created_at")?,
        revoked_at: get(row, "revoked_at")?,
    })
}

fn json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

/// Columns selected for a root, with its custom provider (if any) as `cp_*`.
pub(crate) const ROOT_COLUMNS: &str = "di.id, di.environment_id, di.slug, di.ownership, di.description, di.enabled, \
    di.state, di.scopes, di.auth_method, di.credentials_type, di.client_id, di.client_secret, di.client_secret_last4, \
    di.config, di.dik, di.created_at, di.updated_at, cp.id AS cp_id, cp.auth_method AS cp_auth_method, \
    cp.definition AS cp_definition, cp.created_at AS cp_created_at, cp.updated_at AS cp_updated_at";

/// `FROM` clause matching [`ROOT_COLUMNS`].
pub(crate) const ROOT_FROM: &str =
    "data_integrations di LEFT JOIN custom_providers cp ON cp.id = di.custom_provider_id";

pub(crate) fn data_integration(row: &AnyRow) -> StoreResult<DataIntegration> {
    let environment_id = parsed(row, "environment_id", EnvironmentId::parse)?;
    let slug = parsed(row, "slug", Slug::parse)?;
    let auth_method = known(row, "auth_method", AuthMethod::parse)?;
    let credentials = match get::<Option<String>>(row, "credentials_type")? {
        None => None,
        Some(kind) => Some(IntegrationCredentials {
            kind: CredentialsType::parse(&kind).ok_or_else(|| corrupt("credentials type", &kind))?,
            client_id: get(row, "client_id")?,
            client_secret: get::<Option<Vec<u8>>>(row, "client_secret")?.map(Sealed),
            client_secret_last4: get(row, "client_secret_last4")?,
        }),
    };
    let custom_provider = match get::<Option<String>>(row, "cp_id")? {
        None => None,
        Some(id) => Some(CustomProvider {
            id: parse("custom provider id", CustomProviderId::parse(&id))?,
            environment_id,
            slug: slug.clone(),
            auth_method: known(row, "cp_auth_method", AuthMethod::parse)?,
            definition: json("custom provider definition", &get::<String>(row, "cp_definition")?)?,
            created_at: get(row, "cp_created_at")?,
            updated_at: get(row, "cp_updated_at")?,
        }),
    };
    let scopes: Option<String> = get(row, "scopes")?;
    let config: String = get(row, "config")?;
    Ok(DataIntegration {
        id: parsed(row, "id", DataIntegrationId::parse)?,
        environment_id,
        slug,
        ownership: known(row, "ownership", Ownership::parse)?,
        description: get(row, "description")?,
        enabled: get::<i64>(row, "enabled")? != 0,
        state: known(row, "state", IntegrationState::parse)?,
        scopes: scopes.map(|s| json::<Vec<String>>("scopes", &s)).transpose()?,
        auth_method,
        credentials,
        config: json::<BTreeMap<String, String>>("config", &config)?,
        dik: parsed(row, "dik", DikId::parse)?,
        custom_provider,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn custom_provider(row: &AnyRow) -> StoreResult<CustomProvider> {
    Ok(CustomProvider {
        id: parsed(row, "id", CustomProviderId::parse)?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        slug: parsed(row, "slug", Slug::parse)?,
        auth_method: known(row, "auth_method", AuthMethod::parse)?,
        definition: json("custom provider definition", &get::<String>(row, "definition")?)?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}

/// Columns of a connected account, prefixed `ca_` so they can sit beside a root's.
pub(crate) const ACCOUNT_COLUMNS: &str = "ca.id AS ca_id, ca.environment_id AS ca_environment_id, \
    ca.data_integration_id AS ca_data_integration_id, ca.user_id AS ca_user_id, \
    ca.organization_id AS ca_organization_id, ca.connection_role AS ca_connection_role, \
    ca.account_identifier AS ca_account_identifier, ca.account_display_name AS ca_account_display_name, \
    ca.auth_method AS ca_auth_method, ca.state AS ca_state, ca.state_reason AS ca_state_reason, \
    ca.established_by_user_id AS ca_established_by_user_id, ca.scopes AS ca_scopes, ca.config AS ca_config, \
    ca.metadata AS ca_metadata, ca.access_token AS ca_access_token, ca.expires_at AS ca_expires_at, \
    ca.refresh_token AS ca_refresh_token, ca.refresh_generation AS ca_refresh_generation, \
    ca.last_refreshed_at AS ca_last_refreshed_at, ca.last_refresh_error AS ca_last_refresh_error, \
    ca.last_refresh_error_at AS ca_last_refresh_error_at, ca.refresh_failures AS ca_refresh_failures, \
    ca.refresh_retry_at AS ca_refresh_retry_at, ca.created_at AS ca_created_at, \
    ca.client_id AS ca_client_id, ca.secret AS ca_secret, ca.secret_last_4 AS ca_secret_last_4, \
    ca.updated_at AS ca_updated_at, di.ownership AS ca_ownership";

/// `FROM` clause matching [`ACCOUNT_COLUMNS`] (the ownership comes from the root).
pub(crate) const ACCOUNT_FROM: &str =
    "connected_accounts ca JOIN data_integrations di ON di.id = ca.data_integration_id";

pub(crate) fn connected_account(row: &AnyRow) -> StoreResult<ConnectedAccount> {
    let ownership = known(row, "ca_ownership", Ownership::parse)?;
    let last_error = match (
        get::<Option<String>>(row, "ca_last_refresh_error")?,
        get::<Option<i64>>(row, "ca_last_refresh_error_at")?,
    ) {
        (Some(code), Some(at)) => Some(RefreshError {
            code,
            at,
            failures: get(row, "ca_refresh_failures")?,
            retry_at: get(row, "ca_refresh_retry_at")?,
        }),
        _ => None,
    };
    Ok(ConnectedAccount {
        id: parsed(row, "ca_id", ConnectedAccountId::parse)?,
        environment_id: parsed(row, "ca_environment_id", EnvironmentId::parse)?,
        data_integration_id: parsed(row, "ca_data_integration_id", DataIntegrationId::parse)?,
        owner: Owner {
            ownership,
            user_id: get(row, "ca_user_id")?,
            organization_id: get(row, "ca_organization_id")?,
        },
        role: known(row, "ca_connection_role", ConnectionRole::parse)?,
        account_identifier: get(row, "ca_account_identifier")?,
        account_display_name: get(row, "ca_account_display_name")?,
        auth_method: known(row, "ca_auth_method", AuthMethod::parse)?,
        state: known(row, "ca_state", AccountState::parse)?,
        state_reason: get(row, "ca_state_reason")?,
        established_by_user_id: get(row, "ca_established_by_user_id")?,
        scopes: json("scopes", &get::<String>(row, "ca_scopes")?)?,
        config: json("config", &get::<String>(row, "ca_config")?)?,
        metadata: json("metadata", &get::<String>(row, "ca_metadata")?)?,
        tokens: TokenSet {
            access_token: get::<Option<Vec<u8>>>(row, "ca_access_token")?.map(Sealed),
            expires_at: get(row, "ca_expires_at")?,
            refresh_token: get::<Option<Vec<u8>>>(row, "ca_refresh_token")?.map(Sealed),
        },
        stored: get::<Option<Vec<u8>>>(row, "ca_secret")?
            .map(|secret| -> StoreResult<StoredSecret> {
                Ok(StoredSecret {
                    client_id: get(row, "ca_client_id")?,
                    secret: Sealed(secret),
                    last_4: get::<Option<String>>(row, "ca_secret_last_4")?.unwrap_or_default(),
                })
            })
            .transpose()?,
        refresh_generation: get(row, "ca_refresh_generation")?,
        last_refreshed_at: get(row, "ca_last_refreshed_at")?,
        last_refresh_error: last_error,
        created_at: get(row, "ca_created_at")?,
        updated_at: get(row, "ca_updated_at")?,
    })
}

pub(crate) fn connect_session(row: &AnyRow) -> StoreResult<ConnectSession> {
    let user_id: String = get(row, "user_id")?;
    let organization_id: Option<String> = get(row, "organization_id")?;
    Ok(ConnectSession {
        id: get(row, "id")?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        owner: Owner::user(&user_id, organization_id.as_deref()),
        providers: json("providers", &get::<String>(row, "providers")?)?,
        return_to: get(row, "return_to")?,
        opener_origin: get(row, "opener_origin")?,
        code_hash: get(row, "code_hash")?,
        cookie_hash: get(row, "cookie_hash")?,
        csrf_token: get(row, "csrf_token")?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) fn authorization(row: &AnyRow) -> StoreResult<Authorization> {
    let ownership = known(row, "connection_owner", Ownership::parse)?;
    let user_id: String = get(row, "user_id")?;
    let organization_id: Option<String> = get(row, "organization_id")?;
    let owner = match ownership {
        Ownership::User => Owner::user(&user_id, organization_id.as_deref()),
        Ownership::Organization => Owner::organization(organization_id.as_deref().unwrap_or_default()),
    };
    let intent = match (
        get::<Option<String>>(row, "connection_intent")?.as_deref(),
        get::<Option<String>>(row, "target_account_id")?,
    ) {
        (Some("add"), _) => ConnectionIntent::Add,
        (Some("reauthorize"), Some(id)) => {
            ConnectionIntent::Reauthorize(parse("target account id", ConnectedAccountId::parse(&id))?)
        }
        _ => ConnectionIntent::Compatibility,
    };
    let display_given = get::<i64>(row, "display_name_given")? != 0;
    Ok(Authorization {
        id: get(row, "id")?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        data_integration_id: parsed(row, "data_integration_id", DataIntegrationId::parse)?,
        owner,
        user_id,
        intent,
        return_to: get(row, "return_to")?,
        state: get(row, "state")?,
        provider_state: get(row, "provider_state")?,
        pkce_verifier: get::<Option<Vec<u8>>>(row, "pkce_verifier")?.map(Sealed),
        code_challenge: get(row, "code_challenge")?,
        config: json("config", &get::<String>(row, "config")?)?,
        account_display_name: if display_given {
            Some(get(row, "account_display_name")?)
        } else {
            None
        },
        csrf_token: get(row, "csrf_token")?,
        handoff: get::<i64>(row, "handoff")? != 0,
        browser_hash: get(row, "browser_hash")?,
        status: known(row, "status", AuthorizationStatus::parse)?,
        connect_code_hash: get(row, "connect_code_hash")?,
        connect_code_expires_at: get(row, "connect_code_expires_at")?,
        held_tokens: get::<Option<Vec<u8>>>(row, "held_tokens")?.map(Sealed),
        connected_account_id: get::<Option<String>>(row, "connected_account_id")?
            .map(|id| parse("connected account id", ConnectedAccountId::parse(&id)))
            .transpose()?,
        created_at: get(row, "created_at")?,
        expires_at: get(row, "expires_at")?,
    })
}

pub(crate) fn webhook_endpoint(row: &AnyRow) -> StoreResult<WebhookEndpoint> {
    let events: Vec<String> = json("webhook events", &get::<String>(row, "events")?)?;
    Ok(WebhookEndpoint {
        id: parsed(row, "id", WebhookEndpointId::parse)?,
        environment_id: parsed(row, "environment_id", EnvironmentId::parse)?,
        endpoint_url: get(row, "endpoint_url")?,
        secret: Sealed(get(row, "secret")?),
        status: known(row, "status", EndpointStatus::parse)?,
        events: events
            .iter()
            .map(|e| parse("webhook event type", EventType::parse(e).ok_or("unknown")))
            .collect::<StoreResult<_>>()?,
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

pub(crate) fn delivery(row: &AnyRow) -> StoreResult<Delivery> {
    Ok(Delivery {
        endpoint_id: parsed(row, "endpoint_id", WebhookEndpointId::parse)?,
        event_id: parsed(row, "event_id", EventId::parse)?,
        event: get(row, "event")?,
        state: known(row, "state", DeliveryState::parse)?,
        attempts: get(row, "attempts")?,
        pending_since: get(row, "pending_since")?,
        finished_at: get(row, "finished_at")?,
        last_status: get(row, "last_status")?,
        last_error: get(row, "last_error")?,
    })
}

pub(crate) fn due_delivery(row: &AnyRow) -> StoreResult<DueDelivery> {
    Ok(DueDelivery {
        event_id: parsed(row, "event_id", EventId::parse)?,
        body: get(row, "body")?,
        attempts: get(row, "attempts")?,
        pending_since: get(row, "pending_since")?,
        event_created_at: get(row, "created_at")?,
    })
}

pub(crate) fn delivery_attempt(row: &AnyRow) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        attempt: get(row, "attempt")?,
        started_at: get(row, "started_at")?,
        status: get(row, "status")?,
        latency_ms: get(row, "latency_ms")?,
        error: get(row, "error")?,
    })
}
