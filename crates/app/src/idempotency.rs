//! Idempotency keys: a retried POST with the same key and body gets the first response, never a second effect.

use chrono::Utc;
use sha2::{Digest, Sha256};

use crate::error::{AppError, AppResult};
use crate::store::IdempotencyState;
use crate::App;

/// Longest key we store; clients usually send a UUID.
pub const MAX_KEY_LEN: usize = 255;

/// Hashes what makes two requests "the same": the method, the path and query, and the body bytes.
pub fn request_fingerprint(method: &str, path_and_query: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(method.as_bytes());
    h.update([0]);
    h.update(path_and_query.as_bytes());
    h.update([0]);
    h.update(body);
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    /// Claims an idempotency key for a request, or tells what was stored for it.
    pub async fn begin_idempotent(&self, scope: &str, key: &str, fingerprint: &str) -> AppResult<IdempotencyState> {
        if key.is_empty() || key.len() > MAX_KEY_LEN || !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(AppError::field(
                "Idempotency-Key",
                format!("must be 1 to {MAX_KEY_LEN} printable ASCII characters"),
            ));
        }
        Ok(self.store.begin_request(scope, key, fingerprint, Utc::now()).await?)
    }

    pub async fn complete_idempotent(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        body: &[u8],
        content_type: &str,
    ) -> AppResult<()> {
        Ok(self.store.complete_request(scope, key, status, body, content_type).await?)
    }

    pub async fn abort_idempotent(&self, scope: &str, key: &str) -> AppResult<()> {
        Ok(self.store.abort_request(scope, key).await?)
    }
}
