//! The catalog pages: products found by text, a product created with its variants, a product's fields and
//! options edited, its variants (SKU, barcode, prices per channel, weight and size) added, edited and deleted.

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::client::{enc, Failure, User};
use crate::layout::{self, Flash};
use crate::pages::form::invalid;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/catalog", get(list).post(create))
        .route("/admin/catalog/{handle}", get(product).post(update))
        .route("/admin/catalog/{handle}/delete", post(delete))
        .route("/admin/catalog/{handle}/variants", post(add_variant))
        .route("/admin/catalog/{handle}/variants/{sku}", get(variant).post(update_variant))
        .route("/admin/catalog/{handle}/variants/{sku}/delete", post(delete_variant))
}

const STATUSES: [&str; 3] = ["draft", "active", "archived"];
const POLICIES: [&str; 3] = ["deny", "continue", "backorder"];

/// A whole number field: empty is absent (`None`), anything else must parse.
pub(crate) fn int_field(field: &str, v: &str) -> Result<Option<i64>, Failure> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| invalid(field, "must be a whole number"))
}

/// A comma-separated list, each part trimmed, empty parts dropped.
pub(crate) fn list_field(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// A text field as JSON: the trimmed text, or `null` when empty (which clears an optional field on PATCH).
fn opt_text(v: &str) -> Value {
    match v.trim() {
        "" => Value::Null,
        s => Value::String(s.to_string()),
    }
}

fn product_path(handle: &str) -> String {
    format!("/admin/catalog/{}", enc(handle))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    let text = q.q.clone().unwrap_or_default();
    let mut api = format!("/v1/products?limit=50&q={}", enc(text.trim()));
    if let Some(a) = q.after.as_deref().filter(|a| !a.is_empty()) {
        api.push_str(&format!("&after={}", enc(a)));
    }
    let page = match user.get(&api).await {
        Ok(p) => p,
        Err(f) => return layout::error_page(&user, &f),
    };
    let empty = vec![];
    let products = page["items"].as_array().unwrap_or(&empty);
    let body = html! {
        form.inline.no-print method="get" action="/admin/catalog" {
            label { "Search " input id="catalog-q" type="search" name="q" value=(text) placeholder="title or handle"; }
            button.secondary type="submit" { "Search" }
        }
        div.table-wrap {
            table id="products" {
                thead { tr { th { "Product" } th { "Handle" } th { "Status" } th { "Category" } th.num { "Variants" } } }
                tbody {
                    @for p in products {
                        tr {
                            td { a href=(product_path(&layout::txt(&p["handle"]))) { (layout::txt(&p["title"])) } }
                            td.mono { (layout::txt(&p["handle"])) }
                            td { (layout::badge(&p["status"])) }
                            td { (layout::txt(&p["category"])) }
                            td.num { (p["variants"].as_array().map(Vec::len).unwrap_or(0)) }
                        }
                    }
                    @if products.is_empty() { tr { td colspan="5" .muted { "No products match." } } }
                }
            }
        }
        @if let Some(next) = page["next_cursor"].as_str() {
            p { a id="next-page" href=(format!("/admin/catalog?q={}&after={}", enc(&text), enc(next))) { "Next page →" } }
        }
        @if user.may("POST", "/v1/products") {
            section.panel.no-print {
                h2 { "New product" }
                form.stack.labelled id="new-product" method="post" action="/admin/catalog" {
                    (layout::csrf(&user)) (layout::idem())
                    label { "Title" input name="title" required; }
                    label { "Handle " span.muted { "(made from the title when empty)" } input name="handle"; }
                    label { "Category " span.muted { "(Apparel > Shirts)" } input name="category"; }
                    label { "Status" (status_select("active")) }
                    label { "Option names " span.muted { "(comma-separated, at most three: Color, Size)" } input name="options"; }
                    label { "Currency" input name="currency" value="EUR" maxlength="3"; }
                    label {
                        "Variants, one a line: " span.mono { "SKU | price | option values (comma-separated) | barcode" }
                        textarea name="variants" rows="4" placeholder="TEE-RED-S | 19.99 | Red, S | 4006381333962" {}
                    }
                    button id="create-product" type="submit" { "Create product" }
                }
            }
        }
    };
    layout::page(&user, "Catalog", &flash, body).into_response()
}

fn status_select(current: &str) -> Markup {
    html! {
        select name="status" {
            @for s in STATUSES { option value=(s) selected[s == current] { (s) } }
        }
    }
}

fn policy_select(current: &str) -> Markup {
    html! {
        select name="inventory_policy" {
            @for s in POLICIES { option value=(s) selected[s == current] { (s) } }
        }
    }
}

#[derive(Debug, Deserialize)]
struct NewProductForm {
    title: String,
    #[serde(default)]
    handle: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    options: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    variants: String,
    #[serde(default)]
    _idem: String,
}

/// The variant lines of the new-product form: `SKU | price | options | barcode`, the last two optional.
fn parse_variant_lines(text: &str, currency: &str) -> Result<Vec<Value>, Failure> {
    let mut out = vec![];
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split('|').map(str::trim).collect();
        let field = format!("variants line {}", n + 1);
        if parts.len() < 2 || parts.len() > 4 || parts[0].is_empty() || parts[1].is_empty() {
            return Err(invalid(&field, "write SKU | price | option values | barcode (the last two may be left out)"));
        }
        let mut v = json!({"sku": parts[0], "price": parts[1], "currency": currency});
        if let Some(o) = parts.get(2) {
            v["options"] = json!(list_field(o));
        }
        if let Some(b) = parts.get(3).filter(|b| !b.is_empty()) {
            v["barcode"] = json!(b);
        }
        out.push(v);
    }
    Ok(out)
}

async fn create(user: User, Form(f): Form<NewProductForm>) -> Response {
    let currency = f.currency.trim().to_uppercase();
    let variants = match parse_variant_lines(&f.variants, &currency) {
        Ok(v) => v,
        Err(e) => return layout::failed("/admin/catalog", &e),
    };
    let mut body = json!({"title": f.title.trim(), "status": f.status, "options": list_field(&f.options),
        "variants": variants});
    if !f.handle.trim().is_empty() {
        body["handle"] = json!(f.handle.trim());
    }
    if !f.category.trim().is_empty() {
        body["category"] = json!(f.category.trim());
    }
    match user.post("/v1/products", &body, Some(&f._idem)).await {
        Ok(p) => {
            let n = p["variants"].as_array().map(Vec::len).unwrap_or(0);
            layout::done(
                &product_path(&layout::txt(&p["handle"])),
                &format!("Created {} with {n} variants", layout::txt(&p["title"])),
            )
        }
        Err(e) => layout::failed("/admin/catalog", &e),
    }
}

async fn product(user: User, Path(handle): Path<String>, Query(flash): Query<Flash>) -> Response {
    let p = match user.get(&format!("/v1/products/{}", enc(&handle))).await {
        Ok(p) => p,
        Err(f) => return layout::error_page(&user, &f),
    };
    let may_edit = user.may("PATCH", "/v1/products/{key}");
    let here = product_path(&handle);
    let join =
        |v: &Value| v.as_array().map(|a| a.iter().map(layout::txt).collect::<Vec<_>>().join(", ")).unwrap_or_default();
    let empty = vec![];
    let variants = p["variants"].as_array().unwrap_or(&empty);
    let option_names = p["options"].as_array().unwrap_or(&empty);
    let body = html! {
        p.muted { "Handle " span.mono { (layout::txt(&p["handle"])) } " · " (layout::badge(&p["status"]))
            " · updated " (layout::when(&p["updated_at"])) }
        @if may_edit {
            section.panel {
                h2 { "Product" }
                form.stack.labelled id="edit-product" method="post" action=(here) {
                    (layout::csrf(&user))
                    label { "Title" input name="title" value=(layout::txt(&p["title"])) required; }
                    label { "Status" (status_select(p["status"].as_str().unwrap_or("draft"))) }
                    label { "Category" input name="category" value=(p["category"].as_str().unwrap_or("")); }
                    label { "Option names " span.muted { "(renamed only while variants exist)" }
                        input name="options" value=(join(&p["options"])); }
                    label { "Tags " span.muted { "(comma-separated)" } input name="tags" value=(join(&p["tags"])); }
                    label { "Description" textarea name="description" rows="4" { (p["description"].as_str().unwrap_or("")) } }
                    button id="save-product" type="submit" { "Save product" }
                }
            }
        } @else {
            section.panel {
                p { (layout::txt(&p["description"])) }
                p { "Category: " (layout::txt(&p["category"])) " · options: " (join(&p["options"])) }
            }
        }
        h2 { "Variants" }
        div.table-wrap {
            table id="variants" {
                thead { tr {
                    th { "SKU" } th { "Barcode" } th { "Options" } th.num { "Price" } th.num { "Weight g" }
                    th { "L×W×H mm" } th { "At zero" }
                } }
                tbody {
                    @for v in variants {
                        tr {
                            td.mono { a href=(format!("{here}/variants/{}", enc(&layout::txt(&v["sku"])))) { (layout::txt(&v["sku"])) } }
                            td.mono { (layout::txt(&v["barcode"])) }
                            td { (join(&v["options"])) }
                            td.num { (layout::txt(&v["price"])) " " (layout::txt(&v["currency"])) }
                            td.num { (layout::txt(&v["weight_grams"])) }
                            td { (layout::txt(&v["length_mm"])) "×" (layout::txt(&v["width_mm"])) "×" (layout::txt(&v["height_mm"])) }
                            td { (layout::txt(&v["inventory_policy"])) }
                        }
                    }
                    @if variants.is_empty() { tr { td colspan="7" .muted { "No variants yet." } } }
                }
            }
        }
        @if user.may("POST", "/v1/products/{key}/variants") {
            section.panel.no-print {
                h2 { "Add a variant" }
                form.stack.labelled id="add-variant" method="post" action=(format!("{here}/variants")) {
                    (layout::csrf(&user)) (layout::idem())
                    label { "SKU" input name="sku" required; }
                    label { "Barcode" input name="barcode"; }
                    @for name in option_names { label { (layout::txt(name)) input name="options" required; } }
                    label { "Price" input name="price" inputmode="decimal" required; }
                    label { "Currency" input name="currency" maxlength="3"
                        value=(variants.first().map(|v| layout::txt(&v["currency"])).unwrap_or_else(|| "EUR".into())); }
                    (size_fields(&Value::Null))
                    label { "At zero" (policy_select("deny")) }
                    button id="add-variant-submit" type="submit" { "Add variant" }
                }
            }
        }
        @if user.may("DELETE", "/v1/products/{key}") {
            form.no-print method="post" action=(format!("{here}/delete"))
                data-confirm=(format!("Delete {} and its variants?", layout::txt(&p["title"]))) {
                (layout::csrf(&user))
                button.danger id="delete-product" type="submit" { "Delete product" }
            }
        }
    };
    layout::page(&user, &layout::txt(&p["title"]), &flash, body).into_response()
}

fn size_fields(v: &Value) -> Markup {
    let val = |k: &str| v[k].as_i64().map(|n| n.to_string()).unwrap_or_default();
    html! {
        label { "Weight (g)" input name="weight_grams" inputmode="numeric" value=(val("weight_grams")); }
        label { "Length (mm)" input name="length_mm" inputmode="numeric" value=(val("length_mm")); }
        label { "Width (mm)" input name="width_mm" inputmode="numeric" value=(val("width_mm")); }
        label { "Height (mm)" input name="height_mm" inputmode="numeric" value=(val("height_mm")); }
    }
}

#[derive(Debug, Deserialize)]
struct ProductForm {
    title: String,
    status: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    options: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    description: String,
}

async fn update(user: User, Path(handle): Path<String>, Form(f): Form<ProductForm>) -> Response {
    let body = json!({"title": f.title.trim(), "status": f.status, "category": opt_text(&f.category),
        "options": list_field(&f.options), "tags": list_field(&f.tags), "description": f.description});
    let here = product_path(&handle);
    match user.patch(&format!("/v1/products/{}", enc(&handle)), &body).await {
        Ok(p) => layout::done(&product_path(&layout::txt(&p["handle"])), "Product saved"),
        Err(e) => layout::failed(&here, &e),
    }
}

async fn delete(user: User, Path(handle): Path<String>) -> Response {
    match user.delete(&format!("/v1/products/{}", enc(&handle))).await {
        Ok(_) => layout::done("/admin/catalog", &format!("Deleted {handle}")),
        Err(e) => layout::failed(&product_path(&handle), &e),
    }
}

/// The fields of a variant form. Options arrive as repeated `options` fields, which `Form` cannot collect into
/// a list, so the form is read as pairs.
struct VariantForm {
    fields: Vec<(String, String)>,
}

impl VariantForm {
    fn get(&self, name: &str) -> String {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).unwrap_or_default()
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.fields.iter().filter(|(k, _)| k == name).map(|(_, v)| v.trim().to_string()).collect()
    }

    /// The JSON fields both creating and editing a variant send.
    fn body(&self, clear_empty: bool) -> Result<Map<String, Value>, Failure> {
        let mut m = Map::new();
        m.insert("sku".into(), json!(self.get("sku")));
        m.insert("price".into(), json!(self.get("price")));
        m.insert("currency".into(), json!(self.get("currency").to_uppercase()));
        m.insert("options".into(), json!(self.all("options")));
        m.insert("inventory_policy".into(), json!(self.get("inventory_policy")));
        let barcode = self.get("barcode");
        if !barcode.is_empty() || clear_empty {
            m.insert("barcode".into(), opt_text(&barcode));
        }
        for k in ["weight_grams", "length_mm", "width_mm", "height_mm"] {
            match int_field(k, &self.get(k))? {
                Some(n) => {
                    m.insert(k.into(), json!(n));
                }
                None if clear_empty => {
                    m.insert(k.into(), Value::Null);
                }
                None => {}
            }
        }
        Ok(m)
    }
}

async fn add_variant(user: User, Path(handle): Path<String>, Form(fields): Form<Vec<(String, String)>>) -> Response {
    let f = VariantForm { fields };
    let here = product_path(&handle);
    let body = match f.body(false) {
        Ok(b) => Value::Object(b),
        Err(e) => return layout::failed(&here, &e),
    };
    match user.post(&format!("/v1/products/{}/variants", enc(&handle)), &body, Some(&f.get("_idem"))).await {
        Ok(v) => layout::done(&here, &format!("Added {}", layout::txt(&v["sku"]))),
        Err(e) => layout::failed(&here, &e),
    }
}

async fn variant(user: User, Path((handle, sku)): Path<(String, String)>, Query(flash): Query<Flash>) -> Response {
    let (variant_api, product_api) = (format!("/v1/variants/{}", enc(&sku)), format!("/v1/products/{}", enc(&handle)));
    let (v, p, channels) = tokio::join!(user.get(&variant_api), user.get(&product_api), async {
        if user.may("GET", "/v1/channels") {
            user.get("/v1/channels?limit=100").await.ok()
        } else {
            None
        }
    });
    let (v, p) = match (v, p) {
        (Ok(v), Ok(p)) => (v, p),
        (Err(f), _) | (_, Err(f)) => return layout::error_page(&user, &f),
    };
    let here = format!("{}/variants/{}", product_path(&handle), enc(&sku));
    let empty = vec![];
    let option_names = p["options"].as_array().unwrap_or(&empty);
    let channel_list = channels.as_ref().and_then(|c| c["items"].as_array()).unwrap_or(&empty);
    let body = html! {
        p { a href=(product_path(&handle)) { "← " (layout::txt(&p["title"])) } }
        @if user.may("PATCH", "/v1/variants/{key}") {
            section.panel {
                form.stack.labelled id="edit-variant" method="post" action=(here) {
                    (layout::csrf(&user))
                    label { "SKU" input name="sku" value=(layout::txt(&v["sku"])) required; }
                    label { "Barcode" input name="barcode" value=(v["barcode"].as_str().unwrap_or("")); }
                    @for (i, name) in option_names.iter().enumerate() {
                        label { (layout::txt(name)) input name="options" value=(layout::txt(&v["options"][i])) required; }
                    }
                    label { "Price" input name="price" inputmode="decimal" value=(layout::txt(&v["price"])) required; }
                    label { "Currency" input name="currency" maxlength="3" value=(layout::txt(&v["currency"])); }
                    (size_fields(&v))
                    label { "At zero" (policy_select(v["inventory_policy"].as_str().unwrap_or("deny"))) }
                    button id="save-variant" type="submit" { "Save variant" }
                }
            }
        }
        h2 { "Price per channel" }
        div.table-wrap {
            table id="channel-prices" {
                thead { tr { th { "Channel" } th.num { "Price" } th { "From" } } }
                tbody {
                    tr { td { "Catalog" } td.num { (layout::txt(&v["price"])) " " (layout::txt(&v["currency"])) } td { "catalog" } }
                    @for c in channel_list {
                        @let own = &c["prices"][sku.as_str()];
                        tr {
                            td { (layout::txt(&c["name"])) " " span.mono.muted { (layout::txt(&c["code"])) } }
                            @if own.is_null() {
                                td.num { (layout::txt(&v["price"])) " " (layout::txt(&v["currency"])) } td.muted { "catalog" }
                            } @else {
                                td.num { (layout::txt(own)) " " (layout::txt(&c["currency"])) } td { "channel" }
                            }
                        }
                    }
                }
            }
        }
        @if user.may("DELETE", "/v1/variants/{key}") {
            form.no-print method="post" action=(format!("{here}/delete")) data-confirm=(format!("Delete {sku}?")) {
                (layout::csrf(&user))
                button.danger id="delete-variant" type="submit" { "Delete variant" }
            }
        }
    };
    layout::page(&user, &sku, &flash, body).into_response()
}

async fn update_variant(
    user: User,
    Path((handle, sku)): Path<(String, String)>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Response {
    let f = VariantForm { fields };
    let here = format!("{}/variants/{}", product_path(&handle), enc(&sku));
    let body = match f.body(true) {
        Ok(b) => Value::Object(b),
        Err(e) => return layout::failed(&here, &e),
    };
    match user.patch(&format!("/v1/variants/{}", enc(&sku)), &body).await {
        Ok(v) => layout::done(
            &format!("{}/variants/{}", product_path(&handle), enc(&layout::txt(&v["sku"]))),
            "Variant saved",
        ),
        Err(e) => layout::failed(&here, &e),
    }
}

async fn delete_variant(user: User, Path((handle, sku)): Path<(String, String)>) -> Response {
    match user.delete(&format!("/v1/variants/{}", enc(&sku))).await {
        Ok(_) => layout::done(&product_path(&handle), &format!("Deleted {sku}")),
        Err(e) => layout::failed(&format!("{}/variants/{}", product_path(&handle), enc(&sku)), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_lines_read_sku_price_options_and_barcode() {
        let v = parse_variant_lines("A-1 | 9.50 | Red, S | 123\n\n  B-2|10\n", "EUR").unwrap();
        assert_eq!(
            v[0],
            json!({"sku": "A-1", "price": "9.50", "currency": "EUR", "options": ["Red", "S"], "barcode": "123"})
        );
        assert_eq!(v[1], json!({"sku": "B-2", "price": "10", "currency": "EUR"}));
        let e = parse_variant_lines("A-1\n", "EUR").unwrap_err();
        assert_eq!(e.errors[0].0, "variants line 1");
        assert!(parse_variant_lines("A | 1 | x | y | z", "EUR").is_err());
    }

    #[test]
    fn number_fields_are_absent_when_empty_and_refused_when_not_numbers() {
        assert_eq!(int_field("w", " ").unwrap(), None);
        assert_eq!(int_field("w", "250").unwrap(), Some(250));
        assert_eq!(int_field("w", "2.5kg").unwrap_err().errors[0].0, "w");
    }
}
