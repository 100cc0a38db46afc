//! The API keys pages (admin only, as the API's policy says): the keys with role, channel, prefix and dates; a
//! key created and its secret shown once, in the answer to the form and nowhere else; a key revoked.

use axum::extract::{Path, Query};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::client::{enc, User};
use crate::layout::{self, Flash};
use crate::pages::form::invalid;
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new().route("/admin/keys", get(list).post(create)).route("/admin/keys/{id}/revoke", post(revoke))
}

const ROLES: [&str; 4] = ["staff", "warehouse", "channel", "admin"];

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn list(user: User, Query(q): Query<ListQuery>) -> Response {
    let flash = Flash { notice: q.notice, error: q.error };
    let api = match q.after.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => format!("/v1/api-keys?limit=100&after={}", enc(a)),
        None => "/v1/api-keys?limit=100".to_string(),
    };
    let keys = match user.get(&api).await {
        Ok(k) => k,
        Err(f) => return layout::error_page(&user, &f),
    };
    // The channel list only fills the form's choice; without it a channel code can still be typed.
    let channels = user.get("/v1/channels?limit=100").await.ok();
    let empty = vec![];
    let items = keys["items"].as_array().unwrap_or(&empty);
    let channel_codes: Vec<String> = channels
        .as_ref()
        .and_then(|c| c["items"].as_array())
        .map(|a| a.iter().map(|c| layout::txt(&c["code"])).collect())
        .unwrap_or_default();
    let body = html! {
        div.table-wrap {
            table id="keys" {
                thead { tr {
                    th { "Name" } th { "Role" } th { "Channel" } th { "Prefix" } th { "Created" } th { "Expires" }
                    th { "Revoked" } th.no-print {}
                } }
                tbody {
                    @for k in items {
                        @let id = k["id"].as_i64().unwrap_or(0);
                        tr data-key=(id) {
                            td { (layout::txt(&k["name"])) br; span.muted { "by " (layout::txt(&k["created_by"])) } }
                            td { (layout::txt(&k["role"])) }
                            td { (layout::txt(&k["channel"])) }
                            td.mono { (layout::txt(&k["prefix"])) "…" }
                            td { (layout::when(&k["created_at"])) }
                            td { (layout::when(&k["expires_at"])) }
                            td { @if k["revoked_at"].is_null() { span.muted { "no" } } @else { span.badge.s-cancelled { (layout::when(&k["revoked_at"])) } } }
                            td.no-print {
                                @if k["revoked_at"].is_null() && user.may("POST", "/v1/api-keys/{id}/revoke") {
                                    form.inline method="post" action=(format!("/admin/keys/{id}/revoke"))
                                        data-confirm=(format!("Revoke the key {}? Whatever uses it stops working.", layout::txt(&k["name"]))) {
                                        (layout::csrf(&user))
                                        button.danger.revoke type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                    @if items.is_empty() { tr { td colspan="8" .muted { "No keys." } } }
                }
            }
        }
        @if let Some(next) = keys["next_cursor"].as_str() {
            p { a id="next-page" href=(format!("/admin/keys?after={}", enc(next))) { "Next page →" } }
        }
        @if user.may("POST", "/v1/api-keys") {
            section.panel.no-print {
                h2 { "New key" }
                form.stack.labelled id="new-key" method="post" action="/admin/keys" {
                    (layout::csrf(&user)) (layout::idem())
                    label { "Name " span.muted { "(who or what uses it)" } input name="name" required; }
                    label { "Role" select name="role" { @for r in ROLES { option value=(r) { (r) } } } }
                    label { "Channel " span.muted { "(channel keys only)" }
                        select name="channel" {
                            option value="" { "—" }
                            @for c in &channel_codes { option value=(c) { (c) } }
                        }
                    }
                    label { "Expires on " span.muted { "(empty: never; the key stops working at 00:00 UTC that day)" }
                        input type="date" name="expires_on"; }
                    button id="create-key" type="submit" { "Create key" }
                }
            }
        }
    };
    layout::page(&user, "API keys", &flash, body).into_response()
}

#[derive(Debug, Deserialize)]
struct NewKeyForm {
    name: String,
    role: String,
    #[serde(default)]
    channel: String,
    #[serde(default)]
    expires_on: String,
    #[serde(default)]
    _idem: String,
}

/// The API's body for a new key; an expiry date that is not a date is refused here.
fn key_body(f: &NewKeyForm) -> Result<Value, crate::client::Failure> {
    let mut body = json!({"name": f.name.trim(), "role": f.role});
    if !f.channel.trim().is_empty() {
        body["channel"] = json!(f.channel.trim());
    }
    let day = f.expires_on.trim();
    if !day.is_empty() {
        let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
            .map_err(|_| invalid("expires_on", "must be a date such as 2027-01-31"))?;
        body["expires_at"] = json!(format!("{date}T00:00:00Z"));
    }
    Ok(body)
}

/// The secret is in this answer only: never in a redirect, a URL or a flash message, and never stored by the
/// browser (no-store) or replayed by the idempotency layer (which keeps no answer marked no-store).
async fn create(user: User, Form(f): Form<NewKeyForm>) -> Response {
    let body = match key_body(&f) {
        Ok(b) => b,
        Err(e) => return layout::failed("/admin/keys", &e),
    };
    let k = match user.post("/v1/api-keys", &body, Some(&f._idem)).await {
        Ok(k) => k,
        Err(e) => return layout::failed("/admin/keys", &e),
    };
    let page_body = html! {
        section.panel {
            p { "The key " strong { (layout::txt(&k["name"])) } " (" (layout::txt(&k["role"]))
                @if !k["channel"].is_null() { ", channel " (layout::txt(&k["channel"])) } ") is ready." }
            p { strong { "Copy the secret now: it is shown this once and cannot be shown again." } }
            p { code.mono id="new-secret" { (layout::txt(&k["secret"])) } }
            p.muted { "Send it as " span.mono { "Authorization: Bearer <secret>" } "." }
            p { a id="back-to-keys" href="/admin/keys" { "Done" } }
        }
    };
    let notice = Flash { notice: Some("Key created".into()), error: None };
    (
        StatusCode::OK,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        layout::page(&user, "New API key", &notice, page_body),
    )
        .into_response()
}

async fn revoke(user: User, Path(id): Path<i64>) -> Response {
    match user.post(&format!("/v1/api-keys/{id}/revoke"), &json!({}), None).await {
        Ok(k) => layout::done("/admin/keys", &format!("Revoked {}", layout::txt(&k["name"]))),
        Err(e) => layout::failed("/admin/keys", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(channel: &str, expires_on: &str) -> NewKeyForm {
        NewKeyForm {
            name: " shop ".into(),
            role: "channel".into(),
            channel: channel.into(),
            expires_on: expires_on.into(),
            _idem: String::new(),
        }
    }

    #[test]
    fn the_form_becomes_the_api_body() {
        assert_eq!(key_body(&form("", "")).unwrap(), json!({"name": "shop", "role": "channel"}));
        assert_eq!(
            key_body(&form("web", "2027-01-31")).unwrap(),
            json!({"name": "shop", "role": "channel", "channel": "web", "expires_at": "2027-01-31T00:00:00Z"})
        );
        assert_eq!(key_body(&form("", "31.01.2027")).unwrap_err().errors[0].0, "expires_on");
    }
}
