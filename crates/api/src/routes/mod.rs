//! The `/v1` endpoints, grouped by resource.

pub mod bundles;
pub mod catalog;
pub mod channels;
pub mod inventory;
pub mod locations;
pub mod orders;
pub mod picking;
pub mod purchasing;
pub mod valuation;
pub mod webhooks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::StatusCode;

use crate::problem::ApiError;

/// Header naming who makes a change, until API keys (which will name the actor themselves) exist.
pub const ACTOR_HEADER: &str = "stockroom-actor";

/// Who is asking, recorded on every movement with the request id.
pub struct RequestActor(pub app::Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let name = match parts.headers.get(ACTOR_HEADER) {
            None => "api".to_string(),
            Some(v) => {
                let s = v.to_str().unwrap_or("").trim();
                if s.is_empty() || s.len() > 100 {
                    return Err(ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "validation_failed",
                        "bad actor header",
                    )
                    .with_field("Stockroom-Actor", "must be 1 to 100 printable characters"));
                }
                s.to_string()
            }
        };
        Ok(RequestActor(app::Actor { name, request_id: crate::request_id::current() }))
    }
}
