//! The webhook delivery worker: fans new outbox events out into deliveries, claims due deliveries under a lease,
//! POSTs them signed (Standard Webhooks), and records each attempt with its retry or its end.
//!
//! All state lives in the database, so a crash or restart loses nothing: an unfanned event is still unstamped in
//! the outbox, and a delivery claimed by a dead process comes back when its lease runs out (the receiver may then
//! see it twice: delivery is at least once, and `webhook-id` lets it drop the duplicate).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use domain::webhooks::{should_disable, Next, RetryPolicy};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::webhook_store::{ClaimedDelivery, DeliveryOutcome, NewAttempt, Recorded};
use crate::App;

use super::{message_id, passes, sign};

/// Settings of the delivery worker.
#[derive(Debug, Clone, Copy)]
pub struct WebhookConfig {
    /// How long the worker sleeps when it found nothing to do, unless this node commits something first (events
    /// committed by another node are seen after this long).
    pub poll_interval: Duration,
    /// After a wake-up by a local commit, how long the worker waits for more, so that a busy node fans out a few
    /// dozen times a second rather than once per batch.
    pub wake_delay: Duration,
    /// How far before its creation an endpoint still gets events: the write path stamps an event with its batch's
    /// time, which may be a moment before the endpoint's creation even when the event commits after it. Events
    /// from longer before (left pending while no endpoint existed) are not sent to a new endpoint; a replay can.
    pub creation_grace: Duration,
    pub retry: RetryPolicy,
    /// How long a claim lasts; must exceed `timeout`, else a slow send is claimed twice.
    pub lease: Duration,
    pub connect_timeout: Duration,
    /// Whole request, connect included.
    pub timeout: Duration,
    /// An endpoint failing without one success for this long is disabled.
    pub disable_after: Duration,
    /// Outbox events fanned out per transaction.
    pub fan_out_batch: u32,
    /// Sends in flight at once, per process.
    pub max_in_flight: usize,
    /// Largest body sent: an event whose body would be larger is sent without its `data` (with `"truncated":
    /// true` and the event id), and the receiver reads the resource through the API instead.
    pub max_payload_bytes: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(100),
            wake_delay: Duration::from_millis(25),
            creation_grace: Duration::from_secs(60),
            retry: RetryPolicy::default(),
            lease: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            disable_after: Duration::from_secs(120 * 3600),
            fan_out_batch: 500,
            max_in_flight: 32,
            max_payload_bytes: 256 * 1024,
        }
    }
}

/// The running worker. Dropping it stops the worker and abandons its sends in flight, like a crash would: their
/// claims expire and another worker (or the next start) sends them.
pub struct WebhookWorker {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for WebhookWorker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The largest body kept from a failing receiver's answer, for the log.
const MAX_ERROR_BODY: usize = 200;

impl App {
    /// Starts the delivery worker for this app's store. Any number of workers (processes) may share a database.
    pub fn start_webhooks(&self, config: WebhookConfig) -> WebhookWorker {
        let app = self.clone();
        let task = tokio::spawn(async move { run(app, config).await });
        WebhookWorker { task }
    }
}

async fn run(app: App, config: WebhookConfig) {
    let client = match reqwest::Client::builder()
        .connect_timeout(config.connect_timeout)
        .timeout(config.timeout)
        // A redirect would send a signed message somewhere the merchant did not register.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Stockroom-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook worker cannot build its HTTP client; webhooks are not delivered");
            return;
        }
    };
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    // Owned by this task: aborting the worker drops the set, which aborts every send in flight.
    let mut sends = JoinSet::new();
    let mut commits = app.ledger.commits();
    // Whether any endpoint exists, looked up at most once per poll interval.
    let mut endpoints: Option<(std::time::Instant, bool)> = None;
    loop {
        while sends.try_join_next().is_some() {}
        if endpoints.is_none_or(|(at, _)| at.elapsed() >= config.poll_interval) {
            match app.store.list_endpoints(None, 1).await {
                Ok(list) => endpoints = Some((std::time::Instant::now(), !list.is_empty())),
                Err(e) => tracing::warn!(error = %e, "webhook worker cannot list endpoints"),
            }
        }
        if endpoints.is_some_and(|(_, any)| !any) {
            // Nothing to deliver to: no fan-out, so that a node without webhooks takes no write lock for them.
            // The events stay pending; an endpoint created later skips those from before it (see below).
            idle(&mut commits, &config).await;
            continue;
        }
        let mut busy = false;
        // The endpoint's filters, for events from (about) its creation on.
        let grace = chrono::TimeDelta::from_std(config.creation_grace).unwrap_or_default();
        let for_fan_out = |endpoint: &crate::webhook_store::EndpointRecord,
                           event: &crate::webhook_store::OutboxRecord| {
            event.created_at >= endpoint.created_at - grace && passes(endpoint, event)
        };
        match app.store.fan_out(config.fan_out_batch, Utc::now(), &for_fan_out).await {
            Ok(f) => busy |= f.events == config.fan_out_batch as usize,
            Err(e) => tracing::warn!(error = %e, "webhook fan-out failed"),
        }
        let free = slots.available_permits() as u32;
        if free > 0 {
            let now = Utc::now();
            let lease = chrono::Duration::from_std(config.lease).unwrap_or(chrono::Duration::seconds(60));
            let token: i64 = rand::random::<i64>() & i64::MAX;
            match app.store.claim_deliveries(now, now + lease, free, token).await {
                Ok(claimed) => {
                    busy |= claimed.len() as u32 == free;
                    for d in claimed {
                        let permit = slots.clone().acquire_owned().await.expect("the semaphore is never closed");
                        let (app, client) = (app.clone(), client.clone());
                        sends.spawn(async move {
                            deliver(&app, &client, &config, d).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if !busy {
            idle(&mut commits, &config).await;
        }
    }
}

/// Waits for the next poll, or for a commit on this node (then a little longer, to gather a burst).
async fn idle(commits: &mut tokio::sync::watch::Receiver<u64>, config: &WebhookConfig) {
    tokio::select! {
        _ = tokio::time::sleep(config.poll_interval) => {}
        changed = commits.changed() => {
            if changed.is_ok() {
                tokio::time::sleep(config.wake_delay).await;
            } else {
                // The write path is gone: only polling is left.
                tokio::time::sleep(config.poll_interval).await;
            }
        }
    }
}

/// What one POST came to.
struct Sent {
    status_code: Option<u16>,
    error: Option<String>,
}

/// The body of a delivery: the event, or (past `max_bytes`) the event without its data.
pub fn delivery_body(d: &ClaimedDelivery, max_bytes: usize) -> String {
    let timestamp = d.event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let body = serde_json::json!({"type": d.event.topic, "timestamp": timestamp, "data": d.event.payload}).to_string();
    if body.len() <= max_bytes {
        return body;
    }
    serde_json::json!({"type": d.event.topic, "timestamp": timestamp, "data": null, "truncated": true,
        "event_id": d.event.id})
    .to_string()
}

/// Reads at most `max` bytes of a body: a receiver's error page is kept for the log, never read whole.
async fn read_prefix(mut resp: reqwest::Response, max: usize) -> String {
    let mut buf = Vec::new();
    while buf.len() < max {
        match resp.chunk().await {
            Ok(Some(chunk)) => buf.extend_from_slice(&chunk[..chunk.len().min(max - buf.len())]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

async fn post(client: &reqwest::Client, d: &ClaimedDelivery, max_payload_bytes: usize) -> Sent {
    let body = delivery_body(d, max_payload_bytes);
    let id = message_id(d.event.id, d.endpoint_id);
    let timestamp = Utc::now().timestamp();
    let signature = sign(&d.secret, &id, timestamp, &body);
    let result = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    match result {
        Ok(resp) => {
            let status = resp.status();
            if status.is_success() {
                Sent { status_code: Some(status.as_u16()), error: None }
            } else {
                let text = read_prefix(resp, MAX_ERROR_BODY * 4).await;
                let snippet: String = text.chars().take(MAX_ERROR_BODY).collect();
                Sent { status_code: Some(status.as_u16()), error: Some(format!("HTTP {status}: {snippet}")) }
            }
        }
        Err(e) => {
            let kind = if e.is_timeout() {
                "timed out"
            } else if e.is_connect() {
                "could not connect"
            } else {
                "request failed"
            };
            Sent { status_code: None, error: Some(format!("{kind}: {e}")) }
        }
    }
}

async fn deliver(app: &App, client: &reqwest::Client, config: &WebhookConfig, d: ClaimedDelivery) {
    let attempted_at = Utc::now();
    let started = Instant::now();
    let sent = post(client, &d, config.max_payload_bytes).await;
    let duration_ms = started.elapsed().as_millis() as i64;
    let succeeded = sent.error.is_none();
    let now = Utc::now();
    let outcome = match config.retry.next(
        succeeded,
        d.attempts + 1,
        d.first_attempt_at.unwrap_or(attempted_at),
        now,
        rand::random::<f64>(),
    ) {
        Next::Delivered => DeliveryOutcome::Delivered,
        Next::RetryAt(at) => DeliveryOutcome::RetryAt(at),
        Next::GiveUp => DeliveryOutcome::Failed,
    };
    let attempt = NewAttempt {
        delivery_id: d.id,
        claim_token: d.claim_token,
        attempted_at,
        status_code: sent.status_code,
        error: sent.error,
        duration_ms,
        outcome,
    };
    match app.store.record_attempt(&attempt).await {
        Ok(Recorded::Logged { endpoint_id, failing_since }) => {
            if should_disable(failing_since, now, config.disable_after) {
                let since = failing_since.map(|t| t.to_rfc3339()).unwrap_or_default();
                let reason = format!(
                    "every attempt since {since} failed (disabled after {} hours)",
                    config.disable_after.as_secs() / 3600
                );
                match app.store.disable_endpoint(endpoint_id, &reason, now).await {
                    Ok(()) => tracing::warn!(endpoint_id, %reason, "webhook endpoint disabled"),
                    Err(e) => tracing::warn!(endpoint_id, error = %e, "could not disable a failing webhook endpoint"),
                }
            }
        }
        Ok(Recorded::ClaimLost) => {
            tracing::info!(delivery = d.id, "webhook claim expired before the attempt was recorded; it is sent again")
        }
        Err(e) => tracing::warn!(delivery = d.id, error = %e, "could not record a webhook attempt; it is sent again"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook_store::OutboxRecord;

    #[test]
    fn a_body_past_the_limit_goes_without_its_data() {
        let d = |lines: usize| ClaimedDelivery {
            id: 1,
            endpoint_id: 2,
            url: "http://x/".into(),
            secret: "s".into(),
            event: OutboxRecord {
                id: 42,
                topic: "order.placed".into(),
                payload: serde_json::json!({"lines": vec!["A"; lines]}),
                created_at: Utc::now(),
            },
            attempts: 0,
            first_attempt_at: None,
            claim_token: 1,
        };
        let small: serde_json::Value = serde_json::from_str(&delivery_body(&d(3), 1024)).unwrap();
        assert_eq!(small["data"]["lines"].as_array().unwrap().len(), 3);
        assert!(small.get("truncated").is_none());
        let big = delivery_body(&d(10_000), 1024);
        assert!(big.len() <= 1024);
        let big: serde_json::Value = serde_json::from_str(&big).unwrap();
        assert_eq!(
            (big["truncated"].as_bool(), big["event_id"].as_i64(), big["data"].is_null()),
            (Some(true), Some(42), true)
        );
    }
}
