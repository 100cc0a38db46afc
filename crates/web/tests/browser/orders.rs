//! Orders in the browser: capture, pick in bin order, pack by scanning, ship; and a partial cancel that frees
//! stock. Every result is checked through the API, not only on the page.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::harness::{seed, Browser};

/// Chromium's own command to render the page as for paper, so a screenshot shows what a printer would get.
#[derive(Debug)]
struct EmulateMedia(&'static str);

impl fantoccini::wd::WebDriverCompatibleCommand for EmulateMedia {
    fn endpoint(
        &self,
        base: &reqwest::Url,
        session: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        let body = json!({"cmd": "Emulation.setEmulatedMedia", "params": {"media": self.0}});
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

/// The levels of `sku` in the bin at `path`.
async fn bin_level(b: &Browser, sku: &str, path: &str) -> Value {
    let levels = b.api_get(&format!("/v1/inventory/levels?sku={sku}")).await;
    levels["items"][0]["warehouses"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["bins"].as_array().unwrap().iter())
        .find(|bin| bin["location"] == path)
        .cloned()
        .unwrap_or_else(|| panic!("no level of {sku} in {path}: {levels}"))
}

async fn count(b: &Browser, css: &str) -> usize {
    b.client.find_all(Locator::Css(css)).await.expect("find").len()
}

const BIN_1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const BIN_2: &str = "WH1/HALL-1/SHELF-1/BIN-2";
const BIN_3: &str = "WH1/HALL-1/SHELF-1/BIN-3";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pick_pack_and_ship_an_order() {
    let Some(b) = Browser::start("orders-ship").await else { return };
    seed(&b).await;
    let order = b
        .api_post(
            "/v1/orders",
            &json!({"source": "phone", "currency": "EUR",
                "customer": {"name": "Ada Lovelace", "email": "ada@example.com"},
                "lines": [{"sku": "TEE-BLK-S", "quantity": 2}, {"sku": "TEE-BLK-M", "quantity": 1}]}),
        )
        .await
        .body;
    let id = order["id"].as_i64().unwrap();
    b.sign_in_as_admin().await;

    // The list finds it under its source; the order page shows the customer and where its units are.
    b.goto("/admin/orders?source=phone").await;
    b.click(&format!("table#orders a[href='/admin/orders/{id}']")).await;
    b.wait_for("#capture-form").await;
    assert!(b.text("#customer").await.contains("Ada Lovelace"));
    assert!(b.text("table#lines").await.contains(BIN_1));
    b.screenshot("order").await;

    // Shipping before the payment is refused, and nothing ships.
    b.click("button#ship").await;
    b.wait_for_text("capture the payment first").await;
    assert_eq!(b.api_get(&format!("/v1/orders/{id}")).await["shipments"], json!([]));

    b.click("button#capture").await;
    b.wait_for_text("Captured 59.97 EUR").await;
    let o = b.api_get(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["payment_status"], "paid");
    assert_eq!(o["paid"]["captured"], "59.97");

    // A pick list for the warehouse, its stops in bin order.
    b.goto("/admin/pick-lists").await;
    b.select("#new-warehouse", "WH1").await;
    b.click("button#create-pick-list").await;
    b.wait_for_text("created: 2 stops").await;
    let list_id: i64 =
        b.path().await.trim_start_matches("/admin/pick-lists/").split('?').next().unwrap().parse().unwrap();
    let bins: Vec<String> = {
        let mut v = Vec::new();
        for el in b.client.find_all(Locator::Css("table#stops td.bin")).await.unwrap() {
            v.push(el.text().await.unwrap());
        }
        v
    };
    assert_eq!(bins, vec![BIN_1.to_string(), BIN_2.to_string()]);
    b.client.issue_cmd(EmulateMedia("print")).await.expect("print media");
    assert_eq!(count(&b, "header.top").await, 1);
    assert!(!b.find("header.top").await.is_displayed().await.unwrap(), "the menu is off the paper");
    assert!(!b.find("form.scan").await.is_displayed().await.unwrap(), "the scan field is off the paper");
    assert!(b.find("table#stops th.print-only").await.is_displayed().await.unwrap(), "a tick box per stop");
    b.screenshot("pick-list-printed").await;
    b.client.issue_cmd(EmulateMedia("")).await.expect("screen media");

    // The picker scans the bin, then the items; a wrong item is refused and counts nothing.
    b.scan("#scan", "BIN-1").await;
    b.wait_for_text(&format!("At {BIN_1}: pick 2 × TEE-BLK-S")).await;
    b.scan("#scan", "4006381333948").await;
    b.wait_for_text("Nothing more of TEE-BLK-M to pick at").await;
    b.scan("#scan", "4006381333931").await;
    b.wait_for_text("1 of 2 picked").await;
    b.scan("#scan", "4006381333931").await;
    b.wait_for_text("2 of 2 picked").await;
    b.scan("#scan", "BIN-2").await;
    b.wait_for_text("pick 1 × TEE-BLK-M").await;
    b.scan("#scan", "TEE-BLK-M").await;
    b.wait_for_text("Every stop is picked").await;
    b.screenshot("pick-list-scanned").await;
    b.click("button#complete").await;
    b.wait_for_text("everything picked").await;
    let list = b.api_get(&format!("/v1/pick-lists/{list_id}")).await;
    assert_eq!(list["status"], "picked");
    let picked: Vec<i64> = list["lines"].as_array().unwrap().iter().map(|l| l["picked"].as_i64().unwrap()).collect();
    assert_eq!(picked, vec![2, 1]);

    // Packing: every unit is scanned before the package is recorded.
    b.click(&format!("a.pack-order[href='/admin/orders/{id}/pack']")).await;
    b.wait_for("table#pack-lines").await;
    b.scan("#scan", "4006381333955").await;
    b.wait_for_text("TEE-WHT-S is not on this order").await;
    b.scan("#scan", "4006381333931").await;
    b.wait_for_text("TEE-BLK-S: 1 of 2 scanned").await;
    b.fill("#weight", "450").await;
    b.click("button#pack").await;
    b.wait_for_text("Scan every unit first").await;
    b.scan("#scan", "4006381333931").await;
    b.wait_for_text("TEE-BLK-S: 2 of 2 scanned").await;
    b.scan("#scan", "4006381333948").await;
    b.wait_for_text("TEE-BLK-M: 1 of 1 scanned").await;
    b.screenshot("packing").await;
    b.fill("#weight", "450").await;
    b.fill("#length", "300").await;
    b.fill("#width", "200").await;
    b.fill("#height", "100").await;
    b.click("button#pack").await;
    b.wait_for_text("Packed one package of 450 g").await;

    b.fill("#carrier", "DHL").await;
    b.fill("#tracking", "00340434161234567890").await;
    b.click("button#ship").await;
    b.wait_for_text("Shipped 3 units.").await;
    assert_eq!(b.path().await.split('?').next().unwrap(), format!("/admin/orders/{id}"));
    assert!(b.text("table#shipments").await.contains("00340434161234567890"));
    b.screenshot("shipped").await;

    let o = b.api_get(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["fulfillment_status"], "fulfilled");
    let shipment = &o["shipments"][0];
    assert_eq!(shipment["carrier"], "DHL");
    assert_eq!(shipment["tracking_number"], "00340434161234567890");
    assert_eq!(
        shipment["packages"],
        json!([{"weight_grams": 450, "length_mm": 300, "width_mm": 200, "height_mm": 100}])
    );
    // The units left their bins: on hand down, nothing committed any more.
    let s = bin_level(&b, "TEE-BLK-S", BIN_1).await;
    assert_eq!(
        (s["on_hand"].as_i64(), s["committed"].as_i64(), s["available"].as_i64()),
        (Some(18), Some(0), Some(18))
    );
    let m = bin_level(&b, "TEE-BLK-M", BIN_2).await;
    assert_eq!((m["on_hand"].as_i64(), m["committed"].as_i64()), (Some(9), Some(0)));

    // One tee comes back: a return, received into BIN-3 as sellable stock, and a credit memo for it.
    b.fill("input[name=return_0]", "1").await;
    b.fill("#return-reason", "too small").await;
    b.click("button#create-return").await;
    b.wait_for_text(&format!("Return {id}-1 opened.")).await;
    b.fill("#rb1-0", BIN_3).await;
    b.click("form.receive-form button.receive").await;
    b.wait_for_text(&format!("Return {id}-1 received.")).await;
    b.fill("#memo-amount", "19.99").await;
    b.fill("#memo-reason", "returned: too small").await;
    b.click("button#credit-memo").await;
    b.wait_for_text("Credit memo of 19.99 EUR recorded.").await;
    b.client.execute("document.querySelector('.return-panel').scrollIntoView()", vec![]).await.expect("scrolls");
    b.screenshot("returned").await;
    let o = b.api_get(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["returns"][0]["lines"][0]["received"], 1);
    assert_eq!(o["returns"][0]["lines"][0]["reason"], "too small");
    assert_eq!(o["credit_memos"][0]["amount"], "19.99");
    let back = bin_level(&b, "TEE-BLK-S", BIN_3).await;
    assert_eq!((back["on_hand"].as_i64(), back["available"].as_i64()), (Some(1), Some(1)));
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_cancel_from_the_order_page_frees_the_stock() {
    let Some(b) = Browser::start("orders-cancel").await else { return };
    seed(&b).await;
    let order = b
        .api_post(
            "/v1/orders",
            &json!({"source": "phone", "currency": "EUR", "lines": [{"sku": "TEE-BLK-M", "quantity": 5}]}),
        )
        .await
        .body;
    let id = order["id"].as_i64().unwrap();
    assert_eq!(bin_level(&b, "TEE-BLK-M", BIN_2).await["available"], 5);

    let staff = b.server.key("order desk", app::trust::Role::Staff, None).await;
    b.sign_in(&staff).await;
    b.goto(&format!("/admin/orders/{id}")).await;
    // Staff takes payments and cancels; packing is the warehouse's.
    assert_eq!(count(&b, "button#capture").await, 1);
    assert_eq!(count(&b, "#pack-link").await, 0);

    // More than the line holds (as from a page left open while someone else cancelled): the browser's own limit
    // is lifted, and the API's refusal is shown; nothing changes.
    b.client
        .execute("document.querySelector('input[name=cancel_0]').removeAttribute('max')", vec![])
        .await
        .expect("script runs");
    b.fill("input[name=cancel_0]", "9").await;
    b.click("button#cancel-lines").await;
    b.wait_for_text("at most 5").await;
    assert_eq!(b.api_get(&format!("/v1/orders/{id}")).await["lines"][0]["cancelled"], 0);
    // The form sent without any quantity must not cancel the whole order.
    b.click("button#cancel-lines").await;
    b.wait_for_text("Enter how many units to cancel").await;
    assert_eq!(b.api_get(&format!("/v1/orders/{id}")).await["lines"][0]["cancelled"], 0);

    b.fill("input[name=cancel_0]", "3").await;
    b.fill("#cancel-reason", "customer changed their mind").await;
    b.click("button#cancel-lines").await;
    b.wait_for_text("Cancelled units worth 59.97 EUR.").await;
    assert_eq!(b.text("table#lines td.cancelled").await, "3");
    b.screenshot("cancelled").await;

    let o = b.api_get(&format!("/v1/orders/{id}")).await;
    assert_eq!(o["lines"][0]["cancelled"], 3);
    assert_eq!(o["lines"][0]["committed"], 2);
    assert_eq!(o["status"], "open");
    let level = bin_level(&b, "TEE-BLK-M", BIN_2).await;
    assert_eq!((level["available"].as_i64(), level["committed"].as_i64()), (Some(8), Some(2)));

    // A warehouse key sees the order but neither payments nor cancelling, and may pack.
    b.click("form[action='/admin/logout'] button").await;
    b.wait_for("input[name=key]").await;
    let floor = b.server.key("floor", app::trust::Role::Warehouse, None).await;
    b.sign_in(&floor).await;
    b.goto(&format!("/admin/orders/{id}")).await;
    b.wait_for("table#lines").await;
    assert_eq!(count(&b, "button#capture").await, 0);
    assert_eq!(count(&b, "button#cancel-lines").await, 0);
    assert_eq!(count(&b, "#pack-link").await, 1);
    b.close().await;
}
