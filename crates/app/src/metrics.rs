//! Process-wide counters of the use cases (batch sizes, expired holds, audit entries), read by the API's `/metrics`
//! endpoint. Plain atomics: counting must never slow the write path or fail it.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds of the batch size histogram's buckets (commands per ledger batch).
pub const BATCH_BUCKETS: [u64; 9] = [1, 2, 4, 8, 16, 32, 64, 128, 256];

pub struct Metrics {
    /// Batches per bucket of [`BATCH_BUCKETS`], plus one bucket for larger ones.
    pub batch_buckets: [AtomicU64; BATCH_BUCKETS.len() + 1],
    pub batch_commands: AtomicU64,
    pub batches: AtomicU64,
    pub batches_failed: AtomicU64,
    pub holds_expired: AtomicU64,
    pub audit_entries: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)]
const ZERO: AtomicU64 = AtomicU64::new(0);

pub static METRICS: Metrics = Metrics {
    batch_buckets: [ZERO; BATCH_BUCKETS.len() + 1],
    batch_commands: ZERO,
    batches: ZERO,
    batches_failed: ZERO,
    holds_expired: ZERO,
    audit_entries: ZERO,
};

impl Metrics {
    pub fn record_batch(&self, commands: usize) {
        let n = commands as u64;
        let bucket = BATCH_BUCKETS.iter().position(|b| n <= *b).unwrap_or(BATCH_BUCKETS.len());
        self.batch_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.batch_commands.fetch_add(n, Ordering::Relaxed);
        self.batches.fetch_add(1, Ordering::Relaxed);
    }
}
