//! The store trait of trust: API keys (kept as hashes of their secrets), the append-only audit trail, and which
//! channel owns a hold.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::{HoldId, StoreResult};

/// What a key may do. The policy table of the API maps every endpoint to the roles it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including keys, webhooks and the audit trail.
    Admin,
    /// Catalog, orders, customers, purchasing and reports.
    Staff,
    /// Levels, moves, pick lists, receipts and counts.
    Warehouse,
    /// One channel's orders, holds, availability and feed, nothing else.
    Channel,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Staff, Role::Warehouse, Role::Channel];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Staff => "staff",
            Role::Warehouse => "warehouse",
            Role::Channel => "channel",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// A key about to be stored: only the hash of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// The channel code of a `channel` key; `None` for every other role.
    pub channel: Option<String>,
    /// Lower-case hex SHA-256 of the secret.
    pub secret_hash: String,
    /// The first characters of the secret, to tell keys apart.
    pub prefix: String,
    pub created_by: String,
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub name: String,
    pub role: Role,
    pub channel: Option<String>,
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// One line of the audit trail, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAuditEntry {
    pub at: DateTime<Utc>,
    /// `None` for changes made outside the API (the command line).
    pub actor_key_id: Option<i64>,
    pub actor_name: String,
    pub request_id: Option<String>,
    /// The kind of thing changed: `products`, `orders`, `api-keys`…
    pub entity: String,
    pub entity_id: Option<String>,
    /// `POST /v1/orders/{id}/cancel`, or a command line like `keys revoke`.
    pub action: String,
    pub status: u16,
    pub summary: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    pub id: i64,
    pub entry: NewAuditEntry,
}

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub entity: Option<String>,
    pub entity_id: Option<String>,
    /// A key's id (digits) or an actor's name.
    pub actor: Option<String>,
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// A browser session of the web admin about to be stored: only the hash of its cookie's token.
#[derive(Debug, Clone, PartialEq)]
pub struct NewWebSession {
    /// Lower-case hex SHA-256 of the cookie's token.
    pub token_hash: String,
    /// The API key the session was opened with; the session has its role and ends with it.
    pub key_id: i64,
    /// The token every form of this session sends back.
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live web session: its key (revoked and expired keys included: the caller decides) and its CSRF token.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSessionRecord {
    pub key: ApiKeyRecord,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait TrustStore: Send + Sync {
    /// A second key with the same secret hash is `Conflict { constraint: "api_keys.secret_hash" }`.
    async fn create_api_key(&self, key: &NewApiKey, now: DateTime<Utc>) -> StoreResult<ApiKeyRecord>;
    /// The key whose secret hashes to `secret_hash`, revoked and expired ones included.
    async fn api_key_by_hash(&self, secret_hash: &str) -> StoreResult<Option<ApiKeyRecord>>;
    async fn get_api_key(&self, id: i64) -> StoreResult<Option<ApiKeyRecord>>;
    async fn list_api_keys(&self, after: Option<i64>, limit: u32) -> StoreResult<Vec<ApiKeyRecord>>;
    /// Stamps `revoked_at` unless it is set already; `None` for an unknown id.
    async fn revoke_api_key(&self, id: i64, now: DateTime<Utc>) -> StoreResult<Option<ApiKeyRecord>>;
    /// How many keys exist at all (revoked ones included): zero means a first start.
    async fn count_api_keys(&self) -> StoreResult<i64>;
    /// Appends entries in one transaction.
    async fn append_audit(&self, entries: &[NewAuditEntry]) -> StoreResult<()>;
    /// Entries matching `filter`, by ascending id after `after`.
    async fn list_audit(&self, filter: &AuditFilter, after: Option<i64>, limit: u32) -> StoreResult<Vec<AuditRecord>>;
    /// Records that a channel's key placed the hold.
    async fn set_hold_channel(&self, hold: HoldId, channel: &str) -> StoreResult<()>;
    async fn hold_channel(&self, hold: HoldId) -> StoreResult<Option<String>>;
    /// Webhook deliveries not yet delivered or given up, for `/metrics`.
    async fn webhook_backlog(&self) -> StoreResult<i64>;
    /// Stores a web session; an unknown key id is `Conflict { constraint: "web_sessions.key_id" }`.
    async fn create_web_session(&self, session: &NewWebSession) -> StoreResult<()>;
    /// The session whose token hashes to `token_hash`, if it has not expired at `now`.
    async fn web_session(&self, token_hash: &str, now: DateTime<Utc>) -> StoreResult<Option<WebSessionRecord>>;
    /// Ends a session (signing out); ending an unknown one does nothing.
    async fn delete_web_session(&self, token_hash: &str) -> StoreResult<()>;
    /// Deletes the sessions expired at `now`; returns how many.
    async fn purge_web_sessions(&self, now: DateTime<Utc>) -> StoreResult<u64>;
}
