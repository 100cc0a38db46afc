//! Webhook rules: which events an endpoint subscribes to, when a failed delivery is tried again, and when an
//! endpoint that keeps failing is given up on. Pure functions; the clock and the dice are passed in.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// Every topic the outbox carries. An endpoint may only subscribe to these, or to a prefix of them (`order.*`), so
/// that a typo is refused instead of silently matching nothing.
pub const TOPICS: &[&str] = &[
    "inventory.changed",
    "order.created",
    "order.updated",
    "order.cancelled",
    "fulfillment.shipped",
    "hold.expired",
    "return.requested",
    "return.received",
    "availability.updated",
    "stock.low",
    "purchase_order.created",
    "purchase_order.ordered",
    "purchase_order.received",
    "purchase_order.closed",
    "purchase_order.cancelled",
    "receipt.created",
    "transfer.created",
    "transfer.shipped",
    "transfer.received",
    "transfer.cancelled",
    "count.created",
    "count.approved",
    crate::replenishment::REORDER_POINT_REACHED,
    crate::replenishment::STOCKOUT_PROJECTED,
];

/// The most patterns one endpoint may list.
pub const MAX_PATTERNS: usize = 50;

/// Checks one event type pattern: an exact topic, or `prefix.*` where some topic starts with `prefix.`.
pub fn validate_pattern(pattern: &str) -> Result<(), String> {
    if let Some(prefix) = pattern.strip_suffix(".*") {
        let dotted = format!("{prefix}.");
        if !prefix.is_empty() && !prefix.contains('*') && TOPICS.iter().any(|t| t.starts_with(&dotted)) {
            return Ok(());
        }
        return Err(format!("'{pattern}' matches no event type; known: {}", TOPICS.join(", ")));
    }
    if TOPICS.contains(&pattern) {
        Ok(())
    } else {
        Err(format!("'{pattern}' is not an event type; known: {} (or a prefix such as order.*)", TOPICS.join(", ")))
    }
}

/// Whether `topic` is one of `patterns`; no patterns means every topic.
pub fn topic_matches(patterns: &[String], topic: &str) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix(".*") {
            Some(prefix) => {
                topic.len() > prefix.len() + 1 && topic.starts_with(prefix) && topic[prefix.len()..].starts_with('.')
            }
            None => p == topic,
        })
}

/// Whether an event goes to an endpoint: its topic is subscribed, and either the endpoint has no channel filter or
/// the event names that channel (`event_channel`: the payload's `channel`, or an order event's `source`).
pub fn event_passes(
    patterns: &[String],
    channel_filter: Option<&str>,
    topic: &str,
    event_channel: Option<&str>,
) -> bool {
    topic_matches(patterns, topic)
        && match channel_filter {
            None => true,
            Some(wanted) => event_channel == Some(wanted),
        }
}

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the second attempt; each further wait doubles.
    pub base: Duration,
    /// No wait is longer than this.
    pub max_wait: Duration,
    /// A delivery still failing this long after its first attempt is given up (marked failed).
    pub give_up_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(5),
            max_wait: Duration::from_secs(6 * 3600),
            give_up_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Delivered,
    RetryAt(DateTime<Utc>),
    GiveUp,
}

impl RetryPolicy {
    /// The wait after the `failures`-th failed attempt (1 = the first), before jitter: base·2^(failures-1), capped.
    pub fn wait(&self, failures: u32) -> Duration {
        let shift = failures.saturating_sub(1).min(30);
        self.base.saturating_mul(1u32 << shift).min(self.max_wait)
    }

    /// Decides after an attempt at `now`. `jitter` in [0, 1) spreads retries of many deliveries (a receiver that
    /// comes back is not hit by all of them at once): the wait is scaled into [wait/2, wait).
    pub fn next(
        &self,
        succeeded: bool,
        failures: u32,
        first_attempt: DateTime<Utc>,
        now: DateTime<Utc>,
        jitter: f64,
    ) -> Next {
        if succeeded {
            return Next::Delivered;
        }
        let wait = self.wait(failures).mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 0.999_999));
        let at = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
        let deadline = first_attempt + chrono::Duration::from_std(self.give_up_after).unwrap_or(chrono::Duration::MAX);
        if at > deadline {
            Next::GiveUp
        } else {
            Next::RetryAt(at)
        }
    }
}

/// Whether an endpoint failing without a success since `failing_since` should be disabled at `now`.
pub fn should_disable(failing_since: Option<DateTime<Utc>>, now: DateTime<Utc>, disable_after: Duration) -> bool {
    match (failing_since, chrono::Duration::from_std(disable_after)) {
        (Some(since), Ok(after)) => now - since >= after,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pats(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn patterns_are_topics_or_prefixes_of_topics() {
        assert!(validate_pattern("order.created").is_ok());
        assert!(validate_pattern("order.*").is_ok());
        assert!(validate_pattern("stock.*").is_ok());
        assert!(validate_pattern("order.creatd").is_err());
        assert!(validate_pattern("ord.*").is_err());
        assert!(validate_pattern("*").is_err());
        assert!(validate_pattern(".*").is_err());
        assert!(validate_pattern("*.*").is_err());
        assert!(validate_pattern("").is_err());
    }

    #[test]
    fn matching_by_topic_and_channel() {
        assert!(topic_matches(&[], "order.created"));
        assert!(topic_matches(&pats(&["order.*"]), "order.cancelled"));
        assert!(!topic_matches(&pats(&["order.*"]), "orders.x"));
        assert!(!topic_matches(&pats(&["order.*"]), "return.received"));
        assert!(topic_matches(&pats(&["hold.expired", "return.*"]), "return.received"));
        assert!(!topic_matches(&pats(&["order.created"]), "order.updated"));
        assert!(event_passes(&[], None, "stock.low", None));
        assert!(event_passes(&[], Some("shop-de"), "stock.low", Some("shop-de")));
        assert!(!event_passes(&[], Some("shop-de"), "stock.low", Some("shop-at")));
        assert!(!event_passes(&[], Some("shop-de"), "inventory.changed", None));
    }

    #[test]
    fn waits_double_up_to_the_cap_and_give_up_after_the_deadline() {
        let p = RetryPolicy {
            base: Duration::from_secs(1),
            max_wait: Duration::from_secs(10),
            give_up_after: Duration::from_secs(100),
        };
        assert_eq!(p.wait(1), Duration::from_secs(1));
        assert_eq!(p.wait(2), Duration::from_secs(2));
        assert_eq!(p.wait(4), Duration::from_secs(8));
        assert_eq!(p.wait(5), Duration::from_secs(10));
        assert_eq!(p.wait(u32::MAX), Duration::from_secs(10));
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        assert_eq!(p.next(true, 3, t0, t0, 0.5), Next::Delivered);
        assert_eq!(p.next(false, 1, t0, t0, 0.0), Next::RetryAt(t0 + chrono::Duration::milliseconds(500)));
        assert_eq!(p.next(false, 9, t0, t0 + chrono::Duration::seconds(96), 0.0), Next::GiveUp);
    }

    #[test]
    fn endpoints_are_disabled_only_after_failing_long_enough() {
        let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
        let day = Duration::from_secs(86_400);
        assert!(!should_disable(None, t0, day));
        assert!(!should_disable(Some(t0), t0 + chrono::Duration::hours(23), day));
        assert!(should_disable(Some(t0), t0 + chrono::Duration::hours(24), day));
    }

    proptest! {
        #[test]
        fn a_retry_is_never_before_half_the_wait_nor_after_it(failures in 1u32..40, jitter in 0.0f64..1.0, base_ms in 1u64..10_000) {
            let p = RetryPolicy { base: Duration::from_millis(base_ms), max_wait: Duration::from_secs(3600), give_up_after: Duration::from_secs(u32::MAX as u64) };
            let t0 = DateTime::<Utc>::from_timestamp(1_000_000, 0).unwrap();
            match p.next(false, failures, t0, t0, jitter) {
                Next::RetryAt(at) => {
                    let waited = (at - t0).to_std().unwrap();
                    prop_assert!(waited >= p.wait(failures) / 2);
                    prop_assert!(waited <= p.wait(failures));
                    prop_assert!(waited <= p.max_wait);
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }

        #[test]
        fn a_prefix_pattern_matches_exactly_the_topics_under_it(i in 0usize..TOPICS.len(), j in 0usize..TOPICS.len()) {
            let prefix = TOPICS[i].split('.').next().unwrap();
            let pattern = vec![format!("{prefix}.*")];
            prop_assert!(validate_pattern(&pattern[0]).is_ok());
            prop_assert_eq!(topic_matches(&pattern, TOPICS[j]), TOPICS[j].split('.').next() == Some(prefix));
        }
    }
}
