//! The background refresh worker, on SQLite and PostgreSQL: tokens are refreshed before anyone
//! asks, a provider outage backs off without killing anything, and a dead grant is marked once,
//! with its event.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use pipes_testkit::mock_provider::{Failure, MockProvider};
use pipes_testkit::{iso_in, Settings, TestApp};
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    settings = super::eager();
    tokens_are_refreshed_before_anyone_asks,
    a_provider_outage_backs_off_and_kills_nothing,
    a_dead_grant_is_marked_once_with_its_event,
);

fn eager() -> Settings {
    let mut s = pipes_testkit::test_settings();
    s.refresh_ahead.enabled = true;
    s.refresh_ahead.every = Duration::from_millis(100);
    s
}

async fn setup(app: &TestApp) -> MockProvider {
    let mock = MockProvider::start("cid", "csecret").await;
    app.create_mock_integration(&mock, "cid", "csecret", json!({})).await;
    mock
}

async fn import(app: &TestApp, user: &str, access: &str, refresh: &str, expires_in: i64) {
    let (status, account) = app
        .post(
            &format!("/user_management/users/{user}/connected_accounts/mock"),
            json!({"access_token": access, "refresh_token": refresh, "expires_at": iso_in(expires_in)}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
}

async fn account(app: &TestApp, user: &str) -> Value {
    let (status, body) = app
        .get(&format!("/user_management/users/{user}/connected_accounts/mock"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn tokens_are_refreshed_before_anyone_asks(app: TestApp) {
    let mock = setup(&app).await;
    for user in ["user_1", "user_2", "user_3"] {
        let (access, refresh) = mock.issue_grant();
        import(&app, user, &access, &refresh, 120).await;
    }
    let (access, refresh) = mock.issue_grant();
    import(&app, "user_later", &access, &refresh, 3000).await;
    eventually("three refreshes", async || mock.counters().refreshes == 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        mock.counters().refreshes,
        3,
        "once each; not the one expiring in 50 minutes"
    );
    assert_eq!(mock.counters().reused_refresh_tokens, 0);
    let a = account(&app, "user_1").await;
    assert!(a["last_refreshed_at"].is_string(), "{a}");
    assert_eq!(a["last_refresh_error"], Value::Null);

    // The caller now gets the refreshed token without another refresh.
    let (_, vended) = app
        .post("/data-integrations/mock/token", json!({"user_id": "user_1"}))
        .await;
    assert_eq!(vended["active"], true);
    assert_eq!(mock.counters().refreshes, 3);

    let m = app.metrics().await;
    assert!(
        m.contains("pipes_refreshes_total{provider=\"mock\",outcome=\"success\"} 3"),
        "{m}"
    );
    assert!(
        m.contains("pipes_refresh_duration_seconds_count{provider=\"mock\"} 3"),
        "{m}"
    );
    assert!(m.contains("pipes_refresh_queue_depth 0"), "{m}");
}

async fn a_provider_outage_backs_off_and_kills_nothing(app: TestApp) {
    let mock = setup(&app).await;
    mock.fail_next(vec![Failure::ServerError; 20]);
    let (access, refresh) = mock.issue_grant();
    import(&app, "user_1", &access, &refresh, 120).await;
    eventually("a recorded failure", async || {
        !account(&app, "user_1").await["last_refresh_error"].is_null()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let a = account(&app, "user_1").await;
    assert_eq!(a["state"], "connected", "an outage never kills an account");
    let e = &a["last_refresh_error"];
    assert_eq!(
        e["consecutive_failures"], 1,
        "backing off: one try, not one per tick: {a}"
    );
    let next = pipes_core::time::parse_rfc3339(e["next_attempt_at"].as_str().unwrap()).unwrap();
    assert!(next > pipes_core::time::now_ms() + 20_000, "next try in about 30 s");
    assert!(!a.to_string().contains(&refresh), "no token in the account view");
    let m = app.metrics().await;
    assert!(
        m.contains("pipes_refreshes_total{provider=\"mock\",outcome=\"transient_failure\"} 1"),
        "{m}"
    );
    // A caller still gets the valid token it has.
    let (status, vended) = app
        .post("/data-integrations/mock/token", json!({"user_id": "user_1"}))
        .await;
    assert_eq!((status, vended["active"].as_bool()), (200, Some(true)), "{vended}");
}

async fn a_dead_grant_is_marked_once_with_its_event(app: TestApp) {
    let mock = setup(&app).await;
    let (access, refresh) = mock.issue_grant();
    mock.revoke_all();
    import(&app, "user_1", &access, &refresh, 120).await;
    eventually("needs_reauthorization", async || {
        account(&app, "user_1").await["state"] == "needs_reauthorization"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(mock.counters().invalid_refresh_tokens, 1, "a dead grant is not retried");
    let (_, events) = app
        .get("/events?events=pipes.connected_account.reauthorization_needed")
        .await;
    let events = events["data"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["context"]["actor"]["source"], "system");
    assert_eq!(events[0]["data"]["state_reason"], "invalid_grant");
    let m = app.metrics().await;
    assert!(m.contains("outcome=\"permanent_failure\"} 1"), "{m}");
}
