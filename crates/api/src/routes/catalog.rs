//! Products and variants.

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use app::catalog::{NewProduct, NewVariant, ProductPatch, VariantPatch};
use app::page::{Page, PageRequest};
use app::store::{ProductFilter, VariantFilter};
use app::views::{ProductView, VariantView};
use app::App;
use domain::catalog::ProductStatus;

use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/products", get(list_products).post(create_product))
        .route("/v1/products/{key}", get(get_product).patch(update_product).delete(delete_product))
        .route("/v1/products/{key}/variants", axum::routing::post(create_variant))
        .route("/v1/variants", get(list_variants))
        .route("/v1/variants/{key}", get(get_variant).patch(update_variant).delete(delete_variant))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ProductQuery {
    pub status: Option<ProductStatus>,
    pub vendor: Option<String>,
    /// The category and every category below it (`Apparel > Shirts`).
    pub category: Option<String>,
    pub tag: Option<String>,
    /// Case-insensitive text in the title or handle.
    pub q: Option<String>,
    /// Products that have a variant with this SKU.
    pub sku: Option<String>,
    /// Cursor from the previous page's `next_cursor`.
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/products", tag = "catalog", params(ProductQuery),
    responses((status = 200, body = Page<ProductView>), (status = 400, body = ProblemSchema)))]
pub async fn list_products(State(app): State<App>, Query(q): Query<ProductQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    let filter =
        ProductFilter { status: q.status, vendor: q.vendor, category: q.category, tag: q.tag, q: q.q, sku: q.sku };
    Ok(axum::Json(app.list_products(filter, page).await?))
}

#[utoipa::path(post, path = "/v1/products", tag = "catalog", request_body = NewProduct,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ProductView), (status = 409, description = "duplicate_handle, duplicate_sku", body = ProblemSchema),
        (status = 422, description = "validation_failed", body = ProblemSchema)))]
pub async fn create_product(State(app): State<App>, Json(req): Json<NewProduct>) -> ApiResult<impl IntoResponse> {
    let p = app.create_product(req).await?;
    let location = format!("/v1/products/{}", p.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(p)))
}

#[utoipa::path(get, path = "/v1/products/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Product handle, or id")),
    responses((status = 200, body = ProductView), (status = 404, body = ProblemSchema)))]
pub async fn get_product(State(app): State<App>, Path(key): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.product(&key).await?))
}

#[utoipa::path(patch, path = "/v1/products/{key}", tag = "catalog", request_body = ProductPatch,
    params(("key" = String, Path, description = "Product handle, or id")),
    responses((status = 200, body = ProductView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn update_product(
    State(app): State<App>,
    Path(key): Path<String>,
    Json(patch): Json<ProductPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_product(&key, patch).await?))
}

#[utoipa::path(delete, path = "/v1/products/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Product handle, or id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ProblemSchema),
        (status = 409, description = "has_stock_history: archive instead", body = ProblemSchema)))]
pub async fn delete_product(State(app): State<App>, Path(key): Path<String>) -> ApiResult<impl IntoResponse> {
    app.delete_product(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/v1/products/{key}/variants", tag = "catalog", request_body = NewVariant,
    params(("key" = String, Path, description = "Product handle, or id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = VariantView), (status = 409, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn create_variant(
    State(app): State<App>,
    Path(key): Path<String>,
    Json(req): Json<NewVariant>,
) -> ApiResult<impl IntoResponse> {
    let v = app.create_variant(&key, req).await?;
    let location = format!("/v1/variants/{}", v.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(v)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct VariantQuery {
    pub product_id: Option<i64>,
    pub sku: Option<String>,
    pub barcode: Option<String>,
    /// One search box: SKU (exact or prefix, case-insensitive), barcode (exact) or product title (case-insensitive
    /// text). Answers one page of at most `limit` best matches, exact SKU or barcode first, with no cursor.
    pub q: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/variants", tag = "catalog", params(VariantQuery),
    responses((status = 200, body = Page<VariantView>), (status = 400, body = ProblemSchema)))]
pub async fn list_variants(State(app): State<App>, Query(q): Query<VariantQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    let filter = VariantFilter { product_id: q.product_id, sku: q.sku, barcode: q.barcode, q: q.q };
    Ok(axum::Json(app.list_variants(filter, page).await?))
}

#[utoipa::path(get, path = "/v1/variants/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Variant SKU, or id")),
    responses((status = 200, body = VariantView), (status = 404, body = ProblemSchema)))]
pub async fn get_variant(State(app): State<App>, Path(key): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.variant(&key).await?))
}

#[utoipa::path(patch, path = "/v1/variants/{key}", tag = "catalog", request_body = VariantPatch,
    params(("key" = String, Path, description = "Variant SKU, or id")),
    responses((status = 200, body = VariantView), (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn update_variant(
    State(app): State<App>,
    Path(key): Path<String>,
    Json(patch): Json<VariantPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_variant(&key, patch).await?))
}

#[utoipa::path(delete, path = "/v1/variants/{key}", tag = "catalog",
    params(("key" = String, Path, description = "Variant SKU, or id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ProblemSchema),
        (status = 409, description = "has_stock_history", body = ProblemSchema)))]
pub async fn delete_variant(State(app): State<App>, Path(key): Path<String>) -> ApiResult<impl IntoResponse> {
    app.delete_variant(&key).await?;
    Ok(StatusCode::NO_CONTENT)
}
