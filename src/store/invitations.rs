//! Which pre-provisioned accounts were invited, and when last reminded.

use sqlx::Row;

use super::{Outgoing, Store, StoreError};

#[derive(Debug, Clone)]
pub struct Invitation {
    pub account_dn: String,
    pub last_sent_at: i64,
    pub reminders: i64,
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

    /// Records entries that share an address as invited, with no mail to them,
    /// and queues `notice` (to the helpdesk) if any was new, atomically; how many
    /// were new. Each instance that finds the address holds it at most once.
    pub async fn hold_invitations(
        &self,
        dns: &[&str],
        notice: &Outgoing,
        now: i64,
    ) -> Result<usize, StoreError> {
        let mut tx = self.begin().await?;
        let mut new = 0;
        for dn in dns {
            if tx.record_invitation(dn, &notice.recipient, now).await? {
                new += 1;
            }
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

    pub async fn invitations(&self) -> Result<Vec<Invitation>, StoreError> {
        let rows = sqlx::query("SELECT account_dn, last_sent_at, reminders FROM invitations")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Invitation {
                    account_dn: row.try_get("account_dn")?,
                    last_sent_at: row.try_get("last_sent_at")?,
                    reminders: row.try_get("reminders")?,
                })
            })
            .collect()
    }
}
