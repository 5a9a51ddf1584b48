//! Signed-in sessions. The cookie holds a random value; only its SHA-256 is kept, so
//! the table leaks no usable session. Ending is a timestamp, so the audit trail and
//! the "sessions ended" count survive.

use sqlx::Row;

use super::{Store, StoreError};
use crate::domain::TokenHash;

/// A live session as read back.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub account_dn: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    pub async fn create_session(
        &self,
        id: &TokenHash,
        account_dn: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_sessions (id_hash, account_dn, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(id.as_str())
        .bind(account_dn)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The session if it is neither ended, past its absolute end, nor idle for longer
    /// than `idle_secs`.
    pub async fn live_session(
        &self,
        id: &TokenHash,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT account_dn, created_at, last_seen_at FROM sso_sessions \
             WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3",
        )
        .bind(id.as_str())
        .bind(now)
        .bind(now - idle_secs)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(SessionRecord {
                account_dn: row.try_get("account_dn")?,
                created_at: row.try_get("created_at")?,
                last_seen_at: row.try_get("last_seen_at")?,
            })
        })
        .transpose()
    }

    /// Whether a session (by its stored hash) has neither ended nor expired.
    pub async fn session_is_live(&self, id_hash: &str, now: i64) -> Result<bool, StoreError> {
        let live: Option<String> = sqlx::query_scalar(
            "SELECT id_hash FROM sso_sessions WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(live.is_some())
    }

    /// Records use, which keeps the session from going idle.
    pub async fn touch_session(&self, id: &TokenHash, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sso_sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(id.as_str())
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn end_session(&self, id: &TokenHash, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE sso_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL",
        )
        .bind(now)
        .bind(id.as_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
