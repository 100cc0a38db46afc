//! Signing in and out of the web admin, the session cookie, and the CSRF check on every form.
//!
//! A user signs in with an API key (a person's own staff, warehouse or admin key). The browser then holds only a
//! random session token in an HttpOnly, SameSite=Strict cookie; the database holds its hash and the key it stands
//! for, so revoking the key ends the session at the next click. Every POST of a session must send the session's
//! CSRF token (a hidden form field, or the `x-csrf-token` header from script), which another site cannot read.
//! The sign-in form itself is protected by a double-submit token, so that another site cannot sign a browser
//! into someone else's session either.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use app::trust::{Rejection, Role};

use crate::client::User;
use crate::layout;
use crate::WebState;

pub const SESSION_COOKIE: &str = "sr_session";
const LOGIN_COOKIE: &str = "sr_login";
/// The form field every POST carries.
pub const CSRF_FIELD: &str = "_csrf";

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/login", get(login_page).post(login)).route("/admin/logout", post(logout))
}

/// The value of cookie `name`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Behind a TLS-terminating proxy the cookie must be `Secure`; plain HTTP on a local network cannot use one.
fn secure(headers: &HeaderMap) -> &'static str {
    match headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
        Some(p) if p.eq_ignore_ascii_case("https") => "; Secure",
        _ => "",
    }
}

fn set_cookie(name: &str, value: &str, max_age: i64, headers: &HeaderMap) -> HeaderValue {
    let v = format!("{name}={value}; Path=/admin; HttpOnly; SameSite=Strict; Max-Age={max_age}{}", secure(headers));
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Only a local path may be a place to return to after signing in, never another site; and only one that can be
/// a `Location` header as it is (printable ASCII), so that the redirect after a successful sign-in cannot fail.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin")
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            n.to_string()
        }
        _ => "/admin".to_string(),
    }
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

async fn login_page(headers: HeaderMap, axum::extract::Query(q): axum::extract::Query<LoginQuery>) -> Response {
    let token = app::trust::new_secret();
    let next = safe_next(q.next.as_deref());
    let body = html! {
        main.signin {
            h1 { "Stockroom" }
            p.muted { "Sign in with your API key. Ask an admin for one (" code { "stockroom keys create" } ")." }
            @if let Some(e) = &q.error { p.flash.error role="alert" { (e) } }
            form method="post" action="/admin/login" {
                input type="hidden" name="_login" value=(token);
                input type="hidden" name="next" value=(next);
                label for="key" { "API key" }
                input #key type="password" name="key" autocomplete="current-password" required autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = layout::bare("Sign in", body).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 3600, &headers));
    resp
}

#[derive(Deserialize)]
pub struct LoginForm {
    key: String,
    #[serde(rename = "_login")]
    login: String,
    next: Option<String>,
}

fn back_to_login(error: &str, next: &str) -> Response {
    let q = serde_urlencoded::to_string([("error", error), ("next", next)]).unwrap_or_default();
    Redirect::to(&format!("/admin/login?{q}")).into_response()
}

async fn login(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    if cookie(&headers, LOGIN_COOKIE) != Some(form.login.as_str()) || form.login.is_empty() {
        return back_to_login("The sign-in form expired; please try again.", &next);
    }
    let session = match state.app.open_web_session(form.key.trim()).await {
        Ok(Ok(s)) => s,
        Ok(Err(Rejection::Unknown | Rejection::Revoked | Rejection::Expired)) => {
            // One message for every reason, like the API's 401.
            return back_to_login("That key is not valid.", &next);
        }
        Err(e) => {
            tracing::error!(error = %e, "could not open a web session");
            return back_to_login("Signing in failed; please try again.", &next);
        }
    };
    if session.caller.role == Role::Channel {
        let _ = state.app.close_web_session(&session.token).await;
        return back_to_login("Channel keys are for shop integrations and cannot sign in here.", &next);
    }
    state
        .app
        .audit(app::trust::NewAuditEntry {
            at: chrono::Utc::now(),
            actor_key_id: Some(session.caller.key_id),
            actor_name: app::trust::actor_name(session.caller.key_id, &session.caller.name),
            request_id: api::request_id::current(),
            entity: "web-sessions".into(),
            entity_id: None,
            action: "POST /admin/login".into(),
            status: 303,
            summary: "signed in to the web admin".into(),
        })
        .await;
    let max_age = app::trust::WEB_SESSION_HOURS * 3600;
    let mut resp = Redirect::to(&next).into_response();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, &session.token, max_age, &headers));
    h.append(header::SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0, &headers));
    resp
}

async fn logout(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie(&headers, SESSION_COOKIE) {
        if let Err(e) = state.app.close_web_session(token).await {
            tracing::warn!(error = %e, "could not end a web session");
        }
    }
    let mut resp = Redirect::to("/admin/login").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, &headers));
    resp
}

/// The signed-in user; a page without a live session sends the browser to the sign-in page and back.
impl FromRequestParts<WebState> for User {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Self::Rejection> {
        if let Some(user) = parts.extensions.get::<User>() {
            return Ok(user.clone());
        }
        let user = session_user(&parts.headers, state).await?;
        let Some(user) = user else {
            let here = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/admin");
            let next = if parts.method == Method::GET { here } else { "/admin" };
            let q = serde_urlencoded::to_string([("next", next)]).unwrap_or_default();
            return Err(Redirect::to(&format!("/admin/login?{q}")).into_response());
        };
        parts.extensions.insert(user.clone());
        Ok(user)
    }
}

async fn session_user(headers: &HeaderMap, state: &WebState) -> Result<Option<User>, Response> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    match state.app.web_session(token).await {
        Ok(Some((caller, csrf))) if caller.role != Role::Channel => {
            Ok(Some(User { caller, csrf, api: state.api.clone() }))
        }
        Ok(_) => Ok(None),
        Err(e) => {
            tracing::error!(error = %e, "could not read a web session");
            Err((StatusCode::SERVICE_UNAVAILABLE, "the database is not answering; try again").into_response())
        }
    }
}

/// Every POST under `/admin` but the sign-in form must carry the session's CSRF token; a request without one
/// changes nothing. The body is read once here and handed on unchanged.
pub async fn csrf_layer(State(state): State<WebState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST || req.uri().path() == "/admin/login" {
        return next.run(req).await;
    }
    let user = match session_user(req.headers(), &state).await {
        Ok(Some(user)) => user,
        Ok(None) => return Redirect::to("/admin/login").into_response(),
        Err(resp) => return resp,
    };
    let header_token = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()).map(str::to_string);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, crate::MAX_FORM_BYTES).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "the form is too large").into_response(),
    };
    let form_token = form_urlencoded::parse(&bytes).find(|(k, _)| k == CSRF_FIELD).map(|(_, v)| v.into_owned());
    let sent = header_token.or(form_token);
    if sent.as_deref().map(|t| constant_time_eq(t.as_bytes(), user.csrf.as_bytes())) != Some(true) {
        let page = layout::bare(
            "Form expired",
            html! { main.signin { h1 { "This form has expired" } p { "Nothing was changed. Go back, reload the page and try again." } a href="/admin" { "Dashboard" } } },
        );
        return (StatusCode::FORBIDDEN, page).into_response();
    }
    let mut req = Request::from_parts(parts, axum::body::Body::from(bytes));
    req.extensions_mut().insert(user);
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_admin_path_that_can_be_a_header() {
        assert_eq!(safe_next(Some("/admin/orders?status=open")), "/admin/orders?status=open");
        for bad in [
            "https://evil.example/admin",
            "//evil.example/admin",
            "/admin\\..\\x",
            "/admin\nSet-Cookie: x",
            "/admin x",
            "/v1/orders",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/admin");
    }
}
