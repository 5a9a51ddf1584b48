//! Activation by personal e-mail (Paris Cité, Sorbonne): the student gives the e-mail
//! known at registration and accepts the terms; a one-time link goes there; the link
//! opens the password form; saving the password writes the entry active.
//!
//! Saving claims the link, writes the directory, then spends the link with the
//! records that follow (`critical`): if the directory write fails, the claim is let
//! go and the link still works.

use serde_json::json;
use time::OffsetDateTime;
use url::Url;

use super::FlowError;
use super::critical::{self, Claim, PasswordWrite};
use crate::app::App;
use crate::config::Profile;
use crate::directory::{Account, AccountChange};
use crate::domain::Lang;
use crate::domain::{
    AccountState, Email, PasswordPolicy, PersonalData, StateKind, Token, Violation,
};
use crate::store::{AuditEvent, LinkState, Origin, Outgoing, Purpose};

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
    pub app: &'a App,
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
        let mut found = self.app.directory.find_by_personal_email(email).await?;
        let account = match found.len() {
            0 => {
                let event =
                    AuditEvent::new("activation.request", "unknown").account(email.as_str());
                self.app.store.audit(&self.origin, event).await?;
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
            self.app.store.audit(&self.origin, event).await?;
            return Ok(Requested::NotSent(reason));
        }
        let token = Token::generate();
        let lifetime = self.app.profile().links.activation;
        let expires = now.unix_timestamp() + lifetime.as_secs() as i64;
        let link = self.link(&token);
        let terms = json!({
            "terms_version": self.app.profile().terms.version,
            "terms_accepted_at": now.unix_timestamp(),
        });
        let mail = Outgoing {
            kind: "activation_link".to_owned(),
            recipient: email.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "link": link,
                "lifetime": lifetime.as_secs(),
            }),
            account_dn: Some(account.dn.clone()),
        };
        let mut tx = self.app.store.begin().await?;
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
        self.app.wake_workers();
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
        let mut tx = self.app.store.begin().await?;
        tx.enqueue_mail(
            &ambiguous_mail(self.app.profile(), email.as_str(), found),
            at,
        )
        .await?;
        let logins: Vec<&str> = found.iter().map(|a| a.login.as_str()).collect();
        let event = AuditEvent::new("activation.request", "ambiguous")
            .account(email.as_str())
            .detail(json!({ "logins": logins }));
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }

    /// Step 2 (GET): what the link is. Never uses it up: mail scanners open links.
    pub async fn open(&self, token: &Token, now: OffsetDateTime) -> Result<Opened, FlowError> {
        let record = match self
            .app
            .store
            .peek_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
            .await?
        {
            LinkState::Live(record) => record,
            other => return Ok(Opened::Gone(other)),
        };
        let Some(account) = self.app.directory.read(&record.account_dn).await? else {
            return Ok(Opened::Gone(LinkState::Unknown));
        };
        Ok(Opened::Form {
            login: account.login.to_string(),
            display_name: account.greeting_name(),
        })
    }

    /// Step 3 (POST): checks the password, then writes the password, the active
    /// state and the accepted terms in one directory operation, and what follows
    /// (see `critical::PasswordWrite`). A directory failure leaves the link usable.
    pub async fn save(
        &self,
        token: &Token,
        candidate: &str,
        confirmation: &str,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Saved, FlowError> {
        let at = now.unix_timestamp();
        let hash = token.hash();
        let record = match self
            .app
            .store
            .peek_link(&hash, Purpose::Activation, at)
            .await?
        {
            LinkState::Live(record) => record,
            other => return Ok(Saved::Gone(other)),
        };
        let Some(account) = self.app.directory.read(&record.account_dn).await? else {
            return Ok(Saved::Gone(LinkState::Unknown));
        };
        if self.not_eligible(&account).is_some() {
            // Activated meanwhile, or locked by an admin: the link is spent.
            let mut tx = self.app.store.begin().await?;
            tx.spend_link(&hash, at).await?;
            tx.commit().await?;
            return Ok(Saved::Gone(LinkState::Used));
        }
        let policy = PasswordPolicy::new(self.app.profile().password.clone());
        let personal = personal_data(&account);
        let password = match policy.check(candidate, confirmation, &personal) {
            Ok(password) => password,
            // Nothing was claimed: the link stays usable for a corrected try.
            Err(violations) => return Ok(Saved::Refused(violations)),
        };
        let secret = self
            .app
            .directory
            .prepare_password(password.password())
            .await?;
        let record = match critical::claim(self.app, &hash, Purpose::Activation).await? {
            Claim::Held(record) => record,
            Claim::Gone(state) => return Ok(Saved::Gone(state)),
        };
        let write = PasswordWrite {
            app: self.app.clone(),
            origin: self.origin.clone(),
            link: Some(hash),
            account_dn: account.dn.clone(),
            secret,
            change: activation_change(self.app.profile(), &account, &record.payload, now),
            keep_session: None,
            mail: account
                .personal_email
                .as_ref()
                .map(|email| activated_mail(&account, email.as_str(), lang)),
            event: "activation.activated",
            expected_epoch: None,
            at,
        };
        self.app.finish(write.run()).await?;
        Ok(Saved::Activated {
            login: account.login.to_string(),
        })
    }

    fn not_eligible(&self, account: &Account) -> Option<NotSent> {
        not_eligible(self.app.profile(), account)
    }

    fn link(&self, token: &Token) -> String {
        link(self.app.public_url(), "/activation/password", token)
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
