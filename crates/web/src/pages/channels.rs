//! The channels pages: the channels, one channel's settings and its availability rules by scope, and the rule
//! form whose Preview shows each affected SKU's availability before and after without saving (the API's
//! preview), and whose Save (admins only) sets the rules.

use std::collections::BTreeMap;

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::{enc, Failure, User};
use crate::layout::{self, Flash};
use crate::pages::catalog::{int_field, list_field};
use crate::pages::form::invalid;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/channels", get(list).post(create))
        .route("/admin/channels/{code}", get(channel).post(update))
        .route("/admin/channels/{code}/rules", post(rules))
        .route("/admin/channels/{code}/rules/delete", post(delete_rules))
}

const SCOPES: [&str; 4] = ["item", "category", "tag", "channel"];
/// The rule fields that are whole numbers, with their labels.
const NUMBER_RULES: [(&str, &str); 6] = [
    ("hide_below", "Stop showing below (units)"),
    ("low_stock_below", "Low stock below (units)"),
    ("channel_buffer", "Buffer held back from this channel (units)"),
    ("share_percent", "At most this share of the stock (%)"),
    ("share_units", "At most this many units"),
    ("velocity_days", "Hold back this many days of sales"),
];

fn channel_path(code: &str) -> String {
    format!("/admin/channels/{}", enc(code))
}

async fn list(user: User, Query(flash): Query<Flash>) -> Response {
    let channels = match user.get("/v1/channels?limit=100").await {
        Ok(c) => c,
        Err(f) => return layout::error_page(&user, &f),
    };
    let empty = vec![];
    let items = channels["items"].as_array().unwrap_or(&empty);
    let body = html! {
        div.table-wrap {
            table id="channels" {
                thead { tr { th { "Channel" } th { "Name" } th { "Market" } th { "Currency" } th { "Warehouses" } } }
                tbody {
                    @for c in items {
                        tr {
                            td.mono { a href=(channel_path(&layout::txt(&c["code"]))) { (layout::txt(&c["code"])) } }
                            td { (layout::txt(&c["name"])) }
                            td { (layout::txt(&c["market_country"])) }
                            td { (layout::txt(&c["currency"])) }
                            td { (join(&c["warehouses"])) }
                        }
                    }
                    @if items.is_empty() { tr { td colspan="5" .muted { "No channels yet." } } }
                }
            }
        }
        @if user.may("POST", "/v1/channels") {
            section.panel.no-print {
                h2 { "New channel" }
                form.stack.labelled id="new-channel" method="post" action="/admin/channels" {
                    (layout::csrf(&user)) (layout::idem())
                    label { "Code " span.muted { "(orders name it as their source)" } input name="code" required; }
                    label { "Name" input name="name" required; }
                    label { "Market country" input name="market_country" maxlength="2" placeholder="DE" required; }
                    label { "Currency" input name="currency" maxlength="3" value="EUR" required; }
                    label { "Warehouses " span.muted { "(codes in priority order, comma-separated)" } input name="warehouses" required; }
                    button id="create-channel" type="submit" { "Create channel" }
                }
            }
        }
    };
    layout::page(&user, "Channels", &flash, body).into_response()
}

fn join(v: &Value) -> String {
    v.as_array().map(|a| a.iter().map(layout::txt).collect::<Vec<_>>().join(", ")).unwrap_or_default()
}

#[derive(Debug, Deserialize)]
struct ChannelForm {
    #[serde(default)]
    code: String,
    name: String,
    market_country: String,
    currency: String,
    warehouses: String,
    #[serde(default)]
    _idem: String,
}

impl ChannelForm {
    fn body(&self) -> Value {
        json!({"name": self.name.trim(), "market_country": self.market_country.trim().to_uppercase(),
            "currency": self.currency.trim().to_uppercase(), "warehouses": list_field(&self.warehouses)})
    }
}

async fn create(user: User, Form(f): Form<ChannelForm>) -> Response {
    let mut body = f.body();
    body["code"] = json!(f.code.trim());
    match user.post("/v1/channels", &body, Some(&f._idem)).await {
        Ok(c) => layout::done(&channel_path(&layout::txt(&c["code"])), "Channel created"),
        Err(e) => layout::failed("/admin/channels", &e),
    }
}

async fn update(user: User, Path(code): Path<String>, Form(f): Form<ChannelForm>) -> Response {
    match user.patch(&format!("/v1/channels/{}", enc(&code)), &f.body()).await {
        Ok(_) => layout::done(&channel_path(&code), "Channel saved"),
        Err(e) => layout::failed(&channel_path(&code), &e),
    }
}

/// The rule form's fields, as typed: numbers stay text until sent, so a page shown again keeps what was typed.
#[derive(Debug, Clone, Default, Deserialize)]
struct RuleForm {
    #[serde(default)]
    scope: String,
    #[serde(default)]
    key: String,
    /// Empty: not set at this scope.
    #[serde(default)]
    policy: String,
    #[serde(default)]
    hide_below: String,
    #[serde(default)]
    low_stock_below: String,
    #[serde(default)]
    channel_buffer: String,
    #[serde(default)]
    share_percent: String,
    #[serde(default)]
    share_units: String,
    #[serde(default)]
    velocity_days: String,
    /// `WH1=2, WH2=1`.
    #[serde(default)]
    safety_stock: String,
    /// Comma-separated warehouse codes.
    #[serde(default)]
    excluded_warehouses: String,
    /// `preview` or `save`: which button was pressed.
    #[serde(default)]
    action: String,
}

impl RuleForm {
    fn number(&self, name: &str) -> &str {
        match name {
            "hide_below" => &self.hide_below,
            "low_stock_below" => &self.low_stock_below,
            "channel_buffer" => &self.channel_buffer,
            "share_percent" => &self.share_percent,
            "share_units" => &self.share_units,
            "velocity_days" => &self.velocity_days,
            _ => "",
        }
    }

    /// The form filled from a saved rule set (`GET …/rules` item).
    fn from_saved(r: &Value) -> RuleForm {
        let rules = &r["rules"];
        let n = |k: &str| rules[k].as_i64().map(|v| v.to_string()).unwrap_or_default();
        let safety = rules["safety_stock"]
            .as_object()
            .map(|m| m.iter().map(|(w, q)| format!("{w}={q}")).collect::<Vec<_>>().join(", "))
            .unwrap_or_default();
        RuleForm {
            scope: layout::txt(&r["scope"]),
            key: r["key"].as_str().unwrap_or("").to_string(),
            policy: rules["policy"].as_str().unwrap_or("").to_string(),
            hide_below: n("hide_below"),
            low_stock_below: n("low_stock_below"),
            channel_buffer: n("channel_buffer"),
            share_percent: n("share_percent"),
            share_units: n("share_units"),
            velocity_days: n("velocity_days"),
            safety_stock: safety,
            excluded_warehouses: join(&rules["excluded_warehouses"]),
            action: String::new(),
        }
    }

    /// The API's `RulesRequest`; a number or safety stock that does not parse is refused here.
    fn request(&self) -> Result<Value, Failure> {
        let mut rules = Map::new();
        if !self.policy.is_empty() {
            rules.insert("policy".into(), json!(self.policy));
        }
        for (name, _) in NUMBER_RULES {
            if let Some(n) = int_field(&format!("rules.{name}"), self.number(name))? {
                rules.insert(name.into(), json!(n));
            }
        }
        if !self.safety_stock.trim().is_empty() {
            let mut m = BTreeMap::new();
            for part in list_field(&self.safety_stock) {
                let (w, q) = part
                    .split_once('=')
                    .ok_or_else(|| invalid("rules.safety_stock", "write WAREHOUSE=units, comma-separated"))?;
                let q = int_field("rules.safety_stock", q)?
                    .ok_or_else(|| invalid("rules.safety_stock", "write WAREHOUSE=units, comma-separated"))?;
                m.insert(w.trim().to_string(), q);
            }
            rules.insert("safety_stock".into(), json!(m));
        }
        if !self.excluded_warehouses.trim().is_empty() {
            rules.insert("excluded_warehouses".into(), json!(list_field(&self.excluded_warehouses)));
        }
        let mut req = json!({"scope": self.scope, "rules": rules});
        if !self.key.trim().is_empty() {
            req["key"] = json!(self.key.trim());
        }
        Ok(req)
    }
}

#[derive(Debug, Default, Deserialize)]
struct ChannelQuery {
    scope: Option<String>,
    key: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn channel(user: User, Path(code): Path<String>, Query(q): Query<ChannelQuery>) -> Response {
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    channel_page(&user, &code, flash, None, None, StatusCode::OK, q.scope.as_deref(), q.key.as_deref()).await
}

/// The channel's page: settings, rules, the rule form (filled with `form`, else the rule picked by
/// `pick_scope`/`pick_key`, else empty for an item rule) and a preview when there is one.
#[allow(clippy::too_many_arguments)]
async fn channel_page(
    user: &User,
    code: &str,
    flash: Flash,
    form: Option<&RuleForm>,
    preview: Option<&Value>,
    status: StatusCode,
    pick_scope: Option<&str>,
    pick_key: Option<&str>,
) -> Response {
    let (channel_api, rules_api) = (format!("/v1/channels/{}", enc(code)), format!("/v1/channels/{}/rules", enc(code)));
    let (c, rules) = tokio::join!(user.get(&channel_api), user.get(&rules_api));
    let (c, rules) = match (c, rules) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(f), _) | (_, Err(f)) => return layout::error_page(user, &f),
    };
    let empty = vec![];
    let saved = rules.as_array().unwrap_or(&empty);
    let picked = pick_scope.and_then(|s| {
        saved.iter().find(|r| r["scope"] == s && r["key"].as_str().unwrap_or("") == pick_key.unwrap_or(""))
    });
    let form = match (form, picked) {
        (Some(f), _) => f.clone(),
        (None, Some(r)) => RuleForm::from_saved(r),
        (None, None) => RuleForm { scope: "item".into(), ..Default::default() },
    };
    let here = channel_path(code);
    let may_save = user.may("PUT", "/v1/channels/{code}/rules");
    let body = html! {
        p { a href="/admin/channels" { "All channels" } }
        section.panel {
            h2 { "Settings" }
            p {
                (layout::txt(&c["name"])) " · market " (layout::txt(&c["market_country"])) " · "
                (layout::txt(&c["currency"])) " · sells from " strong { (join(&c["warehouses"])) }
                " · " (c["prices"].as_object().map(Map::len).unwrap_or(0)) " channel prices"
                " · updated " (layout::when(&c["updated_at"]))
            }
            @if user.may("PATCH", "/v1/channels/{code}") {
                details {
                    summary { "Edit settings" }
                    form.stack.labelled id="edit-channel" method="post" action=(here) {
                        (layout::csrf(user))
                        label { "Name" input name="name" value=(layout::txt(&c["name"])) required; }
                        label { "Market country" input name="market_country" maxlength="2" value=(layout::txt(&c["market_country"])) required; }
                        label { "Currency" input name="currency" maxlength="3" value=(layout::txt(&c["currency"])) required; }
                        label { "Warehouses " span.muted { "(priority order)" } input name="warehouses" value=(join(&c["warehouses"])) required; }
                        button id="save-channel" type="submit" { "Save settings" }
                    }
                }
            }
        }
        h2 { "Availability rules" }
        p.muted { "The most specific scope that sets a field wins: item, then tag, then category, then the channel." }
        div.table-wrap {
            table id="rules" {
                thead { tr { th { "Scope" } th { "Key" } th { "Rules" } th.no-print {} } }
                tbody {
                    @for r in saved {
                        @let scope = layout::txt(&r["scope"]);
                        @let key = r["key"].as_str().unwrap_or("");
                        tr {
                            td { (scope) }
                            td.mono { (key) }
                            td { (describe(&r["rules"])) }
                            td.no-print {
                                a href=(format!("{here}?scope={}&key={}#rule-form", enc(&scope), enc(key))) { "Edit" }
                                @if user.may("DELETE", "/v1/channels/{code}/rules") {
                                    form.inline method="post" action=(format!("{here}/rules/delete"))
                                        data-confirm=(format!("Remove the {scope} rules {key}?")) {
                                        (layout::csrf(user))
                                        input type="hidden" name="scope" value=(scope);
                                        input type="hidden" name="key" value=(key);
                                        button.secondary type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                    @if saved.is_empty() { tr { td colspan="4" .muted { "No rules: the catalog's policy and all the stock of the channel's warehouses." } } }
                }
            }
        }
        @if let Some(p) = preview { (preview_table(p)) }
        @if user.may("POST", "/v1/channels/{code}/rules/preview") {
            section.panel.no-print id="rule-form" {
                h2 { "Set rules" }
                p.muted { "Preview shows what would change, without saving. Saving replaces the rules of that scope." }
                (rule_form(user, &here, &form, may_save))
            }
        }
    };
    (status, layout::page(user, &format!("Channel {code}"), &flash, body)).into_response()
}

/// A saved rule set in words.
fn describe(rules: &Value) -> Markup {
    let Some(m) = rules.as_object() else { return html! {} };
    html! {
        @if m.is_empty() { span.muted { "nothing set" } }
        @for (k, v) in m {
            span.rule { span.muted { (k.replace('_', " ")) } " " (match v {
                Value::Object(o) => o.iter().map(|(w, q)| format!("{w}: {q}")).collect::<Vec<_>>().join(", "),
                Value::Array(_) => join(v),
                other => layout::txt(other),
            }) } " "
        }
    }
}

fn rule_form(user: &User, here: &str, f: &RuleForm, may_save: bool) -> Markup {
    html! {
        form.stack.labelled id="rules-form" method="post" action=(format!("{here}/rules")) {
            (layout::csrf(user))
            label { "Scope" select name="scope" { @for s in SCOPES { option value=(s) selected[f.scope == s] { (s) } } } }
            label { "Key " span.muted { "(the SKU, tag or category path; empty for the channel scope)" }
                input name="key" value=(f.key); }
            label { "At zero"
                select name="policy" {
                    option value="" selected[f.policy.is_empty()] { "not set here" }
                    option value="deny" selected[f.policy == "deny"] { "stop selling (out of stock)" }
                    option value="continue" selected[f.policy == "continue"] { "continue selling" }
                    option value="backorder" selected[f.policy == "backorder"] { "take backorders" }
                }
            }
            @for (name, label) in NUMBER_RULES {
                label { (label) input name=(name) inputmode="numeric" value=(f.number(name)); }
            }
            label { "Safety stock per warehouse " span.muted { "(WH1=2, WH2=1)" } input name="safety_stock" value=(f.safety_stock); }
            label { "Do not sell from " span.muted { "(warehouse codes)" } input name="excluded_warehouses" value=(f.excluded_warehouses); }
            div {
                button.secondary id="preview" type="submit" name="action" value="preview" { "Preview" }
                @if may_save { " " button id="save-rules" type="submit" name="action" value="save" { "Save" } }
            }
        }
    }
}

fn preview_table(p: &Value) -> Markup {
    let empty = vec![];
    let items = p["items"].as_array().unwrap_or(&empty);
    let cell = |a: &Value| {
        html! {
            (layout::badge(&a["status"]))
            @if a["listed"] == false { " " span.muted { "hidden" } }
        }
    };
    html! {
        section.panel id="preview-result" {
            h2 { "Preview (not saved)" }
            p { strong id="preview-changed" { (layout::txt(&p["changed"])) } " of " (items.len()) " SKUs would change."
                @if p["truncated"] == true { " Only the first " (items.len()) " SKUs of the scope are shown." } }
            div.table-wrap {
                table id="preview-table" {
                    thead {
                        tr { th { "SKU" } th.num { "Shown now" } th { "Now" } th.num { "Shown after" } th { "After" } }
                    }
                    tbody {
                        @for i in items {
                            @let changed = i["before"] != i["after"];
                            tr data-sku=(layout::txt(&i["sku"])) class=[changed.then_some("changed")] {
                                td.mono { (layout::txt(&i["sku"])) }
                                td.num.before-shown { (layout::txt(&i["before"]["shown"])) }
                                td { (cell(&i["before"])) }
                                td.num.after-shown { (layout::txt(&i["after"]["shown"])) }
                                td { (cell(&i["after"])) }
                            }
                        }
                        @if items.is_empty() { tr { td colspan="5" .muted { "No SKU is in this scope." } } }
                    }
                }
            }
        }
    }
}

/// Preview renders the page with the before/after table (a read: nothing to redirect to); Save sets the rules and
/// redirects. Either way a refusal shows the page again with what was typed and the API's reason.
async fn rules(user: User, Path(code): Path<String>, Form(f): Form<RuleForm>) -> Response {
    let show = |flash: Flash, preview: Option<Value>, status: StatusCode| {
        let (user, code, f) = (user.clone(), code.clone(), f.clone());
        async move { channel_page(&user, &code, flash, Some(&f), preview.as_ref(), status, None, None).await }
    };
    let refusal = |e: &Failure| Flash { notice: None, error: Some(e.message()) };
    let req = match f.request() {
        Ok(r) => r,
        Err(e) => return show(refusal(&e), None, e.status).await,
    };
    if f.action == "save" {
        match user.put(&format!("/v1/channels/{}/rules", enc(&code)), &req).await {
            Ok(_) => layout::done(&channel_path(&code), &format!("Saved the {} rules {}", f.scope, f.key.trim())),
            Err(e) => show(refusal(&e), None, e.status).await,
        }
    } else {
        match user.post(&format!("/v1/channels/{}/rules/preview", enc(&code)), &req, None).await {
            Ok(p) => show(Flash::default(), Some(p), StatusCode::OK).await,
            Err(e) => show(refusal(&e), None, e.status).await,
        }
    }
}

#[derive(Debug, Deserialize)]
struct DeleteRulesForm {
    scope: String,
    #[serde(default)]
    key: String,
}

async fn delete_rules(user: User, Path(code): Path<String>, Form(f): Form<DeleteRulesForm>) -> Response {
    let mut api = format!("/v1/channels/{}/rules?scope={}", enc(&code), enc(&f.scope));
    if !f.key.is_empty() {
        api.push_str(&format!("&key={}", enc(&f.key)));
    }
    match user.delete(&api).await {
        Ok(_) => layout::done(&channel_path(&code), &format!("Removed the {} rules {}", f.scope, f.key)),
        Err(e) => layout::failed(&channel_path(&code), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_form_becomes_a_rules_request_and_back() {
        let f = RuleForm {
            scope: "item".into(),
            key: " TEE-BLK-S ".into(),
            policy: "backorder".into(),
            hide_below: "25".into(),
            safety_stock: "WH1=2, WH2 = 1".into(),
            excluded_warehouses: "WH3".into(),
            ..Default::default()
        };
        let req = f.request().unwrap();
        assert_eq!(
            req,
            json!({"scope": "item", "key": "TEE-BLK-S", "rules": {"policy": "backorder", "hide_below": 25,
                "safety_stock": {"WH1": 2, "WH2": 1}, "excluded_warehouses": ["WH3"]}})
        );
        let back = RuleForm::from_saved(&req);
        assert_eq!((back.hide_below.as_str(), back.safety_stock.as_str()), ("25", "WH1=2, WH2=1"));
        assert_eq!(back.key, "TEE-BLK-S");
    }

    #[test]
    fn bad_numbers_are_refused_before_the_api_is_called() {
        let f = RuleForm { scope: "channel".into(), hide_below: "five".into(), ..Default::default() };
        assert_eq!(f.request().unwrap_err().errors[0].0, "rules.hide_below");
        let f = RuleForm { scope: "channel".into(), safety_stock: "WH1".into(), ..Default::default() };
        assert_eq!(f.request().unwrap_err().errors[0].0, "rules.safety_stock");
    }
}
