//! Signed-in sessions. The cookie holds a random value; only its SHA-256 is kept, so
//! the table leaks no usable session. Ending is a timestamp, so the audit trail and
//! the "sessions ended" count survive.

use sqlx::Row;

use super::{Store, StoreError, StoreTx};
use crate::domain::TokenHash;

/// A live session as read back.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub account_dn: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    /// The credential epoch it was opened under; codes issued from it carry it on.
    pub epoch: i64,
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    pub id: &'a TokenHash,
    pub account_dn: &'a str,
    /// The `sub` applications know the student by, for the logout tokens.
    pub subject: &'a str,
    /// The account's credential epoch read *before* the password was checked.
    pub epoch: i64,
    pub created_at: i64,
    pub expires_at: i64,
}

/// The condition that a row's epoch is its account's current one (no row: 0).
pub(super) fn current_epoch(table: &str) -> String {
    format!(
        "{table}.epoch = COALESCE((SELECT e.epoch FROM account_epochs e \
         WHERE e.account_dn = {table}.account_dn), 0)"
    )
}

impl StoreTx {
    pub async fn create_session(&mut self, session: &NewSession<'_>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sso_sessions (id_hash, account_dn, subject, epoch, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $5, $6)",
        )
        .bind(session.id.as_str())
        .bind(session.account_dn)
        .bind(session.subject)
        .bind(session.epoch)
        .bind(session.created_at)
        .bind(session.expires_at)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Store {
    /// The account's credential epoch: what a credential issued now is stamped with.
    /// Read it before checking the password, so that a reset committed meanwhile
    /// leaves the new credential stale.
    pub async fn credential_epoch(&self, account_dn: &str) -> Result<i64, StoreError> {
        let epoch: Option<i64> =
            sqlx::query_scalar("SELECT epoch FROM account_epochs WHERE account_dn = $1")
                .bind(account_dn)
                .fetch_optional(self.pool())
                .await?;
        Ok(epoch.unwrap_or(0))
    }

    /// The session if it is neither ended, past its absolute end, nor idle for longer
    /// than `idle_secs`.
    pub async fn live_session(
        &self,
        id: &TokenHash,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let sql = format!(
            "SELECT account_dn, created_at, last_seen_at, epoch FROM sso_sessions \
             WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND last_seen_at > $3 AND {}",
            current_epoch("sso_sessions")
        );
        let row = sqlx::query(&sql)
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
                epoch: row.try_get("epoch")?,
            })
        })
        .transpose()
    }

    /// Whether a session (by its stored hash) has neither ended, expired, nor been
    /// overtaken by a change of password.
    pub async fn session_is_live(&self, id_hash: &str, now: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT id_hash FROM sso_sessions WHERE id_hash = $1 AND ended_at IS NULL AND expires_at > $2 AND {}",
            current_epoch("sso_sessions")
        );
        let live: Option<String> = sqlx::query_scalar(&sql)
            .bind(id_hash)
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        Ok(live.is_some())
    }

    /// Records use, which keeps the session from going idle.
    pub async fn touch_session(&self, id: &TokenHash, now: i64) -> Result<(), StoreError> {
        self.write(
            sqlx::query("UPDATE sso_sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
        Ok(())
    }
}
