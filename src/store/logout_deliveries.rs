//! Back-channel logouts to deliver, claimed one at a time under a lease like the
//! outbox's mail, so several instances never post the same logout at once.

use sqlx::Row;

use super::{Store, StoreError};

/// Which protocol a logout is told in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutProtocol {
    /// A logout token posted to the client's back-channel URI.
    Oidc,
    /// A SAML `LogoutRequest` naming the ticket the service validated (a spent
    /// ticket: it opens nothing), posted where the service's registration says.
    Cas { ticket: String, service_url: String },
}

/// A logout a worker holds the lease of.
#[derive(Debug, Clone)]
pub struct LogoutDelivery {
    pub id: String,
    pub protocol: LogoutProtocol,
    /// The OIDC client, or the CAS service's name.
    pub client_id: String,
    pub session_hash: String,
    /// The OIDC `sub`, or the CAS user.
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
             RETURNING id, protocol, client_id, session_hash, subject, cas_ticket, cas_service_url, attempts",
        )
        .bind(lease)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            let protocol = match row.try_get::<String, _>("protocol")?.as_str() {
                "cas" => LogoutProtocol::Cas {
                    ticket: row
                        .try_get::<Option<String>, _>("cas_ticket")?
                        .unwrap_or_default(),
                    service_url: row
                        .try_get::<Option<String>, _>("cas_service_url")?
                        .unwrap_or_default(),
                },
                _ => LogoutProtocol::Oidc,
            };
            Ok(LogoutDelivery {
                id: row.try_get("id")?,
                protocol,
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
        self.write(sqlx::query(
            "UPDATE oidc_logout_deliveries SET delivered_at = $1, lease_until = NULL, last_error = NULL \
             WHERE id = $2 AND lease_until = $3",
        )
        .bind(now)
        .bind(&delivery.id)
        .bind(delivery.lease)
        )
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
        self.write(query.bind(error).bind(&delivery.id).bind(delivery.lease))
            .await?;
        Ok(())
    }
}
