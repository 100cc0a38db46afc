//! Browser tests of the warehouse floor pages: receiving a purchase order, a cycle count, moving stock and a
//! transfer, each driven with scans as a warehouse key and checked through the API.

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::harness::{seed, Browser};

const BIN1: &str = "WH1/HALL-1/SHELF-1/BIN-1";
const BIN2: &str = "WH1/HALL-1/SHELF-1/BIN-2";
const BIN3: &str = "WH1/HALL-1/SHELF-1/BIN-3";

/// The quantities of `sku` in bin `bin`, as the API reports them (zeros when the bin holds none).
async fn bin_level(b: &Browser, sku: &str, bin: &str) -> Value {
    let levels = b.api_get(&format!("/v1/inventory/levels?sku={sku}&location={bin}")).await;
    for item in levels["items"].as_array().unwrap() {
        for wh in item["warehouses"].as_array().unwrap() {
            for l in wh["bins"].as_array().unwrap() {
                if l["location"] == bin {
                    return l.clone();
                }
            }
        }
    }
    json!({"available": 0, "on_hand": 0})
}

async fn sign_in_warehouse(b: &Browser) {
    let key = b.server.key("floor tablet", app::trust::Role::Warehouse, None).await;
    b.sign_in(&key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receive_a_purchase_order_by_scanning() {
    let Some(b) = Browser::start("warehouse-receiving").await else { return };
    seed(&b).await;
    let supplier = b.api_post("/v1/suppliers", &json!({"name": "Acme Textiles", "currency": "EUR"})).await;
    let po = b
        .api_post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier.body["id"], "warehouse": "WH1",
                    "lines": [{"sku": "TEE-WHT-S", "quantity": 10, "unit_cost": "5.00"}]}),
        )
        .await;
    let id = po.body["id"].as_i64().unwrap();
    b.api_post(&format!("/v1/purchase-orders/{id}/order"), &json!({})).await;
    // A draft is not waiting for goods: it must not be listed.
    let draft = b
        .api_post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier.body["id"], "warehouse": "WH1",
                    "lines": [{"sku": "TEE-BLK-S", "quantity": 5, "unit_cost": "5.00"}]}),
        )
        .await;
    let draft_id = draft.body["id"].as_i64().unwrap();

    sign_in_warehouse(&b).await;
    b.goto("/admin/receiving").await;
    let list = b.text("#open-orders").await;
    assert!(list.contains(&format!("PO {id}")), "{list}");
    assert!(!list.contains(&format!("PO {draft_id}")), "a draft is listed: {list}");
    b.screenshot("list").await;
    b.click(&format!("a.po-link[href='/admin/receiving/{id}']")).await;

    // A code that names nothing: a banner, and the scan field back for the next try.
    b.scan("input#item", "0000000000017").await;
    b.wait_for_text_in("main", "No item has the barcode or SKU '0000000000017'").await;
    assert_eq!(b.path().await.split('?').next().unwrap(), format!("/admin/receiving/{id}"));
    b.wait_for("input#item").await;

    b.scan("input#item", "4006381333955").await;
    assert_eq!(b.text("#receive-sku").await, "TEE-WHT-S");
    // The bin field starts at the putaway suggestion: the one empty bin of WH1.
    let suggested = b.find("input#bin").await.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(suggested, BIN3);
    assert_eq!(b.find("input#quantity").await.prop("value").await.unwrap().as_deref(), Some("1"));
    b.fill("input#quantity", "6").await;
    b.fill("input#bin", BIN3).await;
    b.screenshot("scanned").await;
    b.click("button#receive").await;
    b.wait_for_text_in("main", "Received 6 × TEE-WHT-S into WH1/…/BIN-3").await;
    // Back at the scan of the next item, with what was received listed.
    b.wait_for("input#item").await;
    assert!(b.text("#receipts").await.contains(BIN3));
    b.screenshot("received").await;

    let order = b.api_get(&format!("/v1/purchase-orders/{id}")).await;
    assert_eq!(order["status"], "partially_received");
    assert_eq!((order["lines"][0]["received"].as_i64(), order["lines"][0]["open"].as_i64()), (Some(6), Some(4)));
    assert_eq!(bin_level(&b, "TEE-WHT-S", BIN3).await["available"], 6);
    assert_eq!(b.text("#po-lines tr[data-sku='TEE-WHT-S'] td.remaining").await, "4");

    // More than the order allows: the API's refusal in the banner, nothing booked.
    b.scan("input#item", "TEE-WHT-S").await;
    b.fill("input#quantity", "5").await;
    b.click("button#receive").await;
    b.wait_for(".flash.error").await;
    let order = b.api_get(&format!("/v1/purchase-orders/{id}")).await;
    assert_eq!(order["lines"][0]["received"], 6);
    assert_eq!(bin_level(&b, "TEE-WHT-S", BIN3).await["available"], 6);

    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("/admin/receiving/{id}?item=4006381333955")).await;
    b.wait_for("input#bin").await;
    b.screenshot("phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_a_blind_count_of_a_bin() {
    let Some(b) = Browser::start("warehouse-count").await else { return };
    seed(&b).await;
    sign_in_warehouse(&b).await;
    b.goto("/admin/counts").await;
    b.fill("input#location", BIN1).await;
    b.click("input#blind").await;
    b.click("button#create-count").await;
    b.wait_for_text_in("main", "opened: 1 line to count").await;
    let counts = b.api_get("/v1/counts").await;
    let id = counts["items"][0]["id"].as_i64().unwrap();
    assert_eq!(counts["items"][0]["blind"], true);

    // Start over at the bin: scanning the code on the shelf label finds the count's bin.
    b.goto(&format!("/admin/counts/{id}")).await;
    b.scan("input#bin", "BIN-1").await;
    assert_eq!(b.text("#count-bin").await, BIN1);
    // Blind: the counter does not see the 20 expected.
    assert!(!b.text("#count-lines").await.contains("20"));
    b.wait_for("#variance-hidden").await;

    // Each scan without a total adds one.
    b.scan("input#item", "4006381333931").await;
    b.wait_for_text_in("main", "Counted 1 × TEE-BLK-S in WH1/…/BIN-1 (+1)").await;
    b.scan("input#item", "4006381333931").await;
    b.wait_for_text_in("main", "Counted 2 × TEE-BLK-S in WH1/…/BIN-1 (+1)").await;
    assert_eq!(b.api_get(&format!("/v1/counts/{id}")).await["lines"][0]["counted"], 2);
    // The scanner sends the form twice under the page's one idempotency key: the second +1 is a different
    // request (a newer total), which the API refuses; the page says so as an error naming the SKU, not as a count.
    let twice = b
        .client
        .execute_async(
            r##"const done = arguments[arguments.length - 1];
               const form = document.querySelector("form[action$='/entries']");
               form.querySelector("#item").value = "TEE-BLK-S";
               const send = () => fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form))});
               send().then(() => send()).then(r => r.text()).then(done, e => done("failed: " + e));"##,
            vec![],
        )
        .await
        .expect("the form sent twice");
    let twice = twice.as_str().unwrap_or("");
    assert!(
        twice.contains(
            "<p class=\"flash error\" role=\"alert\">This scan of TEE-BLK-S arrived before the page was ready and \
             was not counted; check the total above and scan again if it was another unit.</p>"
        ),
        "{twice}"
    );
    assert_eq!(b.api_get(&format!("/v1/counts/{id}")).await["lines"][0]["counted"], 3);
    b.goto(&format!("/admin/counts/{id}?bin={BIN1}")).await;
    // An unknown item changes nothing.
    b.scan("input#item", "NOPE-123").await;
    b.wait_for_text_in("main", "No item has the barcode or SKU 'NOPE-123'").await;
    assert_eq!(b.api_get(&format!("/v1/counts/{id}")).await["lines"][0]["counted"], 3);
    // A typed total replaces what the scans added up to.
    b.fill("input#counted", "18").await;
    b.scan("input#item", "4006381333931").await;
    b.wait_for_text_in("main", "Counted 18 × TEE-BLK-S in WH1/…/BIN-1").await;
    assert_eq!(b.text("#bin-lines tr[data-sku='TEE-BLK-S'] td.counted").await, "18");
    b.screenshot("counted").await;

    b.click("button#approve").await;
    b.client.accept_alert().await.expect("the approval asks first");
    b.wait_for_text_in("main", &format!("Count {id} approved")).await;
    // Approved: the variance shows.
    assert_eq!(b.text("#variance .card .big").await, "-2");
    b.screenshot("approved").await;

    let level = bin_level(&b, "TEE-BLK-S", BIN1).await;
    assert_eq!((level["on_hand"].as_i64(), level["available"].as_i64()), (Some(18), Some(18)));
    let moves = b.api_get("/v1/inventory/movements?sku=TEE-BLK-S&reason=cycle_count").await;
    let moves = moves["items"].as_array().unwrap();
    assert_eq!(moves.len(), 1, "{moves:?}");
    assert_eq!((moves[0]["quantity"].as_i64(), moves[0]["from"]["location"].as_str()), (Some(2), Some(BIN1)));

    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("/admin/counts/{id}")).await;
    b.wait_for("#variance").await;
    b.screenshot("phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn move_stock_between_bins_by_scanning() {
    let Some(b) = Browser::start("warehouse-move").await else { return };
    seed(&b).await;
    sign_in_warehouse(&b).await;
    b.goto("/admin/moves").await;
    b.scan("input#from", BIN2).await;
    let contents = b.text("#bin-contents").await;
    assert!(contents.contains("TEE-BLK-M") && contents.contains("10"), "{contents}");
    b.scan("input#item", "4006381333948").await;
    assert_eq!(b.text("#move-sku").await, "TEE-BLK-M");
    b.fill("input#quantity", "3").await;
    b.screenshot("scanned").await;
    b.scan("input#to", BIN3).await;
    b.wait_for_text_in("main", "Moved 3 × TEE-BLK-M from WH1/…/BIN-2 to WH1/…/BIN-3").await;
    // Back at the same bin for the next item, its contents current.
    assert!(b.text("#bin-contents").await.contains('7'));
    b.wait_for("input#item").await;
    b.screenshot("moved").await;
    assert_eq!(bin_level(&b, "TEE-BLK-M", BIN2).await["available"], 7);
    assert_eq!(bin_level(&b, "TEE-BLK-M", BIN3).await["available"], 3);

    // More than the bin holds: refused, nothing moved.
    b.scan("input#item", "TEE-BLK-M").await;
    b.fill("input#quantity", "99").await;
    b.scan("input#to", BIN3).await;
    b.wait_for(".flash.error").await;
    assert_eq!(bin_level(&b, "TEE-BLK-M", BIN2).await["available"], 7);
    assert_eq!(bin_level(&b, "TEE-BLK-M", BIN3).await["available"], 3);

    b.client.set_window_size(390, 844).await.unwrap();
    b.goto(&format!("/admin/moves?from={BIN2}&item=TEE-BLK-M")).await;
    b.wait_for("input#to").await;
    b.screenshot("phone").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_a_transfer_and_receive_it() {
    let Some(b) = Browser::start("warehouse-transfer").await else { return };
    seed(&b).await;
    sign_in_warehouse(&b).await;
    b.goto("/admin/transfers").await;
    b.click("a#new-transfer").await;
    b.select("select#from", "WH1").await;
    b.select("select#to", "WH2").await;
    b.scan("input#item", "4006381333931").await;
    b.wait_for_text_in("main", "Added 1 × TEE-BLK-S from WH1/…/BIN-1").await;
    b.scan("input#item", "4006381333931").await;
    // The draft kept the warehouses and added the scans up.
    b.wait_for_text_in("#draft-lines td.num", "2").await;
    b.screenshot("draft").await;
    b.click("button#create-transfer").await;
    b.wait_for_text_in("main", "created with 1 line").await;
    let id = b.api_get("/v1/transfers").await["items"][0]["id"].as_i64().unwrap();
    assert_eq!(b.api_get(&format!("/v1/transfers/{id}")).await["lines"][0]["quantity"], 2);

    b.click("button#ship").await;
    b.wait_for_text_in("main", &format!("Shipped transfer {id}: 2 units in transit")).await;
    assert_eq!(bin_level(&b, "TEE-BLK-S", BIN1).await["available"], 18);
    b.fill("input#received_0", "1").await;
    b.fill("input#damaged_0", "1").await;
    b.fill("input#bin_0", "WH2/BIN-1").await;
    b.screenshot("receive").await;
    b.click("button#receive").await;
    b.wait_for_text_in("main", &format!("Received on transfer {id}: 1 sound, 1 damaged, 0 lost")).await;
    let t = b.api_get(&format!("/v1/transfers/{id}")).await;
    assert_eq!(t["status"], "received");
    let level = bin_level(&b, "TEE-BLK-S", "WH2/BIN-1").await;
    assert_eq!((level["available"].as_i64(), level["damaged"].as_i64()), (Some(1), Some(1)));
    b.screenshot("received").await;

    // The list filters by status; a status the API does not know is a clear refusal, not an empty list.
    b.goto("/admin/transfers?status=received").await;
    assert!(b.text("#transfers").await.contains(&format!("Transfer {id}")));
    b.goto("/admin/transfers?status=draft").await;
    b.wait_for_text_in("main", "No transfers yet.").await;
    b.goto("/admin/transfers?status=lost_at_sea").await;
    b.wait_for_text_in("main", "status").await;
    assert!(b.client.find(Locator::Css("#transfers")).await.is_err());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_count_short_of_committed_units_is_refused_in_a_banner() {
    let Some(b) = Browser::start("warehouse-count-refused").await else { return };
    seed(&b).await;
    // 19 of the 20 in BIN-1 are committed to an order: a count finding 17 cannot take 3 away.
    b.api_post(
        "/v1/orders",
        &json!({"source": "webshop", "external_number": "1001", "currency": "EUR", "payment_terms": "invoice",
                "lines": [{"sku": "TEE-BLK-S", "quantity": 19}]}),
    )
    .await;
    assert_eq!(bin_level(&b, "TEE-BLK-S", BIN1).await["available"], 1);
    let count = b.api_post("/v1/counts", &json!({"location": BIN1})).await;
    let id = count.body["id"].as_i64().unwrap();

    sign_in_warehouse(&b).await;
    b.goto(&format!("/admin/counts/{id}?bin={BIN1}")).await;
    b.fill("input#counted", "17").await;
    b.scan("input#item", "TEE-BLK-S").await;
    b.wait_for_text_in("main", "Counted 17 × TEE-BLK-S").await;
    b.click("button#approve").await;
    b.client.accept_alert().await.expect("the approval asks first");
    let banner = b.wait_for_text_in(".flash.error", "Not approved, nothing booked").await;
    assert!(banner.contains(&format!("TEE-BLK-S in {BIN1} is 3 short, but only 1")), "{banner}");
    b.screenshot("refused").await;

    let level = bin_level(&b, "TEE-BLK-S", BIN1).await;
    assert_eq!((level["on_hand"].as_i64(), level["committed"].as_i64()), (Some(20), Some(19)));
    assert_eq!(b.api_get(&format!("/v1/counts/{id}")).await["status"], "open");
    let moves = b.api_get("/v1/inventory/movements?reason=cycle_count").await;
    assert!(moves["items"].as_array().unwrap().is_empty());
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_follow_floor_work_but_see_no_buttons_to_book_it() {
    let Some(b) = Browser::start("warehouse-staff").await else { return };
    seed(&b).await;
    let key = b.server.key("office", app::trust::Role::Staff, None).await;
    b.sign_in(&key).await;
    let absent = |css: &'static str| {
        let client = b.client.clone();
        async move { client.find(Locator::Css(css)).await.is_err() }
    };
    b.goto(&format!("/admin/moves?from={BIN2}&item=TEE-BLK-M")).await;
    b.wait_for_text_in("main", "may look at stock but not move it").await;
    assert!(b.text("#bin-contents").await.contains("TEE-BLK-M"));
    assert!(absent("button#move").await);
    b.goto("/admin/counts").await;
    b.wait_for("main h1").await;
    assert!(absent("button#create-count").await);
    b.goto("/admin/transfers").await;
    b.wait_for("main h1").await;
    assert!(absent("a#new-transfer").await);
    b.close().await;
}
