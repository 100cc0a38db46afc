//! The pick list pages: the lists with their state, creating one from the orders waiting in a warehouse, and one
//! pick list in walking order, printable as a paper list, where the picker scans bins and items (or types what
//! was picked at each stop) and completes it.
//!
//! As on the packing bench, the tally of scans lives in the page's address (`?picked=2,0,1&at=…`): only
//! Complete changes anything.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use super::form::{blank, plural, refusal, scanned_sku};
use super::orders::{field, idem, int, items, line_quantities, parse_tally, tally_str};
use crate::client::{enc, User};
use crate::layout::{self, badge, txt, when, Flash};
use crate::WebState;

const PAGE_SIZE: u32 = 50;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/pick-lists", get(list).post(create))
        .route("/admin/pick-lists/{id}", get(show))
        .route("/admin/pick-lists/{id}/complete", post(complete))
        .route("/admin/pick-lists/{id}/cancel", post(cancel))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    status: Option<String>,
    warehouse: Option<String>,
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let mut filters: Vec<(&str, &str)> = Vec::new();
    if let Some(s) = blank(&q.status) {
        filters.push(("status", s));
    }
    if let Some(w) = blank(&q.warehouse) {
        filters.push(("warehouse", w));
    }
    let filter_qs = serde_urlencoded::to_string(&filters).unwrap_or_default();
    let mut api = format!("/v1/pick-lists?limit={PAGE_SIZE}");
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
    let warehouses = user.get("/v1/locations?kind=warehouse&limit=100").await.ok();
    let warehouses: Vec<String> = warehouses
        .as_ref()
        .map(|w| items(&w["items"]).iter().filter_map(|l| l["path"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let next = page["next_cursor"].as_str().map(|c| {
        let sep = if filter_qs.is_empty() { "" } else { "&" };
        format!("/admin/pick-lists?{filter_qs}{sep}after={}", enc(c))
    });
    let status = blank(&q.status).unwrap_or("");
    let chosen = blank(&q.warehouse).unwrap_or("");
    let flash = Flash { notice: q.notice, error: q.error };
    let body = html! {
        @if user.may("POST", "/v1/pick-lists") {
            div.panel {
                h2 { "New pick list" }
                p.muted { "Gathers the oldest open orders with committed units in the warehouse that no open pick list has yet, or the orders you name." }
                form.inline #create-form method="post" action="/admin/pick-lists" {
                    (layout::csrf(&user)) (layout::idem())
                    div {
                        label for="new-warehouse" { "Warehouse" }
                        select #new-warehouse name="warehouse" required {
                            @for w in &warehouses { option value=(w) { (w) } }
                        }
                    }
                    div { label for="limit" { "Most orders" } input #limit name="limit" type="number" min="1" max="200" value="20"; }
                    div { label for="order-ids" { "Or these orders" } input #order-ids name="order_ids" placeholder="12, 15, 16"; }
                    button #create-pick-list type="submit" { "Create pick list" }
                }
            }
        }
        form.inline.filters method="get" action="/admin/pick-lists" {
            div {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[status.is_empty()] { "Any" }
                    @for s in ["open", "picked", "cancelled"] { option value=(s) selected[status == s] { (s) } }
                }
            }
            div {
                label for="warehouse" { "Warehouse" }
                select #warehouse name="warehouse" {
                    option value="" selected[chosen.is_empty()] { "Any" }
                    @for w in &warehouses { option value=(w) selected[chosen == w] { (w) } }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        div.table-wrap { table #pick-lists {
            thead { tr { th { "Pick list" } th { "Warehouse" } th { "Status" } th.num { "Orders" } th.num { "Stops" } th.num { "Units" } th { "Created" } } }
            tbody {
                @for l in items(&page["items"]) {
                    @let stops = items(&l["lines"]);
                    @let orders = order_ids(stops);
                    tr {
                        td { a href=(format!("/admin/pick-lists/{}", txt(&l["id"]))) { "#" (txt(&l["id"])) } }
                        td { (txt(&l["warehouse"])) }
                        td { (badge(&l["status"])) }
                        td.num { (orders.len()) }
                        td.num { (stops.len()) }
                        td.num { (stops.iter().map(|s| int(&s["quantity"])).sum::<i64>()) }
                        td { (when(&l["created_at"])) }
                    }
                }
                @if items(&page["items"]).is_empty() { tr { td colspan="7" .muted { "No pick lists." } } }
            }
        } }
        p.pager { @if let Some(n) = &next { a.button.secondary href=(n) { "Next page" } } }
    };
    layout::page(&user, "Pick lists", &flash, body).into_response()
}

type Fields = HashMap<String, String>;

/// The orders a pick list's stops are for, each once.
fn order_ids(stops: &[Value]) -> Vec<i64> {
    let mut orders: Vec<i64> = stops.iter().map(|s| int(&s["order_id"])).collect();
    orders.sort_unstable();
    orders.dedup();
    orders
}

async fn create(user: User, Form(f): Form<Fields>) -> Response {
    let back = "/admin/pick-lists";
    let Some(warehouse) = field(&f, "warehouse") else { return layout::failed(back, &refusal("Choose a warehouse.")) };
    let mut body = json!({"warehouse": warehouse});
    if let Some(ids) = field(&f, "order_ids") {
        let mut parsed = Vec::new();
        for part in ids.split([',', ' ', ';']).map(|p| p.trim().trim_start_matches('#')).filter(|p| !p.is_empty()) {
            match part.parse::<i64>() {
                Ok(id) if id > 0 => parsed.push(id),
                _ => return layout::failed(back, &refusal(format!("'{part}' is not an order number"))),
            }
        }
        body["order_ids"] = json!(parsed);
    } else if let Some(limit) = field(&f, "limit") {
        match limit.parse::<u32>() {
            Ok(n) => body["limit"] = json!(n),
            Err(_) => return layout::failed(back, &refusal(format!("'{limit}' is not a number of orders"))),
        }
    }
    match user.post("/v1/pick-lists", &body, idem(&f)).await {
        Ok(l) => {
            let stops = items(&l["lines"]);
            let msg = format!("Pick list #{} created: {} stops.", txt(&l["id"]), stops.len());
            layout::done(&format!("/admin/pick-lists/{}", txt(&l["id"])), &msg)
        }
        Err(e) => layout::failed(back, &e),
    }
}

#[derive(Debug, Default, Deserialize)]
struct ShowQuery {
    picked: Option<String>,
    /// The bin the picker scanned last: items scanned next are taken from there.
    at: Option<String>,
    scan: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn list_path(id: i64, tally: &[i64], at: Option<&str>) -> String {
    let mut p = format!("/admin/pick-lists/{id}?picked={}", enc(&tally_str(tally)));
    if let Some(a) = at {
        p.push_str(&format!("&at={}", enc(a)));
    }
    p
}

/// The bin a scanned code names: a stop's full path, or its last part when only one bin of the list ends so.
fn scanned_bin<'a>(stops: &'a [Value], code: &str) -> Option<&'a str> {
    let bins: Vec<&str> = stops.iter().filter_map(|s| s["bin"].as_str()).collect();
    if let Some(b) = bins.iter().find(|b| b.eq_ignore_ascii_case(code)) {
        return Some(b);
    }
    let suffix = format!("/{}", code.to_ascii_uppercase());
    // A set, not a deduplicated list: a bin visited by two stops that are not next to each other is still one bin.
    let ends: BTreeSet<&str> = bins.iter().copied().filter(|b| b.to_ascii_uppercase().ends_with(&suffix)).collect();
    let mut ends = ends.into_iter();
    match (ends.next(), ends.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Counts one picked unit of `sku`: at the scanned bin when there is one, else at the first stop in walking order
/// that still wants it.
fn count_pick(stops: &[Value], tally: &mut [i64], sku: &str, at: Option<&str>) -> Result<String, String> {
    let wants = |i: usize, s: &Value| s["sku"].as_str() == Some(sku) && tally[i] < int(&s["quantity"]);
    let found =
        stops.iter().enumerate().position(|(i, s)| wants(i, s) && at.is_none_or(|b| s["bin"].as_str() == Some(b)));
    match found {
        Some(i) => {
            tally[i] += 1;
            let s = &stops[i];
            Ok(format!("{sku} from {}: {} of {} picked.", txt(&s["bin"]), tally[i], txt(&s["quantity"])))
        }
        None if stops.iter().enumerate().any(|(i, s)| wants(i, s)) => {
            Err(format!("Nothing more of {sku} to pick at {}: scan the bin where it is listed.", at.unwrap_or("")))
        }
        None if stops.iter().any(|s| s["sku"].as_str() == Some(sku)) => {
            Err(format!("Every unit of {sku} on this list is picked already."))
        }
        None => Err(format!("{sku} is not on this pick list.")),
    }
}

async fn show(user: User, Path(id): Path<i64>, Query(q): Query<ShowQuery>) -> Response {
    let list = match user.get(&format!("/v1/pick-lists/{id}")).await {
        Ok(l) => l,
        Err(f) => return layout::error_page(&user, &f),
    };
    let stops = items(&list["lines"]);
    let open = list["status"] == "open";
    let mut tally = parse_tally(q.picked.as_deref(), stops.len());
    for (t, s) in tally.iter_mut().zip(stops) {
        *t = (*t).min(int(&s["quantity"]));
    }
    let at = blank(&q.at).and_then(|a| scanned_bin(stops, a));
    if let Some(code) = blank(&q.scan).filter(|_| open) {
        if let Some(bin) = scanned_bin(stops, code) {
            let here: Vec<String> = stops
                .iter()
                .enumerate()
                .filter(|(i, s)| s["bin"].as_str() == Some(bin) && tally[*i] < int(&s["quantity"]))
                .map(|(i, s)| format!("{} × {}", int(&s["quantity"]) - tally[i], txt(&s["sku"])))
                .collect();
            let msg = if here.is_empty() {
                format!("At {bin}: nothing left to pick here.")
            } else {
                format!("At {bin}: pick {}.", here.join(", "))
            };
            return layout::done(&list_path(id, &tally, Some(bin)), &msg);
        }
        let skus: Vec<&str> = stops.iter().filter_map(|s| s["sku"].as_str()).collect();
        let sku = match scanned_sku(&user, code, Some(&skus)).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                let msg = format!("{code} is neither a bin of this list nor an item's code.");
                return layout::failed(&list_path(id, &tally, at), &refusal(msg));
            }
            Err(e) => return layout::failed(&list_path(id, &tally, at), &e),
        };
        return match count_pick(stops, &mut tally, &sku, at) {
            Ok(msg) => {
                let done = tally.iter().zip(stops).all(|(t, s)| *t >= int(&s["quantity"]));
                let msg = if done { format!("{msg} Every stop is picked: complete the list.") } else { msg };
                layout::done(&list_path(id, &tally, at), &msg)
            }
            Err(msg) => layout::failed(&list_path(id, &tally, at), &refusal(msg)),
        };
    }
    let orders = order_ids(stops);
    let may_complete = open && user.may("POST", "/v1/pick-lists/{id}/complete");
    let flash = Flash { notice: q.notice, error: q.error };
    let units: i64 = stops.iter().map(|s| int(&s["quantity"])).sum();
    let body = html! {
        p.list-facts {
            (badge(&list["status"])) " · " strong { (txt(&list["warehouse"])) }
            " · " (plural(orders.len(), "order")) " · " (plural(stops.len(), "stop")) " · " (plural(units as usize, "unit"))
            " · created " (when(&list["created_at"]))
        }
        p.muted.no-print { "In walking order. Print this page for a paper list (the menu and the forms stay off the paper)." }
        @if may_complete {
            form.scan.no-print method="get" action=(format!("/admin/pick-lists/{id}")) {
                input type="hidden" name="picked" value=(tally_str(&tally));
                @if let Some(b) = at { input type="hidden" name="at" value=(b); }
                label for="scan" {
                    "Scan a bin, then its items"
                    @if let Some(b) = at { " · at " strong.mono { (b) } }
                }
                input #scan type="text" name="scan" data-scan autofocus autocomplete="off";
            }
        }
        div.table-wrap { table #stops.picklist {
            thead { tr {
                th.num { "#" } th { "Bin" } th { "SKU" } th { "Order" } th.num { "Quantity" }
                th.num { "Picked" } th.print-only { "✓" }
            } }
            tbody { @for (i, s) in stops.iter().enumerate() {
                @let done = if open { tally[i] >= int(&s["quantity"]) } else { int(&s["picked"]) >= int(&s["quantity"]) };
                @let here = at.is_some() && s["bin"].as_str() == at;
                tr class=(format!("stop{}{}", if done { " done" } else { "" }, if here { " here" } else { "" })) {
                    td.num { (i + 1) }
                    td.mono.bin { (txt(&s["bin"])) }
                    td.mono { (txt(&s["sku"])) }
                    td { a href=(format!("/admin/orders/{}", txt(&s["order_id"]))) { "#" (txt(&s["order_id"])) } }
                    td.num { (txt(&s["quantity"])) }
                    td.num.picked {
                        @if may_complete {
                            input.qty.no-print type="number" min="0" max=(txt(&s["quantity"])) name=(format!("p{i}"))
                                form="complete-form" value=(tally[i]) aria-label=(format!("Picked at stop {}", i + 1));
                        } @else if open {
                            (tally[i])
                        } @else {
                            (txt(&s["picked"]))
                        }
                    }
                    td.print-only { span.box {} }
                }
            } }
        } }
        @if may_complete {
            div.action-row.list-actions {
            form.inline #complete-form method="post" action=(format!("/admin/pick-lists/{id}/complete")) {
                (layout::csrf(&user)) (layout::idem())
                button #complete type="submit" { "Complete pick list" }
            }
            @if user.may("POST", "/v1/pick-lists/{id}/cancel") {
                form.inline method="post" action=(format!("/admin/pick-lists/{id}/cancel")) data-confirm="Cancel this pick list? Its orders can go on another one." {
                    (layout::csrf(&user)) (layout::idem())
                    button.secondary #cancel-pick-list type="submit" { "Cancel pick list" }
                }
            }
            }
        }
        @if list["status"] == "picked" && user.may("POST", "/v1/orders/{id}/packages") {
            div.panel.no-print {
                h2 { "Pack" }
                @for o in &orders {
                    a.button.secondary.pack-order href=(format!("/admin/orders/{o}/pack")) { "Pack order #" (o) } " "
                }
            }
        }
    };
    layout::page(&user, &format!("Pick list #{id}"), &flash, body).into_response()
}

async fn complete(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let list = match user.get(&format!("/v1/pick-lists/{id}")).await {
        Ok(l) => l,
        Err(e) => return layout::failed("/admin/pick-lists", &e),
    };
    let stops = items(&list["lines"]);
    let typed = match line_quantities(&f, "p") {
        Ok(q) => q,
        Err(e) => return layout::failed(&format!("/admin/pick-lists/{id}"), &e),
    };
    // Blank and 0 both mean nothing was picked there: every stop gets a number, as the API wants.
    let mut picked = vec![0i64; stops.len()];
    for (i, q) in typed {
        match picked.get_mut(i) {
            Some(p) => *p = q,
            None => {
                return layout::failed(
                    &format!("/admin/pick-lists/{id}"),
                    &refusal(format!("There is no stop {}.", i + 1)),
                )
            }
        }
    }
    let back = list_path(id, &picked, None);
    match user.post(&format!("/v1/pick-lists/{id}/complete"), &json!({"picked": picked}), idem(&f)).await {
        Ok(l) => {
            let short: i64 = items(&l["lines"]).iter().map(|s| int(&s["quantity"]) - int(&s["picked"])).sum();
            let msg = if short > 0 {
                format!("Pick list #{id} completed, {short} units short.")
            } else {
                format!("Pick list #{id} completed: everything picked.")
            };
            layout::done(&format!("/admin/pick-lists/{id}"), &msg)
        }
        Err(e) => layout::failed(&back, &e),
    }
}

async fn cancel(user: User, Path(id): Path<i64>, Form(f): Form<Fields>) -> Response {
    let back = format!("/admin/pick-lists/{id}");
    match user.post(&format!("/v1/pick-lists/{id}/cancel"), &json!({}), idem(&f)).await {
        Ok(_) => layout::done(&back, &format!("Pick list #{id} cancelled: its orders can go on another list.")),
        Err(e) => layout::failed(&back, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops() -> Vec<Value> {
        vec![
            json!({"sku": "A", "bin": "WH1/S/BIN-1", "quantity": 1}),
            json!({"sku": "B", "bin": "WH1/S/BIN-2", "quantity": 1}),
            json!({"sku": "A", "bin": "WH1/S/BIN-3", "quantity": 2}),
        ]
    }

    #[test]
    fn bins_are_found_by_path_or_by_an_unambiguous_last_part() {
        let s = stops();
        assert_eq!(scanned_bin(&s, "wh1/s/bin-2"), Some("WH1/S/BIN-2"));
        assert_eq!(scanned_bin(&s, "BIN-3"), Some("WH1/S/BIN-3"));
        assert_eq!(scanned_bin(&s, "BIN"), None);
        let two = vec![json!({"bin": "WH1/A/BIN-1"}), json!({"bin": "WH1/B/BIN-1"})];
        assert_eq!(scanned_bin(&two, "BIN-1"), None);
    }

    #[test]
    fn a_bin_visited_by_stops_apart_is_still_found_by_its_last_part() {
        let s = vec![
            json!({"sku": "A", "bin": "WH1/S/BIN-1"}),
            json!({"sku": "B", "bin": "WH1/S/BIN-2"}),
            json!({"sku": "C", "bin": "WH1/S/BIN-1"}),
        ];
        assert_eq!(scanned_bin(&s, "BIN-1"), Some("WH1/S/BIN-1"));
        let mut two = s.clone();
        two.push(json!({"sku": "D", "bin": "WH2/S/BIN-1"}));
        assert_eq!(scanned_bin(&two, "bin-1"), None, "two bins end so: neither is guessed");
    }

    #[test]
    fn picks_follow_the_walk_or_the_scanned_bin() {
        let s = stops();
        let mut t = vec![0, 0, 0];
        count_pick(&s, &mut t, "A", None).unwrap();
        assert_eq!(t, vec![1, 0, 0]);
        count_pick(&s, &mut t, "A", None).unwrap();
        assert_eq!(t, vec![1, 0, 1]);
        // At BIN-2 there is no A: the picker is told, and nothing is counted.
        let e = count_pick(&s, &mut t, "A", Some("WH1/S/BIN-2")).unwrap_err();
        assert!(e.contains("BIN-2"), "{e}");
        count_pick(&s, &mut t, "A", Some("WH1/S/BIN-3")).unwrap();
        assert_eq!(t, vec![1, 0, 2]);
        assert!(count_pick(&s, &mut t, "A", None).unwrap_err().contains("picked already"));
        assert!(count_pick(&s, &mut t, "Z", None).unwrap_err().contains("not on this pick list"));
        assert_eq!(t, vec![1, 0, 2]);
    }
}
