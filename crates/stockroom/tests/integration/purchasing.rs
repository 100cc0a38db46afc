//! Purchasing over HTTP: a purchase order received in two parts (one into quality control, then inspected) filling
//! two backorders in order, a transfer with a loss in transit, a count with a sale during it, and the bad input of
//! each, with `verify` clean after every one.

use serde_json::{json, Value};
use testkit::server::TestServer;

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const B2: &str = "WH1/HALL-1/SHELF-1/BIN-2";
const W2: &str = "WH2/BIN-1";

async fn verify_clean(s: &TestServer) {
    let drifts = s.app.verify().await.unwrap();
    assert!(drifts.is_empty(), "drift: {drifts:?}");
}

/// The item's incoming total and per warehouse, from the levels endpoint.
async fn incoming(s: &TestServer, sku: &str) -> (i64, Vec<(String, i64)>) {
    let r = s.get(&format!("/v1/inventory/levels?sku={sku}")).await;
    ok(&r, 200);
    let Some(item) = r.body["items"].as_array().unwrap().first() else { return (0, vec![]) };
    let per = item["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["total"]["incoming"].as_i64().unwrap() > 0)
        .map(|w| (w["warehouse"].as_str().unwrap().to_string(), w["total"]["incoming"].as_i64().unwrap()))
        .collect();
    (item["total"]["incoming"].as_i64().unwrap(), per)
}

async fn supplier(s: &TestServer) -> i64 {
    let r = s
        .post(
            "/v1/suppliers",
            &json!({"name": "Acme Textiles", "currency": "EUR", "lead_time_days": 7,
                    "contact": {"name": "Ada", "email": "ada@acme.example"},
                    "items": [{"sku": "A", "supplier_sku": "ACME-A", "unit_cost": "4.50", "min_order_quantity": 1,
                               "pack_size": 1}]}),
        )
        .await;
    ok(&r, 201);
    assert_eq!(r.body["items"][0]["supplier_sku"], "ACME-A");
    r.body["id"].as_i64().unwrap()
}

fn order(number: &str, qty: i64) -> Value {
    json!({"source": "webshop", "external_number": number, "currency": "EUR", "payment_terms": "invoice",
           "lines": [{"sku": "A", "quantity": qty}]})
}

async fn line(s: &TestServer, id: &Value) -> Value {
    let r = s.get(&format!("/v1/orders/{id}")).await;
    ok(&r, 200);
    r.body["lines"][0].clone()
}

#[tokio::test]
async fn a_purchase_order_received_in_two_parts_fills_backorders_in_order() {
    let s = stocked_server(&["A"]).await;
    ok(&s.patch("/v1/variants/A", &json!({"inventory_policy": "backorder"})).await, 200);
    let first = s.post("/v1/orders", &order("1", 3)).await;
    ok(&first, 201);
    let second = s.post("/v1/orders", &order("2", 2)).await;
    ok(&second, 201);
    let (first, second) = (first.body["id"].clone(), second.body["id"].clone());
    assert_eq!(line(&s, &first).await["backordered"], 3);

    let supplier_id = supplier(&s).await;
    let po = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1", "lines": [{"sku": "A", "quantity": 6}]}),
        )
        .await;
    ok(&po, 201);
    assert_eq!(po.body["status"], "draft");
    assert_eq!(po.body["lines"][0]["unit_cost"], "4.50", "the supplier item's cost");
    assert_eq!(incoming(&s, "A").await.0, 0, "a draft is not incoming");
    let id = po.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/purchase-orders/{id}{p}");
    let expected_date = po.body["lines"][0]["expected_date"].clone();
    assert!(expected_date.is_string(), "today plus the supplier's lead time: {}", po.body);

    let ordered = s.post(&url("/order"), &json!({})).await;
    ok(&ordered, 200);
    assert_eq!(ordered.body["status"], "ordered");
    assert_eq!(incoming(&s, "A").await, (6, vec![("WH1".to_string(), 6)]));
    // Both waiting orders are covered by this order: they get its date.
    assert_eq!(line(&s, &first).await["expected_date"], expected_date);
    assert_eq!(line(&s, &second).await["expected_date"], expected_date);
    // The order list shows the same promise dates as the single order.
    let list = s.get("/v1/orders").await;
    ok(&list, 200);
    let listed: Vec<&Value> =
        list.body["items"].as_array().unwrap().iter().map(|o| &o["lines"][0]["expected_date"]).collect();
    assert_eq!(listed, [&expected_date, &expected_date]);
    // Six come, five are owed: a shop selling the backordered SKU promises the sixth for the same date.
    let web = json!({"code": "web", "name": "Web", "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]});
    ok(&s.post("/v1/channels", &web).await, 201);
    let avail = s.get("/v1/channels/web/availability/A").await;
    ok(&avail, 200);
    assert_eq!((avail.body["status"].as_str(), &avail.body["expected_date"]), (Some("backorder"), &expected_date));

    // Bad input changes nothing.
    let over = s.post(&url("/receipts"), &json!({"lines": [{"sku": "A", "quantity": 7, "location": B1}]})).await;
    assert_eq!((over.status, over.code()), (409, "over_receipt"), "{}", over.text);
    let not_bin =
        s.post(&url("/receipts"), &json!({"lines": [{"sku": "A", "quantity": 1, "location": "WH1/HALL-1"}]})).await;
    assert_eq!((not_bin.status, not_bin.code()), (422, "validation_failed"), "{}", not_bin.text);
    assert_eq!(not_bin.body["errors"][0]["field"], "lines[0].location");
    let other_wh = s.post(&url("/receipts"), &json!({"lines": [{"sku": "A", "quantity": 1, "location": W2}]})).await;
    assert_eq!(other_wh.status, 422, "{}", other_wh.text);
    assert_eq!(s.get(&url("")).await.body["lines"][0]["received"], 0);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 0);

    // Part one: two units straight into a bin go to the oldest order.
    let part1 = s
        .post(&url("/receipts"), &json!({"lines": [{"sku": "A", "quantity": 2, "location": B1}], "reference": "DN-1"}))
        .await;
    ok(&part1, 201);
    assert_eq!(part1.body["status"], "partially_received");
    assert_eq!(part1.body["receipts"][0]["lines"][0]["unit_cost"], "4.50");
    assert_eq!(incoming(&s, "A").await.0, 4);
    let l1 = line(&s, &first).await;
    assert_eq!((l1["committed"].as_i64(), l1["backordered"].as_i64()), (Some(2), Some(1)));
    assert_eq!(line(&s, &second).await["backordered"], 2);

    // Part two: four units into quality control fill nothing until they pass inspection.
    let part2 = s
        .post(
            &url("/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 4, "location": B2, "state": "quality_control"}]}),
        )
        .await;
    ok(&part2, 201);
    assert_eq!(part2.body["status"], "received");
    assert_eq!(incoming(&s, "A").await.0, 0);
    assert_eq!(bin_level(&s, "A", B2).await["quality_control"], 4);
    assert_eq!(line(&s, &first).await["backordered"], 1);
    assert!(line(&s, &second).await.get("expected_date").is_none(), "nothing is on its way any more");
    let list = s.get("/v1/orders").await;
    assert!(list.body["items"].as_array().unwrap().iter().all(|o| o["lines"][0].get("expected_date").is_none()));

    let again = s.post(&url("/receipts"), &json!({"lines": [{"sku": "A", "quantity": 1, "location": B1}]})).await;
    assert_eq!((again.status, again.code()), (409, "invalid_status"), "{}", again.text);
    let too_many =
        s.post("/v1/inspections", &json!({"sku": "A", "location": B2, "quantity": 5, "result": "pass"})).await;
    assert_eq!(too_many.code(), "insufficient_stock", "{}", too_many.text);

    let passed = s.post("/v1/inspections", &json!({"sku": "A", "location": B2, "quantity": 4, "result": "pass"})).await;
    ok(&passed, 201);
    assert_eq!(passed.body["quality_control_left"], 0);
    let (l1, l2) = (line(&s, &first).await, line(&s, &second).await);
    assert_eq!((l1["committed"].as_i64(), l1["backordered"].as_i64()), (Some(3), Some(0)));
    assert_eq!((l2["committed"].as_i64(), l2["backordered"].as_i64()), (Some(2), Some(0)));

    // The receipts' movements carry their reference and reason.
    let moves = s.get("/v1/inventory/movements?reason=received").await;
    ok(&moves, 200);
    let refs: Vec<&str> =
        moves.body["items"].as_array().unwrap().iter().map(|m| m["reference"].as_str().unwrap()).collect();
    assert_eq!(refs, vec![format!("receipt {id}/1"), format!("receipt {id}/2")]);

    // A cancelled order takes nothing; a closed one neither, and its rest leaves incoming.
    let po2 = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1", "order": true,
                    "lines": [{"sku": "A", "quantity": 4, "unit_cost": "4.00", "expected_date": "2031-01-01"}]}),
        )
        .await;
    ok(&po2, 201);
    let id2 = po2.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/purchase-orders/{id2}/cancel"), &json!({})).await, 200);
    let cancelled = s
        .post(
            &format!("/v1/purchase-orders/{id2}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "location": B1}]}),
        )
        .await;
    assert_eq!((cancelled.status, cancelled.code()), (409, "invalid_status"));
    let po3 = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1", "order": true, "tolerance_percent": 10,
                    "lines": [{"sku": "A", "quantity": 10}]}),
        )
        .await;
    ok(&po3, 201);
    let id3 = po3.body["id"].as_i64().unwrap();
    // Without a bin named, putaway picks the bin that holds the SKU most.
    let r =
        s.post(&format!("/v1/purchase-orders/{id3}/receipts"), &json!({"lines": [{"line": 0, "quantity": 4}]})).await;
    ok(&r, 201);
    assert_eq!(r.body["receipts"][0]["lines"][0]["location"], B2);
    let closed = s.post(&format!("/v1/purchase-orders/{id3}/close"), &json!({})).await;
    ok(&closed, 200);
    assert_eq!(closed.body["lines"][0]["closed"], 6);
    assert_eq!(incoming(&s, "A").await.0, 0);
    let after_close = s
        .post(
            &format!("/v1/purchase-orders/{id3}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "location": B1}]}),
        )
        .await;
    assert_eq!(after_close.code(), "invalid_status");
    let list = s.get("/v1/purchase-orders?status=closed").await;
    ok(&list, 200);
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    let putaway = s.get("/v1/putaway?sku=A&warehouse=WH2").await;
    ok(&putaway, 200);
    assert_eq!((putaway.body["location"].as_str(), putaway.body["rule"].as_str()), (Some(W2), Some("empty_bin")));
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_transfer_with_a_loss_in_transit() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 10).await;
    let same = s
        .post(
            "/v1/transfers",
            &json!({"from_warehouse": "WH1", "to_warehouse": "WH1", "lines": [{"sku": "A", "quantity": 5, "from_location": B1}]}),
        )
        .await;
    assert_eq!((same.status, same.code()), (422, "validation_failed"), "{}", same.text);
    assert_eq!(same.body["errors"][0]["field"], "to_warehouse");

    let t = s
        .post(
            "/v1/transfers",
            &json!({"from_warehouse": "WH1", "to_warehouse": "WH2", "expected_date": "2030-05-01",
                    "lines": [{"sku": "A", "quantity": 5, "from_location": B1}]}),
        )
        .await;
    ok(&t, 201);
    let id = t.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/transfers/{id}{p}");
    let early = s.post(&url("/receipts"), &json!({"lines": [{"line": 0, "received": 1, "location": W2}]})).await;
    assert_eq!(early.code(), "invalid_status", "a draft has not shipped");

    let shipped = s.post(&url("/ship"), &json!({})).await;
    ok(&shipped, 200);
    assert_eq!(shipped.body["status"], "in_transit");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5);
    assert_eq!(incoming(&s, "A").await, (5, vec![("WH2".to_string(), 5)]));

    let part = s.post(&url("/receipts"), &json!({"lines": [{"sku": "A", "received": 3, "location": W2}]})).await;
    ok(&part, 201);
    assert_eq!(part.body["status"], "partially_received");
    assert_eq!(part.body["lines"][0]["in_transit"], 2);
    assert_eq!(incoming(&s, "A").await.0, 2);
    let over = s.post(&url("/receipts"), &json!({"lines": [{"line": 0, "received": 3, "location": W2}]})).await;
    assert_eq!((over.status, over.code()), (409, "more_than_in_transit"), "{}", over.text);
    let negative = s.post(&url("/receipts"), &json!({"lines": [{"line": 0, "lost": -1}]})).await;
    assert_eq!(negative.status, 422);
    assert_eq!(bin_level(&s, "A", W2).await["available"], 3, "refusals changed nothing");

    let rest =
        s.post(&url("/receipts"), &json!({"lines": [{"line": 0, "damaged": 1, "lost": 1, "location": W2}]})).await;
    ok(&rest, 201);
    assert_eq!(rest.body["status"], "received");
    let (lost, damaged) = (rest.body["lines"][0]["lost"].clone(), rest.body["lines"][0]["damaged"].clone());
    assert_eq!((lost, damaged), (json!(1), json!(1)));
    let w2 = bin_level(&s, "A", W2).await;
    assert_eq!((w2["available"].as_i64(), w2["damaged"].as_i64()), (Some(3), Some(1)));
    assert_eq!(incoming(&s, "A").await.0, 0);

    let report = s.get("/v1/reports/shrinkage").await;
    ok(&report, 200);
    let rows = report.body["rows"].as_array().unwrap();
    let qty = |reason: &str| rows.iter().find(|r| r["reason"] == reason).map(|r| r["quantity"].as_i64().unwrap());
    assert_eq!((qty("shrinkage"), qty("damaged")), (Some(1), Some(1)), "{}", report.text);
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_count_with_a_sale_during_it_ends_with_the_right_balance() {
    let s = stocked_server(&["A"]).await;
    ok(&s.patch("/v1/variants/A", &json!({"barcode": "4006381333931"})).await, 200);
    receive(&s, "A", B1, 10).await;
    let none = s.post("/v1/counts", &json!({"location": "WH2"})).await;
    assert_eq!(none.status, 422, "nothing to count in WH2: {}", none.text);

    let count = s.post("/v1/counts", &json!({"location": "WH1", "blind": true})).await;
    ok(&count, 201);
    assert_eq!(count.body["lines"].as_array().unwrap().len(), 1);
    assert!(count.body["lines"][0].get("expected").is_none(), "a blind count hides the expected quantity");
    let id = count.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/counts/{id}{p}");

    // A sale ships two units while the counter walks the aisle.
    let placed = s.post("/v1/orders", &order("9", 2)).await;
    ok(&placed, 201);
    ok(&s.post(&format!("/v1/orders/{}/shipments", placed.body["id"]), &json!({})).await, 201);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 8);

    let negative = s.post(&url("/entries"), &json!({"entries": [{"sku": "A", "location": B1, "counted": -1}]})).await;
    assert_eq!((negative.status, negative.code()), (422, "validation_failed"), "{}", negative.text);
    let unknown =
        s.post(&url("/entries"), &json!({"entries": [{"barcode": "0000", "location": B1, "counted": 9}]})).await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_reference"), "{}", unknown.text);
    let early = s.post(&url("/approve"), &json!({})).await;
    assert_eq!(early.code(), "nothing_counted");

    // Counted before the sale: nine, one short of the snapshot's ten.
    let counted = s
        .post(&url("/entries"), &json!({"entries": [{"barcode": "4006381333931", "location": B1, "counted": 9}]}))
        .await;
    ok(&counted, 200);
    assert_eq!(counted.body["lines"][0]["counted"], 9);
    // Blind until approved: neither the count nor its variance tells the counter what was expected.
    let variance = s.get(&url("/variance")).await;
    ok(&variance, 200);
    assert!(variance.body.get("variance_units").is_none(), "{}", variance.text);
    assert!(variance.body.get("variance_value").is_none(), "{}", variance.text);
    assert!(variance.body["lines"][0].get("expected").is_none(), "{}", variance.text);
    assert!(variance.body["lines"][0].get("variance").is_none(), "{}", variance.text);
    assert!(s.get(&url("")).await.body["lines"][0].get("expected").is_none());

    let approved = s.post(&url("/approve"), &json!({})).await;
    ok(&approved, 200);
    let variance = s.get(&url("/variance")).await;
    assert_eq!(variance.body["variance_units"], -1);
    assert_eq!(variance.body["variance_value"], "-19.99");
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approved.body["lines"][0]["expected"], 10);
    // Ten, less two sold during the count, less the one missing: seven.
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 7);
    let twice = s.post(&url("/approve"), &json!({})).await;
    assert_eq!((twice.status, twice.code()), (409, "count_closed"));
    let late = s.post(&url("/entries"), &json!({"entries": [{"sku": "A", "location": B1, "counted": 3}]})).await;
    assert_eq!(late.code(), "count_closed");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 7);
    let moves = s.get("/v1/inventory/movements?reason=cycle_count").await;
    assert_eq!(moves.body["items"].as_array().unwrap().len(), 1);

    // The SKU was just counted: an ABC count finds nothing due with a 30-day frequency for every class.
    let abc =
        s.post("/v1/counts", &json!({"abc": {"period_days": 30, "frequency_days": {"A": 30, "B": 30, "C": 30}}})).await;
    assert_eq!(abc.status, 422, "{}", abc.text);
    // With a zero-day frequency everything is due again.
    let abc = s.post("/v1/counts", &json!({"abc": {"frequency_days": {"A": 0, "B": 0, "C": 0}}})).await;
    ok(&abc, 201);
    assert_eq!(abc.body["lines"][0]["sku"], "A");
    verify_clean(&s).await;
}

#[tokio::test]
async fn receipts_are_never_booked_twice_and_announce_themselves() {
    let s = stocked_server(&["A"]).await;
    let supplier_id = supplier(&s).await;
    let po = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1", "order": true, "lines": [{"sku": "A", "quantity": 6}]}),
        )
        .await;
    ok(&po, 201);
    let id = po.body["id"].as_i64().unwrap();
    let url = format!("/v1/purchase-orders/{id}/receipts");

    // A retry with the same key is answered with the first receipt.
    let body = json!({"lines": [{"sku": "A", "quantity": 2, "location": B1}]});
    ok(&s.post_with_key(&url, "dn-1", &body).await, 201);
    let again = s.post_with_key(&url, "dn-1", &body).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 2);

    // Eight receivers race for the four units left, two each: exactly two win, the rest are over_receipt.
    let body = json!({"lines": [{"sku": "A", "quantity": 2, "location": B1}]});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let req = s.client.post(s.url(&url)).json(&body);
        tasks.push(tokio::spawn(async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap();
            (status, body["code"].as_str().unwrap_or("").to_string())
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|(s, _)| *s == 201).count(), 2, "{results:?}");
    assert!(
        results.iter().all(|(s, c)| *s == 201 || (*s == 409 && (c == "over_receipt" || c == "invalid_status"))),
        "{results:?}"
    );
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 6);
    let po = s.get(&format!("/v1/purchase-orders/{id}")).await;
    assert_eq!((po.body["status"].as_str(), po.body["lines"][0]["received"].as_i64()), (Some("received"), Some(6)));
    assert_eq!(po.body["receipts"].as_array().unwrap().len(), 3);

    let events = s.app.store.outbox_after(0, 1_000).await.unwrap();
    let count = |topic: &str| events.iter().filter(|e| e.topic == topic).count();
    assert_eq!(count("purchase_order.created"), 1);
    assert_eq!(count("purchase_order.ordered"), 1);
    assert_eq!(count("receipt.created"), 3, "one per receipt, none for refused ones");
    assert_eq!(count("purchase_order.received"), 3);
    let receipt = events.iter().find(|e| e.topic == "receipt.created").unwrap();
    assert_eq!(receipt.payload["purchase_order_id"], id);
    assert_eq!(receipt.payload["lines"][0]["unit_cost"], "4.50");
    let keys = s.get("/v1/api-keys").await;
    let key = keys.body["items"].as_array().unwrap().iter().find(|k| k["name"] == "test admin").unwrap();
    let admin = app::trust::actor_name(key["id"].as_i64().unwrap(), "test admin");
    assert_eq!(receipt.payload["actor"], admin.as_str(), "every change says who made it");
    let created = events.iter().find(|e| e.topic == "purchase_order.created").unwrap();
    assert_eq!((created.payload["id"].as_i64(), created.payload["actor"].as_str()), (Some(id), Some(admin.as_str())));
    verify_clean(&s).await;
}

#[tokio::test]
async fn putaway_prefers_the_default_bin_then_a_bin_holding_the_sku_then_an_empty_bin() {
    let s = stocked_server(&["A", "B"]).await;
    let putaway = |sku: &'static str, wh: &'static str| {
        let s = &s;
        async move {
            let r = s.get(&format!("/v1/putaway?sku={sku}&warehouse={wh}")).await;
            ok(&r, 200);
            (r.body["location"].as_str().map(String::from), r.body["rule"].as_str().map(String::from))
        }
    };
    let at = |bin: &str, rule: &str| (Some(bin.to_string()), Some(rule.to_string()));
    // Nothing anywhere: the first empty bin by path.
    assert_eq!(putaway("A", "WH1").await, at(B1, "empty_bin"));
    receive(&s, "A", B2, 3).await;
    assert_eq!(putaway("A", "WH1").await, at(B2, "holds_item"));

    // The default bin comes first, even over the bin that holds the SKU; it is per warehouse.
    let set = s.post("/v1/default-bins", &json!({"sku": "A", "location": B1})).await;
    ok(&set, 200);
    assert_eq!((set.body["warehouse"].as_str(), set.body["location"].as_str()), (Some("WH1"), Some(B1)));
    assert_eq!(putaway("A", "WH1").await, at(B1, "default_bin"));
    assert_eq!(putaway("A", "WH2").await, at(W2, "empty_bin"));
    // An empty bin that is another SKU's default is suggested last: B1 sorts first but is A's default.
    let b3 = "WH1/HALL-1/SHELF-1/BIN-3";
    ok(&s.post("/v1/locations", &json!({"code": "BIN-3", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin"})).await, 201);
    assert_eq!(putaway("B", "WH1").await, at(b3, "empty_bin"));

    // A receipt that names no bin goes to the default bin.
    let supplier_id = supplier(&s).await;
    let po = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1", "order": true, "lines": [{"sku": "A", "quantity": 5}]}),
        )
        .await;
    ok(&po, 201);
    let r = s
        .post(
            &format!("/v1/purchase-orders/{}/receipts", po.body["id"]),
            &json!({"lines": [{"line": 0, "quantity": 5}]}),
        )
        .await;
    ok(&r, 201);
    assert_eq!(r.body["receipts"][0]["lines"][0]["location"], B1);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5);

    // Bad input changes nothing.
    let not_bin = s.post("/v1/default-bins", &json!({"sku": "A", "location": "WH1/HALL-1"})).await;
    assert_eq!((not_bin.status, not_bin.code()), (422, "validation_failed"), "{}", not_bin.text);
    let no_sku = s.post("/v1/default-bins", &json!({"sku": "NOPE", "location": B2})).await;
    assert_eq!((no_sku.status, no_sku.code()), (422, "unknown_reference"), "{}", no_sku.text);
    assert_eq!(putaway("A", "WH1").await, at(B1, "default_bin"));

    // Replacing and removing the default.
    ok(&s.post("/v1/default-bins", &json!({"sku": "A", "location": B2})).await, 200);
    assert_eq!(putaway("A", "WH1").await, at(B2, "default_bin"));
    ok(&s.delete("/v1/default-bins?sku=A&warehouse=WH1").await, 204);
    assert_eq!(putaway("A", "WH1").await, at(B1, "holds_item"));
    let again = s.delete("/v1/default-bins?sku=A&warehouse=WH1").await;
    assert_eq!((again.status, again.code()), (404, "not_found"), "{}", again.text);
    verify_clean(&s).await;
}

#[tokio::test]
async fn the_empty_bin_search_looks_past_the_first_fifty_bins() {
    let s = stocked_server(&["A", "B"]).await;
    ok(&s.post("/v1/locations", &json!({"code": "WH3", "kind": "warehouse"})).await, 201);
    for i in 0..60 {
        let code = format!("BIN-{i:02}");
        ok(&s.post("/v1/locations", &json!({"code": code, "parent": "WH3", "kind": "bin"})).await, 201);
    }
    for i in 0..55 {
        receive(&s, "B", &format!("WH3/BIN-{i:02}"), 1).await;
    }
    let r = s.get("/v1/putaway?sku=A&warehouse=WH3").await;
    ok(&r, 200);
    assert_eq!((r.body["location"].as_str(), r.body["rule"].as_str()), (Some("WH3/BIN-55"), Some("empty_bin")));
    verify_clean(&s).await;
}

#[tokio::test]
async fn stock_found_off_the_snapshot_is_counted_from_zero_inside_the_count_only() {
    let s = stocked_server(&["A", "B"]).await;
    ok(&s.patch("/v1/variants/B", &json!({"barcode": "4006381333931"})).await, 200);
    receive(&s, "A", B1, 10).await;
    receive(&s, "A", W2, 4).await;
    let count = s.post("/v1/counts", &json!({"location": "WH1"})).await;
    ok(&count, 201);
    assert_eq!(count.body["lines"].as_array().unwrap().len(), 1, "only A in BIN-1 holds stock in WH1");
    let id = count.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/counts/{id}{p}");

    // Outside the count's location: refused, and the good entry of the same request is not kept either.
    let outside = s
        .post(
            &url("/entries"),
            &json!({"entries": [{"sku": "A", "location": B1, "counted": 10}, {"sku": "A", "location": W2, "counted": 4}]}),
        )
        .await;
    assert_eq!((outside.status, outside.code()), (422, "validation_failed"), "{}", outside.text);
    assert!(outside.text.contains("entries[1].location"), "{}", outside.text);
    let unknown = s.post(&url("/entries"), &json!({"entries": [{"sku": "NOPE", "location": B2, "counted": 1}]})).await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_reference"), "{}", unknown.text);
    let not_bin =
        s.post(&url("/entries"), &json!({"entries": [{"sku": "A", "location": "WH1/HALL-1", "counted": 1}]})).await;
    assert_eq!((not_bin.status, not_bin.code()), (422, "validation_failed"), "{}", not_bin.text);
    let unchanged = s.get(&url("")).await;
    assert_eq!(unchanged.body["lines"].as_array().unwrap().len(), 1);
    assert!(unchanged.body["lines"][0]["counted"].is_null());

    // A where the system thought none were, and B (by barcode) that the system had nowhere.
    let entered = s
        .post(
            &url("/entries"),
            &json!({"entries": [{"sku": "A", "location": B1, "counted": 10},
                                {"sku": "A", "location": B2, "counted": 2},
                                {"barcode": "4006381333931", "location": B1, "counted": 3}]}),
        )
        .await;
    ok(&entered, 200);
    let lines = entered.body["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 3);
    assert_eq!(
        (lines[1]["sku"].as_str(), lines[1]["location"].as_str(), lines[1]["expected"].as_i64()),
        (Some("A"), Some(B2), Some(0))
    );
    assert_eq!((lines[2]["sku"].as_str(), lines[2]["counted"].as_i64()), (Some("B"), Some(3)));
    // Entering the same found stock again updates its line rather than adding one.
    let again = s.post(&url("/entries"), &json!({"entries": [{"sku": "A", "location": B2, "counted": 2}]})).await;
    ok(&again, 200);
    assert_eq!(again.body["lines"].as_array().unwrap().len(), 3);
    assert_eq!(s.get(&url("/variance")).await.body["variance_units"], 5);

    ok(&s.post(&url("/approve"), &json!({})).await, 200);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 10);
    assert_eq!(bin_level(&s, "A", B2).await["on_hand"], 2);
    assert_eq!(bin_level(&s, "B", B1).await["on_hand"], 3);
    assert_eq!(bin_level(&s, "A", W2).await["on_hand"], 4, "outside the count, untouched");

    // A list-of-items count takes a listed item found in any bin of its scope, and no other item.
    let listed = s.post("/v1/counts", &json!({"skus": ["A"], "location": "WH1"})).await;
    ok(&listed, 201);
    let lid = listed.body["id"].as_i64().unwrap();
    let other = s
        .post(&format!("/v1/counts/{lid}/entries"), &json!({"entries": [{"sku": "B", "location": B2, "counted": 1}]}))
        .await;
    assert_eq!((other.status, other.code()), (422, "validation_failed"), "{}", other.text);
    let b3 = "WH1/HALL-1/SHELF-1/BIN-3";
    ok(&s.post("/v1/locations", &json!({"code": "BIN-3", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin"})).await, 201);
    let found = s
        .post(&format!("/v1/counts/{lid}/entries"), &json!({"entries": [{"sku": "A", "location": b3, "counted": 1}]}))
        .await;
    ok(&found, 200);
    ok(&s.post(&format!("/v1/counts/{lid}/approve"), &json!({})).await, 200);
    assert_eq!(bin_level(&s, "A", b3).await["on_hand"], 1);
    verify_clean(&s).await;
}

#[tokio::test]
async fn a_count_short_of_units_committed_to_an_order_is_refused_until_the_order_is_cancelled() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 5).await;
    let placed = s.post("/v1/orders", &order("7", 4)).await;
    ok(&placed, 201);
    assert_eq!(bin_level(&s, "A", B1).await["available"], 1);
    let count = s.post("/v1/counts", &json!({"location": "WH1"})).await;
    ok(&count, 201);
    let id = count.body["id"].as_i64().unwrap();
    ok(
        &s.post(&format!("/v1/counts/{id}/entries"), &json!({"entries": [{"sku": "A", "location": B1, "counted": 2}]}))
            .await,
        200,
    );

    let refused = s.post(&format!("/v1/counts/{id}/approve"), &json!({})).await;
    assert_eq!((refused.status, refused.code()), (409, "count_shortage_committed"), "{}", refused.text);
    let detail = refused.body["detail"].as_str().unwrap();
    assert!(detail.contains(&format!("A in {B1} is 3 short, but only 1")), "{detail}");
    assert!(refused.text.contains("lines[0]"), "{}", refused.text);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5, "nothing booked");
    assert_eq!(s.get(&format!("/v1/counts/{id}")).await.body["status"], "open");

    ok(&s.post(&format!("/v1/orders/{}/cancel", placed.body["id"]), &json!({})).await, 200);
    ok(&s.post(&format!("/v1/counts/{id}/approve"), &json!({})).await, 200);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 2);
    verify_clean(&s).await;
}

#[tokio::test]
async fn an_open_count_refuses_a_second_count_of_the_same_bin_even_through_found_stock() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 10).await;
    receive(&s, "B", B2, 3).await;
    let first = s.post("/v1/counts", &json!({"skus": ["A"]})).await;
    ok(&first, 201);
    let first_id = first.body["id"].as_i64().unwrap();

    // A second count of the same bin would book counted − snapshot again at approval: 10 counted as 9 twice is 8.
    let second = s.post("/v1/counts", &json!({"location": "WH1"})).await;
    assert_eq!((second.status, second.code()), (409, "count_overlaps"), "{}", second.text);
    assert!(second.text.contains(&format!("count {first_id}")), "{}", second.text);
    let open = s.get("/v1/counts?status=open").await;
    assert_eq!(open.body["items"].as_array().map(Vec::len), Some(1), "{}", open.text);

    // A count of B alone does not overlap; stock of A found in B2 would, since the first count covers A anywhere.
    let other = s.post("/v1/counts", &json!({"skus": ["B"]})).await;
    ok(&other, 201);
    let other_id = other.body["id"].as_i64().unwrap();
    let found_there = s
        .post(
            &format!("/v1/counts/{first_id}/entries"),
            &json!({"entries": [{"sku": "A", "location": B2, "counted": 1}]}),
        )
        .await;
    ok(&found_there, 200);
    let everything = s.post("/v1/counts", &json!({"location": "WH1"})).await;
    assert_eq!(everything.code(), "count_overlaps", "{}", everything.text);

    ok(
        &s.post(
            &format!("/v1/counts/{first_id}/entries"),
            &json!({"entries": [{"sku": "A", "location": B1, "counted": 9}]}),
        )
        .await,
        200,
    );
    ok(&s.post(&format!("/v1/counts/{first_id}/approve"), &json!({})).await, 200);
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 9);
    ok(
        &s.post(
            &format!("/v1/counts/{other_id}/entries"),
            &json!({"entries": [{"sku": "B", "location": B2, "counted": 3}]}),
        )
        .await,
        200,
    );
    ok(&s.post(&format!("/v1/counts/{other_id}/approve"), &json!({})).await, 200);
    // Once approved, the bin is free to count again.
    ok(&s.post("/v1/counts", &json!({"location": "WH1"})).await, 201);
    verify_clean(&s).await;
}

#[tokio::test]
async fn racing_counts_of_one_bin_never_both_stay_open() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 10).await;
    let body = json!({"skus": ["A"]});
    let (a, b) = tokio::join!(s.post("/v1/counts", &body), s.post("/v1/counts", &body));
    let created = [&a, &b].iter().filter(|r| r.status == 201).count();
    assert!(created <= 1, "{} / {}", a.text, b.text);
    for r in [&a, &b].iter().filter(|r| r.status != 201) {
        assert_eq!((r.status, r.code()), (409, "count_overlaps"), "{}", r.text);
    }
    let open = s.get("/v1/counts?status=open").await;
    assert_eq!(open.body["items"].as_array().map(Vec::len), Some(created), "{}", open.text);
}

#[tokio::test]
async fn documents_name_their_warehouses_even_when_created_after_the_path_cache() {
    // The views name warehouses by path from a cache; a fresh server, and a warehouse made after the cache was
    // filled, once showed as an empty path (and the web admin's putaway lookup failed on it).
    let s = stocked_server(&["A"]).await;
    let supplier_id = supplier(&s).await;
    let po = s
        .post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier_id, "warehouse": "WH1",
        "lines": [{"sku": "A", "quantity": 2}]}),
        )
        .await;
    ok(&po, 201);
    assert_eq!(po.body["warehouse"], "WH1");
    let id = po.body["id"].clone();
    assert_eq!(s.get(&format!("/v1/purchase-orders/{id}")).await.body["warehouse"], "WH1");
    let ordered = s.post(&format!("/v1/purchase-orders/{id}/order"), &json!({})).await;
    ok(&ordered, 200);
    assert_eq!(ordered.body["warehouse"], "WH1");
    assert_eq!(s.get("/v1/purchase-orders?status=ordered").await.body["items"][0]["warehouse"], "WH1");

    ok(&s.post("/v1/locations", &json!({"code": "WH3", "kind": "warehouse", "name": "Late"})).await, 201);
    receive(&s, "A", B1, 2).await;
    let t = s
        .post(
            "/v1/transfers",
            &json!({"from_warehouse": "WH1", "to_warehouse": "WH3",
        "lines": [{"sku": "A", "quantity": 1, "from_location": B1}]}),
        )
        .await;
    ok(&t, 201);
    assert_eq!((t.body["from_warehouse"].as_str(), t.body["to_warehouse"].as_str()), (Some("WH1"), Some("WH3")));
    let listed = s.get("/v1/transfers").await;
    assert_eq!(listed.body["items"][0]["to_warehouse"], "WH3");
}
