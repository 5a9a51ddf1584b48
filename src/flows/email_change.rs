//! Change of the personal (back-up) e-mail, for a signed-in student: a link goes to
//! the new address; following it writes `supannMailPerso` and tells the old address.
//!
//! The personal address is where reset links go: whoever changes it owns the
//! account. So the change asks for the current password unless the student signed
//! in moments ago, and the old address is told as soon as the change is asked for,
//! with a link that cancels it (someone who found a session open on a shared
//! computer cannot take the account over quietly).

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::{link, mail_time, page};
use super::critical::{self, Claim};
use crate::app::App;
use crate::directory::{Account, AccountChange, BindOutcome};
use crate::domain::{Email, Lang, Password, Token, TokenHash};
use crate::store::{AuditEvent, LinkRecord, LinkState, Origin, Outgoing, Purpose, StoreError};

/// A sign-in this recent stands for the password: the student typed it moments ago.
pub const RECENT_SIGN_IN_SECS: i64 = 5 * 60;

#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    LinkSent,
    /// The address is the one on record already.
    Unchanged,
    /// The sign-in is not recent and no current password was given.
    PasswordNeeded,
    /// The current password given is not the account's: nothing was sent.
    WrongPassword,
}

/// What stands for the owner asking: a recent sign-in, or the current password.
pub struct Proof<'a> {
    /// When the session's sign-in happened (Unix seconds).
    pub signed_in_at: i64,
    /// As typed; may be empty when the sign-in is recent.
    pub current: &'a Password,
    /// The session asking.
    pub session: &'a TokenHash,
}

impl Proof<'_> {
    /// Whether the form must ask for the current password at `now`.
    pub fn needs_password(signed_in_at: i64, now: OffsetDateTime) -> bool {
        now.unix_timestamp() - signed_in_at >= RECENT_SIGN_IN_SECS
    }
}

/// What the old address's cancel link finds.
#[derive(Debug)]
pub enum CancelView {
    /// A change to this (masked) address waits for its confirmation.
    Pending {
        new_email: String,
    },
    Settled(Cancelled),
}

#[derive(Debug)]
pub enum Cancelled {
    /// The change will not happen: its confirmation link is void.
    Cancelled,
    /// Too late: the new address was confirmed first.
    AlreadyChanged,
    /// The change had expired or been replaced; nothing waits.
    NothingPending,
    /// The cancel link itself no longer works.
    Gone(LinkState),
}

#[derive(Debug)]
pub enum Confirmed {
    Changed { email: String },
    Gone(LinkState),
}

pub struct EmailChange<'a> {
    pub app: &'a App,
    /// Who asked, for the audit log.
    pub origin: Origin,
}

impl EmailChange<'_> {
    pub async fn request(
        &self,
        account: &Account,
        proof: Proof<'_>,
        new: &Email,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Requested, FlowError> {
        if let Some(refused) = self.refused_proof(account, &proof, now).await? {
            return Ok(refused);
        }
        if account.personal_email.as_ref() == Some(new) {
            return Ok(Requested::Unchanged);
        }
        let others = self.app.directory.find_by_personal_email(new).await?;
        // Another account has this address: every flow that matches by address
        // would stop working for both. Nothing changes and the address's owner is
        // told; the student sees what a free address gets, the old address's
        // notice and cancel link included (a signed-in student must not learn
        // whose addresses have accounts).
        let taken = others.iter().any(|other| other.dn != account.dn);
        self.send_link(account, proof.session, new, taken, lang, now)
            .await?;
        Ok(Requested::LinkSent)
    }

    /// `None` when the proof holds; otherwise why not (a wrong password is audited).
    async fn refused_proof(
        &self,
        account: &Account,
        proof: &Proof<'_>,
        now: OffsetDateTime,
    ) -> Result<Option<Requested>, FlowError> {
        if !Proof::needs_password(proof.signed_in_at, now) {
            return Ok(None);
        }
        if proof.current.is_empty() {
            return Ok(Some(Requested::PasswordNeeded));
        }
        let bound = self
            .app
            .directory
            .verify_password(&account.dn, proof.current)
            .await?;
        if bound == BindOutcome::Accepted {
            return Ok(None);
        }
        let event = AuditEvent::new("email_change.request", "wrong_password").account(&account.dn);
        self.app.store.audit(&self.origin, event).await?;
        Ok(Some(Requested::WrongPassword))
    }

    /// The confirmation link to the new address and, to the old one, the notice
    /// with its cancel link, in one commit. An address that is `taken` gets a
    /// notice without the link instead: the link is issued all the same, so the
    /// cancel link behaves alike, but its token goes nowhere and it is never used.
    async fn send_link(
        &self,
        account: &Account,
        session: &TokenHash,
        new: &Email,
        taken: bool,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<(), FlowError> {
        let at = now.unix_timestamp();
        let token = Token::generate();
        let lifetime = self.app.profile().links.email_change.as_secs();
        let expires_at = at + lifetime as i64;
        let mail = if taken {
            self.taken_mail(new, lang)
        } else {
            self.link_mail(account, new, &token, lifetime, lang)
        };
        let mut tx = self.app.store.begin().await?;
        tx.issue_link(
            &token.hash(),
            Purpose::EmailChange,
            &account.dn,
            &json!({ "email": new.as_str(), "lang": lang.code() }),
            at,
            expires_at,
        )
        .await?;
        tx.enqueue_mail(&mail, at).await?;
        if let Some(old) = &account.personal_email {
            let cancel = Token::generate();
            // The session that asked: cancelling ends it (whoever used a session left
            // open is signed out of Guichet and its applications).
            let payload = json!({
                "change": token.hash().as_str(),
                "email": masked(new),
                "session": session.as_str(),
            });
            tx.issue_link(
                &cancel.hash(),
                Purpose::EmailChangeCancel,
                &account.dn,
                &payload,
                at,
                expires_at,
            )
            .await?;
            let warning = self.requested_mail(account, old, new, &cancel, lang, now);
            tx.enqueue_mail(&warning, at).await?;
        }
        let outcome = if taken { "taken" } else { "ok" };
        let event = AuditEvent::new("email_change.request", outcome).account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }

    fn link_mail(
        &self,
        account: &Account,
        new: &Email,
        token: &Token,
        lifetime: u64,
        lang: Lang,
    ) -> Outgoing {
        Outgoing {
            kind: "email_change_link".to_owned(),
            recipient: new.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "link": link(self.app.public_url(), "/account/email/confirm", token),
                "lifetime": lifetime,
            }),
            account_dn: Some(account.dn.clone()),
        }
    }

    /// To an address another account has: someone asked for it, nothing changes.
    fn taken_mail(&self, new: &Email, lang: Lang) -> Outgoing {
        Outgoing {
            kind: "email_change_taken".to_owned(),
            recipient: new.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({ "help_url": page(self.app.public_url(), "/help") }),
            account_dn: None,
        }
    }

    /// To the old address, at once: a change was asked for; if it was not the
    /// owner, the link cancels it and the help page says what to do next.
    fn requested_mail(
        &self,
        account: &Account,
        old: &Email,
        new: &Email,
        cancel: &Token,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Outgoing {
        let public_url = self.app.public_url();
        Outgoing {
            kind: "email_change_requested".to_owned(),
            recipient: old.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "new_email": masked(new),
                "when": mail_time(now),
                "link": link(public_url, "/account/email/cancel", cancel),
                "help_url": page(public_url, "/help"),
            }),
            account_dn: Some(account.dn.clone()),
        }
    }

    /// GET on the cancel link: what it would cancel. Uses nothing up.
    pub async fn peek_cancel(
        &self,
        token: &Token,
        now: OffsetDateTime,
    ) -> Result<CancelView, FlowError> {
        let at = now.unix_timestamp();
        let (record, change) = match self.cancel_link(token, at).await? {
            Ok(found) => found,
            Err(gone) => return Ok(CancelView::Settled(gone)),
        };
        let state = self
            .app
            .store
            .peek_link(&change, Purpose::EmailChange, at)
            .await?;
        Ok(match state {
            LinkState::Live(_) => CancelView::Pending {
                new_email: record.payload["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            },
            LinkState::Used => CancelView::Settled(Cancelled::AlreadyChanged),
            _ => CancelView::Settled(Cancelled::NothingPending),
        })
    }

    /// POST on the cancel link. The change's link is claimed as a confirmation
    /// would claim it, so a cancel and a confirmation at the same moment end one
    /// way only: either the address changed and the cancel says too late, or the
    /// confirmation finds its link void and nothing was written.
    pub async fn cancel(&self, token: &Token, now: OffsetDateTime) -> Result<Cancelled, FlowError> {
        let at = now.unix_timestamp();
        let cancel = token.hash();
        let (record, change) = match self.cancel_link(token, at).await? {
            Ok(found) => found,
            Err(gone) => return Ok(gone),
        };
        match critical::claim(self.app, &change, Purpose::EmailChange).await? {
            Claim::Held(_) => {}
            // The cancel link stays: opened again, it says the same.
            Claim::Gone(LinkState::Used) => return Ok(Cancelled::AlreadyChanged),
            Claim::Gone(_) => {
                let mut tx = self.app.store.begin().await?;
                tx.spend_link(&cancel, at).await?;
                let event = AuditEvent::new("email_change.cancelled", "nothing_pending")
                    .account(&record.account_dn);
                tx.audit(&self.origin, event, at).await?;
                tx.commit().await?;
                return Ok(Cancelled::NothingPending);
            }
        }
        let recorded = self.cancelled(&record, &cancel, &change, at).await;
        if recorded.is_err() {
            critical::release(self.app, &change).await;
        }
        recorded?;
        Ok(Cancelled::Cancelled)
    }

    /// One commit: the change's link void, the cancel link spent, the session that
    /// asked ended with its applications, the audit row.
    async fn cancelled(
        &self,
        record: &LinkRecord,
        cancel: &TokenHash,
        change: &TokenHash,
        at: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.app.store.begin().await?;
        tx.void_link(change, at).await?;
        tx.spend_link(cancel, at).await?;
        let asked_from = record.payload["session"].as_str().unwrap_or_default();
        let ended = tx.end_session(asked_from, at).await?.is_some();
        let event = AuditEvent::new("email_change.cancelled", "ok")
            .account(&record.account_dn)
            .detail(json!({ "session_ended": ended }));
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }

    /// The live cancel link and the change it points at, or why there is none.
    async fn cancel_link(
        &self,
        token: &Token,
        at: i64,
    ) -> Result<Result<(LinkRecord, TokenHash), Cancelled>, FlowError> {
        let state = self
            .app
            .store
            .peek_link(&token.hash(), Purpose::EmailChangeCancel, at)
            .await?;
        let LinkState::Live(record) = state else {
            return Ok(Err(Cancelled::Gone(state)));
        };
        let change = record.payload["change"]
            .as_str()
            .and_then(TokenHash::from_stored);
        match change {
            Some(change) => Ok(Ok((record, change))),
            None => Ok(Err(Cancelled::Gone(LinkState::Unknown))),
        }
    }

    /// GET: what the link is. Uses nothing up.
    pub async fn peek(&self, token: &Token, now: OffsetDateTime) -> Result<LinkState, FlowError> {
        Ok(self
            .app
            .store
            .peek_link(&token.hash(), Purpose::EmailChange, now.unix_timestamp())
            .await?)
    }

    /// POST: the new address is confirmed; it is written, and the old one is told.
    pub async fn confirm(
        &self,
        token: &Token,
        now: OffsetDateTime,
    ) -> Result<Confirmed, FlowError> {
        let at = now.unix_timestamp();
        let hash = token.hash();
        let record = match self
            .app
            .store
            .peek_link(&hash, Purpose::EmailChange, at)
            .await?
        {
            LinkState::Live(record) => record,
            other => return Ok(Confirmed::Gone(other)),
        };
        let email = record.payload["email"]
            .as_str()
            .and_then(|e| e.parse::<Email>().ok());
        let account = self.app.directory.read(&record.account_dn).await?;
        let (Some(email), Some(account)) = (email, account) else {
            return Ok(Confirmed::Gone(LinkState::Unknown));
        };
        // Locked since, or another account took the address since the link was
        // sent: the link is void (so the old address's cancel link does not say it
        // changed), nothing changes.
        let others = self.app.directory.find_by_personal_email(&email).await?;
        if !account.is_active() || others.iter().any(|other| other.dn != account.dn) {
            let mut tx = self.app.store.begin().await?;
            tx.void_link(&hash, at).await?;
            tx.commit().await?;
            return Ok(Confirmed::Gone(LinkState::Voided));
        }
        let lang = record.payload["lang"]
            .as_str()
            .and_then(Lang::from_code)
            .unwrap_or(self.app.profile().languages.default);
        match critical::claim(self.app, &hash, Purpose::EmailChange).await? {
            Claim::Held(_) => {}
            Claim::Gone(state) => return Ok(Confirmed::Gone(state)),
        }
        let write = EmailWrite {
            app: self.app.clone(),
            origin: self.origin.clone(),
            link: hash,
            account_dn: account.dn.clone(),
            email: email.clone(),
            notice: account
                .personal_email
                .as_ref()
                .map(|old| self.notice(&account, old, &email, lang, now)),
            at,
        };
        self.app.finish(write.run()).await?;
        Ok(Confirmed::Changed {
            email: email.as_str().to_owned(),
        })
    }

    /// The notice to the old address: if the student did not ask, they can act.
    fn notice(
        &self,
        account: &Account,
        old: &Email,
        new: &Email,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Outgoing {
        Outgoing {
            kind: "email_changed".to_owned(),
            recipient: old.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "new_email": masked(new),
                "when": mail_time(now),
                "help_url": page(self.app.public_url(), "/help"),
            }),
            account_dn: Some(account.dn.clone()),
        }
    }
}

/// The new address written to the directory and what must follow it, run to its
/// end whatever happens to the request (see `critical`).
struct EmailWrite {
    app: App,
    origin: Origin,
    link: TokenHash,
    account_dn: String,
    email: Email,
    /// To the old address, if there was one.
    notice: Option<Outgoing>,
    at: i64,
}

impl EmailWrite {
    async fn run(self) -> Result<(), FlowError> {
        let change = AccountChange::default().set_personal_email(&self.email);
        if let Err(error) = self.app.directory.apply(&self.account_dn, change).await {
            critical::release(&self.app, &self.link).await;
            return Err(error.into());
        }
        critical::record(|| self.records()).await?;
        self.app.wake_workers();
        Ok(())
    }

    async fn records(&self) -> Result<(), StoreError> {
        let (dn, at) = (self.account_dn.as_str(), self.at);
        let mut tx = self.app.store.begin().await?;
        tx.spend_link(&self.link, at).await?;
        // Links already mailed (a reset link to the old address above all) die with
        // the address: a student changes it when the old mailbox is not theirs any
        // more. The cancel link stays, to say the change was made (and whom to ask).
        tx.void_links(dn, Some(Purpose::EmailChangeCancel), at)
            .await?;
        if let Some(notice) = &self.notice {
            tx.enqueue_mail(notice, at).await?;
        }
        let event = AuditEvent::new("email_change.confirmed", "ok").account(dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await
    }
}

/// `l***@example.org`: enough for the owner to recognise their address, not enough
/// to hand a stranger reading the old mailbox a new one.
fn masked(email: &Email) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}***@{domain}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_old_address_sees_the_new_one_masked() {
        let email: Email = "lea.durand@example.org".parse().unwrap();
        assert_eq!(masked(&email), "l***@example.org");
    }
}
