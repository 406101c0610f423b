//! The store contract: the same assertions on SQLite (always) and PostgreSQL (when the test
//! command provides a server through `PIPES_TEST_POSTGRES_URL`).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use pipes_core::domain::{
    AccountState, ApiKey, AttemptOutcome, AuthMethod, AuthenticateVia, ConnectedAccount, ConnectionRole,
    CredentialsType, CustomProvider, CustomProviderDefinition, DataIntegration, DeliveryAttempt, DeliveryState,
    EndpointStatus, Environment, EnvironmentName, EnvironmentSettings, IntegrationCredentials, IntegrationState,
    Membership, MembershipMode, OrganizationApp, OrganizationSettings, Owner, Ownership, RefreshError, StoredSecret,
    TokenBodyContentType, TokenSet, WebhookEndpoint,
};
use pipes_core::events::{account_events, AccountChange, Actor, EventType};
use pipes_core::ids::{
    ApiKeyId, ClientId, ConnectedAccountId, CustomProviderId, DataIntegrationId, DikId, EnvironmentId, EventId,
    WebhookEndpointId,
};
use pipes_core::pagination::{Order, PageRequest};
use pipes_core::slug::Slug;
use pipes_core::store::{EventFilter, IdempotencyBegin, KeepAlive, SealedColumn, Store, StoreError};
use pipes_core::vault::Sealed;
use pipes_store::testing::TestDatabase;

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = pipes_store::testing::TestDatabase::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if let Some(db) = pipes_store::testing::TestDatabase::postgres().await {
                        super::$name(&db).await;
                    }
                }
            )*
        }
    };
}

contract!(
    environments_are_unique_by_name,
    api_keys_authenticate_until_revoked,
    redirect_uris_are_a_set_per_environment,
    integrations_round_trip_and_conflict_per_slug_and_ownership,
    integrations_page_by_id_in_both_directions,
    updates_change_the_root_and_its_custom_provider,
    deleting_the_last_root_deletes_its_custom_provider,
    sealed_values_are_replaced_only_when_unchanged,
    migrations_are_idempotent,
    idempotency_keys_replay_conflict_and_expire,
    connected_accounts_have_one_compatibility_slot_per_owner,
    refresh_leases_and_generations_serialise_refreshes,
    events_fan_out_to_enabled_subscribers_of_their_environment,
    endpoint_leases_order_attempts_and_give_up,
    refresh_candidates_follow_expiry_backoff_and_keepalive,
    organizations_members_settings_and_stored_secrets,
);

async fn open(db: &TestDatabase) -> pipes_store::SqlStore {
    let store = pipes_store::connect(&db.url).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
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

async fn environments_are_unique_by_name(db: &TestDatabase) {
    let s = open(db).await;
    let a = env("sandbox");
    s.insert_environment(&a).await.unwrap();
    assert!(matches!(
        s.insert_environment(&env("sandbox")).await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_environment(&env("production")).await.unwrap();
    assert_eq!(s.environment_by_name(&a.name).await.unwrap(), Some(a.clone()));
    assert_eq!(s.list_environments().await.unwrap().len(), 2);
    assert_eq!(
        s.environment_by_name(&EnvironmentName::parse("nope").unwrap())
            .await
            .unwrap(),
        None
    );
}

async fn api_keys_authenticate_until_revoked(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("sandbox");
    s.insert_environment(&e).await.unwrap();
    let key = ApiKey {
        id: ApiKeyId::new(),
        environment_id: e.id,
        prefix: "sk_test_abcdef".into(),
        hash: "h1".into(),
        created_at: 5,
        revoked_at: None,
    };
    s.insert_api_key(&key).await.unwrap();
    assert_eq!(s.environment_for_key_hash("h1").await.unwrap(), Some(e.clone()));
    assert_eq!(s.environment_for_key_hash("h2").await.unwrap(), None);
    assert!(s.revoke_api_key(key.id, 9).await.unwrap());
    assert!(
        !s.revoke_api_key(key.id, 10).await.unwrap(),
        "revoking twice reports nothing to do"
    );
    assert_eq!(s.environment_for_key_hash("h1").await.unwrap(), None);
    let listed = s.list_api_keys(e.id).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(9));
}

async fn redirect_uris_are_a_set_per_environment(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    assert!(s.add_redirect_uri(a.id, "https://app.test/cb", 1).await.unwrap());
    assert!(!s.add_redirect_uri(a.id, "https://app.test/cb", 2).await.unwrap());
    assert!(s.add_redirect_uri(a.id, "http://localhost/cb", 3).await.unwrap());
    assert_eq!(
        s.list_redirect_uris(a.id).await.unwrap(),
        vec!["https://app.test/cb", "http://localhost/cb"]
    );
    assert!(s.list_redirect_uris(b.id).await.unwrap().is_empty());
    assert!(s.remove_redirect_uri(a.id, "https://app.test/cb").await.unwrap());
    assert!(!s.remove_redirect_uri(a.id, "https://app.test/cb").await.unwrap());
}

async fn integrations_round_trip_and_conflict_per_slug_and_ownership(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    let r = root(&a, "gitlab", Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    let got = s.data_integration(a.id, &r.slug, Ownership::User).await.unwrap();
    assert_eq!(got, Some(r.clone()));
    assert!(matches!(
        s.insert_data_integration(&root(&a, "gitlab", Ownership::User), None)
            .await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_data_integration(&root(&a, "gitlab", Ownership::Organization), None)
        .await
        .unwrap();
    s.insert_data_integration(&root(&b, "gitlab", Ownership::User), None)
        .await
        .unwrap();
    assert_eq!(
        s.data_integration(b.id, &r.slug, Ownership::User)
            .await
            .unwrap()
            .unwrap()
            .environment_id,
        b.id
    );
    assert!(s.data_integration_exists(a.id, r.id).await.unwrap());
    assert!(
        !s.data_integration_exists(b.id, r.id).await.unwrap(),
        "another environment's root is invisible"
    );

    let cp = custom(&a, "acme");
    let mut c = root(&a, "acme", Ownership::User);
    c.custom_provider = Some(cp.clone());
    c.config = BTreeMap::new();
    c.scopes = None;
    c.description = None;
    s.insert_data_integration(&c, Some(&cp)).await.unwrap();
    assert_eq!(s.custom_provider(a.id, &cp.slug).await.unwrap(), Some(cp.clone()));
    assert_eq!(
        s.data_integration(a.id, &c.slug, Ownership::User).await.unwrap(),
        Some(c)
    );
}

async fn integrations_page_by_id_in_both_directions(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let mut ids = vec![];
    for i in 0..7 {
        let ownership = if i % 2 == 0 {
            Ownership::User
        } else {
            Ownership::Organization
        };
        let r = root(&e, &format!("p{i}"), ownership);
        ids.push(r.id.to_string());
        s.insert_data_integration(&r, None).await.unwrap();
    }
    let req = PageRequest::parse(Some("3"), None, None, None, Order::Desc).unwrap();
    let page = req.page(s.scan_data_integrations(e.id, None, &req.scan()).await.unwrap(), |r| {
        r.id.to_string()
    });
    let got: Vec<String> = page.data.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(got, vec![ids[6].clone(), ids[5].clone(), ids[4].clone()]);
    assert_eq!(page.after.as_deref(), Some(ids[4].as_str()));
    let req = PageRequest::parse(Some("3"), Some(&ids[4]), None, Some("asc"), Order::Desc).unwrap();
    let page = req.page(s.scan_data_integrations(e.id, None, &req.scan()).await.unwrap(), |r| {
        r.id.to_string()
    });
    let got: Vec<String> = page.data.iter().map(|r| r.id.to_string()).collect();
    assert_eq!(got, vec![ids[1].clone(), ids[2].clone(), ids[3].clone()]);
    let req = PageRequest::parse(Some("10"), None, None, Some("asc"), Order::Desc).unwrap();
    let users = s
        .scan_data_integrations(e.id, Some(Ownership::User), &req.scan())
        .await
        .unwrap();
    assert_eq!(users.len(), 4);
    assert!(users.iter().all(|r| r.ownership == Ownership::User));
}

async fn updates_change_the_root_and_its_custom_provider(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let cp = custom(&e, "acme");
    let mut r = root(&e, "acme", Ownership::User);
    r.custom_provider = Some(cp.clone());
    s.insert_data_integration(&r, Some(&cp)).await.unwrap();
    r.enabled = false;
    r.description = None;
    r.scopes = None;
    r.credentials = Some(IntegrationCredentials {
        kind: CredentialsType::Organization,
        client_id: None,
        client_secret: None,
        client_secret_last4: None,
    });
    r.updated_at = 99;
    if let Some(cp) = r.custom_provider.as_mut() {
        cp.definition.name = "Acme 2".into();
        cp.definition.refresh_token_url = Some("https://acme.test/refresh".into());
        cp.updated_at = 99;
    }
    s.update_data_integration(&r).await.unwrap();
    assert_eq!(
        s.data_integration(e.id, &r.slug, Ownership::User).await.unwrap(),
        Some(r.clone())
    );
    let mut other = root(&e, "acme", Ownership::Organization);
    other.custom_provider = r.custom_provider.clone();
    s.insert_data_integration(&other, None).await.unwrap();
    let got = s
        .data_integration(e.id, &other.slug, Ownership::Organization)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        got.custom_provider.unwrap().definition.name,
        "Acme 2",
        "both roots share one definition"
    );
}

async fn deleting_the_last_root_deletes_its_custom_provider(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let cp = custom(&e, "acme");
    let mut user = root(&e, "acme", Ownership::User);
    user.custom_provider = Some(cp.clone());
    let mut org = root(&e, "acme", Ownership::Organization);
    org.custom_provider = Some(cp.clone());
    s.insert_data_integration(&user, Some(&cp)).await.unwrap();
    s.insert_data_integration(&org, None).await.unwrap();
    assert!(s.delete_data_integration(e.id, user.id, &[], &[]).await.unwrap());
    assert!(!s.delete_data_integration(e.id, user.id, &[], &[]).await.unwrap());
    assert!(
        s.custom_provider(e.id, &cp.slug).await.unwrap().is_some(),
        "still used by the organization root"
    );
    assert!(s.delete_data_integration(e.id, org.id, &[], &[]).await.unwrap());
    assert!(s.custom_provider(e.id, &cp.slug).await.unwrap().is_none());
}

async fn sealed_values_are_replaced_only_when_unchanged(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let mut ids = vec![];
    for i in 0..3 {
        let r = root(&e, &format!("p{i}"), Ownership::User);
        ids.push(r.id.to_string());
        s.insert_data_integration(&r, None).await.unwrap();
    }
    let col = SealedColumn::IntegrationClientSecret;
    assert_eq!(s.count_sealed(col).await.unwrap(), 3);
    let first = s.sealed_values(col, None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    let rest = s.sealed_values(col, Some(&first[1].id), 2).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert!(s.replace_sealed(col, &ids[0], &[1, 2, 3, 4], &[9, 9]).await.unwrap());
    assert!(
        !s.replace_sealed(col, &ids[0], &[1, 2, 3, 4], &[8, 8]).await.unwrap(),
        "stale value loses"
    );
    let now = s.sealed_values(col, None, 1).await.unwrap();
    assert_eq!(now[0].sealed, vec![9, 9]);
}

async fn migrations_are_idempotent(db: &TestDatabase) {
    let s = pipes_store::connect(&db.url).await.unwrap();
    let first = s.migrate().await.unwrap();
    assert!(!first.is_empty());
    assert!(s.migrate().await.unwrap().is_empty());
    s.ping().await.unwrap();
}

async fn idempotency_keys_replay_conflict_and_expire(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    let begin = |env: EnvironmentId, key: &'static str, fp: &'static str, now: i64| {
        let s = s.clone();
        async move {
            s.idempotency_begin(env, key, fp, now, now - 1000, now - 100)
                .await
                .unwrap()
        }
    };
    assert_eq!(begin(a.id, "k1", "f1", 10_000).await, IdempotencyBegin::Started);
    assert_eq!(begin(a.id, "k1", "f1", 10_001).await, IdempotencyBegin::InFlight);
    assert_eq!(begin(a.id, "k1", "f2", 10_001).await, IdempotencyBegin::Mismatch);
    assert_eq!(
        begin(b.id, "k1", "f2", 10_001).await,
        IdempotencyBegin::Started,
        "keys are per environment"
    );
    s.idempotency_complete(a.id, "k1", 201, b"{\"id\":1}").await.unwrap();
    assert_eq!(
        begin(a.id, "k1", "f1", 10_002).await,
        IdempotencyBegin::Completed {
            status: 201,
            body: b"{\"id\":1}".to_vec()
        }
    );
    assert_eq!(
        begin(a.id, "k1", "f1", 20_000).await,
        IdempotencyBegin::Started,
        "expired records are forgotten"
    );
    s.idempotency_release(a.id, "k1").await.unwrap();
    assert_eq!(
        begin(a.id, "k1", "f9", 20_001).await,
        IdempotencyBegin::Started,
        "a released key is free"
    );
    assert_eq!(begin(a.id, "k2", "f1", 30_000).await, IdempotencyBegin::Started);
    assert_eq!(
        begin(a.id, "k2", "f1", 30_500).await,
        IdempotencyBegin::Started,
        "a stale in-flight claim is taken over"
    );
}

fn account(root: &DataIntegration, owner: Owner, role: ConnectionRole) -> ConnectedAccount {
    ConnectedAccount {
        id: ConnectedAccountId::new(),
        environment_id: root.environment_id,
        data_integration_id: root.id,
        owner,
        role,
        account_identifier: None,
        account_display_name: Some("Work".into()),
        auth_method: AuthMethod::Oauth,
        state: AccountState::Connected,
        state_reason: None,
        established_by_user_id: Some("user_1".into()),
        scopes: vec!["repo".into()],
        config: BTreeMap::new(),
        metadata: BTreeMap::from([("instance_url".to_owned(), serde_json::json!("https://x"))]),
        tokens: TokenSet {
            access_token: Some(Sealed(vec![7; 8])),
            expires_at: Some(5_000),
            refresh_token: Some(Sealed(vec![8; 8])),
        },
        stored: None,
        refresh_generation: 0,
        last_refreshed_at: None,
        last_refresh_error: None,
        created_at: 1,
        updated_at: 1,
    }
}

async fn connected_accounts_have_one_compatibility_slot_per_owner(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let r = root(&e, "github", Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    let alice = Owner::user("user_1", None);
    let alice_acme = Owner::user("user_1", Some("org_1"));
    let a = account(&r, alice.clone(), ConnectionRole::Compatibility);
    s.insert_connected_account(&a, &[]).await.unwrap();
    let dup = account(&r, alice.clone(), ConnectionRole::Compatibility);
    assert!(matches!(
        s.insert_connected_account(&dup, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_connected_account(&account(&r, alice.clone(), ConnectionRole::Standard), &[])
        .await
        .unwrap();
    s.insert_connected_account(&account(&r, alice_acme.clone(), ConnectionRole::Compatibility), &[])
        .await
        .unwrap();

    let (got_root, got) = s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::User, &alice.key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_root.id, r.id);
    assert_eq!(got, Some(a.clone()));
    let (_, none) = s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::User, &Owner::user("user_2", None).key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    assert!(s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::Organization, &alice.key())
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.accounts_of_owner(r.id, Some(&alice.key())).await.unwrap().len(), 2);
    assert_eq!(
        s.accounts_of_owner(r.id, Some(&alice_acme.key())).await.unwrap().len(),
        1
    );
    assert_eq!(
        s.accounts_of_owner_in_env(e.id, Ownership::User, &alice.key())
            .await
            .unwrap()
            .len(),
        2
    );

    let mut changed = a.clone();
    changed.state = AccountState::NeedsReauthorization;
    changed.account_display_name = None;
    changed.tokens = TokenSet::default();
    changed.updated_at = 9;
    s.update_connected_account(&changed, &[]).await.unwrap();
    assert_eq!(s.connected_account(e.id, a.id).await.unwrap(), Some(changed));
    let other = env("b");
    s.insert_environment(&other).await.unwrap();
    assert_eq!(
        s.connected_account(other.id, a.id).await.unwrap(),
        None,
        "another tenant cannot read it"
    );
    assert!(!s.delete_connected_account(other.id, a.id, &[]).await.unwrap());
    assert!(s.delete_connected_account(e.id, a.id, &[]).await.unwrap());
    assert_eq!(s.connected_account(e.id, a.id).await.unwrap(), None);
    let remaining: Vec<_> = s
        .accounts_of_owner(r.id, None)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert!(!remaining.is_empty());
    assert!(
        matches!(
            s.delete_data_integration(e.id, r.id, &remaining[1..], &[]).await,
            Err(StoreError::Conflict(_))
        ),
        "a delete that does not know every connection is refused"
    );
    assert!(s.delete_data_integration(e.id, r.id, &remaining, &[]).await.unwrap());
    assert!(
        s.accounts_of_owner(r.id, Some(&alice.key())).await.unwrap().is_empty(),
        "deleting the root deletes its accounts"
    );
}

async fn refresh_leases_and_generations_serialise_refreshes(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let r = root(&e, "github", Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    let a = account(&r, Owner::user("user_1", None), ConnectionRole::Compatibility);
    s.insert_connected_account(&a, &[]).await.unwrap();

    assert!(s.take_refresh_lease(a.id, "p1", 100, 200).await.unwrap().is_some());
    assert!(
        s.take_refresh_lease(a.id, "p2", 150, 250).await.unwrap().is_none(),
        "held until 200"
    );
    assert!(
        s.take_refresh_lease(a.id, "p1", 150, 250).await.unwrap().is_some(),
        "the holder may extend"
    );
    let fresh = TokenSet {
        access_token: Some(Sealed(vec![1])),
        expires_at: Some(9_000),
        refresh_token: Some(Sealed(vec![2])),
    };
    assert!(
        !s.store_refreshed_tokens(a.id, "p2", 0, &fresh, &[], "{}", 160)
            .await
            .unwrap(),
        "not the holder"
    );
    assert!(
        !s.store_refreshed_tokens(a.id, "p1", 5, &fresh, &[], "{}", 160)
            .await
            .unwrap(),
        "stale generation"
    );
    assert!(s
        .store_refreshed_tokens(a.id, "p1", 0, &fresh, &["repo".into()], "{}", 160)
        .await
        .unwrap());
    let now = s.connected_account(e.id, a.id).await.unwrap().unwrap();
    assert_eq!(
        (now.refresh_generation, now.tokens.clone(), now.last_refreshed_at),
        (1, fresh.clone(), Some(160))
    );
    assert!(
        s.take_refresh_lease(a.id, "p2", 170, 300).await.unwrap().is_some(),
        "storing released the lease"
    );
    let err = RefreshError {
        code: "invalid_grant".into(),
        at: 180,
        failures: 1,
        retry_at: None,
    };
    assert!(
        !s.record_refresh_failure(a.id, "p2", 0, &err, true, &[]).await.unwrap(),
        "generation moved on"
    );
    assert!(s.record_refresh_failure(a.id, "p2", 1, &err, true, &[]).await.unwrap());
    let now = s.connected_account(e.id, a.id).await.unwrap().unwrap();
    assert_eq!(now.state, AccountState::NeedsReauthorization);
    assert_eq!(now.last_refresh_error, Some(err));
    assert!(
        s.take_refresh_lease(a.id, "p3", 190, 300).await.unwrap().is_some(),
        "failures release the lease"
    );
    s.release_refresh_lease(a.id, "p1").await.unwrap();
    assert!(
        s.take_refresh_lease(a.id, "p4", 195, 300).await.unwrap().is_none(),
        "only the holder releases"
    );
    s.release_refresh_lease(a.id, "p3").await.unwrap();
    assert!(s.take_refresh_lease(a.id, "p4", 195, 300).await.unwrap().is_some());
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

async fn events_fan_out_to_enabled_subscribers_of_their_environment(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    let connected = EventType::ConnectedAccountConnected;
    let subscribed = endpoint(&a, "https://a.test/1", &[connected], EndpointStatus::Enabled);
    let other_type = endpoint(
        &a,
        "https://a.test/2",
        &[EventType::ConnectedAccountDisconnected],
        EndpointStatus::Enabled,
    );
    let disabled = endpoint(&a, "https://a.test/3", &[connected], EndpointStatus::Disabled);
    let other_tenant = endpoint(&b, "https://a.test/1", &[connected], EndpointStatus::Enabled);
    for e in [&subscribed, &other_type, &disabled, &other_tenant] {
        s.insert_webhook_endpoint(e).await.unwrap();
    }
    assert!(
        matches!(
            s.insert_webhook_endpoint(&endpoint(&a, "https://a.test/1", &[connected], EndpointStatus::Enabled))
                .await,
            Err(StoreError::Conflict(_))
        ),
        "one URL per environment"
    );
    let r = root(&a, "github", Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    let acct = account(&r, Owner::user("user_1", Some("org_1")), ConnectionRole::Compatibility);
    let events = account_events(AccountChange::Connected, &acct, "github", &Actor::Unknown);
    assert_eq!(events.len(), 2);
    s.insert_connected_account(&acct, &events).await.unwrap();

    let due = |id| s.due_deliveries(id, 10);
    let got = due(subscribed.id).await.unwrap();
    assert_eq!(got.len(), 1, "only the subscribed type");
    assert_eq!(got[0].event_id, events[0].id);
    assert_eq!(got[0].body, events[0].body, "the exact bytes");
    for e in [&other_type, &disabled, &other_tenant] {
        assert!(due(e.id).await.unwrap().is_empty(), "{}", e.endpoint_url);
    }
    let all = |filter: EventFilter| {
        let s = &s;
        async move {
            s.scan_events(
                a.id,
                &filter,
                &PageRequest::parse(None, None, None, None, Order::Asc).unwrap().scan(),
            )
            .await
            .unwrap()
        }
    };
    assert_eq!(all(EventFilter::default()).await.len(), 2);
    let only = EventFilter {
        types: vec![connected],
        ..Default::default()
    };
    assert_eq!(all(only).await.len(), 1);
    let org = EventFilter {
        organization_id: Some("org_1".into()),
        ..Default::default()
    };
    assert_eq!(all(org).await.len(), 2);
    let other_org = EventFilter {
        organization_id: Some("org_2".into()),
        ..Default::default()
    };
    assert!(all(other_org).await.is_empty());
    assert!(s
        .scan_events(
            b.id,
            &EventFilter::default(),
            &PageRequest::parse(None, None, None, None, Order::Asc).unwrap().scan()
        )
        .await
        .unwrap()
        .is_empty());

    // A failed delete appends nothing; retention removes events with their deliveries.
    assert!(!s.delete_connected_account(b.id, acct.id, &events).await.unwrap());
    assert_eq!(all(EventFilter::default()).await.len(), 2);
    assert_eq!(s.purge_events(i64::MAX, 1000).await.unwrap(), 2);
    assert!(all(EventFilter::default()).await.is_empty());
    assert!(due(subscribed.id).await.unwrap().is_empty());
}

async fn endpoint_leases_order_attempts_and_give_up(db: &TestDatabase) {
    let s = open(db).await;
    let a = env("a");
    s.insert_environment(&a).await.unwrap();
    let ep = endpoint(
        &a,
        "https://a.test/hook",
        &[EventType::ConnectedAccountConnected],
        EndpointStatus::Enabled,
    );
    s.insert_webhook_endpoint(&ep).await.unwrap();
    let r = root(&a, "github", Ownership::User);
    s.insert_data_integration(&r, None).await.unwrap();
    for user in ["u1", "u2", "u3"] {
        let acct = account(&r, Owner::user(user, None), ConnectionRole::Compatibility);
        let events = account_events(AccountChange::Connected, &acct, "github", &Actor::Unknown);
        s.insert_connected_account(&acct, &events).await.unwrap();
    }
    assert_eq!(s.endpoints_due(100, 10).await.unwrap(), vec![ep.id]);
    assert_eq!(s.take_endpoint_lease(ep.id, "w1", 100, 200).await.unwrap(), Some(false));
    assert_eq!(
        s.take_endpoint_lease(ep.id, "w2", 150, 250).await.unwrap(),
        None,
        "held"
    );
    assert!(
        s.endpoints_due(150, 10).await.unwrap().is_empty(),
        "leased endpoints are not due"
    );
    assert_eq!(
        s.take_endpoint_lease(ep.id, "w2", 201, 300).await.unwrap(),
        Some(true),
        "an expired, unreleased lease is taken over"
    );
    let due = s.due_deliveries(ep.id, 10).await.unwrap();
    assert_eq!(due.len(), 3);
    assert!(due.windows(2).all(|w| w[0].event_id < w[1].event_id), "event order");
    let attempt = |n, status: Option<i64>, error: Option<&str>| DeliveryAttempt {
        attempt: n,
        started_at: 210,
        status,
        latency_ms: 3,
        error: error.map(str::to_owned),
    };
    let ok = (due[0].event_id, attempt(1, Some(200), None), AttemptOutcome::Delivered);
    assert!(
        !s.record_delivery_attempts(ep.id, "w1", std::slice::from_ref(&ok), 400)
            .await
            .unwrap(),
        "w1 lost the lease"
    );
    let failed = AttemptOutcome::Retry {
        retry_at: 1_000,
        failure_streak: 1,
        give_up_before: 0,
    };
    let batch = [ok, (due[1].event_id, attempt(1, Some(500), Some("HTTP 500")), failed)];
    assert!(s.record_delivery_attempts(ep.id, "w2", &batch, 400).await.unwrap());
    s.release_endpoint_lease(ep.id, "w2").await.unwrap();
    assert!(
        s.endpoints_due(500, 10).await.unwrap().is_empty(),
        "backing off until 1000"
    );
    assert_eq!(s.endpoints_due(1_000, 10).await.unwrap(), vec![ep.id]);
    let left = s.due_deliveries(ep.id, 10).await.unwrap();
    assert_eq!(
        left.iter().map(|d| d.event_id).collect::<Vec<_>>(),
        [due[1].event_id, due[2].event_id]
    );
    assert_eq!(left[0].attempts, 1);
    let history = s.list_deliveries(ep.id, None, 10).await.unwrap();
    assert_eq!(history.len(), 3);
    assert_eq!(history[2].state, DeliveryState::Delivered);
    assert_eq!(history[1].last_error.as_deref(), Some("HTTP 500"));

    // Past the retry period, everything still pending is given up at the next failure.
    assert_eq!(
        s.take_endpoint_lease(ep.id, "w3", 1_000, 2_000).await.unwrap(),
        Some(false)
    );
    let give_up = AttemptOutcome::Retry {
        retry_at: 5_000,
        failure_streak: 2,
        give_up_before: i64::MAX,
    };
    let last = [(due[1].event_id, attempt(2, None, Some("could not connect")), give_up)];
    assert!(s.record_delivery_attempts(ep.id, "w3", &last, 2_000).await.unwrap());
    assert!(s
        .list_deliveries(ep.id, Some(DeliveryState::Pending), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        s.list_deliveries(ep.id, Some(DeliveryState::Failed), 10)
            .await
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.delivery_attempts(ep.id, due[1].event_id).await.unwrap().len(), 2);

    // By hand: pending again, and due at once.
    assert!(s.redeliver(ep.id, due[2].event_id, 3_000).await.unwrap());
    s.release_endpoint_lease(ep.id, "w3").await.unwrap();
    assert_eq!(s.endpoints_due(3_000, 10).await.unwrap(), vec![ep.id]);
    assert!(!s.redeliver(ep.id, EventId::new(), 3_000).await.unwrap());
    assert!(s.delete_webhook_endpoint(a.id, ep.id).await.unwrap());
    assert!(
        s.list_deliveries(ep.id, None, 10).await.unwrap().is_empty(),
        "deliveries go with it"
    );
}

async fn refresh_candidates_follow_expiry_backoff_and_keepalive(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    let custom = root(&e, "acme", Ownership::User);
    s.insert_data_integration(&custom, None).await.unwrap();
    let google = root(&e, "google", Ownership::User);
    s.insert_data_integration(&google, None).await.unwrap();
    let now = 1_000_000;
    let with = |r: &DataIntegration, user: &str, expires_at: Option<i64>, refreshed: Option<i64>| {
        let mut a = account(r, Owner::user(user, None), ConnectionRole::Compatibility);
        a.tokens.expires_at = expires_at;
        a.last_refreshed_at = refreshed;
        a.created_at = 0;
        a
    };
    let soon = with(&custom, "soon", Some(now + 60_000), None);
    let later = with(&custom, "later", Some(now + 3_600_000), Some(now - 100));
    // A 10-minute token refreshed 2 minutes ago: 8 minutes left, more than half its lifetime.
    let young = with(&custom, "young", Some(now + 480_000), Some(now - 120_000));
    let idle = with(&google, "idle", None, Some(now - 200 * 3_600_000));
    let busy = with(&google, "busy", None, Some(now - 3_600_000));
    for a in [&soon, &later, &young, &idle, &busy] {
        s.insert_connected_account(a, &[]).await.unwrap();
    }
    let keep = [KeepAlive {
        slug: "google".into(),
        idle_before: now - 168 * 3_600_000,
    }];
    let ids = |v: Vec<(DataIntegration, ConnectedAccount)>| v.into_iter().map(|(_, a)| a.id).collect::<Vec<_>>();
    let due = s.accounts_due_for_refresh(now, 600_000, &keep, 10).await.unwrap();
    assert_eq!(due[0].0.slug.as_str(), "acme", "the root comes along");
    assert_eq!(
        ids(due),
        vec![soon.id, idle.id],
        "soonest expiry first, then idle grants"
    );
    assert_eq!(s.count_due_for_refresh(now, 600_000, &keep).await.unwrap(), 2);
    assert_eq!(
        ids(s.accounts_due_for_refresh(now, 600_000, &[], 10).await.unwrap()),
        vec![soon.id]
    );

    // Leased or backing off: not due.
    assert_eq!(
        s.take_refresh_lease(soon.id, "w1", now, now + 60_000).await.unwrap(),
        Some(false)
    );
    let failed = RefreshError {
        code: "server_error".into(),
        at: now,
        failures: 2,
        retry_at: Some(now + 30_000),
    };
    assert!(s
        .record_refresh_failure(idle.id, "nobody", 0, &failed, false, &[])
        .await
        .is_ok());
    assert!(s
        .take_refresh_lease(idle.id, "w1", now, now + 1)
        .await
        .unwrap()
        .is_some());
    assert!(s
        .record_refresh_failure(idle.id, "w1", 0, &failed, false, &[])
        .await
        .unwrap());
    assert!(s
        .accounts_due_for_refresh(now, 600_000, &keep, 10)
        .await
        .unwrap()
        .is_empty());
    let stored = s.connected_account(e.id, idle.id).await.unwrap().unwrap();
    assert_eq!(
        stored.last_refresh_error,
        Some(failed),
        "failures and next try are kept"
    );
    assert_eq!(stored.state, AccountState::Connected);
    let after = now + 70_000;
    assert_eq!(
        ids(s.accounts_due_for_refresh(after, 600_000, &keep, 10).await.unwrap()),
        vec![soon.id, idle.id]
    );
    assert_eq!(
        s.take_refresh_lease(soon.id, "w2", after, after + 60_000)
            .await
            .unwrap(),
        Some(true),
        "w1 never released: a takeover"
    );
}

async fn organizations_members_settings_and_stored_secrets(db: &TestDatabase) {
    let s = open(db).await;
    let e = env("a");
    s.insert_environment(&e).await.unwrap();
    // A stored secret round-trips with its connection. (Trust mode: the undeclared user_1 may
    // establish it.)
    let r = root(&e, "keyed", Ownership::Organization);
    s.insert_data_integration(&r, None).await.unwrap();
    let mut shared = account(&r, Owner::organization("org_1"), ConnectionRole::Compatibility);
    shared.auth_method = AuthMethod::ApiKey;
    shared.stored = Some(StoredSecret {
        client_id: None,
        secret: Sealed(vec![9; 12]),
        last_4: "abcd".into(),
    });
    s.insert_connected_account(&shared, &[]).await.unwrap();
    assert_eq!(s.connected_account(e.id, shared.id).await.unwrap().unwrap(), shared);
    assert_eq!(s.count_sealed(SealedColumn::AccountSecret).await.unwrap(), 1);
    let settings = EnvironmentSettings {
        multiple_connections: true,
        connection_limit: 3,
        membership: MembershipMode::Registry,
    };
    assert!(s.update_environment_settings(e.id, &settings).await.unwrap());
    assert_eq!(s.environment(e.id).await.unwrap().unwrap().settings, settings);
    // Registry mode: an undeclared user establishes nothing; updates that keep the establisher
    // are not re-checked.
    let mut by_stranger = account(&r, Owner::organization("org_2"), ConnectionRole::Compatibility);
    by_stranger.established_by_user_id = Some("user_2".into());
    assert!(matches!(
        s.insert_connected_account(&by_stranger, &[]).await,
        Err(StoreError::NotMember)
    ));
    let mut relabelled = shared.clone();
    relabelled.account_display_name = Some("Shared".into());
    s.update_connected_account(&relabelled, &[]).await.unwrap();
    s.update_connected_account(&shared, &[]).await.unwrap();

    // Ending the establishing member's membership clears the connection with its event, atomically.
    assert!(!s.organization_known(e.id, "org_1").await.unwrap());
    let established = s.accounts_established_by(e.id, "org_1", "user_1").await.unwrap();
    assert_eq!(established.len(), 1);
    let mut wiped = established[0].clone();
    wiped.stored = None;
    wiped.established_by_user_id = None;
    wiped.state = AccountState::NeedsReauthorization;
    let events = account_events(AccountChange::ReauthorizationNeeded, &wiped, "keyed", &Actor::System);
    let ended = Membership {
        environment_id: e.id,
        organization_id: "org_1".into(),
        user_id: "user_1".into(),
        active: false,
        created_at: 1,
        updated_at: 2,
    };
    s.put_membership(&ended, &[wiped.clone()], &events).await.unwrap();
    assert!(s.organization_known(e.id, "org_1").await.unwrap());
    assert_eq!(
        s.membership(e.id, "org_1", "user_1").await.unwrap(),
        Some(ended.clone())
    );
    assert_eq!(s.connected_account(e.id, shared.id).await.unwrap().unwrap(), wiped);
    assert!(s
        .accounts_established_by(e.id, "org_1", "user_1")
        .await
        .unwrap()
        .is_empty());
    // A second clearing of the same connection finds it no longer established by the member.
    assert!(matches!(
        s.put_membership(&ended, &[wiped.clone()], &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // A member who left establishes nothing, by a new connection or by taking one over.
    let mut again = account(&r, Owner::organization("org_1"), ConnectionRole::Standard);
    assert!(matches!(
        s.insert_connected_account(&again, &[]).await,
        Err(StoreError::NotMember)
    ));
    let mut taken = wiped.clone();
    taken.established_by_user_id = Some("user_1".into());
    assert!(matches!(
        s.update_connected_account(&taken, &[]).await,
        Err(StoreError::NotMember)
    ));
    // Ending a membership refuses to commit while the member still establishes a connection
    // the caller did not list (one written after the caller looked).
    let declared = Membership {
        active: true,
        updated_at: 3,
        ..ended.clone()
    };
    s.put_membership(&declared, &[], &[]).await.unwrap();
    s.insert_connected_account(&again, &[]).await.unwrap();
    assert!(matches!(
        s.put_membership(&ended, &[], &[]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(s.membership(e.id, "org_1", "user_1").await.unwrap(), Some(declared));
    again.established_by_user_id = None;
    s.update_connected_account(&again, &[]).await.unwrap();
    let active = Membership {
        active: true,
        updated_at: 4,
        ..ended
    };
    s.put_membership(&active, &[], &[]).await.unwrap();
    assert_eq!(s.memberships(e.id, "org_1").await.unwrap(), vec![active]);

    // Organization overrides: insert-if-absent keeps what is there; overwrite replaces.
    let user_root = root(&e, "github", Ownership::User);
    s.insert_data_integration(&user_root, None).await.unwrap();
    let first = OrganizationSettings {
        id: DikId::new(),
        environment_id: e.id,
        data_integration_id: user_root.id,
        organization_id: "org_1".into(),
        enabled: Some(false),
        scopes: Some(vec!["repo".into()]),
        app: Some(OrganizationApp {
            client_id: "org-app".into(),
            client_secret: Sealed(vec![5; 10]),
            client_secret_last_4: "9z9z".into(),
        }),
        config: BTreeMap::new(),
        created_at: 1,
        updated_at: 1,
    };
    s.put_organization_settings(&first, true).await.unwrap();
    let blank = OrganizationSettings {
        id: DikId::new(),
        enabled: None,
        scopes: None,
        app: None,
        ..first.clone()
    };
    s.put_organization_settings(&blank, false).await.unwrap();
    assert_eq!(
        s.organization_settings(user_root.id, "org_1").await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        s.organization_settings_by_id(first.id).await.unwrap(),
        Some(first.clone())
    );
    let changed = OrganizationSettings {
        enabled: None,
        updated_at: 5,
        ..first.clone()
    };
    s.put_organization_settings(&changed, true).await.unwrap();
    assert_eq!(s.organization_settings_of(e.id, "org_1").await.unwrap(), vec![changed]);
    assert!(s.organization_settings_of(e.id, "org_2").await.unwrap().is_empty());
    assert_eq!(s.count_sealed(SealedColumn::OrganizationClientSecret).await.unwrap(), 1);
}
