//! `Idempotency-Key` on every POST: the first response to a key is stored and replayed for retries with the same
//! request; the same key with a different request is refused, and so is a retry while the first still runs.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::store::IdempotencyState;
use app::App;

use crate::problem::ApiError;

pub const HEADER: &str = "idempotency-key";
/// Set on a replayed response.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The scope keys live in: each API key has its own, so that one client can neither replay nor block another's
/// requests by guessing its keys. The fingerprint includes the path, so a key reused on another endpoint is a
/// mismatch, not a replay.
fn scope_of(req: &Request) -> String {
    match req.extensions().get::<app::trust::Caller>() {
        Some(c) => format!("key:{}", c.key_id),
        None => "default".to_string(),
    }
}

pub async fn layer(State((app, body_limit)): State<(App, usize)>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).map(|v| v.to_str().map(str::to_string)) else {
        return next.run(req).await;
    };
    let key = match key {
        Ok(k) => k,
        Err(_) => {
            return ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "bad Idempotency-Key")
                .with_field("Idempotency-Key", "must be printable ASCII")
                .into_response()
        }
    };
    let scope = scope_of(&req);
    let scope = scope.as_str();
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, body_limit).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the body is too large")
                .into_response()
        }
    };
    let path = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let fingerprint = app::idempotency::request_fingerprint(parts.method.as_str(), path, &bytes);
    match app.begin_idempotent(scope, &key, &fingerprint).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(IdempotencyState::Completed { status, body, content_type }) => {
            let mut resp = Response::new(Body::from(body));
            *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            if let Ok(ct) = HeaderValue::from_str(&content_type) {
                resp.headers_mut().insert(axum::http::header::CONTENT_TYPE, ct);
            }
            resp.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
            return resp;
        }
        Ok(IdempotencyState::Mismatch) => {
            return ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency_key_reused",
                "this Idempotency-Key was used with a different request; use a new key for a new request",
            )
            .into_response()
        }
        Ok(IdempotencyState::InProgress) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; retry shortly",
            )
            .into_response()
        }
        Ok(IdempotencyState::New) => {}
    }
    // The request runs as its own task, so that a client hanging up cannot drop it halfway and leave the key
    // claimed; a panic comes back as an error, and the key is released. The task does not inherit the request id,
    // so it is carried over explicitly.
    let request_id = crate::request_id::current();
    let run =
        tokio::spawn(crate::request_id::scope(request_id, next.run(Request::from_parts(parts, Body::from(bytes)))));
    let resp = match run.await {
        Ok(resp) => resp,
        Err(e) => {
            tracing::error!(error = %e, "request task failed");
            let _ = app.abort_idempotent(scope, &key).await;
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred")
                .into_response();
        }
    };
    let status = resp.status();
    // Server errors are not final answers: release the key so that a retry can succeed.
    if status.is_server_error() {
        if let Err(e) = app.abort_idempotent(scope, &key).await {
            tracing::error!(error = %e, "could not release idempotency key");
        }
        return resp;
    }
    // An answer that must not be stored (it shows a secret once) is not kept for replay: the key is released.
    let no_store = resp
        .headers()
        .get(axum::http::header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    if no_store {
        if let Err(e) = app.abort_idempotent(scope, &key).await {
            tracing::error!(error = %e, "could not release idempotency key");
        }
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let body = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not buffer response for idempotency");
            let _ = app.abort_idempotent(scope, &key).await;
            return ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "an internal error occurred")
                .into_response();
        }
    };
    let content_type =
        parts.headers.get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if let Err(e) = app.complete_idempotent(scope, &key, status.as_u16(), &body, &content_type).await {
        // Without a stored answer the claim would block retries until it expires: release it instead.
        tracing::error!(error = %e, "could not store idempotent response");
        let _ = app.abort_idempotent(scope, &key).await;
    }
    Response::from_parts(parts, Body::from(body))
}
