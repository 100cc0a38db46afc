//! The reports page: inventory valuation as of a date, margin by order, line, product, channel or period, and the
//! accounting journal, each downloadable as CSV built from the same API answer the page shows.

use axum::extract::Query;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{enc, Failure, User};
use crate::layout::{self, txt, when, Flash};
use crate::pages::form::{blank, invalid};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/reports", get(reports))
        .route("/admin/reports/valuation.csv", get(valuation_csv))
        .route("/admin/reports/margin.csv", get(margin_csv))
        .route("/admin/reports/journal.csv", get(journal_csv))
}

const GROUPS: &[(&str, &str)] = &[
    ("order", "Order"),
    ("order_line", "Order line"),
    ("product", "Product"),
    ("channel", "Channel"),
    ("period", "Period (month)"),
];

/// The page's query: each report's own fields, so one report's form keeps the other's choice.
#[derive(Debug, Default, Deserialize)]
struct ReportQuery {
    /// Valuation as of the end of this day (YYYY-MM-DD); now when absent or today.
    as_of: Option<String>,
    warehouse: Option<String>,
    /// Margin and journal period, first and last day inclusive.
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

fn date(field: &str, v: &Option<String>) -> Result<Option<NaiveDate>, Failure> {
    match v.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| invalid(field, &format!("{s:?} is not a date (YYYY-MM-DD)"))),
    }
}

/// The API path of the valuation report for this query: as of the END of the chosen day (the API refuses a time
/// in the future, so today means now).
fn valuation_path(q: &ReportQuery) -> Result<String, Failure> {
    let mut params = Vec::new();
    if let Some(d) = date("as_of", &q.as_of)? {
        let end = (d + chrono::Days::new(1)).and_hms_opt(0, 0, 0).expect("midnight exists").and_utc();
        if end <= Utc::now() {
            params.push(format!("as_of={}", enc(&end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))));
        }
    }
    if let Some(w) = blank(&q.warehouse) {
        params.push(format!("warehouse={}", enc(w)));
    }
    Ok(with_params("/v1/reports/valuation", &params))
}

/// The API path of the margin report: `from` the start of the first day to the end of the last (default: the 30
/// days up to now).
fn margin_path(q: &ReportQuery) -> Result<String, Failure> {
    let mut params = Vec::new();
    let from = date("from", &q.from)?;
    let to = date("to", &q.to)?;
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(invalid("from", "must not be after to"));
        }
    }
    if let Some(f) = from {
        params.push(format!("from={}T00:00:00Z", f));
    }
    if let Some(t) = to {
        params.push(format!("to={}T00:00:00Z", t + chrono::Days::new(1)));
    }
    if let Some(g) = blank(&q.group_by) {
        if !GROUPS.iter().any(|(k, _)| *k == g) {
            return Err(invalid("group_by", "must be order, order_line, product, channel or period"));
        }
        params.push(format!("group_by={g}"));
    }
    Ok(with_params("/v1/reports/margin", &params))
}

fn with_params(path: &str, params: &[String]) -> String {
    if params.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{}", params.join("&"))
    }
}

/// The page's own query string for the CSV links: the same choices as the tables shown.
fn page_query(q: &ReportQuery) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("as_of", blank(&q.as_of)),
        ("warehouse", blank(&q.warehouse)),
        ("from", blank(&q.from)),
        ("to", blank(&q.to)),
        ("group_by", blank(&q.group_by)),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k, v)))
    .collect();
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

async fn reports(user: User, Query(q): Query<ReportQuery>) -> Response {
    let (vpath, mpath) = match (valuation_path(&q), margin_path(&q)) {
        (Ok(v), Ok(m)) => (v, m),
        (Err(f), _) | (_, Err(f)) => return layout::error_page(&user, &f),
    };
    let (val, mar, whs) =
        tokio::join!(user.get(&vpath), user.get(&mpath), user.get("/v1/locations?kind=warehouse&limit=500"));
    // A role the reports are not for gets the API's refusal as the page, not two refusals inside it.
    if let Err(f) = val.as_ref().and(mar.as_ref()) {
        if f.status == StatusCode::FORBIDDEN {
            return layout::error_page(&user, f);
        }
    }
    let whs = whs.ok().and_then(|v| v["items"].as_array().cloned()).unwrap_or_default();
    let qs = page_query(&q);
    let today = Utc::now().date_naive();
    let group = blank(&q.group_by).unwrap_or("order");
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    let body = html! {
        section #valuation {
            h2 { "Inventory valuation" }
            form.inline.no-print method="get" action="/admin/reports" {
                (keep(&q, &["from", "to", "group_by"]))
                div { label for="v-as-of" { "As of the end of" }
                    input #v-as-of type="date" name="as_of" max=(today) value=(blank(&q.as_of).unwrap_or("")); }
                div { label for="v-wh" { "Warehouse" }
                    select #v-wh name="warehouse" {
                        option value="" { "All" }
                        @for w in &whs {
                            @let p = txt(&w["path"]);
                            option value=(p) selected[blank(&q.warehouse) == Some(p.as_str())] { (p) }
                        }
                    }
                }
                button.secondary type="submit" { "Show" }
            }
            @match &val {
                Err(f) => p.flash.error role="alert" { (f.message()) },
                Ok(v) => (valuation_table(v, &qs)),
            }
        }
        section #margin {
            h2 { "Margin" }
            form.inline.no-print method="get" action="/admin/reports" {
                (keep(&q, &["as_of", "warehouse"]))
                div { label for="m-from" { "From" } input #m-from type="date" name="from" value=(blank(&q.from).unwrap_or("")); }
                div { label for="m-to" { "To (inclusive)" } input #m-to type="date" name="to" value=(blank(&q.to).unwrap_or("")); }
                div { label for="m-group" { "By" }
                    select #m-group name="group_by" {
                        @for (k, label) in GROUPS { option value=(k) selected[group == *k] { (label) } }
                    }
                }
                button.secondary type="submit" { "Show" }
            }
            @match &mar {
                Err(f) => p.flash.error role="alert" { (f.message()) },
                Ok(v) => (margin_table(v, &qs)),
            }
        }
        @if user.may("GET", "/v1/accounting/journal") {
            section #journal {
                h2 { "Accounting journal" }
                p.muted { "Balanced entries per costed movement, for the ledger of your accounting system." }
                form.inline.no-print method="get" action="/admin/reports/journal.csv" {
                    div { label for="j-from" { "From" }
                        input #j-from type="date" name="from" required value=(blank(&q.from).map_or_else(|| (today - chrono::Days::new(30)).to_string(), str::to_string)); }
                    div { label for="j-to" { "To (inclusive)" }
                        input #j-to type="date" name="to" required value=(blank(&q.to).map_or_else(|| today.to_string(), str::to_string)); }
                    button #journal-csv type="submit" { "Download journal CSV" }
                }
            }
        }
    };
    layout::page(&user, "Reports", &flash, body).into_response()
}

/// Hidden fields carrying the other report's choices through one report's form.
fn keep(q: &ReportQuery, names: &[&str]) -> Markup {
    let value = |n: &str| match n {
        "as_of" => blank(&q.as_of),
        "warehouse" => blank(&q.warehouse),
        "from" => blank(&q.from),
        "to" => blank(&q.to),
        "group_by" => blank(&q.group_by),
        _ => None,
    };
    html! { @for n in names { @if let Some(v) = value(n) { input type="hidden" name=(n) value=(v); } } }
}

fn valuation_table(v: &Value, qs: &str) -> Markup {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let totals = v["totals"].as_array().cloned().unwrap_or_default();
    let uncosted = v["uncosted_movements"].as_array().map_or(0, Vec::len);
    html! {
        p {
            "As of " (when(&v["as_of"]))
            @if let Some(w) = v["warehouse"].as_str() { " in " span.mono { (w) } }
            " · " a.no-print #valuation-csv href=(format!("/admin/reports/valuation.csv?{qs}")) download { "Download CSV" }
        }
        div.cards #valuation-totals {
            @for t in &totals {
                div.card { div.muted { "Total " (txt(&t["currency"])) } div.big.total { (txt(&t["value"])) } }
            }
        }
        @if uncosted > 0 {
            p.flash.error { (uncosted) " movement(s) came in without a cost and were valued at zero." }
        }
        @if items.is_empty() {
            p.muted { "No stock to value." }
        } @else {
            div.table-wrap {
                table #valuation-table {
                    thead { tr { th { "SKU" } th { "Method" } th.num { "Quantity" } th.num { "Unit cost" } th.num { "Value" } th { "Currency" } } }
                    tbody {
                        @for i in &items {
                            tr {
                                td.mono { a href=(format!("/admin/items/{}", enc(i["sku"].as_str().unwrap_or("")))) { (txt(&i["sku"])) } }
                                td { (txt(&i["method"])) }
                                td.num { (txt(&i["quantity"])) }
                                td.num { (txt(&i["unit_cost"])) }
                                td.num { (txt(&i["value"])) }
                                td { (txt(&i["currency"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn margin_table(v: &Value, qs: &str) -> Markup {
    let lines = v["lines"].as_array().cloned().unwrap_or_default();
    html! {
        p {
            (when(&v["from"])) " to " (when(&v["to"])) " by " (txt(&v["group_by"]).replace('_', " "))
            " · " a.no-print #margin-csv href=(format!("/admin/reports/margin.csv?{qs}")) download { "Download CSV" }
        }
        @if lines.is_empty() {
            p.muted { "Nothing shipped in this period." }
        } @else {
            div.table-wrap {
                table #margin-table {
                    thead { tr { th { "Group" } th.num { "Units" } th.num { "Revenue" } th.num { "COGS" }
                        th.num { "Gross margin" } th.num { "Margin %" } } }
                    tbody {
                        @for l in &lines {
                            tr {
                                td { (txt(&l["key"])) }
                                td.num { (txt(&l["units"])) }
                                td.num { (txt(&l["revenue"])) " " (txt(&l["currency"])) }
                                td.num { (txt(&l["cogs"])) " " (txt(&l["cost_currency"])) }
                                td.num { (txt(&l["gross_margin"])) }
                                td.num { (txt(&l["margin_percent"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A text cell a spreadsheet would run as a formula (`=…`, `+…`, `-…`, `@…`) gets a leading apostrophe.
fn cell(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s
    }
}

fn csv_of(header: &[&str], rows: impl Iterator<Item = Vec<String>>) -> Result<Vec<u8>, Failure> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| Failure {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal".into(),
        detail: format!("could not write the CSV: {e}"),
        errors: Vec::new(),
    };
    w.write_record(header).map_err(fail)?;
    for r in rows {
        w.write_record(&r).map_err(fail)?;
    }
    w.into_inner().map_err(|e| fail(e.into_error().into()))
}

/// The API's journal CSV with every data cell through [`cell`]: references are free text typed by users, so a
/// spreadsheet must not take one for a formula. The header row is kept as the API wrote it.
fn guarded_journal(api_csv: &[u8]) -> Result<Vec<u8>, Failure> {
    let fail = |e: csv::Error| Failure {
        status: StatusCode::BAD_GATEWAY,
        code: "bad_gateway".into(),
        detail: format!("the journal CSV from the API could not be read: {e}"),
        errors: Vec::new(),
    };
    let mut r = csv::ReaderBuilder::new().has_headers(true).flexible(true).from_reader(api_csv);
    let header: Vec<String> = r.headers().map_err(fail)?.iter().map(String::from).collect();
    let mut rows = Vec::new();
    for record in r.records() {
        rows.push(record.map_err(fail)?.iter().map(|c| cell(&Value::String(c.to_string()))).collect());
    }
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    csv_of(&header, rows.into_iter())
}

fn attachment(name: &str, body: Vec<u8>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}

/// A download that cannot be made goes back to the page with the reason (the browser stays where it was).
fn back_with(q: &ReportQuery, f: &Failure) -> Response {
    let qs = page_query(q);
    layout::failed(&if qs.is_empty() { "/admin/reports".to_string() } else { format!("/admin/reports?{qs}") }, f)
}

async fn valuation_csv(user: User, Query(q): Query<ReportQuery>) -> Response {
    let v = match valuation_path(&q) {
        Ok(p) => user.get(&p).await,
        Err(f) => Err(f),
    };
    let v = match v {
        Ok(v) => v,
        Err(f) => return back_with(&q, &f),
    };
    let items = v["items"].as_array().cloned().unwrap_or_default();
    let rows = items.iter().map(|i| {
        ["sku", "method", "quantity", "unit_cost", "value", "currency"].iter().map(|k| cell(&i[*k])).collect()
    });
    let day = v["as_of"].as_str().and_then(|s| s.get(..10)).unwrap_or("now").to_string();
    match csv_of(&["sku", "method", "quantity", "unit_cost", "value", "currency"], rows) {
        Ok(body) => attachment(&format!("valuation-{day}.csv"), body),
        Err(f) => back_with(&q, &f),
    }
}

async fn margin_csv(user: User, Query(q): Query<ReportQuery>) -> Response {
    let v = match margin_path(&q) {
        Ok(p) => user.get(&p).await,
        Err(f) => Err(f),
    };
    let v = match v {
        Ok(v) => v,
        Err(f) => return back_with(&q, &f),
    };
    let cols = ["key", "units", "revenue", "currency", "cogs", "cost_currency", "gross_margin", "margin_percent"];
    let lines = v["lines"].as_array().cloned().unwrap_or_default();
    let rows = lines.iter().map(|l| cols.iter().map(|k| cell(&l[*k])).collect());
    let name = format!("margin-by-{}.csv", v["group_by"].as_str().unwrap_or("order"));
    match csv_of(&cols, rows) {
        Ok(body) => attachment(&name, body),
        Err(f) => back_with(&q, &f),
    }
}

/// The journal is the API's own CSV, its cells guarded as the other downloads' are.
async fn journal_csv(user: User, Query(q): Query<ReportQuery>) -> Response {
    let (from, to) = match (date("from", &q.from), date("to", &q.to)) {
        (Ok(Some(f)), Ok(Some(t))) => (f, t),
        (Err(f), _) | (_, Err(f)) => return back_with(&q, &f),
        _ => return back_with(&q, &invalid("from", "choose the first and the last day")),
    };
    match user.get_raw(&format!("/v1/accounting/journal?from={from}&to={to}&format=csv"), "text/csv").await {
        Ok((_, body)) => match guarded_journal(&body) {
            Ok(body) => attachment(&format!("journal-{from}-{to}.csv"), body),
            Err(f) => back_with(&q, &f),
        },
        Err(f) => back_with(&q, &f),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "entry,posting_date,dated,period,kind,sku,quantity,account,debit,credit,currency,movement_ids,reference";

    #[test]
    fn a_journal_reference_that_looks_like_a_formula_is_quoted_and_the_rest_kept() {
        let api = format!(
            "{HEADER}\nJ-1,2026-11-01,2026-11-01,2026-11,receipt,TEE-BLK-S,-2,1400,0.00,-12.50,EUR,4 5,\
             \"=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\nJ-2,2026-11-02,2026-11-02,2026-11,sale,TEE,1,4000,3.00,0,EUR,6,\
             @SUM(A1)\n"
        );
        let out = String::from_utf8(guarded_journal(api.as_bytes()).unwrap()).unwrap();
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(HEADER));
        assert_eq!(
            lines.next(),
            Some(
                "J-1,2026-11-01,2026-11-01,2026-11,receipt,TEE-BLK-S,-2,1400,0.00,-12.50,EUR,4 5,\
                 \"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
            )
        );
        assert_eq!(lines.next(), Some("J-2,2026-11-02,2026-11-02,2026-11,sale,TEE,1,4000,3.00,0,EUR,6,'@SUM(A1)"));
        assert_eq!(lines.next(), None);
    }

    #[test]
    fn a_journal_the_csv_reader_cannot_read_is_refused() {
        let f = guarded_journal(b"entry,reference\nJ-1,\xff\xfe\n").unwrap_err();
        assert_eq!(f.status, StatusCode::BAD_GATEWAY);
    }
}
