//! Webhook endpoints: register where events go, read and rotate the signing secret, read the delivery log, and
//! replay events.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;

use app::page::{Page, PageRequest};
use app::webhooks::{
    AttemptView, EndpointPatch, EndpointView, EndpointWithSecret, NewEndpoint, ReplayRequest, ReplayResult,
};
use app::App;

use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/webhook-endpoints", get(list_endpoints).post(create_endpoint))
        .route("/v1/webhook-endpoints/{id}", get(get_endpoint).patch(update_endpoint).delete(delete_endpoint))
        .route("/v1/webhook-endpoints/{id}/secret", get(get_secret))
        .route("/v1/webhook-endpoints/{id}/rotate-secret", post(rotate_secret))
        .route("/v1/webhook-endpoints/{id}/deliveries", get(list_deliveries))
        .route("/v1/webhook-endpoints/{id}/replay", post(replay))
}

pub use super::PageQuery;

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", params(PageQuery),
    responses((status = 200, body = Page<EndpointView>), (status = 400, body = ProblemSchema)))]
pub async fn list_endpoints(State(app): State<App>, Query(q): Query<PageQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_webhook_endpoints(page).await?))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", request_body = NewEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, description = "Created; the only answer besides the secret calls that shows the secret",
        body = EndpointWithSecret), (status = 422, body = ProblemSchema)))]
pub async fn create_endpoint(State(app): State<App>, Json(req): Json<NewEndpoint>) -> ApiResult<impl IntoResponse> {
    let e = app.create_webhook_endpoint(req).await?;
    let location = format!("/v1/webhook-endpoints/{}", e.endpoint.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(e)))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = ProblemSchema)))]
pub async fn get_endpoint(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.webhook_endpoint(id).await?))
}

#[utoipa::path(patch, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", request_body = EndpointPatch,
    params(("id" = i64, Path)),
    responses((status = 200, body = EndpointView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn update_endpoint(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(patch): Json<EndpointPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_webhook_endpoint(id, patch).await?))
}

#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 204, description = "Deleted, with its pending deliveries and its log"), (status = 404, body = ProblemSchema)))]
pub async fn delete_endpoint(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    app.delete_webhook_endpoint(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/secret", tag = "webhooks", params(("id" = i64, Path)),
    responses((status = 200, body = EndpointWithSecret), (status = 404, body = ProblemSchema)))]
pub async fn get_secret(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.webhook_endpoint_secret(id).await?))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/rotate-secret", tag = "webhooks", params(("id" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, description = "A new secret; messages from now on are signed with it",
        body = EndpointWithSecret), (status = 404, body = ProblemSchema)))]
pub async fn rotate_secret(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.rotate_webhook_secret(id).await?))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks",
    params(("id" = i64, Path), PageQuery),
    responses((status = 200, description = "Every attempt, newest first", body = Page<AttemptView>),
        (status = 404, body = ProblemSchema)))]
pub async fn list_deliveries(
    State(app): State<App>,
    Path(id): Path<i64>,
    Query(q): Query<PageQuery>,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.webhook_attempts(id, page).await?))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/replay", tag = "webhooks", request_body = ReplayRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 202, description = "New deliveries created; they go out after the endpoint's pending ones",
        body = ReplayResult), (status = 404, body = ProblemSchema), (status = 409, description = "replay_too_large",
        body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn replay(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(req): Json<ReplayRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::ACCEPTED, axum::Json(app.replay_webhook(id, req).await?)))
}
