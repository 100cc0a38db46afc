//! Cycle counts on the floor: open a count over a bin subtree or some SKUs, scan a bin, scan its items (each scan
//! one more, or a typed total), review the variance and approve it.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{Failure, User};
use crate::layout::{self, Flash};
use crate::pages::form::{plural, refusal, scanned_item};
use crate::pages::moves::{list_nav, path_of, quantity, short, url_with, ListQuery};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/counts", get(list).post(create))
        .route("/admin/counts/{id}", get(count))
        .route("/admin/counts/{id}/entries", post(enter))
        .route("/admin/counts/{id}/approve", post(approve))
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let flash = q.flash();
    let page = match user.get(&q.api("/v1/counts")).await {
        Ok(page) => page,
        Err(f) => return layout::error_page(&user, &f),
    };
    let counts = page["items"].as_array().cloned().unwrap_or_default();
    let (filters, next) = list_nav("/admin/counts", &q, &["open", "approved", "cancelled"], &page);
    let body = html! {
        @if user.may("POST", "/v1/counts") {
            section.panel.floor-step {
                h2 { "Open a count" }
                form.stack method="post" action="/admin/counts" {
                    (layout::csrf(&user)) (layout::idem())
                    label for="location" { "Bin or location (everything below it is counted)" }
                    input #location type="text" name="location" data-scan autofocus autocomplete="off" placeholder="e.g. WH1/HALL-1/SHELF-1/BIN-1";
                    label for="skus" { "Or only these SKUs (separated by spaces or commas; within the location if one is given)" }
                    input #skus type="text" name="skus" autocomplete="off";
                    label.check { input #blind type="checkbox" name="blind" value="1"; " Blind: hide the expected quantities from the counter" }
                    button #create-count type="submit" { "Open count" }
                }
            }
        }
        h2 { "Counts" }
        (filters)
        @if counts.is_empty() {
            p.muted { "No counts yet." }
        } @else {
            div.table-wrap {
                table.floor #counts {
                    thead { tr { th { "Count" } th { "Status" } th { "Blind" } th.num { "Lines" } th.num { "Counted" } th { "Snapshot" } } }
                    tbody {
                        @for c in &counts {
                            @let lines = c["lines"].as_array().cloned().unwrap_or_default();
                            @let counted = lines.iter().filter(|l| !l["counted"].is_null()).count();
                            tr {
                                td { a href=(format!("/admin/counts/{}", layout::txt(&c["id"]))) { "Count " (layout::txt(&c["id"])) } }
                                td { (layout::badge(&c["status"])) }
                                td { @if c["blind"] == true { "blind" } }
                                td.num { (lines.len()) }
                                td.num { (counted) }
                                td { (layout::when(&c["snapshot_at"])) }
                            }
                        }
                    }
                }
            }
        }
        (next)
    };
    layout::page(&user, "Counts", &flash, body).into_response()
}

#[derive(Deserialize)]
struct NewCountForm {
    #[serde(default)]
    location: String,
    #[serde(default)]
    skus: String,
    blind: Option<String>,
    #[serde(rename = "_idem")]
    idem: String,
}

async fn create(user: User, Form(form): Form<NewCountForm>) -> Response {
    let location = path_of(&form.location);
    let skus: Vec<&str> = form.skus.split([' ', ',', '\n', '\t']).map(str::trim).filter(|s| !s.is_empty()).collect();
    let mut body = json!({"blind": form.blind.is_some()});
    if !location.is_empty() {
        body["location"] = json!(location);
    }
    if !skus.is_empty() {
        body["skus"] = json!(skus);
    }
    if location.is_empty() && skus.is_empty() {
        return layout::failed("/admin/counts", &refusal("Scan a bin or location to count, or list SKUs."));
    }
    match user.post("/v1/counts", &body, Some(&form.idem)).await {
        Ok(c) => {
            let id = layout::txt(&c["id"]);
            let n = c["lines"].as_array().map(Vec::len).unwrap_or(0);
            // A count of one bin starts in that bin: the next scan is an item.
            let bins: std::collections::BTreeSet<String> =
                c["lines"].as_array().into_iter().flatten().map(|l| layout::txt(&l["location"])).collect();
            let bin = if bins.len() == 1 { bins.into_iter().next().unwrap_or_default() } else { String::new() };
            layout::done(
                &url_with(&format!("/admin/counts/{id}"), &[("bin", &bin)]),
                &format!("Count {id} opened: {} to count", plural(n, "line")),
            )
        }
        Err(f) => layout::failed("/admin/counts", &f),
    }
}

#[derive(Deserialize)]
struct CountQuery {
    /// The bin being counted: scans of items count there.
    bin: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

/// The bin a scan names: a full path, or a bin code that ends exactly one of the count's bin paths (labels on the
/// shelf often carry only the code).
fn resolve_bin(scan: &str, lines: &[Value]) -> String {
    let scan = path_of(scan);
    let paths: std::collections::BTreeSet<&str> = lines.iter().filter_map(|l| l["location"].as_str()).collect();
    if paths.contains(scan.as_str()) {
        return scan;
    }
    let suffix = format!("/{scan}");
    let matching: Vec<&&str> = paths.iter().filter(|p| p.ends_with(&suffix)).collect();
    match matching.as_slice() {
        [one] => one.to_string(),
        _ => scan,
    }
}

async fn count(user: User, Path(id): Path<i64>, Query(q): Query<CountQuery>) -> Response {
    let flash = Flash { notice: q.notice, error: q.error };
    let count = match user.get(&format!("/v1/counts/{id}")).await {
        Ok(c) => c,
        Err(f) => return layout::error_page(&user, &f),
    };
    let variance = if user.may("GET", "/v1/counts/{id}/variance") {
        user.get(&format!("/v1/counts/{id}/variance")).await.ok()
    } else {
        None
    };
    let lines = count["lines"].as_array().cloned().unwrap_or_default();
    let open = count["status"] == "open";
    let blind_hidden = count["blind"] == true && open;
    let bin = q.bin.as_deref().map(|b| resolve_bin(b, &lines)).filter(|b| !b.is_empty());
    let here = format!("/admin/counts/{id}");
    let may_enter = open && user.may("POST", "/v1/counts/{id}/entries");
    let in_bin: Vec<&Value> = lines.iter().filter(|l| Some(layout::txt(&l["location"])) == bin).collect();
    let body = html! {
        p { (layout::badge(&count["status"]))
            @if count["blind"] == true { " · blind" }
            " · snapshot " (layout::when(&count["snapshot_at"]))
            " · " a href="/admin/counts" { "all counts" } }
        @if may_enter {
            section.panel.floor-step {
                @match &bin {
                    None => {
                        form.scan method="get" action=(here) {
                            label for="bin" { "1. Scan the bin you are counting" }
                            input #bin type="text" name="bin" data-scan autofocus autocomplete="off" placeholder="Bin path or code";
                            button #bin-next type="submit" { "Next" }
                        }
                    }
                    Some(bin) => {
                        p.step { "Counting " strong.mono #count-bin { (bin) } " · " a href=(here) { "other bin" } }
                        form.scan.stack method="post" action=(format!("{here}/entries")) {
                            (layout::csrf(&user)) (layout::idem())
                            input type="hidden" name="bin" value=(bin);
                            label for="counted" { "Total counted (leave empty: each scan adds one)" }
                            input #counted type="number" name="counted" min="0" inputmode="numeric";
                            label for="item" { "2. Scan each item" }
                            input #item type="text" name="item" data-scan autofocus autocomplete="off" placeholder="Barcode or SKU";
                            button #count type="submit" { "Count" }
                        }
                    }
                }
            }
            @if bin.is_some() {
                h2 { "In this bin" }
                (line_table(&in_bin, blind_hidden, "bin-lines"))
            }
        }
        h2 { "Lines" }
        (line_table(&lines.iter().collect::<Vec<_>>(), blind_hidden, "count-lines"))
        (variance_view(variance.as_ref(), blind_hidden))
        @if open && user.may("POST", "/v1/counts/{id}/approve") {
            form.approve.no-print method="post" action=(format!("{here}/approve"))
                data-confirm=(format!("Approve count {id}? Each difference is booked as a cycle_count movement.")) {
                (layout::csrf(&user)) (layout::idem())
                button #approve type="submit" { "Approve count" }
            }
        }
    };
    layout::page(&user, &format!("Count {id}"), &flash, body).into_response()
}

fn line_table(lines: &[&Value], blind_hidden: bool, id: &str) -> Markup {
    html! {
        @if lines.is_empty() {
            p.muted { "No lines here yet: scan an item to count it." }
        } @else {
            div.table-wrap {
                table.floor id=(id) {
                    thead { tr { th { "SKU" } th { "Bin" } @if !blind_hidden { th.num { "Expected" } } th.num { "Counted" }
                        @if !blind_hidden { th.num { "Difference" } } } }
                    tbody {
                        @for l in lines {
                            tr data-sku=(layout::txt(&l["sku"])) {
                                td.mono { (layout::txt(&l["sku"])) }
                                td.mono { (short(&layout::txt(&l["location"]))) }
                                @if !blind_hidden { td.num { (layout::txt(&l["expected"])) } }
                                td.num.counted { (layout::txt(&l["counted"])) }
                                @if !blind_hidden { td.num { (layout::txt(&l["variance"])) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn variance_view(variance: Option<&Value>, blind_hidden: bool) -> Markup {
    html! {
        h2 { "Variance" }
        @if blind_hidden {
            p.muted #variance-hidden { "A blind count: expected quantities and differences show once it is approved." }
        } @else if let Some(v) = variance {
            div.cards #variance {
                div.card { div.muted { "Difference in units" } div.big { (layout::txt(&v["variance_units"])) } }
                div.card { div.muted { "Difference in value" } div.big { (layout::txt(&v["variance_value"])) } }
                div.card { div.muted { "Lines not counted" } div.big { (layout::txt(&v["uncounted"])) } }
            }
            @if v["uncounted"].as_i64().unwrap_or(0) > 0 {
                p.muted { "Approving leaves lines that were not counted as they are." }
            }
        }
    }
}

#[derive(Deserialize)]
struct EntryForm {
    bin: String,
    item: String,
    #[serde(default)]
    counted: String,
    #[serde(rename = "_idem")]
    idem: String,
}

async fn enter(user: User, Path(id): Path<i64>, Form(form): Form<EntryForm>) -> Response {
    let bin = path_of(&form.bin);
    let back = url_with(&format!("/admin/counts/{id}"), &[("bin", &bin)]);
    let sku = match scanned_item(&user, &form.item).await {
        Ok(s) => s,
        Err(f) => return layout::failed(&back, &f),
    };
    let (counted, how) = if form.counted.trim().is_empty() {
        // One more than counted so far: the API keeps totals, so the page adds the scan to what it holds.
        let count = match user.get(&format!("/v1/counts/{id}")).await {
            Ok(c) => c,
            Err(f) => return layout::failed(&back, &f),
        };
        let so_far = count["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["sku"] == sku.as_str() && l["location"] == bin.as_str())
            .and_then(|l| l["counted"].as_i64())
            .unwrap_or(0);
        (so_far + 1, " (+1)")
    } else {
        match quantity(&form.counted, 0) {
            Ok(n) => (n, ""),
            Err(f) => return layout::failed(&back, &f),
        }
    };
    let body = json!({"entries": [{"sku": sku, "location": bin, "counted": counted}]});
    match user.post(&format!("/v1/counts/{id}/entries"), &body, Some(&form.idem)).await {
        Ok(_) => layout::done(&back, &format!("Counted {counted} × {sku} in {}{how}", short(&bin))),
        // A second post under the page's key with another body: another unit, another SKU, or a resend
        // computed from a newer total. The page cannot tell which, so it must not claim the scan counted.
        // (A resend of the very same body is replayed by the API as the first answer and lands above.)
        Err(f) if matches!(f.code.as_str(), "idempotency_key_reused" | "idempotency_key_in_use") => {
            let not_counted = Failure {
                detail: format!(
                    "This scan of {sku} arrived before the page was ready and was not counted; \
                     check the total above and scan again if it was another unit."
                ),
                errors: Vec::new(),
                ..f
            };
            layout::failed(&back, &not_counted)
        }
        Err(f) => layout::failed(&back, &f),
    }
}

#[derive(Deserialize)]
struct ApproveForm {
    #[serde(rename = "_idem")]
    idem: String,
}

async fn approve(user: User, Path(id): Path<i64>, Form(form): Form<ApproveForm>) -> Response {
    let here = format!("/admin/counts/{id}");
    match user.post(&format!("/v1/counts/{id}/approve"), &json!({}), Some(&form.idem)).await {
        Ok(c) => {
            let booked: i64 = c["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|l| l["variance"].as_i64())
                .filter(|v| *v != 0)
                .count() as i64;
            layout::done(&here, &format!("Count {id} approved: {booked} differences booked as cycle_count"))
        }
        Err(mut f) => {
            // Say plainly that nothing was booked; the API's detail names the order lines in the way.
            f.detail = format!("Not approved, nothing booked: {}", f.detail);
            layout::failed(&here, &f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bin_code_names_the_one_bin_it_ends() {
        let lines = vec![
            json!({"location": "WH1/HALL-1/SHELF-1/BIN-1"}),
            json!({"location": "WH1/HALL-1/SHELF-1/BIN-2"}),
            json!({"location": "WH2/BIN-2"}),
        ];
        assert_eq!(resolve_bin("BIN-1", &lines), "WH1/HALL-1/SHELF-1/BIN-1");
        assert_eq!(resolve_bin(" WH2/BIN-2/ ", &lines), "WH2/BIN-2");
        // Two bins end in BIN-2: the scan stays as it is and the API decides.
        assert_eq!(resolve_bin("BIN-2", &lines), "BIN-2");
        assert_eq!(resolve_bin("BIN-9", &lines), "BIN-9");
    }
}
