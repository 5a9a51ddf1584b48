//! The audit log: every security event (requests, link uses, password changes,
//! refusals), with the time, the client's address, the account and the outcome.
//! Records never hold a secret: no token, no password, no link.

use std::net::IpAddr;

use sqlx::Row;

use super::{Store, StoreError, StoreTx, unix_now};

/// Where a request came from, as the web layer saw it.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub client_ip: Option<IpAddr>,
    pub request_id: Option<String>,
}

/// One event, as a flow reports it.
#[derive(Debug, Clone)]
pub struct AuditEvent {
    /// `reset.request`, `reset.password_changed`, `activation.request`, …
    pub kind: &'static str,
    /// `ok`, `refused`, `unknown`, `gone`, `ambiguous`, `limited`, …
    pub outcome: &'static str,
    /// The account's DN when one is concerned, else what was typed (an e-mail, a
    /// login), so the helpdesk can follow a student who got no mail.
    pub account: Option<String>,
    pub detail: serde_json::Value,
}

impl AuditEvent {
    pub fn new(kind: &'static str, outcome: &'static str) -> AuditEvent {
        AuditEvent {
            kind,
            outcome,
            account: None,
            detail: serde_json::json!({}),
        }
    }

    pub fn account(mut self, account: impl Into<String>) -> AuditEvent {
        self.account = Some(account.into());
        self
    }

    pub fn detail(mut self, detail: serde_json::Value) -> AuditEvent {
        self.detail = detail;
        self
    }
}

/// A stored event, as `guichet audit` and the helpdesk diagnostic read it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRecord {
    pub at: i64,
    pub kind: String,
    pub outcome: String,
    pub account: Option<String>,
    pub client_ip: Option<String>,
    pub request_id: Option<String>,
    pub detail: String,
}

/// Which events to read back; every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account: Option<String>,
    /// A kind, or a prefix ending in `.` (`reset.`).
    pub kind: Option<String>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events whose outcome is not `ok`.
    pub failures_only: bool,
    pub limit: i64,
}

/// The statement that records `event`, to run alone or in a transaction.
fn insert<'q>(
    origin: &'q Origin,
    event: &'q AuditEvent,
    at: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    sqlx::query(
        "INSERT INTO audit_events (id, at, kind, outcome, account, client_ip, request_id, detail) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(uuid::Uuid::new_v4().to_string())
    .bind(at)
    .bind(event.kind)
    .bind(event.outcome)
    .bind(event.account.as_deref())
    .bind(origin.client_ip.map(|ip| ip.to_string()))
    .bind(origin.request_id.as_deref())
    .bind(event.detail.to_string())
}

impl Store {
    /// Records an event on its own (when no transaction carries the change).
    pub async fn audit(&self, origin: &Origin, event: AuditEvent) -> Result<(), StoreError> {
        self.write(insert(origin, &event, unix_now())).await?;
        Ok(())
    }

    /// Events matching `filter`, newest first.
    pub async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let kind = filter.kind.as_deref().unwrap_or("");
        let (kind_exact, kind_prefix) = if kind.ends_with('.') {
            ("", format!("{kind}%"))
        } else {
            (kind, String::new())
        };
        let rows = sqlx::query(
            "SELECT at, kind, outcome, account, client_ip, request_id, detail FROM audit_events \
             WHERE ($1 = '' OR account = $1) \
               AND ($2 = '' OR kind = $2) AND ($3 = '' OR kind LIKE $3) \
               AND at >= $4 AND at <= $5 AND ($6 = 0 OR outcome <> 'ok') \
             ORDER BY at DESC, id LIMIT $7",
        )
        .bind(filter.account.as_deref().unwrap_or(""))
        .bind(kind_exact)
        .bind(kind_prefix)
        .bind(filter.since.unwrap_or(0))
        .bind(filter.until.unwrap_or(i64::MAX))
        .bind(i64::from(filter.failures_only))
        .bind(filter.limit.max(1))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(AuditRecord {
                    at: row.try_get("at")?,
                    kind: row.try_get("kind")?,
                    outcome: row.try_get("outcome")?,
                    account: row.try_get("account")?,
                    client_ip: row.try_get("client_ip")?,
                    request_id: row.try_get("request_id")?,
                    detail: row.try_get("detail")?,
                })
            })
            .collect()
    }
}

impl StoreTx {
    /// Records an event with the change it describes: both land or neither.
    pub async fn audit(
        &mut self,
        origin: &Origin,
        event: AuditEvent,
        at: i64,
    ) -> Result<(), StoreError> {
        insert(origin, &event, at).execute(self.conn()).await?;
        Ok(())
    }
}
