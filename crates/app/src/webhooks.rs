//! Webhook use cases: registering endpoints (validated URL, filters, a Standard Webhooks secret), their delivery
//! log, replays, and the signature every message carries. The delivery worker lives in [`worker`].

pub mod worker;

use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::catalog::double_option;
use crate::error::{AppError, AppResult, StoreError};
use crate::page::{Page, PageRequest};
use crate::webhook_store::{AttemptRecord, EndpointFields, EndpointRecord, EventSelector, OutboxRecord};
use crate::App;
use domain::Problems;

pub use worker::{WebhookConfig, WebhookWorker};

/// Bytes of key in a generated secret (Standard Webhooks recommends 24 to 64).
const SECRET_BYTES: usize = 32;
const SECRET_PREFIX: &str = "whsec_";
const MAX_URL_LEN: usize = 2048;
/// The most events one replay request may send again.
pub const MAX_REPLAY: u32 = 10_000;

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// Where events are POSTed: an absolute http or https URL.
    pub url: String,
    /// `whsec_` + base64 of 24 to 64 random bytes; generated when absent.
    #[serde(default)]
    pub secret: Option<String>,
    /// Event types (`order.created`) or prefixes (`order.*`); empty or absent: every event.
    #[serde(default)]
    pub event_types: Vec<String>,
    /// Only events of this channel (an event's `channel`, or an order event's `source`).
    #[serde(default)]
    pub channel: Option<String>,
    /// True when absent.
    #[serde(default)]
    pub enabled: Option<bool>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EndpointPatch {
    pub url: Option<String>,
    pub event_types: Option<Vec<String>>,
    /// `null` removes the channel filter.
    #[serde(default, deserialize_with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub channel: Option<Option<String>>,
    /// Enabling an endpoint resumes its pending deliveries and forgets its run of failures.
    pub enabled: Option<bool>,
}

/// Send events again: one event by id, or every matching event created in `[from, to)`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    #[serde(default)]
    pub event_id: Option<i64>,
    #[serde(default)]
    pub from: Option<DateTime<Utc>>,
    #[serde(default)]
    pub to: Option<DateTime<Utc>>,
}

/// An endpoint as listed and read: never with its secret.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointView {
    pub id: i64,
    pub url: String,
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub enabled: bool,
    /// Why it is disabled (by a request, or after failing for too long).
    pub disabled_reason: Option<String>,
    /// Start of the current run of failed attempts.
    pub failing_since: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// An endpoint with its signing secret: the answer to create and to the secret calls only.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_…`: verify `webhook-signature` with it.
    pub secret: String,
}

/// One attempt of the delivery log.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AttemptView {
    pub id: i64,
    pub delivery_id: i64,
    pub event_id: i64,
    pub event_type: String,
    /// The `webhook-id` header of the message.
    pub message_id: String,
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; absent when no answer came.
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// When it will be tried again; absent when delivered or given up.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReplayResult {
    /// New deliveries created (one per event sent again).
    pub deliveries: usize,
}

fn view(r: EndpointRecord) -> EndpointView {
    EndpointView {
        id: r.id,
        url: r.fields.url,
        event_types: r.fields.event_types,
        channel: r.fields.channel,
        enabled: r.fields.enabled,
        disabled_reason: r.fields.disabled_reason,
        failing_since: r.failing_since,
        created_at: r.created_at,
        updated_at: r.updated_at,
    }
}

fn with_secret(r: EndpointRecord) -> EndpointWithSecret {
    let secret = r.secret.clone();
    EndpointWithSecret { endpoint: view(r), secret }
}

/// A new random secret in Standard Webhooks form.
pub fn generate_secret() -> String {
    let key: [u8; SECRET_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// The key bytes of a `whsec_` secret.
fn secret_key(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix(SECRET_PREFIX)?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// The `webhook-signature` value: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")).
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &str) -> String {
    // The secret was validated when stored; an undecodable one signs with its raw bytes rather than not at all.
    let key = secret_key(secret).unwrap_or_else(|| secret.as_bytes().to_vec());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes a key of any length");
    mac.update(format!("{msg_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

/// The `webhook-id` of an event's message to an endpoint: the same on every retry and replay, so a receiver can
/// drop duplicates.
pub fn message_id(event_id: i64, endpoint_id: i64) -> String {
    format!("msg_{event_id}_{endpoint_id}")
}

/// The channel an event belongs to: its payload's `channel`, else an order event's `source`.
pub fn event_channel(event: &OutboxRecord) -> Option<&str> {
    event.payload.get("channel").or_else(|| event.payload.get("source")).and_then(|v| v.as_str())
}

/// Whether an event goes to an endpoint under its filters.
pub fn passes(endpoint: &EndpointRecord, event: &OutboxRecord) -> bool {
    domain::webhooks::event_passes(
        &endpoint.fields.event_types,
        endpoint.fields.channel.as_deref(),
        &event.topic,
        event_channel(event),
    )
}

fn validate_url(url: &str, p: &mut Problems) {
    if url.len() > MAX_URL_LEN {
        p.push("url", format!("must be at most {MAX_URL_LEN} characters"));
        return;
    }
    match url::Url::parse(url) {
        Err(e) => p.push("url", format!("is not an absolute URL: {e}")),
        Ok(u) if u.scheme() != "http" && u.scheme() != "https" => p.push("url", "must be an http or https URL"),
        Ok(u) if u.host_str().is_none_or(str::is_empty) => p.push("url", "must name a host"),
        Ok(u) if !u.username().is_empty() || u.password().is_some() => {
            p.push("url", "must not carry credentials; the signature authenticates us")
        }
        Ok(_) => {}
    }
}

fn validate_fields(f: &EndpointFields, p: &mut Problems) {
    validate_url(&f.url, p);
    if f.event_types.len() > domain::webhooks::MAX_PATTERNS {
        p.push("event_types", format!("at most {} patterns", domain::webhooks::MAX_PATTERNS));
    }
    for (i, t) in f.event_types.iter().enumerate() {
        if let Err(e) = domain::webhooks::validate_pattern(t) {
            p.push(format!("event_types[{i}]"), e);
        }
    }
    if let Some(c) = &f.channel {
        if c.is_empty() || c.len() > 100 || c.chars().any(char::is_whitespace) {
            p.push("channel", "must be a channel code: 1 to 100 characters, no spaces");
        }
    }
}

fn validate_secret(secret: &str, p: &mut Problems) {
    match secret_key(secret) {
        Some(k) if (24..=64).contains(&k.len()) => {}
        _ => p.push("secret", "must be whsec_ followed by base64 of 24 to 64 bytes"),
    }
}

fn not_found(id: i64) -> AppError {
    AppError::NotFound { entity: "webhook endpoint", key: id.to_string() }
}

fn store_not_found(id: i64) -> impl Fn(StoreError) -> AppError {
    move |e| match e {
        StoreError::NotFound => not_found(id),
        e => e.into(),
    }
}

impl App {
    pub async fn create_webhook_endpoint(&self, req: NewEndpoint) -> AppResult<EndpointWithSecret> {
        let mut fields = EndpointFields {
            url: req.url.trim().to_string(),
            event_types: req.event_types,
            channel: req.channel,
            enabled: req.enabled.unwrap_or(true),
            disabled_reason: None,
        };
        fields.event_types.sort();
        fields.event_types.dedup();
        if !fields.enabled {
            fields.disabled_reason = Some("disabled on request".into());
        }
        let mut p = Problems::default();
        validate_fields(&fields, &mut p);
        if let Some(s) = &req.secret {
            validate_secret(s, &mut p);
        }
        p.into_result().map_err(AppError::Validation)?;
        let secret = req.secret.unwrap_or_else(generate_secret);
        let rec = self.store.create_endpoint(&fields, &secret, Utc::now()).await?;
        Ok(with_secret(rec))
    }

    pub async fn list_webhook_endpoints(&self, page: PageRequest) -> AppResult<Page<EndpointView>> {
        let rows = self.store.list_endpoints(page.after, page.fetch_limit()).await?;
        Ok(page.finish(rows.into_iter().map(view).collect(), |e| e.id))
    }

    async fn endpoint_record(&self, id: i64) -> AppResult<EndpointRecord> {
        self.store.get_endpoint(id).await?.ok_or_else(|| not_found(id))
    }

    pub async fn webhook_endpoint(&self, id: i64) -> AppResult<EndpointView> {
        Ok(view(self.endpoint_record(id).await?))
    }

    /// The endpoint with its secret, for whoever has to set up verification.
    pub async fn webhook_endpoint_secret(&self, id: i64) -> AppResult<EndpointWithSecret> {
        Ok(with_secret(self.endpoint_record(id).await?))
    }

    pub async fn update_webhook_endpoint(&self, id: i64, patch: EndpointPatch) -> AppResult<EndpointView> {
        let current = self.endpoint_record(id).await?;
        let mut fields = current.fields.clone();
        if let Some(url) = patch.url {
            fields.url = url.trim().to_string();
        }
        if let Some(mut types) = patch.event_types {
            types.sort();
            types.dedup();
            fields.event_types = types;
        }
        if let Some(channel) = patch.channel {
            fields.channel = channel;
        }
        match patch.enabled {
            Some(true) => {
                fields.enabled = true;
                fields.disabled_reason = None;
            }
            Some(false) if fields.enabled => {
                fields.enabled = false;
                fields.disabled_reason = Some("disabled on request".into());
            }
            _ => {}
        }
        let mut p = Problems::default();
        validate_fields(&fields, &mut p);
        p.into_result().map_err(AppError::Validation)?;
        let rec = self.store.update_endpoint(id, &fields, Utc::now()).await.map_err(store_not_found(id))?;
        Ok(view(rec))
    }

    /// Replaces the secret with a new random one; messages signed from now on use it.
    pub async fn rotate_webhook_secret(&self, id: i64) -> AppResult<EndpointWithSecret> {
        let rec =
            self.store.set_endpoint_secret(id, &generate_secret(), Utc::now()).await.map_err(store_not_found(id))?;
        Ok(with_secret(rec))
    }

    pub async fn delete_webhook_endpoint(&self, id: i64) -> AppResult<()> {
        self.store.delete_endpoint(id).await.map_err(store_not_found(id))
    }

    /// The endpoint's delivery log, newest attempt first.
    pub async fn webhook_attempts(&self, id: i64, page: PageRequest) -> AppResult<Page<AttemptView>> {
        self.endpoint_record(id).await?;
        let rows = self.store.list_attempts(id, page.after, page.fetch_limit()).await?;
        let views = rows.into_iter().map(|a: AttemptRecord| AttemptView {
            message_id: message_id(a.event_id, id),
            id: a.id,
            delivery_id: a.delivery_id,
            event_id: a.event_id,
            event_type: a.topic,
            attempted_at: a.attempted_at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
            next_attempt_at: a.next_attempt_at,
        });
        Ok(page.finish(views.collect(), |a| a.id))
    }

    pub async fn replay_webhook(&self, id: i64, req: ReplayRequest) -> AppResult<ReplayResult> {
        // An unknown endpoint is a 404 whatever the body says.
        self.endpoint_record(id).await?;
        let selector = match (req.event_id, req.from, req.to) {
            (Some(e), None, None) => EventSelector::One(e),
            (Some(_), _, _) => return Err(AppError::field("event_id", "give event_id, or from and to, not both")),
            (None, Some(from), Some(to)) if from < to => EventSelector::Range { from, to },
            (None, Some(_), Some(_)) => return Err(AppError::field("to", "must be after from")),
            (None, None, _) => return Err(AppError::field("from", "give event_id, or both from and to")),
            (None, Some(_), None) => return Err(AppError::field("to", "give event_id, or both from and to")),
        };
        let n = self.store.replay_events(id, selector, MAX_REPLAY, &passes, Utc::now()).await.map_err(|e| match e {
            StoreError::NotFound => match selector {
                EventSelector::One(e) => {
                    AppError::UnknownReference(vec![domain::FieldError::new("event_id", format!("no event {e}"))])
                }
                EventSelector::Range { .. } => not_found(id),
            },
            StoreError::Conflict { .. } => AppError::Conflict {
                code: "replay_too_large",
                detail: format!("more than {MAX_REPLAY} events in the range; replay a shorter one"),
                errors: vec![domain::FieldError::new("to", "range too long")],
            },
            e => e.into(),
        })?;
        Ok(ReplayResult { deliveries: n })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification's reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn generated_secrets_are_valid_and_differ() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        let mut p = Problems::default();
        validate_secret(&a, &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn urls_must_be_http_or_https_with_a_host() {
        for (url, ok) in [
            ("https://example.org/hook", true),
            ("http://127.0.0.1:9000/x", true),
            ("ftp://example.org", false),
            ("example.org/hook", false),
            ("https://user:pw@example.org", false),
            ("javascript:alert(1)", false),
        ] {
            let mut p = Problems::default();
            validate_url(url, &mut p);
            assert_eq!(p.is_empty(), ok, "{url}");
        }
    }
}
