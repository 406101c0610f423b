//! The refresh contract.

use super::*;

contract!(
    refresh_leases_and_generations_serialise_refreshes,
    refresh_candidates_follow_expiry_backoff_and_keepalive,
    the_refresh_queue_and_vending_share_one_freshness_rule,
);

async fn refresh_leases_and_generations_serialise_refreshes(db: &TestDatabase) {
    let (s, e, r) = open_with_root(db, "a", "github").await;
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
    // Tokens of the current generation are kept even from a process that lost its lease (a
    // database outage outlasted it); the holder's lease stays, and its own result is refused.
    let later = TokenSet {
        access_token: Some(Sealed(vec![3])),
        expires_at: Some(9_500),
        refresh_token: Some(Sealed(vec![4])),
    };
    assert!(s
        .store_refreshed_tokens(a.id, "p1", 1, &later, &["repo".into()], "{}", 180)
        .await
        .unwrap());
    assert!(
        s.take_refresh_lease(a.id, "p3", 190, 320).await.unwrap().is_none(),
        "p2 still holds its lease"
    );
    assert!(
        !s.store_refreshed_tokens(a.id, "p2", 1, &fresh, &[], "{}", 200)
            .await
            .unwrap(),
        "p2's generation is gone"
    );
    assert!(
        s.take_refresh_lease(a.id, "p2", 210, 300).await.unwrap().is_some(),
        "and p2 keeps its lease until it lets go"
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
    assert!(s.record_refresh_failure(a.id, "p2", 2, &err, true, &[]).await.unwrap());
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

async fn refresh_candidates_follow_expiry_backoff_and_keepalive(db: &TestDatabase) {
    let (s, e, custom) = open_with_root(db, "a", "acme").await;
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

/// The queue's SQL and `ConnectedAccount::is_fresh` state the same rule: a connection is due
/// exactly when vending would not hand out its token without a refresh (away from the boundary,
/// where one says "less than" and the other "at most").
async fn the_refresh_queue_and_vending_share_one_freshness_rule(db: &TestDatabase) {
    let (s, _, r) = open_with_root(db, "a", "acme").await;
    let now = 10_000_000;
    let ahead = 300_000;
    let mut accounts = Vec::new();
    // Lifetimes from a minute to a day, issued at various times or imported (lifetime unknown),
    // expiring from already to far away.
    for (i, lifetime) in [60_000, 600_000, 3_600_000, 86_400_000].into_iter().enumerate() {
        for (j, left) in [-1_000, 10_001, 29_999, 150_001, 299_999, 300_001, 1_800_001, 43_200_001]
            .into_iter()
            .enumerate()
        {
            for (k, issued) in [Some(now + left - lifetime), None].into_iter().enumerate() {
                let mut a = account(
                    &r,
                    Owner::user(&format!("u{i}_{j}_{k}"), None),
                    ConnectionRole::Compatibility,
                );
                a.tokens.expires_at = Some(now + left);
                a.last_refreshed_at = issued;
                s.insert_connected_account(&a, &[]).await.unwrap();
                accounts.push(a);
            }
        }
    }
    let due: std::collections::HashSet<_> = s
        .accounts_due_for_refresh(now, ahead, &[], 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|(_, a)| a.id)
        .collect();
    let mut stale = 0;
    for a in &accounts {
        assert_eq!(
            due.contains(&a.id),
            !a.is_fresh(now, ahead),
            "expires {:?}, issued {:?}",
            a.tokens.expires_at.map(|e| e - now),
            a.last_refreshed_at.map(|t| t - now)
        );
        stale += usize::from(!a.is_fresh(now, ahead));
    }
    assert!(
        stale > 0 && stale < accounts.len(),
        "both sides of the rule are exercised"
    );
}
