//! The store contract: the same assertions on SQLite (always) and PostgreSQL (when the test
//! command provides a server through `PIPES_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use pipes_core::domain::{
    AccountState, AllowList, ApiKey, AttemptOutcome, AuthMethod, AuthenticateVia, Authorization, AuthorizationStatus,
    ConnectSession, ConnectedAccount, ConnectionIntent, ConnectionRole, CredentialsType, CustomProvider,
    CustomProviderDefinition, DataIntegration, DeliveryAttempt, DeliveryState, EndpointStatus, Environment,
    EnvironmentName, EnvironmentSettings, IntegrationCredentials, IntegrationState, Membership, MembershipMode,
    OrganizationApp, OrganizationSettings, Owner, Ownership, RefreshError, StoredSecret, TokenBodyContentType,
    TokenSet, WebhookEndpoint,
};
use pipes_core::events::{account_events, AccountChange, Actor, EventType};
use pipes_core::ids::{
    ApiKeyId, ClientId, ConnectedAccountId, CustomProviderId, DataIntegrationId, DikId, EnvironmentId, EventId,
    WebhookEndpointId,
};
use pipes_core::pagination::{Order, PageRequest};
use pipes_core::services::{rotate_vault, RotationProgress};
use pipes_core::slug::Slug;
use pipes_core::store::{
    AccountStore, AuthorizationStore, EnvironmentStore, EventFilter, EventStore, IdempotencyBegin, IdempotencyClaim,
    IdempotencyStore, IntegrationStore, KeepAlive, MaintenanceStore, OrganizationStore, RefreshStore, StoreError,
    WebhookStore,
};
use pipes_core::vault::{Sealed, SealedColumn, Vault};
use pipes_testkit::TestDatabase;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = pipes_testkit::TestDatabase::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = pipes_testkit::TestDatabase::postgres().await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

mod accounts;
mod authorizations;
mod environments;
mod events;
mod idempotency;
mod integrations;
mod maintenance;
mod organizations;
mod refresh;
mod webhooks;

async fn open(db: &TestDatabase) -> pipes_store::SqlStore {
    let store = pipes_store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// A migrated store with one environment.
async fn open_with_env(db: &TestDatabase, name: &str) -> (pipes_store::SqlStore, Environment) {
    let s = open(db).await;
    let e = env(name);
    s.insert_environment(&e).await.unwrap();
    (s, e)
}

/// A migrated store with one environment and its user-owned root of `slug`.
async fn open_with_root(
    db: &TestDatabase,
    name: &str,
    slug: &str,
) -> (pipes_store::SqlStore, Environment, DataIntegration) {
    let (s, e) = open_with_env(db, name).await;
    let r = root(&e, slug, Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    (s, e, r)
}

fn env(name: &str) -> Environment {
    Environment {
        id: EnvironmentId::new(),
        name: EnvironmentName::parse(name).unwrap(),
        production: false,
        client_id: ClientId::new(),
        created_at: 1_700_000_000_000,
        settings: Default::default(),
    }
}

fn root(env: &Environment, slug: &str, ownership: Ownership) -> DataIntegration {
    DataIntegration {
        id: DataIntegrationId::new(),
        environment_id: env.id,
        slug: Slug::parse(slug).unwrap(),
        ownership,
        description: Some("desc".into()),
        enabled: true,
        state: IntegrationState::Valid,
        scopes: Some(vec!["repo".into(), "read:org".into()]),
        auth_method: AuthMethod::Oauth,
        credentials: Some(IntegrationCredentials {
            kind: CredentialsType::Custom,
            client_id: Some("client-123".into()),
            client_secret: Some(Sealed(vec![1, 2, 3, 4])),
            client_secret_last4: Some("wxyz".into()),
        }),
        config: BTreeMap::from([("host".to_owned(), "gitlab.example.com".to_owned())]),
        dik: DikId::new(),
        custom_provider: None,
        created_at: 1_700_000_000_000,
        updated_at: 1_700_000_000_000,
    }
}

fn custom(env: &Environment, slug: &str) -> CustomProvider {
    CustomProvider {
        id: CustomProviderId::new(),
        environment_id: env.id,
        slug: Slug::parse(slug).unwrap(),
        auth_method: AuthMethod::Oauth,
        definition: CustomProviderDefinition {
            name: "Acme".into(),
            authorization_url: Some("https://acme.test/authorize".into()),
            token_url: Some("https://acme.test/token".into()),
            refresh_token_url: None,
            pkce_enabled: true,
            request_scope_separator: " ".into(),
            scopes_required: false,
            client_secret_required: true,
            additional_authorization_parameters: BTreeMap::new(),
            token_body_content_type: TokenBodyContentType::Form,
            authenticate_via: AuthenticateVia::RequestBody,
        },
        created_at: 1,
        updated_at: 1,
    }
}

fn account(root: &DataIntegration, owner: Owner, role: ConnectionRole) -> ConnectedAccount {
    let mut a = ConnectedAccount::new(root.environment_id, root.id, owner, role, AuthMethod::Oauth, 1);
    a.account_display_name = Some("Work".into());
    a.established_by_user_id = Some("user_1".into());
    a.scopes = vec!["repo".into()];
    a.metadata = BTreeMap::from([("instance_url".to_owned(), serde_json::json!("https://x"))]);
    a.tokens = TokenSet {
        access_token: Some(Sealed(vec![7; 8])),
        expires_at: Some(5_000),
        refresh_token: Some(Sealed(vec![8; 8])),
    };
    a
}

fn endpoint(env: &Environment, url: &str, events: &[EventType], status: EndpointStatus) -> WebhookEndpoint {
    WebhookEndpoint {
        id: WebhookEndpointId::new(),
        environment_id: env.id,
        endpoint_url: url.into(),
        secret: Sealed(vec![9; 16]),
        status,
        events: events.to_vec(),
        created_at: 1,
        updated_at: 1,
    }
}

/// A pending authorization of `root` that would reconnect `target`.
fn authorization(root: &DataIntegration, target: ConnectedAccountId) -> Authorization {
    Authorization {
        id: "auth_1".into(),
        environment_id: root.environment_id,
        data_integration_id: root.id,
        owner: Owner::user("user_1", Some("org_1")),
        user_id: "user_1".into(),
        intent: ConnectionIntent::Reauthorize(target),
        return_to: Some("https://app.example.com/back".into()),
        state: "app-state".into(),
        provider_state: "provider-state".into(),
        pkce_verifier: Some(Sealed(vec![1, 2, 3])),
        code_challenge: Some("challenge".into()),
        config: BTreeMap::from([("subdomain".to_owned(), "acme".to_owned())]),
        account_display_name: Some(None),
        csrf_token: "csrf".into(),
        handoff: true,
        browser_hash: None,
        status: AuthorizationStatus::Pending,
        connect_code_hash: None,
        connect_code_expires_at: None,
        held_tokens: None,
        connected_account_id: None,
        created_at: 1_000,
        expires_at: 2_000,
    }
}
