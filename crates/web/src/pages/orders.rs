//! The orders pages: the order list with its filters, one order with everything that happened to it and the
//! actions its state allows (capture, cancel lines, pick, ship, returns, credit memos), and the packing bench
//! where the packer scans the units into a package before it ships.
//!
//! Scanning keeps its tally in the page's address (`?scanned=2,0,1`), not on the server: a scan changes nothing
//! until the packer presses Pack, a reload shows the same tally, and the page works without a script.

use std::collections::HashMap;
use std::str::FromStr;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, Failure, User};
use crate::layout::{self, badge, txt, when, Flash};
use crate::pages::form::{blank, refusal, scanned_sku};
use crate::WebState;

/// Orders per page of the list.
const PAGE_SIZE: u32 = 50;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/orders", get(list))
        .route("/admin/orders/{id}", get(show))
        .route("/admin/orders/{id}/capture", post(capture))
        .route("/admin/orders/{id}/cancel", post(cancel))
        .route("/admin/orders/{id}/ship", post(ship))
        .route("/admin/orders/{id}/pick", post(pick))
        .route("/admin/orders/{id}/returns", post(request_return))
        .route("/admin/orders/{id}/returns/{n}/receive", post(receive_return))
        .route("/admin/orders/{id}/credit-memos", post(credit_memo))
        .route("/admin/orders/{id}/pack", get(pack_page).post(pack))
}

// ---- helpers shared with the picking pages ---------------------------------------------------------------------

/// A decimal of the API (sent as a string), zero when absent.
pub(crate) fn dec(v: &Value) -> Decimal {
    match v {
        Value::String(s) => Decimal::from_str(s).unwrap_or_default(),
        Value::Number(n) => Decimal::from_str(&n.to_string()).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

pub(crate) fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub(crate) fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A form field, trimmed; `None` when absent or blank.
pub(crate) fn field<'a>(f: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    f.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// The idempotency key the form carried.
pub(crate) fn idem(f: &HashMap<String, String>) -> Option<&str> {
    field(f, "_idem")
}

/// Quantities typed per line into fields `{prefix}{index}`: blank and 0 mean none; anything but a whole number
/// of units is refused, naming the line.
pub(crate) fn line_quantities(f: &HashMap<String, String>, prefix: &str) -> Result<Vec<(usize, i64)>, Failure> {
    let mut out = Vec::new();
    for (k, v) in f {
        let Some(index) = k.strip_prefix(prefix).and_then(|i| i.parse::<usize>().ok()) else { continue };
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match v.parse::<i64>() {
            Ok(0) => {}
            Ok(q) if q > 0 => out.push((index, q)),
            _ => return Err(refusal(format!("line {}: '{v}' is not a number of units", index + 1))),
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// A tally kept in the address (`2,0,1`): one count per position, missing or bad counts as 0.
pub(crate) fn parse_tally(s: Option<&str>, len: usize) -> Vec<i64> {
    let mut t: Vec<i64> =
        s.unwrap_or("").split(',').map(|x| x.trim().parse::<i64>().unwrap_or(0).max(0)).take(len).collect();
    t.resize(len, 0);
    t
}

pub(crate) fn tally_str(t: &[i64]) -> String {
    t.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

fn money(v: &Value, currency: &str) -> String {
    format!("{} {currency}", txt(v))
}

// ---- the list ----------------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
    source: Option<String>,
    backordered: Option<String>,
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let mut filters: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = blank(&q.status) {
        filters.push(("status", s));
    }
    if let Some(s) = blank(&q.source) {
        filters.push(("source", s));
    }
    let backordered = blank(&q.backordered).is_some();
    if backordered {
        filters.push(("backordered", "true"));
    }
    let filter_qs = serde_urlencoded::to_string(&filters).unwrap_or_default();
    let mut api = format!("/v1/orders?limit={PAGE_SIZE}&newest_first=true");
    if !filter_qs.is_empty() {
        api.push('&');
        api.push_str(&filter_qs);
    }
    if let Some(a) = blank(&q.after) {
        api.push_str(&format!("&after={}", enc(a)));
    }
    let page = match user.get(&api).await {
        Ok(p) => p,
        Err(f) => return layout::error_page(&user, &f),
    };
    let next = page["next_cursor"].as_str().map(|c| {
        let sep = if filter_qs.is_empty() { "" } else { "&" };
        format!("/admin/orders?{filter_qs}{sep}after={}", enc(c))
    });
    let first = format!("/admin/orders?{filter_qs}");
    let status = blank(&q.status).unwrap_or("");
    let flash = Flash { notice: q.notice, error: q.error };
    let body = html! {
        form.inline.filters method="get" action="/admin/orders" {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[status.is_empty()] { "Any" }
                    option value="open" selected[status == "open"] { "Open" }
                    option value="cancelled" selected[status == "cancelled"] { "Cancelled" }
                }
            }
            div {
                label for="source" { "Source or channel" }
                input #source name="source" value=(blank(&q.source).unwrap_or("")) placeholder="webshop-de, phone…";
            }
            div {
                label.check for="backordered" {
                    input #backordered type="checkbox" name="backordered" value="1" checked[backordered];
                    " Backordered only"
                }
            }
            button #filter type="submit" { "Filter" }
        }
        p.muted { "Newest first, " (PAGE_SIZE) " to a page." }
        div.table-wrap {
            table #orders {
                thead { tr {
                    th { "Order" } th { "Placed" } th { "Source" } th { "Number" } th { "Status" }
                    th { "Fulfilment" } th { "Payment" } th.num { "Lines" } th.num { "Backordered" } th.num { "Total" }
                } }
                tbody {
                    @for o in items(&page["items"]) {
                        @let owed: i64 = items(&o["lines"]).iter().map(|l| int(&l["backordered"]) + int(&l["oversold"])).sum();
                        tr {
                            td { a href=(format!("/admin/orders/{}", txt(&o["id"]))) { "#" (txt(&o["id"])) } }
                            td { (when(&o["placed_at"])) }
                            td { (txt(&o["source"])) }
                            td.mono { (txt(&o["external_number"])) }
                            td { (badge(&o["status"])) }
                            td { (badge(&o["fulfillment_status"])) }
                            td { (badge(&o["payment_status"])) }
                            td.num { (items(&o["lines"]).len()) }
                            td.num { @if owed > 0 { (owed) } @else { span.muted { "—" } } }
                            td.num { (money(&o["total"], o["currency"].as_str().unwrap_or(""))) }
                        }
                    }
                    @if items(&page["items"]).is_empty() {
                        tr { td colspan="10" .muted { "No orders match." } }
                    }
                }
            }
        }
        p.pager {
            @if blank(&q.after).is_some() { a.button.secondary href=(first) { "First page" } " " }
            @if let Some(n) = &next { a.button.secondary #next-page href=(n) { "Next page" } }
        }
    };
    layout::page(&user, "Orders", &flash, body).into_response()
}

// ---- one order ---------------------------------------------------------------------------------------------------

fn order_path(id: i64) -> String {
    format!("/admin/orders/{id}")
}

/// Units of each line still to be returned: shipped, less what returns asked for already.
fn returnable(order: &Value) -> Vec<i64> {
    let mut left: Vec<i64> = items(&order["lines"]).iter().map(|l| int(&l["shipped"])).collect();
    for r in items(&order["returns"]) {
        for rl in items(&r["lines"]) {
            if let Some(n) = rl["line"].as_u64().and_then(|i| left.get_mut(i as usize)) {
                *n -= int(&rl["quantity"]);
            }
        }
    }
    left
}

/// The warehouses an order's committed units sit in (a pick list is per warehouse).
fn warehouses(order: &Value) -> Vec<String> {
    let mut out: Vec<String> = items(&order["lines"])
        .iter()
        .flat_map(|l| items(&l["allocations"]).iter())
        .filter_map(|a| a["warehouse"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    out
}

async fn show(user: User, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let order = match user.get(&format!("/v1/orders/{id}")).await {
        Ok(o) => o,
        Err(f) => return layout::error_page(&user, &f),
    };
    let customer = match order["customer_id"].as_i64() {
        Some(c) if user.may("GET", "/v1/customers/{id}") => user.get(&format!("/v1/customers/{c}")).await.ok(),
        _ => None,
    };
    let open_returns = items(&order["returns"])
        .iter()
        .any(|r| items(&r["lines"]).iter().any(|l| int(&l["received"]) < int(&l["quantity"])));
    let bins = if open_returns && user.may("POST", "/v1/returns/{id}/receipts") {
        user.get("/v1/locations?kind=bin&limit=500").await.ok()
    } else {
        None
    };
    let body = order_body(&user, id, &order, customer.as_ref(), bins.as_ref());
    layout::page(&user, &format!("Order #{id}"), &flash, body).into_response()
}

fn order_body(user: &User, id: i64, order: &Value, customer: Option<&Value>, bins: Option<&Value>) -> Markup {
    let currency = order["currency"].as_str().unwrap_or("");
    let lines = items(&order["lines"]);
    let open = order["status"] == "open";
    let committed: i64 = lines.iter().map(|l| int(&l["committed"])).sum();
    let net = dec(&order["paid"]["captured"]) - dec(&order["paid"]["refunded"]);
    let to_capture = (dec(&order["total"]) - net).max(Decimal::ZERO);
    let invoice = order["payment_terms"] == "invoice";
    let must_pay_first = !invoice && dec(&order["paid"]["captured"]) < dec(&order["total"]);
    let cancellable: Vec<i64> =
        lines.iter().map(|l| int(&l["quantity"]) - int(&l["cancelled"]) - int(&l["shipped"])).collect();
    let returnable = returnable(order);
    html! {
        div.cards.order-summary {
            div.card { div.muted { "Status" } div { (badge(&order["status"])) } }
            div.card { div.muted { "Fulfilment" } div #fulfillment { (badge(&order["fulfillment_status"])) } }
            div.card { div.muted { "Payment" } div #payment { (badge(&order["payment_status"])) } }
            div.card { div.muted { "Total" } div.big { (money(&order["total"], currency)) } }
        }
        div.panel {
            dl.facts {
                dt { "Source" } dd { (txt(&order["source"])) @if !order["external_number"].is_null() { " · " span.mono { (txt(&order["external_number"])) } } }
                dt { "Placed" } dd { (when(&order["placed_at"])) }
                dt { "Payment terms" } dd { (txt(&order["payment_terms"])) }
                dt { "Customer" } dd #customer {
                    @match (customer, order["customer_id"].as_i64()) {
                        (Some(c), _) => {
                            (txt(&c["name"]))
                            @if !c["email"].is_null() { " · " (txt(&c["email"])) }
                            @if !c["phone"].is_null() { " · " (txt(&c["phone"])) }
                            @for a in items(&c["addresses"]).iter().take(1) {
                                br; span.muted { (address(a)) }
                            }
                        }
                        (None, Some(c)) => { "customer " (c) }
                        (None, None) => { span.muted { "none" } }
                    }
                }
                @if !order["notes"].is_null() { dt { "Notes" } dd { (txt(&order["notes"])) } }
            }
        }

        h2 { "Lines" }
        div.table-wrap {
            table #lines {
                thead { tr {
                    th { "#" } th { "SKU" } th.num { "Ordered" } th.num { "Committed" } th.num { "Backordered" }
                    th.num { "Shipped" } th.num { "Cancelled" } th { "Allocations" } th { "Status" } th.num { "Total" }
                } }
                tbody {
                    @for l in lines {
                        tr {
                            td { (int(&l["line"]) + 1) }
                            td.mono { (txt(&l["sku"])) }
                            td.num { (txt(&l["quantity"])) }
                            td.num.committed { (txt(&l["committed"])) }
                            td.num {
                                (int(&l["backordered"]) + int(&l["oversold"]))
                                @if !l["expected_date"].is_null() { br; span.muted { "expected " (txt(&l["expected_date"])) } }
                            }
                            td.num.shipped { (txt(&l["shipped"])) }
                            td.num.cancelled { (txt(&l["cancelled"])) }
                            td {
                                @for a in items(&l["allocations"]) {
                                    div { span.mono { (txt(&a["bin"])) } " × " (txt(&a["quantity"])) }
                                }
                            }
                            td { (badge(&l["fulfillment_status"])) }
                            td.num { (money(&l["total"], currency)) }
                        }
                    }
                }
            }
        }

        @if open && committed > 0 {
            div.actions.panel {
                h2 { "Fulfil" }
                @if must_pay_first { p.muted { "Capture the payment first: a prepaid order ships once it is paid." } }
                div.action-row {
                    @if user.may("POST", "/v1/pick-lists") {
                        @for w in warehouses(order) {
                            form.inline method="post" action=(format!("/admin/orders/{id}/pick")) {
                                (layout::csrf(user)) (layout::idem())
                                input type="hidden" name="warehouse" value=(w);
                                button.secondary.pick type="submit" { "Pick list in " (w) }
                            }
                        }
                    }
                    @if user.may("POST", "/v1/orders/{id}/packages") {
                        a.button.secondary #pack-link href=(format!("/admin/orders/{id}/pack")) { "Pack" }
                    }
                }
                @if user.may("POST", "/v1/orders/{id}/shipments") { (ship_form(user, id)) }
            }
        }

        h2 { "Payments" }
        div.panel {
            p {
                "Captured " (money(&order["paid"]["captured"], currency))
                " · authorized " (money(&order["paid"]["authorized"], currency))
                " · refunded " (money(&order["paid"]["refunded"], currency))
            }
            @if !items(&order["payments"]).is_empty() {
                div.table-wrap { table #payments {
                    thead { tr { th { "When" } th { "Kind" } th.num { "Amount" } th { "Reference" } } }
                    tbody { @for p in items(&order["payments"]) { tr {
                        td { (when(&p["at"])) } td { (txt(&p["kind"])) } td.num { (money(&p["amount"], currency)) }
                        td.mono { (txt(&p["reference"])) }
                    } } }
                } }
            }
            @if open && to_capture > Decimal::ZERO && user.may("POST", "/v1/orders/{id}/payments") {
                form.inline #capture-form method="post" action=(format!("/admin/orders/{id}/capture")) {
                    (layout::csrf(user)) (layout::idem())
                    input type="hidden" name="currency" value=(currency);
                    div {
                        label for="amount" { "Amount (" (currency) ")" }
                        input #amount name="amount" inputmode="decimal" required value=(to_capture.to_string());
                    }
                    div {
                        label for="reference" { "Provider reference" }
                        input #reference name="reference" placeholder="optional";
                    }
                    button #capture type="submit" { "Capture payment" }
                }
            }
        }

        h2 { "Shipments" }
        @if items(&order["shipments"]).is_empty() { p.muted { "Nothing shipped yet." } }
        @else {
            div.table-wrap { table #shipments {
                thead { tr { th { "Shipped" } th { "Units" } th { "Carrier" } th { "Tracking" } th { "Packages" } } }
                tbody { @for s in items(&order["shipments"]) { tr {
                    td { (when(&s["shipped_at"])) }
                    td { @for sl in items(&s["lines"]) {
                        div { (txt(&sl["quantity"])) " × " span.mono { (sku_of(lines, &sl["line"])) } }
                    } }
                    td { (txt(&s["carrier"])) @if !s["service"].is_null() { " " (txt(&s["service"])) } }
                    td.mono {
                        @match s["tracking_url"].as_str().filter(|u| u.starts_with("https://") || u.starts_with("http://")) {
                            Some(u) => { a href=(u) rel="noreferrer" { (txt(&s["tracking_number"])) } }
                            None => { (txt(&s["tracking_number"])) }
                        }
                    }
                    td { @for p in items(&s["packages"]) { div { (package(p)) } } }
                } } }
            } }
        }

        h2 { "Returns" }
        @if items(&order["returns"]).is_empty() { p.muted { "No returns." } }
        @for r in items(&order["returns"]) { (return_panel(user, id, r, lines, bins)) }
        @if returnable.iter().any(|n| *n > 0) && user.may("POST", "/v1/returns") {
            (return_form(user, id, lines, &returnable))
        }

        @if open && cancellable.iter().any(|n| *n > 0) && user.may("POST", "/v1/orders/{id}/cancel") {
            h2 { "Cancel" }
            div.panel {
                form.stack #cancel-form method="post" action=(format!("/admin/orders/{id}/cancel")) {
                    (layout::csrf(user)) (layout::idem())
                    input type="hidden" name="scope" value="lines";
                    p.muted { "Units to cancel per line; backordered units go first, committed ones go back to stock." }
                    div.table-wrap { table {
                        thead { tr { th { "SKU" } th.num { "Cancellable" } th { "Cancel" } } }
                        tbody { @for (i, l) in lines.iter().enumerate() { @if cancellable[i] > 0 { tr {
                            td.mono { (txt(&l["sku"])) }
                            td.num { (cancellable[i]) }
                            td { input.qty type="number" min="0" max=(cancellable[i]) name=(format!("cancel_{i}")) aria-label=(format!("Units of {} to cancel", txt(&l["sku"]))); }
                        } } } }
                    } }
                    label for="cancel-reason" { "Reason" }
                    input #cancel-reason name="reason" placeholder="customer asked, out of stock…";
                    div { button #cancel-lines type="submit" { "Cancel these units" } }
                }
                form.inline method="post" action=(format!("/admin/orders/{id}/cancel")) data-confirm="Cancel every unit still open on this order?" {
                    (layout::csrf(user)) (layout::idem())
                    input type="hidden" name="scope" value="all";
                    button.danger #cancel-order type="submit" { "Cancel the whole order" }
                }
            }
        }

        h2 { "Credit memos" }
        @if items(&order["credit_memos"]).is_empty() { p.muted { "None." } }
        @else {
            div.table-wrap { table #credit-memos {
                thead { tr { th { "When" } th.num { "Amount" } th { "Reason" } } }
                tbody { @for m in items(&order["credit_memos"]) { tr {
                    td { (when(&m["created_at"])) } td.num { (money(&m["amount"], currency)) } td { (txt(&m["reason"])) }
                } } }
            } }
        }
        @if user.may("POST", "/v1/orders/{id}/credit-memos") {
            form.inline #credit-memo-form method="post" action=(format!("/admin/orders/{id}/credit-memos")) {
                (layout::csrf(user)) (layout::idem())
                div { label for="memo-amount" { "Amount (" (currency) ")" } input #memo-amount name="amount" inputmode="decimal" required; }
                div { label for="memo-reason" { "Reason" } input #memo-reason name="reason" required; }
                button.secondary #credit-memo type="submit" { "Record credit memo" }
            }
        }
    }
}

fn ship_form(user: &User, id: i64) -> Markup {
    html! {
        form.inline.ship-form method="post" action=(format!("/admin/orders/{id}/ship")) {
            (layout::csrf(user)) (layout::idem())
            div { label for="carrier" { "Carrier" } input #carrier name="carrier" placeholder="DHL"; }
            div { label for="service" { "Service" } input #service name="service" placeholder="Paket"; }
            div { label for="tracking" { "Tracking number" } input #tracking name="tracking_number"; }
            div { label for="tracking-url" { "Tracking link" } input #tracking-url name="tracking_url" type="url"; }
            button #ship type="submit" { "Ship committed units" }
        }
    }
}

fn sku_of(lines: &[Value], line: &Value) -> String {
    line.as_u64().and_then(|i| lines.get(i as usize)).map(|l| txt(&l["sku"])).unwrap_or_else(|| txt(line))
}

fn package(p: &Value) -> String {
    let mut s = format!("{} g", txt(&p["weight_grams"]));
    if let (Some(l), Some(w), Some(h)) = (p["length_mm"].as_i64(), p["width_mm"].as_i64(), p["height_mm"].as_i64()) {
        s.push_str(&format!(" · {l}×{w}×{h} mm"));
    }
    s
}

fn address(a: &Value) -> String {
    let Some(obj) = a.as_object() else { return txt(a) };
    obj.values().filter_map(Value::as_str).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
}

const DISPOSITIONS: [(&str, &str); 4] = [
    ("restock", "Restock (available)"),
    ("quality_control", "Quality control"),
    ("damaged", "Damaged"),
    ("scrap", "Scrap"),
];

fn return_panel(user: &User, order: i64, r: &Value, lines: &[Value], bins: Option<&Value>) -> Markup {
    let rid = txt(&r["id"]);
    let n = rid.rsplit('-').next().unwrap_or("").to_string();
    let rlines = items(&r["lines"]);
    let open: Vec<(usize, i64)> = rlines
        .iter()
        .enumerate()
        .map(|(j, l)| (j, int(&l["quantity"]) - int(&l["received"])))
        .filter(|(_, left)| *left > 0)
        .collect();
    let default_bin = |l: &Value| -> String {
        l["line"]
            .as_u64()
            .and_then(|i| lines.get(i as usize))
            .and_then(|ol| items(&ol["allocations"]).first().and_then(|a| a["bin"].as_str()))
            .unwrap_or("")
            .to_string()
    };
    html! {
        div.panel.return-panel {
            h3 { "Return " (rid) " " span.muted { "requested " (when(&r["requested_at"])) } }
            div.table-wrap { table {
                thead { tr { th { "SKU" } th.num { "Units" } th { "Reason" } th.num { "Received" } th { "Done with them" } } }
                tbody { @for l in rlines { tr {
                    td.mono { (sku_of(lines, &l["line"])) }
                    td.num { (txt(&l["quantity"])) }
                    td { (txt(&l["reason"])) }
                    td.num { (txt(&l["received"])) }
                    td { @for d in items(&l["dispositions"]) { div { (txt(&d[1])) " " (txt(&d[0]).replace('_', " ")) } } }
                } } }
            } }
            @if !open.is_empty() && user.may("POST", "/v1/returns/{id}/receipts") {
                form.stack.receive-form method="post" action=(format!("/admin/orders/{order}/returns/{n}/receive")) {
                    (layout::csrf(user)) (layout::idem())
                    @for (j, left) in &open {
                        @let l = &rlines[*j];
                        div.receive-line {
                            strong.mono { (sku_of(lines, &l["line"])) }
                            label for=(format!("rq{n}-{j}")) { "Units received" }
                            input.qty #(format!("rq{n}-{j}")) type="number" min="0" max=(left) name=(format!("q{j}")) value=(left);
                            label for=(format!("rd{n}-{j}")) { "Disposition" }
                            select #(format!("rd{n}-{j}")) name=(format!("d{j}")) {
                                @for (v, label) in DISPOSITIONS { option value=(v) { (label) } }
                            }
                            label for=(format!("rb{n}-{j}")) { "Bin (not for scrap)" }
                            input #(format!("rb{n}-{j}")) name=(format!("b{j}")) list="return-bins" value=(default_bin(l)) placeholder="WH1/HALL-1/SHELF-1/BIN-1";
                        }
                    }
                    @if let Some(b) = bins {
                        datalist #return-bins { @for bin in items(&b["items"]) { option value=(txt(&bin["path"])) {} } }
                    }
                    div { button.receive type="submit" { "Receive return " (rid) } }
                }
            }
        }
    }
}

fn return_form(user: &User, id: i64, lines: &[Value], returnable: &[i64]) -> Markup {
    html! {
        div.panel {
            h3 { "New return" }
            form.stack #return-form method="post" action=(format!("/admin/orders/{id}/returns")) {
                (layout::csrf(user)) (layout::idem())
                div.table-wrap { table {
                    thead { tr { th { "SKU" } th.num { "Returnable" } th { "Units coming back" } } }
                    tbody { @for (i, l) in lines.iter().enumerate() { @if returnable[i] > 0 { tr {
                        td.mono { (txt(&l["sku"])) }
                        td.num { (returnable[i]) }
                        td { input.qty type="number" min="0" max=(returnable[i]) name=(format!("return_{i}")) aria-label=(format!("Units of {} coming back", txt(&l["sku"]))); }
                    } } } }
                } }
                label for="return-reason" { "Reason" }
                input #return-reason name="reason" required placeholder="too small, damaged in transit…";
                div { button.secondary #create-return type="submit" { "Create return" } }
            }
        }
    }
}

// ---- actions -----------------------------------------------------------------------------------------------------

type Fields = HashMap<String, String>;

async fn capture(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let Some(amount) = field(&f, "amount") else {
        return layout::failed(&back, &refusal("Enter the amount to capture."));
    };
    if Decimal::from_str(amount).is_err() {
        return layout::failed(&back, &refusal(format!("'{amount}' is not an amount")));
    }
    let mut body = json!({"kind": "capture", "amount": amount, "currency": field(&f, "currency").unwrap_or("")});
    if let Some(r) = field(&f, "reference") {
        body["reference"] = json!(r);
    }
    match user.post(&format!("/v1/orders/{id}/payments"), &body, idem(&f)).await {
        Ok(o) => layout::done(
            &back,
            &format!(
                "Captured {amount} {}: the order is {}.",
                txt(&o["currency"]),
                txt(&o["payment_status"]).replace('_', " ")
            ),
        ),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn cancel(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let lines = match line_quantities(&f, "cancel_") {
        Ok(l) => l,
        Err(e) => return layout::failed(&back, &e),
    };
    let whole = field(&f, "scope") == Some("all");
    // An empty list cancels the whole order: a lines form sent with no quantity must not do that.
    if !whole && lines.is_empty() {
        return layout::failed(&back, &refusal("Enter how many units to cancel on at least one line."));
    }
    let mut body = json!({
        "lines": lines.iter().map(|(line, quantity)| json!({"line": line, "quantity": quantity})).collect::<Vec<_>>(),
    });
    if let Some(r) = field(&f, "reason") {
        body["reason"] = json!(r);
    }
    match user.post(&format!("/v1/orders/{id}/cancel"), &body, idem(&f)).await {
        Ok(c) => {
            let currency = txt(&c["order"]["currency"]);
            let mut msg = format!("Cancelled units worth {} {currency}.", txt(&c["cancelled_amount"]));
            if dec(&c["refund_due"]) > Decimal::ZERO {
                msg.push_str(&format!(" Refund due: {} {currency}.", txt(&c["refund_due"])));
            }
            layout::done(&back, &msg)
        }
        Err(e) => layout::failed(&back, &e),
    }
}

async fn ship(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let mut body = json!({});
    for name in ["carrier", "service", "tracking_number", "tracking_url"] {
        if let Some(v) = field(&f, name) {
            body[name] = json!(v);
        }
    }
    match user.post(&format!("/v1/orders/{id}/shipments"), &body, idem(&f)).await {
        Ok(o) => {
            let units: i64 = items(&o["shipments"])
                .last()
                .map(|s| items(&s["lines"]).iter().map(|l| int(&l["quantity"])).sum())
                .unwrap_or(0);
            layout::done(&back, &format!("Shipped {units} units."))
        }
        Err(e) => layout::failed(&back, &e),
    }
}

async fn pick(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let Some(warehouse) = field(&f, "warehouse") else { return layout::failed(&back, &refusal("Choose a warehouse.")) };
    let body = json!({"warehouse": warehouse, "order_ids": [id]});
    match user.post("/v1/pick-lists", &body, idem(&f)).await {
        Ok(l) => layout::done(&format!("/admin/pick-lists/{}", txt(&l["id"])), &format!("Pick list for order #{id}.")),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn request_return(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let lines = match line_quantities(&f, "return_") {
        Ok(l) => l,
        Err(e) => return layout::failed(&back, &e),
    };
    if lines.is_empty() {
        return layout::failed(&back, &refusal("Enter how many units come back on at least one line."));
    }
    let Some(reason) = field(&f, "reason") else {
        return layout::failed(&back, &refusal("Give the reason for the return."));
    };
    let body = json!({
        "order_id": id,
        "lines": lines.iter().map(|(l, q)| json!({"line": l, "quantity": q, "reason": reason})).collect::<Vec<_>>(),
    });
    match user.post("/v1/returns", &body, idem(&f)).await {
        Ok(r) => layout::done(&back, &format!("Return {} opened.", txt(&r["id"]))),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn receive_return(user: User, Path((id, n)): Path<(i64, u32)>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let quantities = match line_quantities(&f, "q") {
        Ok(l) => l,
        Err(e) => return layout::failed(&back, &e),
    };
    if quantities.is_empty() {
        return layout::failed(&back, &refusal("Enter how many units were received on at least one line."));
    }
    let mut lines = Vec::new();
    for (j, q) in quantities {
        let disposition = field(&f, &format!("d{j}")).unwrap_or("restock");
        let mut l = json!({"line": j, "quantity": q, "disposition": disposition});
        if disposition != "scrap" {
            if let Some(bin) = field(&f, &format!("b{j}")) {
                l["bin"] = json!(bin);
            }
        }
        lines.push(l);
    }
    let rid = format!("{id}-{n}");
    match user.post(&format!("/v1/returns/{}/receipts", enc(&rid)), &json!({"lines": lines}), idem(&f)).await {
        Ok(_) => layout::done(&back, &format!("Return {rid} received.")),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn credit_memo(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = order_path(id);
    let (Some(amount), Some(reason)) = (field(&f, "amount"), field(&f, "reason")) else {
        return layout::failed(&back, &refusal("A credit memo needs an amount and a reason."));
    };
    if Decimal::from_str(amount).is_err() {
        return layout::failed(&back, &refusal(format!("'{amount}' is not an amount")));
    }
    let body = json!({"amount": amount, "reason": reason});
    match user.post(&format!("/v1/orders/{id}/credit-memos"), &body, idem(&f)).await {
        Ok(o) => layout::done(&back, &format!("Credit memo of {amount} {} recorded.", txt(&o["currency"]))),
        Err(e) => layout::failed(&back, &e),
    }
}

// ---- packing -----------------------------------------------------------------------------------------------------

#[derive(Debug, Default, Deserialize)]
struct PackQuery {
    scanned: Option<String>,
    scan: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn pack_path(id: i64, tally: &[i64]) -> String {
    format!("/admin/orders/{id}/pack?scanned={}", enc(&tally_str(tally)))
}

/// Counts a scan against the first line of that SKU with committed units still unscanned.
fn count_scan(lines: &[Value], tally: &mut [i64], sku: &str) -> Result<String, String> {
    let mut on_order = false;
    for (i, l) in lines.iter().enumerate() {
        if l["sku"].as_str() != Some(sku) {
            continue;
        }
        on_order = true;
        let committed = int(&l["committed"]);
        if tally[i] < committed {
            tally[i] += 1;
            return Ok(format!("{sku}: {} of {committed} scanned.", tally[i]));
        }
    }
    if on_order {
        Err(format!("Every committed unit of {sku} is scanned already."))
    } else {
        Err(format!("{sku} is not on this order's committed lines: put it back."))
    }
}

async fn pack_page(user: User, Path(id): Path<i64>, Query(q): Query<PackQuery>) -> Response {
    let order = match user.get(&format!("/v1/orders/{id}")).await {
        Ok(o) => o,
        Err(f) => return layout::error_page(&user, &f),
    };
    let lines = items(&order["lines"]);
    let mut tally = parse_tally(q.scanned.as_deref(), lines.len());
    for (t, l) in tally.iter_mut().zip(lines) {
        *t = (*t).min(int(&l["committed"]));
    }
    if let Some(code) = q.scan.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let skus: Vec<&str> = lines.iter().filter_map(|l| l["sku"].as_str()).collect();
        let sku = match scanned_sku(&user, code, Some(&skus)).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return layout::failed(&pack_path(id, &tally), &refusal(format!("No item has the code {code}.")))
            }
            Err(e) => return layout::failed(&pack_path(id, &tally), &e),
        };
        // Back to the page without the scan, so that reloading it counts nothing twice.
        return match count_scan(lines, &mut tally, &sku) {
            Ok(msg) => layout::done(&pack_path(id, &tally), &msg),
            Err(msg) => layout::failed(&pack_path(id, &tally), &refusal(msg)),
        };
    }
    let flash = Flash { notice: q.notice, error: q.error };
    let to_pack: Vec<usize> = (0..lines.len()).filter(|i| int(&lines[*i]["committed"]) > 0).collect();
    let complete = !to_pack.is_empty() && to_pack.iter().all(|i| tally[*i] >= int(&lines[*i]["committed"]));
    let tally_s = tally_str(&tally);
    let body = html! {
        p { a href=(order_path(id)) { "← Order #" (id) } " · " (badge(&order["payment_status"])) " " (badge(&order["fulfillment_status"])) }
        @if to_pack.is_empty() {
            p.panel #nothing-to-pack { "Nothing to pack: no units of this order are committed and unshipped." }
        } @else {
            form.scan.no-print method="get" action=(format!("/admin/orders/{id}/pack")) {
                input type="hidden" name="scanned" value=(tally_s);
                label for="scan" { "Scan each item (barcode or SKU)" }
                input #scan type="text" name="scan" data-scan autofocus autocomplete="off" inputmode="text";
            }
            div.table-wrap { table #pack-lines {
                thead { tr { th { "SKU" } th.num { "To pack" } th.num { "Scanned" } th { "From" } } }
                tbody { @for i in &to_pack {
                    @let l = &lines[*i];
                    @let done = tally[*i] >= int(&l["committed"]);
                    tr class=(if done { "done" } else { "" }) {
                        td.mono { (txt(&l["sku"])) }
                        td.num { (txt(&l["committed"])) }
                        td.num.scanned { (tally[*i]) }
                        td { @for a in items(&l["allocations"]) { div.mono { (txt(&a["bin"])) } } }
                    }
                } }
            } }
            @if user.may("POST", "/v1/orders/{id}/packages") {
                h2 { "1. Package" }
                form.inline #pack-form method="post" action=(format!("/admin/orders/{id}/pack")) {
                    (layout::csrf(&user)) (layout::idem())
                    input type="hidden" name="scanned" value=(tally_s);
                    div { label for="weight" { "Weight (g)" } input #weight name="weight_grams" type="number" min="1" required; }
                    div { label for="length" { "Length (mm)" } input #length name="length_mm" type="number" min="0"; }
                    div { label for="width" { "Width (mm)" } input #width name="width_mm" type="number" min="0"; }
                    div { label for="height" { "Height (mm)" } input #height name="height_mm" type="number" min="0"; }
                    button #pack type="submit" { "Pack" }
                }
                @if !complete { p.muted { "Pack once every unit is scanned." } }
            }
            @if user.may("POST", "/v1/orders/{id}/shipments") {
                h2 { "2. Ship" }
                @if order["payment_terms"] != "invoice" && dec(&order["paid"]["captured"]) < dec(&order["total"]) {
                    p.flash.error { "Not paid yet: capture the payment on the order page before shipping." }
                }
                (ship_form(&user, id))
            }
        }
    };
    layout::page(&user, &format!("Pack order #{id}"), &flash, body).into_response()
}

fn grams(f: &Fields, name: &str, required: bool) -> Result<Option<i64>, Failure> {
    match field(f, name) {
        None if required => Err(refusal("Enter the package's weight in grams.")),
        None => Ok(None),
        Some(v) => v.parse::<i64>().map(Some).map_err(|_| refusal(format!("{name}: '{v}' is not a whole number"))),
    }
}

async fn pack(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let order = match user.get(&format!("/v1/orders/{id}")).await {
        Ok(o) => o,
        Err(e) => return layout::failed(&order_path(id), &e),
    };
    let lines = items(&order["lines"]);
    let tally = parse_tally(field(&f, "scanned"), lines.len());
    let back = pack_path(id, &tally);
    // The scan is the check that the right units are in the box: everything committed must have been scanned.
    let missing: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| tally[*i] < int(&l["committed"]))
        .map(|(i, l)| format!("{} of {} × {}", tally[i], txt(&l["committed"]), txt(&l["sku"])))
        .collect();
    if !missing.is_empty() {
        return layout::failed(&back, &refusal(format!("Scan every unit first: {} scanned.", missing.join(", "))));
    }
    let mut package = json!({});
    for (name, required) in [("weight_grams", true), ("length_mm", false), ("width_mm", false), ("height_mm", false)] {
        match grams(&f, name, required) {
            Ok(Some(v)) => package[name] = json!(v),
            Ok(None) => {}
            Err(e) => return layout::failed(&back, &e),
        }
    }
    match user.post(&format!("/v1/orders/{id}/packages"), &json!({"packages": [package]}), idem(&f)).await {
        Ok(_) => layout::done(&back, &format!("Packed one package of {} g: ship it below.", package["weight_grams"])),
        Err(e) => layout::failed(&back, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn quantities_skip_blanks_and_zeros_and_refuse_the_rest() {
        let f = fields(&[("cancel_2", "3"), ("cancel_0", ""), ("cancel_1", "0"), ("reason", "x"), ("_idem", "k")]);
        assert_eq!(line_quantities(&f, "cancel_").unwrap(), vec![(2, 3)]);
        for bad in ["-1", "1.5", "two"] {
            let f = fields(&[("cancel_0", bad)]);
            let e = line_quantities(&f, "cancel_").unwrap_err();
            assert_eq!(e.status, axum::http::StatusCode::UNPROCESSABLE_ENTITY);
            assert!(e.detail.contains("line 1"), "{}", e.detail);
        }
    }

    #[test]
    fn tallies_are_as_long_as_the_lines_whatever_the_address_says() {
        assert_eq!(parse_tally(Some("2,x,-4,7,9"), 4), vec![2, 0, 0, 7]);
        assert_eq!(parse_tally(None, 2), vec![0, 0]);
        assert_eq!(tally_str(&[1, 0, 3]), "1,0,3");
    }

    #[test]
    fn a_scan_counts_against_committed_units_only() {
        let lines = vec![
            json!({"sku": "A", "committed": 0}),
            json!({"sku": "A", "committed": 2}),
            json!({"sku": "B", "committed": 1}),
        ];
        let mut t = vec![0, 0, 0];
        assert!(count_scan(&lines, &mut t, "A").is_ok());
        assert!(count_scan(&lines, &mut t, "A").is_ok());
        assert_eq!(t, vec![0, 2, 0]);
        assert!(count_scan(&lines, &mut t, "A").unwrap_err().contains("already"));
        assert!(count_scan(&lines, &mut t, "C").unwrap_err().contains("not on this order"));
        assert_eq!(t, vec![0, 2, 0]);
    }

    #[test]
    fn returnable_units_are_shipped_less_returns_asked_for() {
        let order = json!({
            "lines": [{"shipped": 3}, {"shipped": 1}],
            "returns": [{"lines": [{"line": 0, "quantity": 2}]}],
        });
        assert_eq!(returnable(&order), vec![1, 1]);
    }
}
