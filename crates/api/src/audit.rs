//! The audit layer: every successful change made through the API (any POST, PUT, PATCH or DELETE answered with
//! 2xx, and every read of a webhook secret) is recorded with who made it, when, what and from which request. It
//! sits on the routes, so endpoints added later are covered without a line of their own.
//!
//! The response waits until its entry is written (batched with concurrent ones), so that an acknowledged change
//! is never missing from the trail. Placing an order or a hold writes the entry in the change's own transaction
//! instead ([`Audit`]).
//!
//! The entry names the route and the addressed entity, never the body: bodies may hold secrets (a key's, a
//! webhook's) and addresses. Replays of an idempotent request changed nothing and are not recorded again.

use std::sync::Arc;

use axum::extract::{FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use app::trust::{Caller, NewAuditEntry, PendingAudit};
use app::App;

use crate::idempotency::REPLAYED_HEADER;

/// (entity, entity id) of a route: `/v1/orders/{id}/cancel` on `/v1/orders/12/cancel` is (`orders`, `12`); a
/// create's id comes from the `Location` it answers with.
pub fn entity_of(pattern: &str, path: &str, location: Option<&str>) -> (String, Option<String>) {
    let pat: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (base, entity) = match pat.first() {
        Some(&"v1") => (1, pat.get(1).copied().unwrap_or("")),
        _ => (0, pat.first().copied().unwrap_or("")),
    };
    let id = match pat.get(base + 1) {
        Some(p) if p.starts_with("{*") => Some(segs.get(base + 1..).map(|s| s.join("/")).unwrap_or_default()),
        Some(p) if p.starts_with('{') => segs.get(base + 1).map(|s| s.to_string()),
        _ => location.and_then(|l| {
            let prefix = format!("/{}/", pat[..=base].join("/"));
            l.strip_prefix(&prefix).map(str::to_string)
        }),
    };
    (entity.to_string(), id.filter(|s| !s.is_empty()))
}

pub async fn layer(State(app): State<App>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let pattern = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let reveals_secret = method == Method::GET && pattern.ends_with("/secret");
    let reads = method == Method::GET || method == Method::HEAD || method == Method::OPTIONS;
    if reads && !reveals_secret {
        return next.run(req).await;
    }
    let caller = req.extensions().get::<Caller>().cloned();
    let path = req.uri().path().to_string();
    let entry = |status: StatusCode, entity: String, entity_id: Option<String>| NewAuditEntry {
        at: chrono::Utc::now(),
        actor_key_id: caller.as_ref().map(|c| c.key_id),
        actor_name: caller.as_ref().map(|c| c.name.clone()).unwrap_or_else(|| "unknown".into()),
        request_id: crate::request_id::current(),
        entity,
        entity_id,
        action: format!("{method} {pattern}"),
        status: status.as_u16(),
        summary: if reveals_secret {
            "the signing secret was read".into()
        } else {
            status.canonical_reason().unwrap_or("").to_lowercase()
        },
    };
    // The entry a handler may hand to the write path as it stands for a creation (201; the id filled in there).
    let pending = (method == Method::POST).then(|| {
        let (entity, entity_id) = entity_of(&pattern, &path, None);
        PendingAudit::new(entry(StatusCode::CREATED, entity, entity_id))
    });
    let mut req = req;
    if let Some(p) = &pending {
        req.extensions_mut().insert(p.clone());
    }
    let resp = next.run(req).await;
    if !resp.status().is_success() || resp.headers().contains_key(REPLAYED_HEADER) {
        return resp;
    }
    if pending.as_ref().is_some_and(|p| p.written()) {
        if resp.status() != StatusCode::CREATED {
            tracing::warn!(status = %resp.status(), "the audit entry written with the change said 201");
        }
        return resp;
    }
    let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
    let (entity, entity_id) = entity_of(&pattern, &path, location);
    app.audit(entry(resp.status(), entity, entity_id)).await;
    resp
}

/// The audit entry of this request, for a handler whose change goes through the write path in one command: passed
/// on, it is written in that command's transaction (see [`PendingAudit`]).
pub struct Audit(pub Option<Arc<PendingAudit>>);

impl<S: Send + Sync> FromRequestParts<S> for Audit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Audit(parts.extensions.get::<Arc<PendingAudit>>().cloned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_come_from_the_route_or_the_location() {
        assert_eq!(
            entity_of("/v1/orders/{id}/cancel", "/v1/orders/12/cancel", None),
            ("orders".into(), Some("12".into()))
        );
        assert_eq!(
            entity_of("/v1/products", "/v1/products", Some("/v1/products/tee")),
            ("products".into(), Some("tee".into()))
        );
        assert_eq!(
            entity_of("/v1/locations/{*path}", "/v1/locations/WH1/BIN-1", None),
            ("locations".into(), Some("WH1/BIN-1".into()))
        );
        assert_eq!(
            entity_of("/v1/inventory/adjustments", "/v1/inventory/adjustments", None),
            ("inventory".into(), None)
        );
    }
}
