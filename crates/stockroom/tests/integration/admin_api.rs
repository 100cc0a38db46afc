//! The API the web admin's dashboard and item pages read: one search box for variants, units sold per day, and the
//! dashboard's counts, each checked against a scene built through the API (and past ledger days written directly).

use chrono::{Duration, NaiveTime, Utc};
use serde_json::{json, Value};
use testkit::history::{write_past_movements, PastMovement, Side};
use testkit::server::TestServer;

use crate::common::{fresh_store, layout, ok, receive};

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";

fn skus(page: &Value) -> Vec<String> {
    page["items"].as_array().unwrap().iter().map(|v| v["sku"].as_str().unwrap().to_string()).collect()
}

async fn search(s: &TestServer, q: &str) -> Vec<String> {
    let r = s.get(&format!("/v1/variants?q={}", urlencode(q))).await;
    ok(&r, 200);
    assert!(r.body["next_cursor"].is_null(), "a search is one page: {}", r.body);
    skus(&r.body)
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b == b'-' { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn one_search_box_finds_variants_by_sku_barcode_or_title_exact_matches_first() {
    let (guard, _, store) = fresh_store().await;
    let s = TestServer::start(store, guard).await;
    // The title match is created first and the prefix match before the exact one, so that id order would put
    // them the wrong way round: only the ranking puts the exact SKU first.
    let lid = json!({"handle": "lid", "title": "Travel MUG-1 lid", "status": "active",
        "variants": [{"sku": "LID-1", "price": "3.00", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &lid).await, 201);
    let mug = json!({"handle": "mug", "title": "Coffee mug", "status": "active", "options": ["Size"],
        "variants": [
            {"sku": "MUG-10", "options": ["L"], "price": "9.00", "currency": "EUR", "barcode": "4006381333948"},
            {"sku": "MUG-1", "options": ["S"], "price": "8.00", "currency": "EUR", "barcode": "4006381333931"},
            {"sku": "CUP%_2", "options": ["M"], "price": "8.50", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &mug).await, 201);

    assert_eq!(search(&s, "mug-1").await, ["MUG-1", "MUG-10", "LID-1"], "exact SKU, SKU prefix, title");
    assert_eq!(search(&s, "MUG-10").await, ["MUG-10"]);
    assert_eq!(search(&s, "4006381333931").await, ["MUG-1"], "the barcode, exactly");
    assert_eq!(search(&s, "400638133393").await, Vec::<String>::new(), "barcodes never match by prefix");
    assert_eq!(search(&s, "COFFEE").await, ["MUG-10", "MUG-1", "CUP%_2"], "the title, in any case, by id");
    // LIKE's wildcards mean themselves: `_` is not "any character", `%` not "anything".
    assert_eq!(search(&s, "MUG_1").await, Vec::<String>::new());
    assert_eq!(search(&s, "%").await, Vec::<String>::new());
    assert_eq!(search(&s, "cup%_").await, ["CUP%_2"]);
    let one = s.get("/v1/variants?q=mug&limit=1").await;
    ok(&one, 200);
    assert_eq!(skus(&one.body), ["MUG-10"], "at most `limit` best matches (prefixes tie, by id)");

    // Bad searches are refused and name the field.
    for (query, field) in [("q=", "q"), ("q=%20%20", "q"), (&*format!("q={}", "x".repeat(201)), "q")] {
        let r = s.get(&format!("/v1/variants?{query}")).await;
        assert_eq!((r.status, r.code()), (422, "validation_failed"), "{query}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field);
    }
    let page = s.get("/v1/variants?limit=1").await;
    let cursor = page.body["next_cursor"].as_str().unwrap().to_string();
    let r = s.get(&format!("/v1/variants?q=mug&after={cursor}")).await;
    assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("after")), "{}", r.text);
    assert_eq!(s.get("/v1/variants?query=mug").await.status, 400, "unknown parameters are refused");
}

#[tokio::test]
async fn sales_per_day_counts_shipments_to_customers_per_utc_day_every_day_present() {
    let (guard, url, store) = fresh_store().await;
    let s = TestServer::start(store, guard).await;
    layout(&s).await;
    ok(&s.post("/v1/products", &crate::common::tee("tee", &["A", "B"])).await, 201);
    let today = Utc::now().date_naive();
    let at = |back: i64, h: u32, m: u32| {
        (today - Duration::days(back)).and_time(NaiveTime::from_hms_opt(h, m, 0).unwrap()).and_utc()
    };
    let bin = || Side::Bin(B1.to_string(), "available");
    let mv = |sku: &str, q: i64, from: Side, to: Side, reason: &'static str, at| PastMovement {
        sku: sku.into(),
        quantity: q,
        from,
        to,
        reason,
        at,
    };
    write_past_movements(
        &url,
        &[
            mv("A", 100, Side::Virtual("supplier"), bin(), "received", at(9, 6, 0)),
            mv("B", 100, Side::Virtual("supplier"), bin(), "received", at(9, 6, 0)),
            // Outside a 3-day window, inside a 7-day one.
            mv("A", 4, bin(), Side::Virtual("customer"), "shipment", at(5, 12, 0)),
            // Two shipments on one day, the second in its last minute: one UTC day.
            mv("A", 3, bin(), Side::Virtual("customer"), "shipment", at(2, 0, 0)),
            mv("A", 2, bin(), Side::Virtual("customer"), "shipment", at(2, 23, 59)),
            // Not sales: a return from the customer, shrinkage, scrap.
            mv("A", 1, Side::Virtual("customer"), bin(), "return", at(2, 10, 0)),
            mv("A", 5, bin(), Side::Virtual("adjustment"), "shrinkage", at(2, 11, 0)),
            mv("A", 6, bin(), Side::Virtual("scrap"), "damage", at(1, 11, 0)),
            mv("B", 7, bin(), Side::Virtual("customer"), "shipment", at(1, 9, 0)),
        ],
    )
    .await;

    // Today's sale through the write path: placed, then shipped (committed → customer).
    let placed = s.post("/v1/orders", &order("today", "B", 2)).await;
    ok(&placed, 201);
    let id = placed.body["id"].as_i64().unwrap();
    ok(&s.post(&format!("/v1/orders/{id}/shipments"), &json!({})).await, 201);

    let r = s.get("/v1/reports/sales-per-day?days=7").await;
    ok(&r, 200);
    let days = r.body["days"].as_array().unwrap();
    let got: Vec<(String, i64)> =
        days.iter().map(|d| (d["date"].as_str().unwrap().to_string(), d["units"].as_i64().unwrap())).collect();
    let want: Vec<(String, i64)> = (0..7)
        .rev()
        .map(|back| {
            let units = match back {
                5 => 4,
                2 => 5,
                1 => 7,
                0 => 2,
                _ => 0,
            };
            ((today - Duration::days(back)).to_string(), units)
        })
        .collect();
    assert_eq!(got, want, "oldest first, today last, zeros included");
    assert_eq!(r.body["total"], 18);

    let a = s.get("/v1/reports/sales-per-day?days=3&sku=A").await;
    ok(&a, 200);
    assert_eq!(a.body["days"].as_array().unwrap().len(), 3);
    assert_eq!((a.body["total"].as_i64(), a.body["sku"].as_str()), (Some(5), Some("A")));
    let default = s.get("/v1/reports/sales-per-day").await;
    assert_eq!((default.body["days"].as_array().unwrap().len(), default.body["total"].as_i64()), (90, Some(18)));
    assert_eq!(s.get("/v1/reports/sales-per-day?days=730").await.status, 200);

    for (query, status) in [("days=0", 422), ("days=731", 422), ("days=-1", 400), ("days=x", 400), ("sku=NOPE", 404)] {
        let r = s.get(&format!("/v1/reports/sales-per-day?{query}")).await;
        assert_eq!(r.status, status, "{query}: {}", r.text);
    }
    // Staff reads sales; the warehouse does not.
    let wh = s.key("floor", app::trust::Role::Warehouse, None).await;
    let r = s.call(reqwest::Method::GET, "/v1/reports/sales-per-day", Some(&wh), None).await;
    assert_eq!(r.status, 403);
}

fn order(number: &str, sku: &str, quantity: i64) -> Value {
    json!({"source": "webshop", "external_number": number, "currency": "EUR", "payment_terms": "invoice",
           "lines": [{"sku": sku, "quantity": quantity}]})
}

fn ids(list: &Value, key: &str) -> Vec<i64> {
    list[key].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect()
}

#[tokio::test]
async fn the_dashboard_counts_what_needs_attention_and_lists_the_first_rows() {
    let (guard, url, store) = fresh_store().await;
    let s = TestServer::start(store, guard).await;
    layout(&s).await;
    ok(&s.post("/v1/products", &crate::common::tee("tee", &["A", "B", "C", "S"])).await, 201);
    // S sold 5 a day for nine days and has 5 left: a stock-out is due tomorrow.
    let today = Utc::now().date_naive();
    let at = |back: i64, h: u32| (today - Duration::days(back)).and_time(NaiveTime::from_hms_opt(h, 0, 0).unwrap());
    let bin = || Side::Bin(B1.to_string(), "available");
    let mut h = vec![PastMovement {
        sku: "S".into(),
        quantity: 50,
        from: Side::Virtual("supplier"),
        to: bin(),
        reason: "received",
        at: at(10, 6).and_utc(),
    }];
    for back in 1..=9 {
        h.push(PastMovement {
            sku: "S".into(),
            quantity: 5,
            from: bin(),
            to: Side::Virtual("customer"),
            reason: "shipment",
            at: at(back, 12).and_utc(),
        });
    }
    write_past_movements(&url, &h).await;

    let empty = s.get("/v1/reports/dashboard").await;
    ok(&empty, 200);
    for key in ["ready_to_pick", "backordered", "stockouts_projected", "holds_expiring", "webhooks_failing"] {
        assert_eq!(empty.body[key]["count"], 0, "{key}: {}", empty.body);
    }

    receive(&s, "A", B1, 10).await;
    receive(&s, "B", B1, 3).await;
    ok(&s.patch("/v1/variants/C", &json!({"inventory_policy": "backorder"})).await, 200);

    // Low stock: total available at or below the threshold, lowest first; C has never had any.
    let d = s.get("/v1/reports/dashboard").await;
    ok(&d, 200);
    assert_eq!(
        d.body["low_stock"],
        json!({"threshold": 5, "count": 3, "items": [
        {"sku": "C", "available": 0}, {"sku": "B", "available": 3}, {"sku": "S", "available": 5}]})
    );
    let d10 = s.get("/v1/reports/dashboard?low_stock=10").await;
    assert_eq!(d10.body["low_stock"]["count"], 4);

    // Orders: one with stock in a bin (ready to pick), one backordered, one half and half (both).
    let ready = s.post("/v1/orders", &order("1", "A", 2)).await;
    ok(&ready, 201);
    let waiting = s.post("/v1/orders", &order("2", "C", 4)).await;
    ok(&waiting, 201);
    let mixed = s
        .post(
            "/v1/orders",
            &json!({"source": "webshop", "external_number": "3", "currency": "EUR", "payment_terms": "invoice",
                    "lines": [{"sku": "A", "quantity": 1}, {"sku": "C", "quantity": 1}]}),
        )
        .await;
    ok(&mixed, 201);
    let (ready, waiting, mixed) =
        (ready.body["id"].as_i64().unwrap(), waiting.body["id"].as_i64().unwrap(), mixed.body["id"].as_i64().unwrap());

    // Holds: one expiring within the hour, one later.
    let soon = s
        .post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 1}], "ttl_seconds": 600, "reference": "cart-1"}))
        .await;
    ok(&soon, 201);
    let later = s.post("/v1/holds", &json!({"lines": [{"sku": "B", "quantity": 1}], "ttl_seconds": 7200})).await;
    ok(&later, 201);

    // Webhooks: one healthy (its only event type never happens here, so nothing is sent to it to fail), one
    // disabled.
    let healthy = json!({"url": "http://127.0.0.1:9/a", "event_types": ["return.received"]});
    let healthy = s.post("/v1/webhook-endpoints", &healthy).await;
    ok(&healthy, 201);
    let off = s.post("/v1/webhook-endpoints", &json!({"url": "http://127.0.0.1:9/b"})).await;
    ok(&off, 201);
    let off = off.body["id"].as_i64().unwrap();
    ok(&s.patch(&format!("/v1/webhook-endpoints/{off}"), &json!({"enabled": false})).await, 200);

    // Projected stock-outs come from the last evaluation, which plans the items a supplier delivers.
    let acme =
        json!({"name": "Acme", "currency": "EUR", "lead_time_days": 7, "items": [{"sku": "S", "unit_cost": "4.00"}]});
    ok(&s.post("/v1/suppliers", &acme).await, 201);
    ok(&s.post("/v1/replenishment/evaluate", &json!({})).await, 200);

    let d = s.get("/v1/reports/dashboard").await;
    ok(&d, 200);
    let b = &d.body;
    assert_eq!(
        (b["ready_to_pick"]["count"].as_i64(), ids(&b["ready_to_pick"], "orders")),
        (Some(2), vec![ready, mixed])
    );
    assert_eq!((b["backordered"]["count"].as_i64(), ids(&b["backordered"], "orders")), (Some(2), vec![waiting, mixed]));
    assert_eq!(b["backordered"]["orders"][0]["external_number"], "2");
    assert_eq!(b["holds_expiring"]["count"], 1, "{b}");
    assert_eq!(b["holds_expiring"]["holds"][0]["id"], soon.body["id"]);
    assert_eq!(b["holds_expiring"]["holds"][0]["reference"], "cart-1");
    assert_eq!(b["webhooks_failing"]["count"], 1);
    assert_eq!(b["webhooks_failing"]["endpoints"][0]["id"], off);
    assert_eq!(b["webhooks_failing"]["endpoints"][0]["enabled"], false);
    assert!(b["webhooks_failing"]["endpoints"][0].get("url").is_none(), "URLs may hold tokens: admin only");
    assert_eq!(b["stockouts_projected"]["count"], 1, "{b}");
    assert_eq!(b["stockouts_projected"]["items"][0]["sku"], "S");
    assert_eq!(b["stockouts_projected"]["items"][0]["warehouse"], "WH1");
    // Holds reserve: B has 1 of its 3 available left; backorders make no stock for C.
    assert_eq!(b["low_stock"]["items"][0], json!({"sku": "C", "available": 0}));
    assert_eq!(b["low_stock"]["items"][1], json!({"sku": "B", "available": 1}));

    // A pick list takes the orders off "ready to pick"; the backorders stay.
    ok(&s.post("/v1/pick-lists", &json!({"warehouse": "WH1"})).await, 201);
    let d = s.get("/v1/reports/dashboard").await;
    assert_eq!(d.body["ready_to_pick"]["count"], 0, "{}", d.body);
    assert_eq!(d.body["backordered"]["count"], 2);

    // Many rows: the count in full, at most 10 listed.
    for n in 0..12 {
        ok(&s.post("/v1/orders", &order(&format!("m{n}"), "C", 1)).await, 201);
    }
    let d = s.get("/v1/reports/dashboard").await;
    assert_eq!(d.body["backordered"]["count"], 14);
    assert_eq!(d.body["backordered"]["orders"].as_array().unwrap().len(), 10);

    for query in ["low_stock=-1", "low_stock=1000001"] {
        let r = s.get(&format!("/v1/reports/dashboard?{query}")).await;
        assert_eq!((r.status, r.body["errors"][0]["field"].as_str()), (422, Some("low_stock")), "{}", r.text);
    }
    assert_eq!(s.get("/v1/reports/dashboard?low_stock=x").await.status, 400);
    // The floor reads the dashboard too.
    let wh = s.key("floor", app::trust::Role::Warehouse, None).await;
    assert_eq!(s.call(reqwest::Method::GET, "/v1/reports/dashboard", Some(&wh), None).await.status, 200);
}
