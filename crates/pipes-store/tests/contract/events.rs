//! The events contract.

use super::*;

contract!(events_fan_out_to_enabled_subscribers_of_their_environment);

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
