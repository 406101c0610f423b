//! The tunables of a server: what `pipes serve` reads from its configuration, and the
//! background workers' policies.

use std::time::Duration;

use pipes_core::egress::EgressPolicy;
use pipes_core::services::RefreshPolicy;
use pipes_core::webhooks::DeliveryPolicy;

use crate::limits::ServerLimits;

/// Tunables of an [`App`]; `Default` is what `pipes serve` uses without configuration.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Vending and refresh.
    pub refresh: RefreshPolicy,
    /// Webhook delivery.
    pub delivery: DeliveryPolicy,
    /// Retention.
    pub janitor: JanitorPolicy,
    /// Proactive refresh.
    pub refresh_ahead: RefreshAheadPolicy,
    /// Where outbound requests may go.
    pub egress: EgressPolicy,
    /// Timeouts, sizes, connections and rate limits of incoming requests.
    pub limits: ServerLimits,
}

/// What the janitor keeps.
#[derive(Debug, Clone)]
pub struct JanitorPolicy {
    /// How long events are kept.
    pub event_retention: Duration,
    /// How often it runs.
    pub every: Duration,
}

impl Default for JanitorPolicy {
    fn default() -> Self {
        Self {
            event_retention: Duration::from_secs(30 * 24 * 3600),
            every: Duration::from_secs(600),
        }
    }
}

/// How proactive refresh runs.
#[derive(Debug, Clone)]
pub struct RefreshAheadPolicy {
    /// Off entirely (callers still refresh on demand).
    pub enabled: bool,
    /// Refresh when less than min(this, half the token's lifetime) is left.
    pub ahead: Duration,
    /// How often to look for due connections.
    pub every: Duration,
    /// Refreshes in flight per provider in this process.
    pub per_provider: usize,
    /// Refreshes in flight in this process.
    pub total: usize,
}

impl Default for RefreshAheadPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            ahead: Duration::from_secs(600),
            every: Duration::from_secs(1),
            per_provider: 8,
            total: 64,
        }
    }
}
