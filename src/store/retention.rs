//! Forgetting what no flow needs any more: tables stay small, and personal data is
//! not kept longer than its purpose requires (RGPD art. 5(1)(e)). Each step is an
//! idempotent DELETE, so every instance may run the job.

use super::{Store, StoreError};

const DAY: i64 = 86_400;

/// How long the records that serve people (not flows) are kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    /// Security events (audit log).
    pub audit_secs: i64,
    /// Help requests and the mail log (what was sent, to whom, and its fate).
    pub support_secs: i64,
}

impl Store {
    /// Deletes what expired long enough ago; returns how many rows went.
    pub async fn purge(&self, now: i64, retention: Retention) -> Result<u64, StoreError> {
        let steps: [(&str, i64); 13] = [
            // Codes outlive their 60 s by two days: a replay seen in that time still
            // revokes what the code gave.
            (
                "DELETE FROM oidc_codes WHERE expires_at < $1",
                now - 2 * DAY,
            ),
            // Kept while their session lives: they say which clients hear of its end.
            (
                "DELETE FROM oidc_tokens WHERE expires_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM sso_sessions WHERE sso_sessions.id_hash = oidc_tokens.session_hash)",
                now - DAY,
            ),
            // The mark only matters while a racing redemption may still store tokens.
            (
                "DELETE FROM oidc_revoked_grants WHERE revoked_at < $1",
                now - 2 * DAY,
            ),
            // Retired keys no longer published: their private part has no use left.
            ("DELETE FROM oidc_keys WHERE published_until < $1", now),
            (
                "DELETE FROM sso_sessions WHERE expires_at < $1 OR ended_at < $1",
                now - DAY,
            ),
            // Spent and expired links stay a month for the helpdesk's diagnostics.
            (
                "DELETE FROM one_time_tokens WHERE expires_at < $1",
                now - 30 * DAY,
            ),
            (
                "DELETE FROM outbox WHERE sent_at < $1 OR failed_at < $1",
                now - retention.support_secs,
            ),
            (
                "DELETE FROM help_requests WHERE created_at < $1",
                now - retention.support_secs,
            ),
            (
                "DELETE FROM audit_events WHERE at < $1",
                now - retention.audit_secs,
            ),
            (
                "DELETE FROM oidc_logout_deliveries WHERE delivered_at < $1 OR failed_at < $1",
                now - DAY,
            ),
            // A CAS ticket outlives its seconds by a day: a replay in that time is
            // still told apart from a ticket never issued, in the audit log.
            ("DELETE FROM cas_tickets WHERE expires_at < $1", now - DAY),
            // Single logout needs them only while their session may still end.
            (
                "DELETE FROM cas_session_services WHERE created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM sso_sessions WHERE sso_sessions.id_hash = cas_session_services.session_hash)",
                now - DAY,
            ),
            // A browser not seen signing in for its whole trust period is a stranger.
            ("DELETE FROM trusted_devices WHERE expires_at < $1", now),
        ];
        let mut deleted = self.forget_hits(now - DAY).await?;
        for (sql, before) in steps {
            let done = self.write(sqlx::query(sql).bind(before)).await?;
            deleted += done.rows_affected();
        }
        Ok(deleted)
    }
}
