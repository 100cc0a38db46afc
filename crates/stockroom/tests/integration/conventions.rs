//! API conventions: idempotency keys, problem+json for malformed and oversized bodies, unknown routes, request ids,
//! the OpenAPI document and the reference page.

use serde_json::json;

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";

#[tokio::test]
async fn idempotent_replay_and_mismatch() {
    let s = stocked_server(&["A"]).await;
    let body = json!({"lines": [{"sku": "A", "location": B1, "delta": 5, "reason": "received"}]});
    let first = s.post_with_key("/v1/inventory/adjustments", "key-1", &body).await;
    ok(&first, 201);
    let again = s.post_with_key("/v1/inventory/adjustments", "key-1", &body).await;
    ok(&again, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body, "the replay is the first response");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5, "booked once");

    let other = json!({"lines": [{"sku": "A", "location": B1, "delta": 6, "reason": "received"}]});
    let mismatch = s.post_with_key("/v1/inventory/adjustments", "key-1", &other).await;
    assert_eq!(mismatch.status, 422);
    assert_eq!(mismatch.code(), "idempotency_key_reused");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5);

    // Errors are answers too: a refused request replays as refused, even after stock arrives.
    let short = json!({"lines": [{"sku": "A", "location": B1, "delta": -50, "reason": "shrinkage"}]});
    assert_eq!(s.post_with_key("/v1/inventory/adjustments", "key-2", &short).await.code(), "insufficient_stock");
    receive(&s, "A", B1, 100).await;
    let replay = s.post_with_key("/v1/inventory/adjustments", "key-2", &short).await;
    assert_eq!(replay.code(), "insufficient_stock");
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));

    // Other POSTs honour keys too.
    let p = tee("idem", &["I-1"]);
    ok(&s.post_with_key("/v1/products", "key-3", &p).await, 201);
    ok(&s.post_with_key("/v1/products", "key-3", &p).await, 201);
    assert_eq!(s.get("/v1/products?q=idem").await.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_book_once() {
    let s = stocked_server(&["A"]).await;
    let body = json!({"lines": [{"sku": "A", "location": B1, "delta": 1, "reason": "received"}]});
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let req = s.client.post(s.url("/v1/inventory/adjustments")).header("Idempotency-Key", "same").json(&body);
        tasks.push(tokio::spawn(async move { req.send().await.unwrap().status().as_u16() }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 1, "one key, one booking: {statuses:?}");
}

#[tokio::test]
async fn malformed_oversized_and_misrouted_requests_are_problems() {
    let s = server_with(api::ApiConfig { max_body_bytes: 4096, ..Default::default() }).await;
    let r = s
        .send(s.client.post(s.url("/v1/products")).header("content-type", "application/json").body("{\"title\": "))
        .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.code(), "malformed_json");
    assert_eq!(r.header("content-type"), Some("application/problem+json"));

    let r = s.send(s.client.post(s.url("/v1/products")).body("title=x")).await;
    assert_eq!(r.status, 415);

    let big = json!({"title": "x".repeat(10_000)});
    let r = s.post("/v1/products", &big).await;
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.code(), "payload_too_large");
    let r = s.post_with_key("/v1/products", "big", &big).await;
    assert_eq!(r.status, 413);

    let r = s.get("/v1/nothing-here").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.code(), "route_not_found");
    let r = s.send(s.client.put(s.url("/v1/products"))).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.code(), "method_not_allowed");
    let r = s.get("/v1/products?colour=red").await;
    assert_eq!(r.code(), "invalid_query");
    assert!(r.header("x-request-id").is_some());
    assert_eq!(r.body["request_id"].as_str(), r.header("x-request-id"));
}

#[tokio::test]
async fn health_openapi_and_docs_are_served() {
    let s = server().await;
    let h = s.get("/healthz").await;
    ok(&h, 200);
    assert_eq!(h.body["status"], "ok");
    let doc = s.get("/openapi.json").await;
    ok(&doc, 200);
    assert_eq!(doc.body["openapi"], "3.1.0");
    for path in [
        "/v1/products",
        "/v1/products/{key}",
        "/v1/variants/{key}",
        "/v1/locations",
        "/v1/locations/{path}",
        "/v1/inventory/adjustments",
        "/v1/inventory/moves",
        "/v1/inventory/levels",
        "/v1/inventory/movements",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} is not documented");
    }
    let page = s.send(s.client.get(s.url("/docs"))).await;
    ok(&page, 200);
    assert!(page.text.contains("/v1/inventory/adjustments"));
    assert!(page.text.contains("insufficient_stock"));
    assert!(!page.text.contains("<script"), "the page needs no script, let alone one from the internet");
}
