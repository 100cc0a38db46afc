//! Products and variants over HTTP: CRUD, filters, pagination and bad input.

use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn product_crud_round_trip() {
    let s = server().await;
    let r = s
        .post(
            "/v1/products",
            &json!({
                "title": "Classic Tee", "description": "Soft", "vendor": "Northwind", "category": "Apparel>Shirts",
                "tags": ["summer", "cotton"], "images": ["https://img.test/tee.jpg"], "status": "active",
                "options": ["Color", "Size"],
                "variants": [
                    {"sku": "TEE-BLK-M", "barcode": "4001", "options": ["Black", "M"], "price": "19.99", "compare_at_price": 25,
                     "currency": "EUR", "cost": "7.10", "weight_grams": 180, "length_mm": 300, "width_mm": 200, "height_mm": 20,
                     "inventory_policy": "backorder"},
                    {"sku": "TEE-WHT-M", "options": ["White", "M"], "price": "19.99", "currency": "EUR", "tracked": false}
                ]
            }),
        )
        .await;
    ok(&r, 201);
    assert_eq!(r.body["handle"], "classic-tee");
    assert_eq!(r.body["category"], "Apparel > Shirts");
    assert_eq!(r.body["variants"][0]["price"], "19.99");
    assert_eq!(r.body["variants"][0]["compare_at_price"], "25");
    assert_eq!(r.body["variants"][0]["inventory_policy"], "backorder");
    assert_eq!(r.body["variants"][1]["tracked"], false);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(r.header("location"), Some(format!("/v1/products/{id}").as_str()));

    let by_handle = s.get("/v1/products/classic-tee").await;
    ok(&by_handle, 200);
    assert_eq!(by_handle.body["id"], id);

    let patched = s
        .patch(&format!("/v1/products/{id}"), &json!({"title": "Classic Tee 2", "vendor": null, "status": "archived"}))
        .await;
    ok(&patched, 200);
    assert_eq!(patched.body["title"], "Classic Tee 2");
    assert_eq!(patched.body["vendor"], serde_json::Value::Null);
    assert_eq!(patched.body["status"], "archived");
    assert_eq!(patched.body["description"], "Soft");

    let v = s.patch("/v1/variants/TEE-BLK-M", &json!({"price": "17.50", "sku": "TEE-BLACK-M"})).await;
    ok(&v, 200);
    assert_eq!(v.body["sku"], "TEE-BLACK-M");
    assert_eq!(v.body["price"], "17.50");
    ok(&s.get("/v1/variants/TEE-BLACK-M").await, 200);
    assert_eq!(s.get("/v1/variants/TEE-BLK-M").await.status, 404);

    let added = s
        .post(
            &format!("/v1/products/{id}/variants"),
            &json!({"sku": "TEE-NVY-M", "options": ["Navy", "M"], "price": "19.99", "currency": "EUR"}),
        )
        .await;
    ok(&added, 201);
    ok(&s.delete("/v1/variants/TEE-NVY-M").await, 204);
    assert_eq!(s.get("/v1/variants/TEE-NVY-M").await.status, 404);

    ok(&s.delete(&format!("/v1/products/{id}")).await, 204);
    assert_eq!(s.get(&format!("/v1/products/{id}")).await.code(), "not_found");
}

#[tokio::test]
async fn filters_and_cursor_pagination() {
    let s = server().await;
    for i in 0..7 {
        let mut p = tee(&format!("p{i}"), &[&format!("SKU-{i}")]);
        p["vendor"] = json!(if i % 2 == 0 { "Even" } else { "Odd" });
        p["category"] = json!(if i < 3 { "Apparel > Shirts" } else { "Apparel > Trousers" });
        p["tags"] = json!([format!("t{}", i % 3)]);
        ok(&s.post("/v1/products", &p).await, 201);
    }
    let mut seen = Vec::new();
    let mut url = "/v1/products?limit=3".to_string();
    loop {
        let r = s.get(&url).await;
        ok(&r, 200);
        assert!(r.body["items"].as_array().unwrap().len() <= 3);
        seen.extend(r.body["items"].as_array().unwrap().iter().map(|p| p["handle"].as_str().unwrap().to_string()));
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/v1/products?limit=3&after={c}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("p{i}")).collect::<Vec<_>>());
    let count = |path: &str| {
        let s = &s;
        let path = path.to_string();
        async move { s.get(&path).await.body["items"].as_array().unwrap().len() }
    };
    assert_eq!(count("/v1/products?vendor=Even").await, 4);
    assert_eq!(count("/v1/products?category=Apparel%20%3E%20Shirts").await, 3);
    assert_eq!(count("/v1/products?category=Apparel").await, 7);
    assert_eq!(count("/v1/products?tag=t0").await, 3);
    assert_eq!(count("/v1/products?q=TEE%20P3").await, 1);
    assert_eq!(count("/v1/products?sku=SKU-5").await, 1);
    assert_eq!(count("/v1/products?status=draft").await, 0);
    assert_eq!(count("/v1/variants?sku=SKU-5").await, 1);
}

#[tokio::test]
async fn bad_catalog_input_is_named_and_writes_nothing() {
    let s = server().await;
    ok(&s.post("/v1/products", &tee("one", &["A-1", "A-2"])).await, 201);

    let dup_sku = s.post("/v1/products", &tee("two", &["B-1", "A-1"])).await;
    assert_eq!(dup_sku.status, 409, "{}", dup_sku.text);
    assert_eq!(dup_sku.code(), "duplicate_sku");
    assert_eq!(s.get("/v1/products/two").await.status, 404, "nothing of the clashing product was written");
    assert_eq!(s.get("/v1/variants/B-1").await.status, 404);

    let dup_in_body = s.post("/v1/products", &tee("three", &["C-1", "C-1"])).await;
    assert_eq!(dup_in_body.status, 422);
    assert_eq!(dup_in_body.body["errors"][0]["field"], "variants[1].sku");

    let dup_handle = s.post("/v1/products", &tee("one", &["D-1"])).await;
    assert_eq!(dup_handle.code(), "duplicate_handle");

    let bad = s
        .post("/v1/products", &json!({"title": "", "handle": "Bad Handle", "variants": [{"sku": "X 1", "price": "-1", "currency": "eu"}]}))
        .await;
    assert_eq!(bad.status, 422);
    let fields: Vec<&str> =
        bad.body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["handle", "title", "variants[0].sku", "variants[0].price", "variants[0].currency"] {
        assert!(fields.contains(&f), "{f} not named in {fields:?}");
    }

    let unknown = s.post("/v1/products", &json!({"title": "X", "colour": "red"})).await;
    assert_eq!(unknown.status, 400);
    assert_eq!(unknown.code(), "malformed_json");
    assert!(unknown.body["errors"][0]["message"].as_str().unwrap().contains("colour"));

    let wrong_type = s.post("/v1/products", &json!({"title": "X", "variants": [{"sku": "Q", "price": "1", "currency": "EUR", "weight_grams": "heavy"}]})).await;
    assert_eq!(wrong_type.status, 400);
    assert_eq!(wrong_type.body["errors"][0]["field"], "variants[0].weight_grams");

    let list = s.get("/v1/products").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1, "only the first product exists");
}

#[tokio::test]
async fn a_product_with_stock_history_cannot_be_deleted() {
    let s = stocked_server(&["H-1"]).await;
    receive(&s, "H-1", "WH1/HALL-1/SHELF-1/BIN-1", 3).await;
    let r = s.delete("/v1/products/tee").await;
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "has_stock_history");
    assert_eq!(s.delete("/v1/variants/H-1").await.code(), "has_stock_history");
    ok(&s.patch("/v1/products/tee", &json!({"status": "archived"})).await, 200);
}

#[tokio::test]
async fn numeric_skus_and_handles_mean_themselves_not_row_ids() {
    let s = server().await;
    ok(&s.post("/v1/products", &tee("first", &["A-1", "A-2"])).await, 201);
    // Variant id 1 exists; a variant whose SKU is "1" must still be found by its SKU.
    let mut p = tee("2024", &["1"]);
    p["title"] = json!("Vintage 2024");
    ok(&s.post("/v1/products", &p).await, 201);
    let v = s.get("/v1/variants/1").await;
    ok(&v, 200);
    assert_eq!(v.body["sku"], "1");
    assert_eq!(s.get("/v1/variants/2").await.body["sku"], "A-2", "a number that is no SKU is an id");
    assert_eq!(s.get("/v1/products/2024").await.body["title"], "Vintage 2024");
    ok(&s.delete("/v1/variants/1").await, 204);
    ok(&s.get("/v1/variants/A-1").await, 200);
}
