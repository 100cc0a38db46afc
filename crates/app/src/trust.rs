//! Trust: API keys (made, checked, listed, revoked), the caller a key stands for, and the audit trail with its
//! writer.
//!
//! Key secrets are 32 random bytes from the OS, shown once; only their SHA-256 is stored. A node keeps the live
//! keys it has seen for at most a second ([`crate::cache`]): a revocation takes effect at once on the node that made
//! it, and within a second on every other node.
//!
//! The audit trail is written by one writer in batches, after the change it records has committed: one extra
//! transaction per batch of concurrent entries rather than per request. The caller waits until its entry's batch
//! is written, so an acknowledged change has its audit row; a process killed between a change's commit and that
//! write can still lose the row, but then the client never saw a success. Orders and holds, the hot path, hand
//! their entry to the write path instead ([`PendingAudit`]): it is written in the change's own transaction. Stock
//! movements never depend on it, as each carries its actor and request id inside the ledger's own transaction.

use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use crate::error::{AppError, AppResult};
use crate::page::{Page, PageRequest};
use crate::store::Store;
pub use crate::trust_store::{
    ApiKeyRecord, AuditFilter, AuditRecord, NewApiKey, NewAuditEntry, NewWebSession, Role, TrustStore, WebSessionRecord,
};
use crate::{Actor, App};

/// Every secret starts with this, so that a leaked one is recognizable (and scanners can find it).
pub const SECRET_PREFIX: &str = "sr_";
const SECRET_BYTES: usize = 32;
/// Characters of the secret kept in the clear to tell keys apart: the prefix and 5 random characters.
const SHOWN_CHARS: usize = 8;
const MAX_NAME_LEN: usize = 100;

/// Who is asking: the key behind a request.
#[derive(Debug, Clone, PartialEq)]
pub struct Caller {
    pub key_id: i64,
    pub name: String,
    pub role: Role,
    /// The channel code of a channel key.
    pub channel: Option<String>,
}

impl Caller {
    /// The actor recorded on movements and in the audit trail.
    pub fn actor(&self, request_id: Option<String>) -> Actor {
        Actor { name: actor_name(self.key_id, &self.name), request_id }
    }
}

/// How a key is named on movements: its name and id, so that two keys of the same name stay apart.
pub fn actor_name(key_id: i64, name: &str) -> String {
    format!("{name} (key {key_id})")
}

/// How long a web admin session lasts after sign-in: a working shift and some.
pub const WEB_SESSION_HOURS: i64 = 12;

/// A web admin session just opened: the secrets go to the browser once and are stored only as hashes.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// The cookie's value.
    pub token: String,
    /// What every form of the session sends back.
    pub csrf: String,
    pub caller: Caller,
    pub expires_at: DateTime<Utc>,
}

/// The caller a stored key stands for at `now`, unless it is revoked or expired.
fn caller_of(key: ApiKeyRecord, now: DateTime<Utc>) -> Result<Caller, Rejection> {
    if key.revoked_at.is_some() {
        return Err(Rejection::Revoked);
    }
    if key.expires_at.is_some_and(|t| t <= now) {
        return Err(Rejection::Expired);
    }
    Ok(Caller { key_id: key.id, name: key.name, role: key.role, channel: key.channel })
}

/// An audit entry a request hands to the write path, to be written in the same transaction as the change it
/// records (the API's audit layer makes one for each changing request; the hot use cases, placing orders and holds,
/// pass it on). Once written there, the layer does not write it again: the request waits for one commit, not two.
#[derive(Debug)]
pub struct PendingAudit {
    entry: NewAuditEntry,
    written: std::sync::atomic::AtomicBool,
}

impl PendingAudit {
    pub fn new(entry: NewAuditEntry) -> std::sync::Arc<PendingAudit> {
        std::sync::Arc::new(PendingAudit { entry, written: Default::default() })
    }

    /// Whether the write path stored the entry with its change.
    pub fn written(&self) -> bool {
        self.written.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn entry(&self) -> &NewAuditEntry {
        &self.entry
    }

    pub(crate) fn mark_written(&self) {
        self.written.store(true, std::sync::atomic::Ordering::Release);
        crate::metrics::METRICS.audit_entries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Why a secret was not accepted. The API answers each with the same 401, so that nobody learns which keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Unknown,
    Revoked,
    Expired,
}

/// Hex SHA-256 of a secret: what is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    use std::fmt::Write;
    let mut hex = String::with_capacity(64);
    for b in Sha256::digest(secret.as_bytes()) {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// A fresh random secret.
pub fn new_secret() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// What a caller asks for when making a key.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewKeyRequest {
    pub name: String,
    pub role: Role,
    /// Required for a `channel` key, refused for every other role: the channel's code.
    #[serde(default)]
    pub channel: Option<String>,
    /// RFC 3339; the key stops working then. Absent: never expires.
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiKeyView {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub channel: Option<String>,
    /// The first characters of the secret.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<ApiKeyRecord> for ApiKeyView {
    fn from(r: ApiKeyRecord) -> Self {
        ApiKeyView {
            id: r.id,
            name: r.name,
            role: r.role,
            channel: r.channel,
            prefix: r.prefix,
            created_by: r.created_by,
            created_at: r.created_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
        }
    }
}

/// A new key with its secret: the only time the secret is shown.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub key: ApiKeyView,
    /// Send as `Authorization: Bearer <secret>`. Shown once; only its hash is kept.
    pub secret: String,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditView {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_key_id: Option<i64>,
    pub actor: String,
    pub request_id: Option<String>,
    pub entity: String,
    pub entity_id: Option<String>,
    pub action: String,
    pub status: u16,
    pub summary: String,
}

impl From<AuditRecord> for AuditView {
    fn from(r: AuditRecord) -> Self {
        let e = r.entry;
        AuditView {
            id: r.id,
            at: e.at,
            actor_key_id: e.actor_key_id,
            actor: e.actor_name,
            request_id: e.request_id,
            entity: e.entity,
            entity_id: e.entity_id,
            action: e.action,
            status: e.status,
            summary: e.summary,
        }
    }
}

fn validate_key(req: &NewKeyRequest, now: DateTime<Utc>) -> AppResult<()> {
    let mut errors = vec![];
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        errors.push(domain::FieldError::new("name", format!("must be 1 to {MAX_NAME_LEN} printable characters")));
    }
    match (req.role, req.channel.as_deref()) {
        (Role::Channel, None) => errors.push(domain::FieldError::new("channel", "a channel key names its channel")),
        (Role::Channel, Some(_)) | (_, None) => {}
        (_, Some(_)) => errors.push(domain::FieldError::new("channel", "only a channel key names a channel")),
    }
    if req.expires_at.is_some_and(|t| t <= now) {
        errors.push(domain::FieldError::new("expires_at", "must be in the future"));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(errors))
    }
}

impl App {
    /// Makes a key and returns it with its secret (which is not kept). `created_by` names who made it.
    pub async fn create_api_key(&self, req: NewKeyRequest, created_by: &str) -> AppResult<CreatedApiKey> {
        self.create_api_key_with_secret(req, created_by, new_secret()).await
    }

    /// [`App::create_api_key`] with a given secret: for `STOCKROOM_ADMIN_KEY` and the demo key.
    pub async fn create_api_key_with_secret(
        &self,
        req: NewKeyRequest,
        created_by: &str,
        secret: String,
    ) -> AppResult<CreatedApiKey> {
        let now = Utc::now();
        validate_key(&req, now)?;
        if secret.len() < 20 || secret.len() > 200 || !secret.chars().all(|c| c.is_ascii_graphic()) {
            return Err(AppError::field("secret", "must be 20 to 200 printable ASCII characters"));
        }
        if let Some(code) = &req.channel {
            // The channel must exist now; a key for a channel deleted later simply sees nothing.
            self.channel(code).await.map_err(|e| match e {
                AppError::NotFound { .. } => {
                    AppError::UnknownReference(vec![domain::FieldError::new("channel", "no channel has this code")])
                }
                e => e,
            })?;
        }
        let key = NewApiKey {
            name: req.name.trim().to_string(),
            role: req.role,
            channel: req.channel,
            secret_hash: hash_secret(&secret),
            prefix: secret.chars().take(SHOWN_CHARS).collect(),
            created_by: created_by.to_string(),
            expires_at: req.expires_at,
        };
        let record = self.store.create_api_key(&key, now).await.map_err(|e| match e {
            crate::StoreError::Conflict { .. } => AppError::field("secret", "another key has this secret"),
            e => e.into(),
        })?;
        Ok(CreatedApiKey { key: record.into(), secret })
    }

    /// The caller a secret stands for, or why not.
    pub async fn authenticate(&self, secret: &str) -> AppResult<Result<Caller, Rejection>> {
        if secret.len() > 200 {
            return Ok(Err(Rejection::Unknown));
        }
        let hash = hash_secret(secret);
        if let Some(key) = self.keys.get(&hash) {
            return Ok(caller_of(key, Utc::now()));
        }
        // Only live keys are cached: an unknown secret always asks the database (a key made on another node a
        // moment ago works at once), and guessing cannot fill the cache.
        let generation = self.keys.generation();
        let Some(key) = self.store.api_key_by_hash(&hash).await? else {
            return Ok(Err(Rejection::Unknown));
        };
        if key.revoked_at.is_none() {
            self.keys.put(generation, hash, key.clone());
        }
        Ok(caller_of(key, Utc::now()))
    }

    /// Opens a web admin session for the key `secret` names: the cookie's token and the session's CSRF token
    /// (both shown only now), or why the key was refused. Expired sessions are swept on the way.
    pub async fn open_web_session(&self, secret: &str) -> AppResult<Result<WebSession, Rejection>> {
        let caller = match self.authenticate(secret).await? {
            Ok(caller) => caller,
            Err(rejection) => return Ok(Err(rejection)),
        };
        let now = Utc::now();
        self.store.purge_web_sessions(now).await?;
        let (token, csrf) = (new_secret(), new_secret());
        let expires_at = now + chrono::Duration::hours(WEB_SESSION_HOURS);
        let session = NewWebSession {
            token_hash: hash_secret(&token),
            key_id: caller.key_id,
            csrf: csrf.clone(),
            created_at: now,
            expires_at,
        };
        self.store.create_web_session(&session).await?;
        Ok(Ok(WebSession { token, csrf, caller, expires_at }))
    }

    /// The caller and CSRF token of a live web session: `None` when the token is unknown, the session expired, or
    /// its key has been revoked or has expired since.
    pub async fn web_session(&self, token: &str) -> AppResult<Option<(Caller, String)>> {
        if token.len() > 200 {
            return Ok(None);
        }
        let now = Utc::now();
        let Some(record) = self.store.web_session(&hash_secret(token), now).await? else {
            return Ok(None);
        };
        Ok(caller_of(record.key, now).ok().map(|caller| (caller, record.csrf)))
    }

    /// Signs a web session out; an unknown token is already signed out.
    pub async fn close_web_session(&self, token: &str) -> AppResult<()> {
        Ok(self.store.delete_web_session(&hash_secret(token)).await?)
    }

    pub async fn list_api_keys(&self, page: PageRequest) -> AppResult<Page<ApiKeyView>> {
        let rows = self.store.list_api_keys(page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    pub async fn api_key(&self, id: i64) -> AppResult<ApiKeyView> {
        match self.store.get_api_key(id).await? {
            Some(k) => Ok(k.into()),
            None => Err(AppError::NotFound { entity: "api key", key: id.to_string() }),
        }
    }

    /// Revokes a key at once; revoking twice keeps the first time.
    pub async fn revoke_api_key(&self, id: i64) -> AppResult<ApiKeyView> {
        let revoked = self.store.revoke_api_key(id, Utc::now()).await;
        self.keys.clear();
        match revoked? {
            Some(k) => Ok(k.into()),
            None => Err(AppError::NotFound { entity: "api key", key: id.to_string() }),
        }
    }

    /// Writes an audit entry, batched with any others written at the same time, and returns once it is stored
    /// (or, if the database refuses it after retries, logged as lost).
    pub async fn audit(&self, entry: NewAuditEntry) {
        self.audit.record(entry).await;
    }

    /// Audit entries, after every entry queued so far is written.
    pub async fn list_audit(&self, filter: AuditFilter, page: PageRequest) -> AppResult<Page<AuditView>> {
        self.audit.flush().await;
        let rows = self.store.list_audit(&filter, page.after, page.fetch_limit()).await?;
        let page = page.finish(rows, |r| r.id);
        Ok(Page { items: page.items.into_iter().map(Into::into).collect(), next_cursor: page.next_cursor })
    }

    /// Waits until every audit entry queued so far is written (at shutdown, and before reads).
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// Webhook deliveries waiting to be sent, in the whole database.
    pub async fn webhook_backlog(&self) -> AppResult<i64> {
        Ok(self.store.webhook_backlog().await?)
    }

    /// Remembers that a channel's key placed a hold.
    pub async fn set_hold_channel(&self, hold: i64, channel: &str) -> AppResult<()> {
        Ok(self.store.set_hold_channel(hold, channel).await?)
    }

    /// The channel whose key placed a hold, if a channel key did.
    pub async fn hold_channel(&self, hold: i64) -> AppResult<Option<String>> {
        Ok(self.store.hold_channel(hold).await?)
    }
}

enum AuditMsg {
    Entry(NewAuditEntry, oneshot::Sender<()>),
    Flush(oneshot::Sender<()>),
}

/// Entries written per transaction at most.
const AUDIT_BATCH: usize = 500;
/// Entries waiting to be written at most: beyond it, a request waits for room rather than memory growing.
const AUDIT_QUEUE: usize = 10_000;

/// The audit trail's writer: queued entries are written in batches by one task.
#[derive(Clone)]
pub(crate) struct AuditWriter {
    tx: mpsc::Sender<AuditMsg>,
}

impl AuditWriter {
    pub(crate) fn start(store: std::sync::Arc<dyn Store>) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<AuditMsg>(AUDIT_QUEUE);
        tokio::spawn(async move {
            let mut batch = Vec::new();
            let mut waiting = Vec::new();
            while let Some(first) = rx.recv().await {
                let mut next = Some(first);
                while let Some(msg) = next.take() {
                    match msg {
                        AuditMsg::Entry(e, done) => {
                            batch.push(e);
                            waiting.push(done);
                        }
                        AuditMsg::Flush(done) => waiting.push(done),
                    }
                    if batch.len() < AUDIT_BATCH {
                        next = rx.try_recv().ok();
                    }
                }
                if !batch.is_empty() {
                    // A failed write is retried a few times; after that the entries are logged instead (without
                    // secrets: entries never hold any), so that a broken database cannot pile them up forever.
                    let mut attempt = 0;
                    loop {
                        match store.append_audit(&batch).await {
                            Ok(()) => break,
                            Err(e) if attempt < 3 => {
                                attempt += 1;
                                tracing::warn!(error = %e, attempt, "could not write audit entries; retrying");
                                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                            }
                            Err(e) => {
                                for entry in &batch {
                                    tracing::error!(error = %e, ?entry, "audit entry lost");
                                }
                                break;
                            }
                        }
                    }
                    crate::metrics::METRICS
                        .audit_entries
                        .fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    batch.clear();
                }
                for done in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
        });
        AuditWriter { tx }
    }

    async fn record(&self, entry: NewAuditEntry) {
        let (done, written) = oneshot::channel();
        if let Err(mpsc::error::SendError(AuditMsg::Entry(entry, _))) = self.tx.send(AuditMsg::Entry(entry, done)).await
        {
            tracing::error!(?entry, "audit writer stopped; entry lost");
            return;
        }
        let _ = written.await;
    }

    async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(AuditMsg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashes_are_hex_sha256() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with(SECRET_PREFIX) && a.len() == SECRET_PREFIX.len() + 43);
        assert_eq!(hash_secret("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn channel_keys_and_only_they_name_a_channel() {
        let now = Utc::now();
        let req = |role, channel: Option<&str>| NewKeyRequest {
            name: "k".into(),
            role,
            channel: channel.map(str::to_string),
            expires_at: None,
        };
        assert!(validate_key(&req(Role::Channel, Some("web")), now).is_ok());
        assert!(validate_key(&req(Role::Channel, None), now).is_err());
        assert!(validate_key(&req(Role::Staff, Some("web")), now).is_err());
        assert!(validate_key(&req(Role::Admin, None), now).is_ok());
        let past = NewKeyRequest { expires_at: Some(now - chrono::TimeDelta::seconds(1)), ..req(Role::Admin, None) };
        assert!(validate_key(&past, now).is_err());
    }
}
