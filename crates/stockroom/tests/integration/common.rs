//! Fresh databases and servers for each test, plus fixtures shared by the tests.

use std::sync::Arc;

use serde_json::{json, Value};
use testkit::server::{Reply, TestServer};

/// Whether this test binary runs on PostgreSQL: the same tests are built twice, once per backend.
pub fn on_postgres() -> bool {
    env!("CARGO_CRATE_NAME") == "integration_postgres"
}

/// A fresh, migrated store with the guard that keeps its database alive (a temporary directory, or a PostgreSQL
/// database dropped with the guard) and the database's URL for the CLI. On the PostgreSQL build without a server
/// configured, the tests run on SQLite (and say so once).
pub async fn fresh_store() -> (Box<dyn std::any::Any + Send + Sync>, String, Arc<dyn app::Store>) {
    if on_postgres() {
        if let Some(db) = testkit::pg::TestDb::create().await {
            let url = db.url().to_string();
            let store = store_postgres::PgStore::connect(&url).await.expect("store opens");
            return (Box::new(db), url, Arc::new(store));
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("stockroom.db").display());
    let store = store_sqlite::SqliteStore::connect(&url).await.expect("store opens");
    (Box::new(dir), url, Arc::new(store))
}

pub async fn server() -> TestServer {
    let (guard, _, store) = fresh_store().await;
    TestServer::start(store, guard).await
}

pub async fn server_with(config: api::ApiConfig) -> TestServer {
    let (guard, _, store) = fresh_store().await;
    TestServer::start_with(store, guard, config).await
}

pub fn ok(r: &Reply, status: u16) {
    assert_eq!(r.status, status, "unexpected reply: {}", r.text);
}

/// WH1 with HALL-1/SHELF-1/BIN-1 and BIN-2, and WH2 with BIN-1.
pub async fn layout(s: &TestServer) {
    for body in [
        json!({"code": "WH1", "kind": "warehouse", "name": "Berlin", "address": {"line1": "Lagerstr. 1", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "latitude": 52.5, "longitude": 13.4}),
        json!({"code": "HALL-1", "parent": "WH1", "kind": "zone"}),
        json!({"code": "SHELF-1", "parent": "WH1/HALL-1", "kind": "shelf"}),
        json!({"code": "BIN-1", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 1}),
        json!({"code": "BIN-2", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin", "pick_sequence": 2}),
        json!({"code": "WH2", "kind": "warehouse"}),
        json!({"code": "BIN-1", "parent": "WH2", "kind": "bin"}),
    ] {
        ok(&s.post("/v1/locations", &body).await, 201);
    }
}

pub fn tee(handle: &str, skus: &[&str]) -> Value {
    let colors = ["Black", "White", "Navy", "Red", "Grey", "Olive"];
    let variants: Vec<Value> = skus
        .iter()
        .enumerate()
        .map(|(i, sku)| json!({"sku": sku, "options": [colors[i % colors.len()], format!("S{i}")], "price": "19.99", "currency": "EUR"}))
        .collect();
    json!({"handle": handle, "title": format!("Tee {handle}"), "status": "active", "options": ["Color", "Size"], "variants": variants})
}

/// A catalog of one product with the given SKUs, plus the layout.
pub async fn stocked_server(skus: &[&str]) -> TestServer {
    stocked_server_at(skus).await.0
}

/// The same, with the database's URL for the CLI.
pub async fn stocked_server_at(skus: &[&str]) -> (TestServer, String) {
    let (guard, url, store) = fresh_store().await;
    let s = TestServer::start(store, guard).await;
    layout(&s).await;
    ok(&s.post("/v1/products", &tee("tee", skus)).await, 201);
    (s, url)
}

pub async fn receive(s: &TestServer, sku: &str, bin: &str, qty: i64) -> Reply {
    let r = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": sku, "location": bin, "delta": qty, "reason": "received"}]}),
        )
        .await;
    ok(&r, 201);
    r
}

/// The quantities of one SKU in one bin, from the levels endpoint.
pub async fn bin_level(s: &TestServer, sku: &str, bin: &str) -> Value {
    let r = s.get(&format!("/v1/inventory/levels?sku={sku}")).await;
    ok(&r, 200);
    for item in r.body["items"].as_array().unwrap() {
        for w in item["warehouses"].as_array().unwrap() {
            for b in w["bins"].as_array().unwrap() {
                if b["location"] == bin {
                    return b.clone();
                }
            }
        }
    }
    json!({"on_hand": 0, "available": 0, "damaged": 0, "quality_control": 0})
}
