//! The webhook pages (admin only, as the API's policy says): endpoints with their enabled and failing state,
//! creating one, and an endpoint's delivery log with replay, enable/disable, secret rotation and removal.
//!
//! A signing secret is shown once, in the answer to the form that made it (never in a URL or a redirect), and the
//! page is not cached (every admin page is `no-store`).

use std::collections::HashMap;

use axum::extract::{Path, Query};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::{json, Value};

use super::form::refuse_field;
use crate::client::{enc, User};
use crate::layout::{self, txt, when, Flash};
use crate::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/admin/webhooks", get(endpoints).post(create_endpoint))
        .route("/admin/webhooks/{id}", get(endpoint))
        .route("/admin/webhooks/{id}/enabled", post(set_enabled))
        .route("/admin/webhooks/{id}/rotate-secret", post(rotate_secret))
        .route("/admin/webhooks/{id}/replay", post(replay))
        .route("/admin/webhooks/{id}/delete", post(delete_endpoint))
}

/// Deliveries shown per page of the log.
const LOG_PAGE: u32 = 50;

fn state(e: &Value) -> Markup {
    html! {
        @if e["enabled"] == true {
            @if e["failing_since"].is_string() {
                span.badge.s-failed.failing { "failing since " (when(&e["failing_since"])) }
            } @else {
                span.badge.s-delivered.enabled { "enabled" }
            }
        } @else {
            span.badge.s-disabled.disabled { "disabled" }
            @if let Some(r) = e["disabled_reason"].as_str() { " " span.muted { (r) } }
        }
    }
}

fn events(e: &Value) -> String {
    let list: Vec<String> = e["event_types"].as_array().into_iter().flatten().map(txt).collect();
    if list.is_empty() {
        "every event".into()
    } else {
        list.join(", ")
    }
}

async fn endpoints(user: User, Query(flash): Query<Flash>) -> Response {
    let page = match user.get("/v1/webhook-endpoints?limit=500").await {
        Ok(v) => v,
        Err(f) => return layout::error_page(&user, &f),
    };
    let items = page["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if items.is_empty() {
            p.muted { "No endpoints: no event leaves Stockroom." }
        } @else {
            div.table-wrap {
                table #endpoints {
                    thead { tr { th { "URL" } th { "Events" } th { "Channel" } th { "State" } th { "Created" } } }
                    tbody {
                        @for e in &items {
                            tr {
                                td.mono { a href=(format!("/admin/webhooks/{}", e["id"])) { (txt(&e["url"])) } }
                                td { (events(e)) }
                                td { (txt(&e["channel"])) }
                                td { (state(e)) }
                                td { (when(&e["created_at"])) }
                            }
                        }
                    }
                }
            }
        }
        @if user.may("POST", "/v1/webhook-endpoints") {
            h2 { "New endpoint" }
            form.stack #new-endpoint method="post" action="/admin/webhooks" {
                (layout::csrf(&user)) (layout::idem())
                label for="w-url" { "URL (http or https)" }
                input #w-url name="url" type="url" required maxlength="2000" placeholder="https://example.com/hooks/stockroom";
                label for="w-events" { "Event types or prefixes, separated by commas (empty: every event)" }
                input #w-events name="event_types" placeholder="order.*, stock.reorder_point_reached";
                label for="w-channel" { "Only events of this channel (optional)" }
                input #w-channel name="channel" maxlength="100";
                button #create-endpoint type="submit" { "Create endpoint" }
            }
        }
    };
    layout::page(&user, "Webhooks", &flash, body).into_response()
}

fn split_events(s: &str) -> Vec<String> {
    s.split([',', ' ', '\n', '\t']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// The one answer that shows a secret: no redirect (it would have to carry the secret), a link onward instead.
fn secret_page(user: &User, title: &str, e: &Value) -> Response {
    let body = html! {
        div.panel #secret-panel {
            p { "The signing secret of " span.mono { (txt(&e["url"])) } ". It is shown only now: copy it into the receiver, which verifies the "
                code { "webhook-signature" } " header with it." }
            p { code #secret { (txt(&e["secret"])) } }
        }
        p { a.button #to-endpoint href=(format!("/admin/webhooks/{}", e["id"])) { "Done" } }
    };
    layout::page(user, title, &Flash::default(), body).into_response()
}

async fn create_endpoint(user: User, Form(f): Form<HashMap<String, String>>) -> Response {
    let mut body = json!({
        "url": f.get("url").map(|s| s.trim()).unwrap_or(""),
        "event_types": split_events(f.get("event_types").map_or("", String::as_str)),
    });
    if let Some(c) = f.get("channel").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        body["channel"] = json!(c);
    }
    match user.post("/v1/webhook-endpoints", &body, f.get("_idem").map(String::as_str)).await {
        Ok(e) => secret_page(&user, "Endpoint created", &e),
        Err(e) => layout::failed("/admin/webhooks", &e),
    }
}

#[derive(Deserialize)]
struct LogQuery {
    after: Option<String>,
    notice: Option<String>,
    error: Option<String>,
}

async fn endpoint(user: User, Path(id): Path<i64>, Query(q): Query<LogQuery>) -> Response {
    let mut log_path = format!("/v1/webhook-endpoints/{id}/deliveries?limit={LOG_PAGE}");
    if let Some(a) = &q.after {
        log_path.push_str(&format!("&after={}", enc(a)));
    }
    let endpoint_path = format!("/v1/webhook-endpoints/{id}");
    let (e, log) = tokio::join!(user.get(&endpoint_path), user.get(&log_path));
    let (e, log) = match (e, log) {
        (Ok(e), Ok(l)) => (e, l),
        (Err(f), _) | (_, Err(f)) => return layout::error_page(&user, &f),
    };
    let attempts = log["items"].as_array().cloned().unwrap_or_default();
    let may_replay = user.may("POST", "/v1/webhook-endpoints/{id}/replay");
    let enabled = e["enabled"] == true;
    let flash = Flash { notice: q.notice.clone(), error: q.error.clone() };
    let body = html! {
        div.cards {
            div.card { div.muted { "State" } div.big #endpoint-state { (state(&e)) } }
            div.card { div.muted { "Events" } div { (events(&e)) } }
            div.card { div.muted { "Channel" } div { (txt(&e["channel"])) } }
        }
        p.mono { (txt(&e["url"])) }
        div.panel.no-print.actions #endpoint-actions {
            @if user.may("PATCH", "/v1/webhook-endpoints/{id}") {
                form.inline method="post" action=(format!("/admin/webhooks/{id}/enabled")) {
                    (layout::csrf(&user))
                    input type="hidden" name="enabled" value=(if enabled { "false" } else { "true" });
                    @if enabled {
                        button.secondary #disable type="submit" { "Disable" }
                    } @else {
                        button #enable type="submit" { "Enable (resumes pending deliveries)" }
                    }
                }
            }
            @if user.may("POST", "/v1/webhook-endpoints/{id}/rotate-secret") {
                form.inline method="post" action=(format!("/admin/webhooks/{id}/rotate-secret"))
                    data-confirm="Rotate the secret? Messages from now on are signed with the new one." {
                    // No idempotency key: the API would keep the answer, new secret and all, in its idempotency
                    // table, where it would outlive the next rotation.
                    (layout::csrf(&user))
                    button.secondary #rotate type="submit" { "Rotate secret" }
                }
            }
            @if user.may("DELETE", "/v1/webhook-endpoints/{id}") {
                form.inline method="post" action=(format!("/admin/webhooks/{id}/delete"))
                    data-confirm="Delete this endpoint with its pending deliveries and its log?" {
                    (layout::csrf(&user))
                    button.danger #delete type="submit" { "Delete" }
                }
            }
        }
        h2 { "Delivery log" }
        @if attempts.is_empty() {
            p.muted { "No attempts yet." }
        } @else {
            div.table-wrap {
                table #deliveries {
                    thead { tr { th { "When" } th { "Event" } th { "Result" } th.num { "ms" } th { "Next attempt" }
                        @if may_replay { th.no-print { "" } } } }
                    tbody {
                        @for a in &attempts {
                            tr {
                                td { (when(&a["attempted_at"])) }
                                td { (txt(&a["event_type"])) " " span.muted.mono { "#" (txt(&a["event_id"])) } }
                                td {
                                    @if a["status_code"].as_u64().is_some_and(|s| (200..300).contains(&s)) {
                                        span.badge.s-delivered { (txt(&a["status_code"])) }
                                    } @else {
                                        span.badge.s-failed { (a["status_code"].as_u64().map_or("no answer".to_string(), |s| s.to_string())) }
                                        @if let Some(err) = a["error"].as_str() { " " span.muted { (err) } }
                                    }
                                }
                                td.num { (txt(&a["duration_ms"])) }
                                td { (when(&a["next_attempt_at"])) }
                                @if may_replay {
                                    td.no-print {
                                        form.inline method="post" action=(format!("/admin/webhooks/{id}/replay")) {
                                            (layout::csrf(&user)) (layout::idem())
                                            input type="hidden" name="event_id" value=(txt(&a["event_id"]));
                                            button.secondary.replay type="submit" { "Replay" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if let Some(next) = log["next_cursor"].as_str() {
                p { a.button.secondary href=(format!("/admin/webhooks/{id}?after={}", enc(next))) { "Older attempts" } }
            }
        }
        @if may_replay {
            h2 { "Replay a period" }
            form.inline.no-print #replay-range method="post" action=(format!("/admin/webhooks/{id}/replay")) {
                (layout::csrf(&user)) (layout::idem())
                div { label for="r-from" { "From (UTC)" } input #r-from type="datetime-local" name="from" required; }
                div { label for="r-to" { "To (UTC, exclusive)" } input #r-to type="datetime-local" name="to" required; }
                button.secondary type="submit" { "Send these events again" }
            }
        }
    };
    layout::page(&user, &format!("Webhook endpoint {id}"), &flash, body).into_response()
}

#[derive(Deserialize)]
struct EnabledForm {
    enabled: String,
}

async fn set_enabled(user: User, Path(id): Path<i64>, Form(f): Form<EnabledForm>) -> Response {
    let back = format!("/admin/webhooks/{id}");
    let enabled = match f.enabled.as_str() {
        "true" => true,
        "false" => false,
        _ => return refuse_field(&back, "enabled", "must be true or false"),
    };
    match user.patch(&format!("/v1/webhook-endpoints/{id}"), &json!({ "enabled": enabled })).await {
        Ok(_) => layout::done(&back, if enabled { "Endpoint enabled" } else { "Endpoint disabled" }),
        Err(e) => layout::failed(&back, &e),
    }
}

/// Sent without an idempotency key, whatever the form holds, so that no stored answer keeps the secret.
async fn rotate_secret(user: User, Path(id): Path<i64>) -> Response {
    match user.post(&format!("/v1/webhook-endpoints/{id}/rotate-secret"), &json!({}), None).await {
        Ok(e) => secret_page(&user, "New signing secret", &e),
        Err(e) => layout::failed(&format!("/admin/webhooks/{id}"), &e),
    }
}

/// A `datetime-local` value (`2026-11-22T14:05`, taken as UTC) as RFC 3339.
fn utc(s: &str) -> Option<String> {
    let s = s.trim();
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|t| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

async fn replay(user: User, Path(id): Path<i64>, Form(f): Form<HashMap<String, String>>) -> Response {
    let back = format!("/admin/webhooks/{id}");
    let get = |k: &str| f.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
    let body = if let Some(ev) = get("event_id") {
        match ev.parse::<i64>() {
            Ok(n) => json!({ "event_id": n }),
            Err(_) => return refuse_field(&back, "event_id", "must be a whole number"),
        }
    } else {
        match (get("from").map(utc), get("to").map(utc)) {
            (Some(Some(from)), Some(Some(to))) => json!({ "from": from, "to": to }),
            _ => return refuse_field(&back, "from", "give an event or a period (from and to, as dates and times)"),
        }
    };
    match user.post(&format!("/v1/webhook-endpoints/{id}/replay"), &body, f.get("_idem").map(String::as_str)).await {
        Ok(r) => layout::done(&back, &format!("Replay queued: {} new deliveries", txt(&r["deliveries"]))),
        Err(e) => layout::failed(&back, &e),
    }
}

async fn delete_endpoint(user: User, Path(id): Path<i64>) -> Response {
    match user.delete(&format!("/v1/webhook-endpoints/{id}")).await {
        Ok(_) => layout::done("/admin/webhooks", &format!("Endpoint {id} deleted")),
        Err(e) => layout::failed(&format!("/admin/webhooks/{id}"), &e),
    }
}
