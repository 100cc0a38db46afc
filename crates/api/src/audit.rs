//! The audit layer: every successful change made through the API (any POST, PUT, PATCH or DELETE answered with
//! 2xx, and every read of a webhook secret) is recorded with who made it, when, what and from which request. It
//! sits on the routes, so endpoints added later are covered without a line of their own.
//!
//! The response waits until its entry is written (batched with concurrent ones), so that an acknowledged change
//! is never missing from the trail.
//!
//! The entry names the route and the addressed entity, never the body: bodies may hold secrets (a key's, a
//! webhook's) and addresses. Replays of an idempotent request changed nothing and are not recorded again.

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::Response;

use app::trust::{Caller, NewAuditEntry};
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
    let resp = next.run(req).await;
    if !resp.status().is_success() || resp.headers().contains_key(REPLAYED_HEADER) {
        return resp;
    }
    let location = resp.headers().get(header::LOCATION).and_then(|v| v.to_str().ok());
    let (entity, entity_id) = entity_of(&pattern, &path, location);
    let status = resp.status();
    app.audit(NewAuditEntry {
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
    })
    .await;
    resp
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
