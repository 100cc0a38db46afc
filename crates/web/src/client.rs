//! In-process calls to the `/v1` API for the signed-in user: the same router, policy table, validation, audit
//! and idempotency as a call over the network, without a socket or a key secret.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;

use api::auth::InternalCaller;
use app::trust::{Caller, Role};

/// Largest API answer a page reads whole (a full page of a list is far below it; a CSV report may be large).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Why an API call failed, as its problem+json said.
#[derive(Debug, Clone)]
pub struct Failure {
    pub status: StatusCode,
    pub code: String,
    pub detail: String,
    /// Field errors: (field path, message).
    pub errors: Vec<(String, String)>,
}

impl Failure {
    /// One line for a banner: the detail and each field error.
    pub fn message(&self) -> String {
        let mut msg = self.detail.clone();
        for (field, m) in &self.errors {
            msg.push_str(&format!(" · {field}: {m}"));
        }
        msg
    }

    fn from_answer(status: StatusCode, body: &[u8]) -> Failure {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let errors = v["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| {
                        (e["field"].as_str().unwrap_or("").to_string(), e["message"].as_str().unwrap_or("").to_string())
                    })
                    .collect()
            })
            .unwrap_or_default();
        Failure {
            status,
            code: v["code"].as_str().unwrap_or("error").to_string(),
            detail: v["detail"]
                .as_str()
                .or(v["title"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| format!("the request failed ({status})")),
            errors,
        }
    }
}

/// The signed-in user of one request, able to call the API as themselves.
#[derive(Clone)]
pub struct User {
    pub caller: Caller,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    pub(crate) api: axum::Router,
}

impl User {
    pub fn role(&self) -> Role {
        self.caller.role
    }

    /// Whether this user may call `method path` (a route pattern such as `/v1/orders/{id}/payments`): pages show
    /// only the links and buttons that would work.
    pub fn may(&self, method: &str, path: &str) -> bool {
        api::auth::allows(self.caller.role, method, path)
    }

    /// `GET path` (with its query string) as JSON.
    pub async fn get(&self, path: &str) -> Result<Value, Failure> {
        self.call(Method::GET, path, None, None).await
    }

    /// `POST path` with a JSON body; `idempotency_key` makes a repeated form submission apply once.
    pub async fn post(&self, path: &str, body: &Value, idempotency_key: Option<&str>) -> Result<Value, Failure> {
        self.call(Method::POST, path, Some(body), idempotency_key).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call(Method::PUT, path, Some(body), None).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Result<Value, Failure> {
        self.call(Method::PATCH, path, Some(body), None).await
    }

    pub async fn delete(&self, path: &str) -> Result<Value, Failure> {
        self.call(Method::DELETE, path, None, None).await
    }

    /// `GET path` as raw bytes with the answer's content type (CSV downloads).
    pub async fn get_raw(&self, path: &str, accept: &str) -> Result<(String, Vec<u8>), Failure> {
        let (status, content_type, body) = self.send(Method::GET, path, None, None, accept).await?;
        if status.is_success() {
            Ok((content_type, body))
        } else {
            Err(Failure::from_answer(status, &body))
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Result<Value, Failure> {
        let (status, _, bytes) = self.send(method, path, body, idempotency_key, "application/json").await?;
        if !status.is_success() {
            return Err(Failure::from_answer(status, &bytes));
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| internal(format!("the API answered with bad JSON: {e}")))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
        accept: &str,
    ) -> Result<(StatusCode, String, Vec<u8>), Failure> {
        let mut req = Request::builder().method(method).uri(path).header(header::ACCEPT, accept);
        if let Some(id) = api::request_id::current() {
            // The API call is part of the page's request: one id in the log, on movements and in the audit trail.
            req = req.header(api::request_id::HEADER, id);
        }
        if let Some(key) = idempotency_key {
            req = req.header("idempotency-key", key);
        }
        let body = match body {
            Some(v) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(v).map_err(|e| internal(e.to_string()))?)
            }
            None => Body::empty(),
        };
        let mut req = req.body(body).map_err(|e| internal(format!("bad API path {path:?}: {e}")))?;
        req.extensions_mut().insert(InternalCaller(self.caller.clone()));
        let resp = match self.api.clone().oneshot(req).await {
            Ok(resp) => resp,
            Err(never) => match never {},
        };
        let status = resp.status();
        let content_type =
            resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), MAX_ANSWER_BYTES)
            .await
            .map_err(|e| internal(format!("could not read the API's answer: {e}")))?;
        Ok((status, content_type, bytes.to_vec()))
    }
}

fn internal(detail: String) -> Failure {
    Failure { status: StatusCode::INTERNAL_SERVER_ERROR, code: "internal".into(), detail, errors: Vec::new() }
}

/// Percent-encodes one path segment or query value (SKUs and location paths may hold `/`, spaces, `#`…).
pub fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}
