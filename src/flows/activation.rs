//! Activation by personal e-mail (Paris Cité, Sorbonne): the student gives the e-mail
//! known at registration and accepts the terms; a one-time link goes there; the link
//! opens the password form; saving the password writes the entry active.
//!
//! The link is used up and the directory written in one unit: if the directory write
//! fails, the database transaction rolls back and the link still works.

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;
use url::Url;

use super::FlowError;
use crate::config::{Lang, Profile};
use crate::directory::{Account, AccountChange, Directory};
use crate::domain::{
    AccountState, Email, PasswordPolicy, PersonalData, StateKind, Token, Violation,
};
use crate::store::{AuditEvent, LinkState, Origin, Outgoing, Purpose, Store};

/// Why no link was sent. Pages show the same answer for all of these unless the
/// profile reveals account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotSent {
    Unknown,
    AlreadyActive,
    /// Locked, expired or another state that no flow accepts.
    Refused,
    /// Several entries share this e-mail: a human must sort it out.
    Ambiguous,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    LinkSent,
    NotSent(NotSent),
}

/// What an opened link shows.
#[derive(Debug)]
pub enum Opened {
    /// The password form, for this account.
    Form {
        login: String,
        display_name: String,
    },
    Gone(LinkState),
}

#[derive(Debug)]
pub enum Saved {
    Activated {
        login: String,
    },
    /// The password breaks these rules; the link is still usable.
    Refused(Vec<Violation>),
    /// The link expired, was used or replaced meanwhile.
    Gone(LinkState),
}

/// What the activation flow needs, borrowed from the application.
pub struct Activation<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub profile: &'a Profile,
    pub public_url: &'a Url,
    pub outbox: Arc<Notify>,
    /// Who asked, for the audit log.
    pub origin: Origin,
}

impl Activation<'_> {
    /// Step 1: e-mail given, terms accepted. Sends the link if exactly one account
    /// awaiting activation has this personal e-mail.
    pub async fn request(
        &self,
        email: &Email,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Requested, FlowError> {
        let mut found = self.directory.find_by_personal_email(email).await?;
        let account = match found.len() {
            0 => {
                let event =
                    AuditEvent::new("activation.request", "unknown").account(email.as_str());
                self.store.audit(&self.origin, event).await?;
                return Ok(Requested::NotSent(NotSent::Unknown));
            }
            1 => found.remove(0),
            _ => {
                tracing::warn!(
                    count = found.len(),
                    "activation: personal e-mail shared by several entries"
                );
                self.tell_helpdesk(email, &found, now.unix_timestamp())
                    .await?;
                return Ok(Requested::NotSent(NotSent::Ambiguous));
            }
        };
        if let Some(reason) = self.not_eligible(&account) {
            let outcome = match reason {
                NotSent::AlreadyActive => "already_active",
                _ => "refused",
            };
            let event = AuditEvent::new("activation.request", outcome).account(&account.dn);
            self.store.audit(&self.origin, event).await?;
            return Ok(Requested::NotSent(reason));
        }
        let token = Token::generate();
        let lifetime = self.profile.links.activation;
        let expires = now.unix_timestamp() + lifetime.as_secs() as i64;
        let link = self.link(&token);
        let terms = json!({
            "terms_version": self.profile.terms.version,
            "terms_accepted_at": now.unix_timestamp(),
        });
        let mail = Outgoing {
            kind: "activation_link".to_owned(),
            recipient: email.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "link": link,
                "hours": lifetime.as_secs() / 3600,
            }),
            account_dn: Some(account.dn.clone()),
        };
        let mut tx = self.store.begin().await?;
        tx.issue_link(
            &token.hash(),
            Purpose::Activation,
            &account.dn,
            &terms,
            now.unix_timestamp(),
            expires,
        )
        .await?;
        tx.enqueue_mail(&mail, now.unix_timestamp()).await?;
        let event = AuditEvent::new("activation.request", "ok").account(&account.dn);
        tx.audit(&self.origin, event, now.unix_timestamp()).await?;
        tx.commit().await?;
        self.outbox.notify_one();
        Ok(Requested::LinkSent)
    }

    /// Several entries share this personal e-mail: no link (it could reach the wrong
    /// person), and the helpdesk is told which entries, to sort them out.
    pub(super) async fn tell_helpdesk(
        &self,
        email: &Email,
        found: &[Account],
        at: i64,
    ) -> Result<(), FlowError> {
        let mut tx = self.store.begin().await?;
        tx.enqueue_mail(&ambiguous_mail(self.profile, email.as_str(), found), at)
            .await?;
        let logins: Vec<&str> = found.iter().map(|a| a.login.as_str()).collect();
        let event = AuditEvent::new("activation.request", "ambiguous")
            .account(email.as_str())
            .detail(json!({ "logins": logins }));
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.outbox.notify_one();
        Ok(())
    }

    /// Step 2 (GET): what the link is. Never uses it up: mail scanners open links.
    pub async fn open(&self, token: &Token, now: OffsetDateTime) -> Result<Opened, FlowError> {
        let record = match self
            .store
            .peek_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
            .await?
        {
            LinkState::Live(record) => record,
            other => return Ok(Opened::Gone(other)),
        };
        let Some(account) = self.directory.read(&record.account_dn).await? else {
            return Ok(Opened::Gone(LinkState::Unknown));
        };
        Ok(Opened::Form {
            login: account.login.to_string(),
            display_name: account.greeting_name(),
        })
    }

    /// Step 3 (POST): checks the password, then uses the link up and writes the
    /// password, the active state and the accepted terms in one directory operation.
    pub async fn save(
        &self,
        token: &Token,
        candidate: &str,
        confirmation: &str,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Saved, FlowError> {
        let Opened::Form { .. } = self.open(token, now).await? else {
            let state = self
                .store
                .peek_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
                .await?;
            return Ok(Saved::Gone(state));
        };
        let mut tx = self.store.begin().await?;
        let Some(record) = tx
            .use_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
            .await?
        else {
            drop(tx);
            let state = self
                .store
                .peek_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
                .await?;
            return Ok(Saved::Gone(state));
        };
        let Some(account) = self.directory.read(&record.account_dn).await? else {
            return Ok(Saved::Gone(LinkState::Unknown));
        };
        if self.not_eligible(&account).is_some() {
            // Activated meanwhile, or locked by an admin: the link is spent.
            tx.commit().await?;
            return Ok(Saved::Gone(LinkState::Used));
        }
        let policy = PasswordPolicy::new(self.profile.password.clone());
        let personal = personal_data(&account);
        let password = match policy.check(candidate, confirmation, &personal) {
            Ok(password) => password,
            // The transaction rolls back: the link stays usable for a corrected try.
            Err(violations) => return Ok(Saved::Refused(violations)),
        };
        let change = activation_change(self.profile, &account, &record.payload, now);
        // If this fails, returning drops `tx`: the link is not used up.
        self.directory
            .set_password(&account.dn, password.password(), change)
            .await?;
        tx.void_links(&account.dn, now.unix_timestamp()).await?;
        if let Some(email) = &account.personal_email {
            tx.enqueue_mail(
                &activated_mail(&account, email.as_str(), lang),
                now.unix_timestamp(),
            )
            .await?;
        }
        let event = AuditEvent::new("activation.activated", "ok").account(&account.dn);
        tx.audit(&self.origin, event, now.unix_timestamp()).await?;
        tx.commit().await?;
        self.outbox.notify_one();
        Ok(Saved::Activated {
            login: account.login.to_string(),
        })
    }

    fn not_eligible(&self, account: &Account) -> Option<NotSent> {
        not_eligible(self.profile, account)
    }

    fn link(&self, token: &Token) -> String {
        link(self.public_url, "/activation/password", token)
    }
}

/// Why this account cannot be activated now, if it cannot.
pub(super) fn not_eligible(profile: &Profile, account: &Account) -> Option<NotSent> {
    // An entry without an account state was not provisioned for self-service.
    let Some(state) = account.state.as_ref() else {
        return Some(NotSent::Refused);
    };
    let awaiting = profile.activation.awaiting_states.contains(&state.short());
    match state.kind {
        _ if awaiting => None,
        StateKind::Active => Some(NotSent::AlreadyActive),
        _ => Some(NotSent::Refused),
    }
}

/// The active state, with the terms version and acceptance time that the link's
/// payload recorded when the student accepted them.
pub(super) fn activation_change(
    profile: &Profile,
    account: &Account,
    payload: &serde_json::Value,
    now: OffsetDateTime,
) -> AccountChange {
    let version = payload["terms_version"]
        .as_str()
        .unwrap_or(&profile.terms.version);
    let accepted_at = payload["terms_accepted_at"]
        .as_i64()
        .and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok())
        .unwrap_or(now);
    AccountChange::default()
        .set_state(account, &AccountState::activated(now.date()))
        .accept_terms(account, version, accepted_at)
        .activated_at(account, now)
}

/// The address of one of our pages, for a mail.
pub(super) fn page(public_url: &Url, path: &str) -> String {
    let mut url = public_url.clone();
    url.set_path(path);
    url.to_string()
}

/// The time a mail reports a change at.
pub(super) fn mail_time(now: OffsetDateTime) -> String {
    now.format(time::macros::format_description!(
        "[day]/[month]/[year] [hour]:[minute] UTC"
    ))
    .unwrap_or_default()
}

/// The address of a page of ours carrying a token.
pub(super) fn link(public_url: &Url, path: &str, token: &Token) -> String {
    let mut url = public_url.clone();
    url.set_path(path);
    url.set_query(Some(&format!("t={}", token.expose())));
    url.to_string()
}

/// The confirmation mail sent once an account is active.
pub(super) fn activated_mail(account: &Account, to: &str, lang: Lang) -> Outgoing {
    Outgoing {
        kind: "account_activated".to_owned(),
        recipient: to.to_owned(),
        lang: lang.code().to_owned(),
        payload: json!({
            "name": account.greeting_name(),
            "login": account.login.as_str(),
        }),
        account_dn: Some(account.dn.clone()),
    }
}

pub(super) fn personal_data(account: &Account) -> PersonalData<'_> {
    PersonalData {
        login: Some(account.login.as_str()),
        student_id: account.student_id.as_ref().map(|s| s.as_str()),
        names: [&account.given_name, &account.surname]
            .into_iter()
            .filter_map(|n| n.as_deref())
            .collect(),
        dates: account
            .date_of_birth
            .map(|d| d.spellings().to_vec())
            .unwrap_or_default(),
    }
}

/// The helpdesk's notice that one address names several entries.
pub(super) fn ambiguous_mail(profile: &Profile, typed: &str, found: &[Account]) -> Outgoing {
    let logins: Vec<&str> = found.iter().map(|a| a.login.as_str()).collect();
    Outgoing {
        kind: "support_ambiguous".to_owned(),
        recipient: profile.support.email.as_str().to_owned(),
        lang: profile.languages.default.code().to_owned(),
        payload: json!({ "typed": typed, "logins": logins }),
        account_dn: None,
    }
}
