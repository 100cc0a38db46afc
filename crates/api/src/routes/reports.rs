//! The overview reports: units sold per day and the dashboard's counts. The OpenAPI paths of this module are
//! collected in [`ReportsDoc`].

use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};

use app::reports::{DashboardView, SalesPerDayView};
use app::App;

use crate::extract::Query;
use crate::problem::{ApiResult, ProblemSchema};

pub fn routes() -> Router<App> {
    Router::new().route("/v1/reports/sales-per-day", get(sales_per_day)).route("/v1/reports/dashboard", get(dashboard))
}

#[derive(OpenApi)]
#[openapi(
    paths(sales_per_day, dashboard),
    tags((name = "reports", description = "Overviews: units sold per day, and what needs attention now")),
)]
pub struct ReportsDoc;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SalesQuery {
    /// How many UTC days back, today included: 1 to 730 (default 90).
    pub days: Option<u32>,
    /// Only this SKU; every item when absent.
    pub sku: Option<String>,
}

/// Units sold per UTC day, oldest first, every day present. A sale is a `shipment` movement from a bin to the
/// customer, the demand replenishment forecasts from; returns do not subtract.
#[utoipa::path(get, path = "/v1/reports/sales-per-day", tag = "reports", params(SalesQuery),
    responses((status = 200, body = SalesPerDayView),
        (status = 404, description = "not_found: the SKU", body = ProblemSchema),
        (status = 422, description = "validation_failed: days", body = ProblemSchema)))]
pub async fn sales_per_day(State(app): State<App>, Query(q): Query<SalesQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.sales_per_day(q.days, q.sku.as_deref()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DashboardQuery {
    /// An item is low when its total available stock is at or below this: 0 to 1000000 (default 5).
    pub low_stock: Option<i64>,
}

/// What needs attention now, each as a full count with at most 10 rows: orders ready to pick (open, with committed
/// units in a bin, on no open pick list), backordered orders, low stock, projected stock-outs (as of the last
/// replenishment evaluation), active holds expiring within the hour, and webhook endpoints disabled or failing.
#[utoipa::path(get, path = "/v1/reports/dashboard", tag = "reports", params(DashboardQuery),
    responses((status = 200, body = DashboardView),
        (status = 422, description = "validation_failed: low_stock", body = ProblemSchema)))]
pub async fn dashboard(State(app): State<App>, Query(q): Query<DashboardQuery>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.dashboard(q.low_stock).await?))
}
