//! The mail outbox: the only way mail leaves. A row is written in the same
//! transaction as the state change that needs it; workers on any instance claim rows
//! with a lease, so a crash or an outage loses nothing and two instances never send
//! the same row at once. The payload (which may hold a raw link) is wiped once sent.

use sqlx::{AnyConnection, Row};

use super::{Store, StoreError};

/// A message to send, as the flow decided it.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Which template: `activation_link`, `account_activated`, …
    pub kind: String,
    pub recipient: String,
    pub lang: String,
    /// The template's values. Not `Debug`-printed by the worker: it may hold a link.
    pub payload: serde_json::Value,
    pub account_dn: Option<String>,
}

/// A row this worker holds until `lease`.
#[derive(Clone)]
pub struct Claimed {
    pub id: String,
    pub kind: String,
    pub recipient: String,
    pub lang: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
    lease: i64,
}

impl std::fmt::Debug for Claimed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Claimed")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Store {
    pub async fn enqueue_mail(
        conn: &mut AnyConnection,
        mail: &Outgoing,
        now: i64,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        sqlx::query(
            "INSERT INTO outbox (id, kind, recipient, lang, payload, account_dn, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind(&id)
        .bind(&mail.kind)
        .bind(&mail.recipient)
        .bind(&mail.lang)
        .bind(mail.payload.to_string())
        .bind(mail.account_dn.as_deref())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(id)
    }

    /// Claims up to `limit` due rows for `lease_secs`. The outer conditions repeat the
    /// inner ones: under concurrency the database re-checks them on the locked row, so
    /// a row claimed by another worker in between is skipped.
    pub async fn claim_mail(
        &self,
        now: i64,
        lease_secs: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        let lease = now + lease_secs;
        let rows = sqlx::query(
            "UPDATE outbox SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
                          WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                            AND (lease_until IS NULL OR lease_until <= $2) \
                          ORDER BY created_at LIMIT $3) \
               AND sent_at IS NULL AND failed_at IS NULL AND (lease_until IS NULL OR lease_until <= $2) \
             RETURNING id, kind, recipient, lang, payload, attempts",
        )
        .bind(lease)
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let payload: String = row.try_get("payload")?;
                Ok(Claimed {
                    id: row.try_get("id")?,
                    kind: row.try_get("kind")?,
                    recipient: row.try_get("recipient")?,
                    lang: row.try_get("lang")?,
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| StoreError::Query(format!("outbox payload: {e}")))?,
                    attempts: row.try_get("attempts")?,
                    lease,
                })
            })
            .collect()
    }

    /// Extends the lease of a row this worker still holds to `now + lease_secs`, while
    /// its send goes on. False if the lease was lost (it ran out and another worker
    /// claimed the row): the row is no longer ours to send or to mark.
    pub async fn renew_mail_lease(
        &self,
        mail: &mut Claimed,
        now: i64,
        lease_secs: i64,
    ) -> Result<bool, StoreError> {
        let lease = now + lease_secs;
        let renewed = self
            .write(
                sqlx::query(
                    "UPDATE outbox SET lease_until = $1 \
             WHERE id = $2 AND lease_until = $3 AND sent_at IS NULL AND failed_at IS NULL",
                )
                .bind(lease)
                .bind(&mail.id)
                .bind(mail.lease),
            )
            .await?
            .rows_affected()
            == 1;
        if renewed {
            mail.lease = lease;
        }
        Ok(renewed)
    }

    /// Marks a claimed row sent and wipes its payload. False if the lease was lost
    /// (another worker took the row over), which the worker logs.
    pub async fn mail_sent(&self, mail: &Claimed, now: i64) -> Result<bool, StoreError> {
        let done = self.write(sqlx::query(
            "UPDATE outbox SET sent_at = $1, payload = '{}', lease_until = NULL, last_error = NULL \
             WHERE id = $2 AND lease_until = $3",
        )
        .bind(now)
        .bind(&mail.id)
        .bind(mail.lease)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a failed attempt: retried at `retry_at`, or given up when `None` (the
    /// payload is wiped then too).
    pub async fn mail_failed(
        &self,
        mail: &Claimed,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1, lease_until = NULL, last_error = $2 \
                 WHERE id = $3 AND lease_until = $4",
            )
            .bind(at),
            None => sqlx::query(
                "UPDATE outbox SET failed_at = $1, payload = '{}', lease_until = NULL, last_error = $2 \
                 WHERE id = $3 AND lease_until = $4",
            )
            .bind(now),
        };
        self.write(query.bind(error).bind(&mail.id).bind(mail.lease))
            .await?;
        Ok(())
    }

    /// Rows neither sent nor given up: for readiness and the helpdesk diagnostic.
    pub async fn pending_mail(&self) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(count)
    }
}

#[cfg(test)]
impl Claimed {
    /// A row as a worker would hold it, for rendering tests.
    pub fn for_test(kind: &str, lang: &str, payload: serde_json::Value) -> Claimed {
        Claimed {
            id: uuid::Uuid::new_v4().to_string(),
            kind: kind.to_owned(),
            recipient: "lea.durand@example.org".to_owned(),
            lang: lang.to_owned(),
            payload,
            attempts: 1,
            lease: 0,
        }
    }
}
