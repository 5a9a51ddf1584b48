//! Help requests from the contact form, and what the helpdesk diagnostic reads of
//! an account's mail.

use sqlx::Row;

use super::{Origin, Store, StoreError, StoreTx};
use crate::domain::HelpRequest;

/// One mail of an account, as the helpdesk sees it (never its content).
#[derive(Debug, Clone, serde::Serialize)]
pub struct MailSummary {
    pub kind: String,
    pub recipient: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub failed_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}

impl StoreTx {
    pub async fn record_help(
        &mut self,
        reference: &str,
        request: &HelpRequest,
        account_dn: Option<&str>,
        origin: &Origin,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO help_requests (reference, created_at, name, identifier, contact_email, category, message, account_dn, client_ip) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(reference)
        .bind(at)
        .bind(&request.name)
        .bind(&request.identifier)
        .bind(request.contact.as_str())
        .bind(request.category.as_str())
        .bind(&request.message)
        .bind(account_dn)
        .bind(origin.client_ip.map(|ip| ip.to_string()))
        .execute(self.conn())
        .await?;
        Ok(())
    }
}

impl Store {
    /// The account's latest mails, newest first.
    pub async fn recent_mail(
        &self,
        account_dn: &str,
        limit: i64,
    ) -> Result<Vec<MailSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT kind, recipient, created_at, sent_at, failed_at, attempts, last_error FROM outbox \
             WHERE account_dn = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(account_dn)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(MailSummary {
                    kind: row.try_get("kind")?,
                    recipient: row.try_get("recipient")?,
                    created_at: row.try_get("created_at")?,
                    sent_at: row.try_get("sent_at")?,
                    failed_at: row.try_get("failed_at")?,
                    attempts: row.try_get("attempts")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }
}
