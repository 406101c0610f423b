//! The maintenance contract.

use super::*;

contract!(
    sealed_values_are_replaced_only_when_unchanged,
    migrations_are_idempotent,
    rotation_reseals_every_sealed_column,
);

async fn sealed_values_are_replaced_only_when_unchanged(db: &TestDatabase) {
    let (s, e) = open_with_env(db, "a").await;
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

/// Fills every [`SealedColumn`] with a value sealed under an old key, rotates, and opens every
/// value with the new key alone. A column added to the enum without a row here fails the test.
async fn rotation_reseals_every_sealed_column(db: &TestDatabase) {
    let s = open(db).await;
    let old = Vault::generate_key_spec("old");
    let new = Vault::generate_key_spec("new");
    let before = Vault::from_spec(&old).unwrap();
    let seal = |column: SealedColumn, row: &str| {
        before.seal(format!("{}:{row}", column.purpose()).as_bytes(), column.aad(row))
    };

    let e = env("sandbox");
    s.insert_environment(&e).await.unwrap();
    let mut r = root(&e, "github", Ownership::User);
    if let Some(c) = r.credentials.as_mut() {
        c.client_secret = Some(seal(SealedColumn::IntegrationClientSecret, &r.id.to_string()));
    }
    s.insert_data_integration(&r, None).await.unwrap();
    let dik = DikId::new();
    let settings = OrganizationSettings {
        id: dik,
        environment_id: e.id,
        data_integration_id: r.id,
        organization_id: "org_1".into(),
        enabled: None,
        scopes: None,
        app: Some(OrganizationApp {
            client_id: "org-app".into(),
            client_secret: seal(SealedColumn::OrganizationClientSecret, &dik.to_string()),
            client_secret_last_4: "abcd".into(),
        }),
        config: BTreeMap::new(),
        created_at: 1,
        updated_at: 1,
    };
    s.put_organization_settings(&settings, true).await.unwrap();
    let mut ep = endpoint(
        &e,
        "https://hooks.example.com/a",
        &[EventType::ConnectedAccountConnected],
        EndpointStatus::Enabled,
    );
    ep.secret = seal(SealedColumn::WebhookSecret, &ep.id.to_string());
    s.insert_webhook_endpoint(&ep).await.unwrap();
    let mut a = account(&r, Owner::user("user_1", None), ConnectionRole::Compatibility);
    a.established_by_user_id = None;
    let row = a.id.to_string();
    a.tokens.access_token = Some(seal(SealedColumn::AccountAccessToken, &row));
    a.tokens.refresh_token = Some(seal(SealedColumn::AccountRefreshToken, &row));
    a.stored = Some(StoredSecret {
        client_id: None,
        secret: seal(SealedColumn::AccountSecret, &row),
        last_4: "wxyz".into(),
    });
    s.insert_connected_account(&a, &[]).await.unwrap();
    let mut auth = authorization(&r, a.id);
    auth.pkce_verifier = Some(seal(SealedColumn::PkceVerifier, &auth.id));
    auth.held_tokens = Some(seal(SealedColumn::HeldTokens, &auth.id));
    s.insert_authorization(&auth).await.unwrap();
    let claim = IdempotencyClaim {
        env: e.id,
        key: "retry-1",
        record_id: "idem_1",
        fingerprint: "f",
        now: 1,
        expired_before: 0,
        stale_before: 0,
    };
    s.idempotency_begin(&claim).await.unwrap();
    let answer = seal(SealedColumn::IdempotentAnswer, "idem_1");
    s.idempotency_complete(e.id, "retry-1", 201, &answer.0).await.unwrap();

    for &column in SealedColumn::ALL {
        assert_eq!(s.count_sealed(column).await.unwrap(), 1, "{column:?} has no fixture");
    }
    let rotated = Vault::from_spec(&format!("{new},{old}")).unwrap();
    let mut columns = 0;
    let report = rotate_vault(&s, &rotated, |p| {
        if let RotationProgress::Column { .. } = p {
            columns += 1;
        }
    })
    .await
    .unwrap();
    assert_eq!(columns, SealedColumn::ALL.len());
    assert_eq!(report.resealed, SealedColumn::ALL.len() as u64, "{report:?}");
    assert!(report.failures.is_empty(), "{report:?}");
    let again = rotate_vault(&s, &rotated, |_| {}).await.unwrap();
    assert_eq!((again.resealed, again.current), (0, SealedColumn::ALL.len() as u64));

    let only_new = Vault::from_spec(&new).unwrap();
    for &column in SealedColumn::ALL {
        let rows = s.sealed_values(column, None, 10).await.unwrap();
        let value = only_new
            .open(&Sealed(rows[0].sealed.clone()), column.aad(&rows[0].id))
            .unwrap();
        assert_eq!(value, format!("{}:{}", column.purpose(), rows[0].id).into_bytes());
    }

    let unrelated = Vault::from_spec(&Vault::generate_key_spec("other")).unwrap();
    let lost = rotate_vault(&s, &unrelated, |_| {}).await.unwrap();
    assert_eq!(
        lost.failures.len(),
        SealedColumn::ALL.len(),
        "values no key opens are reported"
    );
}
