//! The locations pages: the warehouse tree (warehouses, zones, shelves, bins) with kinds, pick sequence and the
//! sellable flag; a child created under any node; a location edited or deleted (the API refuses one with stock or
//! history, and says why in a banner).

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, User};
use crate::layout::{self, Flash};
use crate::pages::catalog::int_field;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/locations", get(tree).post(create))
        .route("/admin/locations/delete", post(delete))
        .route("/admin/locations/at/{*path}", get(location).post(update))
}

/// Pages of the location list read for the tree: 10 × 500 locations is far beyond a real warehouse's bins.
const MAX_PAGES: usize = 10;
const KINDS: [&str; 4] = ["warehouse", "zone", "shelf", "bin"];

fn location_path(path: &str) -> String {
    format!("/admin/locations/at/{}", path.split('/').map(enc).collect::<Vec<_>>().join("/"))
}

/// Every real location (the ledger's virtual ones left out), in path order so that children follow parents.
async fn all_locations(user: &User) -> Result<(Vec<Value>, bool), crate::client::Failure> {
    let mut out = vec![];
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let path = match &after {
            Some(a) => format!("/v1/locations?limit=500&after={}", enc(a)),
            None => "/v1/locations?limit=500".to_string(),
        };
        let page = user.get(&path).await?;
        out.extend(page["items"].as_array().into_iter().flatten().filter(|l| l["kind"] != "virtual").cloned());
        match page["next_cursor"].as_str() {
            Some(c) => after = Some(c.to_string()),
            None => {
                out.sort_by_key(path_key);
                return Ok((out, false));
            }
        }
    }
    out.sort_by_key(path_key);
    Ok((out, true))
}

/// Sorts a path segment by segment, so that `WH1/A` and its children come before `WH1-B`.
fn path_key(l: &Value) -> Vec<String> {
    l["path"].as_str().unwrap_or("").split('/').map(str::to_string).collect()
}

fn depth(l: &Value) -> usize {
    l["path"].as_str().unwrap_or("").matches('/').count().min(5)
}

fn sellable_select(current: bool) -> Markup {
    html! {
        select name="sellable" {
            option value="true" selected[current] { "sellable" }
            option value="false" selected[!current] { "not sellable" }
        }
    }
}

/// The form that creates a location: a warehouse at the top, or a child of `parent`.
fn create_form(user: &User, parent: Option<&str>, kind: &str) -> Markup {
    html! {
        form.stack.labelled id="new-location" method="post" action="/admin/locations" {
            (layout::csrf(user)) (layout::idem())
            @if let Some(p) = parent { input type="hidden" name="parent" value=(p); }
            label { "Code" input name="code" required; }
            label { "Kind" select name="kind" { @for k in KINDS { option value=(k) selected[k == kind] { (k) } } } }
            label { "Name" input name="name"; }
            label { "Pick sequence " span.muted { "(walking order of bins)" } input name="pick_sequence" inputmode="numeric"; }
            label { "Sellable" (sellable_select(true)) }
            button id="create-location" type="submit" { @if parent.is_some() { "Add child" } @else { "Add warehouse" } }
        }
    }
}

async fn tree(user: User, Query(flash): Query<Flash>) -> Response {
    let (locations, cut) = match all_locations(&user).await {
        Ok(l) => l,
        Err(f) => return layout::error_page(&user, &f),
    };
    let body = html! {
        @if cut { p.flash.error { "Only the first " (MAX_PAGES * 500) " locations are shown." } }
        div.table-wrap {
            table id="location-tree" {
                thead { tr { th { "Location" } th { "Kind" } th { "Name" } th.num { "Pick seq." } th { "Sellable" } } }
                tbody {
                    @for l in &locations {
                        @let path = l["path"].as_str().unwrap_or("");
                        tr data-path=(path) {
                            td class=(format!("tree depth-{}", depth(l))) {
                                a.mono href=(location_path(path)) { (layout::txt(&l["code"])) }
                            }
                            td { (layout::txt(&l["kind"])) }
                            td { (layout::txt(&l["name"])) }
                            td.num { (layout::txt(&l["pick_sequence"])) }
                            td { @if l["sellable"] == true { "yes" } @else { span.muted { "no" } } }
                        }
                    }
                    @if locations.is_empty() { tr { td colspan="5" .muted { "No locations yet: add a warehouse." } } }
                }
            }
        }
        @if user.may("POST", "/v1/locations") {
            section.panel.no-print { h2 { "New warehouse" } (create_form(&user, None, "warehouse")) }
        }
    };
    layout::page(&user, "Locations", &flash, body).into_response()
}

/// The kind a child of `kind` usually has.
fn child_kind(kind: &str) -> &'static str {
    match kind {
        "warehouse" => "zone",
        "zone" => "shelf",
        _ => "bin",
    }
}

async fn location(user: User, Path(path): Path<String>, Query(flash): Query<Flash>) -> Response {
    let l = match user.get(&format!("/v1/locations/{}", api_path(&path))).await {
        Ok(l) => l,
        Err(f) => return layout::error_page(&user, &f),
    };
    let here = location_path(&path);
    let body = html! {
        p {
            a href="/admin/locations" { "All locations" }
            @if let Some(parent) = l["parent"].as_str() { " · " a href=(location_path(parent)) { "up to " (parent) } }
        }
        p { (layout::txt(&l["kind"])) " " span.mono { (path) } }
        @if user.may("PATCH", "/v1/locations/{path}") {
            section.panel {
                h2 { "Edit" }
                form.stack.labelled id="edit-location" method="post" action=(here) {
                    (layout::csrf(&user))
                    label { "Name" input name="name" value=(l["name"].as_str().unwrap_or("")); }
                    label { "Pick sequence" input name="pick_sequence" inputmode="numeric"
                        value=(l["pick_sequence"].as_i64().map(|n| n.to_string()).unwrap_or_default()); }
                    label { "Sellable" (sellable_select(l["sellable"] != false)) }
                    button id="save-location" type="submit" { "Save" }
                }
            }
        }
        @if user.may("POST", "/v1/locations") && l["kind"] != "bin" {
            section.panel.no-print {
                h2 { "Add a child under " (path) }
                (create_form(&user, Some(&path), child_kind(l["kind"].as_str().unwrap_or(""))))
            }
        }
        @if user.may("DELETE", "/v1/locations/{path}") {
            form.no-print method="post" action="/admin/locations/delete" data-confirm=(format!("Delete {path}?")) {
                (layout::csrf(&user))
                input type="hidden" name="path" value=(path);
                button.danger id="delete-location" type="submit" { "Delete location" }
            }
        }
    };
    layout::page(&user, &format!("Location {path}"), &flash, body).into_response()
}

/// A location path for the API: each segment encoded, the slashes kept.
fn api_path(path: &str) -> String {
    path.split('/').map(enc).collect::<Vec<_>>().join("/")
}

#[derive(Debug, Deserialize)]
struct NewForm {
    code: String,
    kind: String,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    pick_sequence: String,
    #[serde(default)]
    sellable: Option<String>,
    #[serde(default)]
    _idem: String,
}

async fn create(user: User, Form(f): Form<NewForm>) -> Response {
    let back = match f.parent.as_deref() {
        Some(p) => location_path(p),
        None => "/admin/locations".to_string(),
    };
    let seq = match int_field("pick_sequence", &f.pick_sequence) {
        Ok(s) => s,
        Err(e) => return layout::failed(&back, &e),
    };
    let mut body = json!({"code": f.code.trim(), "kind": f.kind, "sellable": f.sellable.as_deref() != Some("false")});
    if let Some(p) = &f.parent {
        body["parent"] = json!(p);
    }
    if !f.name.trim().is_empty() {
        body["name"] = json!(f.name.trim());
    }
    if let Some(s) = seq {
        body["pick_sequence"] = json!(s);
    }
    match user.post("/v1/locations", &body, Some(&f._idem)).await {
        Ok(l) => layout::done(&back, &format!("Created {}", layout::txt(&l["path"]))),
        Err(e) => layout::failed(&back, &e),
    }
}

#[derive(Debug, Deserialize)]
struct EditForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    pick_sequence: String,
    #[serde(default)]
    sellable: Option<String>,
}

async fn update(user: User, Path(path): Path<String>, Form(f): Form<EditForm>) -> Response {
    let here = location_path(&path);
    let seq = match int_field("pick_sequence", &f.pick_sequence) {
        Ok(s) => s,
        Err(e) => return layout::failed(&here, &e),
    };
    let body = json!({"name": f.name.trim(), "pick_sequence": seq, "sellable": f.sellable.as_deref() != Some("false")});
    match user.patch(&format!("/v1/locations/{}", api_path(&path)), &body).await {
        Ok(_) => layout::done(&here, "Saved"),
        Err(e) => layout::failed(&here, &e),
    }
}

#[derive(Debug, Deserialize)]
struct DeleteForm {
    path: String,
}

async fn delete(user: User, Form(f): Form<DeleteForm>) -> Response {
    match user.delete(&format!("/v1/locations/{}", api_path(&f.path))).await {
        Ok(_) => layout::done("/admin/locations", &format!("Deleted {}", f.path)),
        Err(e) => layout::failed(&location_path(&f.path), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_puts_children_right_after_their_parent() {
        let mut ls =
            [json!({"path": "WH1-B"}), json!({"path": "WH1/Z/BIN"}), json!({"path": "WH1"}), json!({"path": "WH1/Z"})];
        ls.sort_by_key(path_key);
        let order: Vec<&str> = ls.iter().map(|l| l["path"].as_str().unwrap()).collect();
        assert_eq!(order, ["WH1", "WH1/Z", "WH1/Z/BIN", "WH1-B"]);
        assert_eq!(depth(&ls[2]), 2);
    }
}
