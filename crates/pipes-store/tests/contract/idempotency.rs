//! The idempotency contract.

use super::*;

contract!(idempotency_keys_replay_conflict_and_expire);

async fn idempotency_keys_replay_conflict_and_expire(db: &TestDatabase) {
    let s = open(db).await;
    let (a, b) = (env("a"), env("b"));
    s.insert_environment(&a).await.unwrap();
    s.insert_environment(&b).await.unwrap();
    let begin = |env: EnvironmentId, key: &'static str, fp: &'static str, now: i64| {
        let s = s.clone();
        async move {
            let record_id = format!("rec_{now}_{fp}_{}", env);
            s.idempotency_begin(&IdempotencyClaim {
                env,
                key,
                record_id: &record_id,
                fingerprint: fp,
                now,
                expired_before: now - 1000,
                stale_before: now - 100,
            })
            .await
            .unwrap()
        }
    };
    assert_eq!(begin(a.id, "k1", "f1", 10_000).await, IdempotencyBegin::Started);
    assert_eq!(begin(a.id, "k1", "f1", 10_001).await, IdempotencyBegin::InFlight);
    assert_eq!(begin(a.id, "k1", "f2", 10_001).await, IdempotencyBegin::Mismatch);
    assert_eq!(
        begin(b.id, "k1", "f2", 10_001).await,
        IdempotencyBegin::Started,
        "keys are per environment"
    );
    s.idempotency_complete(a.id, "k1", 201, b"{\"id\":1}").await.unwrap();
    assert_eq!(
        begin(a.id, "k1", "f1", 10_002).await,
        IdempotencyBegin::Completed {
            record_id: format!("rec_10000_f1_{}", a.id),
            status: 201,
            body: b"{\"id\":1}".to_vec()
        }
    );
    assert_eq!(
        begin(a.id, "k1", "f1", 20_000).await,
        IdempotencyBegin::Started,
        "expired records are forgotten"
    );
    s.idempotency_release(a.id, "k1").await.unwrap();
    assert_eq!(
        begin(a.id, "k1", "f9", 20_001).await,
        IdempotencyBegin::Started,
        "a released key is free"
    );
    assert_eq!(begin(a.id, "k2", "f1", 30_000).await, IdempotencyBegin::Started);
    assert_eq!(
        begin(a.id, "k2", "f1", 30_500).await,
        IdempotencyBegin::Started,
        "a stale in-flight claim is taken over"
    );
    assert_eq!(s.purge_idempotency(30_500).await.unwrap(), 2, "k1 and b's k1 are past");
    assert_eq!(
        begin(a.id, "k2", "f1", 30_501).await,
        IdempotencyBegin::InFlight,
        "k2 is kept"
    );
}
