//! The environments contract.

use super::*;

contract!(
    environments_are_unique_by_name,
    api_keys_authenticate_until_revoked,
    allow_lists_are_sets_per_environment_and_list
);

async fn environments_are_unique_by_name(db: &TestDatabase) {
    let (s, a) = open_with_env(db, "sandbox").await;
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
    let (s, e) = open_with_env(db, "sandbox").await;
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

async fn allow_lists_are_sets_per_environment_and_list(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    let uris = AllowList::RedirectUris;
    assert!(s.allow(a.id, uris, "https://app.test/cb", 1).await.unwrap());
    assert!(!s.allow(a.id, uris, "https://app.test/cb", 2).await.unwrap());
    assert!(s.allow(a.id, uris, "http://localhost/cb", 3).await.unwrap());
    assert_eq!(
        s.allowed(a.id, uris).await.unwrap(),
        vec!["https://app.test/cb", "http://localhost/cb"]
    );
    assert!(s.allowed(b.id, uris).await.unwrap().is_empty());
    assert!(s.disallow(a.id, uris, "https://app.test/cb").await.unwrap());
    assert!(!s.disallow(a.id, uris, "https://app.test/cb").await.unwrap());

    // Web origins are their own list; a preflight asks whether any environment allows one.
    let origins = AllowList::WebOrigins;
    assert!(s.allowed(a.id, origins).await.unwrap().is_empty());
    assert!(!s.origin_allowed_anywhere("https://app.test").await.unwrap());
    assert!(s.allow(b.id, origins, "https://app.test", 4).await.unwrap());
    assert!(s.origin_allowed_anywhere("https://app.test").await.unwrap());
    assert!(s.allowed(a.id, origins).await.unwrap().is_empty());
    assert_eq!(s.allowed(b.id, uris).await.unwrap(), Vec::<String>::new());
    assert!(s.disallow(b.id, origins, "https://app.test").await.unwrap());
    assert!(!s.origin_allowed_anywhere("https://app.test").await.unwrap());
}
