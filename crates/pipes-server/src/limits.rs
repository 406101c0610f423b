//! What keeps one client from making the server unreachable: timeouts for each phase of a
//! request, a connection cap, bounded request heads and bodies, and rate limits per API key
//! (or widget token) and per client address.

use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request};
use axum::http::{header, StatusCode};
use ipnet::IpNet;
use pipes_core::metrics::Metrics;

use crate::error::ApiError;

/// The server's own limits; `Default` is what `pipes serve` uses without configuration.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Time a client has to send a request's head, on a new connection and between requests
    /// on a kept-alive one: a silent or dribbling connection is closed after it.
    pub header_timeout: Duration,
    /// Time from a request's head to the start of its answer, body upload included.
    pub request_timeout: Duration,
    /// Connections served at once; further ones wait to be accepted. `0` = derived from the
    /// process's file-descriptor limit.
    pub max_connections: usize,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest request target (path and query).
    pub max_uri_bytes: usize,
    /// Largest request head (all header names and values).
    pub max_header_bytes: usize,
    /// Most headers in one request (the HTTP layer itself refuses more than 100, without a
    /// JSON body).
    pub max_headers: usize,
    /// Requests per second per API key or widget token; `0` = unlimited.
    pub per_key: Rate,
    /// Requests per second per client address for requests without a key (hosted pages,
    /// provider callbacks); `0` = unlimited.
    pub per_address: Rate,
    /// Peers whose `X-Forwarded-For` is believed (a reverse proxy in front of Pipes).
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 0,
            max_body_bytes: 1024 * 1024,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            per_key: Rate::per_second(1000),
            per_address: Rate::per_second(50),
            trusted_proxies: vec![],
        }
    }
}

/// A sustained rate with a burst of two seconds' worth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests per second; `0` = unlimited.
    pub per_second: u32,
}

impl Rate {
    /// `n` requests per second (bursts of `2n`).
    pub fn per_second(n: u32) -> Self {
        Self { per_second: n }
    }

    fn burst(self) -> f64 {
        f64::from(self.per_second) * 2.0
    }
}

/// The connection cap when none is configured: the descriptor limit, less room for the
/// database pool, outbound requests and files.
pub fn default_max_connections(nofile: u64) -> usize {
    usize::try_from(nofile.saturating_sub(256).clamp(64, 100_000)).unwrap_or(1024)
}

/// Token buckets by key, in shards so that concurrent requests rarely wait on one lock. Keys
/// are already keyed hashes ([`KeyHasher`]): they pick the shard and index the map as they are.
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    shards: Vec<Mutex<HashMap<u64, Bucket, BuildHasherDefault<Prehashed>>>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets kept per shard before full ones are dropped.
const SHARD_CAPACITY: usize = 4096;
const SHARDS: u64 = 16;

impl RateLimiter {
    /// A limiter at `rate`.
    pub fn new(rate: Rate) -> Self {
        Self {
            rate,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::default())).collect(),
        }
    }

    /// Takes one request's token for `key`: `Ok` when there was one, else how long until
    /// there is.
    pub fn take(&self, key: u64) -> Result<(), Duration> {
        if self.rate.per_second == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let per_second = f64::from(self.rate.per_second);
        let burst = self.rate.burst();
        let shard = usize::try_from(key % SHARDS).unwrap_or(0);
        let mut buckets = self.shards[shard].lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= SHARD_CAPACITY && !buckets.contains_key(&key) {
            // Forget keys whose bucket has refilled: they are as if never seen.
            buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * per_second < burst);
        }
        let bucket = buckets.entry(key).or_insert(Bucket { tokens: burst, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * per_second).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_second))
        }
    }
}

/// A map hasher for keys that are hashes already.
#[derive(Debug, Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Turns API keys and addresses into limiter keys: a multiply-xorshift mix over the bytes, eight
/// at a time, from a random start per process, so keys are never kept as presented and cannot
/// be aimed at one bucket. Cheap: this runs on every request.
#[derive(Debug)]
pub struct KeyHasher(u64);

impl KeyHasher {
    fn new() -> Self {
        Self(std::collections::hash_map::RandomState::new().hash_one(0u64))
    }

    fn hash(&self, bytes: &[u8]) -> u64 {
        let mix = |h: u64, word: u64| {
            let h = (h ^ word).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            h ^ (h >> 31)
        };
        let mut h = self.0 ^ bytes.len() as u64;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            h = mix(h, u64::from_le_bytes(word));
        }
        let mut last = [0u8; 8];
        last[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
        mix(mix(h, u64::from_le_bytes(last)), self.0)
    }
}

/// The checks made on every request before it is routed: the size of its head and declared
/// body, and its rate limit.
#[derive(Debug)]
pub struct Admission {
    limits: ServerLimits,
    keys: RateLimiter,
    addresses: RateLimiter,
    hasher: KeyHasher,
}

/// Paths monitoring polls: never rate limited.
const MONITORING: [&str; 3] = ["/healthz", "/readyz", "/metrics"];

impl Admission {
    /// Admission under `limits`.
    pub fn new(limits: &ServerLimits) -> Self {
        Self {
            keys: RateLimiter::new(limits.per_key),
            addresses: RateLimiter::new(limits.per_address),
            limits: limits.clone(),
            hasher: KeyHasher::new(),
        }
    }

    /// Admits `req`, or says why not.
    pub fn admit(&self, req: &Request, metrics: &Metrics) -> Result<(), ApiError> {
        let l = &self.limits;
        let target = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
        if target > l.max_uri_bytes {
            return Err(ApiError::new(
                StatusCode::URI_TOO_LONG,
                "uri_too_long",
                format!("The request target is longer than {} bytes.", l.max_uri_bytes),
            ));
        }
        // One pass over the headers: their size, and the two this needs.
        let headers = req.headers();
        let (mut head_bytes, mut declared, mut authorization) = (0usize, None, None);
        for (name, value) in headers {
            head_bytes += name.as_str().len() + value.len() + 4;
            if name == header::CONTENT_LENGTH {
                declared = Some(value);
            } else if name == header::AUTHORIZATION {
                authorization = Some(value);
            }
        }
        if headers.len() > l.max_headers || head_bytes > l.max_header_bytes {
            return Err(ApiError::new(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request_header_fields_too_large",
                format!(
                    "The request headers are larger than {} bytes or more than {} fields.",
                    l.max_header_bytes, l.max_headers
                ),
            ));
        }
        let declared = declared.and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > l.max_body_bytes as u64) {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("The request body is larger than {} bytes.", l.max_body_bytes),
            ));
        }
        if MONITORING.contains(&req.uri().path()) {
            return Ok(());
        }
        let bearer = authorization
            .map(|v| v.as_bytes())
            .filter(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
            .map(|v| v[7..].trim_ascii());
        let (wait, by) = match bearer {
            Some(key) => (self.keys.take(self.hasher.hash(key)), "key"),
            None => {
                let peer = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
                let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
                let client = match client_address(peer, forwarded, &l.trusted_proxies) {
                    IpAddr::V4(ip) => self.hasher.hash(&ip.octets()),
                    IpAddr::V6(ip) => self.hasher.hash(&ip.octets()),
                };
                (self.addresses.take(client), "address")
            }
        };
        wait.map_err(|wait| {
            metrics.rate_limited(by);
            ApiError::rate_limited(wait.as_secs_f64().ceil().max(1.0) as u64)
        })
    }
}

/// The client's address: the peer, or for a trusted proxy the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_address(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    forwarded_for
        .into_iter()
        .flat_map(|v| v.rsplit(','))
        .map_while(|hop| hop.trim().parse::<IpAddr>().ok())
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(Rate::per_second(5));
        let hasher = KeyHasher::new();
        let (k, other) = (hasher.hash(b"sk_test_a"), hasher.hash(b"sk_test_b"));
        assert_ne!(k, other);
        for _ in 0..10 {
            assert!(limiter.take(k).is_ok());
        }
        let wait = limiter.take(k).expect_err("burst spent");
        assert!(wait <= Duration::from_millis(200) && wait > Duration::ZERO, "{wait:?}");
        assert!(limiter.take(other).is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(250));
        assert!(limiter.take(k).is_ok(), "one token back after 1/5 s");
        assert!(RateLimiter::new(Rate::per_second(0)).take(k).is_ok(), "0 = unlimited");
    }

    #[test]
    fn only_trusted_proxies_name_the_client() {
        let trusted = vec!["10.0.0.0/8".parse().expect("net")];
        let peer: IpAddr = "10.0.0.2".parse().expect("ip");
        let outsider: IpAddr = "203.0.113.9".parse().expect("ip");
        assert_eq!(
            client_address(peer, Some("198.51.100.7, 10.0.0.3"), &trusted),
            "198.51.100.7".parse::<IpAddr>().expect("ip")
        );
        assert_eq!(client_address(outsider, Some("198.51.100.7"), &trusted), outsider);
        assert_eq!(client_address(peer, Some("garbage"), &trusted), peer);
        assert_eq!(client_address(peer, None, &[]), peer);
    }
}
