//! Back-channel logouts to deliver, claimed one at a time under a lease like the
//! outbox's mail, so several instances never post the same logout at once.

use sqlx::Row;

use super::{Store, StoreError};

/// A logout a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    pub id: String,
    pub client_id: String,
    pub session_hash: String,
    pub subject: String,
    pub attempts: i64,
    pub lease: i64,
}

impl Store {
    /// Claims the oldest due logout for `lease_secs` (the outer conditions repeat
    /// the inner ones so that a row another worker took meanwhile is skipped).
    pub async fn claim_logout(
        &self,
        now: i64,
        lease_secs: i64,
    ) -> Result<Option<LogoutDelivery>, StoreError> {
        let lease = now + lease_secs;
        let row = sqlx::query(
            "UPDATE oidc_logout_deliveries SET lease_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM oidc_logout_deliveries \
                          WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
                            AND (lease_until IS NULL OR lease_until <= $2) \
                          ORDER BY created_at LIMIT 1) \
               AND delivered_at IS NULL AND failed_at IS NULL AND (lease_until IS NULL OR lease_until <= $2) \
             RETURNING id, client_id, session_hash, subject, attempts",
        )
        .bind(lease)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(LogoutDelivery {
                id: row.try_get("id")?,
                client_id: row.try_get("client_id")?,
                session_hash: row.try_get("session_hash")?,
                subject: row.try_get("subject")?,
                attempts: row.try_get("attempts")?,
                lease,
            })
        })
        .transpose()
    }

    pub async fn logout_delivered(
        &self,
        delivery: &LogoutDelivery,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE oidc_logout_deliveries SET delivered_at = $1, lease_until = NULL, last_error = NULL \
             WHERE id = $2 AND lease_until = $3",
        )
        .bind(now)
        .bind(&delivery.id)
        .bind(delivery.lease)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// A failed attempt: retried at `retry_at`, or given up when `None`.
    pub async fn logout_failed(
        &self,
        delivery: &LogoutDelivery,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE oidc_logout_deliveries SET next_attempt_at = $1, lease_until = NULL, last_error = $2 \
                 WHERE id = $3 AND lease_until = $4",
            )
            .bind(at),
            None => sqlx::query(
                "UPDATE oidc_logout_deliveries SET failed_at = $1, lease_until = NULL, last_error = $2 \
                 WHERE id = $3 AND lease_until = $4",
            )
            .bind(now),
        };
        query
            .bind(error)
            .bind(&delivery.id)
            .bind(delivery.lease)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
