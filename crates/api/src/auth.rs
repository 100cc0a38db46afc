//! Authentication and authorization: every request under `/v1` (and `/metrics`) carries an API key as
//! `Authorization: Bearer <secret>`, and one policy table says which roles each endpoint admits.
//!
//! The table is deny by default: an endpoint missing from it is for admin keys only, and a test walks every path
//! and method of the OpenAPI document and fails on any without an entry. The same table writes each operation's
//! security requirement and "who may call this" into the document. Channel keys are further held to their
//! channel: where the route names the channel (`{code}`) this layer checks it; where the resource only says its
//! channel once read (orders, holds), the handler checks it and answers 404, so existence does not leak.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::trust::{Caller, Rejection, Role};
use app::App;

use crate::problem::ApiError;

/// How a channel key is held to its channel on an endpoint it may call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChannelScope {
    /// Channel keys may not call it.
    None,
    /// The route's `{code}` must be the key's channel (403 otherwise); checked here.
    PathCode,
    /// The handler checks the resource's channel (404 for another channel's, so existence does not leak).
    Handler,
}

/// Who may call one endpoint. Admin keys may call every endpoint and are not listed.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    /// The route as axum and the OpenAPI document spell it (`{param}`; a catch-all `{*path}` as `{path}`).
    pub path: &'static str,
    pub roles: &'static [Role],
    pub channel: ChannelScope,
}

use ChannelScope::{Handler, PathCode};
use Role::{Channel, Staff, Warehouse};

const fn rule(method: &'static str, path: &'static str, roles: &'static [Role]) -> Rule {
    let channel = ChannelScope::None;
    Rule { method, path, roles, channel }
}

const fn scoped(method: &'static str, path: &'static str, roles: &'static [Role], channel: ChannelScope) -> Rule {
    Rule { method, path, roles, channel }
}

const ADMIN: &[Role] = &[];
const STAFF: &[Role] = &[Staff];
const WAREHOUSE: &[Role] = &[Warehouse];
const STAFF_WAREHOUSE: &[Role] = &[Staff, Warehouse];
const STAFF_CHANNEL: &[Role] = &[Staff, Channel];
const ALL_CHANNEL: &[Role] = &[Staff, Warehouse, Channel];

/// The policy table: every endpoint and the roles besides admin that may call it.
pub const POLICY: &[Rule] = &[
    // Catalog: staff keeps it; the warehouse reads it.
    rule("GET", "/v1/products", STAFF_WAREHOUSE),
    rule("POST", "/v1/products", STAFF),
    rule("GET", "/v1/products/{key}", STAFF_WAREHOUSE),
    rule("PATCH", "/v1/products/{key}", STAFF),
    rule("DELETE", "/v1/products/{key}", STAFF),
    rule("POST", "/v1/products/{key}/variants", STAFF),
    rule("GET", "/v1/variants", STAFF_WAREHOUSE),
    rule("GET", "/v1/variants/{key}", STAFF_WAREHOUSE),
    rule("PATCH", "/v1/variants/{key}", STAFF),
    rule("DELETE", "/v1/variants/{key}", STAFF),
    rule("GET", "/v1/variants/{key}/components", STAFF_WAREHOUSE),
    rule("PUT", "/v1/variants/{key}/components", STAFF),
    rule("GET", "/v1/inventory/availability/{sku}", STAFF_WAREHOUSE),
    // Locations: the warehouse keeps its tree.
    rule("GET", "/v1/locations", STAFF_WAREHOUSE),
    rule("POST", "/v1/locations", WAREHOUSE),
    rule("GET", "/v1/locations/{path}", STAFF_WAREHOUSE),
    rule("PATCH", "/v1/locations/{path}", WAREHOUSE),
    rule("DELETE", "/v1/locations/{path}", WAREHOUSE),
    // Stock: the warehouse books it; staff reads it for reports.
    rule("POST", "/v1/inventory/adjustments", WAREHOUSE),
    rule("POST", "/v1/inventory/moves", WAREHOUSE),
    rule("GET", "/v1/inventory/levels", STAFF_WAREHOUSE),
    rule("GET", "/v1/inventory/movements", STAFF_WAREHOUSE),
    // Orders: staff, and a channel for its own (the handlers check whose).
    scoped("POST", "/v1/orders", STAFF_CHANNEL, Handler),
    scoped("GET", "/v1/orders", ALL_CHANNEL, Handler),
    scoped("GET", "/v1/orders/{id}", ALL_CHANNEL, Handler),
    scoped("POST", "/v1/orders/{id}/cancel", STAFF_CHANNEL, Handler),
    rule("POST", "/v1/orders/{id}/payments", STAFF),
    rule("POST", "/v1/orders/{id}/shipments", STAFF_WAREHOUSE),
    rule("POST", "/v1/orders/{id}/edits", STAFF),
    rule("POST", "/v1/orders/{id}/credit-memos", STAFF),
    rule("POST", "/v1/returns", STAFF),
    rule("GET", "/v1/returns/{id}", STAFF_WAREHOUSE),
    rule("POST", "/v1/returns/{id}/receipts", STAFF_WAREHOUSE),
    scoped("POST", "/v1/holds", STAFF_CHANNEL, Handler),
    scoped("GET", "/v1/holds/{id}", STAFF_CHANNEL, Handler),
    scoped("POST", "/v1/holds/{id}/extend", STAFF_CHANNEL, Handler),
    scoped("POST", "/v1/holds/{id}/release", STAFF_CHANNEL, Handler),
    rule("GET", "/v1/customers", STAFF),
    rule("POST", "/v1/customers", STAFF),
    rule("GET", "/v1/customers/{id}", STAFF),
    rule("PATCH", "/v1/customers/{id}", STAFF),
    // Fulfillment: the warehouse picks and packs.
    rule("GET", "/v1/pick-lists", STAFF_WAREHOUSE),
    rule("POST", "/v1/pick-lists", WAREHOUSE),
    rule("GET", "/v1/pick-lists/{id}", STAFF_WAREHOUSE),
    rule("POST", "/v1/pick-lists/{id}/complete", WAREHOUSE),
    rule("POST", "/v1/pick-lists/{id}/cancel", WAREHOUSE),
    rule("POST", "/v1/orders/{id}/packages", WAREHOUSE),
    // Channels: admin sets them up; staff reads; a channel reads its own availability, feed and prices.
    rule("GET", "/v1/channels", STAFF),
    rule("POST", "/v1/channels", ADMIN),
    scoped("GET", "/v1/channels/{code}", STAFF_CHANNEL, PathCode),
    rule("PATCH", "/v1/channels/{code}", ADMIN),
    rule("DELETE", "/v1/channels/{code}", ADMIN),
    rule("GET", "/v1/channels/{code}/rules", STAFF),
    rule("PUT", "/v1/channels/{code}/rules", ADMIN),
    rule("POST", "/v1/channels/{code}/rules/preview", STAFF),
    rule("DELETE", "/v1/channels/{code}/rules", ADMIN),
    scoped("GET", "/v1/channels/{code}/availability", STAFF_CHANNEL, PathCode),
    scoped("GET", "/v1/channels/{code}/availability/{sku}", STAFF_CHANNEL, PathCode),
    scoped("GET", "/v1/channels/{code}/snapshot", STAFF_CHANNEL, PathCode),
    scoped("GET", "/v1/channels/{code}/prices/{sku}", STAFF_CHANNEL, PathCode),
    // Purchasing: staff buys; the warehouse reads what is coming and receives it.
    rule("GET", "/v1/suppliers", STAFF),
    rule("POST", "/v1/suppliers", STAFF),
    rule("GET", "/v1/suppliers/{id}", STAFF),
    rule("PUT", "/v1/suppliers/{id}/items", STAFF),
    rule("GET", "/v1/purchase-orders", STAFF_WAREHOUSE),
    rule("POST", "/v1/purchase-orders", STAFF),
    rule("GET", "/v1/purchase-orders/{id}", STAFF_WAREHOUSE),
    rule("POST", "/v1/purchase-orders/{id}/order", STAFF),
    rule("POST", "/v1/purchase-orders/{id}/cancel", STAFF),
    rule("POST", "/v1/purchase-orders/{id}/close", STAFF),
    rule("POST", "/v1/purchase-orders/{id}/receipts", STAFF_WAREHOUSE),
    rule("GET", "/v1/putaway", STAFF_WAREHOUSE),
    rule("POST", "/v1/default-bins", WAREHOUSE),
    rule("DELETE", "/v1/default-bins", WAREHOUSE),
    // Transfers, counts, inspections and bins book or steer stock movements: warehouse work (issue #8), which staff
    // may follow but not do, like adjustments and moves.
    rule("GET", "/v1/transfers", STAFF_WAREHOUSE),
    rule("POST", "/v1/transfers", WAREHOUSE),
    rule("GET", "/v1/transfers/{id}", STAFF_WAREHOUSE),
    rule("POST", "/v1/transfers/{id}/ship", WAREHOUSE),
    rule("POST", "/v1/transfers/{id}/cancel", WAREHOUSE),
    rule("POST", "/v1/transfers/{id}/receipts", WAREHOUSE),
    rule("GET", "/v1/counts", STAFF_WAREHOUSE),
    rule("POST", "/v1/counts", WAREHOUSE),
    rule("GET", "/v1/counts/{id}", STAFF_WAREHOUSE),
    rule("POST", "/v1/counts/{id}/entries", WAREHOUSE),
    rule("GET", "/v1/counts/{id}/variance", STAFF_WAREHOUSE),
    rule("POST", "/v1/counts/{id}/approve", WAREHOUSE),
    rule("POST", "/v1/inspections", WAREHOUSE),
    rule("GET", "/v1/reports/shrinkage", STAFF),
    // Valuation and replenishment: staff reads the books and buys; how the books are kept is the admin's.
    rule("GET", "/v1/settings/costing", STAFF),
    rule("PUT", "/v1/settings/costing", ADMIN),
    rule("GET", "/v1/settings/accounting", STAFF),
    rule("PUT", "/v1/settings/accounting", ADMIN),
    rule("GET", "/v1/settings/replenishment", STAFF),
    rule("PUT", "/v1/settings/replenishment", STAFF),
    rule("POST", "/v1/purchase-orders/{id}/receipts/{number}/landed-costs", STAFF),
    rule("GET", "/v1/purchase-orders/{id}/landed-costs", STAFF),
    rule("GET", "/v1/reports/valuation", STAFF),
    rule("GET", "/v1/reports/margin", STAFF),
    rule("GET", "/v1/reports/stock-health", STAFF),
    rule("GET", "/v1/reports/sales-per-day", STAFF),
    rule("GET", "/v1/reports/dashboard", STAFF_WAREHOUSE),
    rule("GET", "/v1/accounting/journal", STAFF),
    rule("GET", "/v1/accounting/periods", STAFF),
    rule("POST", "/v1/accounting/periods/{period}/lock", ADMIN),
    rule("GET", "/v1/items/{sku}/velocity", STAFF),
    rule("GET", "/v1/items/{sku}/forecast", STAFF),
    rule("GET", "/v1/replenishment/suggestions", STAFF),
    rule("POST", "/v1/replenishment/purchase-orders", STAFF),
    rule("POST", "/v1/replenishment/evaluate", STAFF),
    // Webhooks hold signing secrets; keys and the audit trail are the keys to everything: admin only.
    rule("GET", "/v1/webhook-endpoints", ADMIN),
    rule("POST", "/v1/webhook-endpoints", ADMIN),
    rule("GET", "/v1/webhook-endpoints/{id}", ADMIN),
    rule("PATCH", "/v1/webhook-endpoints/{id}", ADMIN),
    rule("DELETE", "/v1/webhook-endpoints/{id}", ADMIN),
    rule("GET", "/v1/webhook-endpoints/{id}/secret", ADMIN),
    rule("POST", "/v1/webhook-endpoints/{id}/rotate-secret", ADMIN),
    rule("GET", "/v1/webhook-endpoints/{id}/deliveries", ADMIN),
    rule("POST", "/v1/webhook-endpoints/{id}/replay", ADMIN),
    rule("GET", "/v1/api-keys", ADMIN),
    rule("POST", "/v1/api-keys", ADMIN),
    rule("GET", "/v1/api-keys/{id}", ADMIN),
    rule("POST", "/v1/api-keys/{id}/revoke", ADMIN),
    rule("GET", "/v1/audit", ADMIN),
    // Operational numbers only, no business data: readable by staff and the warehouse too.
    rule("GET", "/metrics", STAFF_WAREHOUSE),
];

/// Paths anyone may read without a key.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/docs", "/openapi.json"];

/// `{*path}` → `{path}`, so that axum's and OpenAPI's spellings of a route compare equal.
pub fn normalize(path: &str) -> String {
    path.replace("{*", "{")
}

/// The rule of an endpoint; an endpoint without one is for admin keys only.
pub fn rule_for(method: &str, path: &str) -> Option<&'static Rule> {
    let method = if method.eq_ignore_ascii_case("HEAD") { "GET" } else { method };
    let path = normalize(path);
    POLICY.iter().find(|r| r.method.eq_ignore_ascii_case(method) && r.path == path)
}

const ADMIN_ONLY: Rule = Rule { method: "", path: "", roles: ADMIN, channel: ChannelScope::None };

/// Whether `caller` may call the endpoint at all (channel checks aside).
pub fn admits(rule: &Rule, role: Role) -> bool {
    role == Role::Admin || rule.roles.contains(&role)
}

/// Per-key request budget: a token bucket per key, refilled continuously.
#[derive(Debug, Clone, Copy)]
pub struct RateLimit {
    /// Requests per second a key may make on average; 0 turns the limit off.
    pub per_second: u32,
    /// Requests a key may make at once after being idle.
    pub burst: u32,
}

#[derive(Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    /// Takes a token for `key`, or says how many seconds until one is there.
    pub fn check(&self, key: i64, limit: RateLimit, now: Instant) -> Result<(), u64> {
        if limit.per_second == 0 {
            return Ok(());
        }
        let (rate, burst) = (f64::from(limit.per_second), f64::from(limit.burst.max(1)));
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, last) = buckets.entry(key).or_insert((burst, now));
        *tokens = (*tokens + now.saturating_duration_since(*last).as_secs_f64() * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

/// The state of the authentication layer.
#[derive(Clone)]
pub struct AuthState {
    pub app: App,
    pub limit: RateLimit,
    pub limiter: std::sync::Arc<RateLimiter>,
}

/// Every 401 is the same, whatever the reason, so that an answer does not tell a prober whether a secret it holds
/// was ever a key; the reason goes to the log (debug) for the operator, never the secret.
fn unauthenticated(reason: &str) -> Response {
    tracing::debug!(reason, "request refused as unauthenticated");
    let mut resp = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "send a valid API key as Authorization: Bearer <secret>",
    )
    .into_response();
    resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// The secret of an `Authorization: Bearer` header.
fn bearer(parts: &axum::http::HeaderMap) -> Option<&str> {
    let v = parts.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, secret) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| secret.trim()).filter(|s| !s.is_empty())
}

/// The value of `{name}` in `path` matched against `pattern`.
fn path_param<'a>(pattern: &str, path: &'a str, name: &str) -> Option<&'a str> {
    let wanted = format!("{{{name}}}");
    let at = pattern.split('/').position(|s| s == wanted)?;
    path.split('/').nth(at)
}

/// Middleware on every keyed route: who is asking, may they, and have they asked too often.
pub async fn layer(State(state): State<AuthState>, mut req: Request, next: Next) -> Response {
    let pattern = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let rule = rule_for(req.method().as_str(), &pattern).unwrap_or(&ADMIN_ONLY);
    let caller = if let Some(InternalCaller(caller)) = req.extensions_mut().remove::<InternalCaller>() {
        // The web admin's session was checked (key live, not revoked) by the web layer on this very request; a
        // person clicking is not rate limited like a script.
        caller
    } else {
        let Some(secret) = bearer(req.headers()) else {
            return unauthenticated("no bearer key");
        };
        let caller = match state.app.authenticate(secret).await {
            Ok(Ok(caller)) => caller,
            Ok(Err(Rejection::Unknown)) => return unauthenticated("unknown key"),
            Ok(Err(Rejection::Revoked)) => return unauthenticated("revoked key"),
            Ok(Err(Rejection::Expired)) => return unauthenticated("expired key"),
            Err(e) => return ApiError::from(e).into_response(),
        };
        if let Err(retry_after) = state.limiter.check(caller.key_id, state.limit, Instant::now()) {
            let mut resp = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "too many requests with this key; slow down",
            )
            .into_response();
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return resp;
        }
        caller
    };
    if !admits(rule, caller.role) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("a {} key may not call this endpoint", caller.role.as_str()),
        )
        .into_response();
    }
    if caller.role == Role::Channel && rule.channel == ChannelScope::PathCode {
        let code = path_param(&normalize(&pattern), req.uri().path(), "code");
        if code != caller.channel.as_deref() {
            return ApiError::new(StatusCode::FORBIDDEN, "forbidden", "this key belongs to another channel")
                .into_response();
        }
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

/// A caller authenticated inside the process: the web admin calls the API in-process for its signed-in user and
/// puts this on the request instead of a bearer key. Only code in the process can set a request extension, so a
/// request from the network can never carry one; the policy table still applies to it in full.
#[derive(Debug, Clone)]
pub struct InternalCaller(pub Caller);

/// Whether a `role` may call `method path` (a route pattern as in [`POLICY`]): for front ends that show only what
/// their user may do. Channel scoping is left to the call itself.
pub fn allows(role: Role, method: &str, path: &str) -> bool {
    admits(rule_for(method, path).unwrap_or(&ADMIN_ONLY), role)
}

/// The caller, for handlers: set by [`layer`] on every keyed route.
pub struct RequestCaller(pub Caller);

impl<S: Send + Sync> FromRequestParts<S> for RequestCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<Caller>() {
            Some(c) => Ok(RequestCaller(c.clone())),
            None => Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthenticated", "send an API key")),
        }
    }
}

impl RequestCaller {
    /// The channel a channel key is held to; `None` for every other role.
    pub fn channel(&self) -> Option<&str> {
        (self.0.role == Role::Channel).then(|| self.0.channel.as_deref().unwrap_or(""))
    }
}

/// The answer for another channel's order or hold: as if it did not exist.
pub fn not_yours(entity: &'static str, id: i64) -> ApiError {
    ApiError::from(app::AppError::NotFound { entity, key: id.to_string() })
}

/// Writes each operation's security requirement and who may call it into the OpenAPI document.
pub fn document_policy(doc: &mut serde_json::Value) {
    use serde_json::{json, Value};
    doc["components"]["securitySchemes"]["api_key"] =
        json!({"type": "http", "scheme": "bearer", "description": "An API key: `Authorization: Bearer sr_…`"});
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for (path, ops) in paths.iter_mut() {
        let Some(ops) = ops.as_object_mut() else { continue };
        for (method, op) in ops.iter_mut() {
            if PUBLIC_PATHS.contains(&path.as_str()) {
                op["security"] = json!([]);
                continue;
            }
            op["security"] = json!([{"api_key": []}]);
            let rule = rule_for(method, path).unwrap_or(&ADMIN_ONLY);
            let mut roles = vec!["admin"];
            roles.extend(rule.roles.iter().map(|r| r.as_str()));
            let scope = match rule.channel {
                ChannelScope::None => "",
                ChannelScope::PathCode => " A channel key only for its own channel.",
                ChannelScope::Handler => " A channel key only for its own channel's orders and holds.",
            };
            let note = format!("Roles: {}.{scope}", roles.join(", "));
            let description = match op.get("description").and_then(Value::as_str) {
                Some(d) if !d.is_empty() => format!("{d}\n\n{note}"),
                _ => note,
            };
            op["description"] = Value::String(description);
            op["x-roles"] = json!(roles);
            if let Some(responses) = op["responses"].as_object_mut() {
                let problem =
                    json!({"application/problem+json": {"schema": {"$ref": "#/components/schemas/ProblemSchema"}}});
                responses.entry("401").or_insert_with(|| json!({"description": "unauthenticated: no key, or a revoked, expired or unknown one", "content": problem.clone()}));
                responses.entry("403").or_insert_with(|| json!({"description": "forbidden: the key's role may not call this", "content": problem.clone()}));
                responses.entry("429").or_insert_with(
                    || json!({"description": "rate_limited: see Retry-After", "content": problem.clone()}),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_endpoint_has_a_policy_entry() {
        let doc = crate::docs::document();
        let mut missing = vec![];
        for (path, ops) in doc["paths"].as_object().unwrap() {
            if PUBLIC_PATHS.contains(&path.as_str()) {
                continue;
            }
            for method in ops.as_object().unwrap().keys() {
                if rule_for(method, path).is_none() {
                    missing.push(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        assert!(missing.is_empty(), "endpoints without a policy entry (add them to auth::POLICY): {missing:?}");
        // And the document says so.
        assert_eq!(doc["paths"]["/v1/orders"]["post"]["security"][0]["api_key"], serde_json::json!([]));
        assert!(doc["paths"]["/v1/orders"]["post"]["x-roles"].as_array().unwrap().contains(&"channel".into()));
    }

    #[test]
    fn policy_entries_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for r in POLICY {
            assert!(seen.insert((r.method, r.path)), "{} {} twice", r.method, r.path);
            assert!(!r.roles.contains(&Role::Admin), "admin is implicit: {} {}", r.method, r.path);
            assert_eq!(r.roles.contains(&Role::Channel), r.channel != ChannelScope::None, "{} {}", r.method, r.path);
            assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&r.method));
        }
    }

    #[test]
    fn the_bucket_refills_and_says_when() {
        let l = RateLimiter::default();
        let limit = RateLimit { per_second: 2, burst: 2 };
        let t = Instant::now();
        assert!(l.check(1, limit, t).is_ok());
        assert!(l.check(1, limit, t).is_ok());
        assert_eq!(l.check(1, limit, t), Err(1));
        assert!(l.check(2, limit, t).is_ok(), "keys have their own buckets");
        assert!(l.check(1, limit, t + std::time::Duration::from_millis(600)).is_ok());
        assert!(l.check(9, RateLimit { per_second: 0, burst: 0 }, t).is_ok());
    }

    #[test]
    fn bearer_and_path_params_parse() {
        let mut h = axum::http::HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer sr_abc"));
        assert_eq!(bearer(&h), Some("sr_abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic x"));
        assert_eq!(bearer(&h), None);
        assert_eq!(path_param("/v1/channels/{code}/prices/{sku}", "/v1/channels/web/prices/A", "code"), Some("web"));
    }
}
