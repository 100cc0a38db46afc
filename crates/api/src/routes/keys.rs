//! API keys and the audit trail: make a key (its secret is shown once), list, read and revoke keys, and read who
//! changed what.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use app::page::{Page, PageRequest};
use app::trust::{actor_name, ApiKeyView, AuditFilter, AuditView, CreatedApiKey, NewKeyRequest};
use app::App;
use chrono::{DateTime, Utc};

use crate::auth::RequestCaller;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/api-keys", get(list_keys).post(create_key))
        .route("/v1/api-keys/{id}", get(get_key))
        .route("/v1/api-keys/{id}/revoke", post(revoke_key))
        .route("/v1/audit", get(list_audit))
}

pub use super::PageQuery;

#[utoipa::path(get, path = "/v1/api-keys", tag = "keys", params(PageQuery),
    responses((status = 200, body = Page<ApiKeyView>), (status = 400, body = ProblemSchema)))]
pub async fn list_keys(State(app): State<App>, Query(q): Query<PageQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_api_keys(page).await?))
}

/// Makes a key. The answer is the only place its secret ever appears: it is not stored (only its SHA-256 is), and
/// an `Idempotency-Key` retry makes a new key rather than replaying the secret from storage.
#[utoipa::path(post, path = "/v1/api-keys", tag = "keys", request_body = NewKeyRequest,
    responses((status = 201, body = CreatedApiKey),
        (status = 422, description = "validation_failed, unknown_reference (the channel)", body = ProblemSchema)))]
pub async fn create_key(
    State(app): State<App>,
    caller: RequestCaller,
    Json(req): Json<NewKeyRequest>,
) -> ApiResult<impl IntoResponse> {
    let created = app.create_api_key(req, &actor_name(caller.0.key_id, &caller.0.name)).await?;
    let location = format!("/v1/api-keys/{}", created.key.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location), (header::CACHE_CONTROL, "no-store".to_string())],
        axum::Json(created),
    ))
}

#[utoipa::path(get, path = "/v1/api-keys/{id}", tag = "keys", params(("id" = i64, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ProblemSchema)))]
pub async fn get_key(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.api_key(id).await?))
}

/// Revokes a key: the next request with it is refused on this node, and within a second on every other node.
#[utoipa::path(post, path = "/v1/api-keys/{id}/revoke", tag = "keys", params(("id" = i64, Path)),
    responses((status = 200, body = ApiKeyView), (status = 404, body = ProblemSchema)))]
pub async fn revoke_key(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.revoke_api_key(id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The kind of thing changed: `products`, `orders`, `inventory`, `api-keys`…
    pub entity: Option<String>,
    /// One thing's id or natural key, with `entity`.
    pub entity_id: Option<String>,
    /// A key's id, or an actor's name as shown in `actor`.
    pub actor: Option<String>,
    /// Only changes at or after this time (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// The cursor of the previous page.
    pub after: Option<String>,
    pub limit: Option<u32>,
}

/// Who changed what, oldest first.
#[utoipa::path(get, path = "/v1/audit", tag = "keys", params(AuditQuery),
    responses((status = 200, body = Page<AuditView>), (status = 400, body = ProblemSchema)))]
pub async fn list_audit(State(app): State<App>, Query(q): Query<AuditQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    let filter = AuditFilter { entity: q.entity, entity_id: q.entity_id, actor: q.actor, since: q.since };
    Ok(axum::Json(app.list_audit(filter, page).await?))
}
