//! A node's short-lived cache of what it reads on nearly every request (API keys, the SKUs of order lines), so
//! that the hot path does not wait on the database for facts that rarely change.
//!
//! Changes made through this node drop the whole cache at once; an entry lives at most [`TTL`], which bounds how
//! stale another node's change (a revoked key, a new price) can look here. Stock is never cached: it is decided
//! in the write path's transaction.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long an entry is trusted: the same bound as the channel cache's.
pub const TTL: Duration = Duration::from_secs(1);

/// Entries kept at most; past it, the cache starts over empty (a catalog of a million SKUs must not become a
/// million cached entries). Sweeping only the expired ones instead could cost a pass over the whole map per
/// insert when few have expired.
const CAPACITY: usize = 100_000;

pub(crate) struct TtlCache<V> {
    entries: RwLock<HashMap<String, (Instant, V)>>,
    /// Bumped by every [`TtlCache::clear`]: a read that started before a change must not store what it read.
    generation: AtomicU64,
}

impl<V> Default for TtlCache<V> {
    fn default() -> Self {
        Self { entries: RwLock::default(), generation: AtomicU64::new(0) }
    }
}

impl<V: Clone> TtlCache<V> {
    pub fn get(&self, key: &str) -> Option<V> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < TTL).map(|(_, v)| v.clone())
    }

    /// Where a read that may fill the cache starts: pass it to [`TtlCache::put`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores what was read since `generation`, unless the cache was cleared in between (the value may predate
    /// the change that cleared it).
    pub fn put(&self, generation: u64, key: String, value: V) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= CAPACITY && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, (Instant::now(), value));
    }

    /// Forgets everything: called after a change made through this node.
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_from_before_a_clear_is_not_stored() {
        let c = TtlCache::<u32>::default();
        let g = c.generation();
        c.put(g, "a".into(), 1);
        assert_eq!(c.get("a"), Some(1));
        let stale = c.generation();
        c.clear();
        assert_eq!(c.get("a"), None);
        c.put(stale, "a".into(), 1);
        assert_eq!(c.get("a"), None, "read before the change, so it may be stale");
        c.put(c.generation(), "a".into(), 2);
        assert_eq!(c.get("a"), Some(2));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let c = TtlCache::<u32>::default();
        for i in 0..(CAPACITY + 10) {
            c.put(c.generation(), i.to_string(), 0);
        }
        assert!(c.entries.read().unwrap().len() <= CAPACITY);
    }
}
