//! Orders and holds over HTTP: committing stock atomically, policies at zero, backorders filled first-come
//! first-served, cancellation, holds that expire, and the race of many buyers for a few units.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const B2: &str = "WH1/HALL-1/SHELF-1/BIN-2";
const W2: &str = "WH2/BIN-1";

fn order(number: &str, lines: Value) -> Value {
    json!({"source": "webshop", "external_number": number, "currency": "EUR", "lines": lines})
}

async fn set_policy(s: &testkit::server::TestServer, sku: &str, policy: &str) {
    ok(&s.patch(&format!("/v1/variants/{sku}"), &json!({"inventory_policy": policy})).await, 200);
}

async fn verify_clean(s: &testkit::server::TestServer) {
    let drifts = s.app.verify().await.unwrap();
    assert!(drifts.is_empty(), "drift: {drifts:?}");
}

/// A node remembers what an order line needs of its SKU for a moment; a catalog change made through it is seen
/// by the very next order: a new price, a policy, a renamed or deleted variant.
#[tokio::test]
async fn the_next_order_sees_a_catalog_change_at_once() {
    let s = stocked_server(&["A", "B", "C"]).await;
    receive(&s, "A", B1, 10).await;
    receive(&s, "B", B1, 10).await;
    let line = |sku: &str| json!([{"sku": sku, "quantity": 1}]);
    let first = s.post("/v1/orders", &order("C-1", line("A"))).await;
    ok(&first, 201);
    assert_eq!(first.body["lines"][0]["unit_price"], "19.99");
    ok(&s.patch("/v1/variants/A", &json!({"price": "17.50"})).await, 200);
    let second = s.post("/v1/orders", &order("C-2", line("A"))).await;
    ok(&second, 201);
    assert_eq!(second.body["lines"][0]["unit_price"], "17.50");

    // C has no stock: refused under deny, backordered once the policy says so.
    assert_eq!(s.post("/v1/orders", &order("C-3", line("C"))).await.status, 409);
    set_policy(&s, "C", "backorder").await;
    ok(&s.post("/v1/orders", &order("C-4", line("C"))).await, 201);

    // Renamed: the old SKU is unknown at once, the new one sells.
    ok(&s.post("/v1/orders", &order("C-5", line("B"))).await, 201);
    ok(&s.patch("/v1/variants/B", &json!({"sku": "B-NEW"})).await, 200);
    let gone = s.post("/v1/orders", &order("C-6", line("B"))).await;
    assert_eq!((gone.status, gone.code()), (422, "unknown_reference"), "{}", gone.text);
    ok(&s.post("/v1/orders", &order("C-7", line("B-NEW"))).await, 201);

    // Deleted (never sold, so it may go): unknown at once, though an order just looked it up.
    ok(&s.post("/v1/products", &tee("cap", &["CAP"])).await, 201);
    assert_eq!(s.post("/v1/orders", &order("C-8", line("CAP"))).await.status, 409);
    ok(&s.delete("/v1/products/cap").await, 204);
    let deleted = s.post("/v1/orders", &order("C-9", line("CAP"))).await;
    assert_eq!((deleted.status, deleted.code()), (422, "unknown_reference"), "{}", deleted.text);
}

#[tokio::test]
async fn an_order_commits_all_lines_or_none() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 5).await;
    receive(&s, "B", B1, 1).await;
    let short =
        s.post("/v1/orders", &order("1001", json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 3}]))).await;
    assert_eq!(short.status, 409, "{}", short.text);
    assert_eq!(short.code(), "insufficient_stock");
    assert_eq!(short.body["errors"][0]["field"], "lines[1]");
    assert!(short.body["errors"][0]["message"].as_str().unwrap().contains("1 available, 3 requested"));
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 0, "the good line was not committed either");

    let placed = s
        .post(
            "/v1/orders",
            &order(
                "1002",
                json!([{"sku": "A", "quantity": 2, "unit_price": "10.00", "tax": "3.80"}, {"sku": "B", "quantity": 1}]),
            ),
        )
        .await;
    ok(&placed, 201);
    assert_eq!(placed.body["status"], "open");
    assert_eq!(placed.body["lines"][0]["committed"], 2);
    assert_eq!(placed.body["lines"][0]["allocations"][0]["bin"], B1);
    assert_eq!(placed.body["lines"][0]["allocations"][0]["warehouse"], "WH1");
    assert_eq!(placed.body["lines"][1]["unit_price"], "19.99", "the catalog price when none is given");
    assert_eq!(placed.body["total"], "43.79");
    let a = bin_level(&s, "A", B1).await;
    assert_eq!((a["available"].as_i64(), a["committed"].as_i64(), a["on_hand"].as_i64()), (Some(3), Some(2), Some(5)));
    let id = placed.body["id"].as_i64().unwrap();
    ok(&s.get(&format!("/v1/orders/{id}")).await, 200);
    let moves = s.get("/v1/inventory/movements?reason=order").await;
    assert_eq!(moves.body["items"].as_array().unwrap().len(), 2);
    verify_clean(&s).await;
}

#[tokio::test]
async fn the_same_channel_order_number_never_makes_two_orders() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 5).await;
    let body = order("X-1", json!([{"sku": "A", "quantity": 1}]));
    let first = s.post("/v1/orders", &body).await;
    ok(&first, 201);
    // The same order with its keys in another order is the same order.
    let reordered: Value = serde_json::from_str(
        r#"{"lines": [{"quantity": 1, "sku": "A"}], "currency": "EUR", "external_number": "X-1", "source": "webshop"}"#,
    )
    .unwrap();
    let again = s.post("/v1/orders", &reordered).await;
    ok(&again, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    let different = s.post("/v1/orders", &order("X-1", json!([{"sku": "A", "quantity": 2}]))).await;
    assert_eq!(different.status, 409);
    assert_eq!(different.code(), "order_number_conflict");
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 1);
    // Another source may use the same number.
    let mut other = body.clone();
    other["source"] = json!("marketplace");
    ok(&s.post("/v1/orders", &other).await, 201);

    // A retry is answered before anything else is done: a customer known only by name is not created twice, and
    // a catalog changed since (the SKU renamed) cannot refuse it.
    let mut named = order("X-2", json!([{"sku": "A", "quantity": 1}]));
    named["customer"] = json!({"name": "Walk-in"});
    let first = s.post("/v1/orders", &named).await;
    ok(&first, 201);
    let variant = s.get("/v1/variants?sku=A").await.body["items"][0]["id"].as_i64().unwrap();
    let renamed = s.send(s.client.patch(s.url(&format!("/v1/variants/{variant}"))).json(&json!({"sku": "A2"}))).await;
    ok(&renamed, 200);
    let again = s.post("/v1/orders", &named).await;
    ok(&again, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    let customers = s.get("/v1/customers?q=Walk-in").await;
    assert_eq!(customers.body["items"].as_array().unwrap().len(), 1, "{}", customers.body);
}

#[tokio::test]
async fn policies_at_zero_backorder_and_continue() {
    let s = stocked_server(&["A", "C"]).await;
    set_policy(&s, "A", "backorder").await;
    set_policy(&s, "C", "continue").await;
    receive(&s, "A", B1, 2).await;
    let first =
        s.post("/v1/orders", &order("1", json!([{"sku": "A", "quantity": 5}, {"sku": "C", "quantity": 2}]))).await;
    ok(&first, 201);
    assert_eq!(first.body["lines"][0]["committed"], 2);
    assert_eq!(first.body["lines"][0]["backordered"], 3);
    assert_eq!(first.body["lines"][1]["oversold"], 2);
    let second = s.post("/v1/orders", &order("2", json!([{"sku": "A", "quantity": 2}]))).await;
    ok(&second, 201);
    assert_eq!(second.body["lines"][0]["backordered"], 2);
    let backordered = s.get("/v1/orders?backordered=true").await;
    assert_eq!(backordered.body["items"].as_array().unwrap().len(), 2);

    // Four arrive: the first order takes its three, the second gets one.
    receive(&s, "A", W2, 4).await;
    let first = s.get(&format!("/v1/orders/{}", first.body["id"])).await;
    assert_eq!(first.body["lines"][0]["backordered"], 0);
    assert_eq!(first.body["lines"][0]["committed"], 5);
    let second_id = second.body["id"].clone();
    let second = s.get(&format!("/v1/orders/{second_id}")).await;
    assert_eq!(second.body["lines"][0]["backordered"], 1);
    assert_eq!(second.body["lines"][0]["committed"], 1);
    assert_eq!(bin_level(&s, "A", W2).await["available"], 0);
    // Stock freed by a cancellation goes to the waiting order too.
    let cancel = s
        .post(&format!("/v1/orders/{}/cancel", first.body["id"]), &json!({"lines": [{"line": 0, "quantity": 1}]}))
        .await;
    ok(&cancel, 200);
    assert_eq!(cancel.body["cancelled_amount"], "19.99");
    let second = s.get(&format!("/v1/orders/{second_id}")).await;
    assert_eq!(second.body["lines"][0]["backordered"], 0, "{}", second.text);
    verify_clean(&s).await;
}

#[tokio::test]
async fn cancellation_releases_stock_and_refuses_what_is_gone() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 3).await;
    let placed = s.post("/v1/orders", &order("1", json!([{"sku": "A", "quantity": 3}]))).await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    let too_many = s.post(&format!("/v1/orders/{id}/cancel"), &json!({"lines": [{"line": 0, "quantity": 4}]})).await;
    assert_eq!(too_many.code(), "invalid_quantity");
    let no_line = s.post(&format!("/v1/orders/{id}/cancel"), &json!({"lines": [{"line": 3, "quantity": 1}]})).await;
    assert_eq!(no_line.status, 422);
    let part = s.post(&format!("/v1/orders/{id}/cancel"), &json!({"lines": [{"line": 0, "quantity": 1}]})).await;
    ok(&part, 200);
    assert_eq!(part.body["order"]["lines"][0]["cancelled"], 1);
    assert_eq!(bin_level(&s, "A", B1).await["available"], 1);
    let all = s.send(s.client.post(s.url(&format!("/v1/orders/{id}/cancel")))).await;
    ok(&all, 200);
    assert_eq!(all.body["order"]["status"], "cancelled");
    assert_eq!(bin_level(&s, "A", B1).await["available"], 3);
    let again = s.send(s.client.post(s.url(&format!("/v1/orders/{id}/cancel")))).await;
    assert_eq!(again.code(), "order_cancelled");
    assert_eq!(s.post("/v1/orders/999/cancel", &json!({})).await.status, 404);
    verify_clean(&s).await;
}

#[tokio::test]
async fn bad_orders_are_refused_and_change_nothing() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 3).await;
    let cases = [
        (order("1", json!([{"sku": "NOPE", "quantity": 1}])), "unknown_reference", "lines[0].sku"),
        (order("1", json!([{"sku": "A", "quantity": 0}])), "validation_failed", "lines[0].quantity"),
        (order("1", json!([{"sku": "A", "quantity": -1}])), "validation_failed", "lines[0].quantity"),
        (order("1", json!([])), "validation_failed", "lines"),
        (
            json!({"source": "webshop", "currency": "eur", "lines": [{"sku": "A", "quantity": 1}]}),
            "validation_failed",
            "currency",
        ),
        (
            json!({"source": "webshop", "currency": "USD", "lines": [{"sku": "A", "quantity": 1}]}),
            "currency_mismatch",
            "lines[0].unit_price",
        ),
        (
            json!({"source": "web shop", "currency": "EUR", "lines": [{"sku": "A", "quantity": 1}]}),
            "validation_failed",
            "source",
        ),
        (
            json!({"source": "phone", "currency": "EUR", "hold_id": 42, "lines": [{"sku": "A", "quantity": 1}]}),
            "unknown_reference",
            "hold_id",
        ),
    ];
    for (body, code, field) in cases {
        let r = s.post("/v1/orders", &body).await;
        assert_eq!(r.code(), code, "{body}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field, "{body}: {}", r.text);
    }
    assert_eq!(s.get("/v1/orders").await.body["items"].as_array().unwrap().len(), 0);
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 0);
}

#[tokio::test]
async fn a_phone_order_finds_or_creates_its_customer() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 3).await;
    let phone_order = json!({
        "source": "phone", "currency": "EUR", "payment_terms": "invoice", "notes": "call before delivery",
        "customer": {"name": "Erika Mustermann", "phone": "+49 30 1234567", "email": "Erika@Example.org",
                     "address": {"line1": "Hauptstr. 5", "city": "Berlin", "postal_code": "10115", "country": "DE"}},
        "lines": [{"sku": "A", "quantity": 1}]
    });
    let first = s.post("/v1/orders", &phone_order).await;
    ok(&first, 201);
    let customer = first.body["customer_id"].as_i64().unwrap();
    assert_eq!(first.body["payment_terms"], "invoice");
    let c = s.get(&format!("/v1/customers/{customer}")).await;
    assert_eq!(c.body["email"], "erika@example.org");
    assert_eq!(c.body["phone"], "+49301234567");
    // The same caller again, by phone only: the same customer.
    let again = json!({"source": "phone", "currency": "EUR", "customer": {"phone": "+49-30-1234567"}, "lines": [{"sku": "A", "quantity": 1}]});
    let second = s.post("/v1/orders", &again).await;
    ok(&second, 201);
    assert_eq!(second.body["customer_id"], customer);
    assert_eq!(s.get("/v1/customers?q=erika").await.body["items"].as_array().unwrap().len(), 1);
    let by_customer = s.get(&format!("/v1/orders?customer_id={customer}")).await;
    assert_eq!(by_customer.body["items"].as_array().unwrap().len(), 2);
    let dup = s.post("/v1/customers", &json!({"name": "X", "email": "erika@example.org"})).await;
    assert_eq!(dup.code(), "duplicate_customer");
}

#[tokio::test]
async fn holds_reserve_convert_release_and_expire() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 3).await;
    receive(&s, "B", B2, 3).await;
    let hold = s.post("/v1/holds", &json!({"lines": [{"sku": "A", "quantity": 2}], "reference": "cart-7"})).await;
    ok(&hold, 201);
    assert_eq!(hold.body["status"], "active");
    let a = bin_level(&s, "A", B1).await;
    assert_eq!((a["available"].as_i64(), a["reserved"].as_i64()), (Some(1), Some(2)));
    let too_much = s.post("/v1/holds", &json!({"lines": [{"sku": "A", "quantity": 2}]})).await;
    assert_eq!(too_much.code(), "insufficient_stock");
    let hold_id = hold.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/holds/{hold_id}/extend"), &json!({"ttl_seconds": 1800})).await, 200);

    let mismatch =
        json!({"source": "webshop", "currency": "EUR", "hold_id": hold_id, "lines": [{"sku": "A", "quantity": 1}]});
    assert_eq!(s.post("/v1/orders", &mismatch).await.code(), "hold_mismatch");
    let convert =
        json!({"source": "webshop", "currency": "EUR", "hold_id": hold_id, "lines": [{"sku": "A", "quantity": 2}]});
    let placed = s.post("/v1/orders", &convert).await;
    ok(&placed, 201);
    assert_eq!(placed.body["lines"][0]["committed"], 2);
    let a = bin_level(&s, "A", B1).await;
    assert_eq!((a["reserved"].as_i64(), a["committed"].as_i64()), (Some(0), Some(2)));
    assert_eq!(s.get(&format!("/v1/holds/{hold_id}")).await.body["status"], "converted");
    let twice = json!({"source": "webshop", "external_number": "other", "currency": "EUR", "hold_id": hold_id, "lines": [{"sku": "A", "quantity": 2}]});
    assert_eq!(s.post("/v1/orders", &twice).await.code(), "hold_not_active");

    let released = s.post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 1}]})).await;
    ok(&released, 201);
    let rid = released.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/holds/{rid}/release"), &json!({})).await, 200);
    assert_eq!(bin_level(&s, "B", B2).await["reserved"], 0);
    assert_eq!(s.post(&format!("/v1/holds/{rid}/release"), &json!({})).await.code(), "hold_not_active");
    let from_released =
        json!({"source": "webshop", "currency": "EUR", "hold_id": rid, "lines": [{"sku": "B", "quantity": 1}]});
    assert_eq!(
        s.post("/v1/orders", &from_released).await.code(),
        "hold_not_active",
        "a released hold cannot be converted"
    );

    // A short hold stops counting the moment it expires, whether or not the worker has run.
    let short = s.post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 3}], "ttl_seconds": 1})).await;
    ok(&short, 201);
    let sid = short.body["id"].as_i64().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(s.get(&format!("/v1/holds/{sid}")).await.body["status"], "expired");
    let b = bin_level(&s, "B", B2).await;
    assert_eq!((b["available"].as_i64(), b["reserved"].as_i64()), (Some(3), Some(0)));
    let late = json!({"source": "webshop", "currency": "EUR", "hold_id": sid, "lines": [{"sku": "B", "quantity": 3}]});
    let late = s.post("/v1/orders", &late).await;
    assert_eq!(late.code(), "hold_expired", "{}", late.text);
    // Someone else can have the stock at once.
    ok(&s.post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 3}]})).await, 201);
    let bad_ttl = s.post("/v1/holds", &json!({"lines": [{"sku": "A", "quantity": 1}], "ttl_seconds": 999999})).await;
    assert_eq!(bad_ttl.body["errors"][0]["field"], "ttl_seconds");
    verify_clean(&s).await;
}

/// Sends `n` concurrent requests, each made by `body(i)`, and returns the replies in request order.
async fn race(
    s: &Arc<testkit::server::TestServer>,
    path: &str,
    n: usize,
    body: impl Fn(usize) -> Value,
) -> Vec<(u16, Value)> {
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let (s, path, body) = (s.clone(), path.to_string(), body(i));
        tasks.push(tokio::spawn(async move {
            let r = s.post(&path, &body).await;
            (r.status, r.body)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_buyers_for_one_hundred_units() {
    let s = Arc::new(stocked_server(&["HOT", "HELD", "LATE"]).await);
    for sku in ["HOT", "HELD", "LATE"] {
        receive(&s, sku, B1, 60).await;
        receive(&s, sku, W2, 40).await;
    }
    // Orders: exactly 100 win.
    let replies =
        race(&s, "/v1/orders", 500, |i| order(&format!("o{i}"), json!([{"sku": "HOT", "quantity": 1}]))).await;
    let won = replies.iter().filter(|(st, _)| *st == 201).count();
    let lost = replies.iter().filter(|(st, b)| *st == 409 && b["code"] == "insufficient_stock").count();
    assert_eq!((won, lost), (100, 400));
    let total = s.get("/v1/inventory/levels?sku=HOT").await.body["items"][0]["total"].clone();
    assert_eq!((total["available"].as_i64(), total["committed"].as_i64()), (Some(0), Some(100)));
    verify_clean(&s).await;

    // Holds: exactly 100 win.
    let replies = race(&s, "/v1/holds", 500, |_| json!({"lines": [{"sku": "HELD", "quantity": 1}]})).await;
    let won = replies.iter().filter(|(st, _)| *st == 201).count();
    let lost = replies.iter().filter(|(st, b)| *st == 409 && b["code"] == "insufficient_stock").count();
    assert_eq!((won, lost), (100, 400));
    let total = s.get("/v1/inventory/levels?sku=HELD").await.body["items"][0]["total"].clone();
    assert_eq!((total["available"].as_i64(), total["reserved"].as_i64()), (Some(0), Some(100)));
    verify_clean(&s).await;

    // Backorders: 100 committed, 400 backordered, then filled in the order they were placed.
    ok(&s.patch("/v1/variants/LATE", &json!({"inventory_policy": "backorder"})).await, 200);
    let replies =
        race(&s, "/v1/orders", 500, |i| order(&format!("b{i}"), json!([{"sku": "LATE", "quantity": 1}]))).await;
    assert!(replies.iter().all(|(st, _)| *st == 201), "every backorder order is accepted");
    let committed = replies.iter().filter(|(_, b)| b["lines"][0]["committed"] == 1).count();
    let backordered = replies.iter().filter(|(_, b)| b["lines"][0]["backordered"] == 1).count();
    assert_eq!((committed, backordered), (100, 400));
    let mut waiting: Vec<(String, i64)> = replies
        .iter()
        .filter(|(_, b)| b["lines"][0]["backordered"] == 1)
        .map(|(_, b)| (b["placed_at"].as_str().unwrap().to_string(), b["id"].as_i64().unwrap()))
        .collect();
    waiting.sort();
    // 250 arrive: exactly the 250 oldest waiting orders are filled.
    receive(&s, "LATE", B2, 250).await;
    for (rank, (_, id)) in waiting.iter().enumerate() {
        let o = s.get(&format!("/v1/orders/{id}")).await;
        let expect = if rank < 250 { 0 } else { 1 };
        assert_eq!(o.body["lines"][0]["backordered"], expect, "order {id} at rank {rank}");
    }
    receive(&s, "LATE", B2, 150).await;
    let still = s.get("/v1/orders?backordered=true").await;
    assert_eq!(still.body["items"].as_array().unwrap().len(), 0);
    let total = s.get("/v1/inventory/levels?sku=LATE").await.body["items"][0]["total"].clone();
    assert_eq!((total["available"].as_i64(), total["committed"].as_i64()), (Some(0), Some(500)));
    verify_clean(&s).await;
}

#[tokio::test]
async fn an_order_from_placement_to_refund() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 5).await;
    receive(&s, "B", B2, 2).await;
    let placed = s
        .post(
            "/v1/orders",
            &order("L-1", json!([{"sku": "A", "quantity": 3, "unit_price": "10.00"}, {"sku": "B", "quantity": 2, "unit_price": "5.00"}])),
        )
        .await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    assert_eq!(placed.body["payment_status"], "unpaid");
    let url = |p: &str| format!("/v1/orders/{id}/{p}");

    let unpaid = s.post(&url("shipments"), &json!({})).await;
    assert_eq!(unpaid.code(), "payment_required");
    ok(
        &s.post(
            &url("payments"),
            &json!({"kind": "authorize", "amount": "40.00", "currency": "EUR", "reference": "psp-1"}),
        )
        .await,
        200,
    );
    assert_eq!(
        s.post(&url("payments"), &json!({"kind": "capture", "amount": "50", "currency": "EUR"})).await.code(),
        "amount_too_large"
    );
    assert_eq!(
        s.post(&url("payments"), &json!({"kind": "capture", "amount": "10", "currency": "USD"})).await.code(),
        "currency_mismatch"
    );
    let part = s.post(&url("payments"), &json!({"kind": "capture", "amount": "15", "currency": "EUR"})).await;
    assert_eq!(part.body["payment_status"], "partially_paid");
    let paid = s.post(&url("payments"), &json!({"kind": "capture", "amount": "25", "currency": "EUR"})).await;
    assert_eq!(paid.body["payment_status"], "paid");

    // Ship part of line 0, then the rest.
    let first = s
        .post(
            &url("shipments"),
            &json!({"lines": [{"line": 0, "quantity": 2}], "carrier": "DHL", "service": "Paket", "tracking_number": "00340434",
                    "tracking_url": "https://track.example/00340434", "packages": [{"weight_grams": 900, "length_mm": 300, "width_mm": 200, "height_mm": 100}]}),
        )
        .await;
    ok(&first, 201);
    assert_eq!(first.body["fulfillment_status"], "partially_fulfilled");
    assert_eq!(first.body["lines"][0]["shipped"], 2);
    assert_eq!(first.body["shipments"][0]["tracking_number"], "00340434");
    let a = bin_level(&s, "A", B1).await;
    assert_eq!((a["on_hand"].as_i64(), a["committed"].as_i64()), (Some(3), Some(1)), "shipped units left on_hand");
    let too_many = s.post(&url("shipments"), &json!({"lines": [{"line": 1, "quantity": 3}]})).await;
    assert_eq!(too_many.code(), "invalid_quantity");
    let rest = s.post(&url("shipments"), &json!({"carrier": "DHL"})).await;
    ok(&rest, 201);
    assert_eq!(rest.body["fulfillment_status"], "fulfilled");
    assert_eq!(s.post(&url("shipments"), &json!({})).await.code(), "nothing_to_ship");
    let shipped_line = s.post(&url("cancel"), &json!({"lines": [{"line": 0, "quantity": 1}]})).await;
    assert_eq!(shipped_line.code(), "invalid_quantity", "shipped units cannot be cancelled");
    let customer_moves = s.get("/v1/inventory/movements?reason=shipment").await;
    assert_eq!(customer_moves.body["items"][0]["to"]["location"], "CUSTOMER");

    // One unit of line 0 comes back and is restocked; refund it.
    let ret = s
        .post("/v1/returns", &json!({"order_id": id, "lines": [{"line": 0, "quantity": 1, "reason": "too small"}]}))
        .await;
    ok(&ret, 201);
    let rid = ret.body["id"].as_str().unwrap().to_string();
    let over =
        s.post("/v1/returns", &json!({"order_id": id, "lines": [{"line": 0, "quantity": 3, "reason": "x"}]})).await;
    assert_eq!(over.code(), "invalid_quantity", "{}", over.text);
    let no_bin = s
        .post(
            &format!("/v1/returns/{rid}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "disposition": "restock"}]}),
        )
        .await;
    assert_eq!(no_bin.status, 422);
    let received = s
        .post(
            &format!("/v1/returns/{rid}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "disposition": "restock", "bin": B2}]}),
        )
        .await;
    ok(&received, 200);
    assert_eq!(received.body["lines"][0]["received"], 1);
    assert_eq!(bin_level(&s, "A", B2).await["available"], 1);
    let twice = s
        .post(
            &format!("/v1/returns/{rid}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "disposition": "scrap"}]}),
        )
        .await;
    assert_eq!(twice.code(), "invalid_quantity");
    assert_eq!(s.get(&format!("/v1/returns/{rid}")).await.body["order_id"], id);
    assert_eq!(
        s.post(&url("payments"), &json!({"kind": "refund", "amount": "50", "currency": "EUR"})).await.code(),
        "amount_too_large"
    );
    let refunded = s.post(&url("payments"), &json!({"kind": "refund", "amount": "10", "currency": "EUR"})).await;
    assert_eq!(refunded.body["payment_status"], "partially_refunded");
    let memo = s
        .post(
            &url("credit-memos"),
            &json!({"amount": "10.00", "lines": [{"line": 0, "quantity": 1}], "reason": "returned"}),
        )
        .await;
    ok(&memo, 201);
    assert_eq!(memo.body["credit_memos"][0]["amount"], "10.00");
    verify_clean(&s).await;
}

#[tokio::test]
async fn an_invoice_order_ships_unpaid_and_edits_move_only_the_difference() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 5).await;
    receive(&s, "B", B2, 5).await;
    let body = json!({"source": "phone", "currency": "EUR", "payment_terms": "invoice",
                      "customer": {"name": "Max", "phone": "+49 30 555"}, "lines": [{"sku": "A", "quantity": 2}]});
    let placed = s.post("/v1/orders", &body).await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    let edit = |b: Value| {
        let s = &s;
        async move { s.post(&format!("/v1/orders/{id}/edits"), &b).await }
    };
    let more = edit(json!({"lines": [{"line": 0, "quantity": 4}], "add": [{"sku": "B", "quantity": 1}]})).await;
    ok(&more, 200);
    assert_eq!(more.body["lines"][0]["committed"], 4);
    assert_eq!(more.body["lines"][1]["committed"], 1);
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 4);
    let short = edit(json!({"lines": [{"line": 0, "quantity": 9}]})).await;
    assert_eq!(short.code(), "insufficient_stock");
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 4, "a refused edit changes nothing");
    let less = edit(json!({"lines": [{"line": 0, "quantity": 1}, {"line": 1, "quantity": 0}]})).await;
    ok(&less, 200);
    assert_eq!(bin_level(&s, "A", B1).await["available"], 4);
    assert_eq!(bin_level(&s, "B", B2).await["committed"], 0);
    let shipped = s.post(&format!("/v1/orders/{id}/shipments"), &json!({"carrier": "UPS"})).await;
    ok(&shipped, 201);
    assert_eq!(shipped.body["payment_status"], "unpaid");
    let below = edit(json!({"lines": [{"line": 0, "quantity": 0}]})).await;
    assert_eq!(below.code(), "invalid_quantity");
    verify_clean(&s).await;
}

#[tokio::test]
async fn pick_lists_gather_orders_in_walking_order_and_rechoose_bins() {
    let s = stocked_server(&["A", "B"]).await;
    ok(
        &s.post(
            "/v1/locations",
            &json!({"code": "BIN-3", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 3}),
        )
        .await,
        201,
    );
    let b3 = "WH1/HALL-1/SHELF-1/BIN-3";
    receive(&s, "A", B1, 2).await;
    receive(&s, "A", B2, 2).await;
    receive(&s, "B", B2, 1).await;
    let first = s.post("/v1/orders", &order("P-1", json!([{"sku": "A", "quantity": 4}]))).await;
    ok(&first, 201);
    assert_eq!(first.body["lines"][0]["allocations"].as_array().unwrap().len(), 2);
    let second = s.post("/v1/orders", &order("P-2", json!([{"sku": "B", "quantity": 1}]))).await;
    ok(&second, 201);
    // Since the first order was placed, a full carton arrived in BIN-3: the pick list takes all four from there.
    receive(&s, "A", b3, 5).await;

    let list = s.post("/v1/pick-lists", &json!({"warehouse": "WH1"})).await;
    ok(&list, 201);
    let stops = list.body["lines"].as_array().unwrap();
    assert_eq!(stops.len(), 2, "{}", list.text);
    assert_eq!(
        (stops[0]["bin"].as_str(), stops[0]["sku"].as_str(), stops[0]["quantity"].as_i64()),
        (Some(B2), Some("B"), Some(1))
    );
    assert_eq!(
        (stops[1]["bin"].as_str(), stops[1]["sku"].as_str(), stops[1]["quantity"].as_i64()),
        (Some(b3), Some("A"), Some(4))
    );
    let a3 = bin_level(&s, "A", b3).await;
    assert_eq!((a3["committed"].as_i64(), a3["available"].as_i64()), (Some(4), Some(1)));
    assert_eq!(bin_level(&s, "A", B1).await["committed"], 0);
    assert_eq!(bin_level(&s, "A", B1).await["available"], 2);
    let order_view = s.get(&format!("/v1/orders/{}", first.body["id"])).await;
    assert_eq!(order_view.body["lines"][0]["allocations"][0]["bin"], b3);

    // Orders on an open pick list are not gathered twice.
    assert_eq!(s.post("/v1/pick-lists", &json!({"warehouse": "WH1"})).await.code(), "nothing_to_pick");
    let busy = s.post("/v1/pick-lists", &json!({"warehouse": "WH1", "order_ids": [first.body["id"]]})).await;
    assert_eq!(busy.code(), "already_picking");
    let id = list.body["id"].as_i64().unwrap();
    assert_eq!(s.get("/v1/pick-lists?warehouse=WH1&status=open").await.body["items"].as_array().unwrap().len(), 1);
    let bad = s.post(&format!("/v1/pick-lists/{id}/complete"), &json!({"picked": [1]})).await;
    assert_eq!(bad.body["errors"][0]["field"], "picked");
    let done = s.post(&format!("/v1/pick-lists/{id}/complete"), &json!({})).await;
    ok(&done, 200);
    assert_eq!(done.body["status"], "picked");
    assert_eq!(done.body["lines"][1]["picked"], 4);
    assert_eq!(s.post(&format!("/v1/pick-lists/{id}/cancel"), &json!({})).await.code(), "pick_list_closed");

    // Pack, pay, ship: the shipment takes the packed packages.
    let oid = first.body["id"].as_i64().unwrap();
    let packed = s
        .post(
            &format!("/v1/orders/{oid}/packages"),
            &json!({"packages": [{"weight_grams": 1200, "length_mm": 400, "width_mm": 300, "height_mm": 150}]}),
        )
        .await;
    ok(&packed, 200);
    ok(
        &s.post(
            &format!("/v1/orders/{oid}/payments"),
            &json!({"kind": "capture", "amount": placed_total(&first), "currency": "EUR"}),
        )
        .await,
        200,
    );
    let shipped =
        s.post(&format!("/v1/orders/{oid}/shipments"), &json!({"carrier": "DPD", "tracking_number": "X1"})).await;
    ok(&shipped, 201);
    assert_eq!(shipped.body["shipments"][0]["packages"][0]["weight_grams"], 1200);
    assert_eq!(bin_level(&s, "A", b3).await["on_hand"], 1);
    // Cancelling a paid order tells what to refund.
    let paid_second = s.get(&format!("/v1/orders/{}", second.body["id"])).await;
    ok(
        &s.post(
            &format!("/v1/orders/{}/payments", second.body["id"]),
            &json!({"kind": "capture", "amount": placed_total(&paid_second), "currency": "EUR"}),
        )
        .await,
        200,
    );
    let cancelled = s.post(&format!("/v1/orders/{}/cancel", second.body["id"]), &json!({})).await;
    ok(&cancelled, 200);
    assert_eq!(cancelled.body["refund_due"], "19.99");
    verify_clean(&s).await;
}

fn placed_total(r: &testkit::server::Reply) -> Value {
    r.body["total"].clone()
}

/// The whole life of an order: placed, picked, packed, paid, shipped in two parts, one line returned and
/// restocked, refunded. Run for a web shop order and for a phone order by a new customer.
async fn whole_life(s: &testkit::server::TestServer, body: Value) {
    let placed = s.post("/v1/orders", &body).await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    let url = |p: &str| format!("/v1/orders/{id}/{p}");
    let list = s.post("/v1/pick-lists", &json!({"warehouse": "WH1", "order_ids": [id]})).await;
    ok(&list, 201);
    let picks: i64 = list.body["lines"].as_array().unwrap().iter().map(|l| l["quantity"].as_i64().unwrap()).sum();
    assert_eq!(picks, 3);
    ok(&s.post(&format!("/v1/pick-lists/{}/complete", list.body["id"]), &json!({})).await, 200);
    ok(&s.post(&url("packages"), &json!({"packages": [{"weight_grams": 800}]})).await, 200);
    let total = placed.body["total"].clone();
    ok(&s.post(&url("payments"), &json!({"kind": "authorize", "amount": total, "currency": "EUR"})).await, 200);
    let paid = s.post(&url("payments"), &json!({"kind": "capture", "amount": total, "currency": "EUR"})).await;
    assert_eq!(paid.body["payment_status"], "paid");
    let part = s
        .post(
            &url("shipments"),
            &json!({"lines": [{"line": 0, "quantity": 1}], "carrier": "DHL", "tracking_number": "T-1"}),
        )
        .await;
    ok(&part, 201);
    assert_eq!(part.body["fulfillment_status"], "partially_fulfilled");
    let rest = s.post(&url("shipments"), &json!({"carrier": "DHL", "tracking_number": "T-2"})).await;
    ok(&rest, 201);
    assert_eq!(rest.body["fulfillment_status"], "fulfilled");
    assert_eq!(rest.body["lines"][0]["shipped"], 2);
    let before = bin_level(s, "A", B2).await["available"].as_i64().unwrap();
    let b_before = bin_level(s, "B", B2).await["available"].as_i64().unwrap();
    let ret = s
        .post("/v1/returns", &json!({"order_id": id, "lines": [{"line": 1, "quantity": 1, "reason": "wrong colour"}]}))
        .await;
    ok(&ret, 201);
    let rid = ret.body["id"].as_str().unwrap();
    let got = s
        .post(
            &format!("/v1/returns/{rid}/receipts"),
            &json!({"lines": [{"line": 0, "quantity": 1, "disposition": "restock", "bin": B2}]}),
        )
        .await;
    ok(&got, 200);
    assert_eq!(
        bin_level(s, "B", B2).await["available"].as_i64(),
        Some(b_before + 1),
        "the returned unit is sellable again"
    );
    assert_eq!(bin_level(s, "A", B2).await["available"].as_i64().unwrap(), before);
    let refund = s.post(&url("payments"), &json!({"kind": "refund", "amount": "19.99", "currency": "EUR"})).await;
    assert_eq!(refund.body["payment_status"], "partially_refunded");
    let events: Vec<String> = s
        .app
        .store
        .movements(&Default::default(), None, 500)
        .await
        .unwrap()
        .iter()
        .map(|m| m.movement.reason.to_string())
        .collect();
    for reason in ["order", "shipment", "return"] {
        assert!(events.iter().any(|e| e == reason), "no {reason} movement");
    }
    verify_clean(s).await;
}

#[tokio::test]
async fn a_web_shop_order_and_a_phone_order_live_their_whole_life() {
    let s = stocked_server(&["A", "B"]).await;
    receive(&s, "A", B1, 4).await;
    receive(&s, "B", B1, 2).await;
    whole_life(&s, order("W-1", json!([{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]))).await;
    let phone = json!({
        "source": "phone", "currency": "EUR",
        "customer": {"name": "Neu Kunde", "phone": "+49 40 123456", "address": {"line1": "Elbchaussee 1", "city": "Hamburg", "postal_code": "22763", "country": "DE"}},
        "lines": [{"sku": "A", "quantity": 2}, {"sku": "B", "quantity": 1}]
    });
    whole_life(&s, phone).await;
    let customers = s.get("/v1/customers?q=%2B4940").await;
    assert_eq!(customers.body["items"].as_array().unwrap().len(), 1, "{}", customers.text);
}
