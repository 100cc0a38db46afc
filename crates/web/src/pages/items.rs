//! Items: one search box (SKU, barcode or title; a scanned barcode lands on its item) and the item page with
//! everything about one SKU: levels per warehouse and bin in every state, the ledger, availability per channel
//! with each rule's effect, sales and forecast, cost and value.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::charts::{self, Series};
use crate::client::{enc, User};
use crate::layout::{self, badge, txt, when, Flash};
use crate::WebState;

/// Rows of a search result or a plain list.
const LIST_LIMIT: u32 = 50;
/// Movements per page of the item's ledger.
const LEDGER_LIMIT: u32 = 25;
/// Days of sales history on the item's chart (the forecast's days follow them).
const HISTORY_DAYS: i64 = 60;
/// Days of forecast on the chart.
const FORECAST_DAYS: usize = 30;

/// The states of a level, in the order the tables show them.
const STATES: &[(&str, &str)] = &[
    ("on_hand", "On hand"),
    ("available", "Available"),
    ("committed", "Committed"),
    ("reserved", "Reserved"),
    ("damaged", "Damaged"),
    ("quality_control", "Quality control"),
    ("safety_stock", "Safety stock"),
    ("incoming", "Incoming"),
];

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/items", get(search)).route("/admin/items/{sku}", get(item))
}

#[derive(Debug, Default, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn search_form(q: &str) -> Markup {
    html! {
        form.inline.scan #item-search method="get" action="/admin/items" {
            div {
                label for="q" { "SKU, barcode or title" }
                input #q type="search" name="q" value=(q) data-scan autofocus autocomplete="off";
            }
            button type="submit" { "Find" }
        }
    }
}

async fn search(user: User, Query(sq): Query<SearchQuery>) -> Response {
    let flash = Flash { notice: sq.notice.clone(), error: sq.error.clone() };
    let q = sq.q.as_deref().map(str::trim).unwrap_or("");
    let path = if q.is_empty() {
        let mut p = format!("/v1/variants?limit={LIST_LIMIT}");
        if let Some(after) = sq.after.as_deref().filter(|a| !a.is_empty()) {
            p.push_str(&format!("&after={}", enc(after)));
        }
        p
    } else {
        format!("/v1/variants?q={}&limit={LIST_LIMIT}", enc(q))
    };
    let page = match user.get(&path).await {
        Ok(p) => p,
        Err(f) => return layout::error_page(&user, &f),
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    if !q.is_empty() && items.len() == 1 {
        // A scanned barcode or a full SKU names one item: go straight to it.
        return Redirect::to(&format!("/admin/items/{}", enc(&txt(&items[0]["sku"])))).into_response();
    }
    let body = html! {
        (search_form(q))
        @if !q.is_empty() {
            p.muted #result-count {
                @if items.is_empty() { "No item matches " } @else { (items.len()) " items match " }
                "“" (q) "”" @if items.len() as u32 == LIST_LIMIT { " (the best " (LIST_LIMIT) " shown)" } "."
            }
        }
        @if !items.is_empty() {
            div.table-wrap { table #items {
                thead { tr { th { "SKU" } th { "Options" } th { "Barcode" } th.num { "Price" } } }
                tbody { @for v in &items { tr {
                    td { a.mono href=(format!("/admin/items/{}", enc(&txt(&v["sku"])))) { (txt(&v["sku"])) } }
                    td { (options(&v["options"])) }
                    td.mono { (txt(&v["barcode"])) }
                    td.num { (txt(&v["price"])) " " (txt(&v["currency"])) }
                } } }
            } }
        }
        @if let Some(next) = page["next_cursor"].as_str() {
            p { a.button.secondary #more href=(format!("/admin/items?after={}", enc(next))) { "More items" } }
        }
    };
    layout::page(&user, "Items", &flash, body).into_response()
}

fn options(v: &Value) -> String {
    v.as_array().map(|a| a.iter().map(txt).collect::<Vec<_>>().join(" / ")).unwrap_or_default()
}

#[derive(Debug, Default, Deserialize)]
struct ItemQuery {
    /// Cursor of the ledger's next page.
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn item(user: User, Path(sku): Path<String>, Query(iq): Query<ItemQuery>) -> Response {
    let flash = Flash { notice: iq.notice.clone(), error: iq.error.clone() };
    let s = enc(&sku);
    let variant = match user.get(&format!("/v1/variants/{s}")).await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let product = user.get(&format!("/v1/products/{}", txt(&variant["product_id"]))).await.ok();
    let levels = match user.get(&format!("/v1/inventory/levels?sku={s}")).await {
        Ok(l) => l,
        Err(f) => return layout::error_page(&user, &f),
    };
    let mut ledger_path = format!("/v1/inventory/movements?sku={s}&limit={LEDGER_LIMIT}");
    if let Some(after) = iq.after.as_deref().filter(|a| !a.is_empty()) {
        ledger_path.push_str(&format!("&after={}", enc(after)));
    }
    let ledger = user.get(&ledger_path).await;
    let channels = channel_availability(&user, &s).await;
    let chart = sales_chart(&user, &s).await;
    let value = cost_and_value(&user, &sku, &variant).await;

    let title = product.as_ref().map(|p| txt(&p["title"])).unwrap_or_default();
    let heading = if title.is_empty() { sku.clone() } else { format!("{sku} · {title}") };
    let item_levels = levels["items"].as_array().and_then(|a| a.iter().find(|i| i["sku"] == sku.as_str()));
    let body = html! {
        section.panel #item-facts {
            dl.facts {
                dt { "SKU" } dd.mono #sku { (sku) }
                dt { "Product" } dd { (if title.is_empty() { "—".to_string() } else { title.clone() }) }
                dt { "Options" } dd { (options(&variant["options"])) }
                dt { "Barcode" } dd.mono #barcode { (txt(&variant["barcode"])) }
                dt { "Price" } dd { (txt(&variant["price"])) " " (txt(&variant["currency"])) }
                dt { "Policy" } dd { (txt(&variant["inventory_policy"])) @if variant["tracked"] == Value::Bool(false) { " · not tracked" } }
            }
        }
        h2 { "Stock" }
        @match item_levels {
            None => p.muted #no-stock { "No stock has ever been booked for this item." },
            Some(il) => (levels_table(il)),
        }
        h2 { "Ledger" }
        (ledger_table(&sku, ledger))
        @if let Some(c) = channels { h2 { "Availability per channel" } (c) }
        @if let Some(c) = chart { h2 { "Sales and forecast" } (c) }
        @if let Some(v) = value { h2 { "Cost and value" } (v) }
    };
    layout::page(&user, &heading, &flash, body).into_response()
}

/// Every state per bin, with each warehouse's total and the item's total.
fn levels_table(il: &Value) -> Markup {
    let warehouses = il["warehouses"].as_array().cloned().unwrap_or_default();
    html! {
        div.table-wrap { table #levels {
            thead { tr {
                th { "Location" }
                @for (_, label) in STATES { th.num { (label) } }
            } }
            tbody {
                @for w in &warehouses {
                    tr.warehouse-row data-location=(txt(&w["warehouse"])) {
                        th { (txt(&w["warehouse"])) }
                        @for (k, _) in STATES { td.num data-state=(k) { (txt(&w["total"][*k])) } }
                    }
                    @for b in w["bins"].as_array().map(Vec::as_slice).unwrap_or_default() {
                        tr.bin-row data-location=(txt(&b["location"])) {
                            td.mono.bin { (txt(&b["location"])) }
                            @for (k, _) in STATES { td.num data-state=(k) { (txt(&b[*k])) } }
                        }
                    }
                }
                tr.total-row {
                    th { "All warehouses" }
                    @for (k, _) in STATES { td.num data-state=(k) { (txt(&il["total"][*k])) } }
                }
            }
        } }
    }
}

fn side(s: &Value) -> String {
    match s["state"].as_str() {
        Some(state) => format!("{} ({})", txt(&s["location"]), state.replace('_', " ")),
        None => txt(&s["location"]),
    }
}

fn ledger_table(sku: &str, ledger: Result<Value, crate::client::Failure>) -> Markup {
    let page = match ledger {
        Ok(p) => p,
        Err(f) => return html! { p.flash.error role="alert" { (f.message()) } },
    };
    let rows = page["items"].as_array().cloned().unwrap_or_default();
    html! {
        @if rows.is_empty() {
            p.muted { "No movements." }
        } @else {
            div.table-wrap { table #ledger {
                thead { tr { th { "When (UTC)" } th.num { "Qty" } th { "From" } th { "To" } th { "Reason" } th { "Reference" } th { "By" } } }
                tbody { @for m in &rows { tr {
                    td { (when(&m["recorded_at"])) }
                    td.num { (txt(&m["quantity"])) }
                    td.mono { (side(&m["from"])) }
                    td.mono { (side(&m["to"])) }
                    td { (txt(&m["reason"])) }
                    td { (txt(&m["reference"])) }
                    td.muted { (txt(&m["actor"])) }
                } } }
            } }
            p.muted { "Oldest first, " (LEDGER_LIMIT) " a page." }
        }
        @if let Some(next) = page["next_cursor"].as_str() {
            p { a.button.secondary #ledger-more href=(format!("/admin/items/{}?after={}", enc(sku), enc(next))) { "More movements" } }
        }
    }
}

/// What each channel shows for the item, with the rules that made it; `None` when the role reads no channels.
async fn channel_availability(user: &User, s: &str) -> Option<Markup> {
    if !user.may("GET", "/v1/channels") || !user.may("GET", "/v1/channels/{code}/availability/{sku}") {
        return None;
    }
    let channels = match user.get("/v1/channels?limit=100").await {
        Ok(c) => c["items"].as_array().cloned().unwrap_or_default(),
        Err(f) => return Some(html! { p.flash.error role="alert" { (f.message()) } }),
    };
    if channels.is_empty() {
        return Some(html! { p.muted { "No channels yet." } });
    }
    let mut out = Vec::new();
    for c in &channels {
        let code = txt(&c["code"]);
        let a = user.get(&format!("/v1/channels/{}/availability/{s}?explain=true", enc(&code))).await;
        out.push((code, a));
    }
    Some(html! {
        @for (code, a) in &out {
            section.panel.channel data-channel=(code) {
                @match a {
                    Ok(a) => {
                        h3 { (code) " · " span.qty { (txt(&a["quantity"])) } " " (badge(&a["status"]))
                             @if a["listed"] == Value::Bool(false) { " " span.muted { "not listed" } }
                             @if !a["expected_date"].is_null() { " " span.muted { "expected " (txt(&a["expected_date"])) } } }
                        @if let Some(steps) = a["explanation"].as_array() {
                            div.table-wrap { table.explain {
                                thead { tr { th { "Rule" } th { "From" } th.num { "Before" } th.num { "After" } th { "Why" } } }
                                tbody { @for st in steps { tr {
                                    td { (txt(&st["rule"])) }
                                    td.mono { (txt(&st["source"])) }
                                    td.num { (txt(&st["before"])) }
                                    td.num { (txt(&st["after"])) }
                                    td { (txt(&st["detail"])) }
                                } } }
                            } }
                        }
                    }
                    Err(f) => { h3 { (code) } p.flash.error role="alert" { (f.message()) } }
                }
            }
        }
    })
}

/// Units sold per day over the last weeks and the forecast after them, on one chart.
async fn sales_chart(user: &User, s: &str) -> Option<Markup> {
    if !user.may("GET", "/v1/reports/sales-per-day") {
        return None;
    }
    let sales = match user.get(&format!("/v1/reports/sales-per-day?sku={s}&days={HISTORY_DAYS}")).await {
        Ok(v) => v,
        Err(f) => return Some(html! { p.flash.error role="alert" { (f.message()) } }),
    };
    let forecast = if user.may("GET", "/v1/items/{sku}/forecast") {
        user.get(&format!("/v1/items/{s}/forecast")).await.ok()
    } else {
        None
    };
    let days = sales["days"].as_array().cloned().unwrap_or_default();
    let mut labels: Vec<String> =
        days.iter().map(|d| d["date"].as_str().unwrap_or("").get(5..).unwrap_or("").to_string()).collect();
    let mut history: Vec<Option<f64>> = days.iter().map(|d| d["units"].as_f64()).collect();
    let mut predicted: Vec<Option<f64>> = vec![None; history.len()];
    let fitted = forecast.as_ref().filter(|f| f["status"] == "forecast");
    if let Some(f) = fitted {
        let first: Option<chrono::NaiveDate> = f["first_day"].as_str().and_then(|d| d.parse().ok());
        let daily: Vec<f64> =
            f["daily"].as_array().map(|a| a.iter().filter_map(Value::as_f64).collect()).unwrap_or_default();
        if let Some(first) = first {
            // Join the two lines at today, so the forecast reads as the history's continuation.
            if let (Some(last), Some(p)) = (history.last().copied().flatten(), predicted.last_mut()) {
                *p = Some(last);
            }
            for (i, v) in daily.iter().take(FORECAST_DAYS).enumerate() {
                let day = first + chrono::Duration::days(i as i64);
                labels.push(day.format("%m-%d").to_string());
                history.push(None);
                predicted.push(Some(*v));
            }
        }
    }
    let mut series = vec![Series { label: "sold", class: "history", values: history }];
    if fitted.is_some() {
        series.push(Series { label: "forecast", class: "forecast", values: predicted });
    }
    Some(html! {
        section.panel #item-sales {
            (layout::raw(charts::lines("Units sold per day and forecast", &labels, &series)))
            p.muted {
                (txt(&sales["total"])) " units sold in the last " (HISTORY_DAYS) " days."
                @match (fitted, &forecast) {
                    (Some(f), _) => { " Forecast (" (txt(&f["model"])) "): " (fmt1(&f["next_7_days"])) " in the next 7 days, "
                        (fmt1(&f["next_30_days"])) " in the next 30." }
                    (None, Some(f)) if f["status"] == "not_enough_history" => {
                        " No forecast yet: " (txt(&f["observed_days"])) " of " (txt(&f["needed_days"])) " days of history." }
                    _ => {}
                }
            }
        }
    })
}

fn fmt1(v: &Value) -> String {
    v.as_f64().map(|x| format!("{x:.1}")).unwrap_or_else(|| txt(v))
}

/// The item's line of the valuation report (the report has no SKU filter: it is read whole and the line picked),
/// with the catalog cost and the margin on the price.
async fn cost_and_value(user: &User, sku: &str, variant: &Value) -> Option<Markup> {
    if !user.may("GET", "/v1/reports/valuation") {
        return None;
    }
    let report = match user.get("/v1/reports/valuation").await {
        Ok(r) => r,
        Err(f) => return Some(html! { p.flash.error role="alert" { (f.message()) } }),
    };
    let line = report["items"].as_array().and_then(|a| a.iter().find(|l| l["sku"] == sku)).cloned();
    Some(html! {
        section.panel #item-value {
            dl.facts {
                dt { "Catalog cost" } dd { (txt(&variant["cost"])) }
                @if let Some(l) = &line {
                    dt { "Costing" } dd { (txt(&l["method"])) }
                    dt { "Units valued" } dd #value-quantity { (txt(&l["quantity"])) }
                    dt { "Unit cost" } dd #unit-cost { (txt(&l["unit_cost"])) " " (txt(&l["currency"])) }
                    dt { "Stock value" } dd #stock-value { (txt(&l["value"])) " " (txt(&l["currency"])) }
                } @else {
                    dt { "Stock value" } dd #stock-value { "— (no units on hand)" }
                }
            }
        }
    })
}
