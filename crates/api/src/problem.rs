//! Errors as RFC 9457 `application/problem+json`, each with a stable machine `code`, a human `detail`, the
//! offending fields, and the request id. A 500 never leaks internals: it is logged with the request id instead.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use domain::FieldError;
use serde::Serialize;

use app::{AppError, StoreError};

use crate::request_id;

/// Every error code the API returns, with its status and title. The reference page at `/docs` lists this table,
/// and clients may rely on the codes: they never change meaning.
pub const ERROR_CODES: &[(&str, u16, &str)] = &[
    ("malformed_json", 400, "The body is not valid JSON, or does not have the expected shape"),
    ("invalid_query", 400, "A query parameter is unknown or has a bad value"),
    ("invalid_path", 400, "A path parameter has a bad value (an id that is not a number)"),
    ("bad_request", 400, "The request cannot be read"),
    ("invalid_cursor", 400, "The feed cursor is malformed or belongs to another channel"),
    ("unauthenticated", 401, "No API key was sent, or it is unknown, revoked or expired"),
    ("forbidden", 403, "The key's role or channel may not do this"),
    ("not_found", 404, "The addressed resource does not exist"),
    ("route_not_found", 404, "No endpoint has this path"),
    ("method_not_allowed", 405, "The endpoint does not take this method"),
    ("duplicate_handle", 409, "Another product has this handle"),
    ("duplicate_sku", 409, "Another variant has this SKU"),
    ("duplicate_location", 409, "A location with this path exists"),
    ("duplicate_channel", 409, "A channel with this code exists"),
    ("has_stock_history", 409, "Stock has been booked for it; archive it instead"),
    ("location_not_empty", 409, "The location has locations below it"),
    ("location_has_stock_history", 409, "Stock has been booked in the location"),
    ("virtual_location", 409, "Virtual locations are built in"),
    ("insufficient_stock", 409, "Not enough stock in the named state"),
    ("stale_expected_on_hand", 409, "on_hand changed since you read it (compare-and-set failed)"),
    ("idempotency_key_in_use", 409, "A request with this Idempotency-Key is still running"),
    ("order_number_conflict", 409, "Another order exists under this source and external number"),
    ("currency_mismatch", 409, "A line's catalog price is in another currency than the order; give unit_price"),
    ("order_cancelled", 409, "The order is cancelled already"),
    ("nothing_to_cancel", 409, "Every unit has shipped or was cancelled already"),
    ("invalid_quantity", 409, "More units than the line has left"),
    ("hold_expired", 409, "The hold has expired; its stock is free again"),
    ("hold_not_active", 409, "The hold was released, converted or expired"),
    ("hold_mismatch", 409, "The order's lines differ from the hold's lines"),
    ("hold_not_due", 409, "The hold has not expired"),
    ("no_warehouses", 409, "No warehouse has sellable bins to allocate from"),
    ("nothing_to_ship", 409, "No committed units are waiting to ship"),
    ("nothing_to_pick", 409, "No committed units are waiting in this warehouse"),
    ("already_picking", 409, "The order is on another open pick list of this warehouse"),
    ("pick_list_closed", 409, "The pick list was completed or cancelled"),
    ("payment_required", 409, "Capture the payment first; only orders on invoice ship unpaid"),
    ("amount_too_large", 409, "More than can be authorized, captured, voided or refunded"),
    ("duplicate_customer", 409, "Another customer has this email or phone"),
    ("bundle_cycle", 409, "The bundle would contain itself, directly or through nested bundles"),
    ("bundle_has_stock", 409, "The variant's SKU holds stock, so it cannot become a bundle"),
    ("bundle_holds_no_stock", 409, "A bundle's own SKU never holds stock; book its components"),
    ("bundle_component_line", 409, "The line is a bundle's component; name the bundle line"),
    ("bundle_not_editable", 409, "Bundle lines are not edited; cancel units or place another order"),
    ("component_of_bundle", 409, "A bundle is made of it; take it out of the bundle first"),
    ("replay_too_large", 409, "The replay's time range holds too many events; replay a shorter one"),
    ("invalid_status", 409, "The document's status does not allow this step (e.g. receiving a cancelled order)"),
    ("over_receipt", 409, "More than ordered, beyond the order's tolerance"),
    ("more_than_in_transit", 409, "More units reported than are in transit on the transfer line"),
    ("count_closed", 409, "The count was approved already"),
    ("count_overlaps", 409, "Another open count already covers one of the (item, bin) pairs; the detail names it"),
    ("nothing_counted", 409, "No line of the count has a counted quantity"),
    ("period_locked", 409, "The accounting period is locked (exported) already"),
    ("accounts_not_mapped", 409, "Map the journal's account codes in /v1/settings/accounting first"),
    ("costing_failed", 409, "A movement cannot be costed (e.g. a cost in another currency than the item's books)"),
    ("forecast_failed", 409, "The demand history cannot be forecast"),
    ("replenishment_failed", 409, "A replenishment plan cannot be made from the settings and supplier terms"),
    (
        "count_shortage_committed",
        409,
        "A count's shortage is larger than the units available there: the rest are committed to orders",
    ),
    ("conflict", 409, "The request conflicts with the current state"),
    ("payload_too_large", 413, "The body is larger than the server accepts"),
    ("unsupported_media_type", 415, "Send JSON with Content-Type: application/json"),
    ("validation_failed", 422, "One or more fields are invalid"),
    ("unknown_reference", 422, "The body names a SKU or location that does not exist"),
    ("idempotency_key_reused", 422, "This Idempotency-Key was used with a different request"),
    ("rate_limited", 429, "Too many requests with this key; retry after the Retry-After seconds"),
    ("internal", 500, "Something went wrong on our side; quote the request id"),
    ("unavailable", 503, "The service is shutting down or overloaded; retry later"),
];

fn title_of(code: &str) -> &'static str {
    ERROR_CODES.iter().find(|(c, _, _)| *c == code).map(|(_, _, t)| *t).unwrap_or("Error")
}

/// The problem document.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct Problem {
    /// A link to this code's entry on the reference page.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub code: String,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[cfg_attr(test, derive(serde::Deserialize))]
pub struct ProblemField {
    pub field: String,
    pub message: String,
}

/// The schema of every error body, for the OpenAPI document.
#[derive(Serialize, utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ProblemSchema {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    /// Stable machine code; see the table on `/docs`.
    pub code: String,
    pub detail: String,
    /// The offending fields; absent when the error is not about fields.
    #[schema(required = false)]
    pub errors: Vec<ProblemField>,
    #[schema(required = false)]
    pub request_id: Option<String>,
}

/// An error on its way to becoming a problem+json response.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self { status, code, detail: detail.into(), errors: vec![] }
    }
    pub fn with_field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        self.errors.push(FieldError::new(field, message));
        self
    }
}

fn summarize(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ")
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        let code = e.code();
        match e {
            AppError::Validation(errors) => {
                ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, code, detail: summarize(&errors), errors }
            }
            AppError::UnknownReference(errors) => {
                ApiError { status: StatusCode::UNPROCESSABLE_ENTITY, code, detail: summarize(&errors), errors }
            }
            AppError::NotFound { entity, key } => {
                ApiError::new(StatusCode::NOT_FOUND, code, format!("{entity} '{key}' not found"))
            }
            AppError::Conflict { detail, errors, .. } | AppError::InsufficientStock { detail, errors } => {
                ApiError { status: StatusCode::CONFLICT, code, detail, errors }
            }
            AppError::Unavailable(detail) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, detail),
            AppError::Store(StoreError::Conflict { constraint }) => ApiError::new(
                StatusCode::CONFLICT,
                code,
                format!("the change clashes with existing data ({constraint})"),
            ),
            AppError::Store(StoreError::NotFound) => ApiError::new(StatusCode::NOT_FOUND, code, "not found"),
            AppError::Store(StoreError::Internal(msg)) => {
                tracing::error!(request_id = ?request_id::current(), error = %msg, "internal error");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, code, "an internal error occurred")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Problem {
            type_: format!("/docs#error-{}", self.code),
            title: title_of(self.code).to_string(),
            status: self.status.as_u16(),
            code: self.code.to_string(),
            detail: self.detail,
            errors: self.errors.into_iter().map(|e| ProblemField { field: e.field, message: e.message }).collect(),
            request_id: request_id::current(),
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Middleware: a plain-text client error from the framework (a path parameter that does not parse, say) becomes
/// problem+json like every other error, so that clients and the document meet one error format.
pub async fn plain_rejections(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let plain = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/plain"));
    if !status.is_client_error() || !plain {
        return resp;
    }
    let headers = resp.headers().clone();
    let text = match axum::body::to_bytes(resp.into_body(), 4096).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    let code = match status.as_u16() {
        400 if text.contains("URL") || text.contains("path") => "invalid_path",
        400 => "bad_request",
        404 => "not_found",
        405 => "method_not_allowed",
        413 => "payload_too_large",
        415 => "unsupported_media_type",
        422 => "validation_failed",
        _ => "bad_request",
    };
    let mut out = ApiError::new(status, code, text).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER, header::WWW_AUTHENTICATE] {
        if let Some(v) = headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}
