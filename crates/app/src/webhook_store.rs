//! What the webhook use cases and the delivery worker need from a database: endpoints, the fan-out of outbox
//! events into deliveries, claiming due deliveries under a lease, and the log of attempts.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::StoreResult;

/// An endpoint's editable fields.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointFields {
    /// An absolute http or https URL.
    pub url: String,
    /// Topics and prefix patterns (`order.*`); empty: every event.
    pub event_types: Vec<String>,
    /// Only events of this channel; `None`: every channel.
    pub channel: Option<String>,
    pub enabled: bool,
    /// Why it is disabled; `Some` exactly when `enabled` is false.
    pub disabled_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointRecord {
    pub id: i64,
    pub fields: EndpointFields,
    /// `whsec_` + base64 of the key.
    pub secret: String,
    /// Start of the current run of failures; `None` after a success.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An outbox event as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    pub id: i64,
    pub topic: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// Decides whether an event goes to an endpoint (the endpoint's filters).
pub type EventFilter<'a> = dyn Fn(&EndpointRecord, &OutboxRecord) -> bool + Send + Sync + 'a;

/// What one fan-out did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FanOut {
    /// Events read from the outbox and stamped delivered_at.
    pub events: usize,
    /// Deliveries created for them.
    pub deliveries: usize,
}

/// A delivery claimed for sending, with everything the sender needs.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub endpoint_id: i64,
    pub url: String,
    pub secret: String,
    pub event: OutboxRecord,
    /// Attempts made before this one.
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// Proves the claim when the attempt is recorded.
    pub claim_token: i64,
}

/// Where a delivery goes after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Delivered,
    RetryAt(DateTime<Utc>),
    /// Given up after retrying for too long.
    Failed,
}

/// One attempt, to be logged and applied to its delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    pub delivery_id: i64,
    pub claim_token: i64,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub outcome: DeliveryOutcome,
}

/// What recording an attempt found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Logged; the endpoint has been failing since this time (`None`: it is healthy).
    Logged { endpoint_id: i64, failing_since: Option<DateTime<Utc>> },
    /// The claim had expired and someone else holds the delivery now: nothing was written.
    ClaimLost,
}

/// One logged attempt, for the delivery log.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: i64,
    pub topic: String,
    pub attempted_at: DateTime<Utc>,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Which events a replay sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSelector {
    /// This event, whatever the endpoint's filters say (it was asked for by name).
    One(i64),
    /// The events created in `[from, to)` that pass the endpoint's filters.
    Range { from: DateTime<Utc>, to: DateTime<Utc> },
}

#[async_trait]
pub trait WebhookStore: Send + Sync {
    async fn create_endpoint(
        &self,
        fields: &EndpointFields,
        secret: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord>;
    /// Writes the fields; enabling an endpoint also forgets its run of failures. `NotFound` for an unknown id.
    async fn update_endpoint(
        &self,
        id: i64,
        fields: &EndpointFields,
        now: DateTime<Utc>,
    ) -> StoreResult<EndpointRecord>;
    async fn set_endpoint_secret(&self, id: i64, secret: &str, now: DateTime<Utc>) -> StoreResult<EndpointRecord>;
    /// Deletes an endpoint with its deliveries and log; `NotFound` for an unknown id.
    async fn delete_endpoint(&self, id: i64) -> StoreResult<()>;
    async fn get_endpoint(&self, id: i64) -> StoreResult<Option<EndpointRecord>>;
    async fn list_endpoints(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<EndpointRecord>>;
    /// In one transaction: takes up to `limit` outbox events not yet fanned out, in id order, creates one delivery
    /// (due now) per enabled endpoint that `passes`, stamps the events' delivered_at and advances the cursor. Runs
    /// once at a time across every node on the database, so an event is fanned out once. Where outbox ids can
    /// commit out of order (several writers at once), the events behind a missing id that may still commit wait
    /// for it, so that every endpoint hears events in id order.
    async fn fan_out(&self, limit: u32, now: DateTime<Utc>, passes: &EventFilter<'_>) -> StoreResult<FanOut>;
    /// Claims up to `limit` due deliveries until `lease_until` under `token`: each is the earliest pending delivery
    /// of its (enabled) endpoint, not claimed by anyone whose lease still runs at `now`.
    async fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
        token: i64,
    ) -> StoreResult<Vec<ClaimedDelivery>>;
    /// Logs an attempt and moves its delivery on (releasing the claim), if the claim still holds; tracks the
    /// endpoint's run of failures.
    async fn record_attempt(&self, attempt: &NewAttempt) -> StoreResult<Recorded>;
    /// Disables an endpoint with a reason unless it is disabled already; `NotFound` for an unknown id.
    async fn disable_endpoint(&self, id: i64, reason: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// An endpoint's attempts, newest first, before the attempt id `before`.
    async fn list_attempts(&self, endpoint_id: i64, before: Option<i64>, limit: u32)
        -> StoreResult<Vec<AttemptRecord>>;
    /// Creates a new delivery (due now) to the endpoint for each selected event, in event order; at most `max`
    /// events, else `Conflict { constraint: "webhook_replay.max" }` and nothing is created. `NotFound` for an
    /// unknown endpoint or (for `One`) event.
    async fn replay_events(
        &self,
        endpoint_id: i64,
        selector: EventSelector,
        max: u32,
        passes: &EventFilter<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<usize>;
}

/// The key of the placeholder an order event carries as `order_id` for an order placed in the same batch, whose
/// id the store only learns when it inserts the order.
const NEW_ORDER_KEY: &str = "$new_order";

/// The `order_id` placeholder for the `index`-th new order of a batch.
pub fn new_order_placeholder(index: usize) -> serde_json::Value {
    serde_json::json!({ NEW_ORDER_KEY: index })
}

/// Replaces every `order_id` placeholder in `events` with the id the store gave that new order. Stores call this
/// after inserting a batch's orders and before inserting its events.
pub fn fill_new_order_ids(events: &mut [crate::store::OutboxEvent], order_ids: &[i64]) {
    for e in events {
        let index = e.payload.get("order_id").and_then(|v| v.get(NEW_ORDER_KEY)).and_then(|v| v.as_u64());
        if let Some(id) = index.and_then(|i| order_ids.get(i as usize)) {
            e.payload["order_id"] = serde_json::json!(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OutboxEvent;

    #[test]
    fn placeholders_become_the_ids_the_store_gave_and_nothing_else_changes() {
        let mut events = vec![
            OutboxEvent {
                topic: "order.created".into(),
                payload: serde_json::json!({"order_id": new_order_placeholder(1)}),
            },
            OutboxEvent { topic: "order.updated".into(), payload: serde_json::json!({"order_id": 7}) },
            OutboxEvent {
                topic: "order.created".into(),
                payload: serde_json::json!({"order_id": new_order_placeholder(0), "source": "x"}),
            },
            OutboxEvent { topic: "inventory.changed".into(), payload: serde_json::json!({"balances": []}) },
        ];
        fill_new_order_ids(&mut events, &[40, 41]);
        assert_eq!(events[0].payload, serde_json::json!({"order_id": 41}));
        assert_eq!(events[1].payload, serde_json::json!({"order_id": 7}));
        assert_eq!(events[2].payload, serde_json::json!({"order_id": 40, "source": "x"}));
        assert_eq!(events[3].payload, serde_json::json!({"balances": []}));
    }
}
