//! Orders, holds and customers.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::IntoParams;

use app::orders::{
    CancelRequest, CancellationView, CreditMemoRequest, CustomerPatch, CustomerView, EditRequest, ExtendHold, HoldView,
    NewCustomer, NewHold, NewOrder, NewReturn, OrderView, PaymentRequestBody, ReceiveReturn, ReturnView, ShipRequest,
};
use app::page::{Page, PageRequest};
use app::store::OrderFilter;
use app::App;
use domain::order::OrderStatus;

use super::RequestActor;
use crate::audit::Audit;
use crate::auth::{not_yours, RequestCaller};
use crate::extract::{parse_json, Json, Query};
use crate::problem::{ApiError, ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/orders", get(list_orders).post(place_order))
        .route("/v1/orders/{id}", get(get_order))
        .route("/v1/orders/{id}/cancel", post(cancel_order))
        .route("/v1/orders/{id}/payments", post(pay))
        .route("/v1/orders/{id}/shipments", post(ship))
        .route("/v1/orders/{id}/edits", post(edit_order))
        .route("/v1/orders/{id}/credit-memos", post(credit_memo))
        .route("/v1/returns", post(request_return))
        .route("/v1/returns/{id}", get(get_return))
        .route("/v1/returns/{id}/receipts", post(receive_return))
        .route("/v1/holds", post(place_hold))
        .route("/v1/holds/{id}", get(get_hold))
        .route("/v1/holds/{id}/extend", post(extend_hold))
        .route("/v1/holds/{id}/release", post(release_hold))
        .route("/v1/customers", get(list_customers).post(create_customer))
        .route("/v1/customers/{id}", get(get_customer).patch(update_customer))
}

/// Places an order: all lines are allocated and committed at once, or none (`insufficient_stock` names every short
/// line). With `hold_id`, the hold's reserved stock becomes the order's, with no second availability check. The
/// same `source` and `external_number` never make two orders: a retry gets the first order back with 200.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", request_body = NewOrder,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, description = "Placed", body = OrderView),
        (status = 200, description = "Placed before under the same source and number", body = OrderView),
        (status = 409, description = "insufficient_stock, order_number_conflict, currency_mismatch, hold_expired, hold_mismatch", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn place_order(
    State(app): State<App>,
    caller: RequestCaller,
    RequestActor(actor): RequestActor,
    Audit(audit): Audit,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<impl IntoResponse> {
    // Keys in a JSON object are sorted once parsed, so the fingerprint ignores formatting and key order.
    let canonical = serde_json::to_vec(&body).unwrap_or_default();
    let req: NewOrder = parse_json(&canonical)?;
    if let Some(channel) = caller.channel() {
        if req.source != channel {
            return Err(ApiError::new(
                axum::http::StatusCode::FORBIDDEN,
                "forbidden",
                "a channel key places orders of its own channel only",
            )
            .with_field("source", format!("must be '{channel}'")));
        }
        if let Some(hold) = req.hold_id {
            own_hold(&app, &caller, hold).await?;
        }
    }
    let fingerprint = app::idempotency::request_fingerprint("POST", "/v1/orders", &canonical);
    let (order, created) = app.place_order_audited(req, fingerprint, actor, audit).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, [(header::LOCATION, format!("/v1/orders/{}", order.id))], axum::Json(order)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OrderQuery {
    pub source: Option<String>,
    pub customer_id: Option<i64>,
    pub status: Option<OrderStatus>,
    /// Only orders still waiting for stock (backordered or oversold units).
    pub backordered: Option<bool>,
    /// `true`: newest first, the cursor paging towards older orders (default: oldest first).
    pub newest_first: Option<bool>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/orders", tag = "orders", params(OrderQuery),
    responses((status = 200, body = Page<OrderView>), (status = 400, body = ProblemSchema)))]
pub async fn list_orders(
    State(app): State<App>,
    caller: RequestCaller,
    Query(q): Query<OrderQuery>,
) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    let source = match caller.channel() {
        // A channel key lists its own channel's orders, whatever it asks for.
        Some(channel) => match q.source {
            Some(s) if s != channel => {
                return Err(ApiError::new(
                    axum::http::StatusCode::FORBIDDEN,
                    "forbidden",
                    "a channel key lists its own channel's orders only",
                )
                .with_field("source", format!("must be '{channel}' or absent")))
            }
            _ => Some(channel.to_string()),
        },
        None => q.source,
    };
    let filter = OrderFilter {
        source,
        customer_id: q.customer_id,
        status: q.status,
        backordered: q.backordered.unwrap_or(false),
        newest_first: q.newest_first.unwrap_or(false),
    };
    Ok(axum::Json(app.list_orders(filter, page).await?))
}

#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = OrderView), (status = 404, body = ProblemSchema)))]
pub async fn get_order(
    State(app): State<App>,
    caller: RequestCaller,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    let order = app.order(id).await?;
    if caller.channel().is_some_and(|c| c != order.source) {
        return Err(not_yours("order", id));
    }
    Ok(axum::Json(order))
}

/// A channel key's access to an order: its own channel's only, and another's as if it did not exist.
async fn own_order(app: &App, caller: &RequestCaller, id: i64) -> ApiResult<()> {
    if let Some(channel) = caller.channel() {
        if app.order(id).await?.source != channel {
            return Err(not_yours("order", id));
        }
    }
    Ok(())
}

/// A channel key's access to a hold: those its channel placed only.
async fn own_hold(app: &App, caller: &RequestCaller, id: i64) -> ApiResult<()> {
    if let Some(channel) = caller.channel() {
        if app.hold_channel(id).await?.as_deref() != Some(channel) {
            return Err(not_yours("hold", id));
        }
    }
    Ok(())
}

/// Cancels lines, or the whole order when no lines are given. Backordered units go first; committed units go
/// back to available (and to orders waiting for them). The answer says what must be refunded if it was paid.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", request_body = CancelRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = CancellationView), (status = 404, body = ProblemSchema),
        (status = 409, description = "order_cancelled, invalid_quantity", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn cancel_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    caller: RequestCaller,
    RequestActor(actor): RequestActor,
    body: Bytes,
) -> ApiResult<impl IntoResponse> {
    own_order(&app, &caller, id).await?;
    // An empty body cancels everything.
    let req: CancelRequest =
        if body.iter().all(u8::is_ascii_whitespace) { CancelRequest::default() } else { parse_json(&body)? };
    Ok(axum::Json(app.cancel_order(id, req, actor).await?))
}

/// Reserves stock for a cart or checkout until it expires (15 minutes unless `ttl_seconds` says otherwise). All
/// lines or none; a hold never promises stock that is not there.
#[utoipa::path(post, path = "/v1/holds", tag = "holds", request_body = NewHold,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = HoldView), (status = 409, description = "insufficient_stock", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn place_hold(
    State(app): State<App>,
    caller: RequestCaller,
    RequestActor(actor): RequestActor,
    Audit(audit): Audit,
    Json(req): Json<NewHold>,
) -> ApiResult<impl IntoResponse> {
    let hold = app.place_hold_audited(req, actor, audit).await?;
    if let Some(channel) = caller.channel() {
        // Written after the hold: should this fail, the hold is the channel's stock for its time to live but the
        // channel cannot see it (never another channel's); it expires as any hold does.
        app.set_hold_channel(hold.id, channel).await?;
    }
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/holds/{}", hold.id))], axum::Json(hold)))
}

#[utoipa::path(get, path = "/v1/holds/{id}", tag = "holds", params(("id" = i64, Path)),
    responses((status = 200, body = HoldView), (status = 404, body = ProblemSchema)))]
pub async fn get_hold(
    State(app): State<App>,
    caller: RequestCaller,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    own_hold(&app, &caller, id).await?;
    Ok(axum::Json(app.hold(id).await?))
}

/// Extends a live hold, for example when payment starts.
#[utoipa::path(post, path = "/v1/holds/{id}/extend", tag = "holds", request_body = ExtendHold,
    params(("id" = i64, Path)),
    responses((status = 200, body = HoldView), (status = 404, body = ProblemSchema),
        (status = 409, description = "hold_expired, hold_not_active", body = ProblemSchema)))]
pub async fn extend_hold(
    State(app): State<App>,
    Path(id): Path<i64>,
    caller: RequestCaller,
    RequestActor(actor): RequestActor,
    Json(req): Json<ExtendHold>,
) -> ApiResult<impl IntoResponse> {
    own_hold(&app, &caller, id).await?;
    Ok(axum::Json(app.extend_hold(id, req, actor).await?))
}

/// Gives a live hold's stock back at once.
#[utoipa::path(post, path = "/v1/holds/{id}/release", tag = "holds", params(("id" = i64, Path)),
    responses((status = 200, body = HoldView), (status = 404, body = ProblemSchema),
        (status = 409, description = "hold_expired, hold_not_active", body = ProblemSchema)))]
pub async fn release_hold(
    State(app): State<App>,
    Path(id): Path<i64>,
    caller: RequestCaller,
    RequestActor(actor): RequestActor,
) -> ApiResult<impl IntoResponse> {
    own_hold(&app, &caller, id).await?;
    Ok(axum::Json(app.release_hold(id, actor).await?))
}

#[utoipa::path(post, path = "/v1/customers", tag = "orders", request_body = NewCustomer,
    responses((status = 201, body = CustomerView), (status = 409, description = "duplicate_customer", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn create_customer(State(app): State<App>, Json(req): Json<NewCustomer>) -> ApiResult<impl IntoResponse> {
    let c = app.create_customer(req).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/customers/{}", c.id))], axum::Json(c)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Text in the name or email, or the start of the phone number.
    pub q: Option<String>,
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[utoipa::path(get, path = "/v1/customers", tag = "orders", params(CustomerQuery),
    responses((status = 200, body = Page<CustomerView>)))]
pub async fn list_customers(State(app): State<App>, Query(q): Query<CustomerQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_customers(q.q.as_deref(), page).await?))
}

#[utoipa::path(get, path = "/v1/customers/{id}", tag = "orders", params(("id" = i64, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ProblemSchema)))]
pub async fn get_customer(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.customer(id).await?))
}

#[utoipa::path(patch, path = "/v1/customers/{id}", tag = "orders", request_body = CustomerPatch, params(("id" = i64, Path)),
    responses((status = 200, body = CustomerView), (status = 404, body = ProblemSchema), (status = 409, body = ProblemSchema)))]
pub async fn update_customer(
    State(app): State<App>,
    Path(id): Path<i64>,
    Json(patch): Json<CustomerPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_customer(id, patch).await?))
}

/// Records a payment event from the provider: authorize, capture (in parts too), void or refund. Amounts are
/// checked against the order's total, what was authorized and what was captured.
#[utoipa::path(post, path = "/v1/orders/{id}/payments", tag = "orders", request_body = PaymentRequestBody,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = OrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "amount_too_large, currency_mismatch", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn pay(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<PaymentRequestBody>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.pay(id, req, actor).await?))
}

/// Ships committed units (all of them when no lines are given), with carrier and tracking: the stock leaves
/// on_hand. Only a paid order ships, unless its payment terms are invoice.
#[utoipa::path(post, path = "/v1/orders/{id}/shipments", tag = "orders", request_body = ShipRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = OrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "payment_required, nothing_to_ship, invalid_quantity, order_cancelled", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn ship(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<ShipRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.ship(id, req, actor).await?)))
}

/// Changes lines after placement: new quantities and new lines, re-allocated as one change; only the difference
/// is committed or released.
#[utoipa::path(post, path = "/v1/orders/{id}/edits", tag = "orders", request_body = EditRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = OrderView), (status = 404, body = ProblemSchema),
        (status = 409, description = "insufficient_stock, invalid_quantity, order_cancelled", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn edit_order(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<EditRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.edit_order(id, req, actor).await?))
}

/// Records a credit memo (amount, lines, reason) on the order, for the accounting system.
#[utoipa::path(post, path = "/v1/orders/{id}/credit-memos", tag = "orders", request_body = CreditMemoRequest,
    params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = OrderView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn credit_memo(
    State(app): State<App>,
    Path(id): Path<i64>,
    RequestActor(actor): RequestActor,
    Json(req): Json<CreditMemoRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.credit_memo(id, req, actor).await?)))
}

/// Opens a return for shipped units, each line with its reason.
#[utoipa::path(post, path = "/v1/returns", tag = "orders", request_body = NewReturn,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ReturnView), (status = 409, description = "invalid_quantity", body = ProblemSchema),
        (status = 422, body = ProblemSchema)))]
pub async fn request_return(
    State(app): State<App>,
    RequestActor(actor): RequestActor,
    Json(req): Json<NewReturn>,
) -> ApiResult<impl IntoResponse> {
    let r = app.request_return(req, actor).await?;
    Ok((StatusCode::CREATED, [(header::LOCATION, format!("/v1/returns/{}", r.id))], axum::Json(r)))
}

#[utoipa::path(get, path = "/v1/returns/{id}", tag = "orders", params(("id" = String, Path, description = "`{order}-{n}`")),
    responses((status = 200, body = ReturnView), (status = 404, body = ProblemSchema)))]
pub async fn get_return(State(app): State<App>, Path(id): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.get_return(&id).await?))
}

/// Receives returned units: restocked into a bin (available), into quality control, as damaged, or scrapped.
#[utoipa::path(post, path = "/v1/returns/{id}/receipts", tag = "orders", request_body = ReceiveReturn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, body = ReturnView), (status = 404, body = ProblemSchema),
        (status = 409, description = "invalid_quantity", body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn receive_return(
    State(app): State<App>,
    Path(id): Path<String>,
    RequestActor(actor): RequestActor,
    Json(req): Json<ReceiveReturn>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.receive_return(&id, req, actor).await?))
}
