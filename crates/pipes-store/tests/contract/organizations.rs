//! The organizations contract.

use super::*;

contract!(organizations_members_settings_and_stored_secrets);

async fn organizations_members_settings_and_stored_secrets(db: &TestDatabase) {
    let (s, e) = open_with_env(db, "a").await;
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
        team_name: Some("Acme <Ops>".into()),
        logo_url: Some("https://acme.test/logo.svg".into()),
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
