//! Channels: their settings and prices, availability rules, live availability with its explanation, the pull feed
//! and the streamed snapshot export. The OpenAPI paths of this module are collected in [`ChannelsDoc`].

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi, ToSchema};

use app::channels::{
    AvailabilityView, ChannelPatch, ChannelView, FeedItem, FeedPage, NewChannel, PriceView, RuleScope, RulesPreview,
    RulesRequest, RulesView,
};
use app::page::{Page, PageRequest};
use app::{App, AppError};

use crate::extract::{Json, Query};
use crate::problem::{ApiError, ApiResult, ProblemSchema};

/// Rows read from the store per step of a snapshot export: the export's memory stays this size, whatever the
/// catalog's.
const SNAPSHOT_PAGE: u32 = 1000;

pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/channels", get(list_channels).post(create_channel))
        .route("/v1/channels/{code}", get(get_channel).patch(update_channel).delete(delete_channel))
        .route("/v1/channels/{code}/rules", get(list_rules).put(put_rules).delete(delete_rules))
        .route("/v1/channels/{code}/rules/preview", post(preview_rules))
        .route("/v1/channels/{code}/availability", get(feed))
        .route("/v1/channels/{code}/availability/{sku}", get(availability))
        .route("/v1/channels/{code}/snapshot", get(snapshot))
        .route("/v1/channels/{code}/prices/{sku}", get(price))
}

#[derive(OpenApi)]
#[openapi(
    paths(list_channels, create_channel, get_channel, update_channel, delete_channel, list_rules, put_rules,
        preview_rules, delete_rules, feed, availability, snapshot, price),
    components(schemas(domain::availability::RuleSet)),
    tags((name = "channels", description = "Web shops and markets: warehouses, prices, availability rules, the feed")),
)]
pub struct ChannelsDoc;

pub use super::PageQuery as ListQuery;

#[utoipa::path(get, path = "/v1/channels", tag = "channels", params(ListQuery),
    responses((status = 200, body = Page<ChannelView>), (status = 400, body = ProblemSchema)))]
pub async fn list_channels(State(app): State<App>, Query(q): Query<ListQuery>) -> ApiResult<impl IntoResponse> {
    let page = PageRequest::parse(q.after.as_deref(), q.limit)?;
    Ok(axum::Json(app.list_channels(page).await?))
}

#[utoipa::path(post, path = "/v1/channels", tag = "channels", request_body = NewChannel,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses((status = 201, body = ChannelView), (status = 409, description = "duplicate_channel", body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference (a warehouse or SKU)", body = ProblemSchema)))]
pub async fn create_channel(State(app): State<App>, Json(req): Json<NewChannel>) -> ApiResult<impl IntoResponse> {
    let c = app.create_channel(req).await?;
    let location = format!("/v1/channels/{}", c.code);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], axum::Json(c)))
}

#[utoipa::path(get, path = "/v1/channels/{code}", tag = "channels", params(("code" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = ProblemSchema)))]
pub async fn get_channel(State(app): State<App>, Path(code): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.channel(&code).await?))
}

#[utoipa::path(patch, path = "/v1/channels/{code}", tag = "channels", request_body = ChannelPatch,
    params(("code" = String, Path)),
    responses((status = 200, body = ChannelView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn update_channel(
    State(app): State<App>,
    Path(code): Path<String>,
    Json(patch): Json<ChannelPatch>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.update_channel(&code, patch).await?))
}

#[utoipa::path(delete, path = "/v1/channels/{code}", tag = "channels", params(("code" = String, Path)),
    responses((status = 204, description = "Deleted with its rules and feed"), (status = 404, body = ProblemSchema)))]
pub async fn delete_channel(State(app): State<App>, Path(code): Path<String>) -> ApiResult<impl IntoResponse> {
    app.delete_channel(&code).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/v1/channels/{code}/rules", tag = "channels", params(("code" = String, Path)),
    responses((status = 200, body = Vec<RulesView>), (status = 404, body = ProblemSchema)))]
pub async fn list_rules(State(app): State<App>, Path(code): Path<String>) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.channel_rules(&code).await?))
}

#[utoipa::path(put, path = "/v1/channels/{code}/rules", tag = "channels", request_body = RulesRequest,
    params(("code" = String, Path)),
    responses((status = 200, description = "Set; the affected availability is recomputed", body = RulesView),
        (status = 404, body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference (a warehouse or SKU)", body = ProblemSchema)))]
pub async fn put_rules(
    State(app): State<App>,
    Path(code): Path<String>,
    Json(req): Json<RulesRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.put_channel_rules(&code, req).await?))
}

#[utoipa::path(post, path = "/v1/channels/{code}/rules/preview", tag = "channels", request_body = RulesRequest,
    params(("code" = String, Path)),
    responses((status = 200, description = "What saving these rules would change, computed without saving them: \
            the availability of the SKUs in the rule's scope (at most 200) under the current and the proposed rules",
            body = RulesPreview),
        (status = 404, body = ProblemSchema),
        (status = 422, description = "validation_failed, unknown_reference (a warehouse or SKU), as saving them", body = ProblemSchema)))]
pub async fn preview_rules(
    State(app): State<App>,
    Path(code): Path<String>,
    Json(req): Json<RulesRequest>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.preview_channel_rules(&code, req).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RuleKeyQuery {
    pub scope: RuleScope,
    pub key: Option<String>,
}

#[utoipa::path(delete, path = "/v1/channels/{code}/rules", tag = "channels", params(("code" = String, Path), RuleKeyQuery),
    responses((status = 204, description = "Removed"), (status = 404, body = ProblemSchema)))]
pub async fn delete_rules(
    State(app): State<App>,
    Path(code): Path<String>,
    Query(q): Query<RuleKeyQuery>,
) -> ApiResult<impl IntoResponse> {
    app.delete_channel_rules(&code, q.scope, q.key.as_deref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExplainQuery {
    /// Include every rule's effect, step by step.
    pub explain: Option<bool>,
}

#[utoipa::path(get, path = "/v1/channels/{code}/availability/{sku}", tag = "channels",
    params(("code" = String, Path), ("sku" = String, Path), ExplainQuery),
    responses((status = 200, description = "Computed live", body = AvailabilityView), (status = 404, body = ProblemSchema)))]
pub async fn availability(
    State(app): State<App>,
    Path((code, sku)): Path<(String, String)>,
    Query(q): Query<ExplainQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.channel_availability(&code, &sku, q.explain.unwrap_or(false)).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FeedQuery {
    /// The `next_cursor` of the previous page; from the beginning when absent.
    pub updated_since: Option<String>,
    pub limit: Option<u32>,
}

/// A bad cursor is the client's mistake in the query: 400, like any other bad query parameter.
fn cursor_error(e: AppError) -> ApiError {
    match e {
        AppError::Validation(errors) if errors.iter().any(|f| f.field == "updated_since") => {
            let mut err =
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_cursor", "updated_since is not a cursor of this feed");
            err.errors = errors;
            err
        }
        e => e.into(),
    }
}

#[utoipa::path(get, path = "/v1/channels/{code}/availability", tag = "channels", params(("code" = String, Path), FeedQuery),
    responses((status = 200, description = "Changes after the cursor, oldest first", body = FeedPage),
        (status = 400, description = "invalid_cursor, invalid_query", body = ProblemSchema), (status = 404, body = ProblemSchema)))]
pub async fn feed(
    State(app): State<App>,
    Path(code): Path<String>,
    Query(q): Query<FeedQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.availability_feed(&code, q.updated_since.as_deref(), q.limit).await.map_err(cursor_error)?))
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotFormat {
    Jsonl,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SnapshotQuery {
    /// `jsonl` (one JSON object a line; the default) or `csv`.
    pub format: Option<SnapshotFormat>,
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn encode(format: SnapshotFormat, items: &[FeedItem]) -> Bytes {
    let mut out = String::with_capacity(items.len() * 96);
    for i in items {
        match format {
            SnapshotFormat::Jsonl => {
                out.push_str(&serde_json::to_string(i).unwrap_or_default());
                out.push('\n');
            }
            SnapshotFormat::Csv => {
                out.push_str(&format!(
                    "{},{},{},{},{}\n",
                    csv_field(&i.sku),
                    i.quantity,
                    i.status.as_str(),
                    i.listed,
                    i.updated_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                ));
            }
        }
    }
    Bytes::from(out)
}

#[utoipa::path(get, path = "/v1/channels/{code}/snapshot", tag = "channels", params(("code" = String, Path), SnapshotQuery),
    responses((status = 200, description = "Every row of the channel, streamed as JSON lines or (`format=csv`) CSV",
            content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 404, body = ProblemSchema)))]
pub async fn snapshot(
    State(app): State<App>,
    Path(code): Path<String>,
    Query(q): Query<SnapshotQuery>,
) -> ApiResult<Response> {
    let format = q.format.unwrap_or(SnapshotFormat::Jsonl);
    // The first page is read before answering, so that an unknown channel is a 404 rather than a broken stream.
    let (first, next) = app.availability_snapshot_page(&code, None, SNAPSHOT_PAGE).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        if let SnapshotFormat::Csv = format {
            if tx.send(Ok(Bytes::from_static(b"sku,quantity,status,listed,updated_at\n"))).await.is_err() {
                return;
            }
        }
        if tx.send(Ok(encode(format, &first))).await.is_err() {
            return;
        }
        let mut after = next;
        while let Some(a) = after {
            match app.availability_snapshot_page(&code, Some(a), SNAPSHOT_PAGE).await {
                Ok((items, next)) => {
                    if tx.send(Ok(encode(format, &items))).await.is_err() {
                        return;
                    }
                    after = next;
                }
                Err(e) => {
                    tracing::error!(error = %e, "snapshot export failed midway");
                    let _ = tx.send(Err(std::io::Error::other("snapshot export failed"))).await;
                    return;
                }
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let content_type = match format {
        SnapshotFormat::Jsonl => "application/x-ndjson",
        SnapshotFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, content_type)], Body::from_stream(stream)).into_response())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PriceQuery {
    /// A customer group with a price list on the channel.
    pub customer_group: Option<String>,
}

#[utoipa::path(get, path = "/v1/channels/{code}/prices/{sku}", tag = "channels",
    params(("code" = String, Path), ("sku" = String, Path), PriceQuery),
    responses((status = 200, body = PriceView), (status = 404, body = ProblemSchema), (status = 422, body = ProblemSchema)))]
pub async fn price(
    State(app): State<App>,
    Path((code, sku)): Path<(String, String)>,
    Query(q): Query<PriceQuery>,
) -> ApiResult<impl IntoResponse> {
    Ok(axum::Json(app.channel_price(&code, &sku, q.customer_group.as_deref()).await?))
}
