//! Pick lists and packing.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use app::orders::OrderView;
use app::page::{Page, PageRequest};
use app::picking::{CompletePickList, NewPickList, PackRequest, PickListView};
use app::store::PickListStatus;
use app::App;

use super::RequestActor;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/pick-lists", get(list_pick_lists).post(create_pick_list))
        .route("/v1/pick-lists/{id}", get(get_pick_list))
        .route("/v1/pick-lists/{id}/complete", post(complete_pick_list))
        .route("/v1/pick-lists/{id}/cancel", post(cancel_pick_list))
        .route("/v1/orders/{id}/packages", post(pack))
}

/// Gathers the committed lines of several orders in one warehouse, re-chooses their bins (the fewest bins, then
/// the pickers' walking order) and lists the stops in walking order.
#[utoipa::path(post, path = "/v1/pick-lists", tag = "fulfillment", request_body = NewPickList,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = PickListView),
        (status = 409, description = "nothing_to_pick, already_picking", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn create_pick_list(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<NewPickList>,
) -> ApiResult<impl IntoResponse> {
    let list = app.create_pick_list(req, actor).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/pick-lists/{}", list.id))], axum::Json(list)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PickListQuery {
    pub warehouse: Option<String>,
    pub status: Option<PickListStatus>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/pick-lists", tag = "fulfillment", params(PickListQuery),
    responses((status = 200, body = Page<PickListView>)))]
pub async fn list_pick_lists(State(app): State<App>, Query(q): Query<PickListQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_pick_lists(q.warehouse.as_deref(), q.status, page).await?))
}

#[utoipa::path(get, path = "/v1/pick-lists/{id}", tag = "fulfillment", params(("id" = i64, Path)),
    responses((status = 200, body = PickListView), (status = 404, body = ProblemSchema)))]
pub async fn get_pick_list(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.pick_list(id).await?))
}

/// Closes a pick list as picked, with the units picked at each stop (all of them when absent).
#[utoipa::path(post, path = "/v1/pick-lists/{id}/complete", tag = "fulfillment", request_body = CompletePickList,
    params(("id" = i64, Path)),
    responses((status = 200, body = PickListView), (status = 404, body = ProblemSchema),
        (status = 409, description = "pick_list_closed", body = ProblemSchema)))]
pub async fn complete_pick_list(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(req): Json<CompletePickList>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.complete_pick_list(id, req).await?))
}

#[utoipa::path(post, path = "/v1/pick-lists/{id}/cancel", tag = "fulfillment", params(("id" = i64, Path)),
    responses((status = 200, body = PickListView), (status = 404, body = ProblemSchema),
        (status = 409, description = "pick_list_closed", body = ProblemSchema)))]
pub async fn cancel_pick_list(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.cancel_pick_list(id).await?))
}

/// Records the packages (weight, dimensions) packed for an order's next shipment.
#[utoipa::path(post, path = "/v1/orders/{id}/packages", tag = "fulfillment", request_body = PackRequest,
    params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "nothing_to_ship, order_cancelled", body = ProblemSchema)))]
pub async fn pack(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<PackRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.pack(id, req, actor).await?))
}
