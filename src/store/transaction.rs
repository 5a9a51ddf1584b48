//! A unit of work for flows: a database transaction with the store's operations on
//! it, so flows never see sqlx. Dropped without `commit`, it rolls back.

use std::sync::Arc;

use sqlx::{Any, Transaction};

use super::group_commit::{GroupCommit, Turn};
use super::{LinkRecord, Outgoing, Purpose, Store, StoreError};
use crate::domain::TokenHash;

pub struct StoreTx {
    tx: Transaction<'static, Any>,
    /// The flush its commit waits for (SQLite with `synchronous = full`).
    durable: Option<Arc<GroupCommit>>,
    /// Its turn to write (SQLite with `synchronous = full`), given up at commit.
    turn: Option<Turn>,
}

impl std::fmt::Debug for StoreTx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreTx")
    }
}

impl Store {
    pub async fn begin(&self) -> Result<StoreTx, StoreError> {
        Ok(match &self.grouped {
            Some(grouped) => {
                // A deferred BEGIN takes no lock: the turn only orders the writes.
                let tx = grouped.pool.begin().await?;
                StoreTx {
                    tx,
                    turn: grouped.commit.turn().await,
                    durable: Some(grouped.commit.clone()),
                }
            }
            None => StoreTx {
                tx: self.pool().begin().await?,
                durable: None,
                turn: None,
            },
        })
    }
}

impl StoreTx {
    pub(super) fn conn(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }

    pub async fn issue_link(
        &mut self,
        hash: &TokenHash,
        purpose: Purpose,
        account_dn: &str,
        payload: &serde_json::Value,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        Store::issue_link(
            &mut self.tx,
            hash,
            purpose,
            account_dn,
            payload,
            now,
            expires_at,
        )
        .await
    }

    pub async fn use_link(
        &mut self,
        hash: &TokenHash,
        purpose: Purpose,
        now: i64,
    ) -> Result<Option<LinkRecord>, StoreError> {
        Store::use_link(&mut self.tx, hash, purpose, now).await
    }

    pub async fn spend_link(&mut self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        Store::spend_link(&mut self.tx, hash, now).await
    }

    pub async fn void_link(&mut self, hash: &TokenHash, now: i64) -> Result<(), StoreError> {
        Store::void_link(&mut self.tx, hash, now).await
    }

    pub async fn void_links(
        &mut self,
        account_dn: &str,
        spare: Option<Purpose>,
        now: i64,
    ) -> Result<u64, StoreError> {
        Store::void_links(&mut self.tx, account_dn, spare, now).await
    }

    pub async fn enqueue_mail(&mut self, mail: &Outgoing, now: i64) -> Result<String, StoreError> {
        Store::enqueue_mail(&mut self.tx, mail, now).await
    }

    /// Inserts the invitation row; false if it exists.
    pub async fn record_invitation(
        &mut self,
        dn: &str,
        email: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO invitations (account_dn, email, first_sent_at, last_sent_at) VALUES ($1, $2, $3, $3) \
             ON CONFLICT (account_dn) DO NOTHING",
        )
        .bind(dn)
        .bind(email)
        .bind(now)
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Counts one more sending; creates the row for an account never invited.
    pub async fn bump_invitation(
        &mut self,
        dn: &str,
        email: &str,
        expected: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        if self.record_invitation(dn, email, now).await? {
            return Ok(true);
        }
        let done = sqlx::query(
            "UPDATE invitations SET reminders = reminders + 1, last_sent_at = $1, email = $2, \
             held_at = NULL WHERE account_dn = $3 AND ($4 < 0 OR reminders = $4)",
        )
        .bind(now)
        .bind(email)
        .bind(dn)
        .bind(expected.unwrap_or(-1))
        .execute(&mut *self.tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Commits; returns once the commit is on the disk.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        // The next writer may begin while this commit is flushed.
        drop(self.turn);
        match self.durable {
            Some(group) => group.durable().await,
            None => Ok(()),
        }
    }
}
