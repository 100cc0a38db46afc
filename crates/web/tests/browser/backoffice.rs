//! Browser tests of the back office: a channel rule previewed (nothing saved) and then saved; a product with two
//! variants created and edited; a staff key made, its secret shown once, then revoked. Each result is checked
//! through the API.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use crate::harness::{seed, Browser};

/// Clicks a submit button (or a link) and waits until the page it leads to shows `needle`. The old page must be gone first:
/// reading a page while the browser replaces it fails with a stale element.
async fn submit(b: &Browser, button: &str, needle: &str) -> String {
    let old = b.find("html").await;
    b.click(button).await;
    settle(b, old, needle).await
}

/// The same for a form with `data-confirm`: the question it asks is accepted.
async fn submit_confirmed(b: &Browser, button: &str, needle: &str) -> String {
    let old = b.find("html").await;
    b.click(button).await;
    let mut accepted = false;
    for _ in 0..50 {
        if b.client.accept_alert().await.is_ok() {
            accepted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(accepted, "{button} asked nothing to confirm");
    settle(b, old, needle).await
}

async fn settle(b: &Browser, old: fantoccini::elements::Element, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    while old.text().await.is_ok() {
        assert!(Instant::now() < deadline, "the form never left the page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.wait_for_text(needle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_rule_is_previewed_without_saving_then_saved() {
    let Some(b) = Browser::start("backoffice-rules").await else { return };
    seed(&b).await;
    b.api_post(
        "/v1/channels",
        &json!({"code": "web", "name": "Web shop", "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]}),
    )
    .await;
    b.sign_in_as_admin().await;
    b.goto("/admin/channels").await;
    submit(&b, "#channels a[href='/admin/channels/web']", "Set rules").await;
    b.wait_for("#rules-form").await;

    // "Stop showing below 25" for TEE-BLK-S, which has 20: the preview says it goes from 20 shown to 0.
    b.select("#rules-form select[name=scope]", "item").await;
    b.fill("#rules-form input[name=key]", "TEE-BLK-S").await;
    b.fill("#rules-form input[name=hide_below]", "25").await;
    submit(&b, "button#preview", "Preview (not saved)").await;
    let row = "#preview-table tr[data-sku='TEE-BLK-S']";
    assert_eq!(b.text(&format!("{row} td.before-shown")).await, "20");
    assert_eq!(b.text(&format!("{row} td.after-shown")).await, "0");
    assert_eq!(b.text("#preview-changed").await, "1");
    // The form keeps what was typed, ready to save.
    let kept = b.find("#rules-form input[name=hide_below]").await.prop("value").await.unwrap();
    assert_eq!(kept.as_deref(), Some("25"));
    b.screenshot("preview").await;

    // Nothing was saved: no rules, and the SKU is still listed with 20.
    assert_eq!(b.api_get("/v1/channels/web/rules").await, json!([]));
    let live = b.api_get("/v1/channels/web/availability/TEE-BLK-S").await;
    assert_eq!((live["quantity"].as_i64(), live["listed"].as_bool()), (Some(20), Some(true)));

    submit(&b, "button#save-rules", "Saved the item rules TEE-BLK-S").await;
    assert_eq!(
        b.api_get("/v1/channels/web/rules").await,
        json!([{"scope": "item", "key": "TEE-BLK-S", "rules": {"hide_below": 25}}])
    );
    // Hidden: the shop shows none of it (the rule unlists it; the quantity behind the listing stays 20).
    let live = b.api_get("/v1/channels/web/availability/TEE-BLK-S").await;
    assert_eq!(live["listed"], false);
    assert!(b.text("#rules").await.contains("hide below 25"));
    b.screenshot("saved").await;

    // A staff user may preview but not save.
    let staff = b.server.key("merchant", app::trust::Role::Staff, None).await;
    b.sign_in(&staff).await;
    b.goto("/admin/channels/web").await;
    b.wait_for("button#preview").await;
    assert!(b.client.find(Locator::Css("button#save-rules")).await.is_err());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_product_is_made_with_two_variants_and_a_staff_key_is_made_shown_once_and_revoked() {
    let Some(b) = Browser::start("backoffice-catalog").await else { return };
    seed(&b).await;
    b.sign_in_as_admin().await;

    b.goto("/admin/catalog").await;
    b.fill("#new-product input[name=title]", "Canvas Bag").await;
    b.fill("#new-product input[name=category]", "Bags > Totes").await;
    b.fill("#new-product input[name=options]", "Color").await;
    b.fill(
        "#new-product textarea[name=variants]",
        "BAG-NAT | 24.90 | Natural | 4006381333979\nBAG-BLK | 26.90 | Black",
    )
    .await;
    submit(&b, "button#create-product", "Created").await;
    assert_eq!(b.path().await.split('?').next(), Some("/admin/catalog/canvas-bag"));
    let p = b.api_get("/v1/products/canvas-bag").await;
    assert_eq!(p["category"], "Bags > Totes");
    let skus: Vec<_> =
        p["variants"].as_array().unwrap().iter().map(|v| (v["sku"].clone(), v["price"].clone())).collect();
    assert_eq!(skus, [(json!("BAG-NAT"), json!("24.90")), (json!("BAG-BLK"), json!("26.90"))]);
    assert_eq!(p["variants"][0]["barcode"], "4006381333979");

    // Edit the product, then a variant's weight.
    b.fill("#edit-product input[name=title]", "Canvas Tote").await;
    b.select("#edit-product select[name=status]", "active").await;
    submit(&b, "button#save-product", "Product saved").await;
    let p = b.api_get("/v1/products/canvas-bag").await;
    assert_eq!((p["title"].as_str(), p["status"].as_str()), (Some("Canvas Tote"), Some("active")));
    b.screenshot("product").await;
    submit(&b, "#variants a[href$='/variants/BAG-BLK']", "Price per channel").await;
    b.fill("#edit-variant input[name=weight_grams]", "310").await;
    submit(&b, "button#save-variant", "Variant saved").await;
    assert_eq!(b.api_get("/v1/variants/BAG-BLK").await["weight_grams"], 310);
    // A weight that is not a number is refused with a banner, and nothing changes.
    b.fill("#edit-variant input[name=weight_grams]", "heavy").await;
    submit(&b, "button#save-variant", "must be a whole number").await;
    assert_eq!(b.api_get("/v1/variants/BAG-BLK").await["weight_grams"], 310);

    // A staff key: its secret is on the answer page once, works, and is gone after revoking.
    b.goto("/admin/keys").await;
    b.fill("#new-key input[name=name]", "merchant laptop").await;
    b.select("#new-key select[name=role]", "staff").await;
    submit(&b, "button#create-key", "shown this once").await;
    let secret = b.text("#new-secret").await;
    assert!(secret.len() > 20, "{secret}");
    assert!(!b.path().await.contains(&secret));
    let r = b.server.call(reqwest::Method::GET, "/v1/products", Some(&secret), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(b.find("a#back-to-keys").await.attr("href").await.unwrap().as_deref(), Some("/admin/keys"));
    // Opened afresh (a page load WebDriver waits for), as the link would.
    b.goto("/admin/keys").await;
    b.wait_for("#keys").await;
    assert!(!b.page_text().await.contains(&secret), "the list never shows the secret");
    let keys = b.api_get("/v1/api-keys").await;
    let key = keys["items"].as_array().unwrap().iter().find(|k| k["name"] == "merchant laptop").unwrap().clone();
    assert_eq!(key["role"], "staff");
    submit_confirmed(&b, &format!("tr[data-key='{}'] button.revoke", key["id"]), "Revoked merchant laptop").await;
    assert!(!b.api_get(&format!("/v1/api-keys/{}", key["id"])).await["revoked_at"].is_null());
    let r = b.server.call(reqwest::Method::GET, "/v1/products", Some(&secret), None).await;
    assert_eq!(r.status, 401);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_locations_tree_takes_a_child_and_refuses_to_delete_a_bin_with_stock() {
    let Some(b) = Browser::start("backoffice-locations").await else { return };
    seed(&b).await;
    b.sign_in_as_admin().await;
    b.goto("/admin/locations").await;
    let rows = b.text("#location-tree").await;
    assert!(rows.find("WH1").unwrap() < rows.find("HALL-1").unwrap());
    submit(&b, "tr[data-path='WH1/HALL-1/SHELF-1'] a", "Add a child under WH1/HALL-1/SHELF-1").await;
    b.fill("#new-location input[name=code]", "BIN-4").await;
    b.fill("#new-location input[name=pick_sequence]", "4").await;
    submit(&b, "button#create-location", "Created WH1/HALL-1/SHELF-1/BIN-4").await;
    let bin = b.api_get("/v1/locations/WH1/HALL-1/SHELF-1/BIN-4").await;
    assert_eq!((bin["kind"].as_str(), bin["pick_sequence"].as_i64()), (Some("bin"), Some(4)));

    // BIN-1 holds 20 units: the API refuses, the page says why, the bin stays.
    b.goto("/admin/locations/at/WH1/HALL-1/SHELF-1/BIN-1").await;
    let text = submit_confirmed(&b, "button#delete-location", "Location WH1/HALL-1/SHELF-1/BIN-1").await;
    assert!(b.text(".flash.error").await.len() > 10, "{text}");
    b.api_get("/v1/locations/WH1/HALL-1/SHELF-1/BIN-1").await;
    b.goto("/admin/locations").await;
    b.screenshot("tree").await;
    b.close().await;
}
