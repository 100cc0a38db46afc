//! Bundles over HTTP: defining components (and every refusal), availability from the scarcest component, orders
//! and holds that commit or reserve components, cancelling, shipping and returning whole kits, policies per
//! component, and concurrent orders of a bundle and of its component that never oversell the shared stock.

use std::collections::HashMap;
use std::process::Command;
use std::sync::Arc;

use serde_json::{json, Value};
use testkit::server::{Reply, TestServer};

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const W2: &str = "WH2/BIN-1";

async fn put_components(s: &TestServer, sku: &str, components: Value) -> Reply {
    let url = s.url(&format!("/v1/variants/{sku}/components"));
    s.send(s.client.put(url).json(&json!({ "components": components }))).await
}

fn order(number: &str, lines: Value) -> Value {
    json!({"source": "webshop", "external_number": number, "currency": "EUR", "payment_terms": "invoice", "lines": lines})
}

/// A SKU's total level: (available, committed, reserved, on_hand).
async fn total(s: &TestServer, sku: &str) -> (i64, i64, i64, i64) {
    let r = s.get(&format!("/v1/inventory/levels?sku={sku}")).await;
    ok(&r, 200);
    let t = &r.body["items"][0]["total"];
    let n = |k: &str| t[k].as_i64().unwrap_or(0);
    (n("available"), n("committed"), n("reserved"), n("on_hand"))
}

async fn available(s: &TestServer, sku: &str) -> Value {
    let r = s.get(&format!("/v1/inventory/availability/{sku}")).await;
    ok(&r, 200);
    r.body
}

/// `stockroom verify` on the server's database, as an operator would run it.
fn verify_cli(url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_stockroom")).args(["--database", url, "verify"]).output().unwrap();
    assert!(out.status.success(), "verify found drift: {}", String::from_utf8_lossy(&out.stdout));
}

async fn verify_clean(s: &TestServer) {
    let drifts = s.app.verify().await.unwrap();
    assert!(drifts.is_empty(), "drift: {drifts:?}");
}

#[tokio::test]
async fn defining_a_bundle_and_every_refusal() {
    let s = stocked_server(&["KIT", "A", "B", "GIFT"]).await;
    let r = put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await;
    ok(&r, 200);
    assert_eq!(r.body["components"], json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]));
    let v = s.get("/v1/variants/KIT").await;
    assert_eq!(v.body["components"][1], json!({"sku": "B", "quantity": 2}), "the variant shows its components");
    assert!(s.get("/v1/variants/A").await.body.get("components").is_none(), "an ordinary variant has none");
    ok(&put_components(&s, "GIFT", json!([{"sku": "KIT", "quantity": 1}, {"sku": "A", "quantity": 1}])).await, 200);

    let refusals = [
        (json!([{"sku": "KIT", "quantity": 1}]), 422, "validation_failed", "components[0].sku"),
        (json!([{"sku": "GIFT", "quantity": 1}]), 409, "bundle_cycle", "components"),
        (
            json!([{"sku": "A", "quantity": 1}, {"sku": "NOPE", "quantity": 1}]),
            422,
            "unknown_reference",
            "components[1].sku",
        ),
        (json!([{"sku": "A", "quantity": 0}]), 422, "validation_failed", "components[0].quantity"),
        (
            json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]),
            422,
            "validation_failed",
            "components[1].sku",
        ),
    ];
    for (components, status, code, field) in refusals {
        let r = put_components(&s, "KIT", components.clone()).await;
        assert_eq!((r.status, r.code()), (status, code), "{components}: {}", r.text);
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
        assert_eq!(r.body["errors"][0]["field"], field, "{}", r.text);
    }
    let many: Vec<Value> = (0..51).map(|_| json!({"sku": "A", "quantity": 1})).collect();
    let r = put_components(&s, "B", Value::Array(many)).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert!(r.body["errors"].as_array().unwrap().iter().any(|e| e["field"] == "components"), "{}", r.text);
    let r = s.get("/v1/variants/KIT/components").await;
    assert_eq!(r.body["components"], json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}]), "unchanged");
    assert_eq!(r.body["bundle"], true);

    // A SKU with stock cannot become a bundle, and a bundle's SKU never takes stock.
    receive(&s, "B", B1, 3).await;
    let r = put_components(&s, "B", json!([{"sku": "A", "quantity": 1}])).await;
    assert_eq!((r.status, r.code()), (409, "bundle_has_stock"), "{}", r.text);
    assert_eq!(s.get("/v1/variants/B/components").await.body["bundle"], false);
    let adjust = json!({"lines": [
        {"sku": "A", "location": B1, "delta": 1, "reason": "received"},
        {"sku": "KIT", "location": B1, "delta": 5, "reason": "received"}]});
    let r = s.post("/v1/inventory/adjustments", &adjust).await;
    assert_eq!((r.status, r.code()), (409, "bundle_holds_no_stock"), "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "lines[1].sku");
    let r = s
        .post(
            "/v1/inventory/moves",
            &json!({"lines": [{"sku": "GIFT", "quantity": 1, "from_location": B1, "to_location": W2}]}),
        )
        .await;
    assert_eq!((r.status, r.code()), (409, "bundle_holds_no_stock"), "{}", r.text);
    assert_eq!(total(&s, "A").await, (0, 0, 0, 0), "the refused adjustment booked nothing");
    let levels = s.get("/v1/inventory/levels?sku=KIT").await;
    assert_eq!(levels.body["items"], json!([]));

    // A component cannot be deleted from under its bundle.
    let r = s.delete("/v1/variants/A").await;
    assert_eq!((r.status, r.code()), (409, "component_of_bundle"), "{}", r.text);
    assert_eq!(s.get("/v1/variants/A").await.status, 200);

    // An empty list makes it an ordinary variant again.
    ok(&put_components(&s, "GIFT", json!([])).await, 200);
    assert_eq!(s.get("/v1/variants/GIFT/components").await.body["bundle"], false);
    ok(&put_components(&s, "KIT", json!([{"sku": "GIFT", "quantity": 1}])).await, 200);
}

#[tokio::test]
async fn availability_is_the_scarcest_component_and_nesting_pools_shared_items() {
    let s = stocked_server(&["KIT", "A", "B", "GIFT", "LOOSE"]).await;
    receive(&s, "A", B1, 3).await;
    receive(&s, "A", W2, 2).await;
    receive(&s, "B", B1, 7).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await, 200);
    let kit = available(&s, "KIT").await;
    assert_eq!(kit["bundle"], true);
    assert_eq!(kit["available"], 3, "B allows 3 kits, A 5: {kit}");
    assert_eq!(kit["components"][0], json!({"sku": "A", "quantity": 1, "tracked": true, "available": 5, "bundles": 5}));
    assert_eq!(kit["components"][1]["bundles"], 3);
    // GIFT = KIT + 1 × A: A is needed twice per gift, one pool.
    ok(&put_components(&s, "GIFT", json!([{"sku": "KIT", "quantity": 1}, {"sku": "A", "quantity": 1}])).await, 200);
    let gift = available(&s, "GIFT").await;
    assert_eq!(gift["available"], 2, "{gift}");
    assert_eq!(gift["components"][0]["quantity"], 2);
    assert_eq!(available(&s, "A").await["available"], 5);
    assert_eq!(available(&s, "LOOSE").await["available"], 0);
    assert_eq!(s.get("/v1/inventory/availability/NOPE").await.status, 404);
}

#[tokio::test]
async fn an_ordered_bundle_commits_its_components_and_ships_cancels_and_returns_whole() {
    let s = stocked_server(&["KIT", "A", "B"]).await;
    receive(&s, "A", B1, 10).await;
    receive(&s, "B", B1, 10).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await, 200);
    let placed = s
        .post(
            "/v1/orders",
            &order("1", json!([{"sku": "KIT", "quantity": 2, "unit_price": "50.00"}, {"sku": "A", "quantity": 1}])),
        )
        .await;
    ok(&placed, 201);
    let lines = placed.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 4, "the two lines asked for, then the bundle's components: {}", placed.text);
    assert_eq!((lines[0]["sku"].as_str(), lines[0]["quantity"].as_i64()), (Some("KIT"), Some(2)));
    assert_eq!((lines[0]["unit_price"].as_str(), lines[0]["tracked"].as_bool()), (Some("50.00"), Some(false)));
    assert_eq!(lines[0]["components"], json!([2, 3]));
    assert_eq!((lines[2]["sku"].as_str(), lines[2]["committed"].as_i64()), (Some("A"), Some(2)));
    assert_eq!(lines[2]["bundle"], json!({"line": 0, "per_bundle": 1}));
    assert_eq!((lines[3]["sku"].as_str(), lines[3]["committed"].as_i64()), (Some("B"), Some(4)));
    assert_eq!(lines[3]["allocations"][0]["bin"], B1);
    assert_eq!(placed.body["total"], "119.99", "the bundle's price, and A's catalog price");
    assert_eq!(total(&s, "A").await, (7, 3, 0, 10));
    assert_eq!(total(&s, "B").await, (6, 4, 0, 10));
    assert_eq!(available(&s, "KIT").await["available"], 3);
    let id = placed.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/orders/{id}/{p}");

    // A component's line is never acted on alone.
    let r = s.post(&url("cancel"), &json!({"lines": [{"line": 3, "quantity": 2}]})).await;
    assert_eq!((r.status, r.code()), (409, "bundle_component_line"), "{}", r.text);
    let r = s.post(&url("edits"), &json!({"lines": [{"line": 0, "quantity": 5}]})).await;
    assert_eq!((r.status, r.code()), (409, "bundle_not_editable"), "{}", r.text);
    assert_eq!(total(&s, "B").await, (6, 4, 0, 10), "the refusals changed nothing");

    // Cancel one kit: its components go back.
    let r = s.post(&url("cancel"), &json!({"lines": [{"line": 0, "quantity": 1}]})).await;
    ok(&r, 200);
    assert_eq!(r.body["order"]["lines"][3]["cancelled"], 2);
    assert_eq!(total(&s, "A").await, (8, 2, 0, 10));
    assert_eq!(total(&s, "B").await, (8, 2, 0, 10));

    // Ship what is left: the kit leaves as its components.
    let r = s.post(&url("shipments"), &json!({"carrier": "DHL"})).await;
    ok(&r, 201);
    let shipped: Vec<i64> =
        r.body["lines"].as_array().unwrap().iter().map(|l| l["shipped"].as_i64().unwrap()).collect();
    assert_eq!(shipped, vec![1, 1, 1, 2]);
    assert_eq!(r.body["fulfillment_status"], "fulfilled");
    assert_eq!(total(&s, "A").await, (8, 0, 0, 8));
    assert_eq!(total(&s, "B").await, (8, 0, 0, 8));

    // Return the kit: its components come back into the bin.
    let r = s.post("/v1/returns", &json!({"order_id": id, "lines": [{"line": 2, "quantity": 1, "reason": "x"}]})).await;
    assert_eq!((r.status, r.code()), (409, "bundle_component_line"), "{}", r.text);
    let r = s
        .post("/v1/returns", &json!({"order_id": id, "lines": [{"line": 0, "quantity": 1, "reason": "too big"}]}))
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
    let rid = r.body["id"].as_str().unwrap().to_string();
    let r = s
        .post(
            &format!("/v1/returns/{rid}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "disposition": "restock", "bin": B1}]}),
        )
        .await;
    assert!(r.status == 201 || r.status == 200, "{}", r.text);
    assert_eq!(total(&s, "A").await, (9, 0, 0, 9));
    assert_eq!(total(&s, "B").await, (10, 0, 0, 10));
    verify_clean(&s).await;
}

#[tokio::test]
async fn policies_apply_per_component() {
    let s = stocked_server(&["KIT", "A", "B"]).await;
    receive(&s, "A", B1, 10).await;
    receive(&s, "B", B1, 4).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await, 200);
    // B denies at zero: three kits need 6 B, there are 4; the error names the bundle line.
    let r = s.post("/v1/orders", &order("1", json!([{"sku": "KIT", "quantity": 3}]))).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "{}", r.text);
    assert_eq!(r.body["errors"][0]["field"], "lines[0]");
    assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("component B"), "{}", r.text);
    assert_eq!(total(&s, "A").await, (10, 0, 0, 10), "A was not committed either");
    // B backorders: the missing units wait for stock, A is committed in full.
    ok(&s.patch("/v1/variants/B", &json!({"inventory_policy": "backorder"})).await, 200);
    let r = s.post("/v1/orders", &order("2", json!([{"sku": "KIT", "quantity": 3}]))).await;
    ok(&r, 201);
    assert_eq!(
        (r.body["lines"][2]["committed"].as_i64(), r.body["lines"][2]["backordered"].as_i64()),
        (Some(4), Some(2))
    );
    assert_eq!(r.body["lines"][1]["committed"], 3);
    // Two kits' worth can ship now; the third waits for B.
    let id = r.body["id"].as_i64().unwrap();
    let shipped = s.post(&format!("/v1/orders/{id}/shipments"), &json!({})).await;
    ok(&shipped, 201);
    assert_eq!(shipped.body["lines"][0]["shipped"], 2);
    assert_eq!(shipped.body["lines"][1]["committed"], 1, "A for the third kit stays committed");
    receive(&s, "B", B1, 2).await;
    let after = s.get(&format!("/v1/orders/{id}")).await;
    assert_eq!(
        (after.body["lines"][2]["committed"].as_i64(), after.body["lines"][2]["backordered"].as_i64()),
        (Some(2), Some(0))
    );
    ok(&s.post(&format!("/v1/orders/{id}/shipments"), &json!({})).await, 201);
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_held_bundle_reserves_its_components_once_and_converts() {
    let s = stocked_server(&["KIT", "A", "B"]).await;
    receive(&s, "A", B1, 3).await;
    receive(&s, "B", B1, 4).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await, 200);
    // Two kits and two loose A need 4 A of the 3: one pool, refused whole.
    let r = s.post("/v1/holds", &json!({"lines": [{"sku": "KIT", "quantity": 2}, {"sku": "A", "quantity": 2}]})).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"), "{}", r.text);
    assert_eq!(total(&s, "A").await, (3, 0, 0, 3));

    let lines = json!([{"sku": "KIT", "quantity": 2}, {"sku": "A", "quantity": 1}]);
    let hold = s.post("/v1/holds", &json!({ "lines": lines })).await;
    ok(&hold, 201);
    let skus: Vec<&str> = hold.body["lines"].as_array().unwrap().iter().map(|l| l["sku"].as_str().unwrap()).collect();
    assert_eq!(skus, ["KIT", "A", "A", "B"]);
    assert_eq!(hold.body["lines"][0]["allocations"], json!([]), "the bundle's own line reserves nothing");
    assert_eq!(hold.body["lines"][3]["allocations"][0]["quantity"], 4);
    assert_eq!(total(&s, "A").await, (0, 0, 3, 3));
    assert_eq!(total(&s, "B").await, (0, 0, 4, 4));
    assert_eq!(available(&s, "KIT").await["available"], 0);
    let r = s.post("/v1/holds", &json!({"lines": [{"sku": "KIT", "quantity": 1}]})).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"));
    assert_eq!(r.body["errors"][0]["field"], "lines[0]", "named by the bundle line: {}", r.text);

    let hold_id = hold.body["id"].as_i64().unwrap();
    let mut body = order("h1", lines);
    body["hold_id"] = json!(hold_id);
    let placed = s.post("/v1/orders", &body).await;
    ok(&placed, 201);
    assert_eq!(placed.body["lines"][3]["committed"], 4);
    assert_eq!(placed.body["lines"][3]["bundle"]["line"], 0);
    assert_eq!(total(&s, "A").await, (0, 3, 0, 3));
    assert_eq!(total(&s, "B").await, (0, 4, 0, 4));
    assert_eq!(s.get(&format!("/v1/holds/{hold_id}")).await.body["status"], "converted");
    verify_clean(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_orders_of_a_bundle_and_its_component_never_oversell_the_shared_stock() {
    let (s, url) = stocked_server_at(&["KIT", "A", "B"]).await;
    let s = Arc::new(s);
    receive(&s, "A", B1, 20).await;
    receive(&s, "A", W2, 11).await;
    receive(&s, "B", B1, 100).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}])).await, 200);

    // 120 buyers: even ones want a kit (2 A), odd ones a loose A; if all won, 180 A would be needed of 31.
    let mut tasks = Vec::new();
    for i in 0..120 {
        let s = s.clone();
        let sku = if i % 2 == 0 { "KIT" } else { "A" };
        tasks.push(tokio::spawn(async move {
            let r = s.post("/v1/orders", &order(&format!("c{i}"), json!([{"sku": sku, "quantity": 1}]))).await;
            (sku, r.status, r.code().to_string())
        }));
    }
    let mut won: HashMap<&str, i64> = HashMap::new();
    for t in tasks {
        let (sku, status, code) = t.await.unwrap();
        match status {
            201 => *won.entry(sku).or_default() += 1,
            409 => assert_eq!(code, "insufficient_stock"),
            other => panic!("unexpected status {other}"),
        }
    }
    let (kits, loose) = (won.get("KIT").copied().unwrap_or(0), won.get("A").copied().unwrap_or(0));
    let (a_available, a_committed, _, a_on_hand) = total(&s, "A").await;
    assert_eq!(a_on_hand, 31);
    assert_eq!(a_committed, 2 * kits + loose, "every winner's A is committed, once");
    assert_eq!(a_available, 31 - a_committed);
    assert!((0..2).contains(&a_available), "kit buyers were turned away while {a_available} A were left");
    if loose < 60 {
        assert_eq!(a_available, 0, "a loose A was refused while A was left");
    }
    assert_eq!(total(&s, "B").await.1, kits, "each kit committed one B");
    assert_eq!(available(&s, "KIT").await["available"], a_available / 2);
    verify_clean(&s).await;
    verify_cli(&url);
}

#[tokio::test]
async fn a_pick_list_walks_a_bundles_components() {
    let s = stocked_server(&["KIT", "A", "B"]).await;
    receive(&s, "A", B1, 5).await;
    receive(&s, "B", B1, 5).await;
    ok(&put_components(&s, "KIT", json!([{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": 2}])).await, 200);
    let placed = s.post("/v1/orders", &order("p1", json!([{"sku": "KIT", "quantity": 2}]))).await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    let list = s.post("/v1/pick-lists", &json!({"warehouse": "WH1"})).await;
    ok(&list, 201);
    let mut stops: Vec<(String, i64, i64)> = list.body["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["sku"].as_str().unwrap().to_string(), l["line"].as_i64().unwrap(), l["quantity"].as_i64().unwrap()))
        .collect();
    stops.sort();
    assert_eq!(stops, vec![("A".into(), 1, 2), ("B".into(), 2, 4)], "the picker takes components, never the kit");
    let list_id = list.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/pick-lists/{list_id}/complete"), &json!({})).await, 200);
    let shipped = s.post(&format!("/v1/orders/{id}/shipments"), &json!({})).await;
    ok(&shipped, 201);
    assert_eq!(shipped.body["lines"][0]["shipped"], 2);
    assert_eq!(total(&s, "B").await, (1, 0, 0, 1));
    verify_clean(&s).await;
}
