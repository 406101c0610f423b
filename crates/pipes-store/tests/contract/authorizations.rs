//! The authorizations contract.

use super::*;

contract!(authorizations_round_trip_and_advance_once);

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
