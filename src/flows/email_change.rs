//! Change of the personal (back-up) e-mail, for a signed-in student: a link goes to
//! the new address; following it writes `supannMailPerso` and tells the old address.

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::{link, mail_time, page};
use super::critical::{self, Claim};
use crate::app::App;
use crate::directory::{Account, AccountChange};
use crate::domain::Lang;
use crate::domain::{Email, Token, TokenHash};
use crate::store::{AuditEvent, LinkState, Origin, Outgoing, Purpose, StoreError};

#[derive(Debug, PartialEq, Eq)]
pub enum Requested {
    LinkSent,
    /// The address is the one on record already.
    Unchanged,
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
        new: &Email,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Requested, FlowError> {
        let at = now.unix_timestamp();
        if account.personal_email.as_ref() == Some(new) {
            return Ok(Requested::Unchanged);
        }
        let others = self.app.directory.find_by_personal_email(new).await?;
        // Another account has this address: every flow that matches by address
        // would stop working for both. The page says the same as for a free
        // address (a signed-in student must not learn whose addresses have
        // accounts); the address's owner is told, and nothing changes.
        if others.iter().any(|other| other.dn != account.dn) {
            let mail = Outgoing {
                kind: "email_change_taken".to_owned(),
                recipient: new.as_str().to_owned(),
                lang: lang.code().to_owned(),
                payload: json!({ "help_url": page(self.app.public_url(), "/help") }),
                account_dn: None,
            };
            let mut tx = self.app.store.begin().await?;
            tx.enqueue_mail(&mail, at).await?;
            let event = AuditEvent::new("email_change.request", "taken").account(&account.dn);
            tx.audit(&self.origin, event, at).await?;
            tx.commit().await?;
            self.app.wake_workers();
            return Ok(Requested::LinkSent);
        }
        let token = Token::generate();
        let lifetime = self.app.profile().links.email_change.as_secs();
        let mail = Outgoing {
            kind: "email_change_link".to_owned(),
            recipient: new.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "link": link(self.app.public_url(), "/account/email/confirm", &token),
                "hours": lifetime / 3600,
            }),
            account_dn: Some(account.dn.clone()),
        };
        let mut tx = self.app.store.begin().await?;
        tx.issue_link(
            &token.hash(),
            Purpose::EmailChange,
            &account.dn,
            &json!({ "email": new.as_str(), "lang": lang.code() }),
            at,
            at + lifetime as i64,
        )
        .await?;
        tx.enqueue_mail(&mail, at).await?;
        let event = AuditEvent::new("email_change.request", "ok").account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(Requested::LinkSent)
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
        // sent: the link is spent, nothing changes.
        let others = self.app.directory.find_by_personal_email(&email).await?;
        if !account.is_active() || others.iter().any(|other| other.dn != account.dn) {
            let mut tx = self.app.store.begin().await?;
            tx.spend_link(&hash, at).await?;
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
        // more.
        tx.void_links(dn, None, at).await?;
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
