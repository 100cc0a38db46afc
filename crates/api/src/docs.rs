//! The OpenAPI 3.1 document and the reference page rendered from it on the server: one self-contained HTML page
//! with no script and no asset from the internet, so `/docs` works on a warehouse network with no way out.

use std::fmt::Write;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{Html, IntoResponse};
use serde_json::Value;
use utoipa::OpenApi;

use crate::problem::ERROR_CODES;
use crate::routes::{bundles, catalog, inventory, keys, locations, orders, picking, webhooks};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stockroom",
        description = "Inventory and order management for e-commerce merchants: catalog, bins, and an immutable \
stock ledger. Every request but `/healthz`, `/docs` and `/openapi.json` needs an API key: \
`Authorization: Bearer <secret>`; each operation names the roles that may call it. Every POST takes an `Idempotency-Key` header. Errors are `application/problem+json` with a stable `code`.",
    ),
    paths(
        crate::healthz,
        catalog::list_products, catalog::create_product, catalog::get_product, catalog::update_product,
        catalog::delete_product, catalog::create_variant, catalog::list_variants, catalog::get_variant,
        catalog::update_variant, catalog::delete_variant,
        locations::list_locations, locations::create_location, locations::get_location, locations::update_location,
        locations::delete_location,
        inventory::adjust, inventory::move_stock, inventory::levels, inventory::movements,
        orders::place_order, orders::list_orders, orders::get_order, orders::cancel_order,
        orders::pay, orders::ship, orders::edit_order, orders::credit_memo,
        orders::request_return, orders::get_return, orders::receive_return,
        picking::create_pick_list, picking::list_pick_lists, picking::get_pick_list, picking::complete_pick_list,
        picking::cancel_pick_list, picking::pack,
        orders::place_hold, orders::get_hold, orders::extend_hold, orders::release_hold,
        orders::create_customer, orders::list_customers, orders::get_customer, orders::update_customer,
        bundles::get_components, bundles::set_components, bundles::availability,
        webhooks::list_endpoints, webhooks::create_endpoint, webhooks::get_endpoint, webhooks::update_endpoint,
        webhooks::delete_endpoint, webhooks::get_secret, webhooks::rotate_secret, webhooks::list_deliveries,
        webhooks::replay,
        keys::list_keys, keys::create_key, keys::get_key, keys::revoke_key, keys::list_audit,
        crate::metrics::metrics,
    ),
    components(schemas(crate::problem::ProblemSchema, crate::problem::ProblemField, crate::routes::channels::SnapshotFormat)),
    tags(
        (name = "catalog", description = "Products and their variants; each variant sells one item (SKU)"),
        (name = "locations", description = "The warehouse tree: warehouse › zone › shelf › bin"),
        (name = "inventory", description = "The stock ledger: adjustments, moves, levels and movements"),
        (name = "orders", description = "Orders from every channel, and their customers: stock is committed when placed"),
        (name = "holds", description = "Cart and checkout reservations that expire"),
        (name = "fulfillment", description = "Pick lists in walking order, and packing"),
        (name = "webhooks", description = "Signed event deliveries (Standard Webhooks), their log and replay"),
        (name = "keys", description = "API keys (admin, staff, warehouse, channel) and the audit trail of changes"),
        (name = "operations", description = "Health, metrics and documentation"),
    )
)]
pub struct ApiDoc;

/// The document, built once.
pub fn document() -> &'static Value {
    static DOC: OnceLock<Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.merge(crate::routes::channels::ChannelsDoc::openapi());
        doc.merge(crate::routes::purchasing::PurchasingDoc::openapi());
        doc.merge(crate::routes::valuation::ValuationDoc::openapi());
        doc.merge(crate::routes::reports::ReportsDoc::openapi());
        let mut v = serde_json::to_value(doc).expect("the OpenAPI document serializes");
        v["openapi"] = Value::String("3.1.0".into());
        v["info"]["version"] = Value::String(env!("CARGO_PKG_VERSION").into());
        crate::auth::document_policy(&mut v);
        document_common_errors(&mut v);
        v
    })
}

/// Errors every operation can answer, whatever its handler: the layers and extractors in front of it produce them.
/// Documented once here, so that the document never promises less than the server does (schemathesis checks).
fn document_common_errors(doc: &mut Value) {
    use serde_json::json;
    let problem = json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemSchema"}}});
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, ops) in paths.iter_mut() {
        let public = crate::auth::PUBLIC_PATHS.contains(&path.as_str());
        let Some(ops) = ops.as_object_mut() else { continue };
        for (method, op) in ops.iter_mut() {
            let Some(responses) = op["responses"].as_object_mut() else { continue };
            // Error bodies are problem+json, wherever a handler's annotation said JSON.
            for (status, r) in responses.iter_mut() {
                if status.starts_with('4') || status.starts_with('5') {
                    r["content"] = problem.clone();
                }
            }
            if public {
                continue;
            }
            let has_body = matches!(method.as_str(), "post" | "put" | "patch");
            let mut common = vec![
                ("400", "malformed_json, invalid_query: the body or a query parameter cannot be read"),
                ("422", "validation_failed: a parameter, header or field has a bad value"),
            ];
            common.push(("404", "not_found: the addressed resource, or one a parameter names, does not exist"));
            if has_body {
                common.push(("413", "payload_too_large"));
                common.push(("415", "unsupported_media_type: send JSON"));
                common.push(("503", "unavailable: shutting down or overloaded; retry later"));
            }
            if method != "get" {
                common.push(("409", "idempotency_key_in_use, or a conflict with the current state"));
            }
            for (status, description) in common {
                responses
                    .entry(status)
                    .or_insert_with(|| json!({"description": description, "content": problem.clone()}));
            }
        }
    }
}

pub async fn openapi_json() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], axum::Json(document().clone()))
}

pub async fn reference_page() -> impl IntoResponse {
    static PAGE: OnceLock<String> = OnceLock::new();
    Html(PAGE.get_or_init(|| render(document())).clone())
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Names a schema for humans: a `$ref`'s last segment, an array of it, or the type.
fn schema_name(s: &Value) -> String {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(items) = s.get("items") {
        return format!("array of {}", schema_name(items));
    }
    if let Some(all) = s.get("oneOf").or_else(|| s.get("allOf")).or_else(|| s.get("anyOf")).and_then(Value::as_array) {
        return all.iter().map(schema_name).collect::<Vec<_>>().join(" or ");
    }
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e.iter().filter_map(Value::as_str).map(esc).collect::<Vec<_>>().join(" | ");
    }
    match s.get("type") {
        Some(Value::String(t)) => esc(t),
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).map(esc).collect::<Vec<_>>().join(" | "),
        _ => "object".into(),
    }
}

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:0 auto;padding:1rem 2rem;color:#1d2125}\
h1{margin-bottom:0}h2{border-bottom:2px solid #ddd;padding-top:1rem}h3{margin:1.5rem 0 .3rem;font-family:monospace;font-size:1rem}\
.m{display:inline-block;min-width:4rem;padding:.1rem .4rem;border-radius:4px;color:#fff;text-align:center;margin-right:.5rem}\
.get{background:#2f6f3e}.post{background:#1f5fa8}.patch{background:#8a5a00}.delete{background:#a32020}\
table{border-collapse:collapse;width:100%;margin:.4rem 0}td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}\
th{background:#f5f5f5}code{background:#f3f3f3;padding:0 .2rem}nav a{margin-right:1rem}";

fn render(doc: &Value) -> String {
    let mut h = String::new();
    let info = &doc["info"];
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
<title>Stockroom API reference</title><style>{STYLE}</style></head><body><h1>{}</h1><p>API {} · OpenAPI document: \
<a href=\"/openapi.json\">/openapi.json</a></p><p>{}</p><nav><a href=\"#endpoints\">Endpoints</a><a href=\"#errors\">Error codes</a>\
<a href=\"#schemas\">Schemas</a></nav><h2 id=endpoints>Endpoints</h2>",
        esc(info["title"].as_str().unwrap_or("")),
        esc(info["version"].as_str().unwrap_or("")),
        esc(info["description"].as_str().unwrap_or(""))
    );
    if let Some(paths) = doc["paths"].as_object() {
        for (path, ops) in paths {
            let Some(ops) = ops.as_object() else { continue };
            for (method, op) in ops {
                let _ = write!(
                    h,
                    "<h3 id=\"{m}-{pid}\"><span class=\"m {m}\">{M}</span>{p}</h3>",
                    m = esc(method),
                    M = esc(&method.to_uppercase()),
                    p = esc(path),
                    pid = esc(&path.replace('/', "-"))
                );
                for key in ["summary", "description"] {
                    if let Some(t) = op[key].as_str() {
                        let _ = write!(h, "<p>{}</p>", esc(t));
                    }
                }
                if let Some(params) = op["parameters"].as_array().filter(|p| !p.is_empty()) {
                    h.push_str("<table><tr><th>Parameter</th><th>In</th><th>Type</th><th>Description</th></tr>");
                    for p in params {
                        let _ = write!(
                            h,
                            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(p["name"].as_str().unwrap_or("")),
                            if p["required"].as_bool() == Some(true) { " (required)" } else { "" },
                            esc(p["in"].as_str().unwrap_or("")),
                            schema_name(&p["schema"]),
                            esc(p["description"].as_str().unwrap_or(""))
                        );
                    }
                    h.push_str("</table>");
                }
                if let Some(schema) = op["requestBody"]["content"]["application/json"]["schema"].as_object() {
                    let _ = write!(h, "<p>Body: {}</p>", schema_name(&Value::Object(schema.clone())));
                }
                if let Some(resps) = op["responses"].as_object() {
                    h.push_str("<table><tr><th>Status</th><th>Body</th><th>Description</th></tr>");
                    for (status, r) in resps {
                        let body = r["content"]
                            .as_object()
                            .and_then(|c| c.values().next())
                            .map(|c| schema_name(&c["schema"]))
                            .unwrap_or_default();
                        let _ = write!(
                            h,
                            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                            esc(status),
                            body,
                            esc(r["description"].as_str().unwrap_or(""))
                        );
                    }
                    h.push_str("</table>");
                }
            }
        }
    }
    h.push_str(
        "<h2 id=errors>Error codes</h2><p>Every error is <code>application/problem+json</code> with these fields: \
<code>type</code>, <code>title</code>, <code>status</code>, <code>code</code>, <code>detail</code>, <code>errors</code> \
(each <code>field</code> and <code>message</code>) and <code>request_id</code>. Codes never change meaning.</p>\
<table><tr><th>Code</th><th>Status</th><th>Meaning</th></tr>",
    );
    for (code, status, title) in ERROR_CODES {
        let _ = write!(
            h,
            "<tr id=\"error-{code}\"><td><code>{code}</code></td><td>{status}</td><td>{}</td></tr>",
            esc(title)
        );
    }
    h.push_str("</table><h2 id=schemas>Schemas</h2>");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, s) in schemas {
            let _ = write!(h, "<h3 id=\"schema-{0}\">{0}</h3>", esc(name));
            if let Some(d) = s["description"].as_str() {
                let _ = write!(h, "<p>{}</p>", esc(d));
            }
            if let Some(props) = s["properties"].as_object() {
                let required: Vec<&str> =
                    s["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
                h.push_str("<table><tr><th>Field</th><th>Type</th><th>Description</th></tr>");
                for (field, p) in props {
                    let _ = write!(
                        h,
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                        esc(field),
                        if required.contains(&field.as_str()) { " (required)" } else { "" },
                        schema_name(p),
                        esc(p["description"].as_str().unwrap_or(""))
                    );
                }
                h.push_str("</table>");
            } else {
                let _ = write!(h, "<p>{}</p>", schema_name(s));
            }
        }
    }
    h.push_str("</body></html>");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_the_page_renders() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        for path in ["/v1/products", "/v1/inventory/adjustments", "/v1/inventory/levels", "/v1/locations/{path}"] {
            assert!(doc["paths"].get(path).is_some(), "{path} missing");
        }
        let page = render(doc);
        assert!(page.contains("error-insufficient_stock"));
        assert!(page.contains("/v1/inventory/moves"));
        assert!(!page.contains("<script"));
    }
}
