//! Counters and histograms for operators, rendered in the Prometheus text format on
//! `/metrics`. Labels are provider slugs and outcomes only: never an owner, a token or a tenant.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// How a refresh ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RefreshOutcome {
    /// New tokens stored.
    Success,
    /// The provider was unreachable, slow or busy: tried again later.
    Transient,
    /// The grant is dead: the account needs reauthorization.
    Permanent,
}

impl RefreshOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Transient => "transient_failure",
            Self::Permanent => "permanent_failure",
        }
    }
}

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The process's metrics. Cheap to update from any task.
#[derive(Debug, Default)]
pub struct Metrics {
    refreshes: Mutex<BTreeMap<(String, RefreshOutcome), u64>>,
    refresh_latency: Mutex<BTreeMap<String, Histogram>>,
    refresh_queue_depth: AtomicI64,
    refresh_lease_takeovers: AtomicU64,
    webhook_lease_takeovers: AtomicU64,
    webhook_attempts: Mutex<BTreeMap<&'static str, u64>>,
    connections_open: AtomicI64,
    rate_limited: Mutex<BTreeMap<&'static str, u64>>,
    requests_timed_out: AtomicU64,
}

impl Metrics {
    /// Records one refresh against `provider`.
    pub fn refresh(&self, provider: &str, outcome: RefreshOutcome, latency: Duration) {
        *self
            .refreshes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((provider.to_owned(), outcome))
            .or_default() += 1;
        self.refresh_latency
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(provider.to_owned())
            .or_default()
            .observe(latency.as_secs_f64());
    }

    /// Connections due for a proactive refresh, as last counted.
    pub fn set_refresh_queue_depth(&self, n: i64) {
        self.refresh_queue_depth.store(n, Ordering::Relaxed);
    }

    /// A refresh lease taken over from a process that stopped holding it.
    pub fn refresh_lease_takeover(&self) {
        self.refresh_lease_takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook endpoint taken over from a process that stopped delivering to it.
    pub fn webhook_lease_takeover(&self) {
        self.webhook_lease_takeovers.fetch_add(1, Ordering::Relaxed);
    }

    /// One delivery attempt: `delivered` or `failed`.
    pub fn webhook_attempt(&self, delivered: bool) {
        let key = if delivered { "delivered" } else { "failed" };
        *self
            .webhook_attempts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key)
            .or_default() += 1;
    }

    /// A client connection opened (`1`) or closed (`-1`).
    pub fn connection(&self, delta: i64) {
        self.connections_open.fetch_add(delta, Ordering::Relaxed);
    }

    /// A request refused by the rate limit `by` (`key` or `address`).
    pub fn rate_limited(&self, by: &'static str) {
        *self
            .rate_limited
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(by)
            .or_default() += 1;
    }

    /// A request that ran out of time.
    pub fn request_timed_out(&self) {
        self.requests_timed_out.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP pipes_refreshes_total Token refreshes by provider and outcome."
        );
        let _ = writeln!(out, "# TYPE pipes_refreshes_total counter");
        for ((provider, outcome), n) in self.refreshes.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(
                out,
                "pipes_refreshes_total{{provider=\"{}\",outcome=\"{}\"}} {n}",
                escape(provider),
                outcome.label()
            );
        }
        let _ = writeln!(
            out,
            "# HELP pipes_refresh_duration_seconds Time a provider took to answer a refresh."
        );
        let _ = writeln!(out, "# TYPE pipes_refresh_duration_seconds histogram");
        for (provider, h) in self.refresh_latency.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let p = escape(provider);
            for (bound, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "pipes_refresh_duration_seconds_bucket{{provider=\"{p}\",le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "pipes_refresh_duration_seconds_bucket{{provider=\"{p}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(out, "pipes_refresh_duration_seconds_sum{{provider=\"{p}\"}} {}", h.sum);
            let _ = writeln!(
                out,
                "pipes_refresh_duration_seconds_count{{provider=\"{p}\"}} {}",
                h.count
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: String| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {v}");
        };
        gauge(
            &mut out,
            "pipes_refresh_queue_depth",
            "Connections due for a proactive refresh at the last look.",
            "gauge",
            self.refresh_queue_depth.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "pipes_refresh_lease_takeovers_total",
            "Refresh leases taken over after their holder stopped.",
            "counter",
            self.refresh_lease_takeovers.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "pipes_webhook_lease_takeovers_total",
            "Webhook endpoints taken over after their worker stopped.",
            "counter",
            self.webhook_lease_takeovers.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP pipes_webhook_attempts_total Webhook delivery attempts by result."
        );
        let _ = writeln!(out, "# TYPE pipes_webhook_attempts_total counter");
        for (result, n) in self.webhook_attempts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "pipes_webhook_attempts_total{{result=\"{result}\"}} {n}");
        }
        gauge(
            &mut out,
            "pipes_http_connections_open",
            "Client connections being served.",
            "gauge",
            self.connections_open.load(Ordering::Relaxed).to_string(),
        );
        gauge(
            &mut out,
            "pipes_http_requests_timed_out_total",
            "Requests answered 503 because they ran past the request timeout.",
            "counter",
            self.requests_timed_out.load(Ordering::Relaxed).to_string(),
        );
        let _ = writeln!(
            out,
            "# HELP pipes_http_rate_limited_total Requests refused with 429, by the limit that refused them."
        );
        let _ = writeln!(out, "# TYPE pipes_http_rate_limited_total counter");
        for (by, n) in self.rate_limited.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            let _ = writeln!(out, "pipes_http_rate_limited_total{{by=\"{by}\"}} {n}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_gauges() {
        let m = Metrics::default();
        m.refresh("github", RefreshOutcome::Success, Duration::from_millis(20));
        m.refresh("github", RefreshOutcome::Transient, Duration::from_millis(700));
        m.set_refresh_queue_depth(42);
        m.webhook_attempt(true);
        let text = m.render();
        assert!(
            text.contains("pipes_refreshes_total{provider=\"github\",outcome=\"success\"} 1"),
            "{text}"
        );
        assert!(text.contains("pipes_refresh_duration_seconds_bucket{provider=\"github\",le=\"0.025\"} 1"));
        assert!(text.contains("pipes_refresh_duration_seconds_bucket{provider=\"github\",le=\"1\"} 2"));
        assert!(text.contains("pipes_refresh_duration_seconds_count{provider=\"github\"} 2"));
        assert!(text.contains("pipes_refresh_queue_depth 42"));
        assert!(text.contains("pipes_webhook_attempts_total{result=\"delivered\"} 1"));
    }
}
