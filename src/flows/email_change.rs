//! Change of the personal (back-up) e-mail, for a signed-in student: a link goes to
//! the new address; following it writes `supannMailPerso` and tells the old address.

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use url::Url;

use super::FlowError;
use super::activation::{link, mail_time, page};
use crate::config::{Lang, Profile};
use crate::directory::{Account, AccountChange, Directory};
use crate::domain::{Email, StateKind, Token};
use crate::store::{AuditEvent, LinkState, Origin, Outgoing, Purpose, Store};

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
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub profile: &'a Profile,
    pub public_url: &'a Url,
    pub outbox: Arc<Notify>,
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
        let others = self.directory.find_by_personal_email(new).await?;
        // Another account has this address: every flow that matches by address
        // would stop working for both. The page says the same as for a free
        // address (a signed-in student must not learn whose addresses have
        // accounts); the address's owner is told, and nothing changes.
        if others.iter().any(|other| other.dn != account.dn) {
            let mail = Outgoing {
                kind: "email_change_taken".to_owned(),
                recipient: new.as_str().to_owned(),
                lang: lang.code().to_owned(),
                payload: json!({ "help_url": page(self.public_url, "/help") }),
                account_dn: None,
            };
            let mut tx = self.store.begin().await?;
            tx.enqueue_mail(&mail, at).await?;
            let event = AuditEvent::new("email_change.request", "taken").account(&account.dn);
            tx.audit(&self.origin, event, at).await?;
            tx.commit().await?;
            self.outbox.notify_one();
            return Ok(Requested::LinkSent);
        }
        let token = Token::generate();
        let lifetime = self.profile.links.email_change.as_secs();
        let mail = Outgoing {
            kind: "email_change_link".to_owned(),
            recipient: new.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "link": link(self.public_url, "/account/email/confirm", &token),
                "hours": lifetime / 3600,
            }),
            account_dn: Some(account.dn.clone()),
        };
        let mut tx = self.store.begin().await?;
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
        self.outbox.notify_one();
        Ok(Requested::LinkSent)
    }

    /// GET: what the link is. Uses nothing up.
    pub async fn peek(&self, token: &Token, now: OffsetDateTime) -> Result<LinkState, FlowError> {
        Ok(self
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
        let mut tx = self.store.begin().await?;
        let Some(record) = tx.use_link(&token.hash(), Purpose::EmailChange, at).await? else {
            drop(tx);
            return Ok(Confirmed::Gone(self.peek(token, now).await?));
        };
        let email = record.payload["email"]
            .as_str()
            .and_then(|e| e.parse::<Email>().ok());
        let account = self.directory.read(&record.account_dn).await?;
        let (Some(email), Some(account)) = (email, account) else {
            return Ok(Confirmed::Gone(LinkState::Unknown));
        };
        if !account
            .state
            .as_ref()
            .is_some_and(|s| s.kind == StateKind::Active)
        {
            tx.commit().await?;
            return Ok(Confirmed::Gone(LinkState::Voided));
        }
        // Another account may have taken the address since the link was sent.
        let others = self.directory.find_by_personal_email(&email).await?;
        if others.iter().any(|other| other.dn != account.dn) {
            tx.commit().await?;
            return Ok(Confirmed::Gone(LinkState::Voided));
        }
        let lang = record.payload["lang"]
            .as_str()
            .and_then(Lang::from_code)
            .unwrap_or(self.profile.languages.default);
        // If this fails, `tx` rolls back: the link works again once the directory is back.
        self.directory
            .apply(
                &account.dn,
                AccountChange::default().set_personal_email(&email),
            )
            .await?;
        // Links already mailed (a reset link to the old address above all) die with
        // the address: a student changes it when the old mailbox is not theirs any
        // more.
        tx.void_links(&account.dn, at).await?;
        if let Some(old) = &account.personal_email {
            tx.enqueue_mail(&self.notice(&account, old, &email, lang, now), at)
                .await?;
        }
        let event = AuditEvent::new("email_change.confirmed", "ok").account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.outbox.notify_one();
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
                "help_url": page(self.public_url, "/help"),
            }),
            account_dn: Some(account.dn.clone()),
        }
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
