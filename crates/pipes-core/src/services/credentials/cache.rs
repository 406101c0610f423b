//! The vending cache: a selector-free vending read reused for a short time, while this process
//! has written nothing. It holds sealed tokens only; they are opened per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{ConnectedAccount, DataIntegration};

/// (key hash, slug, ownership, owner key and, for shared connections, the acting member): what
/// a selector-free vending call reads.
pub(super) type VendKey = (String, String, &'static str, String);

/// A vending read reused for a short time. For organizations it also holds what their settings
/// request, and it exists for a shared connection only once the acting member was found active.
#[derive(Clone)]
pub(super) struct CachedRead {
    pub root: Arc<DataIntegration>,
    pub account: Arc<ConnectedAccount>,
    pub requested: Arc<[String]>,
    epoch: u64,
    at: Instant,
}

/// Entries beyond this are dropped wholesale rather than tracked.
const CACHE_LIMIT: usize = 100_000;

/// The cache itself; `ttl` zero disables it.
pub(super) struct VendCache {
    ttl: Duration,
    entries: Mutex<HashMap<VendKey, CachedRead>>,
}

impl VendCache {
    pub(super) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The entry of `key` if it is young enough and no write happened since it was read
    /// (`epoch` is the store's current write epoch).
    pub(super) fn get(&self, key: &VendKey, epoch: u64) -> Option<CachedRead> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let hit = entries.get(key)?;
        (hit.epoch == epoch && hit.at.elapsed() < self.ttl).then(|| hit.clone())
    }

    /// Remembers a read that began at write epoch `epoch`.
    pub(super) fn put(
        &self,
        key: VendKey,
        epoch: u64,
        root: &DataIntegration,
        account: &ConnectedAccount,
        requested: &Arc<[String]>,
    ) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        let entry = CachedRead {
            root: Arc::new(root.clone()),
            account: Arc::new(account.clone()),
            requested: requested.clone(),
            epoch,
            at: Instant::now(),
        };
        entries.insert(key, entry);
    }
}
