//! Transfers between warehouses on the floor: the list, a new transfer built line by line from scans, and per
//! transfer shipping, cancelling a draft, and receiving at the destination line by line.

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, Failure, User};
use crate::layout::{self, Flash};
use crate::pages::form::{plural, refusal, scanned_item};
use crate::pages::moves::{bin_rows, list_nav, path_of, quantity, short, url_with, ListQuery};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/transfers", get(list))
        .route("/admin/transfers/new", get(new_page).post(new_submit))
        .route("/admin/transfers/{id}", get(transfer))
        .route("/admin/transfers/{id}/ship", post(ship))
        .route("/admin/transfers/{id}/cancel", post(cancel))
        .route("/admin/transfers/{id}/receive", post(receive))
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let flash = q.flash();
    let page = match user.get(&q.api("/v1/transfers")).await {
        Ok(page) => page,
        Err(f) => return layout::error_page(&user, &f),
    };
    let transfers = page["items"].as_array().cloned().unwrap_or_default();
    let statuses = ["draft", "in_transit", "partially_received", "received", "cancelled"];
    let (filters, next) = list_nav("/admin/transfers", &q, &statuses, &page);
    let body = html! {
        @if user.may("POST", "/v1/transfers") {
            p { a.button #new-transfer href="/admin/transfers/new" { "New transfer" } }
        }
        (filters)
        @if transfers.is_empty() {
            p.muted { "No transfers yet." }
        } @else {
            div.table-wrap {
                table.floor #transfers {
                    thead { tr { th { "Transfer" } th { "From" } th { "To" } th { "Status" } th.num { "Units" }
                        th.num { "In transit" } th { "Expected" } } }
                    tbody {
                        @for t in &transfers {
                            @let lines = t["lines"].as_array().cloned().unwrap_or_default();
                            @let units: i64 = lines.iter().map(|l| l["quantity"].as_i64().unwrap_or(0)).sum();
                            @let transit: i64 = lines.iter().map(|l| l["in_transit"].as_i64().unwrap_or(0)).sum();
                            tr {
                                td { a href=(format!("/admin/transfers/{}", layout::txt(&t["id"]))) { "Transfer " (layout::txt(&t["id"])) } }
                                td.mono { (layout::txt(&t["from_warehouse"])) }
                                td.mono { (layout::txt(&t["to_warehouse"])) }
                                td { (layout::badge(&t["status"])) }
                                td.num { (units) }
                                td.num { (transit) }
                                td { (layout::txt(&t["expected_date"])) }
                            }
                        }
                    }
                }
            }
        }
        (next)
    };
    layout::page(&user, "Transfers", &flash, body).into_response()
}

/// One line of a transfer being put together: the draft lives in the page's URL until it is created.
#[derive(Debug, Clone, PartialEq)]
struct DraftLine {
    sku: String,
    quantity: i64,
    bin: String,
}

/// The draft's lines as text, one per line: `SKU quantity from-bin`.
fn parse_lines(text: &str) -> Result<Vec<DraftLine>, Failure> {
    let mut lines = Vec::new();
    for (n, row) in text.lines().enumerate().filter(|(_, r)| !r.trim().is_empty()) {
        let parts: Vec<&str> = row.split_whitespace().collect();
        let [sku, qty, bin] = parts.as_slice() else {
            return Err(refusal(format!("Line {}: write 'SKU quantity from-bin', not '{}'.", n + 1, row.trim())));
        };
        let quantity = quantity(qty, 1).map_err(|f| refusal(format!("Line {}: {}", n + 1, f.detail)))?;
        lines.push(DraftLine { sku: sku.to_string(), quantity, bin: path_of(bin) });
    }
    Ok(lines)
}

fn format_lines(lines: &[DraftLine]) -> String {
    lines.iter().map(|l| format!("{} {} {}\n", l.sku, l.quantity, l.bin)).collect()
}

/// Adds a scan to the draft: the same SKU from the same bin adds up.
fn add_line(lines: &mut Vec<DraftLine>, line: DraftLine) {
    match lines.iter_mut().find(|l| l.sku == line.sku && l.bin == line.bin) {
        Some(l) => l.quantity += line.quantity,
        None => lines.push(line),
    }
}

#[derive(Deserialize, Default)]
struct Draft {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    expected_date: String,
    #[serde(default)]
    lines: String,
    notice: Option<String>,
    error: Option<String>,
}

impl Draft {
    fn url(&self, lines: &str) -> String {
        url_with(
            "/admin/transfers/new",
            &[("from", &self.from), ("to", &self.to), ("expected_date", &self.expected_date), ("lines", lines)],
        )
    }
}

async fn new_page(user: User, Query(d): Query<Draft>) -> Response {
    let flash = Flash { notice: d.notice.clone(), error: d.error.clone() };
    let warehouses = match user.get("/v1/locations?kind=warehouse&limit=500").await {
        Ok(page) => page["items"].as_array().cloned().unwrap_or_default(),
        Err(f) => return layout::error_page(&user, &f),
    };
    let lines = parse_lines(&d.lines).unwrap_or_default();
    let choose = |name: &str, chosen: &str| {
        html! {
            select id=(name) name=(name) required {
                option value="" { "—" }
                @for w in &warehouses {
                    @let path = layout::txt(&w["path"]);
                    option value=(path) selected[path == chosen] { (path) " · " (layout::txt(&w["name"])) }
                }
            }
        }
    };
    let body = html! {
        form.scan.stack.floor-step method="post" action="/admin/transfers/new" {
            (layout::csrf(&user)) (layout::idem())
            label for="from" { "From warehouse" } (choose("from", &d.from))
            label for="to" { "To warehouse" } (choose("to", &d.to))
            label for="expected_date" { "Expected on (optional)" }
            input #expected_date type="date" name="expected_date" value=(d.expected_date);
            label for="item" { "Scan an item to add" }
            input #item type="text" name="item" data-scan autofocus autocomplete="off" placeholder="Barcode or SKU";
            label for="quantity" { "How many" }
            input #quantity type="number" name="quantity" value="1" min="1" inputmode="numeric";
            label for="from_bin" { "From bin (empty: the bin with the most available)" }
            input #from_bin type="text" name="from_bin" autocomplete="off";
            // The first button is what Enter in the scan field presses: a scan adds a line.
            button #add-line type="submit" name="action" value="add" { "Add line" }
            h2 { "Lines" }
            @if lines.is_empty() {
                p.muted { "No lines yet: scan the items to send." }
            } @else {
                div.table-wrap {
                    table.floor #draft-lines {
                        thead { tr { th { "SKU" } th.num { "Quantity" } th { "From bin" } } }
                        tbody { @for l in &lines { tr { td.mono { (l.sku) } td.num { (l.quantity) } td.mono { (l.bin) } } } }
                    }
                }
            }
            details {
                summary { "Edit the lines as text" }
                label for="lines" { "One line each: SKU quantity from-bin" }
                textarea #lines name="lines" rows="5" { (format_lines(&lines)) }
            }
            button.secondary #create-transfer type="submit" name="action" value="create" { "Create transfer" }
        }
    };
    layout::page(&user, "New transfer", &flash, body).into_response()
}

#[derive(Deserialize)]
struct NewForm {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    expected_date: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    from_bin: String,
    #[serde(default)]
    lines: String,
    #[serde(default)]
    action: String,
    #[serde(rename = "_idem")]
    idem: String,
}

async fn new_submit(user: User, Form(form): Form<NewForm>) -> Response {
    let draft = Draft {
        from: path_of(&form.from),
        to: path_of(&form.to),
        expected_date: form.expected_date.trim().to_string(),
        ..Default::default()
    };
    let mut lines = match parse_lines(&form.lines) {
        Ok(l) => l,
        Err(f) => return layout::failed(&draft.url(&form.lines), &f),
    };
    let mut added = None;
    if !form.item.trim().is_empty() {
        match scanned_line(&user, &draft.from, &form).await {
            Ok(line) => {
                added = Some(format!("Added {} × {} from {}", line.quantity, line.sku, short(&line.bin)));
                add_line(&mut lines, line);
            }
            Err(f) => return layout::failed(&draft.url(&format_lines(&lines)), &f),
        }
    }
    let text = format_lines(&lines);
    if form.action != "create" {
        return match added {
            Some(notice) => layout::done(&draft.url(&text), &notice),
            None => layout::failed(&draft.url(&text), &refusal("Scan an item to add it.")),
        };
    }
    if lines.is_empty() {
        return layout::failed(&draft.url(&text), &refusal("Add at least one line before creating the transfer."));
    }
    let mut body = json!({
        "from_warehouse": draft.from,
        "to_warehouse": draft.to,
        "lines": lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity, "from_location": l.bin})).collect::<Vec<_>>(),
    });
    if !draft.expected_date.is_empty() {
        body["expected_date"] = json!(draft.expected_date);
    }
    match user.post("/v1/transfers", &body, Some(&form.idem)).await {
        Ok(t) => {
            let id = layout::txt(&t["id"]);
            layout::done(
                &format!("/admin/transfers/{id}"),
                &format!("Transfer {id} created with {}", plural(lines.len(), "line")),
            )
        }
        Err(f) => layout::failed(&draft.url(&text), &f),
    }
}

/// The line a scan adds: the scanned item, from the bin given or else the bin of the sending warehouse with the
/// most of it available.
async fn scanned_line(user: &User, from: &str, form: &NewForm) -> Result<DraftLine, Failure> {
    if from.is_empty() {
        return Err(refusal("Choose the warehouse to send from first."));
    }
    let sku = scanned_item(user, &form.item).await?;
    let qty = quantity(&form.quantity, 1)?;
    let mut bin = path_of(&form.from_bin);
    if bin.is_empty() {
        let levels = user.get(&format!("/v1/inventory/levels?sku={}&location={}", enc(&sku), enc(from))).await?;
        let best = bin_rows(&levels)
            .into_iter()
            .filter(|(s, _, q)| *s == sku && q["available"].as_i64().unwrap_or(0) > 0)
            .max_by_key(|(_, _, q)| q["available"].as_i64().unwrap_or(0));
        match best {
            Some((_, b, _)) => bin = b,
            None => return Err(refusal(format!("No {sku} is available in {from}."))),
        }
    }
    Ok(DraftLine { sku, quantity: qty, bin })
}

async fn transfer(user: User, Path(id): Path<i64>, Query(flash): Query<Flash>) -> Response {
    let t = match user.get(&format!("/v1/transfers/{id}")).await {
        Ok(t) => t,
        Err(f) => return layout::error_page(&user, &f),
    };
    let status = layout::txt(&t["status"]);
    let lines = t["lines"].as_array().cloned().unwrap_or_default();
    let here = format!("/admin/transfers/{id}");
    let receiving = matches!(status.as_str(), "in_transit" | "partially_received");
    let body = html! {
        p { (layout::badge(&t["status"])) " · from " span.mono { (layout::txt(&t["from_warehouse"])) }
            " to " span.mono { (layout::txt(&t["to_warehouse"])) }
            " · expected " (layout::txt(&t["expected_date"]))
            " · " a href="/admin/transfers" { "all transfers" } }
        div.table-wrap {
            table.floor #transfer-lines {
                thead { tr { th { "#" } th { "SKU" } th { "From bin" } th.num { "Quantity" } th.num { "Shipped" }
                    th.num { "Received" } th.num { "Damaged" } th.num { "Lost" } th.num { "In transit" } } }
                tbody {
                    @for l in &lines {
                        tr data-sku=(layout::txt(&l["sku"])) {
                            td { (layout::txt(&l["line"])) } td.mono { (layout::txt(&l["sku"])) }
                            td.mono { (short(&layout::txt(&l["from_location"]))) }
                            td.num { (layout::txt(&l["quantity"])) } td.num { (layout::txt(&l["shipped"])) }
                            td.num.received { (layout::txt(&l["received"])) } td.num { (layout::txt(&l["damaged"])) }
                            td.num { (layout::txt(&l["lost"])) } td.num.in-transit { (layout::txt(&l["in_transit"])) }
                        }
                    }
                }
            }
        }
        @if status == "draft" {
            div.actions.no-print {
                @if user.may("POST", "/v1/transfers/{id}/ship") {
                    form.inline method="post" action=(format!("{here}/ship")) {
                        (layout::csrf(&user)) (layout::idem())
                        button #ship type="submit" { "Ship: take the stock out to transit" }
                    }
                }
                @if user.may("POST", "/v1/transfers/{id}/cancel") {
                    form.inline method="post" action=(format!("{here}/cancel")) data-confirm=(format!("Cancel transfer {id}?")) {
                        (layout::csrf(&user)) (layout::idem())
                        button.danger #cancel type="submit" { "Cancel transfer" }
                    }
                }
            }
        }
        @if receiving && user.may("POST", "/v1/transfers/{id}/receipts") {
            (receive_form(&user, &here, &layout::txt(&t["to_warehouse"]), &lines))
        }
    };
    layout::page(&user, &format!("Transfer {id}"), &flash, body).into_response()
}

fn receive_form(user: &User, here: &str, to: &str, lines: &[Value]) -> Markup {
    html! {
        h2 { "Receive at " span.mono { (to) } }
        form.receive-lines method="post" action=(format!("{here}/receive")) {
            (layout::csrf(user)) (layout::idem())
            div.table-wrap {
                table.floor {
                    thead { tr { th { "SKU" } th.num { "In transit" } th { "Arrived sound" } th { "Damaged" } th { "Lost" }
                        th { "Into bin (empty: putaway)" } } }
                    tbody {
                        @for l in lines.iter().filter(|l| l["in_transit"].as_i64().unwrap_or(0) > 0) {
                            @let n = layout::txt(&l["line"]);
                            tr {
                                td.mono { (layout::txt(&l["sku"])) }
                                td.num { (layout::txt(&l["in_transit"])) }
                                td { input.qty id=(format!("received_{n}")) type="number" min="0" inputmode="numeric"
                                    name=(format!("received_{n}")) value=(layout::txt(&l["in_transit"])); }
                                td { input.qty id=(format!("damaged_{n}")) type="number" min="0" inputmode="numeric"
                                    name=(format!("damaged_{n}")) value="0"; }
                                td { input.qty id=(format!("lost_{n}")) type="number" min="0" inputmode="numeric"
                                    name=(format!("lost_{n}")) value="0"; }
                                td { input id=(format!("bin_{n}")) type="text" name=(format!("bin_{n}")) autocomplete="off"; }
                            }
                        }
                    }
                }
            }
            button #receive type="submit" { "Receive" }
        }
    }
}

#[derive(Deserialize)]
struct StepForm {
    #[serde(rename = "_idem")]
    idem: String,
}

async fn ship(user: User, Path(id): Path<i64>, Form(form): Form<StepForm>) -> Response {
    let here = format!("/admin/transfers/{id}");
    match user.post(&format!("/v1/transfers/{id}/ship"), &json!({}), Some(&form.idem)).await {
        Ok(t) => {
            let units: i64 =
                t["lines"].as_array().into_iter().flatten().map(|l| l["shipped"].as_i64().unwrap_or(0)).sum();
            layout::done(&here, &format!("Shipped transfer {id}: {units} units in transit"))
        }
        Err(f) => layout::failed(&here, &f),
    }
}

async fn cancel(user: User, Path(id): Path<i64>, Form(form): Form<StepForm>) -> Response {
    let here = format!("/admin/transfers/{id}");
    match user.post(&format!("/v1/transfers/{id}/cancel"), &json!({}), Some(&form.idem)).await {
        Ok(_) => layout::done(&here, &format!("Transfer {id} cancelled")),
        Err(f) => layout::failed(&here, &f),
    }
}

/// The receipt's lines from the per-line fields `received_N`, `damaged_N`, `lost_N` and `bin_N`.
fn receipt_lines(form: &HashMap<String, String>) -> Result<Vec<Value>, Failure> {
    let mut numbers: Vec<usize> =
        form.keys().filter_map(|k| k.strip_prefix("received_")).filter_map(|n| n.parse().ok()).collect();
    numbers.sort_unstable();
    let mut lines = Vec::new();
    for n in numbers {
        let field = |name: &str| form.get(&format!("{name}_{n}")).map(String::as_str).unwrap_or("").trim().to_string();
        let amount = |name: &str| {
            let text = field(name);
            if text.is_empty() {
                Ok(0)
            } else {
                quantity(&text, 0).map_err(|f| refusal(format!("Line {n}, {name}: {}", f.detail)))
            }
        };
        let (received, damaged, lost) = (amount("received")?, amount("damaged")?, amount("lost")?);
        if received + damaged + lost == 0 {
            continue;
        }
        let mut line = json!({"line": n, "received": received, "damaged": damaged, "lost": lost});
        let bin = path_of(&field("bin"));
        if !bin.is_empty() {
            line["location"] = json!(bin);
        }
        lines.push(line);
    }
    if lines.is_empty() {
        return Err(refusal("Enter how many arrived (or were damaged or lost) on at least one line."));
    }
    Ok(lines)
}

async fn receive(user: User, Path(id): Path<i64>, Form(form): Form<HashMap<String, String>>) -> Response {
    let here = format!("/admin/transfers/{id}");
    let lines = match receipt_lines(&form) {
        Ok(l) => l,
        Err(f) => return layout::failed(&here, &f),
    };
    let idem = form.get("_idem").cloned().unwrap_or_default();
    let total = |k: &str| lines.iter().map(|l| l[k].as_i64().unwrap_or(0)).sum::<i64>();
    let notice = format!(
        "Received on transfer {id}: {} sound, {} damaged, {} lost",
        total("received"),
        total("damaged"),
        total("lost")
    );
    match user.post(&format!("/v1/transfers/{id}/receipts"), &json!({"lines": lines}), Some(&idem)).await {
        Ok(_) => layout::done(&here, &notice),
        Err(f) => layout::failed(&here, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draft_lines_survive_the_round_trip_through_text() {
        let text = "TEE-BLK-S 3 WH1/HALL-1/SHELF-1/BIN-1\n\n  TEE-BLK-M 1 /WH1/HALL-1/SHELF-1/BIN-2/ \n";
        let lines = parse_lines(text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].bin, "WH1/HALL-1/SHELF-1/BIN-2");
        assert_eq!(parse_lines(&format_lines(&lines)).unwrap(), lines);
    }

    #[test]
    fn bad_draft_lines_are_refused_with_their_number() {
        assert!(parse_lines("TEE-BLK-S 3").unwrap_err().detail.starts_with("Line 1:"));
        assert!(parse_lines("A 1 B\nTEE-BLK-S zero BIN").unwrap_err().detail.starts_with("Line 2:"));
        assert!(parse_lines("TEE-BLK-S 0 BIN").is_err());
    }

    #[test]
    fn scanning_the_same_item_from_the_same_bin_adds_up() {
        let mut lines = Vec::new();
        let line = |bin: &str| DraftLine { sku: "A".into(), quantity: 1, bin: bin.into() };
        add_line(&mut lines, line("B1"));
        add_line(&mut lines, line("B1"));
        add_line(&mut lines, line("B2"));
        assert_eq!(lines.iter().map(|l| (l.bin.as_str(), l.quantity)).collect::<Vec<_>>(), [("B1", 2), ("B2", 1)]);
    }

    #[test]
    fn receipt_lines_skip_empty_lines_and_refuse_bad_numbers() {
        let form: HashMap<String, String> = [
            ("received_0", "3"),
            ("damaged_0", "1"),
            ("lost_0", ""),
            ("bin_0", "WH2/BIN-1"),
            ("received_1", "0"),
            ("damaged_1", "0"),
            ("lost_1", "0"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let lines = receipt_lines(&form).unwrap();
        assert_eq!(lines, vec![json!({"line": 0, "received": 3, "damaged": 1, "lost": 0, "location": "WH2/BIN-1"})]);
        let mut bad = form.clone();
        bad.insert("lost_1".into(), "-1".into());
        assert!(receipt_lines(&bad).is_err());
        let nothing: HashMap<String, String> = [("received_0".to_string(), "0".to_string())].into_iter().collect();
        assert!(receipt_lines(&nothing).is_err());
    }
}
