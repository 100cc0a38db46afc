//! The stock ledger: adjustments and moves (through the one write path), levels and the movement history.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use app::inventory::{AdjustmentRequest, MoveRequest};
use app::page::{Page, PageRequest};
use app::views::{ItemLevels, LedgerReceipt, MovementView};
use app::App;
use domain::stock::Reason;

use super::RequestActor;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/inventory/adjustments", post(adjust))
        .route("/v1/inventory/moves", post(move_stock))
        .route("/v1/inventory/levels", get(levels))
        .route("/v1/inventory/movements", get(movements))
}

#[utoipa::path(post, path = "/v1/inventory/adjustments", tag = "inventory", request_body = AdjustmentRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
        ("Stockroom-Actor" = Option<String>, Header, description = "Who makes the change (recorded on each movement)")),
    responses((status = 201, description = "Booked, all lines", body = LedgerReceipt),
        (status = 409, description = "insufficient_stock, stale_expected_on_hand; nothing booked", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference; nothing booked", body = ProblemSchema)))]
pub async fn adjust(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<AdjustmentRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.adjust(req, actor).await?)))
}

#[utoipa::path(post, path = "/v1/inventory/moves", tag = "inventory", request_body = MoveRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe"),
        ("Stockroom-Actor" = Option<String>, Header, description = "Who makes the change (recorded on each movement)")),
    responses((status = 201, description = "Moved, all lines", body = LedgerReceipt),
        (status = 409, description = "insufficient_stock; nothing moved", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference; nothing moved", body = ProblemSchema)))]
pub async fn move_stock(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<MoveRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.move_stock(req, actor).await?)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LevelsQuery {
    pub sku: Option<String>,
    /// Bins at or below this location path.
    pub location: Option<String>,
    /// RFC 3339 time: the levels as they were then, recomputed from the ledger.
    pub as_of: Option<DateTime<Utc>>,
    pub after: Option<String>,
    /// Items per page, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/inventory/levels", tag = "inventory", params(LevelsQuery),
    responses((status = 200, description = "Per item: per bin, per warehouse and in total", body = Page<ItemLevels>),
        (status = 404, body = ProblemSchema)))]
pub async fn levels(State(app): State<App>, Query(q): Query<LevelsQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.levels(q.sku.as_deref(), q.location.as_deref(), q.as_of, page).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MovementsQuery {
    pub sku: Option<String>,
    /// Movements into or out of this location or anything below it.
    pub location: Option<String>,
    pub reason: Option<Reason>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/inventory/movements", tag = "inventory", params(MovementsQuery),
    responses((status = 200, description = "The ledger, oldest first", body = Page<MovementView>),
        (status = 404, body = ProblemSchema)))]
pub async fn movements(State(app): State<App>, Query(q): Query<MovementsQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.movements(q.sku.as_deref(), q.location.as_deref(), q.reason, page).await?))
}
