//! Receiving purchase orders on the floor: the open orders, and per order a scan of the item, then how many and
//! the bin (the putaway suggestion unless another bin is scanned), booked as a receipt of the order.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, User};
use crate::layout::{self, Flash};
use crate::pages::form::{refusal, scanned_item};
use crate::pages::moves::{path_of, quantity, short, url_with};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/receiving", get(list)).route("/admin/receiving/{po}", get(order).post(receive))
}

/// The statuses with goods still to come.
const RECEIVABLE: [&str; 2] = ["ordered", "partially_received"];

#[derive(Deserialize)]
struct ListQuery {
    /// A scanned or typed order number: straight to that order.
    po: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    if let Some(po) = q.po.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        let po = po.trim_start_matches(['#', 'P', 'O', '-']);
        return match po.parse::<i64>() {
            Ok(id) => Redirect::to(&format!("/admin/receiving/{id}")).into_response(),
            Err(_) => layout::failed("/admin/receiving", &refusal(format!("'{po}' is not a purchase order number."))),
        };
    }
    let flash = Flash { notice: q.notice, error: q.error };
    let mut orders = Vec::new();
    let mut more = false;
    for status in RECEIVABLE {
        match user.get(&format!("/v1/purchase-orders?status={status}&limit=200")).await {
            Ok(page) => {
                more |= !page["next_cursor"].is_null();
                orders.extend(page["items"].as_array().cloned().unwrap_or_default());
            }
            Err(f) => return layout::error_page(&user, &f),
        }
    }
    orders.sort_by_key(|o| o["id"].as_i64().unwrap_or(0));
    // Supplier names are staff's to read; the warehouse sees the supplier's number.
    let mut suppliers = std::collections::HashMap::new();
    if user.may("GET", "/v1/suppliers") {
        if let Ok(page) = user.get("/v1/suppliers?limit=500").await {
            for s in page["items"].as_array().into_iter().flatten() {
                suppliers.insert(s["id"].as_i64().unwrap_or(0), layout::txt(&s["name"]));
            }
        }
    }
    let body = html! {
        section.panel.floor-step {
            form.scan method="get" action="/admin/receiving" {
                label for="po" { "Scan or type a purchase order number" }
                input #po type="text" name="po" data-scan autofocus autocomplete="off" inputmode="numeric";
                button #open-po type="submit" { "Open" }
            }
        }
        @if orders.is_empty() {
            p.muted #no-orders { "No purchase order is waiting for goods." }
        } @else {
            div.table-wrap {
                table.floor #open-orders {
                    thead { tr { th { "Order" } th { "Supplier" } th { "Warehouse" } th { "Status" }
                        th.num { "Lines" } th.num { "Units to come" } th { "Created" } } }
                    tbody {
                        @for o in &orders {
                            @let id = o["id"].as_i64().unwrap_or(0);
                            @let supplier = o["supplier_id"].as_i64().unwrap_or(0);
                            @let to_come: i64 = lines(o).iter().map(|l| l["open"].as_i64().unwrap_or(0)).sum();
                            tr {
                                td { a.po-link href=(format!("/admin/receiving/{id}")) { "PO " (id) } }
                                td { (suppliers.get(&supplier).cloned().unwrap_or_else(|| format!("Supplier {supplier}"))) }
                                td.mono { (layout::txt(&o["warehouse"])) }
                                td { (layout::badge(&o["status"])) }
                                td.num { (lines(o).len()) }
                                td.num { (to_come) }
                                td { (layout::when(&o["created_at"])) }
                            }
                        }
                    }
                }
            }
            @if more { p.muted { "Showing the oldest 200 of each status." } }
        }
    };
    layout::page(&user, "Receiving", &flash, body).into_response()
}

fn lines(v: &Value) -> Vec<Value> {
    v["lines"].as_array().cloned().unwrap_or_default()
}

#[derive(Deserialize)]
struct OrderQuery {
    /// The scanned item: the page asks for quantity and bin next.
    item: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn order(user: User, Path(po): Path<i64>, Query(q): Query<OrderQuery>) -> Response {
    let mut flash = Flash { notice: q.notice, error: q.error };
    let order = match user.get(&format!("/v1/purchase-orders/{po}")).await {
        Ok(o) => o,
        Err(f) => return layout::error_page(&user, &f),
    };
    let status = layout::txt(&order["status"]);
    let receivable = RECEIVABLE.contains(&status.as_str());
    let may_receive = user.may("POST", "/v1/purchase-orders/{id}/receipts");
    let order_lines = lines(&order);
    // The line a scan names: by SKU as printed on the order, else by barcode or SKU through the catalog.
    let mut chosen: Option<&Value> = None;
    if let Some(code) = q.item.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
        let sku = match order_lines.iter().find(|l| l["sku"] == code) {
            Some(l) => Ok(layout::txt(&l["sku"])),
            None => scanned_item(&user, code).await,
        };
        match sku {
            Ok(sku) => {
                let same: Vec<&Value> = order_lines.iter().filter(|l| l["sku"] == sku.as_str()).collect();
                chosen = same.iter().find(|l| l["open"].as_i64().unwrap_or(0) > 0).or(same.first()).copied();
                if chosen.is_none() {
                    flash.error = Some(format!("{sku} is not on purchase order {po}."));
                }
            }
            Err(f) => flash.error = Some(f.message()),
        }
    }
    let warehouse = layout::txt(&order["warehouse"]);
    let mut suggestion: Option<(String, String)> = None;
    if let (Some(line), true) = (chosen, receivable && may_receive) {
        let sku = layout::txt(&line["sku"]);
        match user.get(&format!("/v1/putaway?sku={}&warehouse={}", enc(&sku), enc(&warehouse))).await {
            Ok(p) => {
                if let Some(bin) = p["location"].as_str() {
                    suggestion = Some((bin.to_string(), layout::txt(&p["rule"]).replace('_', " ")));
                }
            }
            // Receiving still works without a suggestion: the bin is then scanned.
            Err(f) => suggestion = Some((String::new(), format!("none: {}", f.message()))),
        }
    }
    let here = format!("/admin/receiving/{po}");
    let body = html! {
        p { (layout::badge(&order["status"])) " · into " span.mono { (warehouse) } " · supplier "
            (layout::txt(&order["supplier_id"])) " · " a href="/admin/receiving" { "all open orders" } }
        @if !receivable {
            p.panel #not-receivable { "This order is " (status.replace('_', " ")) ": nothing is to be received on it." }
        } @else if !may_receive {
            p.muted { "Your role may follow this order but not receive it." }
        } @else {
            @match chosen {
                None => {
                    section.panel.floor-step {
                        form.scan method="get" action=(here) {
                            label for="item" { "Scan an item of this order" }
                            input #item type="text" name="item" data-scan autofocus autocomplete="off" placeholder="Barcode or SKU";
                            button #find-item type="submit" { "Next" }
                        }
                    }
                }
                Some(line) => (receipt_form(&user, &here, line, suggestion.as_ref())),
            }
        }
        h2 { "Lines" }
        div.table-wrap {
            table.floor #po-lines {
                thead { tr { th { "#" } th { "SKU" } th.num { "Ordered" } th.num { "Received" } th.num { "Remaining" } th { "" } } }
                tbody {
                    @for l in &order_lines {
                        @let sku = layout::txt(&l["sku"]);
                        tr data-sku=(sku) {
                            td { (layout::txt(&l["line"])) }
                            td.mono { (sku) }
                            td.num { (layout::txt(&l["quantity"])) }
                            td.num.received { (layout::txt(&l["received"])) }
                            td.num.remaining { (layout::txt(&l["open"])) }
                            td {
                                @if receivable && may_receive && l["open"].as_i64().unwrap_or(0) > 0 {
                                    a href=(url_with(&here, &[("item", &sku)])) { "Receive" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (receipts(&order))
    };
    layout::page(&user, &format!("Receive purchase order {po}"), &flash, body).into_response()
}

fn receipt_form(user: &User, here: &str, line: &Value, suggestion: Option<&(String, String)>) -> Markup {
    let sku = layout::txt(&line["sku"]);
    let open = line["open"].as_i64().unwrap_or(0);
    html! {
        section.panel.floor-step {
            form.scan.stack method="post" action=(here) {
                (layout::csrf(user)) (layout::idem())
                input type="hidden" name="line" value=(layout::txt(&line["line"]));
                input type="hidden" name="sku" value=(sku);
                p { "Item " strong.mono #receive-sku { (sku) } " · " (open) " still to come · " a href=(here) { "other item" } }
                label for="quantity" { "How many" }
                input #quantity type="number" name="quantity" value="1" min="1" inputmode="numeric";
                label for="bin" {
                    "Bin — scan another to override"
                    @if let Some((_, rule)) = suggestion { " (suggested: " (rule) ")" }
                }
                input #bin type="text" name="bin" data-scan autofocus autocomplete="off"
                    value=(suggestion.map(|s| s.0.clone()).unwrap_or_default()) placeholder="Empty: the putaway suggestion";
                label.check { input #qc type="checkbox" name="qc" value="1"; " Into quality control (inspect before selling)" }
                label for="reference" { "Delivery note (optional)" }
                input #reference type="text" name="reference" autocomplete="off";
                button #receive type="submit" { "Receive" }
            }
        }
    }
}

fn receipts(order: &Value) -> Markup {
    let receipts = order["receipts"].as_array().cloned().unwrap_or_default();
    html! {
        h2 { "Received" }
        @if receipts.is_empty() {
            p.muted { "Nothing received yet." }
        } @else {
            div.table-wrap {
                table.floor #receipts {
                    thead { tr { th { "Receipt" } th { "When" } th { "Note" } th { "SKU" } th.num { "Quantity" } th { "Bin" } th { "State" } } }
                    tbody {
                        @for r in receipts.iter().rev() {
                            @for l in r["lines"].as_array().into_iter().flatten() {
                                tr {
                                    td { (layout::txt(&r["number"])) }
                                    td { (layout::when(&r["received_at"])) }
                                    td { (layout::txt(&r["reference"])) }
                                    td.mono { (layout::txt(&l["sku"])) }
                                    td.num { (layout::txt(&l["quantity"])) }
                                    td.mono { (layout::txt(&l["location"])) }
                                    td { (layout::txt(&l["state"]).replace('_', " ")) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct ReceiveForm {
    line: usize,
    sku: String,
    quantity: String,
    #[serde(default)]
    bin: String,
    qc: Option<String>,
    #[serde(default)]
    reference: String,
    #[serde(rename = "_idem")]
    idem: String,
}

async fn receive(user: User, Path(po): Path<i64>, Form(form): Form<ReceiveForm>) -> Response {
    let here = format!("/admin/receiving/{po}");
    let retry = url_with(&here, &[("item", &form.sku)]);
    let qty = match quantity(&form.quantity, 1) {
        Ok(q) => q,
        Err(f) => return layout::failed(&retry, &f),
    };
    let mut line = json!({"line": form.line, "quantity": qty});
    let bin = path_of(&form.bin);
    if !bin.is_empty() {
        line["location"] = json!(bin);
    }
    if form.qc.is_some() {
        line["state"] = json!("quality_control");
    }
    let mut body = json!({"lines": [line]});
    if !form.reference.trim().is_empty() {
        body["reference"] = json!(form.reference.trim());
    }
    match user.post(&format!("/v1/purchase-orders/{po}/receipts"), &body, Some(&form.idem)).await {
        Ok(order) => {
            // Where the units went is the API's answer (the putaway suggestion when no bin was given).
            let booked = order["receipts"].as_array().and_then(|r| r.last()).map(|r| r["lines"][0].clone());
            let booked = booked.unwrap_or(Value::Null);
            let mut notice = format!("Received {qty} × {} into {}", form.sku, short(&layout::txt(&booked["location"])));
            if booked["state"] == "quality_control" {
                notice.push_str(" (quality control)");
            }
            if order["status"] == "received" {
                notice.push_str(&format!(". Purchase order {po} is complete."));
            }
            layout::done(&here, &notice)
        }
        Err(f) => layout::failed(&retry, &f),
    }
}
