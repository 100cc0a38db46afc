//! Purchasing: suppliers, purchase orders and receiving, putaway suggestions, transfers between warehouses, cycle
//! counts, quality inspections and the shrinkage report. The OpenAPI paths of this module are collected in
//! [`PurchasingDoc`].

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::Router;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use app::page::{Page, PageRequest};
use app::purchasing::{
    CountEntriesRequest, CountView, DefaultBinRequest, DefaultBinView, InspectionRequest, InspectionView, NewCount,
    NewPurchaseOrder, NewSupplier, NewTransfer, PoStep, PurchaseOrderView, PutawayView, ReceiptRequest,
    ShrinkageReport, SupplierItemsRequest, SupplierView, TransferReceiptRequest, TransferView, VarianceView,
};
use app::App;
use domain::purchasing::{CountStatus, PoStatus, TransferStatus};

use super::RequestActor;
use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/suppliers", get(list_suppliers).post(create_supplier))
        .route("/v1/suppliers/{id}", get(get_supplier))
        .route("/v1/suppliers/{id}/items", put(set_supplier_items))
        .route("/v1/purchase-orders", get(list_purchase_orders).post(create_purchase_order))
        .route("/v1/purchase-orders/{id}", get(get_purchase_order))
        .route("/v1/purchase-orders/{id}/order", post(order_purchase_order))
        .route("/v1/purchase-orders/{id}/cancel", post(cancel_purchase_order))
        .route("/v1/purchase-orders/{id}/close", post(close_purchase_order))
        .route("/v1/purchase-orders/{id}/receipts", post(receive_purchase_order))
        .route("/v1/putaway", get(putaway))
        .route("/v1/default-bins", post(set_default_bin).delete(clear_default_bin))
        .route("/v1/transfers", get(list_transfers).post(create_transfer))
        .route("/v1/transfers/{id}", get(get_transfer))
        .route("/v1/transfers/{id}/ship", post(ship_transfer))
        .route("/v1/transfers/{id}/cancel", post(cancel_transfer))
        .route("/v1/transfers/{id}/receipts", post(receive_transfer))
        .route("/v1/counts", get(list_counts).post(create_count))
        .route("/v1/counts/{id}", get(get_count))
        .route("/v1/counts/{id}/entries", post(enter_counts))
        .route("/v1/counts/{id}/variance", get(count_variance))
        .route("/v1/counts/{id}/approve", post(approve_count))
        .route("/v1/inspections", post(inspect))
        .route("/v1/reports/shrinkage", get(shrinkage))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_suppliers, create_supplier, get_supplier, set_supplier_items, list_purchase_orders,
        create_purchase_order, get_purchase_order, order_purchase_order, cancel_purchase_order, close_purchase_order,
        receive_purchase_order, putaway, set_default_bin, clear_default_bin, list_transfers, create_transfer, get_transfer, ship_transfer,
        cancel_transfer, receive_transfer, list_counts, create_count, get_count, enter_counts, count_variance,
        approve_count, inspect, shrinkage),
    tags((name = "purchasing", description = "Suppliers, purchase orders, receiving and putaway"),
        (name = "transfers", description = "Stock moving between warehouses through transit"),
        (name = "counts", description = "Cycle counts, their review and approval"),
        (name = "quality", description = "Inspections of stock in quality_control, and the shrinkage report")),
)]
pub struct PurchasingDoc;

pub use super::PageQuery as ListQuery;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PoQuery {
    pub status: Option<PoStatus>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TransferQuery {
    pub status: Option<TransferStatus>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CountQuery {
    pub status: Option<CountStatus>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PutawayQuery {
    pub sku: String,
    /// Path of the warehouse.
    pub warehouse: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// RFC 3339; 30 days before `to` when absent.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive; now when absent.
    pub to: Option<DateTime<Utc>>,
}

#[utoipa::path(get, path = "/v1/suppliers", tag = "purchasing", params(ListQuery),
    responses((status = 200, body = Page<SupplierView>), (status = 400, body = ProblemSchema)))]
pub async fn list_suppliers(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_suppliers(page).await?))
}

#[utoipa::path(post, path = "/v1/suppliers", tag = "purchasing", request_body = NewSupplier,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = SupplierView),
        (status = 422, description = "validation_failed, unknown_reference (a SKU)", body = ProblemSchema)))]
pub async fn create_supplier(State(app): State<App>, Json(req): Json<NewSupplier>) -> ApiResult<impl IntoResponse> {
    let s = app.create_supplier(req).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/suppliers/{}", s.id))], axum::Json(s)))
}

#[utoipa::path(get, path = "/v1/suppliers/{id}", tag = "purchasing", params(("id" = i64, Path)),
    responses((status = 200, body = SupplierView), (status = 404, body = ProblemSchema)))]
pub async fn get_supplier(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.supplier(id).await?))
}

/// Replaces the supplier's items (SKU, supplier SKU, unit cost, minimum order quantity, pack size, lead time).
#[utoipa::path(put, path = "/v1/suppliers/{id}/items", tag = "purchasing", request_body = SupplierItemsRequest,
    params(("id" = i64, Path)),
    responses((status = 200, body = SupplierView), (status = 404, body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn set_supplier_items(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(req): Json<SupplierItemsRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_supplier_items(id, req).await?))
}

#[utoipa::path(get, path = "/v1/purchase-orders", tag = "purchasing", params(PoQuery),
    responses((status = 200, body = Page<PurchaseOrderView>), (status = 400, body = ProblemSchema)))]
pub async fn list_purchase_orders(State(app): State<App>, Query(q): Query<PoQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_purchase_orders(q.status, page).await?))
}

/// Creates a purchase order as a draft, or sends it at once with `"order": true`. Unit costs and expected dates
/// default from the supplier's items; quantities respect their minimum order quantity and pack size.
#[utoipa::path(post, path = "/v1/purchase-orders", tag = "purchasing", request_body = NewPurchaseOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = PurchaseOrderView),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn create_purchase_order(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<NewPurchaseOrder>,
) -> ApiResult<impl IntoResponse> {
    let po = app.create_purchase_order(req, actor).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/purchase-orders/{}", po.id))], axum::Json(po)))
}

#[utoipa::path(get, path = "/v1/purchase-orders/{id}", tag = "purchasing", params(("id" = i64, Path)),
    responses((status = 200, body = PurchaseOrderView), (status = 404, body = ProblemSchema)))]
pub async fn get_purchase_order(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.purchase_order(id).await?))
}

/// Sends a draft to the supplier: its lines count as incoming from now on.
#[utoipa::path(post, path = "/v1/purchase-orders/{id}/order", tag = "purchasing", params(("id" = i64, Path)),
    responses((status = 200, body = PurchaseOrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status, conflict", body = ProblemSchema)))]
pub async fn order_purchase_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.purchase_order_step(id, PoStep::Order, actor).await?))
}

/// Cancels a draft or ordered purchase order nothing was received on.
#[utoipa::path(post, path = "/v1/purchase-orders/{id}/cancel", tag = "purchasing", params(("id" = i64, Path)),
    responses((status = 200, body = PurchaseOrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status, conflict", body = ProblemSchema)))]
pub async fn cancel_purchase_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.purchase_order_step(id, PoStep::Cancel, actor).await?))
}

/// Closes an order short: what was not received leaves incoming.
#[utoipa::path(post, path = "/v1/purchase-orders/{id}/close", tag = "purchasing", params(("id" = i64, Path)),
    responses((status = 200, body = PurchaseOrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status, conflict", body = ProblemSchema)))]
pub async fn close_purchase_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.purchase_order_step(id, PoStep::Close, actor).await?))
}

/// Receives goods: into a named bin of the order's warehouse or the putaway suggestion, as available or into
/// quality_control. The receipt, the order and the movements commit together; backorders are filled first-come
/// first-served.
#[utoipa::path(post, path = "/v1/purchase-orders/{id}/receipts", tag = "purchasing", request_body = ReceiptRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = PurchaseOrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status (cancelled, closed, draft or received), over_receipt, conflict", body = ProblemSchema),
        (status = 422, description = "validation_failed (e.g. a location that is not a bin), unknown_reference", body = ProblemSchema)))]
pub async fn receive_purchase_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<ReceiptRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.receive_purchase_order(id, req, actor).await?)))
}

/// Where to put a SKU away in a warehouse: its default bin there, else a bin that already holds it, else an empty
/// bin.
#[utoipa::path(get, path = "/v1/putaway", tag = "purchasing", params(PutawayQuery),
    responses((status = 200, body = PutawayView), (status = 404, body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn putaway(State(app): State<App>, Query(q): Query<PutawayQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.putaway(q.sku.trim(), &q.warehouse).await?))
}

/// Makes a bin the SKU's default putaway bin in the bin's warehouse (replacing an earlier default there).
#[utoipa::path(post, path = "/v1/default-bins", tag = "purchasing", request_body = DefaultBinRequest,
    responses((status = 200, body = DefaultBinView),
        (status = 422, description = "validation_failed (not a bin, not in a warehouse), unknown_reference", body = ProblemSchema)))]
pub async fn set_default_bin(
    State(app): State<App>,
    Json(req): Json<DefaultBinRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_default_bin(req).await?))
}

/// Removes the SKU's default bin in a warehouse; putaway falls back to a bin holding it, then an empty bin.
#[utoipa::path(delete, path = "/v1/default-bins", tag = "purchasing", params(PutawayQuery),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn clear_default_bin(State(app): State<App>, Query(q): Query<PutawayQuery>) -> ApiResult<impl IntoResponse> {
    app.clear_default_bin(&q.sku, &q.warehouse).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/transfers", tag = "transfers", params(TransferQuery),
    responses((status = 200, body = Page<TransferView>), (status = 400, body = ProblemSchema)))]
pub async fn list_transfers(State(app): State<App>, Query(q): Query<TransferQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_transfers(q.status, page).await?))
}

#[utoipa::path(post, path = "/v1/transfers", tag = "transfers", request_body = NewTransfer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = TransferView),
        (status = 422, description = "validation_failed (e.g. the same warehouse twice), unknown_reference", body = ProblemSchema)))]
pub async fn create_transfer(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<NewTransfer>,
) -> ApiResult<impl IntoResponse> {
    let t = app.create_transfer(req, actor).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/transfers/{}", t.id))], axum::Json(t)))
}

#[utoipa::path(get, path = "/v1/transfers/{id}", tag = "transfers", params(("id" = i64, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = ProblemSchema)))]
pub async fn get_transfer(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.transfer(id).await?))
}

/// Ships every line from its source bin to transit; the units show as incoming at the destination.
#[utoipa::path(post, path = "/v1/transfers/{id}/ship", tag = "transfers", params(("id" = i64, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status, insufficient_stock, conflict", body = ProblemSchema)))]
pub async fn ship_transfer(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.ship_transfer(id, actor).await?))
}

#[utoipa::path(post, path = "/v1/transfers/{id}/cancel", tag = "transfers", params(("id" = i64, Path)),
    responses((status = 200, body = TransferView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status (only drafts), conflict", body = ProblemSchema)))]
pub async fn cancel_transfer(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.cancel_transfer(id, actor).await?))
}

/// Books what arrived at the destination: sound units as available, damaged ones as damaged, lost ones written
/// off from transit to scrap.
#[utoipa::path(post, path = "/v1/transfers/{id}/receipts", tag = "transfers", request_body = TransferReceiptRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = TransferView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_status, more_than_in_transit, conflict", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn receive_transfer(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<TransferReceiptRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.receive_transfer(id, req, actor).await?)))
}

#[utoipa::path(get, path = "/v1/counts", tag = "counts", params(CountQuery),
    responses((status = 200, body = Page<CountView>), (status = 400, body = ProblemSchema)))]
pub async fn list_counts(State(app): State<App>, Query(q): Query<CountQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_counts(q.status, page).await?))
}

/// Opens a count over a location subtree, a list of SKUs, or the SKUs due by ABC class; each (SKU, bin) line
/// keeps on_hand at this moment as its snapshot.
#[utoipa::path(post, path = "/v1/counts", tag = "counts", request_body = NewCount,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = CountView),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn create_count(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<NewCount>,
) -> ApiResult<impl IntoResponse> {
    let c = app.create_count(req, actor).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/counts/{}", c.id))], axum::Json(c)))
}

/// A count; a blind count hides its expected quantities until it is approved.
#[utoipa::path(get, path = "/v1/counts/{id}", tag = "counts", params(("id" = i64, Path)),
    responses((status = 200, body = CountView), (status = 404, body = ProblemSchema)))]
pub async fn get_count(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.count(id).await?))
}

/// Records counted quantities by SKU or barcode, all entries or none.
#[utoipa::path(post, path = "/v1/counts/{id}/entries", tag = "counts", request_body = CountEntriesRequest,
    params(("id" = i64, Path)),
    responses((status = 200, body = CountView), (status = 404, body = ProblemSchema),
        (status = 409, description = "count_closed, conflict", body = ProblemSchema),
        (status = 422, description = "validation_failed (e.g. a negative count), unknown_reference (a barcode that matches nothing)", body = ProblemSchema)))]
pub async fn enter_counts(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(req): Json<CountEntriesRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.enter_counts(id, req).await?))
}

/// The review: each line's variance in units and value, and the totals.
#[utoipa::path(get, path = "/v1/counts/{id}/variance", tag = "counts", params(("id" = i64, Path)),
    responses((status = 200, body = VarianceView), (status = 404, body = ProblemSchema)))]
pub async fn count_variance(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.count_variance(id).await?))
}

/// Approves the count: each counted line's difference at the snapshot is booked on the live balance with reason
/// cycle_count.
#[utoipa::path(post, path = "/v1/counts/{id}/approve", tag = "counts", params(("id" = i64, Path)),
    responses((status = 200, body = CountView), (status = 404, body = ProblemSchema),
        (status = 409, description = "count_closed (approved already), nothing_counted, insufficient_stock, conflict", body = ProblemSchema)))]
pub async fn approve_count(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.approve_count(id, actor).await?))
}

/// Passes units in quality_control to available, or fails them to damaged or scrap.
#[utoipa::path(post, path = "/v1/inspections", tag = "quality", request_body = InspectionRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = InspectionView),
        (status = 409, description = "insufficient_stock (not that many in quality_control)", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn inspect(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<InspectionRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.inspect(req, actor).await?)))
}

/// Units lost to damage and shrinkage, and found or lost by counts, per reason and SKU over a period.
#[utoipa::path(get, path = "/v1/reports/shrinkage", tag = "quality", params(PeriodQuery),
    responses((status = 200, body = ShrinkageReport), (status = 422, body = ProblemSchema)))]
pub async fn shrinkage(State(app): State<App>, Query(q): Query<PeriodQuery>) -> ApiResult<impl IntoResponse> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - chrono::TimeDelta::days(30));
    Ok(axum::Json(app.shrinkage_report(from, to).await?))
}
