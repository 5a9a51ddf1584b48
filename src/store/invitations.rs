//! Which pre-provisioned accounts were invited, and when last reminded.

use sqlx::Row;

use super::{Outgoing, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Invitation {
    pub account_dn: String,
    pub last_sent_at: i64,
    pub reminders: i64,
    /// Since when the entry waits for an address of its own (nothing was sent).
    pub held_at: Option<i64>,
}

impl Store {
    /// Records the first invitation and queues its mail, atomically; false (and no
    /// mail) if the account was already invited, by this or another instance.
    pub async fn invite_once(
        &self,
        dn: &str,
        mail: &Outgoing,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let inserted = tx.record_invitation(dn, &mail.recipient, now).await?;
        if inserted {
            tx.enqueue_mail(mail, now).await?;
            tx.commit().await?;
        }
        Ok(inserted)
    }

    /// Holds entries that share `email`: nothing is sent to them until the address
    /// names one entry. Queues `notice` (to the helpdesk) if any was newly held,
    /// atomically; how many were. Each instance that finds the address holds each
    /// entry at most once, so the helpdesk hears of it once.
    pub async fn hold_invitations(
        &self,
        dns: &[&str],
        email: &str,
        notice: &Outgoing,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let mut new = 0;
        for dn in dns {
            let held = sqlx::query(
                "INSERT INTO invitations (account_dn, email, first_sent_at, last_sent_at, held_at) \
                 VALUES ($1, $2, $3, $3, $3) \
                 ON CONFLICT (account_dn) DO UPDATE SET held_at = $3, email = $2 \
                 WHERE invitations.held_at IS NULL",
            )
            .bind(dn)
            .bind(email)
            .bind(now)
            .execute(tx.conn())
            .await?;
            new += held.rows_affected() as usize;
        }
        if new > 0 {
            tx.enqueue_mail(notice, now).await?;
            tx.commit().await?;
        }
        Ok(new)
    }

    /// Records a reminder (or a re-send) and queues its mail, atomically. With
    /// `expected_reminders`, only if no other instance reminded meanwhile.
    pub async fn remind(
        &self,
        dn: &str,
        mail: &Outgoing,
        expected_reminders: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let updated = tx
            .bump_invitation(dn, &mail.recipient, expected_reminders, now)
            .await?;
        if updated {
            tx.enqueue_mail(mail, now).await?;
            tx.commit().await?;
        }
        Ok(updated)
    }

    /// Invites a held entry whose address is its own now, as a first invitation
    /// (the reminders start again); false if another instance did first.
    pub async fn release_hold(
        &self,
        dn: &str,
        mail: &Outgoing,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let released = sqlx::query(
            "UPDATE invitations SET held_at = NULL, email = $1, first_sent_at = $2, \
             last_sent_at = $2, reminders = 0 WHERE account_dn = $3 AND held_at IS NOT NULL",
        )
        .bind(&mail.recipient)
        .bind(now)
        .bind(dn)
        .execute(tx.conn())
        .await?;
        if released.rows_affected() == 1 {
            tx.enqueue_mail(mail, now).await?;
            tx.commit().await?;
            return Ok(true);
        }
        Ok(false)
    }

    pub async fn invitations(&self) -> Result<Vec<Invitation>, StoreError> {
        let rows =
            sqlx::query("SELECT account_dn, last_sent_at, reminders, held_at FROM invitations")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|row| {
                Ok(Invitation {
                    account_dn: row.try_get("account_dn")?,
                    last_sent_at: row.try_get("last_sent_at")?,
                    reminders: row.try_get("reminders")?,
                    held_at: row.try_get("held_at")?,
                })
            })
            .collect()
    }
}
