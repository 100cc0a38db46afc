//! Moving stock between bins with a scanner: scan the bin to take from (its contents show), scan the item, say how
//! many, scan the bin to put it in. Also the scanning helpers the other floor pages share.

use axum::extract::Query;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, Failure, User};
use crate::layout::{self, Flash};
use crate::pages::form::{refusal, scanned_item};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/moves", get(page).post(move_stock))
}

/// A scanned or typed location path as the API spells it (labels may carry stray slashes or spaces).
pub(crate) fn path_of(scan: &str) -> String {
    scan.trim().trim_matches('/').to_string()
}

/// A bin path short enough for a phone's banner: `WH1/…/BIN-1`.
pub(crate) fn short(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > 2 {
        format!("{}/…/{}", parts[0], parts[parts.len() - 1])
    } else {
        path.to_string()
    }
}

/// A quantity from a form: a whole number of at least `min`.
pub(crate) fn quantity(text: &str, min: i64) -> Result<i64, Failure> {
    match text.trim().parse::<i64>() {
        Ok(n) if n >= min => Ok(n),
        _ => Err(refusal(format!("The quantity must be a whole number of at least {min}, not '{}'.", text.trim()))),
    }
}

/// `to?key=value&…` with the values encoded.
pub(crate) fn url_with(to: &str, pairs: &[(&str, &str)]) -> String {
    let pairs: Vec<(&str, &str)> = pairs.iter().copied().filter(|(_, v)| !v.is_empty()).collect();
    if pairs.is_empty() {
        return to.to_string();
    }
    format!("{to}?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
}

/// One row per (SKU, bin) of a levels answer.
pub(crate) fn bin_rows(levels: &Value) -> Vec<(String, String, &Value)> {
    let mut rows = Vec::new();
    for item in levels["items"].as_array().into_iter().flatten() {
        let sku = layout::txt(&item["sku"]);
        for wh in item["warehouses"].as_array().into_iter().flatten() {
            for bin in wh["bins"].as_array().into_iter().flatten() {
                rows.push((sku.clone(), layout::txt(&bin["location"]), bin));
            }
        }
    }
    rows
}

/// The query of a plain list page: a status filter, the API's cursor for the next page, and the flash.
#[derive(Deserialize)]
pub(crate) struct ListQuery {
    pub status: Option<String>,
    pub after: Option<String>,
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl ListQuery {
    /// The API list `path` with this page's filter and cursor.
    pub fn api(&self, path: &str) -> String {
        let mut url = format!("{path}?limit=100");
        for (key, value) in [("status", &self.status), ("after", &self.after)] {
            if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                url.push_str(&format!("&{key}={}", enc(v)));
            }
        }
        url
    }

    pub fn flash(&self) -> Flash {
        Flash { notice: self.notice.clone(), error: self.error.clone() }
    }
}

/// Links to filter a list by status, and to its next page when the API has one.
pub(crate) fn list_nav(base: &str, q: &ListQuery, statuses: &[&str], page: &Value) -> (Markup, Markup) {
    let current = q.status.as_deref().unwrap_or("");
    let filters = html! {
        p.filters {
            @if current.is_empty() { strong { "All" } } @else { a href=(base) { "All" } }
            @for s in statuses {
                " · "
                @if *s == current { strong { (s.replace('_', " ")) } }
                @else { a href=(url_with(base, &[("status", s)])) { (s.replace('_', " ")) } }
            }
        }
    };
    let next = html! {
        @if let Some(cursor) = page["next_cursor"].as_str() {
            p { a #next-page href=(url_with(base, &[("status", current), ("after", cursor)])) { "Next page" } }
        }
    };
    (filters, next)
}

#[derive(Deserialize)]
struct MoveQuery {
    from: Option<String>,
    item: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn page(user: User, Query(q): Query<MoveQuery>) -> Response {
    let mut flash = Flash { notice: q.notice, error: q.error };
    let from = q.from.as_deref().map(path_of).filter(|f| !f.is_empty());
    let Some(from) = from else {
        return layout::page(&user, "Move stock", &flash, scan_from()).into_response();
    };
    let levels = match user.get(&format!("/v1/inventory/levels?location={}&limit=500", enc(&from))).await {
        Ok(v) => v,
        Err(f) => {
            flash.error = Some(f.message());
            return layout::page(&user, "Move stock", &flash, scan_from()).into_response();
        }
    };
    let rows = bin_rows(&levels);
    let mut sku = None;
    if let Some(code) = q.item.as_deref().filter(|c| !c.trim().is_empty()) {
        match scanned_item(&user, code).await {
            Ok(s) => sku = Some(s),
            Err(f) => flash.error = Some(f.message()),
        }
    }
    let available_here: i64 = rows
        .iter()
        .filter(|(s, _, _)| Some(s) == sku.as_ref())
        .map(|(_, _, b)| b["available"].as_i64().unwrap_or(0))
        .sum();
    let may_move = user.may("POST", "/v1/inventory/moves");
    let body = html! {
        section.panel.floor-step {
            p.step { "From " strong.mono #from-bin { (from) } " · " a href="/admin/moves" { "change bin" } }
            @match &sku {
                None => {
                    form.scan method="get" action="/admin/moves" {
                        input type="hidden" name="from" value=(from);
                        label for="item" { "2. Scan the item to move" }
                        input #item type="text" name="item" data-scan autofocus autocomplete="off" placeholder="Barcode or SKU";
                        button #item-next type="submit" { "Next" }
                    }
                }
                Some(sku) => {
                    @if may_move {
                        form.scan.stack method="post" action="/admin/moves" {
                            (layout::csrf(&user)) (layout::idem())
                            input type="hidden" name="from" value=(from);
                            input type="hidden" name="sku" value=(sku);
                            p { "Item " strong.mono #move-sku { (sku) } " · " (available_here) " available here · "
                                a href=(url_with("/admin/moves", &[("from", &from)])) { "other item" } }
                            label for="quantity" { "3. How many" }
                            input #quantity type="number" name="quantity" value="1" min="1" inputmode="numeric";
                            label for="to" { "4. Scan the bin to put it in" }
                            input #to type="text" name="to" data-scan autofocus autocomplete="off" placeholder="Bin path";
                            button #move type="submit" { "Move" }
                        }
                    } @else {
                        p.muted { "Your role may look at stock but not move it." }
                    }
                }
            }
        }
        h2 { "In " (from) }
        (contents(&from, &rows))
    };
    layout::page(&user, "Move stock", &flash, body).into_response()
}

fn scan_from() -> Markup {
    html! {
        section.panel.floor-step {
            form.scan method="get" action="/admin/moves" {
                label for="from" { "1. Scan the bin to take from" }
                input #from type="text" name="from" data-scan autofocus autocomplete="off" placeholder="Bin path, e.g. WH1/HALL-1/SHELF-1/BIN-1";
                button #from-next type="submit" { "Next" }
            }
        }
    }
}

fn contents(from: &str, rows: &[(String, String, &Value)]) -> Markup {
    html! {
        @if rows.is_empty() {
            p.muted #bin-empty { "Nothing in stock here." }
        } @else {
            div.table-wrap {
                table.floor #bin-contents {
                    thead { tr { th { "SKU" } th { "Bin" } th.num { "Available" } th.num { "Committed" }
                        th.num { "On hand" } th { "" } } }
                    tbody {
                        @for (sku, bin, q) in rows {
                            tr {
                                td.mono { (sku) } td.mono { (short(bin)) }
                                td.num { (layout::txt(&q["available"])) } td.num { (layout::txt(&q["committed"])) }
                                td.num { (layout::txt(&q["on_hand"])) }
                                td { a href=(url_with("/admin/moves", &[("from", from), ("item", sku)])) { "Move" } }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Deserialize)]
struct MoveForm {
    from: String,
    sku: String,
    quantity: String,
    to: String,
    #[serde(rename = "_idem")]
    idem: String,
}

async fn move_stock(user: User, Form(form): Form<MoveForm>) -> Response {
    let from = path_of(&form.from);
    let to = path_of(&form.to);
    let here = url_with("/admin/moves", &[("from", &from), ("item", &form.sku)]);
    let qty = match quantity(&form.quantity, 1) {
        Ok(q) => q,
        Err(f) => return layout::failed(&here, &f),
    };
    if to.is_empty() {
        return layout::failed(&here, &refusal("Scan the bin to put the stock in."));
    }
    let body = json!({"lines": [{"sku": form.sku, "quantity": qty, "from_location": from, "to_location": to}]});
    match user.post("/v1/inventory/moves", &body, Some(&form.idem)).await {
        Ok(_) => {
            let notice = format!("Moved {qty} × {} from {} to {}", form.sku, short(&from), short(&to));
            layout::done(&url_with("/admin/moves", &[("from", &from)]), &notice)
        }
        Err(f) => layout::failed(&here, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_paths_keep_the_warehouse_and_the_bin() {
        assert_eq!(short("WH1/HALL-1/SHELF-1/BIN-1"), "WH1/…/BIN-1");
        assert_eq!(short("WH2/BIN-1"), "WH2/BIN-1");
        assert_eq!(short("WH2"), "WH2");
    }

    #[test]
    fn quantities_are_whole_and_at_least_the_minimum() {
        assert_eq!(quantity(" 6 ", 1).unwrap(), 6);
        assert_eq!(quantity("0", 0).unwrap(), 0);
        assert!(quantity("0", 1).is_err());
        assert!(quantity("-2", 0).is_err());
        assert!(quantity("2.5", 1).is_err());
        assert!(quantity("", 1).is_err());
    }

    #[test]
    fn urls_leave_out_empty_values_and_encode_the_rest() {
        assert_eq!(url_with("/admin/moves", &[("from", ""), ("item", "")]), "/admin/moves");
        assert_eq!(url_with("/admin/moves", &[("from", "WH1/BIN 1"), ("item", "")]), "/admin/moves?from=WH1%2FBIN+1");
    }

    #[test]
    fn list_pages_pass_their_filter_and_cursor_to_the_api() {
        let q = |status: Option<&str>, after: Option<&str>| ListQuery {
            status: status.map(str::to_string),
            after: after.map(str::to_string),
            notice: None,
            error: None,
        };
        assert_eq!(q(None, None).api("/v1/counts"), "/v1/counts?limit=100");
        assert_eq!(q(Some(""), Some("")).api("/v1/counts"), "/v1/counts?limit=100");
        assert_eq!(q(Some("open"), Some("a b")).api("/v1/counts"), "/v1/counts?limit=100&status=open&after=a%20b");
    }

    #[test]
    fn scanned_paths_lose_stray_slashes_and_spaces() {
        assert_eq!(path_of(" /WH1/HALL-1/ "), "WH1/HALL-1");
    }
}
