//! Critical sections (DESIGN §7): a directory write that a one-time link authorises,
//! then the records that must follow it (the link spent, other links voided,
//! sessions ended, the notice mail, the audit row).
//!
//! - Nothing slow happens inside an SQL transaction: the password is hashed before,
//!   the link is *claimed* in a short statement of its own (a lease, so that two
//!   requests with one link never both write), the directory is written, and only
//!   then is the transaction of records opened.
//! - The write and its records run in a task of their own ([`App::finish`]): the
//!   client hanging up or the request timing out does not stop them half-way.
//! - If the database is briefly unreachable after the write, the records are
//!   retried: the write happened, so they must follow.

use std::future::Future;
use std::time::Duration;

use serde_json::json;

use crate::app::App;
use crate::directory::{AccountChange, NewSecret};
use crate::domain::TokenHash;
use crate::store::{
    AccountClaim, AuditEvent, Ended, LinkRecord, LinkState, Origin, Outgoing, Purpose, StoreError,
};

use super::FlowError;

/// How long a claim holds a link: more than a directory write can take (its
/// timeout is a few seconds) with the records after it.
const LEASE_SECS: i64 = 120;
/// Records after a write are retried for at most this long, well inside the lease:
/// the link cannot be claimed again while they may still commit.
const RECORD_BUDGET: Duration = Duration::from_secs(60);
/// A request that finds the link claimed by another (a double submission) waits
/// this long for the other to finish, then sees what it did.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
const RECORD_RETRY: Duration = Duration::from_secs(2);

/// The link, claimed for this request's write, or what it is instead.
#[derive(Debug)]
pub(super) enum Claim {
    Held(LinkRecord),
    Gone(LinkState),
}

/// Claims the link. A link another request is writing with is waited for: the
/// other either spends it (this one then sees it used) or lets it go (this one
/// claims it).
pub(super) async fn claim(
    app: &App,
    hash: &TokenHash,
    purpose: Purpose,
) -> Result<Claim, FlowError> {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
    loop {
        let now = crate::store::unix_now();
        if let Some(record) = app.store.claim_link(hash, purpose, now, LEASE_SECS).await? {
            return Ok(Claim::Held(record));
        }
        if !app.store.link_is_claimed(hash, now).await? {
            match app.store.peek_link(hash, purpose, now).await? {
                // The other request let go just now (its write failed): try again.
                LinkState::Live(_) => continue,
                other => return Ok(Claim::Gone(other)),
            }
        }
        wait_for_other(deadline).await?;
    }
}

/// Another request holds what this one needs: waits a moment, or gives up at
/// `deadline` (nothing was changed by this request).
async fn wait_for_other(deadline: tokio::time::Instant) -> Result<(), FlowError> {
    if tokio::time::Instant::now() >= deadline {
        return Err(FlowError::LinkBusy);
    }
    tokio::time::sleep(POLL).await;
    Ok(())
}

/// Lets go of the claim after a failed write, so the same link works again; a
/// failure to let go only delays that until the lease ends.
pub(super) async fn release(app: &App, hash: &TokenHash) {
    if let Err(error) = app.store.release_link(hash).await {
        tracing::warn!(%error, "link claim not released; it lapses with its lease");
    }
}

/// Runs `attempt` (one transaction of records) until it commits, retrying while
/// the database is unreachable or busy, for at most [`RECORD_BUDGET`].
pub(super) async fn record<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = tokio::time::Instant::now() + RECORD_BUDGET;
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(error) if error.is_transient() && tokio::time::Instant::now() < deadline => {
                tracing::warn!(%error, tries, "records after a directory write: database unreachable, retrying");
                tokio::time::sleep(RECORD_RETRY).await;
            }
            Err(error) => {
                tracing::error!(%error, "records after a directory write were not made");
                return Err(error);
            }
            Ok(done) => return Ok(done),
        }
    }
}

/// A new password written to the directory, with the account change that goes
/// with it (activation's state and terms), run with [`App::finish`]:
///
/// 1. the account is claimed (no other password write to it meanwhile) and its
///    credential epoch raised, its sessions ended with their applications: before
///    the write, so that they end even if the write's answer is lost;
/// 2. the directory is written;
/// 3. the link is spent, the account's other links voided, the epoch raised again
///    (a sign-in that checked the old password while the write ran dies too), the
///    sessions opened meanwhile ended, the mail queued, the audit row written, the
///    account let go.
pub(super) struct PasswordWrite {
    pub app: App,
    pub origin: Origin,
    /// The link that authorised it, claimed beforehand; `None` when signed in.
    pub link: Option<TokenHash>,
    pub account_dn: String,
    pub secret: NewSecret,
    pub change: AccountChange,
    /// The session the student changed their password in, which stays open.
    pub keep_session: Option<TokenHash>,
    pub mail: Option<Outgoing>,
    /// The audit event's kind.
    pub event: &'static str,
    /// A change signed in: the epoch read before the current password was checked.
    /// If a reset moved it since, the change is overtaken and nothing is written.
    pub expected_epoch: Option<i64>,
    pub at: i64,
}

/// What became of a password write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    Done(Ended),
    /// A reset came between the password check and the write: nothing written.
    Overtaken,
}

impl PasswordWrite {
    pub async fn run(self) -> Result<Written, FlowError> {
        let before = match self.claim_account().await {
            Ok(Some(ended)) => ended,
            Ok(None) => {
                self.release_link().await;
                return Ok(Written::Overtaken);
            }
            Err(error) => {
                self.release_link().await;
                return Err(error);
            }
        };
        let written = self
            .app
            .directory
            .write_password(&self.account_dn, &self.secret, self.change.clone())
            .await;
        if let Err(error) = written {
            self.release_link().await;
            self.release_account().await;
            return Err(error.into());
        }
        let after = record(|| self.records()).await?;
        self.app.wake_workers();
        Ok(Written::Done(Ended {
            sessions: before.sessions + after.sessions,
            logouts_queued: before.logouts_queued + after.logouts_queued,
        }))
    }

    /// Step 1; `None` when overtaken by a reset.
    async fn claim_account(&self) -> Result<Option<Ended>, FlowError> {
        let (dn, keep) = (self.account_dn.as_str(), self.keep_session.as_ref());
        let deadline = tokio::time::Instant::now() + WAIT_FOR_OTHER;
        loop {
            let now = crate::store::unix_now();
            let mut tx = self.app.store.begin().await?;
            match tx
                .claim_account(dn, self.expected_epoch, now, LEASE_SECS)
                .await?
            {
                AccountClaim::Claimed(epoch) => {
                    let ended = tx
                        .end_account_sessions(dn, keep.map(TokenHash::as_str), now)
                        .await?;
                    if let Some(keep) = keep {
                        tx.restamp_session(keep.as_str(), epoch).await?;
                    }
                    tx.commit().await?;
                    self.app.wake_workers();
                    return Ok(Some(ended));
                }
                AccountClaim::Moved => return Ok(None),
                AccountClaim::Held => drop(tx),
            }
            wait_for_other(deadline).await?;
        }
    }

    async fn release_link(&self) {
        if let Some(link) = &self.link {
            release(&self.app, link).await;
        }
    }

    /// After a failed write; failing to let go only delays the next write until
    /// the lease ends.
    async fn release_account(&self) {
        let released = async {
            let mut tx = self.app.store.begin().await?;
            tx.release_account(&self.account_dn).await?;
            tx.commit().await
        };
        if let Err(error) = released.await {
            tracing::warn!(%error, "account claim not released; it lapses with its lease");
        }
    }

    async fn records(&self) -> Result<Ended, StoreError> {
        let (dn, at) = (self.account_dn.as_str(), self.at);
        let keep = self.keep_session.as_ref().map(TokenHash::as_str);
        let mut tx = self.app.store.begin().await?;
        if let Some(link) = &self.link {
            tx.spend_link(link, at).await?;
        }
        // Signed in, the owner's reset links stay: see `void_links`.
        let spare = self.keep_session.is_some().then_some(Purpose::Reset);
        tx.void_links(dn, spare, at).await?;
        let epoch = tx.raise_epoch(dn, at).await?;
        let ended = tx.end_account_sessions(dn, keep, at).await?;
        if let Some(keep) = keep {
            tx.restamp_session(keep, epoch).await?;
        }
        if let Some(mail) = &self.mail {
            tx.enqueue_mail(mail, at).await?;
        }
        let detail =
            json!({ "sessions_ended": ended.sessions, "logouts_queued": ended.logouts_queued });
        let event = AuditEvent::new(self.event, "ok").account(dn).detail(detail);
        tx.audit(&self.origin, event, at).await?;
        tx.release_account(dn).await?;
        tx.commit().await?;
        Ok(ended)
    }
}
