//! CAS state: the service registry, tickets (SHA-256 only) and the services each
//! session signed in to, for single logout. A service or proxy ticket is spent
//! by one `UPDATE … WHERE used_at IS NULL`: of two validations at once, exactly
//! one gets the ticket.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, StoreTx};
use crate::cas::services::{CasService, ServiceMatch, SingleLogout};
use crate::cas::tickets::TicketKind;
use crate::domain::TokenHash;

/// A ticket to store.
#[derive(Debug, Clone)]
pub struct NewCasTicket<'a> {
    pub kind: TicketKind,
    pub service_name: &'a str,
    /// The normalised service URL (ST, PT) or the proxy callback (PGT).
    pub service_url: &'a str,
    pub session_hash: &'a str,
    pub account_dn: &'a str,
    pub epoch: i64,
    pub auth_time: i64,
    pub from_new_login: bool,
    /// The proxy callbacks it went through, the most recent first.
    pub proxies: &'a [String],
    pub expires_at: i64,
}

/// A stored ticket as read back.
#[derive(Debug, Clone)]
pub struct CasTicketRecord {
    pub kind: TicketKind,
    pub service_name: String,
    pub service_url: String,
    pub session_hash: String,
    pub account_dn: String,
    pub epoch: i64,
    pub auth_time: i64,
    pub from_new_login: bool,
    pub proxies: Vec<String>,
    pub expires_at: i64,
}

/// What presenting a one-time ticket gave.
#[derive(Debug, Clone)]
pub enum Spent {
    /// Unspent until now; `live` is whether its session is open and its epoch
    /// still the account's.
    Fresh { ticket: CasTicketRecord, live: bool },
    /// Spent before: a replay.
    Replayed,
    /// Never issued, or purged.
    Unknown,
}

fn kind_code(kind: TicketKind) -> &'static str {
    match kind {
        TicketKind::Service => "ST",
        TicketKind::Proxy => "PT",
        TicketKind::ProxyGranting => "PGT",
    }
}

fn kind_of(code: &str) -> Result<TicketKind, StoreError> {
    match code {
        "ST" => Ok(TicketKind::Service),
        "PT" => Ok(TicketKind::Proxy),
        "PGT" => Ok(TicketKind::ProxyGranting),
        other => Err(StoreError::Query(format!(
            "unknown CAS ticket kind {other}"
        ))),
    }
}

const TICKET_COLUMNS: &str = "kind, service_name, service_url, session_hash, account_dn, epoch, \
                              auth_time, from_new_login, proxies, expires_at";

fn ticket(row: &AnyRow) -> Result<CasTicketRecord, StoreError> {
    let proxies: String = row.try_get("proxies")?;
    Ok(CasTicketRecord {
        kind: kind_of(&row.try_get::<String, _>("kind")?)?,
        service_name: row.try_get("service_name")?,
        service_url: row.try_get("service_url")?,
        session_hash: row.try_get("session_hash")?,
        account_dn: row.try_get("account_dn")?,
        epoch: row.try_get("epoch")?,
        auth_time: row.try_get("auth_time")?,
        from_new_login: row.try_get::<i64, _>("from_new_login")? != 0,
        proxies: serde_json::from_str(&proxies)
            .map_err(|e| StoreError::Query(format!("stored CAS proxies unreadable: {e}")))?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn unreadable(name: &str) -> StoreError {
    StoreError::Query(format!("stored CAS service {name} unreadable"))
}

fn service(row: &AnyRow) -> Result<CasService, StoreError> {
    let name: String = row.try_get("name")?;
    let matching = ServiceMatch::stored(
        &row.try_get::<String, _>("match_kind")?,
        &row.try_get::<String, _>("url")?,
    )
    .map_err(|_| unreadable(&name))?;
    let attributes: Vec<String> = serde_json::from_str(&row.try_get::<String, _>("attributes")?)
        .map_err(|_| unreadable(&name))?;
    let proxy_callbacks: Option<String> = row.try_get("proxy_callbacks")?;
    let single_logout: Option<String> = row.try_get("single_logout")?;
    Ok(CasService {
        display_name: row.try_get("display_name")?,
        matching,
        attributes: attributes
            .iter()
            .map(|a| a.parse())
            .collect::<Result<_, _>>()
            .map_err(|_| unreadable(&name))?,
        proxy_callbacks: proxy_callbacks
            .as_deref()
            .map(ServiceMatch::pattern)
            .transpose()
            .map_err(|_| unreadable(&name))?,
        single_logout: single_logout
            .as_deref()
            .map(str::parse::<SingleLogout>)
            .transpose()
            .map_err(|_| unreadable(&name))?,
        created_at: row.try_get("created_at")?,
        name,
    })
}

impl Store {
    /// Registers a service; `false` if the name is taken.
    pub async fn add_cas_service(&self, service: &CasService) -> Result<bool, StoreError> {
        let attributes: Vec<&str> = service.attributes.iter().map(|a| a.as_str()).collect();
        let done = self.write(sqlx::query(
            "INSERT INTO cas_services (name, display_name, match_kind, url, attributes, proxy_callbacks, \
             single_logout, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&service.name)
        .bind(&service.display_name)
        .bind(service.matching.kind())
        .bind(service.matching.as_str())
        .bind(serde_json::to_string(&attributes).unwrap_or_else(|_| "[]".into()))
        .bind(service.proxy_callbacks.as_ref().map(ServiceMatch::as_str))
        .bind(service.single_logout.as_ref().map(SingleLogout::as_str))
        .bind(service.created_at)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every registered service, by name.
    pub async fn cas_services(&self) -> Result<Vec<CasService>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, display_name, match_kind, url, attributes, proxy_callbacks, single_logout, created_at \
             FROM cas_services ORDER BY name",
        )
        .fetch_all(self.pool())
        .await?;
        // One unreadable row (edited by hand) costs its own service, not all.
        Ok(rows
            .iter()
            .filter_map(|row| {
                service(row)
                    .inspect_err(|error| tracing::error!(%error, "CAS service skipped"))
                    .ok()
            })
            .collect())
    }

    pub async fn cas_service(&self, name: &str) -> Result<Option<CasService>, StoreError> {
        let services = self.cas_services().await?;
        Ok(services.into_iter().find(|s| s.name == name))
    }

    /// Removes a service; its outstanding tickets die with it.
    pub async fn remove_cas_service(&self, name: &str, now: i64) -> Result<bool, StoreError> {
        let done = self
            .write(sqlx::query("DELETE FROM cas_services WHERE name = $1").bind(name))
            .await?;
        self.write(
            sqlx::query(
                "UPDATE cas_tickets SET used_at = $1 WHERE service_name = $2 AND used_at IS NULL",
            )
            .bind(now)
            .bind(name),
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a ticket; false (nothing stored) for a second new-login ticket of
    /// one session: a sign-in vouches for one ticket only.
    pub async fn add_cas_ticket(
        &self,
        hash: &TokenHash,
        ticket: &NewCasTicket<'_>,
        now: i64,
    ) -> Result<bool, StoreError> {
        // RETURNING, not the count of rows changed: SQLite's count after a
        // statement that skipped its row is not to be relied on.
        let stored: Option<String> = sqlx::query_scalar(
            "INSERT INTO cas_tickets (ticket_hash, kind, service_name, service_url, session_hash, account_dn, \
             epoch, auth_time, from_new_login, proxies, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT DO NOTHING \
             RETURNING ticket_hash",
        )
        .bind(hash.as_str())
        .bind(kind_code(ticket.kind))
        .bind(ticket.service_name)
        .bind(ticket.service_url)
        .bind(ticket.session_hash)
        .bind(ticket.account_dn)
        .bind(ticket.epoch)
        .bind(ticket.auth_time)
        .bind(i64::from(ticket.from_new_login))
        .bind(serde_json::to_string(ticket.proxies).unwrap_or_else(|_| "[]".into()))
        .bind(now)
        .bind(ticket.expires_at)
        .fetch_optional(self.pool())
        .await?;
        Ok(stored.is_some())
    }

    /// Spends a service or proxy ticket: the first caller gets it, whatever it
    /// then decides; every later one sees a replay.
    pub async fn spend_cas_ticket(
        &self,
        hash: &TokenHash,
        now: i64,
        idle_secs: i64,
    ) -> Result<Spent, StoreError> {
        let sql = format!(
            "UPDATE cas_tickets SET used_at = $1 WHERE ticket_hash = $2 AND used_at IS NULL \
             AND kind IN ('ST', 'PT') RETURNING {TICKET_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(now)
            .bind(hash.as_str())
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            let known: Option<String> = sqlx::query_scalar(
                "SELECT kind FROM cas_tickets WHERE ticket_hash = $1 AND kind IN ('ST', 'PT')",
            )
            .bind(hash.as_str())
            .fetch_optional(self.pool())
            .await?;
            return Ok(match known {
                Some(_) => Spent::Replayed,
                None => Spent::Unknown,
            });
        };
        let ticket = ticket(&row)?;
        let live = live_ticket(self.pool(), hash, now, idle_secs).await?;
        Ok(Spent::Fresh { ticket, live })
    }

    /// A proxy-granting ticket, if it is one and still counts (its session open,
    /// its epoch current, not voided).
    pub async fn live_pgt(
        &self,
        hash: &TokenHash,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<CasTicketRecord>, StoreError> {
        let sql = format!(
            "SELECT {TICKET_COLUMNS} FROM cas_tickets WHERE ticket_hash = $1 AND kind = 'PGT' \
             AND used_at IS NULL AND expires_at > $2"
        );
        let row = sqlx::query(&sql)
            .bind(hash.as_str())
            .bind(now)
            .fetch_optional(self.pool())
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let record = ticket(&row)?;
        let live = live_ticket(self.pool(), hash, now, idle_secs).await?;
        Ok(live.then_some(record))
    }

    /// A PGT whose callback failed: it was never handed over, so it never counts.
    pub async fn void_cas_ticket(&self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        self.write(
            sqlx::query("UPDATE cas_tickets SET used_at = $1 WHERE ticket_hash = $2")
                .bind(now)
                .bind(hash.as_str()),
        )
        .await?;
        Ok(())
    }
}

/// Whether a ticket's session is open (not ended, not past its lifetime, not
/// idle longer than `idle_secs`) and its epoch the account's current one.
async fn live_ticket<'c, E>(
    executor: E,
    hash: &TokenHash,
    now: i64,
    idle_secs: i64,
) -> Result<bool, StoreError>
where
    E: sqlx::Executor<'c, Database = sqlx::Any>,
{
    let sql = format!(
        "SELECT 1 FROM cas_tickets JOIN sso_sessions s ON s.id_hash = cas_tickets.session_hash \
         WHERE cas_tickets.ticket_hash = $1 AND s.ended_at IS NULL AND s.expires_at > $2 \
         AND s.last_seen_at > $3 AND {}",
        super::sessions::current_epoch("cas_tickets")
    );
    let live: Option<i64> = sqlx::query_scalar(&sql)
        .bind(hash.as_str())
        .bind(now)
        .bind(now - idle_secs)
        .fetch_optional(executor)
        .await?;
    Ok(live.is_some())
}

/// A session signs in to this many CAS services at most: single logout stays
/// bounded whatever a client scripts.
const SERVICES_PER_SESSION: i64 = 50;

impl StoreTx {
    /// Whether the ticket still counts, read in this transaction (after
    /// `hold_session`, a password change cannot slip in between).
    pub async fn cas_ticket_is_live(
        &mut self,
        hash: &TokenHash,
        now: i64,
        idle_secs: i64,
    ) -> Result<bool, StoreError> {
        live_ticket(self.conn(), hash, now, idle_secs).await
    }

    /// The session signed in to a service with this (validated, spent) ticket:
    /// single logout will name it. In the transaction that holds the session
    /// (`hold_session`), so a sign-out committing meanwhile either sees it or
    /// ended the session first.
    pub async fn record_cas_sign_in(
        &mut self,
        session_hash: &str,
        service_name: &str,
        service_url: &str,
        ticket: &str,
        user: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO cas_session_services (session_hash, service_name, service_url, ticket, cas_user, created_at) \
             SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT COUNT(*) FROM cas_session_services \
             WHERE session_hash = $1) < $7",
        )
        .bind(session_hash)
        .bind(service_name)
        .bind(service_url)
        .bind(ticket)
        .bind(user)
        .bind(now)
        .bind(SERVICES_PER_SESSION)
        .execute(self.conn())
        .await?;
        Ok(())
    }
}
