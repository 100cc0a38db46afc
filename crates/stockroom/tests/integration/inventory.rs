//! The stock ledger over HTTP: adjustments, moves, levels (now and as of a past time), movements, bad input.

use serde_json::json;

use crate::common::*;

const B1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const B2: &str = "WH1/HALL-1/SHELF-1/BIN-2";
const W2: &str = "WH2/BIN-1";

#[tokio::test]
async fn adjust_move_and_read_levels_in_every_state() {
    let s = stocked_server(&["A", "B"]).await;
    let r = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"reference": "PO-17", "lines": [
                {"sku": "A", "location": B1, "delta": 10, "reason": "received", "note": "pallet 1"},
                {"sku": "A", "location": W2, "delta": 4, "reason": "received"},
                {"sku": "B", "location": B1, "delta": 2, "state": "quality_control", "reason": "received"}
            ]}),
        )
        .await;
    ok(&r, 201);
    assert_eq!(r.body["movements"].as_array().unwrap().len(), 3);
    assert_eq!(r.body["movements"][0]["from"]["location"], "SUPPLIER");
    assert_eq!(r.body["movements"][0]["to"]["location"], B1);
    assert_eq!(r.body["movements"][0]["to"]["state"], "available");
    assert_eq!(r.body["movements"][0]["reference"], "PO-17");
    assert_eq!(r.body["movements"][0]["note"], "pallet 1");
    assert_eq!(r.body["levels"][0]["available"], 10);

    let m = s
        .post(
            "/v1/inventory/moves",
            &json!({"lines": [
                {"sku": "A", "quantity": 3, "from_location": B1, "to_location": B2},
                {"sku": "A", "quantity": 1, "from_location": B2, "to_state": "damaged", "reason": "damaged"},
                {"sku": "B", "quantity": 2, "from_location": B1, "from_state": "quality_control", "to_state": "available"}
            ]}),
        )
        .await;
    ok(&m, 201);
    assert_eq!(m.body["movements"][0]["reason"], "move");
    assert_eq!(m.body["movements"][1]["reason"], "damaged");

    let levels = s.get("/v1/inventory/levels?sku=A").await;
    ok(&levels, 200);
    let item = &levels.body["items"][0];
    assert_eq!(item["sku"], "A");
    assert_eq!(item["total"]["on_hand"], 14);
    assert_eq!(item["total"]["available"], 13);
    assert_eq!(item["total"]["damaged"], 1);
    assert_eq!(item["total"]["unavailable"], 1);
    assert_eq!(item["warehouses"][0]["warehouse"], "WH1");
    assert_eq!(item["warehouses"][0]["total"]["on_hand"], 10);
    assert_eq!(item["warehouses"][1]["warehouse"], "WH2");
    assert_eq!(item["warehouses"][1]["total"]["available"], 4);
    let b2 = bin_level(&s, "A", B2).await;
    assert_eq!((b2["available"].as_i64(), b2["damaged"].as_i64(), b2["on_hand"].as_i64()), (Some(2), Some(1), Some(3)));

    let within = s.get("/v1/inventory/levels?location=WH2").await;
    assert_eq!(within.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(within.body["items"][0]["total"]["on_hand"], 4);
    let b = bin_level(&s, "B", B1).await;
    assert_eq!((b["available"].as_i64(), b["quality_control"].as_i64()), (Some(2), Some(0)));
}

#[tokio::test]
async fn set_is_compare_and_set_on_on_hand() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 5).await;
    let stale = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": "A", "location": B1, "set": 8, "expected_on_hand": 4, "reason": "cycle_count"}]}),
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.text);
    assert_eq!(stale.code(), "stale_expected_on_hand");
    assert_eq!(stale.body["errors"][0]["field"], "lines[0].expected_on_hand");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5);

    let fresh = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": "A", "location": B1, "set": 2, "expected_on_hand": 5, "reason": "cycle_count"}]}),
        )
        .await;
    ok(&fresh, 201);
    assert_eq!(fresh.body["movements"][0]["quantity"], 3);
    assert_eq!(fresh.body["movements"][0]["to"]["location"], "ADJUSTMENT");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 2);

    // A set that lowers stock with reason shrinkage books the loss to scrap, like a negative delta would.
    let lost = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": "A", "location": B1, "set": 1, "expected_on_hand": 2, "reason": "shrinkage"}]}),
        )
        .await;
    ok(&lost, 201);
    assert_eq!(lost.body["movements"][0]["to"]["location"], "SCRAP");

    let missing_compare = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [{"sku": "A", "location": B1, "set": 2, "reason": "correction"}]}),
        )
        .await;
    assert_eq!(missing_compare.status, 422);
    assert_eq!(missing_compare.body["errors"][0]["field"], "lines[0].expected_on_hand");
}

#[tokio::test]
async fn all_or_nothing_and_every_bad_input_writes_nothing() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 5).await;
    let before = s.get("/v1/inventory/movements").await.body["items"].as_array().unwrap().len();

    // The second line is short: neither line is booked.
    let short = s
        .post(
            "/v1/inventory/adjustments",
            &json!({"lines": [
                {"sku": "A", "location": B1, "delta": -2, "reason": "shrinkage"},
                {"sku": "A", "location": B1, "delta": -4, "reason": "shrinkage"}
            ]}),
        )
        .await;
    assert_eq!(short.status, 409);
    assert_eq!(short.code(), "insufficient_stock");
    assert_eq!(short.body["errors"][0]["field"], "lines[1]");

    let cases = [
        (
            json!({"lines": [{"sku": "NOPE", "location": B1, "delta": 1, "reason": "received"}]}),
            422,
            "unknown_reference",
            "lines[0].sku",
        ),
        (
            json!({"lines": [{"sku": "A", "location": "WH9/X", "delta": 1, "reason": "received"}]}),
            422,
            "unknown_reference",
            "lines[0].location",
        ),
        (
            json!({"lines": [{"sku": "A", "location": "WH1", "delta": 1, "reason": "received"}]}),
            422,
            "validation_failed",
            "lines[0].location",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": 0, "reason": "received"}]}),
            422,
            "validation_failed",
            "lines[0].delta",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": 1, "set": 1, "reason": "received"}]}),
            422,
            "validation_failed",
            "lines[0].set",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": 1, "reason": "stolen"}]}),
            400,
            "malformed_json",
            "lines[0].reason",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": 1, "state": "committed", "reason": "received"}]}),
            422,
            "validation_failed",
            "lines[0].state",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": 1, "reason": "received", "qty": 1}]}),
            400,
            "malformed_json",
            "lines[0]",
        ),
        (json!({"lines": []}), 422, "validation_failed", "lines"),
        (
            json!({"lines": [{"sku": "A", "location": B1, "delta": i64::MIN, "reason": "shrinkage"}]}),
            422,
            "validation_failed",
            "lines[0].delta",
        ),
        (
            json!({"lines": [{"sku": "A", "location": B1, "set": i64::MAX, "expected_on_hand": 5, "reason": "correction"}]}),
            422,
            "validation_failed",
            "lines[0].set",
        ),
    ];
    for (body, status, code, field) in cases {
        let r = s.post("/v1/inventory/adjustments", &body).await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.code(), code, "{body}");
        assert!(r.body["errors"][0]["field"].as_str().unwrap().starts_with(field), "{body}: {}", r.text);
        assert!(r.body["request_id"].is_string());
        assert_eq!(r.header("content-type"), Some("application/problem+json"));
    }
    let move_cases = [
        (json!({"lines": [{"sku": "A", "quantity": 0, "from_location": B1, "to_location": B2}]}), "lines[0].quantity"),
        (json!({"lines": [{"sku": "A", "quantity": -1, "from_location": B1, "to_location": B2}]}), "lines[0].quantity"),
        (json!({"lines": [{"sku": "A", "quantity": 1, "from_location": B1}]}), "lines[0].to"),
        (
            json!({"lines": [{"sku": "A", "quantity": 1, "from_location": B1, "to_location": "WH1/HALL-1"}]}),
            "lines[0].to_location",
        ),
    ];
    for (body, field) in move_cases {
        let r = s.post("/v1/inventory/moves", &body).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.body["errors"][0]["field"].as_str().unwrap().starts_with(field), "{body}: {}", r.text);
    }
    let too_many = s
        .post(
            "/v1/inventory/moves",
            &json!({"lines": [{"sku": "A", "quantity": 6, "from_location": B1, "to_location": B2}]}),
        )
        .await;
    assert_eq!(too_many.code(), "insufficient_stock");

    let after = s.get("/v1/inventory/movements").await.body["items"].as_array().unwrap().len();
    assert_eq!(before, after, "no bad request wrote a movement");
    assert_eq!(bin_level(&s, "A", B1).await["on_hand"], 5);
}

#[tokio::test]
async fn levels_as_of_a_past_time_come_from_the_ledger() {
    let s = stocked_server(&["A"]).await;
    receive(&s, "A", B1, 5).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let t1 = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    receive(&s, "A", B1, 7).await;
    ok(
        &s.post(
            "/v1/inventory/moves",
            &json!({"lines": [{"sku": "A", "quantity": 2, "from_location": B1, "to_location": W2}]}),
        )
        .await,
        201,
    );

    let at = |t: chrono::DateTime<chrono::Utc>| {
        format!(
            "/v1/inventory/levels?sku=A&as_of={}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true).replace('+', "%2B")
        )
    };
    let then = s.get(&at(t1)).await;
    ok(&then, 200);
    assert_eq!(then.body["items"][0]["total"]["on_hand"], 5);
    assert_eq!(then.body["items"][0]["warehouses"].as_array().unwrap().len(), 1);
    let now = s.get(&at(chrono::Utc::now())).await;
    assert_eq!(now.body["items"][0]["total"]["on_hand"], 12);
    assert_eq!(now.body["items"][0]["warehouses"][1]["total"]["available"], 2);
    let before_all = s.get(&at(chrono::Utc::now() - chrono::Duration::days(1))).await;
    assert_eq!(before_all.body["items"].as_array().unwrap().len(), 0);
    let bad = s.get("/v1/inventory/levels?as_of=yesterday").await;
    assert_eq!(bad.code(), "invalid_query");
    assert_eq!(bad.body["errors"][0]["field"], "as_of");
}

#[tokio::test]
async fn movements_are_filtered_paginated_and_name_their_actor() {
    let s = stocked_server(&["A", "B"]).await;
    // The actor is the API key of the request: its name and id.
    let maria = s.key("maria@warehouse", app::trust::Role::Warehouse, None).await;
    let r = s
        .send(
            reqwest::Client::new()
                .post(s.url("/v1/inventory/adjustments"))
                .bearer_auth(&maria)
                .header("X-Request-Id", "req-123")
                .json(&json!({"lines": [{"sku": "A", "location": B1, "delta": 9, "reason": "received"}]})),
        )
        .await;
    ok(&r, 201);
    assert_eq!(r.header("x-request-id"), Some("req-123"));
    receive(&s, "B", W2, 1).await;
    for _ in 0..4 {
        ok(
            &s.post(
                "/v1/inventory/moves",
                &json!({"lines": [{"sku": "A", "quantity": 1, "from_location": B1, "to_location": B2}]}),
            )
            .await,
            201,
        );
    }
    let first = s.get("/v1/inventory/movements?sku=A&reason=received").await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 1);
    let actor = first.body["items"][0]["actor"].as_str().unwrap();
    assert!(actor.starts_with("maria@warehouse (key "), "{actor}");
    assert_eq!(first.body["items"][0]["request_id"], "req-123");
    let wh2 = s.get("/v1/inventory/movements?location=WH2").await;
    assert_eq!(wh2.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(wh2.body["items"][0]["sku"], "B");

    let mut ids = Vec::new();
    let mut url = "/v1/inventory/movements?limit=2".to_string();
    loop {
        let r = s.get(&url).await;
        ok(&r, 200);
        ids.extend(r.body["items"].as_array().unwrap().iter().map(|m| m["id"].as_i64().unwrap()));
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/inventory/movements?limit=2&after={c}"),
            None => break,
        }
    }
    assert_eq!(ids.len(), 6);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "oldest first, no repeats: {ids:?}");
    assert_eq!(s.get("/v1/inventory/movements?sku=NOPE").await.status, 404);
    assert_eq!(s.get("/v1/inventory/movements?limit=0").await.body["errors"][0]["field"], "limit");
}
