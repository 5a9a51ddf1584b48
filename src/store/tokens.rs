//! One-time links. Only the SHA-256 of a token is stored. Issuing a link voids the
//! account's older links of the same purpose (except identification tokens, see
//! `Purpose::voids_older`); using one is a single conditional
//! UPDATE, so two requests racing with the same link cannot both succeed.

use sqlx::{AnyConnection, Row};

use super::{Store, StoreError};
use crate::domain::TokenHash;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Perpignan's order: the student number and INE matched; the next form may be
    /// filled in. Never mailed.
    Identified,
    Activation,
    Reset,
    EmailChange,
    /// Mailed to the old address when a change of address is asked for: it cancels
    /// that change while it waits for its confirmation.
    EmailChangeCancel,
}

impl Purpose {
    /// Identification tokens are issued for every attempt, matched or not (a decoy
    /// with no account). Voiding a matched one when the same identity is given again
    /// would tell a guesser that the identity exists, so they only expire.
    fn voids_older(self) -> bool {
        self != Purpose::Identified
    }

    fn as_str(self) -> &'static str {
        match self {
            Purpose::Identified => "identified",
            Purpose::Activation => "activation",
            Purpose::Reset => "reset",
            Purpose::EmailChange => "email_change",
            Purpose::EmailChangeCancel => "email_change_cancel",
        }
    }
}

/// A live link, as read back.
#[derive(Clone)]
pub struct LinkRecord {
    pub account_dn: String,
    /// What the flow stored with the link (e.g. the e-mail to confirm), as JSON.
    pub payload: serde_json::Value,
    pub expires_at: i64,
}

/// The payload may hold a password hash (Perpignan's order): never printed.
impl std::fmt::Debug for LinkRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkRecord")
            .field("account_dn", &self.account_dn)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// What a link is, for the page that answers it.
#[derive(Debug, Clone)]
pub enum LinkState {
    Live(LinkRecord),
    Expired,
    Used,
    /// A newer link, or a password change, replaced it.
    Voided,
    Unknown,
}

impl LinkState {
    /// A word for the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            LinkState::Live(_) => "live",
            LinkState::Expired => "expired",
            LinkState::Used => "used",
            LinkState::Voided => "voided",
            LinkState::Unknown => "unknown",
        }
    }
}

impl Store {
    /// Records a new link for `account_dn` and voids its older ones of this purpose.
    /// Runs on the caller's connection so that it shares the caller's transaction
    /// (the outbox row with the mail carrying the link).
    pub async fn issue_link(
        conn: &mut AnyConnection,
        hash: &TokenHash,
        purpose: Purpose,
        account_dn: &str,
        payload: &serde_json::Value,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        if purpose.voids_older() {
            sqlx::query(
                "UPDATE one_time_tokens SET voided_at = $1 \
                 WHERE account_dn = $2 AND purpose = $3 AND used_at IS NULL AND voided_at IS NULL",
            )
            .bind(now)
            .bind(account_dn)
            .bind(purpose.as_str())
            .execute(&mut *conn)
            .await?;
        }
        sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, purpose, account_dn, payload, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(hash.as_str())
        .bind(purpose.as_str())
        .bind(account_dn)
        .bind(payload.to_string())
        .bind(now)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// What the link is, without using it up: opening a link (GET) calls this.
    pub async fn peek_link(
        &self,
        hash: &TokenHash,
        purpose: Purpose,
        now: i64,
    ) -> Result<LinkState, StoreError> {
        let row = sqlx::query(
            "SELECT account_dn, payload, expires_at, used_at, voided_at FROM one_time_tokens \
             WHERE token_hash = $1 AND purpose = $2",
        )
        .bind(hash.as_str())
        .bind(purpose.as_str())
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(LinkState::Unknown);
        };
        let used: Option<i64> = row.try_get("used_at")?;
        let voided: Option<i64> = row.try_get("voided_at")?;
        let record = record_of(&row)?;
        Ok(if used.is_some() {
            LinkState::Used
        } else if voided.is_some() {
            LinkState::Voided
        } else if record.expires_at <= now {
            LinkState::Expired
        } else {
            LinkState::Live(record)
        })
    }

    /// Uses the link up if it is still live, in one statement. `None` when another
    /// request used it first, or it expired or was voided meanwhile.
    pub async fn use_link(
        conn: &mut AnyConnection,
        hash: &TokenHash,
        purpose: Purpose,
        now: i64,
    ) -> Result<Option<LinkRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE one_time_tokens SET used_at = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND voided_at IS NULL AND expires_at > $1 \
             RETURNING account_dn, payload, expires_at",
        )
        .bind(now)
        .bind(hash.as_str())
        .bind(purpose.as_str())
        .fetch_optional(&mut *conn)
        .await?;
        row.as_ref().map(record_of).transpose()
    }

    /// Claims a live link for `lease_secs` before the directory write it authorises.
    /// `None` when it is not live, or another request holds a claim on it.
    pub async fn claim_link(
        &self,
        hash: &TokenHash,
        purpose: Purpose,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<LinkRecord>, StoreError> {
        let row = sqlx::query(
            "UPDATE one_time_tokens SET claimed_until = $1 \
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND voided_at IS NULL \
               AND expires_at > $4 AND (claimed_until IS NULL OR claimed_until <= $4) \
             RETURNING account_dn, payload, expires_at",
        )
        .bind(now + lease_secs)
        .bind(hash.as_str())
        .bind(purpose.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record_of).transpose()
    }

    /// Whether a live link is held by a claim (another request is writing).
    pub async fn link_is_claimed(&self, hash: &TokenHash, now: i64) -> Result<bool, StoreError> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT claimed_until FROM one_time_tokens WHERE token_hash = $1 AND used_at IS NULL \
             AND voided_at IS NULL AND claimed_until > $2",
        )
        .bind(hash.as_str())
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        Ok(held.is_some())
    }

    /// Lets go of a claim: the directory write failed and the link stays usable.
    pub async fn release_link(&self, hash: &TokenHash) -> Result<(), StoreError> {
        self.write(sqlx::query(
            "UPDATE one_time_tokens SET claimed_until = NULL WHERE token_hash = $1 AND used_at IS NULL",
        )
        .bind(hash.as_str())
        )
        .await?;
        Ok(())
    }

    /// Uses up a claimed link after its write, whatever happened to it meanwhile
    /// (the write is done), and wipes what it carried.
    pub async fn spend_link(
        conn: &mut AnyConnection,
        hash: &TokenHash,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE one_time_tokens SET used_at = $1, claimed_until = NULL, payload = '{}' \
             WHERE token_hash = $2 AND used_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Voids one link, claimed or not, unless it was used: a cancelled request.
    pub async fn void_link(
        conn: &mut AnyConnection,
        hash: &TokenHash,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE one_time_tokens SET voided_at = $1, claimed_until = NULL, payload = '{}' \
             WHERE token_hash = $2 AND used_at IS NULL AND voided_at IS NULL",
        )
        .bind(now)
        .bind(hash.as_str())
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Voids every live link of the account (after a password change).
    /// `spare`: a purpose whose links stay (a change signed in spares the reset
    /// links mailed to the owner, or whoever knows the password could void every
    /// reset the owner asks for).
    pub async fn void_links(
        conn: &mut AnyConnection,
        account_dn: &str,
        spare: Option<Purpose>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE one_time_tokens SET voided_at = $1, payload = '{}' \
             WHERE account_dn = $2 AND used_at IS NULL AND voided_at IS NULL AND purpose <> $3",
        )
        .bind(now)
        .bind(account_dn)
        .bind(spare.map_or("", Purpose::as_str))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected())
    }
}

fn record_of(row: &sqlx::any::AnyRow) -> Result<LinkRecord, StoreError> {
    let payload: String = row.try_get("payload")?;
    Ok(LinkRecord {
        account_dn: row.try_get("account_dn")?,
        payload: serde_json::from_str(&payload)
            .map_err(|e| StoreError::Query(format!("link payload: {e}")))?,
        expires_at: row.try_get("expires_at")?,
    })
}
