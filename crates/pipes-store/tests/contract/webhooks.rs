//! The webhooks contract.

use super::*;

contract!(endpoint_leases_order_attempts_and_give_up);

async fn endpoint_leases_order_attempts_and_give_up(db: &TestDatabase) {
    let (s, a) = open_with_env(db, "a").await;
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
