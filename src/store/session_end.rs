//! Ending sessions (DESIGN §7): the session row, the tokens that go with it and the
//! back-channel logouts its applications are owed, in the caller's transaction, so
//! that they commit together or not at all. The session row holds the `sub` the
//! logout tokens need: ending a session never reads the directory.

use sqlx::Row;

use super::{StoreError, StoreTx};

/// What ended, for the audit log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    pub sessions: u64,
    pub logouts_queued: u64,
}

/// What claiming an account for a password write gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountClaim {
    /// Claimed; its credential epoch is now this one.
    Claimed(i64),
    /// Another password write holds it.
    Held,
    /// The epoch is no longer the one expected.
    Moved,
}

/// One session that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedSession {
    pub account_dn: String,
    pub logouts_queued: u64,
}

impl StoreTx {
    /// Ends one session (sign-out, end-session, a new sign-in on the same browser).
    /// Its tokens are revoked except the refresh tokens granted for use while the
    /// student is away (`offline_access`); their access tokens go too. Ending a
    /// session that has already ended does nothing.
    pub async fn end_session(
        &mut self,
        id_hash: &str,
        now: i64,
    ) -> Result<Option<EndedSession>, StoreError> {
        let row = sqlx::query(
            "UPDATE sso_sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL \
             RETURNING account_dn, subject",
        )
        .bind(now)
        .bind(id_hash)
        .fetch_optional(self.conn())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let account_dn: String = row.try_get("account_dn")?;
        let subject: Option<String> = row.try_get("subject")?;
        sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE session_hash = $2 AND revoked_at IS NULL \
             AND NOT (kind = 'refresh' AND scope LIKE '%offline_access%')",
        )
        .bind(now)
        .bind(id_hash)
        .execute(self.conn())
        .await?;
        let logouts_queued = self.queue_logouts(id_hash, subject.as_deref(), now).await?;
        Ok(Some(EndedSession {
            account_dn,
            logouts_queued,
        }))
    }

    /// Ends every session of the account and revokes all its tokens, offline ones
    /// included (a password reset or change), except the session `keep` (the one
    /// the student changed their password in).
    pub async fn end_account_sessions(
        &mut self,
        account_dn: &str,
        keep: Option<&str>,
        now: i64,
    ) -> Result<Ended, StoreError> {
        let rows = sqlx::query(
            "UPDATE sso_sessions SET ended_at = $1 \
             WHERE account_dn = $2 AND ended_at IS NULL AND id_hash <> $3 \
             RETURNING id_hash, subject",
        )
        .bind(now)
        .bind(account_dn)
        .bind(keep.unwrap_or(""))
        .fetch_all(self.conn())
        .await?;
        sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE account_dn = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(account_dn)
        .execute(self.conn())
        .await?;
        let mut ended = Ended::default();
        for row in rows {
            let id_hash: String = row.try_get("id_hash")?;
            let subject: Option<String> = row.try_get("subject")?;
            ended.sessions += 1;
            ended.logouts_queued += self
                .queue_logouts(&id_hash, subject.as_deref(), now)
                .await?;
        }
        Ok(ended)
    }

    /// Queues a back-channel logout for each client with a back-channel URI that the
    /// session gave tokens to, and a single logout for each CAS service it signed in to. Sessions opened before the subject was kept have
    /// none: their logout tokens carry `sid` only, which the specification allows.
    async fn queue_logouts(
        &mut self,
        id_hash: &str,
        subject: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let clients: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT t.client_id FROM oidc_tokens t \
             JOIN oidc_clients c ON c.client_id = t.client_id \
             WHERE t.session_hash = $1 AND c.backchannel_logout_uri IS NOT NULL \
             ORDER BY t.client_id",
        )
        .bind(id_hash)
        .fetch_all(self.conn())
        .await?;
        for client_id in &clients {
            sqlx::query(
                "INSERT INTO oidc_logout_deliveries (id, client_id, session_hash, subject, created_at, next_attempt_at) \
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(client_id)
            .bind(id_hash)
            .bind(subject.unwrap_or(""))
            .bind(now)
            .execute(self.conn())
            .await?;
        }
        let cas = self.queue_single_logouts(id_hash, now).await?;
        Ok(clients.len() as u64 + cas)
    }

    /// Queues a CAS single logout for each service the session validated a ticket
    /// for, whose registration still asks for one.
    async fn queue_single_logouts(&mut self, id_hash: &str, now: i64) -> Result<u64, StoreError> {
        let rows = sqlx::query(
            "SELECT s.service_name, s.service_url, s.ticket, s.cas_user FROM cas_session_services s \
             JOIN cas_services c ON c.name = s.service_name \
             WHERE s.session_hash = $1 AND c.single_logout IS NOT NULL ORDER BY s.created_at",
        )
        .bind(id_hash)
        .fetch_all(self.conn())
        .await?;
        for row in &rows {
            sqlx::query(
                "INSERT INTO oidc_logout_deliveries (id, protocol, client_id, session_hash, subject, \
                 cas_ticket, cas_service_url, created_at, next_attempt_at) \
                 VALUES ($1, 'cas', $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(uuid::Uuid::new_v4().to_string())
            .bind(row.try_get::<String, _>("service_name")?)
            .bind(id_hash)
            .bind(row.try_get::<String, _>("cas_user")?)
            .bind(row.try_get::<String, _>("ticket")?)
            .bind(row.try_get::<String, _>("service_url")?)
            .bind(now)
            .execute(self.conn())
            .await?;
        }
        sqlx::query("DELETE FROM cas_session_services WHERE session_hash = $1")
            .bind(id_hash)
            .execute(self.conn())
            .await?;
        Ok(rows.len() as u64)
    }

    /// Raises the account's credential epoch: every session, code and token issued
    /// before stops counting when this commits, even one being issued right now.
    /// Returns the new epoch.
    pub async fn raise_epoch(&mut self, account_dn: &str, now: i64) -> Result<i64, StoreError> {
        let epoch: i64 = sqlx::query_scalar(
            "INSERT INTO account_epochs (account_dn, epoch, raised_at) VALUES ($1, 1, $2) \
             ON CONFLICT (account_dn) DO UPDATE SET epoch = account_epochs.epoch + 1, raised_at = $2 \
             RETURNING epoch",
        )
        .bind(account_dn)
        .bind(now)
        .fetch_one(self.conn())
        .await?;
        Ok(epoch)
    }

    /// Claims the account for a password write and raises its epoch at once: every
    /// credential issued before ends now, whatever becomes of the write. Two writes
    /// to one account never interleave: the claim holds until `release_account` or
    /// its lease ends. `expected` (a change signed in) refuses the claim if the
    /// epoch moved since the current password was checked (a reset came between).
    pub async fn claim_account(
        &mut self,
        account_dn: &str,
        expected: Option<i64>,
        now: i64,
        lease_secs: i64,
    ) -> Result<AccountClaim, StoreError> {
        sqlx::query(
            "INSERT INTO account_epochs (account_dn, epoch, raised_at) VALUES ($1, 0, $2) \
             ON CONFLICT (account_dn) DO NOTHING",
        )
        .bind(account_dn)
        .bind(now)
        .execute(self.conn())
        .await?;
        let raised: Option<i64> = sqlx::query_scalar(
            "UPDATE account_epochs SET epoch = epoch + 1, raised_at = $2, claimed_until = $3 \
             WHERE account_dn = $1 AND (claimed_until IS NULL OR claimed_until <= $2) \
               AND ($4 < 0 OR epoch = $4) \
             RETURNING epoch",
        )
        .bind(account_dn)
        .bind(now)
        .bind(now + lease_secs)
        .bind(expected.unwrap_or(-1))
        .fetch_optional(self.conn())
        .await?;
        if let Some(epoch) = raised {
            return Ok(AccountClaim::Claimed(epoch));
        }
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT claimed_until FROM account_epochs WHERE account_dn = $1 AND claimed_until > $2",
        )
        .bind(account_dn)
        .bind(now)
        .fetch_optional(self.conn())
        .await?;
        Ok(match held {
            Some(_) => AccountClaim::Held,
            None => AccountClaim::Moved,
        })
    }

    /// Lets go of the account after its password write (or its failure).
    pub async fn release_account(&mut self, account_dn: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE account_epochs SET claimed_until = NULL WHERE account_dn = $1")
            .bind(account_dn)
            .execute(self.conn())
            .await?;
        Ok(())
    }

    /// Moves a session to the account's new epoch (the one the student changed
    /// their password in stays signed in).
    pub async fn restamp_session(&mut self, id_hash: &str, epoch: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sso_sessions SET epoch = $1 WHERE id_hash = $2 AND ended_at IS NULL")
            .bind(epoch)
            .bind(id_hash)
            .execute(self.conn())
            .await?;
        Ok(())
    }
}
