//! Browser tests of the dashboard and the items pages: a scanned barcode lands on its item with levels that match
//! the API, the dashboard's counts match the API's and follow new orders live, and the warehouse sees no sales.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::harness::{seed, Browser};

const BIN1: &str = "WH1/HALL-1/SHELF-1/BIN-1";

fn order(number: &str, sku: &str, quantity: i64) -> Value {
    json!({"source": "webshop", "external_number": number, "currency": "EUR", "payment_terms": "invoice",
           "lines": [{"sku": sku, "quantity": quantity}]})
}

/// The number a dashboard card shows.
async fn card(b: &Browser, id: &str) -> i64 {
    // The live update replaces the card while it is read: text_of reads it again rather than fail.
    let text = b.text_of(&format!("#{id} .big")).await;
    text.trim().parse().unwrap_or_else(|_| panic!("card {id} shows {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_barcode_lands_on_the_item_with_its_bins_and_levels() {
    let Some(b) = Browser::start("items-barcode").await else { return };
    seed(&b).await;
    // Some stock committed, so that more than one state has a number.
    b.api_post("/v1/orders", &order("1", "TEE-BLK-S", 3)).await;
    // A channel keeping a buffer back: its rules explain the quantity it shows.
    b.api_post(
        "/v1/channels",
        &json!({"code": "web", "name": "Web shop", "market_country": "DE", "currency": "EUR", "warehouses": ["WH1"]}),
    )
    .await;
    let rule = json!({"scope": "channel", "rules": {"channel_buffer": 2}});
    let admin = b.server.admin_key.clone();
    let r = b.server.call(reqwest::Method::PUT, "/v1/channels/web/rules", Some(&admin), Some(&rule)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    b.sign_in_as_admin().await;

    // The scanner types into the header's search box and presses Enter.
    b.scan("header.top form.search input[name=q]", "4006381333931").await;
    b.wait_for("#levels").await;
    assert_eq!(b.path().await, "/admin/items/TEE-BLK-S");
    assert_eq!(b.text("#sku").await, "TEE-BLK-S");
    assert_eq!(b.text("#barcode").await, "4006381333931");

    // Every state of the bin, the warehouse and the total as the API has them.
    let levels = b.api_get("/v1/inventory/levels?sku=TEE-BLK-S").await;
    let item = &levels["items"][0];
    let wh = &item["warehouses"][0];
    let bin = wh["bins"].as_array().unwrap().iter().find(|x| x["location"] == BIN1).expect("the bin");
    for state in ["on_hand", "available", "committed", "reserved", "damaged", "quality_control", "incoming"] {
        let shown = b.text(&format!("tr.bin-row[data-location='{BIN1}'] td[data-state={state}]")).await;
        assert_eq!(shown, bin[state].to_string(), "{state} of the bin");
        let shown = b.text(&format!("tr.warehouse-row[data-location='WH1'] td[data-state={state}]")).await;
        assert_eq!(shown, wh["total"][state].to_string(), "{state} of WH1");
        let shown = b.text(&format!("tr.total-row td[data-state={state}]")).await;
        assert_eq!(shown, item["total"][state].to_string(), "{state} in total");
    }
    assert_eq!((bin["available"].as_i64(), bin["committed"].as_i64()), (Some(17), Some(3)));
    // The ledger lists the receipt and the commitment.
    let ledger = b.text("#ledger").await;
    assert!(ledger.contains("received") && ledger.contains("order"), "{ledger}");
    // Availability on the channel, with the rule-by-rule explanation the API gives.
    let web = b.api_get("/v1/channels/web/availability/TEE-BLK-S?explain=true").await;
    assert_eq!(b.text("section.channel[data-channel=web] .qty").await, web["quantity"].to_string());
    assert_eq!(web["quantity"], 15, "17 available less the buffer of 2");
    let steps =
        b.client.find_all(Locator::Css("section.channel[data-channel=web] table.explain tbody tr")).await.unwrap();
    let explained = web["explanation"].as_array().unwrap();
    assert_eq!(steps.len(), explained.len());
    for (row, step) in steps.iter().zip(explained) {
        let text = row.text().await.unwrap();
        assert!(text.starts_with(step["rule"].as_str().unwrap()), "{text} / {step}");
    }
    assert!(b.text("section.channel[data-channel=web] table.explain").await.contains("channel_buffer"));
    b.wait_for("#item-sales svg.chart").await;
    b.wait_for("#item-value").await;
    b.screenshot("item").await;
    // The lower half: channels, the sales chart and the value.
    b.client.execute("document.getElementById('item-sales').scrollIntoView()", vec![]).await.expect("scrolled");
    b.screenshot("item-lower").await;

    // A title matches several items: a list, each linking to its page.
    b.goto("/admin/items?q=organic").await;
    assert_eq!(b.client.find_all(Locator::Css("#items tbody tr")).await.unwrap().len(), 3);
    b.click("#items a[href='/admin/items/TEE-WHT-S']").await;
    b.wait_for("#no-stock").await;
    assert_eq!(b.path().await, "/admin/items/TEE-WHT-S");
    // Nothing matches: said so, and the search box is ready for the next scan.
    b.goto("/admin/items?q=nothing-like-this").await;
    assert!(b.text("#result-count").await.starts_with("No item matches"));
    b.scan("#q", "tee-blk-m").await;
    b.wait_for("#levels").await;
    assert_eq!(b.path().await, "/admin/items/TEE-BLK-M", "an exact SKU in any case is one match");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_counts_a_backorder_and_follows_new_orders_live() {
    let Some(b) = Browser::start("items-dashboard").await else { return };
    seed(&b).await;
    let r = b.server.patch("/v1/variants/TEE-WHT-S", &json!({"inventory_policy": "backorder"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Three units sold today: placed on invoice and shipped at once.
    let sold = b.api_post("/v1/orders", &order("0", "TEE-BLK-M", 3)).await;
    b.api_post(&format!("/v1/orders/{}/shipments", sold.body["id"]), &json!({})).await;
    b.api_post("/v1/orders", &order("1", "TEE-BLK-S", 2)).await;
    b.api_post("/v1/orders", &order("2", "TEE-WHT-S", 4)).await;
    b.sign_in_as_admin().await;
    b.goto("/admin").await;

    // Rendered with the page (no script needed), the same as the API says.
    let api = b.api_get("/v1/reports/dashboard").await;
    assert_eq!(api["backordered"]["count"], 1);
    for (id, key) in [
        ("ready-to-pick", "ready_to_pick"),
        ("backordered", "backordered"),
        ("low-stock", "low_stock"),
        ("stockouts", "stockouts_projected"),
        ("holds", "holds_expiring"),
        ("webhooks", "webhooks_failing"),
    ] {
        assert_eq!(Some(card(&b, id).await), api[key]["count"].as_i64(), "{id}");
    }
    let waiting = format!("#{}", api["backordered"]["orders"][0]["id"]);
    assert_eq!(api["backordered"]["orders"][0]["external_number"], "2");
    assert!(b.text("#backordered-list").await.contains(&waiting), "the backordered order is listed");
    // The chart of units sold per day: 90 bars.
    b.wait_for("#sales svg.chart").await;
    let bars = b.client.find_all(Locator::Css("#sales svg.chart rect.bar")).await.unwrap();
    assert_eq!(bars.len(), 90);
    // Today is the last bar, with the units the API counts for it.
    let sales = b.api_get("/v1/reports/sales-per-day?days=90").await;
    let today = &sales["days"][89];
    assert_eq!(today["units"], 3);
    let last = bars[89].html(false).await.unwrap();
    let label = format!("{}: 3</title>", &today["date"].as_str().unwrap()[5..]);
    assert!(last.contains(&label), "{last}");
    assert!(bars[88].html(false).await.unwrap().contains(r#"height="0.0""#), "no sales the day before");
    b.screenshot("dashboard").await;

    // Another backorder arrives: the counts follow without a reload.
    b.api_post("/v1/orders", &order("3", "TEE-WHT-S", 1)).await;
    let deadline = Instant::now() + Duration::from_secs(25);
    while card(&b, "backordered").await != 2 {
        assert!(Instant::now() < deadline, "the dashboard never showed the second backorder");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(b.api_get("/v1/reports/dashboard").await["backordered"]["count"], 2);
    assert_eq!(b.path().await, "/admin", "updated in place");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warehouse_sees_the_dashboard_without_the_sales_chart() {
    let Some(b) = Browser::start("items-dashboard-warehouse").await else { return };
    seed(&b).await;
    b.api_post("/v1/orders", &order("1", "TEE-BLK-S", 1)).await;
    let key = b.server.key("floor", app::trust::Role::Warehouse, None).await;
    b.sign_in(&key).await;
    b.goto("/admin").await;
    assert_eq!(card(&b, "ready-to-pick").await, 1);
    assert!(b.client.find(Locator::Css("#sales")).await.is_err(), "no sales chart for the warehouse");
    assert!(b.client.find(Locator::Css("svg.chart")).await.is_err());
    // Cards link only to pages the role may read: pick lists yes, webhook endpoints (the admin's) no.
    assert!(b.client.find(Locator::Css("a#ready-to-pick")).await.is_ok());
    assert!(b.client.find(Locator::Css("a#webhooks")).await.is_err());
    assert!(b.client.find(Locator::Css("div#webhooks")).await.is_ok());
    b.screenshot("warehouse").await;
    // The live fragment answers for the warehouse too, and the items page has no sales or value for it.
    b.goto("/admin/items/TEE-BLK-S").await;
    b.wait_for("#levels").await;
    assert!(b.client.find(Locator::Css("#item-sales")).await.is_err());
    assert!(b.client.find(Locator::Css("#item-value")).await.is_err());
    b.close().await;
}
