//! Webhooks end to end: a real receiver on loopback verifies every Standard Webhooks signature (with its own code,
//! not the server's), while it is down, failing, restarted, or served by a restarted or second server; the event
//! and channel filters; and bad input.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use testkit::server::TestServer;

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";

/// A message as the receiver got it.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    topic: String,
    data: Value,
    verified: bool,
}

#[derive(Default)]
struct ReceiverState {
    /// Secrets by endpoint path (`/a`, `/b`), set once the endpoint is registered.
    secrets: std::collections::HashMap<String, String>,
    /// Answer every request with this status instead of 204.
    fail_with: Option<u16>,
    got: Vec<(String, Got)>,
}

type Shared = Arc<Mutex<ReceiverState>>;

/// An HTTP receiver on loopback. Each path is one endpoint; `stop` closes the port (connections are refused).
struct Receiver {
    addr: SocketAddr,
    shared: Shared,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Verifies a Standard Webhooks signature the way the specification describes it: HMAC-SHA256 keyed with the
/// base64-decoded part of the secret after `whsec_`, over `{webhook-id}.{webhook-timestamp}.{body}`, base64, and
/// compared with each space-separated `v1,` entry of `webhook-signature`; the timestamp within five minutes.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> bool {
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
    let (Some(id), Some(ts), Some(sigs)) = (h("webhook-id"), h("webhook-timestamp"), h("webhook-signature")) else {
        return false;
    };
    let Ok(ts_secs) = ts.parse::<i64>() else { return false };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    if (now - ts_secs).abs() > 300 {
        return false;
    }
    let Some(key) =
        secret.strip_prefix("whsec_").and_then(|k| base64::engine::general_purpose::STANDARD.decode(k).ok())
    else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    sigs.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map(|d| d.as_slice() == expected.as_slice())
            .unwrap_or(false)
    })
}

async fn receive_hook(
    State(shared): State<Shared>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut st = shared.lock().unwrap();
    if let Some(code) = st.fail_with {
        return StatusCode::from_u16(code).unwrap();
    }
    let path = uri.path().to_string();
    let verified = st.secrets.get(&path).map(|s| verify(s, &headers, &body)).unwrap_or(false);
    let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let got = Got {
        id: headers.get("webhook-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string(),
        topic: msg["type"].as_str().unwrap_or("").to_string(),
        data: msg["data"].clone(),
        verified: verified && msg["timestamp"].as_str().is_some(),
    };
    st.got.push((path, got));
    StatusCode::NO_CONTENT
}

impl Receiver {
    async fn start() -> Receiver {
        Self::serve(Arc::default(), "127.0.0.1:0".parse().unwrap()).await
    }

    async fn serve(shared: Shared, addr: SocketAddr) -> Receiver {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("receiver binds");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let router = axum::Router::new().fallback(axum::routing::post(receive_hook)).with_state(shared.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Receiver { addr, shared, stop: Some(tx), task: Some(task) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Closes the port: from now on connections are refused.
    async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut t) = self.task.take() {
            // Graceful shutdown waits for open connections, which the sender may keep alive: cut it short, and
            // wait until the listener is really gone, so that the port can be bound again.
            if tokio::time::timeout(Duration::from_secs(2), &mut t).await.is_err() {
                t.abort();
                let _ = t.await;
            }
        }
    }

    /// Opens the same port again.
    async fn restart(&mut self) {
        self.stop().await;
        *self = Self::serve(self.shared.clone(), self.addr).await;
    }

    fn fail_with(&self, status: Option<u16>) {
        self.shared.lock().unwrap().fail_with = status;
    }

    fn got(&self, path: &str) -> Vec<Got> {
        self.shared.lock().unwrap().got.iter().filter(|(p, _)| p == path).map(|(_, g)| g.clone()).collect()
    }

    /// Registers an endpoint on the server for `path`, remembering its secret for verification.
    async fn register(&self, s: &TestServer, path: &str, extra: Value) -> i64 {
        let mut body = json!({"url": self.url(path)});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = s.post("/v1/webhook-endpoints", &body).await;
        ok(&r, 201);
        let secret = r.body["secret"].as_str().unwrap().to_string();
        assert!(secret.starts_with("whsec_"));
        self.shared.lock().unwrap().secrets.insert(path.to_string(), secret);
        r.body["id"].as_i64().unwrap()
    }

    /// Waits (up to a minute) until `done` holds for what `path` received.
    async fn wait_for(&self, path: &str, what: &str, done: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        for _ in 0..600 {
            let got = self.got(path);
            if done(&got) {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{path} never received {what}; got {:#?}", self.got(path));
    }
}

/// GETs `path` until `done` holds for the body (for up to a minute), and returns that body.
async fn poll(s: &TestServer, path: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..600 {
        let r = s.get(path).await;
        ok(&r, 200);
        if done(&r.body) {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{path} never showed {what}");
}

/// Short waits, so that tests see several retries in seconds; a lease long enough for a request to finish.
fn fast() -> app::webhooks::WebhookConfig {
    app::webhooks::WebhookConfig {
        poll_interval: Duration::from_millis(20),
        retry: domain::webhooks::RetryPolicy {
            base: Duration::from_millis(50),
            max_wait: Duration::from_millis(300),
            give_up_after: Duration::from_secs(3600),
        },
        lease: Duration::from_secs(3),
        connect_timeout: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// A fresh database with the layout and one product (SKUs A and B), the guard and URL kept by the caller so that
/// servers can come and go on it.
async fn database() -> (Box<dyn std::any::Any + Send + Sync>, String) {
    let (guard, url, store) = fresh_store().await;
    let s = TestServer::start(store, ()).await;
    layout(&s).await;
    ok(&s.post("/v1/products", &tee("tee", &["A", "B"])).await, 201);
    (guard, url)
}

async fn open(url: &str) -> Arc<dyn app::Store> {
    if url.starts_with("postgres") {
        Arc::new(store_postgres::PgStore::connect(url).await.expect("store opens"))
    } else {
        Arc::new(store_sqlite::SqliteStore::connect(url).await.expect("store opens"))
    }
}

async fn server_on(url: &str, config: app::webhooks::WebhookConfig) -> TestServer {
    TestServer::start_configured(open(url).await, (), api::ApiConfig::default(), config).await
}

/// The on_hand of the last balance in an `inventory.changed` message.
fn on_hand(g: &Got) -> i64 {
    g.data["balances"][0]["on_hand"].as_i64().unwrap_or(-1)
}

/// Message ids in order of first arrival.
fn first_arrivals(got: &[Got]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    got.iter().filter(|g| seen.insert(g.id.clone())).map(|g| g.id.clone()).collect()
}

fn event_id(msg_id: &str) -> i64 {
    msg_id.split('_').nth(1).and_then(|s| s.parse().ok()).unwrap()
}

#[tokio::test]
async fn a_receiver_that_is_down_then_failing_then_up_gets_everything_latest_state_last() {
    let (_db, url) = database().await;
    let s = server_on(&url, fast()).await;
    let mut rx = Receiver::start().await;
    let id = rx.register(&s, "/hooks", json!({"event_types": ["inventory.changed"]})).await;
    rx.stop().await;
    for _ in 0..6 {
        receive(&s, "A", B1, 1).await;
    }
    // Refused connections are logged and retried.
    let log = poll(&s, &format!("/v1/webhook-endpoints/{id}/deliveries"), "two attempts", |b| {
        b["items"].as_array().unwrap().len() >= 2
    })
    .await;
    let newest = &log["items"][0];
    assert!(newest["status_code"].is_null(), "{newest}");
    assert!(newest["error"].as_str().unwrap().contains("connect"), "{newest}");
    assert!(newest["next_attempt_at"].is_string(), "{newest}");
    assert_eq!(newest["event_type"], "inventory.changed");

    rx.restart().await;
    rx.fail_with(Some(503));
    for _ in 0..4 {
        receive(&s, "A", B1, 1).await;
    }
    let log = poll(&s, &format!("/v1/webhook-endpoints/{id}/deliveries?limit=500"), "a 503", |b| {
        b["items"].as_array().unwrap().iter().any(|a| a["status_code"] == 503)
    })
    .await;
    assert!(log["items"].as_array().unwrap().iter().all(|a| a["next_attempt_at"].is_string()));
    rx.fail_with(None);

    let got = rx.wait_for("/hooks", "ten changes", |g| first_arrivals(g).len() == 10).await;
    assert!(got.iter().all(|g| g.verified), "every signature verifies: {got:#?}");
    assert!(got.iter().all(|g| g.topic == "inventory.changed"));
    let ids: Vec<i64> = first_arrivals(&got).iter().map(|m| event_id(m)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in event order: {ids:?}");
    assert_eq!(on_hand(got.last().unwrap()), 10, "the latest state arrives last");
    let r = s.get(&format!("/v1/webhook-endpoints/{id}")).await;
    assert!(r.body["failing_since"].is_null(), "a success ends the run of failures: {}", r.text);
    assert!(r.body.get("secret").is_none(), "reads never show the secret");
}

#[tokio::test]
async fn a_server_restarted_in_the_middle_of_retries_still_delivers_everything() {
    let (_db, url) = database().await;
    let rx = Receiver::start().await;
    rx.fail_with(Some(500));
    let first = server_on(&url, fast()).await;
    let id = rx.register(&first, "/hooks", json!({})).await;
    for _ in 0..5 {
        receive(&first, "B", B1, 2).await;
    }
    poll(&first, &format!("/v1/webhook-endpoints/{id}/deliveries"), "three attempts", |b| {
        b["items"].as_array().unwrap().len() >= 3
    })
    .await;
    // The process goes away with retries pending and, likely, a claim in flight.
    drop(first);
    rx.fail_with(None);
    let second = server_on(&url, fast()).await;
    receive(&second, "B", B1, 2).await;
    let got = rx.wait_for("/hooks", "six changes", |g| first_arrivals(g).len() == 6).await;
    assert!(got.iter().all(|g| g.verified));
    let ids: Vec<i64> = first_arrivals(&got).iter().map(|m| event_id(m)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in event order: {ids:?}");
    assert_eq!(on_hand(got.last().unwrap()), 12);
}

#[tokio::test]
async fn two_servers_on_one_database_deliver_each_event_once_per_endpoint() {
    let (_db, url) = database().await;
    let rx = Receiver::start().await;
    // A lease far longer than any send here: a second copy could only come from a double fan-out or claim.
    let config = app::webhooks::WebhookConfig { lease: Duration::from_secs(120), ..fast() };
    let a = server_on(&url, config).await;
    let b = server_on(&url, config).await;
    rx.register(&a, "/one", json!({"event_types": ["inventory.*"]})).await;
    rx.register(&b, "/two", json!({"event_types": ["inventory.changed"]})).await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move { receive(&s, if i % 3 == 0 { "A" } else { "B" }, B1, 1).await }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A last change through one server: each endpoint gets its messages in event order, so once this one is in,
    // everything before it is in too.
    receive(&a, "A", B1, 100).await;
    // Changes a server commits together are told in one event: 21 changes make at most 21 events.
    let store = open(&url).await;
    let events = store.outbox_after(0, 1000).await.unwrap();
    let told: Vec<i64> = events.iter().filter(|e| e.topic == "inventory.changed").map(|e| e.id).collect();
    assert!((2..=21).contains(&told.len()), "{told:?}");
    for path in ["/one", "/two"] {
        let got = rx
            .wait_for(path, "the last change", |g| {
                g.iter().any(|m| m.data["balances"][0]["on_hand"].as_i64() >= Some(100))
            })
            .await;
        assert_eq!(got.len(), told.len(), "{path}: each event exactly once: {got:#?}");
        let ids: Vec<i64> = first_arrivals(&got).iter().map(|m| event_id(m)).collect();
        assert_eq!(ids, told, "{path}: every event, in event order");
        assert!(got.iter().all(|g| g.verified));
    }
}

#[tokio::test]
async fn event_type_and_channel_filters_pick_what_each_endpoint_gets() {
    let (_db, url) = database().await;
    let s = server_on(&url, fast()).await;
    let rx = Receiver::start().await;
    rx.register(&s, "/orders", json!({"event_types": ["order.*"]})).await;
    rx.register(&s, "/de", json!({"channel": "webshop-de"})).await;
    rx.register(&s, "/stock", json!({"event_types": ["inventory.changed", "hold.expired"]})).await;
    receive(&s, "A", B1, 10).await;
    let place = |source: &str, number: &str| json!({"source": source, "external_number": number, "currency": "EUR", "lines": [{"sku": "A", "quantity": 1}]});
    let phone = s.post("/v1/orders", &place("phone", "p-1")).await;
    ok(&phone, 201);
    let de = s.post("/v1/orders", &place("webshop-de", "d-1")).await;
    ok(&de, 201);
    let de_id = de.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/orders/{de_id}/cancel"), &json!({})).await, 200);
    // The marker: a last order every endpoint hears of (as order.created, or its inventory.changed).
    ok(&s.post("/v1/orders", &place("webshop-de", "d-2")).await, 201);

    let orders = rx.wait_for("/orders", "the marker", |g| g.iter().any(|m| m.data["external_number"] == "d-2")).await;
    let topics: Vec<&str> = orders.iter().map(|g| g.topic.as_str()).collect();
    assert_eq!(topics, ["order.created", "order.created", "order.cancelled", "order.created"]);
    assert_eq!(orders[1].data["order_id"], de_id, "order.created carries the new order's id");
    assert_eq!(orders[1].data["source"], "webshop-de");
    assert_eq!(orders[0].data["order_id"], phone.body["id"]);
    assert_eq!(orders[2].data["order_id"], de_id);
    assert_eq!(orders[2].data["source"], "webshop-de", "every order event names its source");

    let de_got = rx.wait_for("/de", "the marker", |g| g.iter().any(|m| m.data["external_number"] == "d-2")).await;
    let topics: Vec<&str> = de_got.iter().map(|g| g.topic.as_str()).collect();
    assert_eq!(topics, ["order.created", "order.cancelled", "order.created"], "only the channel's events");
    assert!(de_got.iter().all(|g| g.data["source"] == "webshop-de"));

    let stock = rx.wait_for("/stock", "five changes", |g| g.len() >= 5).await;
    assert!(stock.iter().all(|g| g.topic == "inventory.changed"), "{stock:#?}");
    assert!(orders.iter().chain(&de_got).chain(&stock).all(|g| g.verified));
}

#[tokio::test]
async fn a_new_endpoint_gets_events_from_its_creation_on() {
    let (_db, url) = database().await;
    let s = server_on(&url, app::webhooks::WebhookConfig { creation_grace: Duration::ZERO, ..fast() }).await;
    // No endpoint yet: these events stay pending, and must not reach the endpoint registered afterwards.
    receive(&s, "A", B1, 10).await;
    let place = |number: &str| json!({"source": "phone", "external_number": number, "currency": "EUR", "lines": [{"sku": "A", "quantity": 1}]});
    ok(&s.post("/v1/orders", &place("before")).await, 201);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rx = Receiver::start().await;
    rx.register(&s, "/late", json!({"event_types": ["order.*"]})).await;
    ok(&s.post("/v1/orders", &place("after")).await, 201);
    let got = rx.wait_for("/late", "the later order", |g| g.iter().any(|m| m.data["external_number"] == "after")).await;
    assert_eq!(got.len(), 1, "only the order placed after the endpoint was registered: {got:#?}");
    assert!(got[0].verified);
}

#[tokio::test]
async fn endpoints_crud_secrets_and_bad_input() {
    let s = server().await;
    let create = |body: Value| {
        let s = &s;
        async move { s.post("/v1/webhook-endpoints", &body).await }
    };
    for (body, status, code, field) in [
        (json!({"url": "ftp://example.org/x"}), 422, "validation_failed", "url"),
        (json!({"url": "not a url"}), 422, "validation_failed", "url"),
        (
            json!({"url": "https://example.org", "event_types": ["order.created", "order.shipped"]}),
            422,
            "validation_failed",
            "event_types[1]",
        ),
        (json!({"url": "https://example.org", "event_types": ["*"]}), 422, "validation_failed", "event_types[0]"),
        (json!({"url": "https://example.org", "secret": "whsec_short"}), 422, "validation_failed", "secret"),
        (json!({"url": "https://example.org", "channel": "has space"}), 422, "validation_failed", "channel"),
        (json!({"url": "https://example.org", "colour": "red"}), 400, "malformed_json", "colour"),
        (json!({"event_types": []}), 400, "malformed_json", "body"),
    ] {
        let r = create(body.clone()).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.code(), code, "{body}");
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert!(
            r.body["errors"].as_array().unwrap().iter().any(|e| e["field"].as_str().unwrap().contains(field)),
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(s.get("/v1/webhook-endpoints").await.body["items"], json!([]), "nothing was created");

    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let a = create(json!({"url": "https://shop.example/hooks", "secret": given, "event_types": ["order.*"]})).await;
    ok(&a, 201);
    assert_eq!(a.body["secret"], given);
    let b = create(json!({"url": "http://127.0.0.1:9/x", "channel": "webshop-de"})).await;
    ok(&b, 201);
    let generated = b.body["secret"].as_str().unwrap();
    assert!(generated.starts_with("whsec_") && generated.len() > 30);
    let (ia, ib) = (a.body["id"].as_i64().unwrap(), b.body["id"].as_i64().unwrap());

    let page = s.get("/v1/webhook-endpoints?limit=1").await;
    ok(&page, 200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert!(page.body["items"][0].get("secret").is_none(), "lists never show secrets");
    let next = page.body["next_cursor"].as_str().unwrap();
    let rest = s.get(&format!("/v1/webhook-endpoints?limit=1&after={next}")).await;
    assert_eq!(rest.body["items"][0]["id"], ib);
    assert!(rest.body["next_cursor"].is_null());
    assert_eq!(s.get("/v1/webhook-endpoints?after=zz").await.code(), "validation_failed");

    let got = s.get(&format!("/v1/webhook-endpoints/{ia}")).await;
    assert!(got.body.get("secret").is_none());
    assert_eq!(got.body["event_types"], json!(["order.*"]));
    assert_eq!(s.get(&format!("/v1/webhook-endpoints/{ia}/secret")).await.body["secret"], given);
    let rotated = s.post(&format!("/v1/webhook-endpoints/{ia}/rotate-secret"), &json!({})).await;
    ok(&rotated, 200);
    assert_ne!(rotated.body["secret"], given);
    assert_eq!(s.get(&format!("/v1/webhook-endpoints/{ia}/secret")).await.body["secret"], rotated.body["secret"]);

    let bad = s.patch(&format!("/v1/webhook-endpoints/{ib}"), &json!({"url": "mailto:x@example.org"})).await;
    assert_eq!(bad.status, 422);
    let patched = s
        .patch(
            &format!("/v1/webhook-endpoints/{ib}"),
            &json!({"channel": null, "event_types": ["stock.low"], "enabled": false}),
        )
        .await;
    ok(&patched, 200);
    assert!(patched.body["channel"].is_null());
    assert_eq!(patched.body["enabled"], false);
    assert_eq!(patched.body["disabled_reason"], "disabled on request");
    assert_eq!(patched.body["url"], "http://127.0.0.1:9/x", "the refused patch changed nothing");
    let enabled = s.patch(&format!("/v1/webhook-endpoints/{ib}"), &json!({"enabled": true})).await;
    assert!(enabled.body["disabled_reason"].is_null());

    for (body, field) in [
        (json!({}), "from"),
        (json!({"event_id": 1, "from": "2026-01-01T00:00:00Z"}), "event_id"),
        (json!({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}), "to"),
    ] {
        let r = s.post(&format!("/v1/webhook-endpoints/{ia}/replay"), &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let unknown = s.post(&format!("/v1/webhook-endpoints/{ia}/replay"), &json!({"event_id": 999999})).await;
    assert_eq!(unknown.code(), "unknown_reference");

    ok(&s.delete(&format!("/v1/webhook-endpoints/{ia}")).await, 204);
    assert_eq!(s.get(&format!("/v1/webhook-endpoints/{ia}")).await.status, 404);
    assert_eq!(s.delete(&format!("/v1/webhook-endpoints/{ia}")).await.code(), "not_found");
    assert_eq!(s.get("/v1/webhook-endpoints/999/deliveries").await.status, 404);
    assert_eq!(s.post("/v1/webhook-endpoints/999/replay", &json!({"event_id": 1})).await.status, 404);
}

#[tokio::test]
async fn replay_sends_one_event_or_a_time_range_again() {
    let (_db, url) = database().await;
    let s = server_on(&url, fast()).await;
    let rx = Receiver::start().await;
    let id = rx.register(&s, "/hooks", json!({"event_types": ["inventory.changed"]})).await;
    let t0 = chrono::Utc::now();
    for _ in 0..3 {
        receive(&s, "A", B1, 1).await;
    }
    let got = rx.wait_for("/hooks", "three changes", |g| g.len() == 3).await;
    let first = event_id(&got[0].id);

    let one = s.post(&format!("/v1/webhook-endpoints/{id}/replay"), &json!({"event_id": first})).await;
    assert_eq!(one.status, 202, "{}", one.text);
    assert_eq!(one.body["deliveries"], 1);
    let got = rx.wait_for("/hooks", "the replayed event", |g| g.len() == 4).await;
    assert_eq!(got[3].id, got[0].id, "a replay keeps the message id, so receivers can tell");
    assert_eq!(got[3].data, got[0].data);

    let range = json!({"from": t0.to_rfc3339(), "to": chrono::Utc::now().to_rfc3339()});
    let r = s.post(&format!("/v1/webhook-endpoints/{id}/replay"), &range).await;
    assert_eq!(r.body["deliveries"], 3, "{}", r.text);
    let got = rx.wait_for("/hooks", "the replayed range", |g| g.len() == 7).await;
    assert_eq!(got[4..].iter().map(|g| g.id.clone()).collect::<Vec<_>>(), first_arrivals(&got));
    assert!(got.iter().all(|g| g.verified));
}

#[tokio::test]
async fn a_hanging_endpoint_never_blocks_the_others_and_is_given_up_then_disabled() {
    let (_db, url) = database().await;
    let config = app::webhooks::WebhookConfig {
        retry: domain::webhooks::RetryPolicy {
            base: Duration::from_millis(50),
            max_wait: Duration::from_millis(100),
            give_up_after: Duration::from_millis(1500),
        },
        timeout: Duration::from_millis(500),
        disable_after: Duration::from_secs(3),
        ..fast()
    };
    let s = server_on(&url, config).await;
    // Accepts connections (the kernel does) but never answers: every request times out.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let r =
        s.post("/v1/webhook-endpoints", &json!({"url": format!("http://{}/", hanging.local_addr().unwrap())})).await;
    ok(&r, 201);
    let dead = r.body["id"].as_i64().unwrap();
    let rx = Receiver::start().await;
    rx.register(&s, "/live", json!({"event_types": ["inventory.changed"]})).await;
    for _ in 0..3 {
        receive(&s, "A", B1, 1).await;
    }
    let got = rx.wait_for("/live", "three changes", |g| g.len() == 3).await;
    assert!(got.iter().all(|g| g.verified));

    let disabled = poll(&s, &format!("/v1/webhook-endpoints/{dead}"), "it disabled", |b| b["enabled"] == false).await;
    assert!(disabled["disabled_reason"].as_str().unwrap().contains("failed"), "{disabled}");
    assert!(disabled["failing_since"].is_string());
    let log = s.get(&format!("/v1/webhook-endpoints/{dead}/deliveries?limit=500")).await.body;
    let attempts = log["items"].as_array().unwrap();
    assert!(attempts.iter().all(|a| a["status_code"].is_null() && a["error"].as_str().unwrap().contains("timed out")));
    assert!(attempts.iter().any(|a| a["next_attempt_at"].is_null()), "a delivery was given up: {log}");
    // The next event goes out after the given-up one: the first event is not retried for ever.
    let events: std::collections::BTreeSet<i64> = attempts.iter().map(|a| a["event_id"].as_i64().unwrap()).collect();
    assert!(events.len() >= 2, "{log}");
    drop(hanging);
}
