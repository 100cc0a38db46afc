//! The web admin: server-rendered pages under `/admin` for the warehouse floor and the back office.
//!
//! Every page reads and every form writes through the public `/v1` API, called in-process for the signed-in
//! user ([`client`]). So the web admin has no rule, check or query of its own that the API lacks: a role sees and
//! may do in the browser exactly what its key may do over HTTP (the one policy table), every change is audited
//! and booked by the one write path like any API call, and a form sent twice (a double tap, a scanner that sends
//! Enter twice) is applied once, because each form carries an idempotency key.
//!
//! Pages are plain HTML forms that work without JavaScript; a small script built into the binary refreshes the
//! dashboard live and keeps the scanner's input focused. Charts are SVG drawn here. Nothing is fetched from the
//! internet.

pub mod charts;
pub mod client;
pub mod layout;
pub mod pages;
pub mod session;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use app::App;

/// What every page handler gets: the app (for sessions) and the API router it calls in-process.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub api: Router,
}

/// Largest form accepted: a count sheet or a catalog edit is far below it.
const MAX_FORM_BYTES: usize = 512 * 1024;

/// The API router with the web admin added under `/admin` (and `/` leading there).
pub fn with_admin(app: App, api: Router) -> Router {
    let state = WebState { app, api: api.clone() };
    let admin = Router::new()
        .route("/admin/static/app.css", get(stylesheet))
        .route("/admin/static/app.js", get(script))
        .merge(session::routes())
        .merge(pages::routes())
        .route("/admin/{*rest}", get(not_found))
        .layer(axum::middleware::from_fn_with_state(state.clone(), session::csrf_layer))
        .layer(axum::middleware::from_fn(html_rejections))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(api::request_id::layer))
        .with_state(state);
    api.route("/", get(|| async { Redirect::to("/admin") })).merge(admin)
}

/// An admin address that is no page: a page saying so (the API's fallback would answer JSON to a person).
async fn not_found() -> Response {
    let body = maud::html! {
        main.signin { h1 { "No such page" } p { "This address is not a page of Stockroom." } a href="/admin" { "Dashboard" } }
    };
    (StatusCode::NOT_FOUND, layout::bare("Not found", body)).into_response()
}

/// axum answers a malformed path (`/admin/orders/abc`) or form in plain text, written for programs; a person gets a
/// page saying what was wrong instead.
async fn html_rejections(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !resp.status().is_client_error() || !plain {
        return resp;
    }
    let status = resp.status();
    let text = match axum::body::to_bytes(resp.into_body(), 16 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let body = maud::html! {
        main.signin {
            h1 { "That did not work" }
            p.flash.error role="alert" { (text) }
            p { "Nothing was changed. " a href="/admin" { "Back to the dashboard" } }
        }
    };
    (status, layout::bare("Bad request", body)).into_response()
}

/// A panic in a page is a bug: the person gets a plain error page with the request id, the log gets the rest.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let id = api::request_id::current().unwrap_or_default();
    tracing::error!(request_id = %id, "web admin page panicked");
    let body = maud::html! {
        main.signin { h1 { "Something went wrong" } p { "The error was logged as request " code { (id) } "." } a href="/admin" { "Dashboard" } }
    };
    (StatusCode::INTERNAL_SERVER_ERROR, layout::bare("Error", body)).into_response()
}

const CSS: &str = include_str!("../assets/app.css");
const JS: &str = include_str!("../assets/app.js");

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (StatusCode::OK, [(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=3600")], body)
        .into_response()
}

/// Pages may load only what the binary serves: no other site's script, frame or form target.
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}
