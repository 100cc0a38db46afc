//! The rules preview through the real server: what a rule change would do to the SKUs in its scope, computed from
//! the current and the proposed rules without saving anything, refused as saving would be when the rules are bad.

use serde_json::{json, Value};
use testkit::server::{Reply, TestServer};

use crate::common::{layout, ok, receive, server};

async fn put(s: &TestServer, path: &str, body: &Value) -> Reply {
    s.send(s.client.put(s.url(path)).json(body)).await
}

/// WH1 and WH2; shirts A (3 units), B (30 units) and C (none) in `Apparel > Shirts`, a mug M (8 units) in
/// `Kitchen`; a channel `web` selling from WH1.
async fn shop() -> TestServer {
    let s = server().await;
    layout(&s).await;
    let shirts = json!({"handle": "tee", "title": "Tee", "status": "active", "category": "Apparel > Shirts",
        "tags": ["summer"], "options": ["Size"], "variants": [
            {"sku": "A", "options": ["S"], "price": "20.00", "currency": "EUR"},
            {"sku": "B", "options": ["M"], "price": "20.00", "currency": "EUR"},
            {"sku": "C", "options": ["L"], "price": "20.00", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &shirts).await, 201);
    let mug = json!({"handle": "mug", "title": "Mug", "status": "active", "category": "Kitchen",
        "variants": [{"sku": "M", "price": "9.00", "currency": "EUR"}]});
    ok(&s.post("/v1/products", &mug).await, 201);
    for (sku, n) in [("A", 3), ("B", 30), ("M", 8)] {
        receive(&s, sku, "WH1/HALL-1/SHELF-1/BIN-1", n).await;
    }
    let channel =
        json!({"code": "web", "name": "Web", "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]});
    ok(&s.post("/v1/channels", &channel).await, 201);
    s
}

async fn preview(s: &TestServer, body: &Value) -> Reply {
    s.post("/v1/channels/web/rules/preview", body).await
}

/// The preview's rows as `sku: before shown -> after shown`.
fn rows(r: &Reply) -> Vec<String> {
    r.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| format!("{}: {} -> {}", i["sku"].as_str().unwrap(), i["before"]["shown"], i["after"]["shown"]))
        .collect()
}

async fn live(s: &TestServer, sku: &str) -> Value {
    let r = s.get(&format!("/v1/channels/web/availability/{sku}")).await;
    ok(&r, 200);
    r.body
}

#[tokio::test]
async fn hiding_below_five_shows_three_units_going_to_zero_and_saves_nothing() {
    let s = shop().await;
    let rules_before = s.get("/v1/channels/web/rules").await.body;
    let a_before = live(&s, "A").await;
    assert_eq!((a_before["quantity"].as_i64(), a_before["listed"].as_bool()), (Some(3), Some(true)));

    let r = preview(&s, &json!({"scope": "item", "key": "A", "rules": {"hide_below": 5}})).await;
    ok(&r, 200);
    assert_eq!(rows(&r), ["A: 3 -> 0"]);
    let item = &r.body["items"][0];
    assert!(item["before"]["shown"].as_i64().unwrap() > 0);
    assert_eq!(item["before"]["listed"], true);
    assert_eq!(item["after"]["listed"], false);
    assert_eq!(item["after"]["shown"], 0);
    assert_eq!((r.body["changed"].as_i64(), r.body["truncated"].as_bool()), (Some(1), Some(false)));

    // Nothing was saved: the rules and the live availability are as they were.
    assert_eq!(s.get("/v1/channels/web/rules").await.body, rules_before);
    assert_eq!(live(&s, "A").await, a_before);

    // Saving the same rules then does what the preview said.
    ok(
        &put(&s, "/v1/channels/web/rules", &json!({"scope": "item", "key": "A", "rules": {"hide_below": 5}})).await,
        200,
    );
    assert_eq!(live(&s, "A").await["listed"], false);
}

#[tokio::test]
async fn the_scope_picks_the_skus_and_the_current_rules_are_the_before() {
    let s = shop().await;
    // A rule in force: 2 units held back on every shirt.
    let buffer = json!({"scope": "category", "key": "Apparel", "rules": {"channel_buffer": 2}});
    ok(&put(&s, "/v1/channels/web/rules", &buffer).await, 200);

    // The category scope covers the shirts (a subcategory included), not the mug; "before" has the buffer.
    let r = preview(&s, &json!({"scope": "category", "key": "Apparel > Shirts", "rules": {"hide_below": 5}})).await;
    ok(&r, 200);
    assert_eq!(rows(&r), ["A: 1 -> 0", "B: 28 -> 28", "C: 0 -> 0"]);
    // C shows nothing either way, but it was listed at zero and would be hidden: that is a change too.
    assert_eq!(r.body["items"][2]["before"]["listed"], true);
    assert_eq!(r.body["items"][2]["after"]["listed"], false);
    assert_eq!(r.body["changed"], 2, "A and C change, B stays listed with 28");

    // Replacing the rule in force: the proposed set takes the place of the saved one for its scope.
    let r = preview(&s, &json!({"scope": "category", "key": "Apparel", "rules": {}})).await;
    assert_eq!(rows(&r), ["A: 1 -> 3", "B: 28 -> 30", "C: 0 -> 0"]);
    assert_eq!(r.body["changed"], 2);

    // The channel scope covers every SKU; the tag scope those of tagged products.
    let r = preview(&s, &json!({"scope": "channel", "rules": {"share_units": 5}})).await;
    assert_eq!(rows(&r), ["A: 1 -> 1", "B: 28 -> 5", "C: 0 -> 0", "M: 8 -> 5"]);
    let r = preview(&s, &json!({"scope": "tag", "key": "summer", "rules": {"policy": "backorder"}})).await;
    assert_eq!(rows(&r), ["A: 1 -> 1", "B: 28 -> 28", "C: 0 -> 0"]);
    assert_eq!(r.body["items"][2]["after"]["status"], "backorder");
    assert_eq!(r.body["changed"], 1);

    assert_eq!(s.get("/v1/channels/web/rules").await.body, json!([buffer]));
}

#[tokio::test]
async fn bad_rules_are_refused_as_saving_them_would_be() {
    let s = shop().await;
    for (body, field) in [
        (json!({"scope": "channel", "rules": {"share_percent": 101}}), "rules.share_percent"),
        (json!({"scope": "channel", "rules": {"channel_buffer": -1}}), "rules.channel_buffer"),
        (json!({"scope": "item", "rules": {}}), "key"),
        (json!({"scope": "item", "key": "NOPE", "rules": {}}), "key"),
        (json!({"scope": "channel", "rules": {"excluded_warehouses": ["WH7"]}}), "rules.warehouses[0]"),
    ] {
        let p = preview(&s, &body).await;
        let saved = put(&s, "/v1/channels/web/rules", &body).await;
        assert_eq!(p.status, 422, "{body}: {}", p.text);
        assert_eq!((p.status, p.code()), (saved.status, saved.code()), "{body}");
        assert_eq!(p.body["errors"][0]["field"], field, "{body}");
    }
    let unknown_field = json!({"scope": "channel", "rules": {"hide_below": 1}, "extra": 1});
    let (p, saved) = (preview(&s, &unknown_field).await, put(&s, "/v1/channels/web/rules", &unknown_field).await);
    assert!(p.status >= 400 && p.status < 500, "{}", p.text);
    assert_eq!((p.status, p.code()), (saved.status, saved.code()));
    assert_eq!(s.post("/v1/channels/nope/rules/preview", &json!({"scope": "channel", "rules": {}})).await.status, 404);
    assert_eq!(s.get("/v1/channels/web/rules").await.body, json!([]));
}

#[tokio::test]
async fn a_wide_scope_is_cut_at_two_hundred_skus() {
    let s = shop().await;
    for p in 0..3 {
        let variants: Vec<Value> = (0..70)
            .map(|i| json!({"sku": format!("P{p}-{i:03}"), "options": [format!("{i}")], "price": "1.00", "currency": "EUR"}))
            .collect();
        let product = json!({"handle": format!("p{p}"), "title": "Bulk", "options": ["N"], "variants": variants});
        ok(&s.post("/v1/products", &product).await, 201);
    }
    let r = preview(&s, &json!({"scope": "channel", "rules": {"hide_below": 1}})).await;
    ok(&r, 200);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 200);
    assert_eq!(r.body["truncated"], true);
    // Catalog order: the first products' SKUs come first.
    assert_eq!(r.body["items"][0]["sku"], "A");
    let r = preview(&s, &json!({"scope": "category", "key": "Kitchen", "rules": {"hide_below": 1}})).await;
    assert_eq!((rows(&r), r.body["truncated"].as_bool()), (vec!["M: 8 -> 8".to_string()], Some(false)));
}
