//! Stockroom's HTTP API: the axum router over the app's use cases, with problem+json errors, idempotency keys,
//! request ids, an OpenAPI 3.1 document at `/openapi.json` and its reference page at `/docs`.

pub mod audit;
pub mod auth;
pub mod docs;
pub mod extract;
pub mod idempotency;
pub mod metrics;
pub mod problem;
pub mod request_id;
pub mod routes;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use app::App;

use crate::problem::ApiError;

/// Limits and settings of the HTTP layer.
#[derive(Debug, Clone, Copy)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Requests per key: answered `429` with `Retry-After` beyond it.
    pub rate_limit: auth::RateLimit,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self { max_body_bytes: 2 * 1024 * 1024, rate_limit: auth::RateLimit { per_second: 0, burst: 0 } }
    }
}

/// The whole HTTP application.
pub fn router(app: App, config: ApiConfig) -> Router {
    let v1 = Router::new()
        .merge(routes::catalog::routes())
        .merge(routes::bundles::routes())
        .merge(routes::channels::routes())
        .merge(routes::locations::routes())
        .merge(routes::inventory::routes())
        .merge(routes::orders::routes())
        .merge(routes::picking::routes())
        .merge(routes::purchasing::routes())
        .merge(routes::valuation::routes())
        .merge(routes::reports::routes())
        .merge(routes::webhooks::routes())
        .merge(routes::keys::routes())
        .route("/metrics", get(metrics::metrics))
        // Layers run bottom-up: metrics count every answer, then the key is checked, then the change is audited,
        // and idempotency (scoped to the key) runs closest to the handler.
        .route_layer(axum::middleware::from_fn_with_state((app.clone(), config.max_body_bytes), idempotency::layer))
        .route_layer(axum::middleware::from_fn_with_state(app.clone(), audit::layer))
        .route_layer(axum::middleware::from_fn_with_state(
            auth::AuthState { app: app.clone(), limit: config.rate_limit, limiter: Default::default() },
            auth::layer,
        ))
        .route_layer(axum::middleware::from_fn(metrics::layer));
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(docs::openapi_json))
        .route("/docs", get(docs::reference_page))
        .merge(v1)
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn(problem::plain_rejections))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(app)
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> impl IntoResponse {
    axum::Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// A panic in a handler is a bug: the client gets a plain 500 problem with the request id, the log gets the rest.
fn panicked(_: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!(request_id = ?request_id::current(), "handler panicked");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred").into_response()
}

async fn route_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no endpoint has this path; see /docs")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this endpoint does not take this method")
}
