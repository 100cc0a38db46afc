//! The location tree over HTTP.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn tree_paths_kinds_and_guards() {
    let s = server().await;
    layout(&s).await;
    let bin = s.get("/v1/locations/WH1/HALL-1/SHELF-1/BIN-2").await;
    ok(&bin, 200);
    assert_eq!(bin.body["kind"], "bin");
    assert_eq!(bin.body["parent"], "WH1/HALL-1/SHELF-1");
    assert_eq!(bin.body["pick_sequence"], 2);
    assert_eq!(bin.body["sellable"], true);
    let wh = s.get("/v1/locations/WH1").await;
    assert_eq!(wh.body["address"]["city"], "Berlin");

    let within = s.get("/v1/locations?within=WH1").await;
    assert_eq!(within.body["items"].as_array().unwrap().len(), 5);
    let bins = s.get("/v1/locations?kind=bin").await;
    assert_eq!(bins.body["items"].as_array().unwrap().len(), 3);
    let virtuals = s.get("/v1/locations?kind=virtual").await;
    let codes: Vec<&str> =
        virtuals.body["items"].as_array().unwrap().iter().map(|l| l["path"].as_str().unwrap()).collect();
    for v in ["SUPPLIER", "CUSTOMER", "ADJUSTMENT", "SCRAP", "TRANSIT"] {
        assert!(codes.contains(&v), "{v} missing");
    }

    let dup = s.post("/v1/locations", &json!({"code": "BIN-1", "parent": "WH1/HALL-1/SHELF-1", "kind": "bin"})).await;
    assert_eq!(dup.code(), "duplicate_location");
    let under_bin =
        s.post("/v1/locations", &json!({"code": "X", "parent": "WH1/HALL-1/SHELF-1/BIN-1", "kind": "bin"})).await;
    assert_eq!(under_bin.status, 422);
    assert_eq!(under_bin.body["errors"][0]["field"], "kind");
    let orphan = s.post("/v1/locations", &json!({"code": "X", "parent": "NOPE", "kind": "bin"})).await;
    assert_eq!(orphan.code(), "unknown_reference");
    let bad_code = s.post("/v1/locations", &json!({"code": "A B", "kind": "warehouse"})).await;
    assert_eq!(bad_code.body["errors"][0]["field"], "code");
    let addr_on_bin =
        s.post("/v1/locations", &json!({"code": "B9", "parent": "WH2", "kind": "bin", "address": {"city": "X"}})).await;
    assert_eq!(addr_on_bin.body["errors"][0]["field"], "address");

    let patched =
        s.patch("/v1/locations/WH1/HALL-1/SHELF-1/BIN-2", &json!({"sellable": false, "pick_sequence": null})).await;
    ok(&patched, 200);
    assert_eq!(patched.body["sellable"], false);
    assert_eq!(patched.body["pick_sequence"], serde_json::Value::Null);

    assert_eq!(s.delete("/v1/locations/WH1/HALL-1").await.code(), "location_not_empty");
    assert_eq!(s.delete("/v1/locations/SCRAP").await.code(), "virtual_location");
    ok(&s.delete("/v1/locations/WH1/HALL-1/SHELF-1/BIN-2").await, 204);
    assert_eq!(s.get("/v1/locations/WH1/HALL-1/SHELF-1/BIN-2").await.status, 404);
}

#[tokio::test]
async fn a_bin_with_stock_history_cannot_be_deleted() {
    let s = stocked_server(&["L-1"]).await;
    receive(&s, "L-1", "WH2/BIN-1", 1).await;
    assert_eq!(s.delete("/v1/locations/WH2/BIN-1").await.code(), "location_has_stock_history");
}
