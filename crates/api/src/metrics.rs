//! `/metrics` in the Prometheus text format, written by hand: request counts and latencies per route, ledger
//! batch sizes, the webhook backlog, expired holds and audit entries.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use app::metrics::{BATCH_BUCKETS, METRICS};
use app::App;

use crate::problem::ApiResult;

/// Upper bounds of the latency histogram's buckets, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteStats {
    /// Requests by status code.
    statuses: BTreeMap<u16, u64>,
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

/// Request statistics per (method, route pattern).
#[derive(Default)]
pub struct HttpMetrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

impl HttpMetrics {
    fn record(&self, method: &str, route: &str, status: u16, seconds: f64) {
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let s = routes.entry((method.to_string(), route.to_string())).or_default();
        *s.statuses.entry(status).or_default() += 1;
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if seconds <= *b {
                s.buckets[i] += 1;
            }
        }
        s.count += 1;
        s.sum_seconds += seconds;
    }
}

pub fn http() -> &'static HttpMetrics {
    static M: std::sync::OnceLock<HttpMetrics> = std::sync::OnceLock::new();
    M.get_or_init(HttpMetrics::default)
}

/// Middleware: counts every request by its route pattern (never the raw path, which would grow without bound).
pub async fn layer(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    http().record(&method, &route, resp.status().as_u16(), started.elapsed().as_secs_f64());
    resp
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Renders every metric.
pub fn render(webhook_backlog: Option<i64>) -> String {
    let mut out = String::new();
    out.push_str("# HELP stockroom_http_requests_total HTTP requests by method, route and status.\n");
    out.push_str("# TYPE stockroom_http_requests_total counter\n");
    let routes = http().routes.lock().unwrap_or_else(|e| e.into_inner());
    for ((m, r), s) in routes.iter() {
        for (status, n) in &s.statuses {
            let _ = writeln!(
                out,
                "stockroom_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                esc(m),
                esc(r)
            );
        }
    }
    out.push_str("# HELP stockroom_http_request_duration_seconds Time to answer, by method and route.\n");
    out.push_str("# TYPE stockroom_http_request_duration_seconds histogram\n");
    for ((m, r), s) in routes.iter() {
        let labels = format!("method=\"{}\",route=\"{}\"", esc(m), esc(r));
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ =
                writeln!(out, "stockroom_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}", s.buckets[i]);
        }
        let _ = writeln!(out, "stockroom_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", s.count);
        let _ = writeln!(out, "stockroom_http_request_duration_seconds_sum{{{labels}}} {}", s.sum_seconds);
        let _ = writeln!(out, "stockroom_http_request_duration_seconds_count{{{labels}}} {}", s.count);
    }
    drop(routes);
    out.push_str("# HELP stockroom_ledger_batch_size Commands per ledger batch (one transaction each).\n");
    out.push_str("# TYPE stockroom_ledger_batch_size histogram\n");
    let mut cumulative = 0;
    for (i, b) in BATCH_BUCKETS.iter().enumerate() {
        cumulative += METRICS.batch_buckets[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "stockroom_ledger_batch_size_bucket{{le=\"{b}\"}} {cumulative}");
    }
    let batches = METRICS.batches.load(Ordering::Relaxed);
    let _ = writeln!(out, "stockroom_ledger_batch_size_bucket{{le=\"+Inf\"}} {batches}");
    let _ = writeln!(out, "stockroom_ledger_batch_size_sum {}", METRICS.batch_commands.load(Ordering::Relaxed));
    let _ = writeln!(out, "stockroom_ledger_batch_size_count {batches}");
    let counters = [
        (
            "stockroom_holds_expired_total",
            "Holds ended by the expiry sweep.",
            METRICS.holds_expired.load(Ordering::Relaxed),
        ),
        ("stockroom_audit_entries_total", "Audit entries written.", METRICS.audit_entries.load(Ordering::Relaxed)),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    if let Some(backlog) = webhook_backlog {
        let _ = writeln!(
            out,
            "# HELP stockroom_webhook_backlog Webhook deliveries waiting to be sent.\n# TYPE stockroom_webhook_backlog gauge\nstockroom_webhook_backlog {backlog}"
        );
    }
    out
}

/// Prometheus metrics of this process (and the webhook backlog of the whole database).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain", body = String)))]
pub async fn metrics(State(app): State<App>) -> ApiResult<impl IntoResponse> {
    let backlog = app.webhook_backlog().await.ok();
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], render(backlog)))
}
