//! When a delivery is tried again and when it is given up.

use std::time::Duration;

use rand::Rng;

use crate::domain::{AttemptOutcome, DueDelivery};
use crate::time::{millis, Millis};

/// How deliveries are scheduled and retried.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// How often to look for work another process appended (this process's own appends wake
    /// the worker at once).
    pub poll: Duration,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// First retry delay; doubles per consecutive failure.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// How long a delivery is retried before it is marked failed.
    pub retry_for: Duration,
    /// Endpoints delivered to at once by this process.
    pub concurrency: usize,
    /// How long an endpoint's lease lasts without an attempt extending it: longer than one
    /// attempt can take, and how long a crashed process's endpoints wait for another.
    pub lease: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            backoff_base: Duration::from_secs(30),
            backoff_max: Duration::from_secs(6 * 3600),
            retry_for: Duration::from_secs(72 * 3600),
            concurrency: 64,
            lease: Duration::from_secs(20),
        }
    }
}

impl DeliveryPolicy {
    /// The delay before retry number `failures` (1 = after the first failure): `base · 2^(n-1)`,
    /// capped, times a random factor in [0.8, 1.2] so that endpoints that failed together do
    /// not retry together.
    pub fn backoff(&self, failures: i64) -> Duration {
        let exp = u32::try_from(failures.clamp(1, 40) - 1).unwrap_or(0);
        let raw = self
            .backoff_base
            .saturating_mul(2u32.saturating_pow(exp.min(31)))
            .min(self.backoff_max);
        raw.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
    }

    /// What a failed attempt at `d` at `now` leads to: the endpoint backs off, and deliveries
    /// pending for longer than the retry period are given up.
    pub fn after_failure(&self, d: &DueDelivery, now: Millis) -> AttemptOutcome {
        let failures = d.attempts + 1;
        AttemptOutcome::Retry {
            retry_at: now + millis(self.backoff(failures)),
            failure_streak: failures,
            give_up_before: now - millis(self.retry_for),
        }
    }

    /// When a lease taken or extended at `now` runs out.
    pub fn lease_until(&self, now: Millis) -> Millis {
        now + millis(self.lease)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_stops_at_the_cap() {
        let p = DeliveryPolicy::default();
        for (n, secs) in [(1, 30.0), (2, 60.0), (3, 120.0), (6, 960.0)] {
            let d = p.backoff(n).as_secs_f64();
            assert!(d >= secs * 0.8 && d <= secs * 1.2, "{n}: {d}");
        }
        let capped = p.backoff(30).as_secs_f64();
        assert!((6.0 * 3600.0 * 0.8..=6.0 * 3600.0 * 1.2).contains(&capped));
    }

    #[test]
    fn a_failure_backs_off_and_gives_up_what_is_older_than_the_retry_period() {
        let p = DeliveryPolicy::default();
        let due = DueDelivery {
            event_id: crate::ids::EventId::new(),
            body: String::new(),
            attempts: 2,
            pending_since: 0,
            event_created_at: 0,
        };
        let now = 1_000_000_000;
        let AttemptOutcome::Retry {
            retry_at,
            failure_streak,
            give_up_before,
        } = p.after_failure(&due, now)
        else {
            panic!("a failure is retried");
        };
        assert_eq!(failure_streak, 3);
        assert!((now + 96_000..=now + 144_000).contains(&retry_at), "{retry_at}");
        assert_eq!(give_up_before, now - 72 * 3600 * 1000);
    }
}
