//! Events and webhooks, on SQLite and PostgreSQL: every connection change is an event, served
//! by `GET /events` and delivered, signed, in order, with retries, to the endpoints that
//! subscribe.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use pipes_core::webhooks::signature_header;
use pipes_testkit::receiver::Receiver;
use pipes_testkit::{Settings, TestApp};
use reqwest::Method;
use serde_json::{json, Value};

pipes_testkit::on_both_backends!(
    settings = super::fast_retries();
    connection_changes_are_events,
    events_filter_and_page,
    deleting_an_integration_announces_each_connection,
    webhook_endpoints_are_managed_per_environment,
    a_retried_create_replays_the_secret_without_keeping_it_in_plaintext,
    deliveries_are_signed_compact_and_in_order,
    a_failing_receiver_gets_every_event_later_in_order,
    a_slow_endpoint_does_not_delay_the_others,
);

fn fast_retries() -> Settings {
    let mut s = pipes_testkit::test_settings();
    s.delivery.backoff_base = Duration::from_millis(100);
    s.delivery.backoff_max = Duration::from_millis(400);
    s.delivery.poll = Duration::from_millis(100);
    s.delivery.timeout = Duration::from_secs(3);
    s
}

const CONNECTED: &str = "pipes.connected_account.connected";
const REAUTH: &str = "pipes.connected_account.reauthorization_needed";
const DISCONNECTED: &str = "pipes.connected_account.disconnected";

async fn github(app: &TestApp) {
    let body = json!({
        "provider": "github",
        "credentials": {"type": "custom", "client_id": "cid", "client_secret": "csecret"},
    });
    let (status, created) = app.post("/data-integrations", body).await;
    assert_eq!(status, 201, "{created}");
}

fn account_path(user: &str, org: Option<&str>) -> String {
    let q = org.map(|o| format!("?organization_id={o}")).unwrap_or_default();
    format!("/user_management/users/{user}/connected_accounts/github{q}")
}

async fn connect(app: &TestApp, user: &str, org: Option<&str>) -> Value {
    let (status, account) = app
        .post(
            &account_path(user, org),
            json!({"access_token": format!("gho_{user}"), "scopes": ["repo"]}),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    account
}

async fn events(app: &TestApp, query: &str) -> Value {
    let (status, body) = app.get(&format!("/events{query}")).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn names(list: &Value) -> Vec<String> {
    list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect()
}

async fn connection_changes_are_events(app: TestApp) {
    github(&app).await;
    let account = connect(&app, "user_1", None).await;
    for change in [
        json!({"state": "needs_reauthorization"}),
        json!({"state": "connected"}),
        json!({"account_display_name": "x"}),
    ] {
        let (status, body) = app.put(&account_path("user_1", None), change).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, _) = app.delete(&account_path("user_1", None)).await;
    assert_eq!(status, 204);

    let list = events(&app, &format!("?events={CONNECTED},{REAUTH},{DISCONNECTED}")).await;
    assert_eq!(
        names(&list),
        [CONNECTED, REAUTH, CONNECTED, DISCONNECTED],
        "a label change is not a state change"
    );
    assert_eq!(list["object"], "list");
    assert_eq!(list["list_metadata"], json!({"after": null}));
    let first = &list["data"][0];
    assert_eq!(first["object"], "event");
    assert!(first["id"].as_str().unwrap().starts_with("event_"));
    let data = &first["data"];
    assert_eq!(data["object"], "connected_account");
    assert_eq!(data["id"], account["id"]);
    assert_eq!(data["provider_slug"], "github");
    assert_eq!(data["user_id"], "user_1");
    assert_eq!(data["organization_id"], Value::Null);
    assert_eq!(data["scopes"], json!(["repo"]));
    assert_eq!(data["state"], "connected");
    assert!(data.get("config").is_none() && !first.to_string().contains("gho_user_1"));
    assert_eq!(
        first["context"]["actor"],
        json!({"id": "user_1", "source": "api", "name": null})
    );
    assert_eq!(list["data"][3]["data"]["state"], "disconnected");

    // Both families: the newer one sees every connection too.
    let all = events(&app, "").await;
    assert_eq!(all["data"].as_array().unwrap().len(), 8);
    assert!(names(&all).contains(&"pipes.account_connection.disconnected".to_owned()));

    // Another tenant sees none of it.
    let (_, other_key) = app.other_tenant("other").await;
    let resp = app.request_as(&other_key, Method::GET, "/events").send().await.unwrap();
    let (_, theirs) = pipes_testkit::read(resp).await;
    assert_eq!(theirs["data"], json!([]));
}

async fn events_filter_and_page(app: TestApp) {
    github(&app).await;
    let before_all = pipes_core::time::format_ms(pipes_core::time::now_ms() - 1);
    connect(&app, "user_1", Some("org_a")).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    let middle = pipes_core::time::format_ms(pipes_core::time::now_ms());
    connect(&app, "user_2", Some("org_b")).await;
    connect(&app, "user_3", None).await;

    let only = |q: &str| format!("?events={CONNECTED}{q}");
    assert_eq!(events(&app, &only("")).await["data"].as_array().unwrap().len(), 3);
    let org_a = events(&app, &only("&organization_id=org_a")).await;
    assert_eq!(org_a["data"].as_array().unwrap().len(), 1);
    assert_eq!(org_a["data"][0]["data"]["user_id"], "user_1");
    let later = events(&app, &only(&format!("&range_start={middle}"))).await;
    assert_eq!(later["data"].as_array().unwrap().len(), 2);
    let earlier = events(&app, &only(&format!("&range_start={before_all}&range_end={middle}"))).await;
    assert_eq!(earlier["data"].as_array().unwrap().len(), 1);

    // Oldest first by default; page forward with `after`.
    let page1 = events(&app, &only("&limit=2")).await;
    assert_eq!(page1["data"][0]["data"]["user_id"], "user_1");
    let after = page1["list_metadata"]["after"].as_str().unwrap().to_owned();
    assert_eq!(page1["list_metadata"].as_object().unwrap().len(), 1, "only `after`");
    let page2 = events(&app, &only(&format!("&limit=2&after={after}"))).await;
    assert_eq!(page2["data"].as_array().unwrap().len(), 1);
    assert_eq!(page2["data"][0]["data"]["user_id"], "user_3");
    assert_eq!(page2["list_metadata"]["after"], Value::Null);
    let newest = events(&app, &only("&order=desc&limit=1")).await;
    assert_eq!(newest["data"][0]["data"]["user_id"], "user_3");

    for bad in [
        "?events=pipes.connected_account.exploded",
        "?range_start=yesterday",
        "?limit=0",
        "?after=event_01EHZNVPK3SFK441A1RGBFSHRT",
    ] {
        let (status, body) = app.get(&format!("/events{bad}")).await;
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["code"], "invalid_request_parameters");
        assert!(body["errors"][0]["field"].is_string());
    }
}

async fn deleting_an_integration_announces_each_connection(app: TestApp) {
    github(&app).await;
    connect(&app, "user_1", None).await;
    connect(&app, "user_2", Some("org_1")).await;
    let (status, _) = app.delete("/data-integrations/github").await;
    assert_eq!(status, 204);
    let gone = events(&app, &format!("?events={DISCONNECTED}")).await;
    let mut users: Vec<String> = gone["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["data"]["user_id"].as_str().unwrap().to_owned())
        .collect();
    users.sort();
    assert_eq!(users, ["user_1", "user_2"]);
}

async fn create_endpoint(app: &TestApp, url: &str, events: &[&str]) -> Value {
    let (status, body) = app
        .post("/webhook_endpoints", json!({"endpoint_url": url, "events": events}))
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

async fn a_retried_create_replays_the_secret_without_keeping_it_in_plaintext(app: TestApp) {
    let create = || async {
        let resp = app
            .request(Method::POST, "/webhook_endpoints")
            .header("idempotency-key", "create-hook-1")
            .json(&json!({"endpoint_url": "https://hooks.example.com/retry", "events": [CONNECTED]}))
            .send()
            .await
            .unwrap();
        let replayed = resp.headers().contains_key("idempotent-replayed");
        let (status, body) = pipes_testkit::read(resp).await;
        (status, body, replayed)
    };
    let (status, first, replayed) = create().await;
    assert_eq!((status, replayed), (201, false), "{first}");
    let (status, again, replayed) = create().await;
    assert_eq!((status, replayed), (201, true), "{again}");
    assert_eq!(again, first, "the same endpoint and the same secret");
    // The recorded answer holds the secret: the secrets canary (when `app` is dropped) checks
    // that the database never holds it in plaintext.
    assert!(first["secret"].as_str().unwrap().starts_with("whsec_"));
}

async fn webhook_endpoints_are_managed_per_environment(app: TestApp) {
    let created = create_endpoint(&app, "https://hooks.example.com/pipes", &[CONNECTED]).await;
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 32, "{secret}");
    assert_eq!(created["object"], "webhook_endpoint");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["events"], json!([CONNECTED]));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("we_"));

    let (status, list) = app.get("/webhook_endpoints").await;
    assert_eq!(status, 200);
    assert_eq!(
        list["data"][0]["secret"],
        secret.as_str(),
        "the secret is on every read"
    );

    let cases = [
        (
            json!({"endpoint_url": "https://hooks.example.com/pipes", "events": [CONNECTED]}),
            409,
            "duplicate_endpoint",
        ),
        (
            json!({"endpoint_url": "http://hooks.example.com/x", "events": [CONNECTED]}),
            422,
            "invalid_url",
        ),
        (
            json!({"endpoint_url": "not a url", "events": [CONNECTED]}),
            422,
            "invalid_url",
        ),
        (
            json!({"endpoint_url": "https://a.example.com/x", "events": []}),
            422,
            "invalid_request_parameters",
        ),
        (
            json!({"endpoint_url": "https://a.example.com/x", "events": ["nope"]}),
            422,
            "invalid_request_parameters",
        ),
        (
            json!({"endpoint_url": "https://a.example.com/x"}),
            422,
            "invalid_request_parameters",
        ),
    ];
    for (body, want, code) in cases {
        let (status, err) = app.post("/webhook_endpoints", body.clone()).await;
        assert_eq!((status, err["code"].as_str().unwrap()), (want, code), "{body}: {err}");
    }

    let other = create_endpoint(&app, "http://localhost:9/other", &[CONNECTED, DISCONNECTED]).await;
    let path = format!("/webhook_endpoints/{id}");
    let (status, patched) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"status": "disabled", "events": [REAUTH]})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        (patched["status"].as_str(), patched["events"].clone()),
        (Some("disabled"), json!([REAUTH]))
    );
    assert_eq!(patched["secret"], secret.as_str());
    let (status, _) = app
        .call(
            Method::PATCH,
            &path,
            Some(json!({"endpoint_url": other["endpoint_url"]})),
        )
        .await;
    assert_eq!(status, 409);
    let (status, _) = app.call(Method::PATCH, &path, Some(json!({"status": "paused"}))).await;
    assert_eq!(status, 422);

    let (_, other_key) = app.other_tenant("other").await;
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let resp = app
            .request_as(&other_key, method.clone(), &path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{method} from another tenant");
    }

    // Sealed at rest.
    if let Some(file) = app.db.url.strip_prefix("sqlite://") {
        let mut bytes = std::fs::read(file).unwrap_or_default();
        bytes.extend(std::fs::read(format!("{file}-wal")).unwrap_or_default());
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    }

    let (status, _) = app.delete(&path).await;
    assert_eq!(status, 204);
    let (status, _) = app.delete(&path).await;
    assert_eq!(status, 404);
    let (status, _) = app.get("/webhook_endpoints/we_nope").await;
    assert_eq!(status, 404);
}

async fn deliveries_are_signed_compact_and_in_order(app: TestApp) {
    github(&app).await;
    let receiver = Receiver::start().await;
    let endpoint = create_endpoint(&app, &receiver.url, &[CONNECTED, DISCONNECTED]).await;
    let secret = endpoint["secret"].as_str().unwrap();
    let muted = Receiver::start().await;
    let disabled = create_endpoint(&app, &muted.url, &[CONNECTED]).await;
    let (status, _) = app
        .call(
            Method::PATCH,
            &format!("/webhook_endpoints/{}", disabled["id"].as_str().unwrap()),
            Some(json!({"status": "disabled"})),
        )
        .await;
    assert_eq!(status, 200);

    connect(&app, "user_1", None).await;
    app.delete(&account_path("user_1", None)).await;
    connect(&app, "user_2", None).await;

    let got = receiver.wait_for_accepted(3, Duration::from_secs(10)).await;
    let stored = events(&app, &format!("?events={CONNECTED},{DISCONNECTED}")).await;
    for (i, r) in got.iter().enumerate() {
        assert_eq!(r.content_type, "application/json");
        // The stored event, as compact JSON (the SDK suites check it equals JSON.stringify's).
        let parsed: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(parsed, stored["data"][i], "delivery {i} out of order");
        assert!(!r.body.contains('\n') && !r.body.contains("\": ") && !r.body.contains(", \""));
        assert!(r.body.starts_with(r#"{"object":"event","id":"event_"#));
        let t: i64 = r
            .signature
            .strip_prefix("t=")
            .unwrap()
            .split(',')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!((pipes_core::time::now_ms() - t).abs() < 60_000, "t is in milliseconds");
        assert_eq!(r.signature, signature_header(secret, t, &r.body));
        assert_ne!(
            r.signature,
            signature_header(secret, t, &r.body.replace("user_", "usr_"))
        );
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(muted.received().is_empty(), "a disabled endpoint receives nothing");
    assert_eq!(receiver.received().len(), 3, "each event once");
}

async fn a_failing_receiver_gets_every_event_later_in_order(app: TestApp) {
    github(&app).await;
    let receiver = Receiver::start().await;
    receiver.fail_next(3);
    let endpoint = create_endpoint(&app, &receiver.url, &[CONNECTED]).await;
    for user in ["user_1", "user_2", "user_3"] {
        connect(&app, user, None).await;
    }
    let got = receiver.wait_for_accepted(3, Duration::from_secs(20)).await;
    let users: Vec<String> = got
        .iter()
        .map(|r| {
            serde_json::from_str::<Value>(&r.body).unwrap()["data"]["user_id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(users, ["user_1", "user_2", "user_3"], "order survives retries");
    let all = receiver.received();
    assert_eq!(all.len(), 6, "three failures, then one success each");
    // The retries of the first event carry fresh timestamps over the same body.
    assert!(all[..4].iter().all(|r| r.body == all[0].body));
    assert_ne!(all[0].signature, all[3].signature);

    let id = pipes_core::ids::WebhookEndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap();
    // The last success is recorded just after the receiver answered.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let deliveries = loop {
        let d = app.store.list_deliveries(id, None, 10).await.unwrap();
        if d.iter()
            .all(|d| d.state == pipes_core::domain::DeliveryState::Delivered)
        {
            break d;
        }
        assert!(std::time::Instant::now() < deadline, "{d:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let first = deliveries.last().unwrap();
    assert_eq!(first.attempts, 4);
    let attempts = app.store.delivery_attempts(id, first.event_id).await.unwrap();
    assert_eq!(
        attempts.iter().map(|a| a.status).collect::<Vec<_>>(),
        [Some(500), Some(500), Some(500), Some(200)]
    );
    assert_eq!(attempts[0].error.as_deref(), Some("HTTP 500"));
}

async fn a_slow_endpoint_does_not_delay_the_others(app: TestApp) {
    github(&app).await;
    let slow = Receiver::start().await;
    slow.delay(Duration::from_secs(2));
    let dead = Receiver::start().await;
    dead.answer(503);
    let healthy = Receiver::start().await;
    create_endpoint(&app, &slow.url, &[CONNECTED]).await;
    create_endpoint(&app, &dead.url, &[CONNECTED]).await;
    create_endpoint(&app, &healthy.url, &[CONNECTED]).await;
    for user in ["user_1", "user_2", "user_3", "user_4"] {
        connect(&app, user, None).await;
    }
    let started = std::time::Instant::now();
    healthy.wait_for_accepted(4, Duration::from_secs(5)).await;
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the healthy endpoint waited {:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deliveries_give_up_after_the_retry_period_and_can_be_redelivered() {
    let mut settings = fast_retries();
    settings.delivery.retry_for = Duration::from_millis(500);
    let app = pipes_testkit::spawn_app_with(pipes_testkit::TestDatabase::sqlite(), settings).await;
    github(&app).await;
    let receiver = Receiver::start().await;
    receiver.answer(500);
    let endpoint = create_endpoint(&app, &receiver.url, &[CONNECTED]).await;
    let id = pipes_core::ids::WebhookEndpointId::parse(endpoint["id"].as_str().unwrap()).unwrap();
    connect(&app, "user_1", None).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let failed = loop {
        let d = app.store.list_deliveries(id, None, 10).await.unwrap();
        if d[0].state == pipes_core::domain::DeliveryState::Failed {
            break d[0].clone();
        }
        assert!(std::time::Instant::now() < deadline, "never given up: {d:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(failed.attempts >= 2);
    receiver.answer(0);
    let env = app.env.clone();
    let webhooks = pipes_core::webhooks::Webhooks::new(
        app.store.clone(),
        pipes_core::vault::Vault::from_spec(&app.vault_spec).unwrap(),
        pipes_core::egress::Egress::new(app.settings.egress.clone()),
    );
    webhooks
        .redeliver(&env, &id.to_string(), &failed.event_id.to_string())
        .await
        .unwrap();
    let got = receiver.wait_for_accepted(1, Duration::from_secs(5)).await;
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["id"], failed.event_id.to_string(), "the same event id");
}
