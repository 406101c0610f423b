//! The authorizations contract.

use super::*;

contract!(
    authorizations_round_trip_and_advance_once,
    connect_sessions_open_once_by_code_then_live_by_cookie
);

async fn authorizations_round_trip_and_advance_once(db: &TestDatabase) {
    let (s, _, r) = open_with_root(db, "sandbox", "github").await;
    let target = ConnectedAccountId::new();
    let pending = authorization(&r, target);
    s.insert_authorization(&pending).await.unwrap();
    assert_eq!(s.authorization("auth_1").await.unwrap(), Some(pending.clone()));
    assert_eq!(
        s.authorization_by_provider_state("provider-state").await.unwrap(),
        Some(pending.clone())
    );
    assert_eq!(s.authorization("auth_2").await.unwrap(), None);

    // Each step happens once: the second request that tries the same step loses.
    let mut held = pending.clone();
    held.status = AuthorizationStatus::Held;
    held.connect_code_hash = Some("code-hash".into());
    held.connect_code_expires_at = Some(1_500);
    held.held_tokens = Some(Sealed(vec![4, 5, 6]));
    assert!(s
        .advance_authorization(&held, AuthorizationStatus::Pending)
        .await
        .unwrap());
    assert!(!s
        .advance_authorization(&held, AuthorizationStatus::Pending)
        .await
        .unwrap());
    assert_eq!(
        s.authorization_by_connect_code("code-hash").await.unwrap(),
        Some(held.clone())
    );

    let mut done = held.clone();
    done.status = AuthorizationStatus::Completed;
    done.held_tokens = None;
    done.connected_account_id = Some(target);
    assert!(s.advance_authorization(&done, AuthorizationStatus::Held).await.unwrap());
    assert_eq!(s.authorization("auth_1").await.unwrap(), Some(done));

    // Expired ones are purged, younger ones kept.
    assert_eq!(s.purge_authorizations(2_000).await.unwrap(), 0);
    assert_eq!(s.purge_authorizations(2_001).await.unwrap(), 1);
    assert_eq!(s.authorization("auth_1").await.unwrap(), None);
}

async fn connect_sessions_open_once_by_code_then_live_by_cookie(db: &TestDatabase) {
    let (s, e) = open_with_env(db, "sandbox").await;
    let session = ConnectSession {
        id: "cs_1".into(),
        environment_id: e.id,
        owner: Owner::user("user_1", Some("org_1")),
        providers: vec!["github".into()],
        return_to: Some("https://app.test/done".into()),
        opener_origin: None,
        code_hash: "code-hash".into(),
        cookie_hash: None,
        csrf_token: "csrf".into(),
        created_at: 1_000,
        expires_at: 2_000,
    };
    s.insert_connect_session(&session).await.unwrap();
    assert_eq!(s.connect_session_by_cookie("cookie-hash", 1_500).await.unwrap(), None);
    assert_eq!(
        s.open_connect_session("code-hash", "cookie-hash", 2_000, 9_000)
            .await
            .unwrap(),
        None,
        "expired code"
    );
    let opened = s
        .open_connect_session("code-hash", "cookie-hash", 1_500, 9_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.cookie_hash.as_deref(), Some("cookie-hash"));
    assert_eq!(
        (opened.expires_at, opened.owner, opened.providers),
        (9_000, session.owner.clone(), session.providers.clone())
    );
    // The code works once.
    assert_eq!(
        s.open_connect_session("code-hash", "other-cookie", 1_600, 9_000)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .connect_session_by_cookie("cookie-hash", 8_999)
        .await
        .unwrap()
        .is_some());
    assert_eq!(s.connect_session_by_cookie("cookie-hash", 9_000).await.unwrap(), None);
    s.purge_authorizations(9_001).await.unwrap();
    assert_eq!(
        s.connect_session_by_cookie("cookie-hash", 0).await.unwrap(),
        None,
        "purged"
    );
}
