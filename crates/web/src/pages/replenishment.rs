//! The replenishment page: the API's reorder suggestions per SKU and warehouse, chosen with checkboxes and turned
//! into draft purchase orders (one per supplier and warehouse), with links to the drafts.

use std::collections::HashMap;

use axum::extract::Query;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::form::refuse_field;
use super::purchasing::parse_int;
use crate::client::{enc, User};
use crate::layout::{self, txt, Flash};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/replenishment", get(suggestions).post(create_drafts))
}

#[derive(Deserialize)]
struct SuggestionQuery {
    warehouse: Option<String>,
    supplier: Option<String>,
    /// Ids of the drafts the last submission created, to link them.
    created: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// Days of cover and rates as a person reads them.
fn num(v: &Value, places: usize) -> String {
    match v.as_f64() {
        Some(x) => format!("{x:.places$}"),
        None => txt(v),
    }
}

async fn suggestions(user: User, Query(q): Query<SuggestionQuery>) -> Response {
    let warehouse = q.warehouse.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let supplier = q.supplier.as_deref().map(str::trim).filter(|s| !s.is_empty());
    let mut path = "/v1/replenishment/suggestions".to_string();
    let mut sep = '?';
    if let Some(w) = warehouse {
        path.push_str(&format!("{sep}warehouse={}", enc(w)));
        sep = '&';
    }
    if let Some(s) = supplier {
        path.push_str(&format!("{sep}supplier={}", enc(s)));
    }
    let sugg = user.get(&path);
    let whs = user.get("/v1/locations?kind=warehouse&limit=500");
    let sups = async {
        if user.may("GET", "/v1/suppliers") {
            user.get("/v1/suppliers?limit=500").await.ok()
        } else {
            None
        }
    };
    let (sugg, whs, sups) = tokio::join!(sugg, whs, sups);
    let sugg = match sugg {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let items = sugg["items"].as_array().cloned().unwrap_or_default();
    let whs = whs.ok().and_then(|v| v["items"].as_array().cloned()).unwrap_or_default();
    let sups = sups.and_then(|v| v["items"].as_array().cloned()).unwrap_or_default();
    let created: Vec<i64> =
        q.created.as_deref().unwrap_or("").split(',').filter_map(|s| s.trim().parse().ok()).collect();
    let may_order = user.may("POST", "/v1/replenishment/purchase-orders");
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    let body = html! {
        @if !created.is_empty() {
            div.panel #drafts {
                "Draft purchase orders: "
                @for (i, id) in created.iter().enumerate() {
                    @if i > 0 { ", " }
                    a href=(format!("/admin/purchase-orders/{id}")) { "PO " (id) }
                }
            }
        }
        form.inline.no-print #repl-filter method="get" action="/admin/replenishment" {
            div {
                label for="r-wh" { "Warehouse" }
                select #r-wh name="warehouse" {
                    option value="" { "All" }
                    @for w in &whs {
                        @let p = txt(&w["path"]);
                        option value=(p) selected[warehouse == Some(p.as_str())] { (p) }
                    }
                }
            }
            div {
                label for="r-sup" { "Supplier" }
                select #r-sup name="supplier" {
                    option value="" { "All" }
                    @for s in &sups {
                        @let id = txt(&s["id"]);
                        option value=(id) selected[supplier == Some(id.as_str())] { (txt(&s["name"])) }
                    }
                }
            }
            button.secondary type="submit" { "Show" }
        }
        @if items.is_empty() {
            p.muted #no-suggestions { "Nothing is at or below its reorder point." }
        } @else {
            form #suggestions method="post" action="/admin/replenishment" {
                (layout::csrf(&user)) (layout::idem())
                input type="hidden" name="rows" value=(items.len());
                input type="hidden" name="back" value=(format!("/admin/replenishment{}", &path["/v1/replenishment/suggestions".len()..]));
                div.table-wrap {
                    table {
                        thead { tr {
                            th { "Order" } th { "SKU" } th { "Warehouse" } th.num { "On hand" } th.num { "On order" }
                            th.num { "Demand / day" } th.num { "Reorder point" } th { "Stock-out" } th { "Supplier" }
                            th.num { "Unit cost" } th.num { "Quantity" }
                        } }
                        tbody {
                            @for (i, s) in items.iter().enumerate() {
                                tr {
                                    td { input type="checkbox" name=(format!("pick_{i}")) value="1" checked
                                        aria-label=(format!("Order {}", txt(&s["sku"]))); }
                                    td.mono {
                                        input type="hidden" name=(format!("sku_{i}")) value=(txt(&s["sku"]));
                                        a href=(format!("/admin/items/{}", enc(s["sku"].as_str().unwrap_or("")))) { (txt(&s["sku"])) }
                                    }
                                    td.mono {
                                        input type="hidden" name=(format!("wh_{i}")) value=(txt(&s["warehouse"]));
                                        (txt(&s["warehouse"]))
                                    }
                                    td.num { (txt(&s["on_hand"])) }
                                    td.num { (txt(&s["on_order"])) }
                                    td.num title=(format!("basis: {}", txt(&s["demand_basis"]))) { (num(&s["daily_demand"], 2)) }
                                    td.num { (txt(&s["reorder_point"])) }
                                    td { (txt(&s["projected_stockout"])) }
                                    td { a href=(format!("/admin/suppliers/{}", s["supplier_id"])) { (txt(&s["supplier"])) } }
                                    td.num { (txt(&s["unit_cost"])) " " (txt(&s["currency"])) }
                                    td.num {
                                        @if may_order {
                                            input name=(format!("qty_{i}")) type="number" min="1"
                                                value=(txt(&s["suggested_quantity"])) aria-label="Quantity to order";
                                        } @else { (txt(&s["suggested_quantity"])) }
                                    }
                                }
                            }
                        }
                    }
                }
                p.muted { "Quantities respect each supplier's minimum order quantity and pack size." }
                @if may_order {
                    p { button #create-drafts type="submit" { "Create draft purchase orders" } }
                }
            }
        }
    };
    layout::page(&user, "Replenishment", &flash, body).into_response()
}

async fn create_drafts(user: User, Form(f): Form<HashMap<String, String>>) -> Response {
    // Back to the same filters; only a path of this page is accepted as the way back.
    let back = f
        .get("back")
        .filter(|b| b.starts_with("/admin/replenishment") && !b.contains("//"))
        .cloned()
        .unwrap_or_else(|| "/admin/replenishment".into());
    let rows = parse_int(&f, "rows").ok().flatten().unwrap_or(0).clamp(0, 5000) as usize;
    let mut lines = Vec::new();
    for i in 0..rows {
        if f.get(&format!("pick_{i}")).is_none_or(|v| v != "1") {
            continue;
        }
        let (Some(sku), Some(wh)) = (f.get(&format!("sku_{i}")), f.get(&format!("wh_{i}"))) else { continue };
        let mut line = json!({"sku": sku, "warehouse": wh});
        match parse_int(&f, &format!("qty_{i}")) {
            Ok(Some(q)) => line["quantity"] = json!(q),
            Ok(None) => {}
            Err(_) => {
                return refuse_field(&back, &format!("lines[{}].quantity", lines.len()), "must be a whole number")
            }
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return refuse_field(&back, "lines", "choose at least one suggestion");
    }
    match user
        .post("/v1/replenishment/purchase-orders", &json!({ "lines": lines }), f.get("_idem").map(String::as_str))
        .await
    {
        Ok(v) => {
            let ids: Vec<String> = v["purchase_orders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|po| po["id"].as_i64())
                .map(|id| id.to_string())
                .collect();
            let sep = if back.contains('?') { '&' } else { '?' };
            let notice = format!("Created {} draft purchase order(s)", ids.len());
            let q = serde_urlencoded::to_string([("created", ids.join(",")), ("notice", notice)]).unwrap_or_default();
            Redirect::to(&format!("{back}{sep}{q}")).into_response()
        }
        Err(e) => layout::failed(&back, &e),
    }
}
