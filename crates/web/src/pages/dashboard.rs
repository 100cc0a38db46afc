//! The dashboard: what needs attention on the floor and in the back office (orders to pick, backorders, low stock,
//! projected stock-outs, expiring holds, failing webhooks) and units sold per day. The counts are a fragment the
//! page includes when rendered and the browser refreshes every few seconds; the chart is for roles that read sales.

use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use serde_json::Value;

use crate::charts;
use crate::client::{enc, User};
use crate::layout::{self, txt, when, Flash};
use crate::WebState;

/// The API the counts come from, and the one of the chart: shown only to roles that may read them.
const DASHBOARD_API: &str = "/v1/reports/dashboard";
const SALES_API: &str = "/v1/reports/sales-per-day";
/// Days of the sales chart.
const CHART_DAYS: u32 = 90;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin", get(dashboard)).route("/admin/dashboard/live", get(live))
}

async fn dashboard(user: User, Query(flash): Query<Flash>) -> Response {
    let counts = counts(&user).await;
    let chart = if user.may("GET", SALES_API) { Some(sales_chart(&user).await) } else { None };
    let body = html! {
        div #live data-live="/admin/dashboard/live" data-every="10" { (counts) }
        @if let Some(chart) = chart {
            section.panel #sales {
                h2 { "Units sold per day, last " (CHART_DAYS) " days" }
                (chart)
            }
        }
    };
    layout::page(&user, "Dashboard", &flash, body).into_response()
}

/// The live part alone, for the page's script to swap in.
async fn live(user: User) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], counts(&user).await).into_response()
}

/// The cards and the short lists, or why there are none.
async fn counts(user: &User) -> Markup {
    if !user.may("GET", DASHBOARD_API) {
        return html! { p.muted { "This role has no dashboard; use the menu." } };
    }
    let d = match user.get(DASHBOARD_API).await {
        Ok(d) => d,
        Err(f) => return html! { p.flash.error role="alert" { (f.message()) } },
    };
    let may_orders = user.may("GET", "/v1/orders/{id}");
    let may_items = user.may("GET", "/v1/variants/{key}");
    html! {
        div.cards.dashboard-cards {
            (card(user, "ready-to-pick", &d["ready_to_pick"]["count"], "orders ready to pick",
                ("/admin/pick-lists", "/v1/pick-lists")))
            (card(user, "backordered", &d["backordered"]["count"], "backordered orders",
                ("/admin/orders?backordered=true", "/v1/orders")))
            (card(user, "low-stock", &d["low_stock"]["count"],
                &format!("items with {} or fewer available", txt(&d["low_stock"]["threshold"])),
                ("#low-stock-list", DASHBOARD_API)))
            (card(user, "stockouts", &d["stockouts_projected"]["count"], "stock-outs projected",
                ("/admin/replenishment", "/v1/replenishment/suggestions")))
            (card(user, "holds", &d["holds_expiring"]["count"], "holds expiring within the hour",
                ("#holds-list", DASHBOARD_API)))
            (card(user, "webhooks", &d["webhooks_failing"]["count"], "webhook endpoints failing",
                ("/admin/webhooks", "/v1/webhook-endpoints")))
        }
        div.dashboard-lists {
            (order_list("ready-list", "Ready to pick", &d["ready_to_pick"], may_orders))
            (order_list("backordered-list", "Backordered", &d["backordered"], may_orders))
            @if let Some(items) = nonempty(&d["low_stock"]["items"]) {
                section.panel #low-stock-list {
                    h2 { "Low stock" }
                    div.table-wrap { table {
                        thead { tr { th { "SKU" } th.num { "Available" } } }
                        tbody { @for i in items { tr {
                            td { (sku_link(&i["sku"], may_items)) }
                            td.num { (txt(&i["available"])) }
                        } } }
                    } }
                }
            }
            @if let Some(items) = nonempty(&d["stockouts_projected"]["items"]) {
                section.panel #stockouts-list {
                    h2 { "Stock-outs projected" }
                    div.table-wrap { table {
                        thead { tr { th { "SKU" } th { "Warehouse" } th { "Runs out" } } }
                        tbody { @for i in items { tr {
                            td { (sku_link(&i["sku"], may_items)) }
                            td { (txt(&i["warehouse"])) }
                            td { (txt(&i["date"])) }
                        } } }
                    } }
                }
            }
            @if let Some(holds) = nonempty(&d["holds_expiring"]["holds"]) {
                section.panel #holds-list {
                    h2 { "Holds expiring" }
                    div.table-wrap { table {
                        thead { tr { th { "Hold" } th { "Reference" } th { "Expires (UTC)" } } }
                        tbody { @for h in holds { tr {
                            td.mono { (txt(&h["id"])) }
                            td { (txt(&h["reference"])) }
                            td { (when(&h["expires_at"])) }
                        } } }
                    } }
                }
            }
            @if let Some(endpoints) = nonempty(&d["webhooks_failing"]["endpoints"]) {
                section.panel #webhooks-list {
                    h2 { "Webhook endpoints in trouble" }
                    div.table-wrap { table {
                        thead { tr { th { "Endpoint" } th { "State" } th { "Failing since (UTC)" } } }
                        tbody { @for e in endpoints { tr {
                            td.mono { "#" (txt(&e["id"])) }
                            td {
                                @if e["enabled"] == Value::Bool(false) {
                                    (layout::badge(&Value::from("disabled"))) " " span.muted { (txt(&e["disabled_reason"])) }
                                } @else {
                                    (layout::badge(&Value::from("failed")))
                                }
                            }
                            td { (when(&e["failing_since"])) }
                        } } }
                    } }
                }
            }
        }
        p.muted.as-of { "As of " (when(&d["as_of"])) " UTC" }
    }
}

fn nonempty(v: &Value) -> Option<&Vec<Value>> {
    v.as_array().filter(|a| !a.is_empty())
}

/// A count with a link to the page that lists it (`(page, the API that page reads)`), when the role may read it.
fn card(user: &User, id: &str, count: &Value, label: &str, (href, api): (&str, &str)) -> Markup {
    let n = count.as_i64().unwrap_or(0);
    let inner = html! { div.big { (n) } div { (label) } };
    html! {
        @if user.may("GET", api) {
            a.card.count-card id=(id) href=(href) data-count=(n) { (inner) }
        } @else {
            div.card.count-card id=(id) data-count=(n) { (inner) }
        }
    }
}

fn sku_link(sku: &Value, may: bool) -> Markup {
    let s = txt(sku);
    html! {
        @if may { a.mono href=(format!("/admin/items/{}", enc(&s))) { (s) } } @else { span.mono { (s) } }
    }
}

fn order_list(id: &str, title: &str, list: &Value, may_orders: bool) -> Markup {
    let Some(orders) = nonempty(&list["orders"]) else { return html! {} };
    let more = list["count"].as_i64().unwrap_or(0) - orders.len() as i64;
    html! {
        section.panel id=(id) {
            h2 { (title) }
            div.table-wrap { table {
                thead { tr { th { "Order" } th { "Source" } th { "Number" } th { "Placed (UTC)" } } }
                tbody { @for o in orders { tr {
                    td { @if may_orders { a href=(format!("/admin/orders/{}", txt(&o["id"]))) { "#" (txt(&o["id"])) } }
                         @else { "#" (txt(&o["id"])) } }
                    td { (txt(&o["source"])) }
                    td { (txt(&o["external_number"])) }
                    td { (when(&o["placed_at"])) }
                } } }
            } }
            @if more > 0 { p.muted { "and " (more) " more (oldest shown first)" } }
        }
    }
}

/// The bar chart of units sold per day, or why it is missing.
async fn sales_chart(user: &User) -> Markup {
    match user.get(&format!("{SALES_API}?days={CHART_DAYS}")).await {
        Ok(s) => {
            let days = s["days"].as_array().cloned().unwrap_or_default();
            // Month-day labels: the chart prints about six of them.
            let labels: Vec<String> =
                days.iter().map(|d| d["date"].as_str().unwrap_or("").get(5..).unwrap_or("").to_string()).collect();
            let values: Vec<f64> = days.iter().map(|d| d["units"].as_f64().unwrap_or(0.0)).collect();
            html! {
                (layout::raw(charts::bars("Units sold per day", &labels, &values)))
                p.muted { (txt(&s["total"])) " units in " (days.len()) " days (shipments to customers, by UTC day)." }
            }
        }
        Err(f) => html! { p.flash.error role="alert" { (f.message()) } },
    }
}
