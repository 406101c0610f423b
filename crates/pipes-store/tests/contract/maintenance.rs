//! The maintenance contract.

use super::*;

contract!(
    sealed_values_are_replaced_only_when_unchanged,
    migrations_are_idempotent
);

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
