//! Trust end to end: the matrix of every endpoint against no key, a revoked key, each role and another channel's
//! key; channel scoping of orders, holds and availability; keys made, shown once, revoked and expired; the audit
//! trail; rate limits; metrics; secrets kept out of logs, error bodies and the audit trail; and the key, backup and
//! verify commands.

use std::process::Command;
use std::sync::Arc;

use app::trust::Role;
use reqwest::Method;
use serde_json::{json, Value};
use testkit::server::TestServer;

use crate::common::*;

/// Two channels (`web`, `shop`) selling from WH1, with stock of A and B.
async fn shop_server() -> TestServer {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 100).await;
    receive(&s, "B", "WH1/HALL-1/SHELF-1/BIN-1", 100).await;
    for code in ["web", "shop"] {
        let body =
            json!({"code": code, "name": code, "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]});
        ok(&s.post("/v1/channels", &body).await, 201);
    }
    s
}

/// A concrete path for a route pattern: ids that do not exist, the `web` channel where the route names one.
fn concrete(pattern: &str) -> String {
    pattern
        .replace("{code}", "web")
        .replace("{id}", "999999")
        .replace("{key}", "no-such")
        .replace("{sku}", "A")
        .replace("{path}", "NOWHERE")
}

/// Who may call each endpoint besides admin, written by hand from issue #8's roles rather than read from the
/// server's own table, so that a wrong rule there fails here: `s` staff (catalog, orders, purchasing, reports),
/// `w` warehouse (locations, levels, moves, pick lists, receipts, transfers, counts), `c` a channel key (its own
/// orders, holds, availability and feed). Webhooks, keys, the audit trail and how the books are kept are admin's.
const EXPECTED: &[(&str, &str, &str)] = &[
    ("GET", "/v1/products", "sw"),
    ("POST", "/v1/products", "s"),
    ("GET", "/v1/products/{key}", "sw"),
    ("PATCH", "/v1/products/{key}", "s"),
    ("DELETE", "/v1/products/{key}", "s"),
    ("POST", "/v1/products/{key}/variants", "s"),
    ("GET", "/v1/variants", "sw"),
    ("GET", "/v1/variants/{key}", "sw"),
    ("PATCH", "/v1/variants/{key}", "s"),
    ("DELETE", "/v1/variants/{key}", "s"),
    ("GET", "/v1/variants/{key}/components", "sw"),
    ("PUT", "/v1/variants/{key}/components", "s"),
    ("GET", "/v1/inventory/availability/{sku}", "sw"),
    ("GET", "/v1/locations", "sw"),
    ("POST", "/v1/locations", "w"),
    ("GET", "/v1/locations/{path}", "sw"),
    ("PATCH", "/v1/locations/{path}", "w"),
    ("DELETE", "/v1/locations/{path}", "w"),
    ("POST", "/v1/inventory/adjustments", "w"),
    ("POST", "/v1/inventory/moves", "w"),
    ("GET", "/v1/inventory/levels", "sw"),
    ("GET", "/v1/inventory/movements", "sw"),
    ("POST", "/v1/orders", "sc"),
    ("GET", "/v1/orders", "swc"),
    ("GET", "/v1/orders/{id}", "swc"),
    ("POST", "/v1/orders/{id}/cancel", "sc"),
    ("POST", "/v1/orders/{id}/payments", "s"),
    ("POST", "/v1/orders/{id}/shipments", "sw"),
    ("POST", "/v1/orders/{id}/edits", "s"),
    ("POST", "/v1/orders/{id}/credit-memos", "s"),
    ("POST", "/v1/returns", "s"),
    ("GET", "/v1/returns/{id}", "sw"),
    ("POST", "/v1/returns/{id}/receipts", "sw"),
    ("POST", "/v1/holds", "sc"),
    ("GET", "/v1/holds/{id}", "sc"),
    ("POST", "/v1/holds/{id}/extend", "sc"),
    ("POST", "/v1/holds/{id}/release", "sc"),
    ("GET", "/v1/customers", "s"),
    ("POST", "/v1/customers", "s"),
    ("GET", "/v1/customers/{id}", "s"),
    ("PATCH", "/v1/customers/{id}", "s"),
    ("GET", "/v1/pick-lists", "sw"),
    ("POST", "/v1/pick-lists", "w"),
    ("GET", "/v1/pick-lists/{id}", "sw"),
    ("POST", "/v1/pick-lists/{id}/complete", "w"),
    ("POST", "/v1/pick-lists/{id}/cancel", "w"),
    ("POST", "/v1/orders/{id}/packages", "w"),
    ("GET", "/v1/channels", "s"),
    ("POST", "/v1/channels", ""),
    ("GET", "/v1/channels/{code}", "sc"),
    ("PATCH", "/v1/channels/{code}", ""),
    ("DELETE", "/v1/channels/{code}", ""),
    ("GET", "/v1/channels/{code}/rules", "s"),
    ("PUT", "/v1/channels/{code}/rules", ""),
    ("POST", "/v1/channels/{code}/rules/preview", "s"),
    ("DELETE", "/v1/channels/{code}/rules", ""),
    ("GET", "/v1/channels/{code}/availability", "sc"),
    ("GET", "/v1/channels/{code}/availability/{sku}", "sc"),
    ("GET", "/v1/channels/{code}/snapshot", "sc"),
    ("GET", "/v1/channels/{code}/prices/{sku}", "sc"),
    ("GET", "/v1/suppliers", "s"),
    ("POST", "/v1/suppliers", "s"),
    ("GET", "/v1/suppliers/{id}", "s"),
    ("PUT", "/v1/suppliers/{id}/items", "s"),
    ("GET", "/v1/purchase-orders", "sw"),
    ("POST", "/v1/purchase-orders", "s"),
    ("GET", "/v1/purchase-orders/{id}", "sw"),
    ("POST", "/v1/purchase-orders/{id}/order", "s"),
    ("POST", "/v1/purchase-orders/{id}/cancel", "s"),
    ("POST", "/v1/purchase-orders/{id}/close", "s"),
    ("POST", "/v1/purchase-orders/{id}/receipts", "sw"),
    ("GET", "/v1/putaway", "sw"),
    ("POST", "/v1/default-bins", "w"),
    ("DELETE", "/v1/default-bins", "w"),
    ("GET", "/v1/transfers", "sw"),
    ("POST", "/v1/transfers", "w"),
    ("GET", "/v1/transfers/{id}", "sw"),
    ("POST", "/v1/transfers/{id}/ship", "w"),
    ("POST", "/v1/transfers/{id}/cancel", "w"),
    ("POST", "/v1/transfers/{id}/receipts", "w"),
    ("GET", "/v1/counts", "sw"),
    ("POST", "/v1/counts", "w"),
    ("GET", "/v1/counts/{id}", "sw"),
    ("POST", "/v1/counts/{id}/entries", "w"),
    ("GET", "/v1/counts/{id}/variance", "sw"),
    ("POST", "/v1/counts/{id}/approve", "w"),
    ("POST", "/v1/inspections", "w"),
    ("GET", "/v1/reports/shrinkage", "s"),
    ("GET", "/v1/settings/costing", "s"),
    ("PUT", "/v1/settings/costing", ""),
    ("GET", "/v1/settings/accounting", "s"),
    ("PUT", "/v1/settings/accounting", ""),
    ("GET", "/v1/settings/replenishment", "s"),
    ("PUT", "/v1/settings/replenishment", "s"),
    ("POST", "/v1/purchase-orders/{id}/receipts/{number}/landed-costs", "s"),
    ("GET", "/v1/purchase-orders/{id}/landed-costs", "s"),
    ("GET", "/v1/reports/valuation", "s"),
    ("GET", "/v1/reports/margin", "s"),
    ("GET", "/v1/reports/stock-health", "s"),
    ("GET", "/v1/reports/sales-per-day", "s"),
    ("GET", "/v1/reports/dashboard", "sw"),
    ("GET", "/v1/accounting/journal", "s"),
    ("GET", "/v1/accounting/periods", "s"),
    ("POST", "/v1/accounting/periods/{period}/lock", ""),
    ("GET", "/v1/items/{sku}/velocity", "s"),
    ("GET", "/v1/items/{sku}/forecast", "s"),
    ("GET", "/v1/replenishment/suggestions", "s"),
    ("POST", "/v1/replenishment/purchase-orders", "s"),
    ("POST", "/v1/replenishment/evaluate", "s"),
    ("GET", "/v1/webhook-endpoints", ""),
    ("POST", "/v1/webhook-endpoints", ""),
    ("GET", "/v1/webhook-endpoints/{id}", ""),
    ("PATCH", "/v1/webhook-endpoints/{id}", ""),
    ("DELETE", "/v1/webhook-endpoints/{id}", ""),
    ("GET", "/v1/webhook-endpoints/{id}/secret", ""),
    ("POST", "/v1/webhook-endpoints/{id}/rotate-secret", ""),
    ("GET", "/v1/webhook-endpoints/{id}/deliveries", ""),
    ("POST", "/v1/webhook-endpoints/{id}/replay", ""),
    ("GET", "/v1/api-keys", ""),
    ("POST", "/v1/api-keys", ""),
    ("GET", "/v1/api-keys/{id}", ""),
    ("POST", "/v1/api-keys/{id}/revoke", ""),
    ("GET", "/v1/audit", ""),
    ("GET", "/metrics", "sw"),
];

fn expected(method: &str, pattern: &str) -> Option<&'static str> {
    EXPECTED.iter().find(|(m, p, _)| m.eq_ignore_ascii_case(method) && *p == pattern).map(|(_, _, who)| *who)
}

fn admitted(who: &str, role: Role) -> bool {
    match role {
        Role::Admin => true,
        Role::Staff => who.contains('s'),
        Role::Warehouse => who.contains('w'),
        Role::Channel => who.contains('c'),
    }
}

fn method_of(m: &str) -> Method {
    Method::from_bytes(m.to_uppercase().as_bytes()).unwrap()
}

#[tokio::test]
async fn every_endpoint_answers_each_key_as_the_issue_s_roles_say() {
    let s = shop_server().await;
    let doc = s.get("/openapi.json").await.body;
    let revoked = s.key("gone", Role::Staff, None).await;
    let revoked_id = s.get("/v1/api-keys").await.body["items"].as_array().unwrap().last().unwrap()["id"].clone();
    ok(&s.post(&format!("/v1/api-keys/{revoked_id}/revoke"), &json!({})).await, 200);
    let keys = [
        (Role::Staff, s.key("staff", Role::Staff, None).await),
        (Role::Warehouse, s.key("warehouse", Role::Warehouse, None).await),
        (Role::Channel, s.key("web shop", Role::Channel, Some("web")).await),
    ];
    let other_channel = s.key("other shop", Role::Channel, Some("shop")).await;
    let mut checked = 0;
    for (pattern, ops) in doc["paths"].as_object().unwrap() {
        for (method, _) in ops.as_object().unwrap() {
            let path = concrete(pattern);
            let (m, body) = (method_of(method), (method != "get" && method != "delete").then(|| json!({})));
            let public = api::auth::PUBLIC_PATHS.contains(&pattern.as_str());
            let none = s.call(m.clone(), &path, None, body.as_ref()).await;
            let gone = s.call(m.clone(), &path, Some(&revoked), body.as_ref()).await;
            if public {
                assert_eq!(none.status, 200, "{method} {pattern} is public");
                continue;
            }
            assert_eq!(none.status, 401, "{method} {pattern} without a key: {}", none.text);
            assert_eq!(none.code(), "unauthenticated");
            assert_eq!(none.header("www-authenticate"), Some("Bearer"));
            assert_eq!(gone.status, 401, "{method} {pattern} with a revoked key: {}", gone.text);
            let who = expected(method, pattern)
                .unwrap_or_else(|| panic!("{method} {pattern} has no expected outcome: add it to EXPECTED"));
            for (role, key) in &keys {
                let r = s.call(m.clone(), &path, Some(key), body.as_ref()).await;
                if admitted(who, *role) {
                    assert!(
                        r.status != 401 && r.status != 403,
                        "{method} {pattern} admits {role:?}, got {}: {}",
                        r.status,
                        r.text
                    );
                } else {
                    assert_eq!(r.status, 403, "{method} {pattern} refuses {role:?}: {}", r.text);
                    assert_eq!(r.code(), "forbidden");
                }
            }
            if pattern.contains("{code}") && admitted(who, Role::Channel) {
                let r = s.call(m.clone(), &path, Some(&other_channel), body.as_ref()).await;
                assert_eq!(r.status, 403, "{method} {pattern} with another channel's key: {}", r.text);
            }
            // The admin key may call everything.
            let r = s.call(m.clone(), &path, Some(&s.admin_key), body.as_ref()).await;
            assert!(r.status != 401 && r.status != 403, "{method} {pattern} refuses admin: {}", r.text);
            checked += 1;
        }
    }
    assert_eq!(checked, EXPECTED.len(), "every expected endpoint exists in the OpenAPI document");
    // A few outcomes spelled out, so that the table cannot drift into nonsense unnoticed.
    let (staff, warehouse, channel) = (&keys[0].1, &keys[1].1, &keys[2].1);
    assert_eq!(s.call(Method::POST, "/v1/api-keys", Some(staff), Some(&json!({}))).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/audit", Some(staff), None).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/webhook-endpoints", Some(staff), None).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/products", Some(channel), None).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/inventory/levels", Some(channel), None).await.status, 403);
    assert_eq!(s.call(Method::POST, "/v1/orders", Some(warehouse), Some(&json!({}))).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/inventory/levels", Some(warehouse), None).await.status, 200);
    assert_eq!(s.call(Method::GET, "/v1/products", Some(staff), None).await.status, 200);
    assert_eq!(s.call(Method::GET, "/metrics", None, None).await.status, 401);
    assert_eq!(s.call(Method::GET, "/metrics", Some(channel), None).await.status, 403);
    assert_eq!(s.call(Method::POST, "/v1/counts", Some(staff), Some(&json!({}))).await.status, 403);
    let garbage = s.call(Method::GET, "/v1/products", Some("sr_not_a_key_at_all_000000000"), None).await;
    assert_eq!(garbage.status, 401);
}

fn order(source: &str, number: &str) -> Value {
    json!({"source": source, "external_number": number, "currency": "EUR", "lines": [{"sku": "A", "quantity": 1}]})
}

#[tokio::test]
async fn a_channel_key_sees_and_changes_only_its_own_channel() {
    let s = shop_server().await;
    let web = s.key("web shop", Role::Channel, Some("web")).await;
    let shop = s.key("other shop", Role::Channel, Some("shop")).await;
    let staff = s.key("staff", Role::Staff, None).await;

    let mine = s.call(Method::POST, "/v1/orders", Some(&web), Some(&order("web", "w-1"))).await;
    ok(&mine, 201);
    let id = mine.body["id"].as_i64().unwrap();
    let theirs = s.call(Method::POST, "/v1/orders", Some(&web), Some(&order("shop", "s-1"))).await;
    assert_eq!(theirs.status, 403, "{}", theirs.text);
    assert_eq!(theirs.body["errors"][0]["field"], "source");
    ok(&s.call(Method::POST, "/v1/orders", Some(&shop), Some(&order("shop", "s-2"))).await, 201);
    ok(&s.call(Method::POST, "/v1/orders", Some(&staff), Some(&order("phone", "p-1"))).await, 201);

    // Another channel's order does not exist for this key; its own does.
    let peek = s.call(Method::GET, &format!("/v1/orders/{id}"), Some(&shop), None).await;
    assert_eq!((peek.status, peek.code()), (404, "not_found"));
    let cancel = s.call(Method::POST, &format!("/v1/orders/{id}/cancel"), Some(&shop), Some(&json!({}))).await;
    assert_eq!(cancel.status, 404);
    ok(&s.call(Method::GET, &format!("/v1/orders/{id}"), Some(&web), None).await, 200);
    let list = s.call(Method::GET, "/v1/orders", Some(&web), None).await;
    ok(&list, 200);
    let sources: Vec<&str> =
        list.body["items"].as_array().unwrap().iter().map(|o| o["source"].as_str().unwrap()).collect();
    assert_eq!(sources, vec!["web"]);
    assert_eq!(s.call(Method::GET, "/v1/orders?source=shop", Some(&web), None).await.status, 403);
    assert_eq!(s.get("/v1/orders").await.body["items"].as_array().unwrap().len(), 3, "admin sees all");

    // Holds belong to the channel whose key placed them.
    let hold =
        s.call(Method::POST, "/v1/holds", Some(&web), Some(&json!({"lines": [{"sku": "B", "quantity": 2}]}))).await;
    ok(&hold, 201);
    let hid = hold.body["id"].as_i64().unwrap();
    assert_eq!(s.call(Method::GET, &format!("/v1/holds/{hid}"), Some(&shop), None).await.status, 404);
    let release = s.call(Method::POST, &format!("/v1/holds/{hid}/release"), Some(&shop), Some(&json!({}))).await;
    assert_eq!(release.status, 404);
    ok(&s.call(Method::GET, &format!("/v1/holds/{hid}"), Some(&web), None).await, 200);
    ok(&s.call(Method::GET, &format!("/v1/holds/{hid}"), Some(&staff), None).await, 200);
    let convert = json!({"source": "shop", "external_number": "s-3", "currency": "EUR", "hold_id": hid,
        "lines": [{"sku": "B", "quantity": 2}]});
    assert_eq!(s.call(Method::POST, "/v1/orders", Some(&shop), Some(&convert)).await.status, 404);
    let staff_hold = s.post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 1}]})).await;
    let shid = staff_hold.body["id"].as_i64().unwrap();
    assert_eq!(s.call(Method::GET, &format!("/v1/holds/{shid}"), Some(&web), None).await.status, 404);

    // Availability and the feed: its own channel only.
    ok(&s.call(Method::GET, "/v1/channels/web/availability/A", Some(&web), None).await, 200);
    ok(&s.call(Method::GET, "/v1/channels/web/availability", Some(&web), None).await, 200);
    assert_eq!(s.call(Method::GET, "/v1/channels/shop/availability/A", Some(&web), None).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/channels/shop/availability", Some(&web), None).await.status, 403);
    assert_eq!(s.call(Method::GET, "/v1/channels/shop", Some(&web), None).await.status, 403);
}

#[tokio::test]
async fn keys_are_shown_once_work_at_once_and_stop_at_once() {
    let s = server().await;
    let made = s.post("/v1/api-keys", &json!({"name": "pos terminal 3", "role": "staff"})).await;
    ok(&made, 201);
    let secret = made.body["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("sr_") && secret.len() > 40);
    assert_eq!(made.header("cache-control"), Some("no-store"));
    let id = made.body["id"].as_i64().unwrap();
    ok(&s.call(Method::GET, "/v1/products", Some(&secret), None).await, 200);

    // Read back: never the secret, only a prefix to tell keys apart.
    let listed = s.get("/v1/api-keys").await;
    assert!(!listed.text.contains(&secret));
    assert!(listed.body["items"].as_array().unwrap().iter().all(|k| k.get("secret").is_none()));
    let one = s.get(&format!("/v1/api-keys/{id}")).await;
    assert_eq!(one.body["prefix"], secret[..8]);
    assert_eq!(one.body["role"], "staff");

    let revoked = s.post(&format!("/v1/api-keys/{id}/revoke"), &json!({})).await;
    ok(&revoked, 200);
    assert!(revoked.body["revoked_at"].is_string());
    let after = s.call(Method::GET, "/v1/products", Some(&secret), None).await;
    assert_eq!((after.status, after.code()), (401, "unauthenticated"));

    // A retry of the same Idempotency-Key does not replay the secret from storage: it makes another key.
    let body = json!({"name": "twice", "role": "warehouse"});
    let a = s.post_with_key("/v1/api-keys", "mk-1", &body).await;
    let b = s.post_with_key("/v1/api-keys", "mk-1", &body).await;
    ok(&a, 201);
    ok(&b, 201);
    assert_ne!(a.body["secret"], b.body["secret"]);

    // Expiry, and validation.
    let soon = (chrono::Utc::now() + chrono::TimeDelta::milliseconds(1500)).to_rfc3339();
    let short = s.post("/v1/api-keys", &json!({"name": "temp", "role": "staff", "expires_at": soon})).await;
    ok(&short, 201);
    let short = short.body["secret"].as_str().unwrap().to_string();
    ok(&s.call(Method::GET, "/v1/products", Some(&short), None).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let expired = s.call(Method::GET, "/v1/products", Some(&short), None).await;
    assert_eq!(expired.status, 401);
    // Every 401 reads the same: an answer does not tell whether a secret was ever a key.
    let unknown = s.call(Method::GET, "/v1/products", Some("sr_never_a_key_0000000000000000000000"), None).await;
    let none = s.call(Method::GET, "/v1/products", None, None).await;
    let shape = |r: &testkit::server::Reply| {
        let mut b = r.body.clone();
        b.as_object_mut().unwrap().remove("request_id");
        (r.status, b)
    };
    for r in [&after, &expired, &none] {
        assert_eq!(shape(r), shape(&unknown), "{} vs {}", r.text, unknown.text);
    }
    let bad = s.post("/v1/api-keys", &json!({"name": "", "role": "channel"})).await;
    assert_eq!(bad.status, 422);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["name", "channel"]);
    let unknown = s.post("/v1/api-keys", &json!({"name": "x", "role": "channel", "channel": "nope"})).await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_reference"));
    assert_eq!(s.post("/v1/api-keys", &json!({"name": "x", "role": "root"})).await.status, 400);
}

#[tokio::test]
async fn every_change_is_in_the_audit_trail_with_its_actor_and_request() {
    let s = server().await;
    let staff = s.key("maria", Role::Staff, None).await;
    let r = s
        .send(
            reqwest::Client::new()
                .post(s.url("/v1/products"))
                .bearer_auth(&staff)
                .header("X-Request-Id", "req-audit-1")
                .json(&tee("tee", &["A"])),
        )
        .await;
    ok(&r, 201);
    layout(&s).await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 5).await;
    assert_eq!(s.call(Method::POST, "/v1/products", Some(&staff), Some(&json!({}))).await.status, 400);

    let products = s.get("/v1/audit?entity=products").await;
    ok(&products, 200);
    let items = products.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "failed changes are not recorded: {items:?}");
    let e = &items[0];
    assert_eq!(e["actor"], "maria");
    assert_eq!(e["entity_id"], "1");
    assert_eq!(e["request_id"], "req-audit-1");
    assert_eq!(e["action"], "POST /v1/products");
    assert_eq!(e["status"], 201);
    let by_key = s.get(&format!("/v1/audit?actor={}", e["actor_key_id"])).await;
    assert_eq!(by_key.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(s.get("/v1/audit?actor=maria").await.body["items"].as_array().unwrap().len(), 1);
    let locations = s.get("/v1/audit?entity=locations&limit=2").await;
    assert_eq!(locations.body["items"].as_array().unwrap().len(), 2);
    let next = locations.body["next_cursor"].as_str().unwrap();
    let rest = s.get(&format!("/v1/audit?entity=locations&after={next}")).await;
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 5, "7 locations in all");
    assert_eq!(s.get("/v1/audit?entity=inventory").await.body["items"].as_array().unwrap().len(), 1);
    let future = s.get("/v1/audit?since=2999-01-01T00:00:00Z").await;
    assert!(future.body["items"].as_array().unwrap().is_empty());
    assert_eq!(s.get("/v1/audit?after=zz").await.status, 422);
}

/// Orders and holds hand their audit entry to the write path, which writes it in the order's or hold's own
/// transaction: the same entry the audit layer writes for any other change, with the new id filled in.
#[tokio::test]
async fn orders_and_holds_are_audited_with_their_own_transaction() {
    let s = shop_server().await;
    let staff = s.key("maria", Role::Staff, None).await;
    let web = s.key("web shop", Role::Channel, Some("web")).await;
    let order =
        json!({"source": "web", "external_number": "W-1", "currency": "EUR", "lines": [{"sku": "A", "quantity": 2}]});
    let placed = s
        .send(
            reqwest::Client::new()
                .post(s.url("/v1/orders"))
                .bearer_auth(&staff)
                .header("X-Request-Id", "req-order-1")
                .json(&order),
        )
        .await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap().to_string();
    // A retry under the same number answers the first order with 200 and is recorded as such; a refusal is not.
    ok(&s.call(Method::POST, "/v1/orders", Some(&staff), Some(&order)).await, 200);
    let short = json!({"source": "web", "currency": "EUR", "lines": [{"sku": "B", "quantity": 1000}]});
    assert_eq!(s.call(Method::POST, "/v1/orders", Some(&staff), Some(&short)).await.status, 409);
    // Replays of an Idempotency-Key changed nothing and are not recorded again.
    let keyed = json!({"source": "web", "currency": "EUR", "lines": [{"sku": "B", "quantity": 1}]});
    let first = s.post_with_key("/v1/orders", "order-key-1", &keyed).await;
    ok(&first, 201);
    let again = s.post_with_key("/v1/orders", "order-key-1", &keyed).await;
    assert_eq!((again.status, again.body["id"].clone()), (201, first.body["id"].clone()));

    let orders = s.get("/v1/audit?entity=orders").await;
    ok(&orders, 200);
    let items = orders.body["items"].as_array().unwrap();
    let seen: Vec<(Value, Value, Value)> =
        items.iter().map(|e| (e["entity_id"].clone(), e["status"].clone(), e["actor"].clone())).collect();
    assert_eq!(
        seen,
        vec![
            (json!(id), json!(201), json!("maria")),
            (json!(id), json!(200), json!("maria")),
            (first.body["id"].as_i64().unwrap().to_string().into(), json!(201), json!("test admin")),
        ],
        "{items:?}"
    );
    assert_eq!(items[0]["request_id"], "req-order-1");
    assert_eq!(items[0]["action"], "POST /v1/orders");
    assert_eq!(items[0]["summary"], "created");
    // Written in the order's own transaction: at the very time its movement was booked, to the microsecond.
    let moves = s.get("/v1/inventory/movements?sku=A&reason=order").await;
    let booked = moves.body["items"].as_array().unwrap().iter().find(|m| m["reference"] == "order web:W-1").cloned();
    assert_eq!(booked.expect("the order's movement")["recorded_at"], items[0]["at"], "{}", moves.text);

    let hold =
        s.call(Method::POST, "/v1/holds", Some(&web), Some(&json!({"lines": [{"sku": "A", "quantity": 1}]}))).await;
    ok(&hold, 201);
    let holds = s.get("/v1/audit?entity=holds").await;
    let items = holds.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["entity_id"], hold.body["id"].as_i64().unwrap().to_string());
    assert_eq!((items[0]["actor"].clone(), items[0]["status"].clone()), (json!("web shop"), json!(201)));
}

#[tokio::test]
async fn a_post_with_an_idempotency_key_keeps_its_request_id() {
    let s = stocked_server(&["A"]).await;
    let body =
        json!({"lines": [{"sku": "A", "location": "WH1/HALL-1/SHELF-1/BIN-1", "delta": 4, "reason": "received"}]});
    let r = s.post_with_key("/v1/inventory/adjustments", "adj-request-id-1", &body).await;
    ok(&r, 201);
    let id = r.header("x-request-id").expect("a request id header").to_string();
    let moves = s.get("/v1/inventory/movements?sku=A").await;
    ok(&moves, 200);
    let items = moves.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["request_id"], id.as_str(), "the movement carries the request's id: {items:?}");
    // An error body from the handler behind the idempotency layer names the request too.
    let bad = s.post_with_key("/v1/inventory/adjustments", "adj-request-id-2", &json!({"lines": []})).await;
    assert!(bad.status >= 400 && bad.status < 500, "{}", bad.text);
    assert_eq!(bad.body["request_id"], bad.header("x-request-id").unwrap(), "{}", bad.text);
}

/// A `stockroom serve` process logging JSON at debug level, and everything it logged once stopped.
struct LoggingServer {
    child: std::process::Child,
    base: String,
    log: Option<std::thread::JoinHandle<String>>,
}

impl LoggingServer {
    fn start(database: &str, admin_key: &str) -> LoggingServer {
        use std::io::{BufRead, BufReader};
        let mut child = Command::new(env!("CARGO_BIN_EXE_stockroom"))
            .args(["serve", "--database", database, "--listen", "127.0.0.1:0", "--log-format", "json"])
            .env("STOCKROOM_ADMIN_KEY", admin_key)
            .env("RUST_LOG", "debug")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let base = loop {
            let line = lines.next().expect("the server says where it listens").unwrap();
            seen.push(line.clone());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let addr: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':').collect();
                break format!("http://{addr}");
            }
        };
        let stderr = child.stderr.take().unwrap();
        let log = std::thread::spawn(move || {
            let mut all = seen.join("\n");
            for l in lines.map_while(Result::ok) {
                all.push('\n');
                all.push_str(&l);
            }
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut err);
            all + "\n" + &err
        });
        LoggingServer { child, base, log: Some(log) }
    }

    /// Stops the server (SIGTERM) and returns its whole output, log and standard error.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let _ = self.child.wait();
        self.log.take().unwrap().join().unwrap()
    }
}

impl Drop for LoggingServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_error_bodies_or_the_audit_trail() {
    if on_postgres() {
        return; // What is logged does not depend on the backend.
    }
    let (_guard, url, store) = fresh_store().await;
    drop(store);
    let admin = "sr_secrets_test_admin_key_0123456789";
    let server = LoggingServer::start(&url, admin);
    let (c, base) = (testkit::server::client_with(Some(admin)), server.base.clone());
    let send = |m: Method, path: &str, key: Option<&str>, body: Option<Value>| {
        let mut r = reqwest::Client::new().request(m, format!("{base}{path}"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap();
            (status, serde_json::from_str::<Value>(&text).unwrap_or(Value::Null), text)
        }
    };
    let (_, made, _) =
        send(Method::POST, "/v1/api-keys", Some(admin), Some(json!({"name": "sync", "role": "staff"}))).await;
    let secret = made["secret"].as_str().unwrap().to_string();
    let (_, old, _) =
        send(Method::POST, "/v1/api-keys", Some(admin), Some(json!({"name": "old", "role": "staff"}))).await;
    let revoked = old["secret"].as_str().unwrap().to_string();
    let (status, _, _) = send(Method::POST, &format!("/v1/api-keys/{}/revoke", old["id"]), Some(admin), None).await;
    assert_eq!(status, 200);
    let (status, hook, _) =
        send(Method::POST, "/v1/webhook-endpoints", Some(admin), Some(json!({"url": "http://127.0.0.1:9/hook"}))).await;
    assert_eq!(status, 201);
    let hook_secret = hook["secret"].as_str().unwrap().to_string();
    let id = hook["id"].clone();
    assert_eq!(send(Method::GET, &format!("/v1/webhook-endpoints/{id}/secret"), Some(admin), None).await.0, 200);
    let rotated = send(Method::POST, &format!("/v1/webhook-endpoints/{id}/rotate-secret"), Some(admin), None).await;
    assert_eq!(rotated.0, 200);
    let rotated_secret = rotated.1["secret"].as_str().unwrap_or_default().to_string();
    // Failures that carry secrets in: a wrong key, a revoked key, a secret pasted into a body.
    let wrong = "sr_this_is_a_wrong_secret_1234567890";
    let failures = [
        send(Method::GET, "/v1/products", Some(wrong), None).await,
        send(Method::GET, "/v1/products", Some(&revoked), None).await,
        send(Method::POST, "/v1/api-keys", Some(admin), Some(json!({"name": secret, "role": "nobody"}))).await,
        send(Method::POST, "/v1/products", Some(admin), Some(json!({"handle": secret}))).await,
        send(Method::POST, "/v1/api-keys", Some(&secret), Some(json!({"name": "x", "role": "admin"}))).await,
    ];
    assert_eq!(failures[1].0, 401, "the revoked key is refused: {}", failures[1].2);
    let secrets = [admin, secret.as_str(), hook_secret.as_str(), wrong, revoked.as_str()];
    for (status, _, text) in &failures {
        assert!(*status >= 400);
        for s in secrets {
            assert!(!text.contains(s), "an error body shows a secret: {text}");
        }
    }
    let audit = c.get(format!("{base}/v1/audit?limit=500")).send().await.unwrap().text().await.unwrap();
    assert!(audit.contains("the signing secret was read"), "reading a secret is audited: {audit}");
    assert!(audit.contains("rotate-secret"), "{audit}");
    let log = server.stop();
    assert!(log.contains("\"status\":201"), "the log was captured: {log}");
    for (what, text) in [("audit trail", &audit), ("log", &log)] {
        for s in secrets.iter().chain([&rotated_secret.as_str()]).filter(|s| !s.is_empty()) {
            assert!(!text.contains(s), "the {what} shows a secret: {text}");
        }
    }
}

#[tokio::test]
async fn a_key_past_its_rate_limit_gets_429_with_retry_after() {
    let config = api::ApiConfig { rate_limit: api::auth::RateLimit { per_second: 1, burst: 3 }, ..Default::default() };
    let s = server_with(config).await;
    let other = s.key("other", Role::Staff, None).await;
    for _ in 0..3 {
        ok(&s.get("/v1/products").await, 200);
    }
    let r = s.get("/v1/products").await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert_eq!(r.header("retry-after"), Some("1"));
    ok(&s.call(Method::GET, "/v1/products", Some(&other), None).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    ok(&s.get("/v1/products").await, 200);
}

#[tokio::test]
async fn metrics_are_prometheus_text_for_admin_staff_and_warehouse_keys() {
    let s = shop_server().await;
    let m = s.get("/metrics").await;
    ok(&m, 200);
    assert!(m.header("content-type").unwrap().starts_with("text/plain"));
    for needle in [
        "stockroom_http_requests_total{method=\"POST\",route=\"/v1/inventory/adjustments\",status=\"201\"}",
        "stockroom_http_request_duration_seconds_bucket{method=\"POST\",route=\"/v1/locations\",le=\"+Inf\"}",
        "stockroom_ledger_batch_size_count",
        "stockroom_webhook_backlog 0",
        "stockroom_holds_expired_total",
    ] {
        assert!(m.text.contains(needle), "{needle} missing from:\n{}", m.text);
    }
    // Staff and the warehouse read the numbers too; a channel key does not.
    for role in [Role::Staff, Role::Warehouse] {
        let key = s.key("reader", role, None).await;
        ok(&s.call(Method::GET, "/metrics", Some(&key), None).await, 200);
    }
    let channel = s.key("c", Role::Channel, Some("web")).await;
    assert_eq!(s.call(Method::GET, "/metrics", Some(&channel), None).await.status, 403);
    for public in ["/healthz", "/docs", "/openapi.json"] {
        ok(&s.call(Method::GET, public, None, None).await, 200);
    }
}

fn stockroom(database: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_stockroom")).arg("--database").arg(database).args(args).output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_backup_and_verify_commands_work_on_a_live_database() {
    let (s, url) = stocked_server_at(&["A"]).await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 5).await;
    let u = url.clone();
    let out =
        tokio::task::spawn_blocking(move || stockroom(&u, &["keys", "create", "--name", "ci", "--role", "warehouse"]))
            .await
            .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    ok(&s.call(Method::GET, "/v1/inventory/levels", Some(&secret), None).await, 200);
    let u = url.clone();
    let list = tokio::task::spawn_blocking(move || stockroom(&u, &["keys", "list"])).await.unwrap();
    let text = String::from_utf8_lossy(&list.stdout).to_string();
    assert!(text.contains("warehouse") && text.contains("ci") && !text.contains(&secret), "{text}");
    let id = text.lines().find(|l| l.ends_with("  ci")).unwrap().split_whitespace().next().unwrap().to_string();
    let u = url.clone();
    let revoke = tokio::task::spawn_blocking(move || stockroom(&u, &["keys", "revoke", &id])).await.unwrap();
    assert!(revoke.status.success());
    // Revoked by another process: the server trusts the key it has seen for at most a second more (its key cache),
    // so it is refused soon, never accepted for long. Polled with room to spare for a slow machine.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = s.call(Method::GET, "/v1/inventory/levels", Some(&secret), None).await.status;
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(std::time::Instant::now() < deadline, "a key revoked elsewhere is still accepted after 10 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let cli_audit = s.get("/v1/audit?entity=api-keys&actor=cli").await;
    assert_eq!(cli_audit.body["items"].as_array().unwrap().len(), 2, "{}", cli_audit.text);

    // verify reads one snapshot beside the running server.
    let u = url.clone();
    let verify = tokio::task::spawn_blocking(move || stockroom(&u, &["verify"])).await.unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stdout));

    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.db");
    let (u, c) = (url.clone(), copy.display().to_string());
    let backup = tokio::task::spawn_blocking(move || stockroom(&u, &["backup", &c])).await.unwrap();
    if on_postgres() && url.starts_with("postgres") {
        assert!(!backup.status.success());
        assert!(String::from_utf8_lossy(&backup.stderr).contains("pg_dump"));
        return;
    }
    assert!(backup.status.success(), "{}", String::from_utf8_lossy(&backup.stderr));
    let c = format!("sqlite://{}", copy.display());
    let v = tokio::task::spawn_blocking(move || stockroom(&c, &["verify"])).await.unwrap();
    assert!(v.status.success());
    let store = store_sqlite::SqliteStore::connect(&format!("sqlite://{}", copy.display())).await.unwrap();
    let copied = testkit::server::TestServer::start(Arc::new(store), dir).await;
    assert_eq!(bin_level(&copied, "A", "WH1/HALL-1/SHELF-1/BIN-1").await["on_hand"], 5);
    let (u, c) = (url.clone(), copy.display().to_string());
    let again = tokio::task::spawn_blocking(move || stockroom(&u, &["backup", &c])).await.unwrap();
    assert!(!again.status.success(), "an existing file is never overwritten");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_requests_in_flight_and_stops_cleanly() {
    if on_postgres() {
        return; // The shutdown path does not depend on the backend.
    }
    use std::io::{BufRead, BufReader};
    let (guard, url, store) = fresh_store().await;
    drop(store);
    let key = "sr_shutdown_test_admin_key_0123456789";
    let mut child = Command::new(env!("CARGO_BIN_EXE_stockroom"))
        .args(["serve", "--database", &url, "--listen", "127.0.0.1:0"])
        .env("STOCKROOM_ADMIN_KEY", key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server says where it listens").unwrap();
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    let client = testkit::server::client_with(Some(key));
    for (path, body) in [
        ("/v1/locations", json!({"code": "WH1", "kind": "warehouse"})),
        ("/v1/locations", json!({"code": "BIN-1", "parent": "WH1", "kind": "bin"})),
        ("/v1/products", tee("hot", &["HOT"])),
        (
            "/v1/inventory/adjustments",
            json!({"lines": [{"sku": "HOT", "location": "WH1/BIN-1", "delta": 1000, "reason": "received"}]}),
        ),
    ] {
        let r = client.post(format!("{base}{path}")).json(&body).send().await.unwrap();
        assert!(r.status().is_success(), "{path}");
    }
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"source": "web", "external_number": format!("n{i}"), "currency": "EUR", "lines": [{"sku": "HOT", "quantity": 1}]});
            match client.post(format!("{base}/v1/orders")).json(&body).send().await {
                Ok(r) => Some(r.status().as_u16()),
                Err(_) => None, // refused: the listener had closed
            }
        }));
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let mut answered = 0;
    for t in tasks {
        if let Some(status) = t.await.unwrap() {
            assert_eq!(status, 201, "a request that was taken is finished, not cut off");
            answered += 1;
        }
    }
    assert!(answered > 0, "some requests were in flight");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "a clean stop: {status:?}");
    let log = log.join().unwrap();
    assert!(log.contains("stopped"), "{log}");
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || stockroom(&u, &["verify"])).await.unwrap();
    assert!(out.status.success());
    // Every answered order is stored: count them through a fresh server on the same database.
    let store = store_sqlite::SqliteStore::connect(&url).await.unwrap();
    let s = TestServer::start(Arc::new(store), guard).await;
    let level = bin_level(&s, "HOT", "WH1/BIN-1").await;
    assert!(level["committed"].as_i64().unwrap() >= answered, "{level} vs {answered} answered");
}
