//! Every request Pipes sends goes through one policy: token, refresh and client-credential
//! calls to providers, webhook deliveries, and Relay. The policy decides where a request may go
//! and how much of the answer is read:
//!
//! - Addresses are checked after DNS resolution, and the connection is made to the address
//!   that was checked (the resolver below is the connector's only source of addresses), so a
//!   name that changes its answer between check and use cannot reach a refused address.
//!   Loopback, private, link-local (cloud metadata), CGNAT, multicast, documentation and
//!   reserved ranges are refused unless the operator allows a range by name.
//! - Redirects are never followed, proxies from the environment are not used, and every
//!   request has a connect timeout and a total timeout.
//! - Response bodies are read up to a cap; a larger answer is an error, not a memory spike.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use ipnet::IpNet;

use crate::ServiceError;

/// Where outbound requests may go and how long and how much they may take.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    /// Ranges allowed although they are not public (`PIPES_EGRESS_ALLOW_CIDRS`).
    pub allow: Vec<IpNet>,
    /// Total time of one request, answer included, unless the caller sets its own.
    pub timeout: Duration,
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Largest response body read into memory.
    pub max_response_bytes: usize,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self {
            allow: vec![],
            timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            max_response_bytes: 1024 * 1024,
        }
    }
}

impl EgressPolicy {
    /// The default policy plus loopback: what `pipes dev` and the test suites use, where the
    /// providers and webhook receivers run on the same machine.
    pub fn allowing_loopback() -> Self {
        Self {
            allow: parse_cidrs("127.0.0.0/8,::1/128").unwrap_or_default(),
            ..Self::default()
        }
    }

    /// Why `ip` may not be called, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        let ip = ip.to_canonical();
        let reason = non_public(ip)?;
        if self.allow.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        Some(reason)
    }

    /// Checks what can be known of a destination without resolving it: the scheme, and the
    /// host when it is an address or a `localhost` name. Used when a URL is saved (webhook
    /// endpoints, custom providers) and before every request; names are checked again, after
    /// resolution, when the request is made.
    pub fn check_url(&self, url: &url::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Invalid("only http and https URLs can be called"));
        }
        let literal = match url.host() {
            Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
            Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
            Some(url::Host::Domain(d)) if is_localhost_name(d) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(EgressError::Invalid("the URL has no host")),
        };
        match self.refusal(literal) {
            Some(reason) => Err(EgressError::Refused {
                host: url.host_str().unwrap_or_default().to_owned(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// [`EgressPolicy::check_url`] for a URL being saved in `field`, as a validation error.
    pub fn check_saved(&self, field: &str, raw: &str) -> Result<(), ServiceError> {
        let Ok(url) = url::Url::parse(raw) else {
            return Ok(()); // the field's own parser reports malformed URLs
        };
        self.check_url(&url)
            .map_err(|e| ServiceError::invalid_field(field, e.code(), format!("{field} cannot be called: {e}.")))
    }
}

/// `localhost` and its subdomains resolve to loopback by definition (RFC 6761).
fn is_localhost_name(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    d.eq_ignore_ascii_case("localhost") || d.to_ascii_lowercase().ends_with(".localhost")
}

/// Parses `PIPES_EGRESS_ALLOW_CIDRS`: comma-separated CIDRs; a bare address is a single host.
pub fn parse_cidrs(raw: &str) -> Result<Vec<IpNet>, String> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map(|n| n.trunc())
                .map_err(|_| format!("'{s}' is not a CIDR such as 10.0.0.0/8 or fd00::/8"))
        })
        .collect()
}

/// The kind of non-public range `ip` is in, or `None` for a public unicast address.
fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_private() => "private",
        (169, 254, _) => "link-local (cloud metadata)",
        (100, 64..=127, _) => "shared (CGNAT)",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        (192, 0, 0) | (198, 18..=19, _) => "reserved",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        _ => return None,
    })
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    // Addresses that carry an IPv4 address inside are judged by it.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    Some(match s {
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_unspecified() => "unspecified",
        [0, 0, 0, 0, 0, 0, _, _] => "reserved",
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return non_public_v4(embedded(hi, lo)),
        [0x2002, hi, lo, ..] => return non_public_v4(embedded(hi, lo)),
        [0x0100, 0, 0, 0, ..] => "reserved",
        [0x2001, 0x0000..=0x01ff, ..] => "reserved",
        [0x2001, 0x0db8, ..] => "documentation",
        [x, ..] if x & 0xfe00 == 0xfc00 => "private (unique local)",
        [x, ..] if x & 0xffc0 == 0xfe80 || x & 0xffc0 == 0xfec0 => "link-local",
        [x, ..] if x & 0xff00 == 0xff00 => "multicast",
        _ => return None,
    })
}

/// Why an outbound request did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// The destination is in a range the policy refuses.
    #[error("{host} is a {reason} address, which Pipes does not call (PIPES_EGRESS_ALLOW_CIDRS can allow a range)")]
    Refused {
        /// The host as written in the URL.
        host: String,
        /// The kind of range.
        reason: &'static str,
    },
    /// The URL cannot be called at all.
    #[error("{0}")]
    Invalid(&'static str),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// No connection, or the connection broke.
    #[error("could not connect")]
    Unreachable,
    /// The answer was larger than the policy reads.
    #[error("the response was larger than {limit} bytes")]
    TooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
}

impl EgressError {
    /// A short code for records and error codes.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Refused { .. } | Self::Invalid(_) => "egress_refused",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::TooLarge { .. } => "response_too_large",
        }
    }

    fn from_reqwest(e: &reqwest::Error) -> Self {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(s) = source {
            if let Some(refused) = s.downcast_ref::<Self>() {
                return refused.clone();
            }
            source = s.source();
        }
        if e.is_timeout() {
            Self::Timeout
        } else {
            Self::Unreachable
        }
    }
}

/// The resolver the HTTP client connects through: system DNS, then the policy. Only addresses
/// the policy allows are handed to the connector.
#[derive(Debug)]
struct CheckedResolver {
    policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.refusal(addr.ip()) {
                    Some(reason) => {
                        refused = Some(reason);
                        false
                    }
                    None => true,
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(reason)) => Err(Box::new(EgressError::Refused { host, reason }) as _),
                (true, None) => Err(Box::new(EgressError::Unreachable) as _),
                (false, _) => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// The one HTTP client for outbound requests, under an [`EgressPolicy`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Egress {
    http: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl Egress {
    /// A client under `policy`.
    pub fn new(policy: EgressPolicy) -> Self {
        let policy = Arc::new(policy);
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(CheckedResolver { policy: policy.clone() }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(policy.timeout)
            .connect_timeout(policy.connect_timeout)
            .user_agent(concat!("pipes/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_default();
        Self { http, policy }
    }

    /// The policy in force.
    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    /// Starts a request (send it with [`Egress::send`]).
    pub fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http.request(method, url)
    }

    /// Sends a request the policy allows. Redirect answers come back as they are.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Result<reqwest::Response, EgressError> {
        let request = request
            .build()
            .map_err(|_| EgressError::Invalid("the request could not be built"))?;
        self.policy.check_url(request.url())?;
        self.http
            .execute(request)
            .await
            .map_err(|e| EgressError::from_reqwest(&e))
    }

    /// Reads a whole response body, refusing one larger than the policy's cap.
    pub async fn read_body(&self, mut response: reqwest::Response) -> Result<Vec<u8>, EgressError> {
        let limit = self.policy.max_response_bytes;
        if response.content_length().is_some_and(|n| n > limit as u64) {
            return Err(EgressError::TooLarge { limit });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| EgressError::from_reqwest(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(EgressError::TooLarge { limit });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(policy: &EgressPolicy, ip: &str) -> bool {
        policy.refusal(ip.parse().expect("ip")).is_some()
    }

    #[test]
    fn non_public_ranges_are_refused_and_public_ones_pass() {
        let p = EgressPolicy::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "2001:db8::1",
        ] {
            assert!(refused(&p, ip), "{ip} should be refused");
        }
        for ip in [
            "8.8.8.8",
            "140.82.112.3",
            "2606:4700::1111",
            "2001:4860:4860::8888",
            "64:ff9b::808:808",
        ] {
            assert!(!refused(&p, ip), "{ip} should pass");
        }
    }

    #[test]
    fn allowed_ranges_pass_and_nothing_else_does() {
        let p = EgressPolicy {
            allow: parse_cidrs("10.0.0.0/8, 127.0.0.1").expect("cidrs"),
            ..EgressPolicy::default()
        };
        assert!(!refused(&p, "10.9.8.7"));
        assert!(!refused(&p, "127.0.0.1"));
        assert!(!refused(&p, "::ffff:10.0.0.1"), "a mapped address is judged as IPv4");
        assert!(refused(&p, "127.0.0.2"));
        assert!(refused(&p, "192.168.0.1"));
        assert!(parse_cidrs("10.0.0.0/33").is_err());
        assert!(parse_cidrs("intranet").is_err());
    }

    #[test]
    fn literal_and_localhost_urls_are_checked_before_any_lookup() {
        let p = EgressPolicy::default();
        let check = |u: &str| p.check_url(&url::Url::parse(u).expect("url"));
        assert!(matches!(
            check("http://127.0.0.1:8080/x"),
            Err(EgressError::Refused { .. })
        ));
        assert!(matches!(check("http://0x7f.1/"), Err(EgressError::Refused { .. })));
        assert!(matches!(check("https://[::1]/"), Err(EgressError::Refused { .. })));
        assert!(matches!(
            check("http://api.localhost/"),
            Err(EgressError::Refused { .. })
        ));
        assert!(matches!(check("ftp://example.com/"), Err(EgressError::Invalid(_))));
        assert!(check("https://example.com/token").is_ok());
        assert!(EgressPolicy::allowing_loopback()
            .check_url(&url::Url::parse("http://localhost:1/").expect("url"))
            .is_ok());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_a_refused_address_is_never_connected() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let accepted = tokio::spawn(async move { listener.accept().await.is_ok() });
        // Past the URL check (which would catch `localhost` by name): the client's own
        // resolver must refuse it after the lookup.
        let egress = Egress::new(EgressPolicy::default());
        let err = egress
            .http
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .expect_err("refused");
        let err = EgressError::from_reqwest(&err);
        assert!(
            matches!(err, EgressError::Refused { reason: "loopback", .. }),
            "{err:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!accepted.is_finished(), "no connection was made");
        accepted.abort();
    }

    #[tokio::test]
    async fn large_answers_are_refused_without_reading_them_whole() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.expect("accept");
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            // Chunked, so the size is not announced: the cap must hold while reading.
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                .await;
            let chunk = vec![b'a'; 64 * 1024];
            for _ in 0..1024 {
                let head = format!("{:x}\r\n", chunk.len());
                if socket.write_all(head.as_bytes()).await.is_err()
                    || socket.write_all(&chunk).await.is_err()
                    || socket.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
            }
        });
        let egress = Egress::new(EgressPolicy {
            max_response_bytes: 256 * 1024,
            ..EgressPolicy::allowing_loopback()
        });
        let resp = egress
            .send(egress.request(reqwest::Method::GET, &format!("http://127.0.0.1:{port}/")))
            .await
            .expect("answer");
        assert_eq!(
            egress.read_body(resp).await,
            Err(EgressError::TooLarge { limit: 256 * 1024 })
        );
    }
}
