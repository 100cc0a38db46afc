//! Browser tests of the purchasing, replenishment, reports and webhook pages: each drives the pages, then checks
//! what changed (or did not) through the API.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{seed, Browser};

fn id_from_path(path: &str, prefix: &str) -> i64 {
    path.strip_prefix(prefix)
        .and_then(|rest| rest.split(['?', '/']).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{path} is not under {prefix}"))
}

/// A plain HTTP client carrying the browser's session, for downloads the browser would save to disk.
async fn session_client(b: &Browser) -> (reqwest::Client, String) {
    let cookies = b.client.get_all_cookies().await.expect("cookies");
    let session = cookies.iter().find(|c| c.name() == "sr_session").expect("signed in").value().to_string();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    (client, format!("sr_session={session}"))
}

fn csv_rows(body: &str) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_reader(body.as_bytes());
    r.records().map(|rec| rec.expect("a CSV record").iter().map(str::to_string).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supplier_and_a_purchase_order_made_and_ordered_in_the_browser() {
    let Some(b) = Browser::start("office-po").await else { return };
    seed(&b).await;
    b.sign_in_as_admin().await;

    b.goto("/admin/suppliers").await;
    b.fill("#s-name", "Acme Textiles").await;
    b.fill("#s-lead", "5").await;
    b.fill("#s-email", "orders@acme.example").await;
    b.click("#create-supplier").await;
    b.wait_for_text("Supplier Acme Textiles created").await;
    let supplier = id_from_path(&b.path().await, "/admin/suppliers/");

    // Its items: TEE-WHT-S in packs of 5, at least 10.
    b.fill("input[name=sku_0]", "TEE-WHT-S").await;
    b.fill("input[name=supplier_sku_0]", "ACME-W-S").await;
    b.fill("input[name=unit_cost_0]", "4.50").await;
    b.fill("input[name=moq_0]", "10").await;
    b.fill("input[name=pack_0]", "5").await;
    b.click("#save-items").await;
    b.wait_for_text("Saved 1 items").await;
    let s = b.api_get(&format!("/v1/suppliers/{supplier}")).await;
    assert_eq!(s["lead_time_days"], 5);
    assert_eq!(s["contact"]["email"], "orders@acme.example");
    let items = s["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{s}");
    assert_eq!(
        (&items[0]["sku"], &items[0]["supplier_sku"], &items[0]["min_order_quantity"], &items[0]["pack_size"]),
        (&json!("TEE-WHT-S"), &json!("ACME-W-S"), &json!(10), &json!(5))
    );
    assert_eq!(items[0]["unit_cost"].as_str().map(|c| c.parse::<f64>().unwrap()), Some(4.5));

    // A line the API refuses (an unknown SKU): a banner, and no order is made.
    b.goto(&format!("/admin/purchase-orders?supplier={supplier}")).await;
    b.select("#po-warehouse", "WH1").await;
    b.fill("input[name=sku_0]", "NO-SUCH-SKU").await;
    b.fill("input[name=qty_0]", "10").await;
    b.click("#create-po").await;
    b.wait_for(".flash.error").await;
    assert_eq!(b.api_get("/v1/purchase-orders").await["items"].as_array().unwrap().len(), 0);

    // The real one: 20 of TEE-WHT-S for WH1, a draft first.
    b.select("#po-supplier", &supplier.to_string()).await;
    b.select("#po-warehouse", "WH1").await;
    b.fill("input[name=sku_0]", "TEE-WHT-S").await;
    b.fill("input[name=qty_0]", "20").await;
    b.click("#create-po").await;
    b.wait_for_text("created (draft)").await;
    let po = id_from_path(&b.path().await, "/admin/purchase-orders/");
    assert_eq!(b.text_of("#po-lines tbody td.remaining").await, "20", "a draft still has all of it to come");
    assert!(b.client.find(fantoccini::Locator::Css("#receive")).await.is_err(), "a draft cannot be received");
    b.click("#po-order").await;
    b.wait_for_text(&format!("Purchase order {po} sent to the supplier")).await;
    assert!(b.text_of("#po-status").await.contains("ordered"));
    let href = b.find("#receive").await.attr("href").await.unwrap();
    assert_eq!(href.as_deref(), Some(format!("/admin/receiving/{po}").as_str()));
    b.screenshot("purchase-order").await;

    let v = b.api_get(&format!("/v1/purchase-orders/{po}")).await;
    assert_eq!(v["status"], "ordered");
    assert_eq!(v["supplier_id"], supplier);
    assert_eq!(v["warehouse"], "WH1");
    let lines = v["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (&lines[0]["sku"], &lines[0]["quantity"], &lines[0]["open"]),
        (&json!("TEE-WHT-S"), &json!(20), &json!(20))
    );
    assert_eq!(lines[0]["unit_cost"].as_str().map(|c| c.parse::<f64>().unwrap()), Some(4.5), "the supplier's cost");
    // It now counts as incoming for TEE-WHT-S.
    assert_eq!(b.api_get("/v1/purchase-orders?status=ordered").await["items"].as_array().unwrap().len(), 1);

    // The list filters by status.
    b.goto("/admin/purchase-orders?status=ordered").await;
    assert!(b.text_of("#purchase-orders").await.contains(&format!("PO {po}")));
    b.goto("/admin/purchase-orders?status=draft").await;
    b.wait_for_text("No purchase orders.").await;

    // 5 arrive (booked through the API: receiving is its own page); freight is entered against that receipt here.
    b.api_post(
        &format!("/v1/purchase-orders/{po}/receipts"),
        &json!({"lines": [{"line": 0, "quantity": 5, "location": "WH1/HALL-1/SHELF-1/BIN-3"}]}),
    )
    .await;
    b.goto(&format!("/admin/purchase-orders/{po}")).await;
    assert!(b.client.find(fantoccini::Locator::Css("#po-order")).await.is_err(), "no step the status forbids");
    assert_eq!(b.text_of("#po-lines tbody td.remaining").await, "15");
    b.click(".receipt details summary").await;
    b.fill("form.landed-cost input[name=amount]", "-3").await;
    b.click("form.landed-cost button.add-landed-cost").await;
    b.wait_for(".flash.error").await;
    let landed = format!("/v1/purchase-orders/{po}/landed-costs");
    assert_eq!(b.api_get(&landed).await["items"].as_array().unwrap().len(), 0, "a refused cost is not entered");
    b.click(".receipt details summary").await;
    b.fill("form.landed-cost input[name=amount]", "12.50").await;
    b.fill("form.landed-cost input[name=description]", "freight").await;
    b.click("form.landed-cost button.add-landed-cost").await;
    b.wait_for_text("Landed cost of 12.50 EUR added to receipt 1").await;
    let costs = b.api_get(&landed).await["items"].as_array().unwrap().clone();
    assert_eq!(costs.len(), 1);
    assert_eq!((&costs[0]["receipt_number"], &costs[0]["description"]), (&json!(1), &json!("freight")));
    assert!(b.text_of(".receipt ul.landed-costs").await.contains("12.50 EUR by value · freight"));
    b.screenshot("received").await;

    // The rest will not come: closed short.
    b.click("#po-close").await;
    b.client.accept_alert().await.expect("closing short asks first");
    b.wait_for_text("closed short").await;
    let v = b.api_get(&format!("/v1/purchase-orders/{po}")).await;
    assert_eq!(
        (&v["status"], &v["lines"][0]["received"], &v["lines"][0]["closed"]),
        (&json!("closed"), &json!(5), &json!(15))
    );

    // The warehouse sees an ordered PO with the way to receive it, and none of the buyer's steps or pages.
    let next = b
        .api_post(
            "/v1/purchase-orders",
            &json!({"supplier_id": supplier, "warehouse": "WH1", "order": true,
                    "lines": [{"sku": "TEE-WHT-S", "quantity": 10}]}),
        )
        .await;
    let next = next.body["id"].as_i64().unwrap();
    let key = b.server.key("receiving desk", app::trust::Role::Warehouse, None).await;
    b.sign_in(&key).await;
    b.goto(&format!("/admin/purchase-orders/{next}")).await;
    assert!(b.text_of("#po-status").await.contains("ordered"));
    b.find("#receive").await;
    for step in ["#po-order", "#po-cancel", "#po-close", "form.landed-cost"] {
        assert!(b.client.find(fantoccini::Locator::Css(step)).await.is_err(), "{step} is not the warehouse's");
    }
    b.goto("/admin/purchase-orders").await;
    assert!(b.client.find(fantoccini::Locator::Css("#new-po")).await.is_err());
    for page in ["/admin/suppliers", "/admin/webhooks", "/admin/reports"] {
        b.goto(page).await;
        b.wait_for_text("Not allowed").await;
    }
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replenishment_suggestions_become_the_drafts_the_api_would_make() {
    let Some(b) = Browser::start("office-replenishment").await else { return };
    seed(&b).await;
    // Tees Ltd sells TEE-BLK-S in packs of 10; 15 of the 20 in stock are sold and shipped today.
    let sup = b
        .api_post(
            "/v1/suppliers",
            &json!({"name": "Tees Ltd", "currency": "EUR", "lead_time_days": 7,
                    "items": [{"sku": "TEE-BLK-S", "unit_cost": "5.00", "pack_size": 10}]}),
        )
        .await;
    let supplier = sup.body["id"].as_i64().unwrap();
    let order = b
        .api_post(
            "/v1/orders",
            &json!({"source": "webshop", "currency": "EUR", "payment_terms": "invoice",
                    "lines": [{"sku": "TEE-BLK-S", "quantity": 15}]}),
        )
        .await;
    b.api_post(&format!("/v1/orders/{}/shipments", order.body["id"]), &json!({})).await;
    let expected = b.api_get("/v1/replenishment/suggestions").await["items"].as_array().unwrap().clone();
    assert_eq!(expected.len(), 1, "a day of sales gives a suggestion at the observed rate: {expected:?}");
    let s = &expected[0];
    assert_eq!((&s["sku"], &s["warehouse"], &s["supplier_id"]), (&json!("TEE-BLK-S"), &json!("WH1"), &json!(supplier)));

    b.sign_in_as_admin().await;
    b.goto("/admin/replenishment").await;
    let table = b.text_of("#suggestions table").await;
    assert!(table.contains("TEE-BLK-S") && table.contains("Tees Ltd"), "{table}");
    let qty = b.find("input[name=qty_0]").await.prop("value").await.unwrap().unwrap();
    assert_eq!(qty, s["suggested_quantity"].to_string(), "the suggested quantity is the API's");
    b.screenshot("suggestions").await;
    b.click("#create-drafts").await;
    b.wait_for("#drafts a").await;
    let href = b.find("#drafts a").await.attr("href").await.unwrap().unwrap();
    let po = id_from_path(&href, "/admin/purchase-orders/");

    // The draft is what the API makes of the suggestion: its supplier, warehouse and quantity.
    let drafts = b.api_get("/v1/purchase-orders?status=draft").await["items"].as_array().unwrap().clone();
    assert_eq!(drafts.len(), 1, "{drafts:?}");
    let d = &drafts[0];
    assert_eq!((&d["id"], &d["supplier_id"], &d["warehouse"]), (&json!(po), &json!(supplier), &json!("WH1")));
    assert_eq!((&d["lines"][0]["sku"], &d["lines"][0]["quantity"]), (&json!("TEE-BLK-S"), &s["suggested_quantity"]));
    b.click("#drafts a").await;
    b.wait_for_text(&format!("Purchase order {po}")).await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_show_the_apis_totals_and_download_the_same_rows() {
    let Some(b) = Browser::start("office-reports").await else { return };
    seed(&b).await;
    // TEE-WHT-S comes in with a cost, so the report has a value to add up; 3 of TEE-BLK-M are sold.
    let r = b.server.patch("/v1/variants/TEE-WHT-S", &json!({"cost": "3.25"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    b.api_post(
        "/v1/inventory/adjustments",
        &json!({"lines": [{"sku": "TEE-WHT-S", "location": "WH1/HALL-1/SHELF-1/BIN-3", "delta": 8, "reason": "received"}]}),
    )
    .await;
    let order = b
        .api_post(
            "/v1/orders",
            &json!({"source": "webshop", "currency": "EUR", "payment_terms": "invoice",
                    "lines": [{"sku": "TEE-BLK-M", "quantity": 3, "unit_price": "19.99"}]}),
        )
        .await;
    b.api_post(&format!("/v1/orders/{}/shipments", order.body["id"]), &json!({})).await;

    b.sign_in_as_admin().await;
    b.goto("/admin/reports").await;
    let api = b.api_get("/v1/reports/valuation").await;
    let total = api["totals"][0]["value"].as_str().unwrap().to_string();
    assert!(total.parse::<f64>().unwrap() >= 26.0, "8 × 3.25 at least: {api}");
    assert_eq!(b.text_of("#valuation-totals .total").await, total);
    let table = b.text_of("#valuation-table").await;
    for i in api["items"].as_array().unwrap() {
        assert!(table.contains(i["sku"].as_str().unwrap()), "{table}");
    }
    let margin = b.text_of("#margin-table").await;
    assert!(margin.contains(&format!("order {}", order.body["id"])), "{margin}");
    b.screenshot("reports").await;

    // The CSV download: an attachment with the API's rows, field for field.
    let href = b.find("#valuation-csv").await.attr("href").await.unwrap().unwrap();
    let (client, cookie) = session_client(&b).await;
    let resp = client.get(b.url(&href)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.starts_with("attachment; filename=\"valuation-"), "{disposition}");
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let rows = csv_rows(&resp.text().await.unwrap());
    let want: Vec<Vec<String>> = api["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            ["sku", "method", "quantity", "unit_cost", "value", "currency"]
                .iter()
                .map(|k| match &i[*k] {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    v => v.to_string(),
                })
                .collect()
        })
        .collect();
    assert_eq!(rows, want);

    // A warehouse without stock: the page and the CSV agree that there is nothing.
    b.select("#v-wh", "WH2").await;
    b.click("#valuation button[type=submit]").await;
    b.wait_for_text("No stock to value.").await;
    let href = b.find("#valuation-csv").await.attr("href").await.unwrap().unwrap();
    assert!(href.contains("warehouse=WH2"), "{href}");
    let body = client.get(b.url(&href)).header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert_eq!(csv_rows(&body).len(), 0, "{body}");

    // A date that is not one is refused clearly, with no report.
    let resp = client.get(b.url("/admin/reports?as_of=yesterday")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);

    // The journal: refused with the API's reason until accounts are mapped, then the API's own CSV.
    let today = chrono::Utc::now().date_naive();
    let journal = format!("/admin/reports/journal.csv?from={today}&to={today}");
    let resp = client.get(b.url(&journal)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 303);
    assert!(resp.headers()["location"].to_str().unwrap().contains("error="));
    let map = json!({"inventory": "1400", "grni": "3200", "cogs": "5000", "shrinkage": "5100",
                     "inventory_gain": "4900", "landed_cost_clearing": "3210"});
    let r = b.server.send(b.server.client.put(b.url("/v1/settings/accounting")).json(&map)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let resp = client.get(b.url(&journal)).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers()["content-disposition"].to_str().unwrap().starts_with("attachment"));
    let ours = resp.text().await.unwrap();
    let theirs = b.server.get(&format!("/v1/accounting/journal?from={today}&to={today}&format=csv")).await.text;
    assert_eq!(ours, theirs);
    assert!(csv_rows(&ours).len() >= 2, "entries for the stock in and the sale: {ours}");
    b.close().await;
}

/// Answers every request with 200 after reading it whole (a thread of its own: the test's runtime stays free).
fn receiver(listener: std::net::TcpListener) {
    use std::io::{Read, Write};
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = match sock.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:").map(|v| v.trim().parse().unwrap_or(0)))
                            .unwrap_or(0usize);
                        if buf.len() >= end + 4 + len {
                            break;
                        }
                    }
                }
                let _ = sock.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            });
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_webhook_endpoint_shows_its_log_and_replays_an_event() {
    let Some(b) = Browser::start("office-webhooks").await else { return };
    seed(&b).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    b.sign_in_as_admin().await;

    b.goto("/admin/webhooks").await;
    b.fill("#w-url", &format!("http://127.0.0.1:{port}/hooks")).await;
    b.fill("#w-events", "order.*").await;
    b.click("#create-endpoint").await;
    let secret = b.text_of("#secret").await;
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(b.path().await, "/admin/webhooks", "the secret is in the answer, never in a URL");
    let endpoints = b.api_get("/v1/webhook-endpoints").await["items"].as_array().unwrap().clone();
    assert_eq!(endpoints.len(), 1);
    let id = endpoints[0]["id"].as_i64().unwrap();
    assert_eq!(endpoints[0]["event_types"], json!(["order.*"]));
    assert_eq!(b.api_get(&format!("/v1/webhook-endpoints/{id}/secret")).await["secret"], secret);
    b.click("#to-endpoint").await;
    b.wait_for_text("No attempts yet.").await;

    // An order: its events go to the dead port and fail.
    let order = b
        .api_post(
            "/v1/orders",
            &json!({"source": "webshop", "currency": "EUR", "payment_terms": "invoice",
                    "lines": [{"sku": "TEE-BLK-S", "quantity": 1}]}),
        )
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        b.goto(&format!("/admin/webhooks/{id}")).await;
        if b.client.find(fantoccini::Locator::Css("#deliveries button.replay")).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "no delivery attempt within 30 s");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(b.text_of("#endpoint-state").await.contains("failing since"));
    let log = b.api_get(&format!("/v1/webhook-endpoints/{id}/deliveries")).await["items"].as_array().unwrap().clone();
    let first = &log[log.len() - 1];
    assert!(first["status_code"].is_null() && first["error"].is_string(), "{first}");
    assert!(b.text_of("#deliveries").await.contains(first["event_type"].as_str().unwrap()));
    assert!(b.api_get(&format!("/v1/webhook-endpoints/{id}")).await["failing_since"].is_string());
    b.screenshot("delivery-log").await;

    // Replay the event of the newest attempt; then the receiver comes up, and a disable/enable resumes at once.
    let event: i64 =
        b.find("#deliveries input[name=event_id]").await.prop("value").await.unwrap().unwrap().parse().unwrap();
    b.click("#deliveries button.replay").await;
    b.wait_for_text("Replay queued: 1 new deliveries").await;
    receiver(std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is still free"));
    b.click("#disable").await;
    b.wait_for_text("Endpoint disabled").await;
    assert_eq!(b.api_get(&format!("/v1/webhook-endpoints/{id}")).await["enabled"], false);
    b.click("#enable").await;
    b.wait_for_text("Endpoint enabled").await;

    // Through the API: the event is delivered twice, by its first delivery and by the replay's new one.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let log = b.api_get(&format!("/v1/webhook-endpoints/{id}/deliveries?limit=500")).await;
        let delivered: Vec<i64> = log["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["event_id"].as_i64() == Some(event) && a["status_code"] == 200)
            .map(|a| a["delivery_id"].as_i64().unwrap())
            .collect();
        if delivered.len() >= 2 {
            assert_ne!(delivered[0], delivered[1], "the replay is a delivery of its own");
            break;
        }
        assert!(Instant::now() < deadline, "event {event} not delivered twice: {log}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    b.goto(&format!("/admin/webhooks/{id}")).await;
    assert!(b.text_of("#endpoint-state").await.contains("enabled"));

    // Rotating sends no idempotency key, so no stored answer keeps a secret: the same form sent twice rotates
    // twice, and the second answer's secret is the one in force.
    let secrets = b
        .client
        .execute_async(
            r##"const done = arguments[arguments.length - 1];
               const form = document.querySelector("form[action$='/rotate-secret']");
               const send = () => fetch(form.action, {method: "POST", body: new URLSearchParams(new FormData(form))})
                   .then(r => r.text())
                   .then(t => new DOMParser().parseFromString(t, "text/html").querySelector("#secret").textContent);
               send().then(a => send().then(z => done([a, z]))).catch(e => done("failed: " + e));"##,
            vec![],
        )
        .await
        .expect("the rotate form sent twice");
    let (one, two) = (secrets[0].as_str().unwrap_or(""), secrets[1].as_str().unwrap_or(""));
    assert!(one.starts_with("whsec_") && two.starts_with("whsec_"), "{secrets}");
    assert!(one != two && one != secret, "{secrets}");
    assert_eq!(b.api_get(&format!("/v1/webhook-endpoints/{id}/secret")).await["secret"], two);
    let _ = order;
    b.close().await;
}
