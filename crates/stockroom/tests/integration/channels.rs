//! Channels through the real server: CRUD and bad input, each availability rule with its explanation, channel
//! warehouse priority in allocation, rule changes that emit events, and the pull feed under concurrent orders.

use std::collections::HashMap;
use std::time::Duration;

use app::store::{BatchScope, BatchState, BatchWrites, OutboxEvent};
use serde_json::{json, Value};
use testkit::server::{Reply, TestServer};

use crate::common::{layout, ok, receive, server};

async fn put(s: &TestServer, path: &str, body: &Value) -> Reply {
    s.send(s.client.put(s.url(path)).json(body)).await
}

/// WH1 and WH2 (see `layout`), a product in `Apparel > Shirts` tagged `summer` with SKUs A, B and C.
async fn shop() -> TestServer {
    let s = server().await;
    layout(&s).await;
    let product = json!({"handle": "tee", "title": "Tee", "status": "active", "category": "Apparel > Shirts",
        "tags": ["summer"], "options": ["Size"], "variants": [
            {"sku": "A", "options": ["S"], "price": "20.00", "currency": "EUR"},
            {"sku": "B", "options": ["M"], "price": "20.00", "currency": "EUR", "inventory_policy": "backorder"},
            {"sku": "C", "options": ["L"], "price": "20.00", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &product).await, 201);
    s
}

fn channel(code: &str, warehouses: &[&str]) -> Value {
    json!({"code": code, "name": format!("Shop {code}"), "market_country": "DE", "currency": "EUR",
        "warehouses": warehouses})
}

/// The explanation as `rule source before->after` lines.
fn lines(r: &Reply) -> Vec<String> {
    r.body["explanation"]
        .as_array()
        .expect("an explanation")
        .iter()
        .map(|s| {
            format!("{} {} {}->{}", s["rule"].as_str().unwrap(), s["source"].as_str().unwrap(), s["before"], s["after"])
        })
        .collect()
}

async fn explain(s: &TestServer, code: &str, sku: &str) -> Reply {
    let r = s.get(&format!("/v1/channels/{code}/availability/{sku}?explain=true")).await;
    ok(&r, 200);
    r
}

/// Polls until `done` holds; the bound only keeps a broken build from hanging.
async fn eventually<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never happened: {what}");
}

/// Reads the feed from `cursor` to its end: the changes in order and the final cursor.
async fn drain(s: &TestServer, code: &str, mut cursor: Option<String>) -> (Vec<Value>, String) {
    let mut out = vec![];
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/channels/{code}/availability?limit=7&updated_since={c}"),
            None => format!("/v1/channels/{code}/availability?limit=7"),
        };
        let r = s.get(&path).await;
        ok(&r, 200);
        out.extend(r.body["items"].as_array().unwrap().iter().cloned());
        cursor = Some(r.body["next_cursor"].as_str().unwrap().to_string());
        if !r.body["has_more"].as_bool().unwrap() {
            return (out, cursor.unwrap());
        }
    }
}

#[tokio::test]
async fn channels_crud_and_bad_input_change_nothing() {
    let s = shop().await;
    let mut body = channel("web-de", &["WH1", "WH2"]);
    body["prices"] = json!({"A": "18.00"});
    body["price_lists"] = json!({"vip": {"A": "15.00"}});
    body["tax_rates"] = json!({"standard": "19", "reduced": "7"});
    let r = s.post("/v1/channels", &body).await;
    ok(&r, 201);
    assert_eq!(r.header("location"), Some("/v1/channels/web-de"));
    assert_eq!(r.body["warehouses"], json!(["WH1", "WH2"]));
    assert_eq!(r.body["tax_rates"]["standard"], "19");

    // Bad input: each refused with its field, and nothing is created.
    let dup = s.post("/v1/channels", &body).await;
    assert_eq!((dup.status, dup.code()), (409, "duplicate_channel"));
    let unknown = s.post("/v1/channels", &channel("other", &["WH1", "NOPE"])).await;
    assert_eq!((unknown.status, unknown.code()), (422, "unknown_reference"));
    assert_eq!(unknown.body["errors"][0]["field"], "warehouses[1]");
    let not_wh = s.post("/v1/channels", &channel("other", &["WH1/HALL-1"])).await;
    assert_eq!(not_wh.code(), "unknown_reference");
    let mut bad = channel("other", &["WH1"]);
    bad["market_country"] = json!("Germany");
    bad["prices"] = json!({"NOPE": "1.00"});
    let r = s.post("/v1/channels", &bad).await;
    assert_eq!((r.status, r.code()), (422, "validation_failed"));
    assert_eq!(r.body["errors"][0]["field"], "market_country");
    let mut bad = channel("other", &["WH1"]);
    bad["prices"] = json!({"NOPE": "1.00"});
    assert_eq!(s.post("/v1/channels", &bad).await.code(), "unknown_reference");
    let list = s.get("/v1/channels").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    // Prices resolve: the customer group's list, else the channel's, else the catalog's.
    let p = s.get("/v1/channels/web-de/prices/A?customer_group=vip").await;
    assert_eq!((p.body["price"].as_str(), p.body["source"].as_str()), (Some("15.00"), Some("price_list:vip")));
    let p = s.get("/v1/channels/web-de/prices/A").await;
    assert_eq!(p.body["source"], "channel");
    let p = s.get("/v1/channels/web-de/prices/B?customer_group=vip").await;
    assert_eq!((p.body["price"].as_str(), p.body["source"].as_str()), (Some("20.00"), Some("catalog")));

    // Update: the warehouse order changes; a bad patch changes nothing.
    let r = s.patch("/v1/channels/web-de", &json!({"warehouses": ["WH2", "WH1"], "name": "Web DE"})).await;
    ok(&r, 200);
    assert_eq!(r.body["warehouses"], json!(["WH2", "WH1"]));
    let r = s.patch("/v1/channels/web-de", &json!({"warehouses": ["WH9"], "name": "Changed"})).await;
    assert_eq!(r.code(), "unknown_reference");
    let r = s.get("/v1/channels/web-de").await;
    assert_eq!((r.body["name"].as_str(), &r.body["warehouses"]), (Some("Web DE"), &json!(["WH2", "WH1"])));

    // Bad rules: negative buffers, a share above 100%, an unknown warehouse or SKU, a key on the channel scope.
    for (rules, field) in [
        (json!({"scope": "channel", "rules": {"channel_buffer": -1}}), "rules.channel_buffer"),
        (json!({"scope": "channel", "rules": {"share_percent": 101}}), "rules.share_percent"),
        (json!({"scope": "channel", "rules": {"safety_stock": {"WH1": -2}}}), "rules.safety_stock.WH1"),
        (json!({"scope": "channel", "rules": {"excluded_warehouses": ["WH7"]}}), "rules.warehouses[0]"),
        (json!({"scope": "item", "key": "NOPE", "rules": {"hide_below": 1}}), "key"),
        (json!({"scope": "channel", "key": "x", "rules": {}}), "key"),
    ] {
        let r = put(&s, "/v1/channels/web-de/rules", &rules).await;
        assert_eq!(r.status, 422, "{rules}: {}", r.text);
        assert_eq!(r.body["errors"][0]["field"], field, "{rules}");
    }
    assert_eq!(s.get("/v1/channels/web-de/rules").await.body, json!([]));
    assert_eq!(s.get("/v1/channels/nope/availability/A").await.status, 404);
    assert_eq!(put(&s, "/v1/channels/nope/rules", &json!({"scope": "channel", "rules": {}})).await.status, 404);

    ok(&s.delete("/v1/channels/web-de").await, 204);
    assert_eq!(s.get("/v1/channels/web-de").await.status, 404);
}

#[tokio::test]
async fn each_rule_shows_in_the_explanation() {
    let s = shop().await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 10).await;
    receive(&s, "A", "WH2/BIN-1", 6).await;
    ok(&s.post("/v1/channels", &channel("web", &["WH1", "WH2"])).await, 201);

    let r = explain(&s, "web", "A").await;
    assert_eq!((r.body["quantity"].as_i64(), r.body["status"].as_str()), (Some(16), Some("in_stock")));
    assert_eq!(lines(&r), ["stock stock 16->16", "policy catalog 16->16"]);
    assert!(r.body.get("on_hand").is_none(), "never on-hand");
    // Without explain, no explanation.
    assert!(s.get("/v1/channels/web/availability/A").await.body.get("explanation").is_none());

    let set = |rules: Value| {
        let s = &s;
        async move { ok(&put(s, "/v1/channels/web/rules", &rules).await, 200) }
    };
    set(json!({"scope": "channel", "rules": {"excluded_warehouses": ["WH2"]}})).await;
    assert_eq!(lines(&explain(&s, "web", "A").await)[1], "excluded_warehouses channel 16->10");
    set(json!({"scope": "channel", "rules": {"safety_stock": {"WH1": 3}, "channel_buffer": 2}})).await;
    assert_eq!(
        lines(&explain(&s, "web", "A").await),
        ["stock stock 16->16", "safety_stock channel 16->13", "channel_buffer channel 13->11", "policy catalog 11->11"]
    );
    // The category's rule overrides the channel's buffer; the tag's overrides the category's; the item's wins.
    set(json!({"scope": "category", "key": "Apparel", "rules": {"channel_buffer": 4}})).await;
    set(json!({"scope": "tag", "key": "summer", "rules": {"share_percent": 50}})).await;
    set(json!({"scope": "item", "key": "A", "rules": {"low_stock_below": 8, "hide_below": 7}})).await;
    let r = explain(&s, "web", "A").await;
    assert_eq!(
        lines(&r),
        [
            "stock stock 16->16",
            "safety_stock channel 16->13",
            "channel_buffer category:Apparel 13->9",
            "share_percent tag:summer 9->6",
            "policy catalog 6->6",
            "low_stock_below item:A 6->6",
            "hide_below item:A 6->6",
        ]
    );
    assert_eq!((r.body["status"].as_str(), r.body["listed"].as_bool()), (Some("low_stock"), Some(false)));

    // Velocity: 3 units ordered recently are held back for 7 days of sales.
    set(json!({"scope": "item", "key": "A", "rules": {"velocity_days": 7}})).await;
    let order = json!({"source": "phone", "currency": "EUR", "lines": [{"sku": "A", "quantity": 3}]});
    ok(&s.post("/v1/orders", &order).await, 201);
    let r = explain(&s, "web", "A").await;
    assert_eq!(
        lines(&r),
        [
            "stock stock 13->13",
            "safety_stock channel 13->10",
            "channel_buffer category:Apparel 10->6",
            "velocity_days item:A 6->3",
            "share_percent tag:summer 3->3",
            "policy catalog 3->3",
        ]
    );

    // Policy at zero, overridden per channel: B (backorder in the catalog) is out of stock when the channel denies.
    let r = explain(&s, "web", "B").await;
    assert_eq!(r.body["status"], "backorder");
    set(json!({"scope": "item", "key": "B", "rules": {"policy": "deny"}})).await;
    let r = explain(&s, "web", "B").await;
    assert_eq!(r.body["status"], "out_of_stock");
    assert_eq!(lines(&r).last().unwrap(), "policy item:B 0->0");
    // Deleting a rule set brings the less specific one back.
    ok(&s.delete("/v1/channels/web/rules?scope=item&key=B").await, 204);
    assert_eq!(explain(&s, "web", "B").await.body["status"], "backorder");
    assert_eq!(s.delete("/v1/channels/web/rules?scope=item&key=B").await.status, 404);
}

#[tokio::test]
async fn orders_from_a_channel_allocate_in_its_warehouse_order() {
    let s = shop().await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 5).await;
    receive(&s, "A", "WH2/BIN-1", 5).await;
    ok(&s.post("/v1/channels", &channel("east", &["WH2", "WH1"])).await, 201);
    ok(&s.post("/v1/channels", &channel("west", &["WH1"])).await, 201);
    let order =
        |source: &str, n: i64| json!({"source": source, "currency": "EUR", "lines": [{"sku": "A", "quantity": n}]});

    ok(&s.post("/v1/orders", &order("east", 2)).await, 201);
    assert_eq!(crate::common::bin_level(&s, "A", "WH2/BIN-1").await["committed"], 2);
    assert_eq!(crate::common::bin_level(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1").await["committed"], 0);
    ok(&s.post("/v1/orders", &order("west", 1)).await, 201);
    assert_eq!(crate::common::bin_level(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1").await["committed"], 1);
    // West sells only from WH1: more than WH1 holds is refused, though WH2 has stock.
    let r = s.post("/v1/orders", &order("west", 5)).await;
    assert_eq!((r.status, r.code()), (409, "insufficient_stock"));
    // Availability pools the channel's warehouses only.
    assert_eq!(explain(&s, "west", "A").await.body["quantity"], 4);
    assert_eq!(explain(&s, "east", "A").await.body["quantity"], 7);

    // A channel's price overrides the catalog's on its orders; a line's own price still wins.
    ok(&s.patch("/v1/channels/east", &json!({"prices": {"A": "17.50"}})).await, 200);
    let r = s.post("/v1/orders", &order("east", 1)).await;
    ok(&r, 201);
    assert_eq!(r.body["lines"][0]["unit_price"], "17.50");
    let r = s.post("/v1/orders", &order("west", 1)).await;
    assert_eq!(r.body["lines"][0]["unit_price"], "20.00");
    let mut own = order("east", 1);
    own["lines"][0]["unit_price"] = json!("5.00");
    assert_eq!(s.post("/v1/orders", &own).await.body["lines"][0]["unit_price"], "5.00");
}

#[tokio::test]
async fn rule_and_stock_changes_reach_the_feed_with_events() {
    let s = shop().await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 10).await;
    ok(&s.post("/v1/channels", &channel("web", &["WH1"])).await, 201);
    // Creating the channel computes every item.
    eventually("the first rows", || async { drain(&s, "web", None).await.0.len() == 3 }).await;
    let (rows, cursor) = drain(&s, "web", None).await;
    let a = rows.iter().find(|r| r["sku"] == "A").unwrap();
    assert_eq!((a["quantity"].as_i64(), a["status"].as_str()), (Some(10), Some("in_stock")));
    assert!(a.get("on_hand").is_none());

    // A rule change: A goes low, and the feed and the outbox say so.
    ok(
        &put(&s, "/v1/channels/web/rules", &json!({"scope": "item", "key": "A", "rules": {"low_stock_below": 20}}))
            .await,
        200,
    );
    eventually("A low", || async { drain(&s, "web", Some(cursor.clone())).await.0.len() == 1 }).await;
    let (rows, cursor) = drain(&s, "web", Some(cursor)).await;
    assert_eq!((rows[0]["sku"].as_str(), rows[0]["status"].as_str()), (Some("A"), Some("low_stock")));
    let events = s.app.store.outbox_after(0, 10_000).await.unwrap();
    let of =
        |topic: &str| -> Vec<Value> { events.iter().filter(|e| e.topic == topic).map(|e| e.payload.clone()).collect() };
    let low = of("stock.low");
    assert_eq!(low.len(), 1);
    assert_eq!((low[0]["channel"].as_str(), low[0]["sku"].as_str()), (Some("web"), Some("A")));
    assert!(of("availability.updated").iter().all(|e| e["channel"] == "web"));
    assert_eq!(of("availability.updated").iter().filter(|e| e["sku"] == "A").count(), 2);

    // A stock change: coalesced into the latest state.
    for _ in 0..3 {
        receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 1).await;
    }
    eventually("A at 13", || async {
        drain(&s, "web", Some(cursor.clone())).await.0.iter().any(|r| r["sku"] == "A" && r["quantity"] == 13)
    })
    .await;
    // A change that changes nothing a shop sees (stock of another channel's warehouse) adds no row.
    let (before, end) = drain(&s, "web", Some(cursor)).await;
    receive(&s, "A", "WH2/BIN-1", 4).await;
    receive(&s, "C", "WH1/HALL-1/SHELF-1/BIN-1", 1).await;
    eventually("C in stock", || async { drain(&s, "web", Some(end.clone())).await.0.iter().any(|r| r["sku"] == "C") })
        .await;
    let (after, _) = drain(&s, "web", Some(end)).await;
    assert!(after.iter().all(|r| r["sku"] == "C"), "{before:?} then {after:?}");

    // Cursors: malformed, or of another channel, are 400s.
    ok(&s.post("/v1/channels", &channel("other", &["WH1"])).await, 201);
    let r = s.get("/v1/channels/web/availability?updated_since=garbage").await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));
    let other =
        s.get("/v1/channels/other/availability?limit=1").await.body["next_cursor"].as_str().unwrap().to_string();
    let r = s.get(&format!("/v1/channels/web/availability?updated_since={other}")).await;
    assert_eq!((r.status, r.code()), (400, "invalid_cursor"));
}

#[tokio::test]
async fn the_feed_skips_nothing_under_concurrent_orders() {
    let s = shop().await;
    for sku in ["A", "B", "C"] {
        receive(&s, sku, "WH1/HALL-1/SHELF-1/BIN-1", 40).await;
    }
    ok(&s.post("/v1/channels", &channel("web", &["WH1"])).await, 201);
    eventually("the first rows", || async { drain(&s, "web", None).await.0.len() == 3 }).await;

    // Orders run while a reader pages the feed from wherever it got to, keeping the latest state per SKU.
    let writer = {
        let (base, client) = (s.base.clone(), s.client.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                let sku = ["A", "B", "C"][i % 3];
                let body = json!({"source": "phone", "currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]});
                let r = client.post(format!("{base}/v1/orders")).json(&body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        })
    };
    let mut seen: HashMap<String, i64> = HashMap::new();
    let mut cursor: Option<String> = None;
    let mut last_seq_cursors = vec![];
    while !writer.is_finished() {
        let (rows, next) = drain(&s, "web", cursor.clone()).await;
        for r in rows {
            seen.insert(r["sku"].as_str().unwrap().to_string(), r["quantity"].as_i64().unwrap());
        }
        last_seq_cursors.push(next.clone());
        cursor = Some(next);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    writer.await.unwrap();
    // Once the worker has caught up, the state built from the feed is what a live lookup shows.
    let live = |sku: &'static str| {
        let s = &s;
        async move { s.get(&format!("/v1/channels/web/availability/{sku}")).await.body["quantity"].as_i64().unwrap() }
    };
    eventually("the feed catches up", || async {
        let (rows, _) = drain(&s, "web", cursor.clone()).await;
        let mut state = seen.clone();
        for r in rows {
            state.insert(r["sku"].as_str().unwrap().to_string(), r["quantity"].as_i64().unwrap());
        }
        state.get("A") == Some(&live("A").await)
            && state.get("B") == Some(&live("B").await)
            && state.get("C") == Some(&live("C").await)
    })
    .await;
    assert_eq!(live("A").await + live("B").await + live("C").await, 90);
    // Paging again from any cursor handed out on the way ends in the same state.
    for c in last_seq_cursors {
        let (rows, _) = drain(&s, "web", Some(c)).await;
        let mut seqs = HashMap::new();
        for r in &rows {
            seqs.insert(r["sku"].as_str().unwrap().to_string(), r["quantity"].as_i64().unwrap());
        }
        for sku in ["A", "B", "C"] {
            if let Some(q) = seqs.get(sku) {
                assert_eq!(*q, live(sku).await, "the last change of {sku} after a cursor is the current state");
            }
        }
    }
}

#[tokio::test]
async fn the_snapshot_streams_every_row_as_json_lines_and_csv() {
    let s = shop().await;
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 3).await;
    ok(&s.post("/v1/channels", &channel("web", &["WH1"])).await, 201);
    eventually("rows", || async { drain(&s, "web", None).await.0.len() == 3 }).await;
    let r = s.get("/v1/channels/web/snapshot").await;
    ok(&r, 200);
    assert_eq!(r.header("content-type"), Some("application/x-ndjson"));
    let rows: Vec<Value> = r.text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.iter().map(|r| r["sku"].as_str().unwrap()).collect::<Vec<_>>(), ["A", "B", "C"]);
    assert_eq!(rows[0]["quantity"], 3);
    let r = s.get("/v1/channels/web/snapshot?format=csv").await;
    ok(&r, 200);
    let lines: Vec<&str> = r.text.lines().collect();
    assert_eq!(lines[0], "sku,quantity,status,listed,updated_at");
    assert!(lines[1].starts_with("A,3,in_stock,true,"));
    assert_eq!(lines.len(), 4);
    assert_eq!(s.get("/v1/channels/nope/snapshot").await.status, 404);
}

#[tokio::test]
async fn two_nodes_on_one_database_keep_one_feed() {
    let (guard, url, store) = crate::common::fresh_store().await;
    let second: std::sync::Arc<dyn app::Store> = if crate::common::on_postgres() && url.starts_with("postgres") {
        std::sync::Arc::new(store_postgres::PgStore::connect(&url).await.unwrap())
    } else {
        std::sync::Arc::new(store_sqlite::SqliteStore::connect(&url).await.unwrap())
    };
    let a = TestServer::start(store, guard).await;
    let b = TestServer::start(second, ()).await;
    layout(&a).await;
    let product = json!({"handle": "tee", "title": "Tee", "status": "active", "options": ["Size"], "variants": [
        {"sku": "A", "options": ["S"], "price": "20.00", "currency": "EUR"},
        {"sku": "B", "options": ["M"], "price": "20.00", "currency": "EUR"}]});
    ok(&a.post("/v1/products", &product).await, 201);
    receive(&a, "A", "WH1/HALL-1/SHELF-1/BIN-1", 30).await;
    receive(&a, "B", "WH1/HALL-1/SHELF-1/BIN-1", 30).await;
    ok(&b.post("/v1/channels", &channel("web", &["WH1"])).await, 201);

    // Orders on both nodes at once; both nodes run a worker, and the lease lets one of them write.
    let mut tasks = vec![];
    for (n, s) in [&a, &b].into_iter().enumerate() {
        let (base, client) = (s.base.clone(), s.client.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..12 {
                let sku = if (i + n) % 2 == 0 { "A" } else { "B" };
                let body = json!({"source": "web", "currency": "EUR", "lines": [{"sku": sku, "quantity": 1}]});
                let r = client.post(format!("{base}/v1/orders")).json(&body).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 201);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let live = |sku: &'static str| {
        let b = &b;
        async move { b.get(&format!("/v1/channels/web/availability/{sku}")).await.body["quantity"].as_i64().unwrap() }
    };
    assert_eq!(live("A").await + live("B").await, 36);
    eventually("the feed matches a live lookup on the other node", || async {
        let (rows, _) = drain(&a, "web", None).await;
        let mut state = HashMap::new();
        for r in rows {
            state.insert(r["sku"].as_str().unwrap().to_string(), r["quantity"].as_i64().unwrap());
        }
        state.get("A") == Some(&live("A").await) && state.get("B") == Some(&live("B").await)
    })
    .await;
    // One sequence, handed out once: every availability event has a sequence of its own.
    let events = a.app.store.outbox_after(0, 100_000).await.unwrap();
    let seqs: Vec<i64> = events
        .iter()
        .filter(|e| e.topic == "availability.updated")
        .map(|e| e.payload["seq"].as_i64().unwrap())
        .collect();
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), seqs.len());
    assert!(!seqs.is_empty());
}

#[tokio::test]
async fn a_bundle_shows_what_its_scarcest_component_allows_and_follows_its_components() {
    let s = shop().await;
    // KIT = 1 × A + 2 × C, in the channel's warehouse WH1 only; stock in WH2 does not count for this channel.
    let kit = json!({"handle": "kit", "title": "Kit", "status": "active", "options": ["Kind"], "variants": [
        {"sku": "KIT", "options": ["kit"], "price": "50.00", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &kit).await, 201);
    let r = put(
        &s,
        "/v1/variants/KIT/components",
        &json!({"components": [{"sku": "A", "quantity": 1},
        {"sku": "C", "quantity": 2}]}),
    )
    .await;
    ok(&r, 200);
    receive(&s, "A", "WH1/HALL-1/SHELF-1/BIN-1", 10).await;
    receive(&s, "C", "WH1/HALL-1/SHELF-1/BIN-1", 7).await;
    receive(&s, "C", "WH2/BIN-1", 100).await;
    ok(&s.post("/v1/channels", &channel("web", &["WH1"])).await, 201);
    ok(
        &put(&s, "/v1/channels/web/rules", &json!({"scope": "item", "key": "KIT", "rules": {"channel_buffer": 1}}))
            .await,
        200,
    );

    let r = explain(&s, "web", "KIT").await;
    assert_eq!(r.body["quantity"], 2, "C allows 3 kits in WH1, the buffer holds back 1: {}", r.body);
    assert_eq!(lines(&r)[0], "stock stock 3->3");
    assert!(r.body["explanation"][0]["detail"].as_str().unwrap().contains("bundle"), "{}", r.body);

    // The feed follows: selling C changes what the kit shows, with no change to the kit itself.
    eventually("KIT in the feed", || async {
        drain(&s, "web", None).await.0.iter().any(|r| r["sku"] == "KIT" && r["quantity"] == 2)
    })
    .await;
    let order = json!({"source": "phone", "currency": "EUR", "lines": [{"sku": "C", "quantity": 4}]});
    ok(&s.post("/v1/orders", &order).await, 201);
    assert_eq!(explain(&s, "web", "KIT").await.body["quantity"], 0, "C has 3 left: one kit, held back by the buffer");
    eventually("KIT at 0 in the feed", || async {
        let rows = drain(&s, "web", None).await.0;
        rows.iter().rev().find(|r| r["sku"] == "KIT").is_some_and(|r| r["quantity"] == 0)
    })
    .await;
}

#[tokio::test]
async fn the_feed_works_through_a_backlog_of_several_pages_and_stores_its_watermark() {
    let s = shop().await;
    ok(&s.post("/v1/channels", &channel("web", &["WH1"])).await, 201);
    eventually("the first rows", || async { drain(&s, "web", None).await.0.len() == 3 }).await;
    // A backlog written at once, more than two of the worker's pages (1,000 events): changes of an item that does
    // not exist, so that they cost nothing to recompute. Then a receipt of C, the newest event of all.
    let backlog: Vec<OutboxEvent> = (0..2500)
        .map(|_| OutboxEvent {
            topic: "inventory.changed".into(),
            payload: json!({"balances": [{"item_id": 1_000_000_000, "location_id": 1, "available": 0, "on_hand": 0}]}),
        })
        .collect();
    let mut write = |_: &mut BatchState| BatchWrites { events: backlog.clone(), ..Default::default() };
    s.app.store.apply_batch(&BatchScope::default(), &mut write).await.unwrap();
    receive(&s, "C", "WH1/HALL-1/SHELF-1/BIN-1", 7).await;
    let newest = s.app.store.outbox_after(0, 10_000).await.unwrap().last().map(|e| e.id).unwrap();
    assert!(newest > 2500);

    eventually("the feed shows the receipt behind the backlog", || async {
        let (rows, _) = drain(&s, "web", None).await;
        rows.iter().any(|r| r["sku"] == "C" && r["quantity"] == 7)
    })
    .await;
    // And the worker keeps its place: a node taking the feed over next starts after the backlog.
    eventually("the watermark is stored past the receipt", || async {
        s.app.store.feed_watermark().await.unwrap() >= newest
    })
    .await;
}
