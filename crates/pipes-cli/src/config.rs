//! Configuration: defaults, then `pipes.toml`, then `PIPES_*` environment variables.
//! Validated at start-up; every setting is in the README's configuration table.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use pipes_core::egress::{parse_cidrs, EgressPolicy, IpNet};
use pipes_server::{Rate, ServerLimits};
use serde::Deserialize;

/// Every setting: (environment variable, `pipes.toml` key, meaning). The README lists the same.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "PIPES_LISTEN",
        "listen",
        "address:port the server listens on (default 127.0.0.1:8080)",
    ),
    (
        "PIPES_DATABASE_URL",
        "database_url",
        "sqlite://FILE or postgres://… (default sqlite://./pipes-data/pipes.db)",
    ),
    (
        "PIPES_PUBLIC_URL",
        "public_url",
        "origin browsers and providers reach (default http://<listen>)",
    ),
    (
        "PIPES_VAULT_KEYS",
        "vault_keys",
        "kid:base64key[,kid:base64key…]; the first seals, all open",
    ),
    (
        "PIPES_REFRESH_MARGIN_SECONDS",
        "refresh_margin_seconds",
        "refresh a token when less than min(this, half its lifetime) is left (default 300)",
    ),
    (
        "PIPES_REFRESH_AHEAD_SECONDS",
        "refresh_ahead_seconds",
        "the background worker refreshes tokens with less than min(this, half their lifetime) left; 0 turns it off (default 600)",
    ),
    (
        "PIPES_REFRESH_CONCURRENCY",
        "refresh_concurrency",
        "background refreshes in flight per provider in one process (default 8)",
    ),
    (
        "PIPES_VEND_CACHE_MS",
        "vend_cache_ms",
        "reuse a vending read this long unless this process wrote meanwhile; 0 disables (default 1000)",
    ),
    (
        "PIPES_EVENT_RETENTION_DAYS",
        "event_retention_days",
        "how long events stay readable through GET /events (default 30)",
    ),
    (
        "PIPES_WEBHOOK_RETRY_BASE_MS",
        "webhook_retry_base_ms",
        "first webhook retry delay; doubles per consecutive failure, ±20% jitter (default 30000)",
    ),
    (
        "PIPES_WEBHOOK_RETRY_MAX_SECONDS",
        "webhook_retry_max_seconds",
        "longest delay between webhook retries (default 21600, 6 hours)",
    ),
    (
        "PIPES_WEBHOOK_RETRY_HOURS",
        "webhook_retry_hours",
        "how long a webhook delivery is retried before it is marked failed (default 72)",
    ),
    (
        "PIPES_WEBHOOK_CONCURRENCY",
        "webhook_concurrency",
        "webhook endpoints one process delivers to at once (default 64)",
    ),
    (
        "PIPES_WORKER_POLL_MS",
        "worker_poll_ms",
        "how often background workers look for work other instances created (default 1000)",
    ),
    (
        "PIPES_EGRESS_ALLOW_CIDRS",
        "egress_allow_cidrs",
        "comma-separated CIDRs Pipes may call although they are not public, e.g. 10.20.0.0/16 for a self-hosted provider (default none; pipes dev adds loopback)",
    ),
    (
        "PIPES_EGRESS_TIMEOUT_SECONDS",
        "egress_timeout_seconds",
        "longest a call to a provider's token endpoint may take, answer included (default 15)",
    ),
    (
        "PIPES_EGRESS_MAX_RESPONSE_KB",
        "egress_max_response_kb",
        "largest answer read from a provider's token endpoint (default 1024)",
    ),
    (
        "PIPES_MAX_CONNECTIONS",
        "max_connections",
        "client connections served at once; more wait to be accepted (default 0: the open-file limit, raised to its maximum at start-up, less 256)",
    ),
    (
        "PIPES_HEADER_TIMEOUT_SECONDS",
        "header_timeout_seconds",
        "time a client has to send a request's headers, and longest a kept-alive connection stays idle (default 10)",
    ),
    (
        "PIPES_REQUEST_TIMEOUT_SECONDS",
        "request_timeout_seconds",
        "time from a request's headers to its answer, body upload included; later ones get 503 request_timeout (default 30)",
    ),
    (
        "PIPES_MAX_BODY_KB",
        "max_body_kb",
        "largest request body; larger ones get 413 (default 1024)",
    ),
    (
        "PIPES_RATE_LIMIT_PER_KEY",
        "rate_limit_per_key",
        "requests per second per API key or widget token, bursts of twice that; 0 turns it off (default 1000)",
    ),
    (
        "PIPES_RATE_LIMIT_PER_ADDRESS",
        "rate_limit_per_address",
        "requests per second per client address for requests without a key (hosted pages, provider callbacks), bursts of twice that; 0 turns it off (default 50)",
    ),
    (
        "PIPES_TRUSTED_PROXY_CIDRS",
        "trusted_proxy_cidrs",
        "reverse proxies whose X-Forwarded-For names the client address for rate limits (default none)",
    ),
    (
        "PIPES_LOG",
        "log",
        "log filter, e.g. info or pipes_server=debug (default info)",
    ),
    ("PIPES_LOG_FORMAT", "log_format", "text or json (default text)"),
    (
        "PIPES_CONFIG",
        "",
        "path of the configuration file (default ./pipes.toml when it exists)",
    ),
];

/// `PIPES_*` variables used by the test tooling, not by the server.
const TOOLING_PREFIXES: &[&str] = &["PIPES_TEST_", "PIPES_REQUIRE_", "PIPES_BENCH_"];

/// The default SQLite location.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./pipes-data/pipes.db";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    database_url: Option<String>,
    public_url: Option<String>,
    vault_keys: Option<String>,
    log: Option<String>,
    log_format: Option<String>,
    refresh_margin_seconds: Option<u64>,
    refresh_ahead_seconds: Option<u64>,
    refresh_concurrency: Option<u64>,
    vend_cache_ms: Option<u64>,
    event_retention_days: Option<u64>,
    webhook_retry_base_ms: Option<u64>,
    webhook_retry_max_seconds: Option<u64>,
    webhook_retry_hours: Option<u64>,
    webhook_concurrency: Option<u64>,
    worker_poll_ms: Option<u64>,
    egress_allow_cidrs: Option<String>,
    egress_timeout_seconds: Option<u64>,
    egress_max_response_kb: Option<u64>,
    max_connections: Option<u64>,
    header_timeout_seconds: Option<u64>,
    request_timeout_seconds: Option<u64>,
    max_body_kb: Option<u64>,
    rate_limit_per_key: Option<u64>,
    rate_limit_per_address: Option<u64>,
    trusted_proxy_cidrs: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The validated configuration.
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Database URL.
    pub database_url: String,
    /// Public origin, no trailing slash; `None` = `http://<bound address>`.
    pub public_url: Option<String>,
    /// Vault keys, when configured.
    pub vault_keys: Option<String>,
    /// Log filter.
    pub log: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Maximum refresh margin.
    pub refresh_margin: std::time::Duration,
    /// How long a vending read may be reused.
    pub vend_cache: std::time::Duration,
    /// Proactive refresh lead; zero = off.
    pub refresh_ahead: Duration,
    /// Proactive refreshes per provider in flight.
    pub refresh_concurrency: usize,
    /// Event retention.
    pub event_retention: Duration,
    /// First webhook retry delay.
    pub webhook_retry_base: Duration,
    /// Longest webhook retry delay.
    pub webhook_retry_max: Duration,
    /// How long webhook deliveries are retried.
    pub webhook_retry_for: Duration,
    /// Endpoints delivered to at once.
    pub webhook_concurrency: usize,
    /// Background workers' poll interval.
    pub worker_poll: Duration,
    /// Where outbound requests may go.
    pub egress: EgressPolicy,
    /// Limits of incoming requests.
    pub limits: ServerLimits,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("database_url", &pipes_store::redact_url(&self.database_url))
            .field("public_url", &self.public_url)
            .field("vault_keys", &self.vault_keys.as_ref().map(|_| "[REDACTED]"))
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// A whole-number setting: the variable, else the file, else the default; within `range`.
fn number(var: &str, file: Option<u64>, default: u64, range: RangeInclusive<u64>) -> anyhow::Result<u64> {
    let value = match env(var) {
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .with_context(|| format!("{var} '{raw}' must be a whole number"))?,
        None => file.unwrap_or(default),
    };
    if !range.contains(&value) {
        bail!("{var} must be from {} to {}, not {value}", range.start(), range.end());
    }
    Ok(value)
}

/// A list of CIDRs: the variable, else the file, else none.
fn cidrs(var: &str, file: Option<&str>) -> anyhow::Result<Vec<IpNet>> {
    match env(var).as_deref().or(file) {
        Some(raw) => parse_cidrs(raw).map_err(|e| anyhow::anyhow!("{var}: {e}")),
        None => Ok(vec![]),
    }
}

impl Config {
    /// Loads the configuration; `file` overrides `PIPES_CONFIG` and `./pipes.toml`.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let path: Option<PathBuf> = file
            .map(Path::to_path_buf)
            .or_else(|| env("PIPES_CONFIG").map(PathBuf::from))
            .or_else(|| Path::new("pipes.toml").exists().then(|| PathBuf::from("pipes.toml")));
        let from_file = match &path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                toml::from_str::<FileConfig>(&text).with_context(|| format!("invalid {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        let f = &from_file;
        let refresh_margin_seconds = number(
            "PIPES_REFRESH_MARGIN_SECONDS",
            f.refresh_margin_seconds,
            300,
            0..=86_400,
        )?;
        let vend_cache_ms = number("PIPES_VEND_CACHE_MS", f.vend_cache_ms, 1000, 0..=60_000)?;
        let ahead_s = number("PIPES_REFRESH_AHEAD_SECONDS", f.refresh_ahead_seconds, 600, 0..=86_400)?;
        let refresh_concurrency = number("PIPES_REFRESH_CONCURRENCY", f.refresh_concurrency, 8, 1..=256)?;
        let retention_days = number("PIPES_EVENT_RETENTION_DAYS", f.event_retention_days, 30, 1..=3650)?;
        let retry_base_ms = number(
            "PIPES_WEBHOOK_RETRY_BASE_MS",
            f.webhook_retry_base_ms,
            30_000,
            10..=3_600_000,
        )?;
        let retry_max_s = number(
            "PIPES_WEBHOOK_RETRY_MAX_SECONDS",
            f.webhook_retry_max_seconds,
            21_600,
            1..=86_400,
        )?;
        let retry_hours = number("PIPES_WEBHOOK_RETRY_HOURS", f.webhook_retry_hours, 72, 1..=720)?;
        let concurrency = number("PIPES_WEBHOOK_CONCURRENCY", f.webhook_concurrency, 64, 1..=1024)?;
        let poll_ms = number("PIPES_WORKER_POLL_MS", f.worker_poll_ms, 1000, 20..=60_000)?;
        let egress_timeout = number("PIPES_EGRESS_TIMEOUT_SECONDS", f.egress_timeout_seconds, 15, 1..=300)?;
        let egress_kb = number(
            "PIPES_EGRESS_MAX_RESPONSE_KB",
            f.egress_max_response_kb,
            1024,
            16..=65_536,
        )?;
        let egress = EgressPolicy {
            allow: cidrs("PIPES_EGRESS_ALLOW_CIDRS", f.egress_allow_cidrs.as_deref())?,
            timeout: Duration::from_secs(egress_timeout),
            max_response_bytes: usize::try_from(egress_kb * 1024).unwrap_or(1024 * 1024),
            ..EgressPolicy::default()
        };
        let limits = Self::limits(f)?;
        let listen_raw = env("PIPES_LISTEN")
            .or(from_file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_raw
            .parse()
            .with_context(|| format!("PIPES_LISTEN '{listen_raw}' is not an address:port such as 127.0.0.1:8080"))?;
        let database_url = env("PIPES_DATABASE_URL")
            .or(from_file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.into());
        pipes_store::Backend::of(&database_url).map_err(|e| anyhow::anyhow!("{e}"))?;
        let public_url = env("PIPES_PUBLIC_URL").or(from_file.public_url);
        if let Some(public_url) = &public_url {
            let parsed = url::Url::parse(public_url)
                .with_context(|| format!("PIPES_PUBLIC_URL '{public_url}' is not an absolute URL"))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.path() != "/" || parsed.query().is_some() {
                bail!("PIPES_PUBLIC_URL must be an origin such as https://pipes.example.com (no path, no query)");
            }
        }
        let log_format = match env("PIPES_LOG_FORMAT").or(from_file.log_format).as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("PIPES_LOG_FORMAT must be text or json, not '{other}'"),
        };
        Ok(Self {
            refresh_margin: Duration::from_secs(refresh_margin_seconds),
            vend_cache: Duration::from_millis(vend_cache_ms),
            refresh_ahead: Duration::from_secs(ahead_s),
            refresh_concurrency: usize::try_from(refresh_concurrency).unwrap_or(8),
            event_retention: Duration::from_secs(retention_days * 86_400),
            webhook_retry_base: Duration::from_millis(retry_base_ms),
            webhook_retry_max: Duration::from_secs(retry_max_s),
            webhook_retry_for: Duration::from_secs(retry_hours * 3600),
            webhook_concurrency: usize::try_from(concurrency).unwrap_or(64),
            worker_poll: Duration::from_millis(poll_ms),
            egress,
            limits,
            listen,
            database_url,
            public_url: public_url.map(|u| u.trim_end_matches('/').to_owned()),
            vault_keys: env("PIPES_VAULT_KEYS").or(from_file.vault_keys),
            log: env("PIPES_LOG").or(from_file.log).unwrap_or_else(|| "info".into()),
            log_format,
        })
    }

    fn limits(f: &FileConfig) -> anyhow::Result<ServerLimits> {
        let per_second = |var, file, default| -> anyhow::Result<Rate> {
            Ok(Rate::per_second(u32::try_from(number(
                var,
                file,
                default,
                0..=1_000_000,
            )?)?))
        };
        let kb = |var, file, default, range| -> anyhow::Result<usize> {
            Ok(usize::try_from(number(var, file, default, range)? * 1024)?)
        };
        Ok(ServerLimits {
            max_connections: usize::try_from(number("PIPES_MAX_CONNECTIONS", f.max_connections, 0, 0..=1_000_000)?)?,
            header_timeout: Duration::from_secs(number(
                "PIPES_HEADER_TIMEOUT_SECONDS",
                f.header_timeout_seconds,
                10,
                1..=600,
            )?),
            request_timeout: Duration::from_secs(number(
                "PIPES_REQUEST_TIMEOUT_SECONDS",
                f.request_timeout_seconds,
                30,
                5..=3600,
            )?),
            max_body_bytes: kb("PIPES_MAX_BODY_KB", f.max_body_kb, 1024, 16..=1_048_576)?,
            per_key: per_second("PIPES_RATE_LIMIT_PER_KEY", f.rate_limit_per_key, 1000)?,
            per_address: per_second("PIPES_RATE_LIMIT_PER_ADDRESS", f.rate_limit_per_address, 50)?,
            trusted_proxies: cidrs("PIPES_TRUSTED_PROXY_CIDRS", f.trusted_proxy_cidrs.as_deref())?,
            ..ServerLimits::default()
        })
    }

    /// The public origin for a server bound to `bound`: the configured one, else
    /// `http://<bound address>` (with `localhost` for a wildcard address).
    pub fn public_url_for(&self, bound: SocketAddr) -> String {
        match &self.public_url {
            Some(u) => u.clone(),
            None if bound.ip().is_unspecified() => format!("http://localhost:{}", bound.port()),
            None => format!("http://{bound}"),
        }
    }

    /// `PIPES_*` variables that are set but mean nothing to Pipes (typos, old names).
    pub fn unknown_env_vars() -> Vec<String> {
        std::env::vars()
            .map(|(k, _)| k)
            .filter(|k| k.starts_with("PIPES_"))
            .filter(|k| !SETTINGS.iter().any(|(name, _, _)| name == k))
            .filter(|k| !TOOLING_PREFIXES.iter().any(|p| k.starts_with(p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_help_names_every_setting() {
        let main = include_str!("main.rs");
        for (var, _, _) in SETTINGS.iter().filter(|(var, _, _)| *var != "PIPES_CONFIG") {
            assert!(main.contains(var), "pipes --help lacks {var}");
        }
    }

    #[test]
    fn the_readme_documents_every_setting() {
        let readme = include_str!("../../../README.md");
        for (var, key, _) in SETTINGS {
            assert!(readme.contains(&format!("`{var}`")), "README lacks {var}");
            if !key.is_empty() {
                assert!(readme.contains(&format!("`{key}`")), "README lacks the file key {key}");
            }
        }
    }
}
