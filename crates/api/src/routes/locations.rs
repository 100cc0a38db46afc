//! The location tree: warehouses, zones, shelves and bins, addressed by path.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use app::locations::{LocationPatch, NewLocation};
use app::page::{Page, PageRequest};
use app::views::LocationView;
use app::App;
use domain::location::LocationKind;

use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/locations", get(list_locations).post(create_location))
        .route("/v1/locations/{*path}", get(get_location).patch(update_location).delete(delete_location))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct LocationQuery {
    pub kind: Option<LocationKind>,
    /// This location and everything below it (`WH1/HALL-1`).
    pub within: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/locations", tag = "locations", params(LocationQuery),
    responses((status = 200, body = Page<LocationView>), (status = 400, body = ProblemSchema)))]
pub async fn list_locations(State(app): State<App>, Query(q): Query<LocationQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_locations(q.kind, q.within.as_deref(), page).await?))
}

#[utoipa::path(post, path = "/v1/locations", tag = "locations", request_body = NewLocation,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = LocationView), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn create_location(State(app): State<App>, Json(req): Json<NewLocation>) -> ApiResult<impl IntoResponse> {
    let l = app.create_location(req).await?;
    let location = format!("/v1/locations/{}", l.path);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(l)))
}

#[utoipa::path(get, path = "/v1/locations/{path}", tag = "locations",
    params(("path" = String, Path, description = "Full path, slashes included: WH1/HALL-1/SHELF-5")),
    responses((status = 200, body = LocationView), (status = 404, body = ProblemSchema)))]
pub async fn get_location(State(app): State<App>, Path(path): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.location(&path).await?))
}

#[utoipa::path(patch, path = "/v1/locations/{path}", tag = "locations", request_body = LocationPatch,
    params(("path" = String, Path, description = "Full path")),
    responses((status = 200, body = LocationView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn update_location(
    State(app): State<App>,
    Path(path): Path<String>,
    Json(patch): Json<LocationPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_location(&path, patch).await?))
}

#[utoipa::path(delete, path = "/v1/locations/{path}", tag = "locations",
    params(("path" = String, Path, description = "Full path")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ProblemSchema),
        (status = 409, description = "location_not_empty, location_has_stock_history", body = ProblemSchema)))]
pub async fn delete_location(State(app): State<App>, Path(path): Path<String>) -> ApiResult<impl IntoResponse> {
    app.delete_location(&path).await?;
    Ok(StatusCode::NO_CONTENT)
}
