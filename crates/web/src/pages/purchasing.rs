//! The purchasing pages: suppliers with their items, and purchase orders (list, create, the order's lines,
//! receipts and landed costs, and the steps its status allows). Receiving itself is the receiving page's.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, User};
use crate::layout::{self, badge, txt, when, Flash};
use crate::pages::form::refuse_field;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/suppliers", get(suppliers).post(create_supplier))
        .route("/admin/suppliers/{id}", get(supplier))
        .route("/admin/suppliers/{id}/items", post(save_items))
        .route("/admin/purchase-orders", get(purchase_orders).post(create_purchase_order))
        .route("/admin/purchase-orders/{id}", get(purchase_order))
        .route("/admin/purchase-orders/{id}/step", post(step))
        .route("/admin/purchase-orders/{id}/landed-costs", post(add_landed_cost))
}

/// Empty rows offered under a supplier's items and a new order's lines: enough for a typical entry, and a save
/// brings fresh ones.
const BLANK_ROWS: usize = 5;

/// A whole number from a form field, or the field's error.
pub(crate) fn parse_int(fields: &HashMap<String, String>, name: &str) -> Result<Option<i64>, (String, String)> {
    match fields.get(name).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s.parse::<i64>().map(Some).map_err(|_| (name.to_string(), format!("{s:?} is not a whole number"))),
    }
}

fn field<'a>(fields: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    fields.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

/// Suppliers by id, for naming them in lists of orders (one call, not one per row).
async fn supplier_names(user: &User) -> HashMap<i64, String> {
    let mut names = HashMap::new();
    if let Ok(v) = user.get("/v1/suppliers?limit=500").await {
        for s in v["items"].as_array().into_iter().flatten() {
            if let (Some(id), Some(name)) = (s["id"].as_i64(), s["name"].as_str()) {
                names.insert(id, name.to_string());
            }
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------------------------
// Suppliers
// ---------------------------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ListQuery {
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

impl ListQuery {
    fn flash(&self) -> Flash {
        Flash { notice: self.notice.clone(), error: self.error.clone() }
    }
}

fn next_link(base: &str, extra: &str, page: &Value) -> Markup {
    html! {
        @if let Some(next) = page["next_cursor"].as_str() {
            p { a.button.secondary href=(format!("{base}?after={}{extra}", enc(next))) { "Next page" } }
        }
    }
}

async fn suppliers(user: User, Query(q): Query<ListQuery>) -> Response {
    let path = match &q.after {
        Some(a) => format!("/v1/suppliers?limit=100&after={}", enc(a)),
        None => "/v1/suppliers?limit=100".to_string(),
    };
    let page = match user.get(&path).await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if items.is_empty() {
            p.muted { "No suppliers yet." }
        } @else {
            div.table-wrap {
                table #suppliers {
                    thead { tr { th { "Name" } th { "Currency" } th.num { "Lead time (days)" } th.num { "Items" } th { "Contact" } } }
                    tbody {
                        @for s in &items {
                            tr {
                                td { a href=(format!("/admin/suppliers/{}", s["id"])) { (txt(&s["name"])) } }
                                td { (txt(&s["currency"])) }
                                td.num { (txt(&s["lead_time_days"])) }
                                td.num { (s["items"].as_array().map_or(0, Vec::len)) }
                                td { (contact(&s["contact"])) }
                            }
                        }
                    }
                }
            }
            (next_link("/admin/suppliers", "", &page))
        }
        @if user.may("POST", "/v1/suppliers") {
            h2 { "New supplier" }
            form.stack #new-supplier method="post" action="/admin/suppliers" {
                (layout::csrf(&user)) (layout::idem())
                label for="s-name" { "Name" }
                input #s-name name="name" required maxlength="500";
                label for="s-currency" { "Currency (ISO 4217)" }
                input #s-currency name="currency" required value="EUR" maxlength="3" minlength="3";
                label for="s-lead" { "Lead time in days" }
                input #s-lead name="lead_time_days" type="number" min="0" value="7";
                label for="s-contact" { "Contact name" }
                input #s-contact name="contact_name" maxlength="500";
                label for="s-email" { "Contact email" }
                input #s-email name="contact_email" type="email" maxlength="500";
                button #create-supplier type="submit" { "Create supplier" }
            }
        }
    };
    layout::page(&user, "Suppliers", &q.flash(), body).into_response()
}

fn contact(c: &Value) -> Markup {
    let parts: Vec<String> =
        ["name", "email", "phone"].iter().filter_map(|k| c[*k].as_str()).map(str::to_string).collect();
    html! { @if parts.is_empty() { span.muted { "—" } } @else { (parts.join(" · ")) } }
}

async fn create_supplier(user: User, Form(f): Form<HashMap<String, String>>) -> Response {
    let back = "/admin/suppliers";
    let lead = match parse_int(&f, "lead_time_days") {
        Ok(v) => v.unwrap_or(0),
        Err((field, msg)) => return refuse_field(back, &field, &msg),
    };
    let mut contact = serde_json::Map::new();
    if let Some(n) = field(&f, "contact_name") {
        contact.insert("name".into(), json!(n));
    }
    if let Some(e) = field(&f, "contact_email") {
        contact.insert("email".into(), json!(e));
    }
    let body = json!({
        "name": field(&f, "name").unwrap_or(""),
        "currency": field(&f, "currency").unwrap_or("").to_uppercase(),
        "lead_time_days": lead,
        "contact": contact,
    });
    let idem = f.get("_idem").map(String::as_str);
    match user.post("/v1/suppliers", &body, idem).await {
        Ok(s) => {
            layout::done(&format!("/admin/suppliers/{}", s["id"]), &format!("Supplier {} created", txt(&s["name"])))
        }
        Err(e) => layout::failed(back, &e),
    }
}

async fn supplier(user: User, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let s = match user.get(&format!("/v1/suppliers/{id}")).await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let items = s["items"].as_array().cloned().unwrap_or_default();
    let editable = user.may("PUT", "/v1/suppliers/{id}/items");
    let empty = Value::Null;
    let rows: Vec<&Value> =
        items.iter().chain(std::iter::repeat_n(&empty, if editable { BLANK_ROWS } else { 0 })).collect();
    let body = html! {
        div.cards {
            div.card { div.muted { "Currency" } div.big { (txt(&s["currency"])) } }
            div.card { div.muted { "Lead time" } div.big { (txt(&s["lead_time_days"])) " d" } }
            div.card { div.muted { "Items" } div.big { (items.len()) } }
        }
        p { "Contact: " (contact(&s["contact"])) }
        p {
            a href=(format!("/admin/purchase-orders?supplier={id}")) { "Purchase orders" } " · "
            @if user.may("GET", "/v1/replenishment/suggestions") {
                a href=(format!("/admin/replenishment?supplier={id}")) { "Replenishment suggestions" }
            }
        }
        h2 { "Items" }
        @if editable {
            p.muted { "Empty the SKU of a row to remove it; fill a blank row to add one. Saving replaces the list." }
        }
        form #supplier-items method="post" action=(format!("/admin/suppliers/{id}/items")) {
            (layout::csrf(&user))
            div.table-wrap {
                table {
                    thead { tr { th { "SKU" } th { "Supplier SKU" } th.num { "Unit cost" } th.num { "Min. order" }
                        th.num { "Pack size" } th.num { "Lead time (d)" } } }
                    tbody {
                        @for (i, it) in rows.iter().enumerate() {
                            tr {
                                @if editable {
                                    td { input name=(format!("sku_{i}")) value=(opt(&it["sku"])) aria-label="SKU" size="14"; }
                                    td { input name=(format!("supplier_sku_{i}")) value=(opt(&it["supplier_sku"])) aria-label="Supplier SKU" size="12"; }
                                    td.num { input name=(format!("unit_cost_{i}")) value=(opt(&it["unit_cost"])) aria-label="Unit cost" inputmode="decimal" size="8"; }
                                    td.num { input name=(format!("moq_{i}")) value=(opt(&it["min_order_quantity"])) type="number" min="1" aria-label="Minimum order quantity"; }
                                    td.num { input name=(format!("pack_{i}")) value=(opt(&it["pack_size"])) type="number" min="1" aria-label="Pack size"; }
                                    td.num { input name=(format!("lead_{i}")) value=(opt(&it["lead_time_days"])) type="number" min="0" aria-label="Lead time in days"; }
                                } @else {
                                    td.mono { (txt(&it["sku"])) }
                                    td { (txt(&it["supplier_sku"])) }
                                    td.num { (txt(&it["unit_cost"])) }
                                    td.num { (txt(&it["min_order_quantity"])) }
                                    td.num { (txt(&it["pack_size"])) }
                                    td.num { (txt(&it["lead_time_days"])) }
                                }
                            }
                        }
                    }
                }
            }
            input type="hidden" name="rows" value=(rows.len());
            @if editable { p { button #save-items type="submit" { "Save items" } } }
        }
    };
    layout::page(&user, &format!("Supplier {}", txt(&s["name"])), &flash, body).into_response()
}

/// A value for an input: empty for null.
fn opt(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

async fn save_items(user: User, Path(id): Path<i64>, Form(f): Form<HashMap<String, String>>) -> Response {
    let back = format!("/admin/suppliers/{id}");
    let rows = parse_int(&f, "rows").ok().flatten().unwrap_or(0).clamp(0, 2000) as usize;
    let mut items = Vec::new();
    for i in 0..rows {
        let Some(sku) = field(&f, &format!("sku_{i}")) else { continue };
        let mut item = json!({"sku": sku, "unit_cost": field(&f, &format!("unit_cost_{i}")).unwrap_or("")});
        if let Some(s) = field(&f, &format!("supplier_sku_{i}")) {
            item["supplier_sku"] = json!(s);
        }
        for (name, key) in [("moq", "min_order_quantity"), ("pack", "pack_size"), ("lead", "lead_time_days")] {
            match parse_int(&f, &format!("{name}_{i}")) {
                Ok(Some(n)) => item[key] = json!(n),
                Ok(None) => {}
                Err(_) => return refuse_field(&back, &format!("items[{i}].{key}"), "must be a whole number"),
            }
        }
        items.push(item);
    }
    match user.put(&format!("/v1/suppliers/{id}/items"), &json!({ "items": items })).await {
        Ok(s) => layout::done(&back, &format!("Saved {} items", s["items"].as_array().map_or(0, Vec::len))),
        Err(e) => layout::failed(&back, &e),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Purchase orders
// ---------------------------------------------------------------------------------------------------------------

const STATUSES: &[&str] = &["draft", "ordered", "partially_received", "received", "cancelled", "closed"];

#[derive(Deserialize)]
struct PoListQuery {
    after: Option<String>,
    status: Option<String>,
    supplier: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn warehouses(user: &User) -> Vec<Value> {
    match user.get("/v1/locations?kind=warehouse&limit=500").await {
        Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

async fn purchase_orders(user: User, Query(q): Query<PoListQuery>) -> Response {
    let status = q.status.as_deref().filter(|s| !s.is_empty());
    let mut path = "/v1/purchase-orders?limit=100".to_string();
    let mut extra = String::new();
    if let Some(s) = status {
        path.push_str(&format!("&status={}", enc(s)));
        extra.push_str(&format!("&status={}", enc(s)));
    }
    if let Some(a) = &q.after {
        path.push_str(&format!("&after={}", enc(a)));
    }
    let page = match user.get(&path).await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    // The API has no supplier filter; the supplier page links here with one, applied to the page read.
    let supplier: Option<i64> = q.supplier.as_deref().and_then(|s| s.parse().ok());
    let mut orders = page["items"].as_array().cloned().unwrap_or_default();
    if let Some(sid) = supplier {
        orders.retain(|o| o["supplier_id"].as_i64() == Some(sid));
        extra.push_str(&format!("&supplier={sid}"));
    }
    let can_create = user.may("POST", "/v1/purchase-orders");
    let (names, whs) = if can_create || !orders.is_empty() {
        tokio::join!(supplier_names(&user), warehouses(&user))
    } else {
        (HashMap::new(), Vec::new())
    };
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    let body = html! {
        form.inline.no-print #po-filter method="get" action="/admin/purchase-orders" {
            div {
                label for="po-status" { "Status" }
                select #po-status name="status" {
                    option value="" { "Any" }
                    @for s in STATUSES {
                        option value=(s) selected[status == Some(*s)] { (s.replace('_', " ")) }
                    }
                }
            }
            @if let Some(sid) = supplier { input type="hidden" name="supplier" value=(sid); }
            button.secondary type="submit" { "Filter" }
        }
        @if orders.is_empty() {
            p.muted { "No purchase orders." }
        } @else {
            div.table-wrap {
                table #purchase-orders {
                    thead { tr { th { "PO" } th { "Supplier" } th { "Warehouse" } th { "Status" } th.num { "Ordered" }
                        th.num { "Received" } th.num { "Remaining" } th { "Created" } } }
                    tbody {
                        @for o in &orders {
                            @let lines = o["lines"].as_array().cloned().unwrap_or_default();
                            @let sum = |k: &str| lines.iter().filter_map(|l| l[k].as_i64()).sum::<i64>();
                            @let to_come: i64 = lines.iter().map(remaining).sum();
                            tr {
                                td { a href=(format!("/admin/purchase-orders/{}", o["id"])) { "PO " (txt(&o["id"])) } }
                                td { (o["supplier_id"].as_i64().and_then(|i| names.get(&i)).cloned().unwrap_or_else(|| txt(&o["supplier_id"]))) }
                                td.mono { (txt(&o["warehouse"])) }
                                td { (badge(&o["status"])) }
                                td.num { (sum("quantity")) }
                                td.num { (sum("received")) }
                                td.num { (to_come) }
                                td { (when(&o["created_at"])) }
                            }
                        }
                    }
                }
            }
        }
        (next_link("/admin/purchase-orders", &extra, &page))
        @if can_create {
            h2 { "New purchase order" }
            @if names.is_empty() {
                p.muted { "Create a " a href="/admin/suppliers" { "supplier" } " first." }
            } @else {
                (new_po_form(&user, &names, &whs, supplier))
            }
        }
    };
    layout::page(&user, "Purchase orders", &flash, body).into_response()
}

fn new_po_form(user: &User, names: &HashMap<i64, String>, whs: &[Value], supplier: Option<i64>) -> Markup {
    let mut sorted: Vec<(&i64, &String)> = names.iter().collect();
    sorted.sort_by(|a, b| a.1.cmp(b.1));
    html! {
        form.stack #new-po method="post" action="/admin/purchase-orders" {
            (layout::csrf(user)) (layout::idem())
            label for="po-supplier" { "Supplier" }
            select #po-supplier name="supplier_id" required {
                @for (id, name) in &sorted { option value=(id) selected[supplier == Some(**id)] { (name) } }
            }
            label for="po-warehouse" { "Receiving warehouse" }
            select #po-warehouse name="warehouse" required {
                @for w in whs { option value=(txt(&w["path"])) { (txt(&w["path"])) " · " (txt(&w["name"])) } }
            }
            label for="po-tolerance" { "Over-receipt tolerance (%)" }
            input #po-tolerance name="tolerance_percent" type="number" min="0" value="0";
            label for="po-notes" { "Notes" }
            input #po-notes name="notes" maxlength="500";
            div.table-wrap {
                table {
                    thead { tr { th { "SKU" } th.num { "Quantity" } th.num { "Unit cost (blank: supplier's)" } th { "Expected (blank: lead time)" } } }
                    tbody {
                        @for i in 0..BLANK_ROWS {
                            tr {
                                td { input name=(format!("sku_{i}")) aria-label="SKU" size="14"; }
                                td.num { input name=(format!("qty_{i}")) type="number" min="1" aria-label="Quantity"; }
                                td.num { input name=(format!("cost_{i}")) inputmode="decimal" aria-label="Unit cost" size="8"; }
                                td { input name=(format!("date_{i}")) type="date" aria-label="Expected date"; }
                            }
                        }
                    }
                }
            }
            label { input #po-order-now type="checkbox" name="order" value="1"; " Send to the supplier at once (otherwise a draft)" }
            button #create-po type="submit" { "Create purchase order" }
        }
    }
}

async fn create_purchase_order(user: User, Form(f): Form<HashMap<String, String>>) -> Response {
    let back = "/admin/purchase-orders";
    let supplier = match parse_int(&f, "supplier_id") {
        Ok(Some(s)) => s,
        Ok(None) => return refuse_field(back, "supplier_id", "choose a supplier"),
        Err((field, msg)) => return refuse_field(back, &field, &msg),
    };
    let tolerance = match parse_int(&f, "tolerance_percent") {
        Ok(v) => v.unwrap_or(0),
        Err((field, msg)) => return refuse_field(back, &field, &msg),
    };
    let mut lines = Vec::new();
    for i in 0..BLANK_ROWS {
        let Some(sku) = field(&f, &format!("sku_{i}")) else { continue };
        let qty = match parse_int(&f, &format!("qty_{i}")) {
            Ok(Some(q)) => q,
            Ok(None) => return refuse_field(back, &format!("lines[{}].quantity", lines.len()), "enter a quantity"),
            Err(_) => return refuse_field(back, &format!("lines[{}].quantity", lines.len()), "must be a whole number"),
        };
        let mut line = json!({"sku": sku, "quantity": qty});
        if let Some(c) = field(&f, &format!("cost_{i}")) {
            line["unit_cost"] = json!(c);
        }
        if let Some(d) = field(&f, &format!("date_{i}")) {
            line["expected_date"] = json!(d);
        }
        lines.push(line);
    }
    let mut body = json!({
        "supplier_id": supplier,
        "warehouse": field(&f, "warehouse").unwrap_or(""),
        "lines": lines,
        "tolerance_percent": tolerance,
        "order": f.get("order").is_some_and(|v| v == "1"),
    });
    if let Some(n) = field(&f, "notes") {
        body["notes"] = json!(n);
    }
    match user.post("/v1/purchase-orders", &body, f.get("_idem").map(String::as_str)).await {
        Ok(po) => layout::done(
            &format!("/admin/purchase-orders/{}", po["id"]),
            &format!("Purchase order {} created ({})", po["id"], txt(&po["status"]).replace('_', " ")),
        ),
        Err(e) => layout::failed(back, &e),
    }
}

async fn purchase_order(user: User, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let po = match user.get(&format!("/v1/purchase-orders/{id}")).await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let supplier = match po["supplier_id"].as_i64() {
        Some(sid) if user.may("GET", "/v1/suppliers/{id}") => {
            user.get(&format!("/v1/suppliers/{sid}")).await.ok().map(|s| txt(&s["name"]))
        }
        _ => None,
    };
    let status = po["status"].as_str().unwrap_or("");
    let lines = po["lines"].as_array().cloned().unwrap_or_default();
    let receipts = po["receipts"].as_array().cloned().unwrap_or_default();
    let landed: Vec<Value> = if !receipts.is_empty() && user.may("GET", "/v1/purchase-orders/{id}/landed-costs") {
        match user.get(&format!("/v1/purchase-orders/{id}/landed-costs")).await {
            Ok(v) => v["items"].as_array().cloned().unwrap_or_default(),
            Err(f) => return layout::error_page(&user, &f),
        }
    } else {
        Vec::new()
    };
    let open = matches!(status, "ordered" | "partially_received");
    let steps: Vec<(&str, &str, &str)> = [
        ("order", "Send to supplier", status == "draft"),
        ("cancel", "Cancel order", matches!(status, "draft" | "ordered") && lines.iter().all(|l| l["received"] == 0)),
        ("close", "Close short", open),
    ]
    .into_iter()
    .filter(|(s, _, ok)| *ok && user.may("POST", &format!("/v1/purchase-orders/{{id}}/{s}")))
    .map(|(s, label, _)| (s, label, if s == "order" { "" } else { "danger" }))
    .collect();
    let total_cost: rust_decimal::Decimal = lines
        .iter()
        .filter_map(|l| {
            let cost: rust_decimal::Decimal = l["unit_cost"].as_str()?.parse().ok()?;
            Some(cost * rust_decimal::Decimal::from(l["quantity"].as_i64()?))
        })
        .sum();
    let may_land = user.may("POST", "/v1/purchase-orders/{id}/receipts/{number}/landed-costs");
    let body = html! {
        div.cards {
            div.card { div.muted { "Status" } div.big #po-status { (badge(&po["status"])) } }
            div.card { div.muted { "Supplier" } div.big {
                @if let Some(n) = &supplier { a href=(format!("/admin/suppliers/{}", po["supplier_id"])) { (n) } }
                @else { (txt(&po["supplier_id"])) }
            } }
            div.card { div.muted { "Warehouse" } div.big.mono { (txt(&po["warehouse"])) } }
            div.card { div.muted { "Value" } div.big { (total_cost) " " (txt(&po["currency"])) } }
        }
        p.muted {
            "Created " (when(&po["created_at"])) " · updated " (when(&po["updated_at"]))
            " · tolerance " (txt(&po["tolerance_percent"])) " %"
            @if let Some(n) = po["notes"].as_str() { " · " (n) }
        }
        @if !steps.is_empty() || (open && user.may("POST", "/v1/purchase-orders/{id}/receipts")) {
            div.panel.no-print.actions #po-actions {
                @if open && user.may("POST", "/v1/purchase-orders/{id}/receipts") {
                    a.button #receive href=(format!("/admin/receiving/{id}")) { "Receive goods" } " "
                }
                @for (s, label, class) in &steps {
                    form.inline method="post" action=(format!("/admin/purchase-orders/{id}/step"))
                        data-confirm=[(*s != "order").then(|| format!("{label} PO {id}?"))] {
                        (layout::csrf(&user)) (layout::idem())
                        input type="hidden" name="step" value=(s);
                        button class=(class) id=(format!("po-{s}")) type="submit" { (label) }
                    }
                }
            }
        }
        h2 { "Lines" }
        div.table-wrap {
            table #po-lines {
                thead { tr { th { "#" } th { "SKU" } th.num { "Unit cost" } th { "Expected" } th.num { "Ordered" }
                    th.num { "Received" } th.num { "Closed" } th.num { "Remaining" } } }
                tbody {
                    @for l in &lines {
                        tr {
                            td { (txt(&l["line"])) }
                            td.mono { a href=(format!("/admin/items/{}", enc(l["sku"].as_str().unwrap_or("")))) { (txt(&l["sku"])) } }
                            td.num { (txt(&l["unit_cost"])) }
                            td { (txt(&l["expected_date"])) }
                            td.num { (txt(&l["quantity"])) }
                            td.num { (txt(&l["received"])) }
                            td.num { (txt(&l["closed"])) }
                            td.num.remaining { (remaining(l)) }
                        }
                    }
                }
            }
        }
        h2 { "Receipts" }
        @if receipts.is_empty() {
            p.muted { "Nothing received yet." }
        }
        @for r in &receipts {
            div.panel.receipt {
                h3 { "Receipt " (txt(&r["number"])) " · " (when(&r["received_at"]))
                    @if let Some(re) = r["reference"].as_str() { " · " (re) } }
                div.table-wrap {
                    table {
                        thead { tr { th { "SKU" } th.num { "Quantity" } th { "Bin" } th { "State" } th.num { "Unit cost" } } }
                        tbody {
                            @for rl in r["lines"].as_array().into_iter().flatten() {
                                tr {
                                    td.mono { (txt(&rl["sku"])) }
                                    td.num { (txt(&rl["quantity"])) }
                                    td.mono { (txt(&rl["location"])) }
                                    td { (txt(&rl["state"]).replace('_', " ")) }
                                    td.num { (txt(&rl["unit_cost"])) }
                                }
                            }
                        }
                    }
                }
                @let costs: Vec<&Value> = landed.iter().filter(|c| c["receipt_number"] == r["number"]).collect();
                @if !costs.is_empty() {
                    h4 { "Landed costs" }
                    ul.landed-costs {
                        @for c in &costs {
                            li { (txt(&c["amount"])) " " (txt(&c["currency"])) " by " (txt(&c["basis"]))
                                @if let Some(d) = c["description"].as_str() { " · " (d) }
                                span.muted { " · " (when(&c["created_at"])) } }
                        }
                    }
                }
                @if may_land {
                    details.no-print {
                        summary { "Add a landed cost (freight, duty)" }
                        form.inline.landed-cost method="post" action=(format!("/admin/purchase-orders/{id}/landed-costs")) {
                            (layout::csrf(&user)) (layout::idem())
                            input type="hidden" name="receipt" value=(txt(&r["number"]));
                            div { label { "Amount" } input name="amount" inputmode="decimal" required size="8"; }
                            div { label { "Currency" } input name="currency" value=(txt(&po["currency"])) size="4" required; }
                            div { label { "Spread by" } select name="basis" {
                                option value="value" { "value" } option value="quantity" { "quantity" } } }
                            div { label { "Description" } input name="description" maxlength="500"; }
                            button.secondary.add-landed-cost type="submit" { "Add landed cost" }
                        }
                    }
                }
            }
        }
        p.muted { "Landed costs entered become part of the receipt lines' cost layers; see the "
            a href="/admin/reports" { "valuation report" } "." }
    };
    layout::page(&user, &format!("Purchase order {id}"), &flash, body).into_response()
}

/// What is still to come on a line: ordered less received and given up. (The API's `open` is what counts as
/// incoming, which a draft is not yet.)
fn remaining(l: &Value) -> i64 {
    let n = |k: &str| l[k].as_i64().unwrap_or(0);
    (n("quantity") - n("received") - n("closed")).max(0)
}

#[derive(Deserialize)]
struct StepForm {
    step: String,
    #[serde(default)]
    _idem: Option<String>,
}

async fn step(user: User, Path(id): Path<i64>, Form(f): Form<StepForm>) -> Response {
    let back = format!("/admin/purchase-orders/{id}");
    let (path, done) = match f.step.as_str() {
        "order" => ("order", "sent to the supplier"),
        "cancel" => ("cancel", "cancelled"),
        "close" => ("close", "closed short"),
        _ => return refuse_field(&back, "step", "must be order, cancel or close"),
    };
    match user.post(&format!("/v1/purchase-orders/{id}/{path}"), &json!({}), f._idem.as_deref()).await {
        Ok(_) => layout::done(&back, &format!("Purchase order {id} {done}")),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn add_landed_cost(user: User, Path(id): Path<i64>, Form(f): Form<HashMap<String, String>>) -> Response {
    let back = format!("/admin/purchase-orders/{id}");
    let receipt = match parse_int(&f, "receipt") {
        Ok(Some(n)) => n,
        _ => return refuse_field(&back, "receipt", "must name a receipt"),
    };
    let mut body = json!({
        "amount": field(&f, "amount").unwrap_or(""),
        "currency": field(&f, "currency").unwrap_or("").to_uppercase(),
        "basis": field(&f, "basis").unwrap_or("value"),
    });
    if let Some(d) = field(&f, "description") {
        body["description"] = json!(d);
    }
    let path = format!("/v1/purchase-orders/{id}/receipts/{receipt}/landed-costs");
    match user.post(&path, &body, f.get("_idem").map(String::as_str)).await {
        Ok(lc) => layout::done(
            &back,
            &format!("Landed cost of {} {} added to receipt {receipt}", txt(&lc["amount"]), txt(&lc["currency"])),
        ),
        Err(e) => layout::failed(&back, &e),
    }
}
