//! The integrations contract.

use super::*;

contract!(
    integrations_round_trip_and_conflict_per_slug_and_ownership,
    integrations_page_by_id_in_both_directions,
    updates_change_the_root_and_its_custom_provider,
    deleting_the_last_root_deletes_its_custom_provider
);

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
    let (s, e) = open_with_env(db, "a").await;
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
    let (s, e) = open_with_env(db, "a").await;
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
    let (s, e) = open_with_env(db, "a").await;
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
