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
    AuditEvent, Ended, LinkRecord, LinkState, Origin, Outgoing, Purpose, StoreError,
};

use super::FlowError;

/// How long a claim holds a link: more than a directory write can take (its
/// timeout is a few seconds) with the records after it.
const LEASE_SECS: i64 = 120;
/// A request that finds the link claimed by another (a double submission) waits
/// this long for the other to finish, then sees what it did.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);
/// Records that must follow a write are retried for about a minute.
const RECORD_ATTEMPTS: u32 = 30;
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
            return Ok(Claim::Gone(app.store.peek_link(hash, purpose, now).await?));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(FlowError::LinkBusy);
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Lets go of the claim after a failed write, so the same link works again; a
/// failure to let go only delays that until the lease ends.
pub(super) async fn release(app: &App, hash: &TokenHash) {
    if let Err(error) = app.store.release_link(hash).await {
        tracing::warn!(%error, "link claim not released; it lapses with its lease");
    }
}

/// Runs `attempt` (one transaction of records) until it commits, retrying while
/// the database is unreachable.
pub(super) async fn record<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(StoreError::Unavailable(error)) if tries < RECORD_ATTEMPTS => {
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
/// with it (activation's state and terms), and what must follow: the link spent,
/// the account's other links voided, its credential epoch raised (every session
/// and token issued before stops counting, even one being issued right now), its
/// sessions ended with their applications, the mail, the audit row. Run it with
/// [`App::finish`].
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
    pub at: i64,
}

impl PasswordWrite {
    pub async fn run(self) -> Result<Ended, FlowError> {
        let written = self
            .app
            .directory
            .write_password(&self.account_dn, &self.secret, self.change.clone())
            .await;
        if let Err(error) = written {
            if let Some(link) = &self.link {
                release(&self.app, link).await;
            }
            return Err(error.into());
        }
        let ended = record(|| self.records()).await?;
        self.app.wake_workers();
        Ok(ended)
    }

    async fn records(&self) -> Result<Ended, StoreError> {
        let (dn, at) = (self.account_dn.as_str(), self.at);
        let keep = self.keep_session.as_ref().map(TokenHash::as_str);
        let mut tx = self.app.store.begin().await?;
        if let Some(link) = &self.link {
            tx.spend_link(link, at).await?;
        }
        tx.void_links(dn, at).await?;
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
        tx.commit().await?;
        Ok(ended)
    }
}
