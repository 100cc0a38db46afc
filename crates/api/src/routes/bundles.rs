//! Bundles: a variant's components, and what a SKU (a bundle above all) can sell now.

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use app::bundles::{AvailabilityView, BundleView, ComponentsRequest};
use app::App;

use crate::extract::Json;
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/variants/{key}/components", get(get_components).put(set_components))
        .route("/v1/inventory/availability/{sku}", get(availability))
}

#[utoipa::path(get, path = "/v1/variants/{key}/components", tag = "catalog",
    params(("key" = String, Path, description = "The variant's SKU or id")),
    responses((status = 200, description = "The components (empty: not a bundle)", body = BundleView),
        (status = 404, body = ProblemSchema)))]
pub async fn get_components(State(app): State<App>, Path(key): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.components(&key).await?))
}

#[utoipa::path(put, path = "/v1/variants/{key}/components", tag = "catalog", request_body = ComponentsRequest,
    params(("key" = String, Path, description = "The variant's SKU or id")),
    responses((status = 200, description = "Replaced; an empty list makes the variant an ordinary one", body = BundleView),
        (status = 404, body = ProblemSchema),
        (status = 409, description = "bundle_cycle, bundle_has_stock; nothing changed", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference; nothing changed", body = ProblemSchema)))]
pub async fn set_components(
    State(app): State<App>,
    Path(key): Path<String>,
    Json(req): Json<ComponentsRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_components(&key, req).await?))
}

#[utoipa::path(get, path = "/v1/inventory/availability/{sku}", tag = "inventory",
    params(("sku" = String, Path, description = "Any SKU; for a bundle the number its components allow together")),
    responses((status = 200, description = "Available over every sellable bin", body = AvailabilityView),
        (status = 404, body = ProblemSchema)))]
pub async fn availability(State(app): State<App>, Path(sku): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.availability(&sku).await?))
}
