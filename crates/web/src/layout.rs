//! The page shell (navigation by role, flash messages) and the small helpers every page uses: form tokens,
//! redirects after a form, and showing API values.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Deserialize;
use serde_json::Value;

use crate::client::{Failure, User};
use crate::session::CSRF_FIELD;

/// One entry of the navigation: shown when the user may call `api` (a GET route pattern).
struct NavItem {
    label: &'static str,
    href: &'static str,
    api: &'static str,
}

const fn nav(label: &'static str, href: &'static str, api: &'static str) -> NavItem {
    NavItem { label, href, api }
}

/// The menu, in groups: the floor's work first, then the back office.
const NAV: &[(&str, &[NavItem])] = &[
    (
        "",
        &[
            nav("Dashboard", "/admin", "/v1/inventory/levels"),
            nav("Items", "/admin/items", "/v1/variants"),
            nav("Orders", "/admin/orders", "/v1/orders"),
        ],
    ),
    (
        "Warehouse",
        &[
            nav("Pick lists", "/admin/pick-lists", "/v1/pick-lists"),
            nav("Receiving", "/admin/receiving", "/v1/purchase-orders"),
            nav("Transfers", "/admin/transfers", "/v1/transfers"),
            nav("Counts", "/admin/counts", "/v1/counts"),
            nav("Move stock", "/admin/moves", "/v1/inventory/levels"),
        ],
    ),
    (
        "Back office",
        &[
            nav("Catalog", "/admin/catalog", "/v1/products"),
            nav("Locations", "/admin/locations", "/v1/locations"),
            nav("Channels", "/admin/channels", "/v1/channels"),
            nav("Suppliers", "/admin/suppliers", "/v1/suppliers"),
            nav("Purchase orders", "/admin/purchase-orders", "/v1/purchase-orders"),
            nav("Replenishment", "/admin/replenishment", "/v1/replenishment/suggestions"),
            nav("Reports", "/admin/reports", "/v1/reports/valuation"),
            nav("Webhooks", "/admin/webhooks", "/v1/webhook-endpoints"),
            nav("API keys", "/admin/keys", "/v1/api-keys"),
        ],
    ),
];

/// Messages carried to the page a form redirects to.
#[derive(Debug, Default, Deserialize)]
pub struct Flash {
    pub notice: Option<String>,
    pub error: Option<String>,
}

fn head(title: &str) -> Markup {
    html! {
        (DOCTYPE)
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        title { (title) " · Stockroom" }
        link rel="stylesheet" href="/admin/static/app.css";
        script src="/admin/static/app.js" defer {}
    }
}

/// A page without navigation (sign-in, errors before a session).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        html lang="en" {
            head { (head(title)) }
            body { (body) }
        }
    }
}

/// A page of the admin: navigation for the user's role, the flash messages, then `body`.
pub fn page(user: &User, title: &str, flash: &Flash, body: Markup) -> Markup {
    html! {
        html lang="en" {
            head { (head(title)) }
            body {
                header.top {
                    a.brand href="/admin" { "Stockroom" }
                    details.menu {
                        summary { "Menu" }
                        nav {
                            @for (group, items) in NAV {
                                @let shown: Vec<&NavItem> = items.iter().filter(|i| user.may("GET", i.api)).collect();
                                @if !shown.is_empty() {
                                    div.group {
                                        @if !group.is_empty() { span.group-title { (group) } }
                                        @for item in shown { a href=(item.href) { (item.label) } }
                                    }
                                }
                            }
                        }
                    }
                    form.search method="get" action="/admin/items" {
                        input type="search" name="q" placeholder="SKU, barcode or title" aria-label="Find an item";
                    }
                    span.who { (user.caller.name) " · " (user.caller.role.as_str()) }
                    form method="post" action="/admin/logout" {
                        (csrf(user))
                        button.link type="submit" { "Sign out" }
                    }
                }
                main {
                    h1 { (title) }
                    @if let Some(n) = &flash.notice { p.flash.notice role="status" { (n) } }
                    @if let Some(e) = &flash.error { p.flash.error role="alert" { (e) } }
                    (body)
                }
            }
        }
    }
}

/// The hidden CSRF field every form of a session carries.
pub fn csrf(user: &User) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(user.csrf); }
}

/// A fresh idempotency key for one rendering of a form: sending that form twice applies it once.
pub fn idem() -> Markup {
    html! { input type="hidden" name="_idem" value=(uuid::Uuid::new_v4().simple().to_string()); }
}

/// After a form: back to `to` with a notice.
pub fn done(to: &str, notice: &str) -> Response {
    redirect_with(to, "notice", notice)
}

/// After a form the API refused: back to `to` with what it said. Nothing was changed.
pub fn failed(to: &str, failure: &Failure) -> Response {
    redirect_with(to, "error", &failure.message())
}

fn redirect_with(to: &str, key: &str, message: &str) -> Response {
    let sep = if to.contains('?') { '&' } else { '?' };
    let q = serde_urlencoded::to_string([(key, message)]).unwrap_or_default();
    Redirect::to(&format!("{to}{sep}{q}")).into_response()
}

/// A page that could not be shown because the API refused to read it (not found, forbidden…).
pub fn error_page(user: &User, failure: &Failure) -> Response {
    let status = failure.status;
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        _ => "Something went wrong",
    };
    let body =
        html! { p.flash.error role="alert" { (failure.message()) } p { a href="/admin" { "Back to the dashboard" } } };
    (status, page(user, title, &Flash::default(), body)).into_response()
}

/// A JSON value as text: strings bare, null as a dash, numbers and booleans as written.
pub fn txt(v: &Value) -> String {
    match v {
        Value::Null => "—".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A timestamp of the API (RFC 3339) as `2026-11-22 14:05` UTC.
pub fn when(v: &Value) -> String {
    match v.as_str().and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok()) {
        Some(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M").to_string(),
        None => txt(v),
    }
}

/// A status word as a coloured badge.
pub fn badge(v: &Value) -> Markup {
    let s = txt(v);
    html! { span class=(format!("badge s-{}", s.replace(' ', "_"))) { (s.replace('_', " ")) } }
}

/// Raw markup (an SVG chart drawn by [`crate::charts`]).
pub fn raw(s: String) -> PreEscaped<String> {
    PreEscaped(s)
}
