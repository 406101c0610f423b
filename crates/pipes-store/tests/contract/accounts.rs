//! The accounts contract.

use super::*;

contract!(connected_accounts_have_one_compatibility_slot_per_owner);

async fn connected_accounts_have_one_compatibility_slot_per_owner(db: &TestDatabase) {
    let (s, e, r) = open_with_root(db, "a", "github").await;
    let alice = Owner::user("user_1", None);
    let alice_acme = Owner::user("user_1", Some("org_1"));
    let a = account(&r, alice.clone(), ConnectionRole::Compatibility);
    s.insert_connected_account(&a, &[]).await.unwrap();
    let dup = account(&r, alice.clone(), ConnectionRole::Compatibility);
    assert!(matches!(
        s.insert_connected_account(&dup, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    s.insert_connected_account(&account(&r, alice.clone(), ConnectionRole::Standard), &[])
        .await
        .unwrap();
    s.insert_connected_account(&account(&r, alice_acme.clone(), ConnectionRole::Compatibility), &[])
        .await
        .unwrap();

    let (got_root, got) = s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::User, &alice.key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got_root.id, r.id);
    assert_eq!(got, Some(a.clone()));
    let (_, none) = s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::User, &Owner::user("user_2", None).key())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(none, None);
    assert!(s
        .root_with_compatibility_account(e.id, &r.slug, Ownership::Organization, &alice.key())
        .await
        .unwrap()
        .is_none());
    assert_eq!(s.accounts_of_owner(r.id, Some(&alice.key())).await.unwrap().len(), 2);
    assert_eq!(
        s.accounts_of_owner(r.id, Some(&alice_acme.key())).await.unwrap().len(),
        1
    );
    assert_eq!(
        s.accounts_of_owner_in_env(e.id, Ownership::User, &alice.key())
            .await
            .unwrap()
            .len(),
        2
    );

    let mut changed = a.clone();
    changed.state = AccountState::NeedsReauthorization;
    changed.account_display_name = None;
    changed.tokens = TokenSet::default();
    changed.updated_at = 9;
    s.update_connected_account(&changed, &[]).await.unwrap();
    assert_eq!(s.connected_account(e.id, a.id).await.unwrap(), Some(changed));
    let other = env("b");
    s.insert_environment(&other).await.unwrap();
    assert_eq!(
        s.connected_account(other.id, a.id).await.unwrap(),
        None,
        "another tenant cannot read it"
    );
    assert!(!s.delete_connected_account(other.id, a.id, &[]).await.unwrap());
    assert!(s.delete_connected_account(e.id, a.id, &[]).await.unwrap());
    assert_eq!(s.connected_account(e.id, a.id).await.unwrap(), None);
    let remaining: Vec<_> = s
        .accounts_of_owner(r.id, None)
        .await
        .unwrap()
        .iter()
        .map(|a| a.id)
        .collect();
    assert!(!remaining.is_empty());
    assert!(
        matches!(
            s.delete_data_integration(e.id, r.id, &remaining[1..], &[]).await,
            Err(StoreError::Conflict(_))
        ),
        "a delete that does not know every connection is refused"
    );
    assert!(s.delete_data_integration(e.id, r.id, &remaining, &[]).await.unwrap());
    assert!(
        s.accounts_of_owner(r.id, Some(&alice.key())).await.unwrap().is_empty(),
        "deleting the root deletes its accounts"
    );
}
