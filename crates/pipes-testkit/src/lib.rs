//! Test support for Pipes: a real server on a free loopback port over a throwaway database.
#![forbid(unsafe_code)]

/// The scriptable mock OAuth provider (`pipes dev` runs it too).
pub use pipes_mock_provider as mock_provider;
pub use pipes_server::Settings;

pub mod canary;
mod database;
pub mod receiver;

use std::net::SocketAddr;
use std::sync::Arc;

pub use database::TestDatabase;
use pipes_core::catalog::Catalog;
use pipes_core::domain::Environment;
use pipes_core::services::Environments;
use pipes_core::store::Store;
use pipes_core::vault::Vault;
use tokio::sync::oneshot;

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// An API key of [`TestApp::env`].
    pub key: String,
    /// The environment the key opens.
    pub env: Environment,
    /// The database, for assertions on stored state.
    pub store: Arc<dyn Store>,
    /// The database's URL and lifetime guard.
    pub db: TestDatabase,
    /// Environments, to create more tenants and keys.
    pub environments: Environments,
    /// HTTP client.
    pub http: reqwest::Client,
    /// The vault key list, to start sibling servers on the same database.
    pub vault_spec: String,
    /// The settings it runs with.
    pub settings: Settings,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for TestApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestApp")
            .field("base_url", &self.base_url)
            .field("db", &self.db)
            .finish()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if !std::thread::panicking() {
            canary::check(&self.db);
        }
    }
}

/// Declares each named `async fn(TestApp)` of the calling module as two tests, `sqlite::NAME`
/// and `postgres::NAME` (skipped without `PIPES_TEST_POSTGRES_URL`, a failure with
/// `PIPES_REQUIRE_POSTGRES=1`). `settings = EXPR;` first runs them with those settings; EXPR is
/// evaluated inside the generated modules, so name the caller's functions as `super::…`.
#[macro_export]
macro_rules! on_both_backends {
    (settings = $settings:expr; $($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let db = $crate::TestDatabase::sqlite();
                    super::$name($crate::spawn_app_with(db, $settings).await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = $crate::TestDatabase::postgres().await {
                        super::$name($crate::spawn_app_with(db, $settings).await).await;
                    }
                }
            )*
        }
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends!(settings = $crate::test_settings(); $($name),*);
    };
}

/// The settings [`spawn_app_on`] uses: defaults with the background refresh worker off, and
/// loopback allowed as a destination (mock providers and receivers run on this machine).
pub fn test_settings() -> Settings {
    let mut settings = Settings::default();
    settings.refresh_ahead.enabled = false;
    settings.egress = pipes_core::egress::EgressPolicy::allowing_loopback();
    settings
}

/// Starts a server on a fresh SQLite database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(TestDatabase::sqlite()).await
}

/// Starts a server on the given database, with a `sandbox` environment and a key. The
/// background refresh worker is off, so tests see only the refreshes they cause; turn it on
/// with [`spawn_app_with`].
pub async fn spawn_app_on(db: TestDatabase) -> TestApp {
    spawn_app_with(db, test_settings()).await
}

/// Like [`spawn_app_on`] with explicit settings (short retry delays, …).
pub async fn spawn_app_with(db: TestDatabase, settings: Settings) -> TestApp {
    canary::capture_logs();
    let vault_spec = Vault::generate_key_spec("test");
    let (store, base_url, addr, shutdown) = start_server(&db.url, &vault_spec, settings.clone()).await;
    let environments = Environments::new(store.clone());
    let (env, key) = tenant(&environments, "sandbox").await;
    TestApp {
        base_url,
        addr,
        key,
        env,
        store,
        db,
        environments,
        http: reqwest::Client::new(),
        vault_spec,
        settings,
        shutdown: Some(shutdown),
    }
}

/// Opens the database with its own pool and serves it on a free port, as another process would.
async fn start_server(
    db_url: &str,
    vault_spec: &str,
    settings: Settings,
) -> (Arc<dyn Store>, String, SocketAddr, oneshot::Sender<()>) {
    let store = pipes_store::open(db_url).await.expect("open test database");
    let vault = Vault::from_spec(vault_spec).expect("test vault");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let base_url = format!("http://{addr}");
    let app = pipes_server::App::with_settings(
        store.clone(),
        vault,
        Catalog::builtin().expect("catalog"),
        &base_url,
        settings,
    );
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = pipes_server::serve(app, listener, async {
            let _ = rx.await;
        })
        .await;
    });
    (store, base_url, addr, tx)
}

/// Another server over the same database and vault (its own pool, its own in-process state):
/// stands in for a second `pipes serve` process.
#[derive(Debug)]
pub struct Sibling {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    _shutdown: oneshot::Sender<()>,
}

/// An RFC 3339 time `secs` from now (negative: in the past).
pub fn iso_in(secs: i64) -> String {
    pipes_core::time::format_ms(pipes_core::time::now_ms() + secs * 1000)
}

impl TestApp {
    /// Creates the user-owned integration `mock`: a custom provider served by `mock`, with the
    /// given client credentials and `extra` fields of the create body (`scopes`, …).
    pub async fn create_mock_integration(
        &self,
        mock: &mock_provider::MockProvider,
        client_id: &str,
        client_secret: &str,
        extra: serde_json::Value,
    ) {
        let mut body = serde_json::json!({
            "provider": "mock",
            "enabled": true,
            "credentials": {"type": "custom", "client_id": client_id, "client_secret": client_secret},
            "custom_provider": {
                "name": "Mock",
                "authorization_url": format!("{}/authorize", mock.base_url),
                "token_url": format!("{}/token", mock.base_url),
            }
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let (status, created) = self.post("/data-integrations", body).await;
        assert_eq!(status, 201, "{created}");
    }

    /// A request to `path` authenticated with the app's key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.request_as(&self.key, method, path)
    }

    /// A request authenticated with another key.
    pub fn request_as(&self, key: &str, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(key)
            .header("content-type", "application/json")
    }

    /// Sends a JSON body and returns (status, parsed body or Null).
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut req = self.request(method, path);
        if let Some(b) = body {
            canary::remember_fields(&b);
            req = req.json(&b);
        }
        read(req.send().await.expect("request")).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.call(reqwest::Method::DELETE, path, None).await
    }

    /// `POST /data-integrations/{slug}/token` for a user.
    pub async fn vend(&self, slug: &str, user: &str) -> (u16, serde_json::Value) {
        let path = format!("/data-integrations/{slug}/token");
        self.post(&path, serde_json::json!({ "user_id": user })).await
    }

    /// The user's compatibility connection of `slug`, as the API shows it (asserts 200).
    pub async fn user_account(&self, user: &str, slug: &str) -> serde_json::Value {
        let (status, account) = self
            .get(&format!("/user_management/users/{user}/connected_accounts/{slug}"))
            .await;
        assert_eq!(status, 200, "{account}");
        account
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let resp = self
            .http
            .get(format!("{}/metrics", self.base_url))
            .send()
            .await
            .expect("metrics");
        resp.text().await.expect("metrics text")
    }

    /// Starts another server on the same database and vault.
    pub async fn sibling(&self) -> Sibling {
        let (_, base_url, _, shutdown) = start_server(&self.db.url, &self.vault_spec, self.settings.clone()).await;
        Sibling {
            base_url,
            _shutdown: shutdown,
        }
    }

    /// A second environment with its own key.
    pub async fn other_tenant(&self, name: &str) -> (Environment, String) {
        tenant(&self.environments, name).await
    }
}

/// A new environment and an API key of it.
async fn tenant(environments: &Environments, name: &str) -> (Environment, String) {
    let env = environments.create(name, false).await.expect("environment");
    let key = environments.create_key(&env).await.expect("key");
    canary::remember(key.secret.expose());
    (env, key.secret.expose().to_owned())
}

/// (status, JSON body or Null) of a response; asserts the contract's invariants on the way:
/// every response has an X-Request-ID and every body is JSON.
pub async fn read(resp: reqwest::Response) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let request_id = resp
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    assert!(
        request_id.starts_with("req_"),
        "missing X-Request-ID on a {status} response"
    );
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let bytes = resp.bytes().await.expect("body");
    if bytes.is_empty() {
        return (status, serde_json::Value::Null);
    }
    assert!(
        content_type.starts_with("application/json"),
        "non-JSON body on {status}: {content_type}"
    );
    let body = serde_json::from_slice(&bytes).expect("JSON body");
    canary::remember_fields(&body);
    if status >= 400 {
        let obj: &serde_json::Value = &body;
        assert!(obj["message"].is_string(), "error without message: {obj}");
        assert!(
            obj.get("error").is_none() && obj.get("error_description").is_none(),
            "OAuth-style keys in {obj}"
        );
    }
    (status, body)
}
