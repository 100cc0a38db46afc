//! The webhook part of the store conformance suite: endpoints, fan-out (once, in order, only to enabled endpoints
//! that match), claims (exclusive, one at a time per endpoint, leased), the attempt log, and replays. A backend runs
//! it with [`webhook_conformance_suite!`](crate::webhook_conformance_suite), like the main suite.

use std::sync::Arc;

use app::store::{BatchScope, BatchState, BatchWrites, OutboxEvent};
use app::webhook_store::{
    DeliveryOutcome, EndpointFields, EndpointRecord, EventSelector, FanOut, NewAttempt, OutboxRecord, Recorded,
};
use app::{Store, StoreError};
use chrono::{DateTime, Duration, Utc};

/// Expands to one `#[tokio::test]` per webhook suite function; `$make` as for `conformance_suite!`.
#[macro_export]
macro_rules! webhook_conformance_suite {
    ($make:expr) => {
        $crate::webhook_conformance_suite!(@tests $make;
            webhook_endpoints_round_trip,
            webhook_fan_out_once_in_order_to_matching_endpoints,
            webhook_concurrent_fan_outs_never_repeat_an_event,
            webhook_claims_are_exclusive_ordered_and_leased,
            webhook_replays_create_new_deliveries,
        );
    };
    (@tests $make:expr; $($name:ident),+ $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let (_guard, store) = $make.await;
                $crate::webhooks::$name(store).await;
            }
        )+
    };
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("now is in range")
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn fields(url: &str, types: &[&str], channel: Option<&str>) -> EndpointFields {
    EndpointFields {
        url: url.into(),
        event_types: types.iter().map(|t| t.to_string()).collect(),
        channel: channel.map(str::to_string),
        enabled: true,
        disabled_reason: None,
    }
}

/// Writes events through the one write path, one batch.
async fn emit(store: &dyn Store, events: &[(&str, serde_json::Value)]) {
    let events: Vec<OutboxEvent> =
        events.iter().map(|(t, p)| OutboxEvent { topic: t.to_string(), payload: p.clone() }).collect();
    let mut decide = |_: &mut BatchState| BatchWrites { events: events.clone(), ..Default::default() };
    store.apply_batch(&BatchScope::default(), &mut decide).await.expect("events are written");
}

fn matcher(e: &EndpointRecord, o: &OutboxRecord) -> bool {
    app::webhooks::passes(e, o)
}

fn attempt(delivery_id: i64, token: i64, at: DateTime<Utc>, status: u16, outcome: DeliveryOutcome) -> NewAttempt {
    NewAttempt {
        delivery_id,
        claim_token: token,
        attempted_at: at,
        status_code: Some(status),
        error: (status >= 300).then(|| format!("HTTP {status}")),
        duration_ms: 12,
        outcome,
    }
}

pub async fn webhook_endpoints_round_trip(store: Arc<dyn Store>) {
    let s = &*store;
    let t = now();
    let a = s.create_endpoint(&fields("https://a.example/h", &["order.*"], Some("shop")), SECRET, t).await.unwrap();
    assert_eq!((a.fields.url.as_str(), a.secret.as_str(), a.created_at), ("https://a.example/h", SECRET, t));
    assert_eq!(a.fields.event_types, ["order.*"]);
    assert_eq!(s.get_endpoint(a.id).await.unwrap().as_ref(), Some(&a), "every field round-trips");
    let b = s.create_endpoint(&fields("http://b.example/h", &[], None), SECRET, t).await.unwrap();
    assert!(b.id > a.id);
    assert_eq!(s.list_endpoints(None, 1).await.unwrap(), vec![a.clone()]);
    assert_eq!(s.list_endpoints(Some(a.id), 10).await.unwrap(), vec![b.clone()]);

    // The database keeps its own invariants: an http(s) URL, a whsec_ secret, a reason for every disabled one.
    let bad_url = s.create_endpoint(&fields("ftp://x", &[], None), SECRET, t).await;
    assert!(matches!(bad_url, Err(StoreError::Conflict { .. })), "{bad_url:?}");
    let bad_secret = s.create_endpoint(&fields("https://x", &[], None), "secret", t).await;
    assert!(matches!(bad_secret, Err(StoreError::Conflict { .. })), "{bad_secret:?}");
    let mut no_reason = fields("https://x", &[], None);
    no_reason.enabled = false;
    assert!(matches!(s.create_endpoint(&no_reason, SECRET, t).await, Err(StoreError::Conflict { .. })));

    let t2 = t + Duration::seconds(1);
    let mut changed = fields("https://a.example/v2", &["stock.low"], None);
    changed.enabled = false;
    changed.disabled_reason = Some("paused".into());
    let a2 = s.update_endpoint(a.id, &changed, t2).await.unwrap();
    assert_eq!((a2.fields.clone(), a2.updated_at, a2.created_at), (changed, t2, t));
    let rotated = s.set_endpoint_secret(a.id, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", t2).await.unwrap();
    assert_eq!(rotated.secret, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    s.disable_endpoint(b.id, "failing", t2).await.unwrap();
    let b2 = s.get_endpoint(b.id).await.unwrap().unwrap();
    assert_eq!((b2.fields.enabled, b2.fields.disabled_reason.as_deref()), (false, Some("failing")));

    s.delete_endpoint(a.id).await.unwrap();
    assert!(s.get_endpoint(a.id).await.unwrap().is_none());
    assert!(matches!(s.delete_endpoint(a.id).await, Err(StoreError::NotFound)));
    assert!(matches!(s.update_endpoint(a.id, &fields("https://x", &[], None), t).await, Err(StoreError::NotFound)));
    assert!(matches!(s.set_endpoint_secret(a.id, SECRET, t).await, Err(StoreError::NotFound)));
    assert!(matches!(s.disable_endpoint(a.id, "x", t).await, Err(StoreError::NotFound)));
}

pub async fn webhook_fan_out_once_in_order_to_matching_endpoints(store: Arc<dyn Store>) {
    let s = &*store;
    let t = now();
    let all = s.create_endpoint(&fields("https://all.example", &[], None), SECRET, t).await.unwrap();
    let orders = s.create_endpoint(&fields("https://o.example", &["order.*"], None), SECRET, t).await.unwrap();
    let de = s.create_endpoint(&fields("https://de.example", &[], Some("shop-de")), SECRET, t).await.unwrap();
    let off = s.create_endpoint(&fields("https://off.example", &[], None), SECRET, t).await.unwrap();
    s.disable_endpoint(off.id, "paused", t).await.unwrap();

    // Events written before any fan-out are not lost.
    emit(
        s,
        &[
            ("order.created", serde_json::json!({"order_id": 1, "source": "shop-de"})),
            ("inventory.changed", serde_json::json!({"balances": []})),
            ("stock.low", serde_json::json!({"channel": "shop-at"})),
        ],
    )
    .await;
    emit(s, &[("order.cancelled", serde_json::json!({"order_id": 1, "source": "shop-de"}))]).await;

    assert_eq!(s.fan_out(3, t, &matcher).await.unwrap(), FanOut { events: 3, deliveries: 3 + 1 + 1 });
    assert_eq!(s.fan_out(3, t, &matcher).await.unwrap(), FanOut { events: 1, deliveries: 3 });
    assert_eq!(s.fan_out(3, t, &matcher).await.unwrap(), FanOut::default(), "an event is fanned out once");

    // Every endpoint's deliveries, one claim at a time (each claim is the head of its endpoint's queue).
    let mut seen: Vec<(i64, String)> = Vec::new();
    for round in 0..10 {
        let claimed = s.claim_deliveries(t, t + Duration::seconds(30), 10, round).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        for d in claimed {
            seen.push((d.endpoint_id, d.event.topic.clone()));
            let r = s.record_attempt(&attempt(d.id, round, t, 204, DeliveryOutcome::Delivered)).await.unwrap();
            assert_eq!(r, Recorded::Logged { endpoint_id: d.endpoint_id, failing_since: None });
        }
    }
    let of = |id: i64| seen.iter().filter(|(e, _)| *e == id).map(|(_, t)| t.as_str()).collect::<Vec<_>>();
    assert_eq!(of(all.id), ["order.created", "inventory.changed", "stock.low", "order.cancelled"], "in event order");
    assert_eq!(of(orders.id), ["order.created", "order.cancelled"]);
    assert_eq!(of(de.id), ["order.created", "order.cancelled"]);
    assert!(of(off.id).is_empty(), "a disabled endpoint gets nothing");
}

pub async fn webhook_concurrent_fan_outs_never_repeat_an_event(store: Arc<dyn Store>) {
    let t = now();
    let ep = store.create_endpoint(&fields("https://all.example", &[], None), SECRET, t).await.unwrap();
    for i in 0..40 {
        emit(&*store, &[("inventory.changed", serde_json::json!({ "n": i }))]).await;
    }
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            loop {
                let f = store.fan_out(3, t, &matcher).await.unwrap();
                if f.events == 0 {
                    return n;
                }
                n += f.events;
            }
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 40, "every event fanned out exactly once across concurrent fan-outs");
    let mut numbers = Vec::new();
    for round in 0..100 {
        let claimed = store.claim_deliveries(t, t + Duration::seconds(30), 10, round).await.unwrap();
        if claimed.is_empty() {
            break;
        }
        assert_eq!(claimed.len(), 1, "one endpoint: one delivery at a time");
        let d = &claimed[0];
        assert_eq!(d.endpoint_id, ep.id);
        numbers.push(d.event.payload["n"].as_i64().unwrap());
        store.record_attempt(&attempt(d.id, round, t, 200, DeliveryOutcome::Delivered)).await.unwrap();
    }
    assert_eq!(numbers, (0..40).collect::<Vec<_>>(), "each event once, in event order");
}

pub async fn webhook_claims_are_exclusive_ordered_and_leased(store: Arc<dyn Store>) {
    let s = &*store;
    let t = now();
    let e1 = s.create_endpoint(&fields("https://one.example", &["order.*"], None), SECRET, t).await.unwrap();
    let e2 = s.create_endpoint(&fields("https://two.example", &["stock.low"], None), SECRET, t).await.unwrap();
    emit(s, &[("order.created", serde_json::json!({"n": 1})), ("order.updated", serde_json::json!({"n": 2}))]).await;
    emit(s, &[("stock.low", serde_json::json!({"n": 3})), ("order.updated", serde_json::json!({"n": 4}))]).await;
    s.fan_out(100, t, &matcher).await.unwrap();
    let lease = Duration::seconds(30);

    let first = s.claim_deliveries(t, t + lease, 10, 1).await.unwrap();
    let heads: Vec<(i64, i64)> =
        first.iter().map(|d| (d.endpoint_id, d.event.payload["n"].as_i64().unwrap())).collect();
    assert_eq!(heads, [(e1.id, 1), (e2.id, 3)], "the head of each endpoint's queue");
    assert_eq!(
        (first[0].url.as_str(), first[0].secret.as_str(), first[0].attempts),
        ("https://one.example", SECRET, 0)
    );
    assert!(s.claim_deliveries(t, t + lease, 10, 2).await.unwrap().is_empty(), "claimed heads block their queues");

    // A failure with a retry later keeps the queue behind it waiting.
    let failing_at = t + Duration::seconds(1);
    let retry_at = t + Duration::seconds(10);
    let r = s.record_attempt(&attempt(first[0].id, 1, failing_at, 503, DeliveryOutcome::RetryAt(retry_at))).await;
    assert_eq!(r.unwrap(), Recorded::Logged { endpoint_id: e1.id, failing_since: Some(failing_at) });
    assert!(s.claim_deliveries(t + Duration::seconds(2), t + lease, 10, 3).await.unwrap().is_empty());

    // A lease that ran out gives the delivery back; the late claimant's result is refused.
    let later = t + lease + Duration::seconds(1);
    let again = s.claim_deliveries(later, later + lease, 10, 4).await.unwrap();
    let ids: Vec<i64> = again.iter().map(|d| d.id).collect();
    assert_eq!(ids, [first[0].id, first[1].id], "the due retry and the expired claim");
    assert_eq!((again[0].attempts, again[0].first_attempt_at), (1, Some(failing_at)));
    let stale = s.record_attempt(&attempt(first[1].id, 1, later, 204, DeliveryOutcome::Delivered)).await.unwrap();
    assert_eq!(stale, Recorded::ClaimLost);
    let fresh = s.record_attempt(&attempt(first[1].id, 4, later, 204, DeliveryOutcome::Delivered)).await.unwrap();
    assert_eq!(fresh, Recorded::Logged { endpoint_id: e2.id, failing_since: None });

    // Given up: the queue moves on; a second failure keeps the start of the run.
    let gone = s.record_attempt(&attempt(again[0].id, 4, later, 500, DeliveryOutcome::Failed)).await.unwrap();
    assert_eq!(gone, Recorded::Logged { endpoint_id: e1.id, failing_since: Some(failing_at) });
    let next = s.claim_deliveries(later, later + lease, 10, 5).await.unwrap();
    assert_eq!(next.iter().map(|d| d.event.payload["n"].as_i64().unwrap()).collect::<Vec<_>>(), [2]);
    let ok = s.record_attempt(&attempt(next[0].id, 5, later, 200, DeliveryOutcome::Delivered)).await.unwrap();
    assert_eq!(ok, Recorded::Logged { endpoint_id: e1.id, failing_since: None }, "a success ends the run");

    // The log, newest first, with the next attempt of retried ones.
    let log = s.list_attempts(e1.id, None, 10).await.unwrap();
    type Line<'a> = (Option<u16>, Option<DateTime<Utc>>, &'a str);
    let summary: Vec<Line> = log.iter().map(|a| (a.status_code, a.next_attempt_at, a.topic.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Some(200), None, "order.updated"),
            (Some(500), None, "order.created"),
            (Some(503), Some(retry_at), "order.created")
        ]
    );
    assert_eq!(log[2].error.as_deref(), Some("HTTP 503"));
    assert_eq!(s.list_attempts(e1.id, Some(log[1].id), 10).await.unwrap(), log[2..].to_vec());

    // A disabled endpoint's deliveries wait; enabling it resumes them and forgets its run of failures.
    emit(s, &[("order.updated", serde_json::json!({"n": 5}))]).await;
    s.fan_out(100, later, &matcher).await.unwrap();
    s.record_attempt(&attempt(
        s.claim_deliveries(later, later + lease, 10, 6).await.unwrap()[0].id,
        6,
        later,
        500,
        DeliveryOutcome::RetryAt(later),
    ))
    .await
    .unwrap();
    s.disable_endpoint(e1.id, "failing", later).await.unwrap();
    assert!(s.claim_deliveries(later, later + lease, 10, 7).await.unwrap().is_empty());
    let mut on = fields("https://one.example", &["order.*"], None);
    on.enabled = true;
    assert_eq!(s.update_endpoint(e1.id, &on, later).await.unwrap().failing_since, None);
    assert_eq!(s.claim_deliveries(later, later + lease, 10, 8).await.unwrap().len(), 1);
}

pub async fn webhook_replays_create_new_deliveries(store: Arc<dyn Store>) {
    let s = &*store;
    let t = now();
    let ep = s.create_endpoint(&fields("https://one.example", &["order.*"], None), SECRET, t).await.unwrap();
    emit(s, &[("order.created", serde_json::json!({"n": 1})), ("stock.low", serde_json::json!({"n": 2}))]).await;
    s.fan_out(100, t, &matcher).await.unwrap();
    let d = s.claim_deliveries(t, t + Duration::seconds(30), 10, 1).await.unwrap();
    s.record_attempt(&attempt(d[0].id, 1, t, 200, DeliveryOutcome::Delivered)).await.unwrap();
    let event = d[0].event.id;

    let far = t + Duration::days(1);
    let range = EventSelector::Range { from: t - Duration::days(1), to: far };
    assert_eq!(s.replay_events(ep.id, range, 10, &matcher, t).await.unwrap(), 1, "only matching events of a range");
    assert_eq!(s.replay_events(ep.id, EventSelector::One(event + 1), 10, &matcher, t).await.unwrap(), 1, "one by id");
    let too_many = s.replay_events(ep.id, range, 0, &matcher, t).await;
    assert!(matches!(too_many, Err(StoreError::Conflict { .. })), "{too_many:?}");
    assert!(matches!(s.replay_events(ep.id + 99, range, 10, &matcher, t).await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.replay_events(ep.id, EventSelector::One(event + 99), 10, &matcher, t).await,
        Err(StoreError::NotFound)
    ));
    let mut topics = Vec::new();
    for round in 2..10 {
        let claimed = s.claim_deliveries(t, t + Duration::seconds(30), 10, round).await.unwrap();
        let Some(d) = claimed.first() else { break };
        topics.push(d.event.topic.clone());
        s.record_attempt(&attempt(d.id, round, t, 200, DeliveryOutcome::Delivered)).await.unwrap();
    }
    assert_eq!(topics, ["order.created", "stock.low"], "the replays, in the order asked for");

    // A range is read in pages: matches on either side of a page boundary count, and the limit holds across pages.
    let many: Vec<(&str, serde_json::Value)> = (0..2_500)
        .map(|i| {
            if i % 2 == 0 {
                ("order.updated", serde_json::json!({ "i": i }))
            } else {
                ("stock.low", serde_json::json!({}))
            }
        })
        .collect();
    emit(s, &many).await;
    let wide = EventSelector::Range { from: DateTime::<Utc>::MIN_UTC + Duration::days(1), to: far + Duration::days(1) };
    let too_many = s.replay_events(ep.id, wide, 1_000, &matcher, t).await;
    assert!(matches!(too_many, Err(StoreError::Conflict { .. })), "1,251 match, 1,000 allowed: {too_many:?}");
    assert_eq!(s.replay_events(ep.id, wide, 2_000, &matcher, t).await.unwrap(), 1_251, "every match of every page");
}
