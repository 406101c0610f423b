//! A scriptable OAuth 2.0 provider for tests and `pipes dev`, never compiled into the server: an authorize endpoint that
//! redirects at once, a token endpoint with PKCE checks, configurable token lifetime,
//! refresh-token rotation with reuse detection (a reused token revokes its whole grant, as
//! real providers do), failure injection, and counters of what it served.
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A failure the token endpoint answers with, once, instead of working.
#[derive(Debug, Clone)]
pub enum Failure {
    /// `400 {"error": "invalid_grant"}`.
    InvalidGrant,
    /// `500`.
    ServerError,
    /// `429` with `Retry-After`.
    RateLimited(u64),
    /// Waits this long, then answers normally.
    Slow(Duration),
}

/// What the provider served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Authorization requests.
    pub authorizations: u64,
    /// Successful code exchanges.
    pub code_exchanges: u64,
    /// Successful refreshes.
    pub refreshes: u64,
    /// Refresh attempts with a token that had already been used (a broker bug).
    pub reused_refresh_tokens: u64,
    /// Refresh attempts with unknown or revoked tokens.
    pub invalid_refresh_tokens: u64,
    /// Rotated tokens presented again within the rotation grace period (and accepted).
    pub grace_reuses: u64,
    /// Most token requests in progress at once.
    pub max_in_flight: u64,
    /// Token requests that failed PKCE or client authentication.
    pub rejected_requests: u64,
    /// Tokens minted with the client-credentials grant.
    pub client_credentials: u64,
}

#[derive(Debug)]
struct Code {
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    scope: String,
}

#[derive(Debug)]
struct Refresh {
    grant: u64,
    /// When it was exchanged for a new one (rotation).
    used_at: Option<std::time::Instant>,
}

#[derive(Debug)]
struct MockState {
    base_url: String,
    client_id: String,
    client_secret: String,
    lifetime_secs: i64,
    rotation_grace: Duration,
    latency: Duration,
    in_flight: u64,
    /// When each successful refresh was answered (ms since the epoch).
    refresh_times: Vec<i64>,
    rotate: bool,
    deny: bool,
    next_grant: u64,
    revoked_grants: Vec<u64>,
    codes: HashMap<String, Code>,
    refresh_tokens: HashMap<String, Refresh>,
    failures: VecDeque<Failure>,
    counters: Counters,
}

/// A running mock provider.
#[derive(Debug, Clone)]
pub struct MockProvider {
    /// `http://127.0.0.1:PORT`
    pub base_url: String,
    /// Bound address.
    pub addr: SocketAddr,
    state: Arc<Mutex<MockState>>,
}

/// Every token the mock providers of this process issued (the first 100 000), so that test
/// suites can check none of them was kept in plaintext anywhere.
static ISSUED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The tokens issued so far by every mock provider in this process.
pub fn issued_tokens() -> Vec<String> {
    ISSUED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// A new token with `prefix`, remembered in [`issued_tokens`].
fn new_token(prefix: &str) -> String {
    let t = format!("{prefix}_{}", random(24));
    let mut issued = ISSUED.lock().unwrap_or_else(|p| p.into_inner());
    if issued.len() < 100_000 {
        issued.push(t.clone());
    }
    t
}

fn random(n: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(n)
        .map(char::from)
        .collect()
}

impl MockProvider {
    /// Starts a provider on a free loopback port with client `client_id`/`client_secret`.
    pub async fn start(client_id: &str, client_secret: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind mock provider");
        Self::serve(listener, client_id, client_secret)
    }

    /// Serves on an already bound listener (used by `pipes dev`).
    pub fn serve(listener: tokio::net::TcpListener, client_id: &str, client_secret: &str) -> Self {
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(Mutex::new(MockState {
            base_url: format!("http://{addr}"),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            lifetime_secs: 3600,
            rotation_grace: Duration::ZERO,
            latency: Duration::ZERO,
            in_flight: 0,
            refresh_times: Vec::new(),
            rotate: true,
            deny: false,
            next_grant: 1,
            revoked_grants: vec![],
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            failures: VecDeque::new(),
            counters: Counters::default(),
        }));
        let app = Router::new()
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .route("/stats", get(stats))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            addr,
            state,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut MockState) -> T) -> T {
        f(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Access-token lifetime in seconds (default 3600).
    pub fn set_token_lifetime(&self, secs: i64) {
        self.with(|s| s.lifetime_secs = secs);
    }

    /// How long a rotated refresh token is still accepted (default zero: reuse revokes the
    /// grant at once). Okta, Auth0 and others offer such a grace period.
    pub fn set_rotation_grace(&self, grace: Duration) {
        self.with(|s| s.rotation_grace = grace);
    }

    /// How long every token request takes (default none).
    pub fn set_latency(&self, latency: Duration) {
        self.with(|s| s.latency = latency);
    }

    /// When each successful refresh was answered (ms since the epoch), in order.
    pub fn refresh_times(&self) -> Vec<i64> {
        self.with(|s| s.refresh_times.clone())
    }

    /// Whether refreshes rotate the refresh token (default true).
    pub fn set_rotation(&self, rotate: bool) {
        self.with(|s| s.rotate = rotate);
    }

    /// Makes the authorize endpoint answer `error=access_denied`.
    pub fn set_deny(&self, deny: bool) {
        self.with(|s| s.deny = deny);
    }

    /// Queues failures for the next token requests.
    pub fn fail_next(&self, failures: impl IntoIterator<Item = Failure>) {
        self.with(|s| s.failures.extend(failures));
    }

    /// What has been served so far.
    pub fn counters(&self) -> Counters {
        self.with(|s| s.counters)
    }

    /// Revokes every grant, as a user removing the app at the provider would.
    pub fn revoke_all(&self) {
        self.with(|s| {
            let grants: Vec<u64> = s.refresh_tokens.values().map(|r| r.grant).collect();
            s.revoked_grants.extend(grants);
        });
    }

    /// Issues a grant directly (as if a user had consented): (access token, refresh token).
    pub fn issue_grant(&self) -> (String, String) {
        self.with(|s| {
            let grant = s.next_grant;
            s.next_grant += 1;
            let (access, refresh) = (new_token("at"), new_token("rt"));
            s.refresh_tokens
                .insert(refresh.clone(), Refresh { grant, used_at: None });
            (access, refresh)
        })
    }
}

async fn authorize(State(state): State<Arc<Mutex<MockState>>>, Query(q): Query<HashMap<String, String>>) -> Response {
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    s.counters.authorizations += 1;
    let Some(redirect_uri) = q.get("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "missing redirect_uri").into_response();
    };
    if q.get("client_id") != Some(&s.client_id) || q.get("response_type").map(String::as_str) != Some("code") {
        return (StatusCode::BAD_REQUEST, "unknown client or response type").into_response();
    }
    let Ok(mut target) = url::Url::parse(redirect_uri) else {
        return (StatusCode::BAD_REQUEST, "bad redirect_uri").into_response();
    };
    {
        let mut pairs = target.query_pairs_mut();
        if s.deny {
            pairs.append_pair("error", "access_denied");
            pairs.append_pair("error_description", "The user denied the request.");
        } else {
            let code = random(32);
            let challenge = match q.get("code_challenge_method").map(String::as_str) {
                Some("S256") | None => q.get("code_challenge").cloned(),
                Some(_) => return (StatusCode::BAD_REQUEST, "only S256").into_response(),
            };
            let client_id = s.client_id.clone();
            s.codes.insert(
                code.clone(),
                Code {
                    client_id,
                    redirect_uri: redirect_uri.clone(),
                    challenge,
                    scope: q.get("scope").cloned().unwrap_or_default(),
                },
            );
            pairs.append_pair("code", &code);
        }
        if let Some(st) = q.get("state") {
            pairs.append_pair("state", st);
        }
    }
    (StatusCode::FOUND, [(axum::http::header::LOCATION, target.to_string())]).into_response()
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        Json(json!({ "error": error, "error_description": format!("mock provider: {error}") })),
    )
        .into_response()
}

async fn token(State(state): State<Arc<Mutex<MockState>>>, headers: HeaderMap, body: String) -> Response {
    let (failure, latency) = {
        let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
        s.in_flight += 1;
        s.counters.max_in_flight = s.counters.max_in_flight.max(s.in_flight);
        (s.failures.pop_front(), s.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let response = answer_token(&state, failure, headers, body).await;
    state.lock().unwrap_or_else(|p| p.into_inner()).in_flight -= 1;
    response
}

async fn answer_token(
    state: &Arc<Mutex<MockState>>,
    failure: Option<Failure>,
    headers: HeaderMap,
    body: String,
) -> Response {
    match failure {
        Some(Failure::InvalidGrant) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant"),
        Some(Failure::ServerError) => return (StatusCode::INTERNAL_SERVER_ERROR, "upstream down").into_response(),
        Some(Failure::RateLimited(secs)) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", secs.to_string())],
                "slow down",
            )
                .into_response()
        }
        Some(Failure::Slow(d)) => tokio::time::sleep(d).await,
        None => {}
    }
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    let params: HashMap<String, String> = if is_json {
        serde_json::from_str(&body).unwrap_or_default()
    } else {
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
    };
    let (client_id, client_secret) = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(basic) if basic.starts_with("Basic ") => {
            let decoded = STANDARD
                .decode(&basic[6..])
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .unwrap_or_default();
            let (id, secret) = decoded.split_once(':').unwrap_or_default();
            let dec = |s: &str| {
                url::form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            (dec(id), dec(secret))
        }
        _ => (params.get("client_id").cloned(), params.get("client_secret").cloned()),
    };
    let mut s = state.lock().unwrap_or_else(|p| p.into_inner());
    if client_id.as_deref() != Some(&s.client_id) || client_secret.as_deref() != Some(&s.client_secret) {
        s.counters.rejected_requests += 1;
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let scope = match params.get("grant_type").map(String::as_str) {
        Some("authorization_code") => {
            let Some(code) = params.get("code").and_then(|c| s.codes.remove(c)) else {
                s.counters.rejected_requests += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            };
            let verifier_ok = match &code.challenge {
                None => true,
                Some(ch) => params
                    .get("code_verifier")
                    .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == *ch),
            };
            if code.client_id != s.client_id || params.get("redirect_uri") != Some(&code.redirect_uri) || !verifier_ok {
                s.counters.rejected_requests += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            s.counters.code_exchanges += 1;
            let grant = s.next_grant;
            s.next_grant += 1;
            let refresh = new_token("rt");
            s.refresh_tokens
                .insert(refresh.clone(), Refresh { grant, used_at: None });
            return issue(&s, Some(refresh), &code.scope);
        }
        Some("refresh_token") => {
            let presented = params.get("refresh_token").cloned().unwrap_or_default();
            let (grant, used_at) = match s.refresh_tokens.get(&presented) {
                Some(r) => (r.grant, r.used_at),
                None => {
                    s.counters.invalid_refresh_tokens += 1;
                    return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
                }
            };
            let within_grace = used_at.is_some_and(|t| t.elapsed() <= s.rotation_grace);
            if within_grace {
                // Like Okta's rotation grace period: the previous token still works briefly, so
                // a client that died before storing the new one can recover.
                s.counters.grace_reuses += 1;
            } else if used_at.is_some() {
                // Reuse of a rotated token: treat as theft and revoke the whole grant.
                s.counters.reused_refresh_tokens += 1;
                s.revoked_grants.push(grant);
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            if s.revoked_grants.contains(&grant) {
                s.counters.invalid_refresh_tokens += 1;
                return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
            }
            s.counters.refreshes += 1;
            s.refresh_times.push(pipes_core::time::now_ms());
            if s.rotate {
                if let Some(r) = s.refresh_tokens.get_mut(&presented) {
                    r.used_at.get_or_insert_with(std::time::Instant::now);
                }
                let next = new_token("rt");
                s.refresh_tokens.insert(next.clone(), Refresh { grant, used_at: None });
                return issue(&s, Some(next), "");
            }
            String::new()
        }
        Some("client_credentials") => {
            // Shaped like Salesforce's answer: where the API lives and who the client is, and
            // no expires_in (sessions end by the org's policy).
            s.counters.client_credentials += 1;
            return Json(json!({
                "access_token": new_token("at"),
                "token_type": "Bearer",
                "instance_url": s.base_url,
                "id": format!("{}/id/00D000000000001/005000000000001", s.base_url),
                "issued_at": pipes_core::time::now_ms().to_string(),
                "signature": random(24),
            }))
            .into_response();
        }
        _ => return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
    };
    issue(&s, None, &scope)
}

fn issue(s: &MockState, refresh: Option<String>, scope: &str) -> Response {
    let mut body = json!({
        "access_token": new_token("at"),
        "token_type": "Bearer",
        "expires_in": s.lifetime_secs,
    });
    if let Some(r) = refresh {
        body["refresh_token"] = json!(r);
    }
    if !scope.is_empty() {
        body["scope"] = json!(scope);
    }
    Json(body).into_response()
}

async fn stats(State(state): State<Arc<Mutex<MockState>>>) -> Json<serde_json::Value> {
    let c = state.lock().unwrap_or_else(|p| p.into_inner()).counters;
    Json(json!({
        "authorizations": c.authorizations,
        "code_exchanges": c.code_exchanges,
        "refreshes": c.refreshes,
        "reused_refresh_tokens": c.reused_refresh_tokens,
        "invalid_refresh_tokens": c.invalid_refresh_tokens,
        "rejected_requests": c.rejected_requests,
        "client_credentials": c.client_credentials,
    }))
}
