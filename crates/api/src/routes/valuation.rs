//! Valuation, COGS and margin, the accounting journal and period locks, landed costs, and replenishment
//! (velocity, forecasts, suggestions, stock health, alerts). The OpenAPI paths of this module are collected in
//! [`ValuationDoc`].

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use app::replenishment::{ReplenishmentSettings, SuggestionOrderRequest};
use app::valuation::{journal_csv, CostingSettings, MarginGroup, NewLandedCost};
use app::App;
use domain::journal::AccountMap;

use crate::extract::{Json, Query};
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/settings/costing", get(get_costing).put(put_costing))
        .route("/v1/settings/accounting", get(get_accounting).put(put_accounting))
        .route("/v1/settings/replenishment", get(get_replenishment).put(put_replenishment))
        .route("/v1/purchase-orders/{id}/receipts/{number}/landed-costs", post(add_landed_cost))
        .route("/v1/purchase-orders/{id}/landed-costs", get(landed_costs))
        .route("/v1/reports/valuation", get(valuation))
        .route("/v1/reports/margin", get(margin))
        .route("/v1/reports/stock-health", get(stock_health))
        .route("/v1/accounting/journal", get(journal))
        .route("/v1/accounting/periods", get(periods))
        .route("/v1/accounting/periods/{period}/lock", post(lock_period))
        .route("/v1/items/{sku}/velocity", get(velocity))
        .route("/v1/items/{sku}/forecast", get(forecast))
        .route("/v1/replenishment/suggestions", get(suggestions))
        .route("/v1/replenishment/purchase-orders", post(suggestion_orders))
        .route("/v1/replenishment/evaluate", post(evaluate))
}

#[derive(OpenApi)]
#[openapi(
    paths(get_costing, put_costing, get_accounting, put_accounting, get_replenishment, put_replenishment,
        add_landed_cost, landed_costs, valuation, margin, stock_health, journal, periods, lock_period, velocity, forecast,
        suggestions, suggestion_orders, evaluate),
    tags((name = "valuation", description = "Cost layers, valuation, COGS and margin, folded from the ledger"),
        (name = "accounting", description = "Journal export and period locks"),
        (name = "replenishment", description = "Velocity, forecasts, reorder suggestions, stock health and alerts")),
)]
pub struct ValuationDoc;

#[utoipa::path(get, path = "/v1/settings/costing", tag = "valuation",
    responses((status = 200, description = "default_method (fifo | average), currency, items: per-SKU methods")))]
pub async fn get_costing(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.costing_settings().await?))
}

/// Replaces the costing settings. Valuation is folded from the ledger, so a new method applies to all history.
#[utoipa::path(put, path = "/v1/settings/costing", tag = "valuation",
    responses((status = 200, description = "The settings as stored"),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn put_costing(State(app): State<App>, Json(req): Json<CostingSettings>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_costing_settings(req).await?))
}

#[utoipa::path(get, path = "/v1/settings/accounting", tag = "accounting",
    responses((status = 200, description = "The account codes, or null when none are mapped yet")))]
pub async fn get_accounting(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.accounting_settings().await?))
}

/// Maps the journal's accounts: inventory, grni, cogs, shrinkage, inventory_gain, landed_cost_clearing.
#[utoipa::path(put, path = "/v1/settings/accounting", tag = "accounting",
    responses((status = 200, description = "The account codes as stored"),
        (status = 422, description = "validation_failed", body = ProblemSchema)))]
pub async fn put_accounting(State(app): State<App>, Json(req): Json<AccountMap>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_accounting_settings(req).await?))
}

#[utoipa::path(get, path = "/v1/settings/replenishment", tag = "replenishment",
    responses((status = 200, description = "Service level, review days, lead-time spread, EOQ costs, health bounds")))]
pub async fn get_replenishment(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.replenishment_settings().await?))
}

#[utoipa::path(put, path = "/v1/settings/replenishment", tag = "replenishment",
    responses((status = 200, description = "The settings as stored"),
        (status = 422, description = "validation_failed", body = ProblemSchema)))]
pub async fn put_replenishment(
    State(app): State<App>,
    Json(req): Json<ReplenishmentSettings>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.set_replenishment_settings(req).await?))
}

/// Enters a landed cost (freight, duty) against one receipt, in the order's currency; it is spread over the
/// receipt's lines by value (default) or quantity and becomes part of their cost layers.
#[utoipa::path(post, path = "/v1/purchase-orders/{id}/receipts/{number}/landed-costs", tag = "valuation",
    params(("id" = i64, Path), ("number" = i64, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, description = "The landed cost"), (status = 404, body = ProblemSchema),
        (status = 409, description = "period_locked: the receipt's period is exported", body = ProblemSchema),
        (status = 422, description = "validation_failed (negative amount, wrong currency)", body = ProblemSchema)))]
pub async fn add_landed_cost(
    State(app): State<App>,
    Path((id, number)): Path<(i64, i64)>,
    Json(req): Json<NewLandedCost>,
) -> ApiResult<impl IntoResponse> {
    Ok((StatusCode::CREATED, axum::Json(app.add_landed_cost(id, number, req).await?)))
}

/// The landed costs entered against the order's receipts, oldest first.
#[utoipa::path(get, path = "/v1/purchase-orders/{id}/landed-costs", tag = "valuation", params(("id" = i64, Path)),
    responses((status = 200, description = "items: id, receipt_number, amount, currency, basis, description, created_at"),
        (status = 404, body = ProblemSchema)))]
pub async fn landed_costs(State(app): State<App>, Path(id): Path<i64>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(serde_json::json!({ "items": app.landed_costs_of(id).await? })))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ValuationQuery {
    /// RFC 3339; now when absent.
    pub as_of: Option<DateTime<Utc>>,
    /// Path of a warehouse: its units, valued at the item's cost.
    pub warehouse: Option<String>,
}

#[utoipa::path(get, path = "/v1/reports/valuation", tag = "valuation", params(ValuationQuery),
    responses((status = 200, description = "Quantity and value per item as of the time"),
        (status = 404, body = ProblemSchema), (status = 409, description = "costing_failed", body = ProblemSchema)))]
pub async fn valuation(State(app): State<App>, Query(q): Query<ValuationQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.valuation_report(q.as_of, q.warehouse.as_deref()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct MarginQuery {
    /// RFC 3339, inclusive; 30 days before `to` when absent.
    pub from: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive; now when absent.
    pub to: Option<DateTime<Utc>>,
    /// order (default), order_line, product, channel or period.
    #[param(value_type = Option<String>)]
    pub group_by: Option<MarginGroup>,
}

#[utoipa::path(get, path = "/v1/reports/margin", tag = "valuation", params(MarginQuery),
    responses((status = 200, description = "Revenue, COGS and gross margin per group"),
        (status = 409, description = "costing_failed", body = ProblemSchema)))]
pub async fn margin(State(app): State<App>, Query(q): Query<MarginQuery>) -> ApiResult<impl IntoResponse> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q.from.unwrap_or(to - chrono::Duration::days(30));
    Ok(axum::Json(app.margin_report(from, to, q.group_by.unwrap_or(MarginGroup::Order)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct WarehouseQuery {
    pub warehouse: Option<String>,
}

#[utoipa::path(get, path = "/v1/reports/stock-health", tag = "replenishment", params(WarehouseQuery),
    responses((status = 200, description = "Dead stock and overstock with the value tied up")))]
pub async fn stock_health(State(app): State<App>, Query(q): Query<WarehouseQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.stock_health(q.warehouse.as_deref()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct JournalQuery {
    /// First posting date (YYYY-MM-DD), inclusive.
    pub from: NaiveDate,
    /// Last posting date, inclusive.
    pub to: NaiveDate,
    /// `json` (default) or `csv`; `Accept: text/csv` works too.
    pub format: Option<String>,
}

#[utoipa::path(get, path = "/v1/accounting/journal", tag = "accounting", params(JournalQuery),
    responses((status = 200, description = "Balanced entries, each linking its movements; JSON or CSV"),
        (status = 409, description = "accounts_not_mapped, costing_failed", body = ProblemSchema)))]
pub async fn journal(State(app): State<App>, headers: HeaderMap, Query(q): Query<JournalQuery>) -> ApiResult<Response> {
    let csv = match q.format.as_deref() {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => {
            return Err(app::AppError::field("format", "must be json or csv").into());
        }
        None => headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/csv")),
    };
    let entries = app.journal(q.from, q.to).await?;
    if csv {
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], journal_csv(&entries)).into_response())
    } else {
        Ok(axum::Json(serde_json::json!({ "from": q.from, "to": q.to, "entries": entries })).into_response())
    }
}

#[utoipa::path(get, path = "/v1/accounting/periods", tag = "accounting",
    responses((status = 200, description = "Locked periods")))]
pub async fn periods(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(serde_json::json!({ "locked": app.locked_periods().await? })))
}

/// Locks an exported period: later changes dated in it post on the first day of the next open period.
#[utoipa::path(post, path = "/v1/accounting/periods/{period}/lock", tag = "accounting",
    params(("period" = String, Path, description = "YYYY-MM"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, description = "Locked"),
        (status = 409, description = "period_locked: locked already", body = ProblemSchema),
        (status = 422, description = "validation_failed", body = ProblemSchema)))]
pub async fn lock_period(State(app): State<App>, Path(period): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.lock_period(&period).await?))
}

#[utoipa::path(get, path = "/v1/items/{sku}/velocity", tag = "replenishment", params(("sku" = String, Path)),
    responses((status = 200, description = "Units per in-stock day over 7, 30 and 90 days, per channel"),
        (status = 404, body = ProblemSchema)))]
pub async fn velocity(State(app): State<App>, Path(sku): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.velocity(&sku).await?))
}

#[utoipa::path(get, path = "/v1/items/{sku}/forecast", tag = "replenishment", params(("sku" = String, Path)),
    responses((status = 200, description = "status forecast (model, daily forecast, MASE, bias) or not_enough_history"),
        (status = 404, body = ProblemSchema)))]
pub async fn forecast(State(app): State<App>, Path(sku): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.item_forecast(&sku).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SuggestionQuery {
    /// Path of a warehouse.
    pub warehouse: Option<String>,
    /// Supplier id.
    pub supplier: Option<i64>,
}

#[utoipa::path(get, path = "/v1/replenishment/suggestions", tag = "replenishment", params(SuggestionQuery),
    responses((status = 200, description = "Items at or below their reorder point, with the quantity to order"),
        (status = 404, body = ProblemSchema)))]
pub async fn suggestions(State(app): State<App>, Query(q): Query<SuggestionQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(serde_json::json!({ "items": app.suggestions(q.warehouse.as_deref(), q.supplier).await? })))
}

/// Turns selected suggestions (`{"lines": [{"sku", "warehouse", "quantity"?}]}`) into draft purchase orders, one
/// per supplier and warehouse.
#[utoipa::path(post, path = "/v1/replenishment/purchase-orders", tag = "replenishment",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, description = "The draft purchase orders"),
        (status = 422, description = "validation_failed, unknown_reference", body = ProblemSchema)))]
pub async fn suggestion_orders(
    State(app): State<App>,
    super::RequestActor(actor): super::RequestActor,
    Json(req): Json<SuggestionOrderRequest>,
) -> ApiResult<impl IntoResponse> {
    let pos = app.suggestions_to_purchase_orders(req, actor).await?;
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({ "purchase_orders": pos }))))
}

/// Evaluates every plan and raises `stock.reorder_point_reached` and `stock.stockout_projected` once per episode.
#[utoipa::path(post, path = "/v1/replenishment/evaluate", tag = "replenishment",
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 200, description = "How many plans were evaluated and which alerts were raised")))]
pub async fn evaluate(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.evaluate_replenishment().await?))
}
