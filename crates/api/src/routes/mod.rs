//! The `/v1` endpoints, grouped by resource.

pub mod bundles;
pub mod catalog;
pub mod channels;
pub mod inventory;
pub mod keys;
pub mod locations;
pub mod orders;
pub mod picking;
pub mod purchasing;
pub mod reports;
pub mod valuation;
pub mod webhooks;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::RequestCaller;
use crate::problem::ApiError;

/// A plain page of a list: the cursor and the page size, shared by every list that filters nothing else.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// Who is asking, recorded on every movement with the request id: the API key of the request (its name and id).
pub struct RequestActor(pub app::Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let RequestCaller(caller) = RequestCaller::from_request_parts(parts, state).await?;
        Ok(RequestActor(caller.actor(crate::request_id::current())))
    }
}
