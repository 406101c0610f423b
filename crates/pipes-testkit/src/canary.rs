//! The secrets canary. Every secret and token a test sends or receives through [`TestApp`]
//! (API keys, provider tokens, client secrets, webhook signing secrets, widget tokens) and
//! every token a mock provider issues is remembered; when a test's server goes away, its
//! database (SQLite file, WAL and shared memory, or a `pg_dump`) and everything the process
//! logged are searched for each of them. One found is a failed test: secrets are sealed at
//! rest and never logged.
//!
//! [`TestApp`]: crate::TestApp

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use crate::TestDatabase;

/// JSON fields whose string values are secrets.
const SECRET_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "client_secret",
    "secret",
    "api_key",
    "token",
];

/// Shorter values are too likely to occur by chance.
const MIN_LEN: usize = 10;

static KNOWN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

/// Remembers a secret.
pub fn remember(secret: &str) {
    if secret.len() >= MIN_LEN {
        KNOWN
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(secret.to_owned());
    }
}

/// Remembers the secrets in a request or response body.
pub fn remember_fields(value: &serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if SECRET_FIELDS.contains(&k.as_str()) => remember(s),
                    other => remember_fields(other),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(remember_fields),
        _ => {}
    }
}

#[derive(Clone, Copy)]
struct Capture;

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Sends everything the process logs (Pipes at debug, the rest at info) to the canary's buffer.
pub(crate) fn capture_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "pipes_core=debug,pipes_server=debug,pipes_store=debug,info",
            ))
            .with_writer(|| Capture)
            .with_ansi(false)
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
}

/// Panics when a remembered secret is in `db` or in the logs.
pub(crate) fn check(db: &TestDatabase) {
    let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    known.extend(
        pipes_mock_provider::issued_tokens()
            .into_iter()
            .filter(|t| t.len() >= MIN_LEN),
    );
    if known.is_empty() {
        return;
    }
    let at_rest = db.bytes();
    let logs = LOGS.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut found = vec![];
    for secret in &known {
        let needle = secret.as_bytes();
        for (place, hay) in [("database", &at_rest), ("log", &logs)] {
            if hay.windows(needle.len()).any(|w| w == needle) {
                found.push(format!(
                    "{}… in the {place}",
                    secret.chars().take(6).collect::<String>()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets canary: {} of {} secrets found in plaintext: {}",
        found.len(),
        known.len(),
        found.join(", ")
    );
}
