//! Forgot password: the student names their account (personal e-mail, or login or
//! student number where the profile allows), a one-time link goes to the personal
//! e-mail on record, and the new password is written at once. Everyone sees the same
//! page; only the mail tells the owner what to do (set a password, activate first, or
//! ask the helpdesk).

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::{ambiguous_mail, link, mail_time, not_eligible, page, personal_data};
use super::critical::{self, Claim, PasswordWrite, Written};
use crate::app::App;
use crate::config::ResetIdentifier;
use crate::directory::{Account, AccountChange};
use crate::domain::Lang;
use crate::domain::{Email, Login, PasswordPolicy, StateKind, StudentId, Token, Violation};
use crate::store::{AuditEvent, LinkState, Origin, Outgoing, Purpose};

/// What the student typed, parsed as the profile allows.
#[derive(Debug, Clone)]
pub enum Identifier {
    Email(Email),
    Login(Login),
    Student(StudentId),
}

impl Identifier {
    /// Reads `raw` as the profile allows: an e-mail has an `@`; digits only are a
    /// student number; anything else is a login (or a student number with letters,
    /// where logins are not accepted).
    pub fn parse(raw: &str, allowed: &[ResetIdentifier]) -> Option<Identifier> {
        let raw = raw.trim();
        let allows = |kind| allowed.contains(&kind);
        if raw.contains('@') {
            return allows(ResetIdentifier::PersonalEmail)
                .then(|| raw.parse().ok().map(Identifier::Email))
                .flatten();
        }
        let digits = !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit());
        let student = || raw.parse().ok().map(Identifier::Student);
        if allows(ResetIdentifier::Login) && !digits {
            return raw.parse().ok().map(Identifier::Login);
        }
        allows(ResetIdentifier::StudentNumber)
            .then(student)
            .flatten()
    }

    /// What the audit log keeps of it: the helpdesk follows a student by it.
    fn audited(&self) -> String {
        match self {
            Identifier::Email(email) => email.as_str().to_owned(),
            Identifier::Login(login) => login.to_string(),
            Identifier::Student(student) => student.as_str().to_owned(),
        }
    }
}

/// What an opened link shows.
#[derive(Debug)]
pub enum Opened {
    Form { login: String },
    Gone(LinkState),
}

#[derive(Debug)]
pub enum Changed {
    Done {
        login: String,
        /// How many sessions the change ended (their applications are told).
        sessions_ended: u64,
    },
    Refused(Vec<Violation>),
    Gone(LinkState),
}

/// What the reset flow needs, borrowed from the application.
pub struct Reset<'a> {
    pub app: &'a App,
    /// Who asked, for the audit log.
    pub origin: Origin,
}

impl Reset<'_> {
    /// Step 1. Always answers the same; what happens depends on the account.
    pub async fn request(
        &self,
        identifier: &Identifier,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<(), FlowError> {
        let at = now.unix_timestamp();
        let typed = identifier.audited();
        let mut found = self.find(identifier).await?;
        if found.len() > 1 {
            return self.ambiguous(&typed, &found, at).await;
        }
        let Some(account) = found.pop() else {
            let event = AuditEvent::new("reset.request", "unknown").account(typed);
            return Ok(self.app.store.audit(&self.origin, event).await?);
        };
        let Some(email) = account.personal_email.clone() else {
            let event = AuditEvent::new("reset.request", "no_personal_email").account(&account.dn);
            return Ok(self.app.store.audit(&self.origin, event).await?);
        };
        let mut tx = self.app.store.begin().await?;
        let (mail, outcome) = match account.state.as_ref().map(|s| s.kind) {
            Some(StateKind::Active) => {
                let token = Token::generate();
                let expires = at + self.app.profile().links.reset.as_secs() as i64;
                tx.issue_link(
                    &token.hash(),
                    Purpose::Reset,
                    &account.dn,
                    &json!({}),
                    at,
                    expires,
                )
                .await?;
                (self.link_mail(&account, &email, &token, lang), "ok")
            }
            _ if not_eligible(self.app.profile(), &account).is_none() => (
                self.notice(&account, &email, "reset_not_activated", lang),
                "not_activated",
            ),
            _ => (
                self.notice(&account, &email, "reset_locked", lang),
                "locked",
            ),
        };
        tx.enqueue_mail(&mail, at).await?;
        let event = AuditEvent::new("reset.request", outcome).account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }

    async fn find(&self, identifier: &Identifier) -> Result<Vec<Account>, FlowError> {
        Ok(match identifier {
            Identifier::Email(email) => self.app.directory.find_by_personal_email(email).await?,
            Identifier::Login(login) => self
                .app
                .directory
                .find_by_login(login)
                .await?
                .into_iter()
                .collect(),
            Identifier::Student(student) => self.app.directory.find_by_student_id(student).await?,
        })
    }

    /// Several entries answer to what was typed: no link (it could reach the wrong
    /// person); the helpdesk is told which entries, to sort them out.
    async fn ambiguous(&self, typed: &str, found: &[Account], at: i64) -> Result<(), FlowError> {
        let logins: Vec<&str> = found.iter().map(|a| a.login.as_str()).collect();
        let mail = ambiguous_mail(self.app.profile(), typed, found);
        let mut tx = self.app.store.begin().await?;
        tx.enqueue_mail(&mail, at).await?;
        let event = AuditEvent::new("reset.request", "ambiguous")
            .account(typed)
            .detail(json!({ "logins": logins }));
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(())
    }

    fn link_mail(&self, account: &Account, to: &Email, token: &Token, lang: Lang) -> Outgoing {
        Outgoing {
            kind: "reset_link".to_owned(),
            recipient: to.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "link": link(self.app.public_url(), "/password/reset", token),
                "lifetime": self.app.profile().links.reset.as_secs(),
            }),
            account_dn: Some(account.dn.clone()),
        }
    }

    /// A mail that tells the owner why no link came, and where to go instead.
    fn notice(&self, account: &Account, to: &Email, kind: &str, lang: Lang) -> Outgoing {
        Outgoing {
            kind: kind.to_owned(),
            recipient: to.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "activation_url": page(self.app.public_url(), "/activation"),
                "help_url": page(self.app.public_url(), "/help"),
            }),
            account_dn: Some(account.dn.clone()),
        }
    }

    /// Step 2 (GET): what the link is. Never uses it up: mail scanners open links.
    pub async fn open(&self, token: &Token, now: OffsetDateTime) -> Result<Opened, FlowError> {
        let record = match self.peek(token, now).await? {
            LinkState::Live(record) => record,
            other => return Ok(Opened::Gone(other)),
        };
        Ok(match self.app.directory.read(&record.account_dn).await? {
            Some(account) => Opened::Form {
                login: account.login.to_string(),
            },
            None => Opened::Gone(LinkState::Unknown),
        })
    }

    async fn peek(&self, token: &Token, now: OffsetDateTime) -> Result<LinkState, FlowError> {
        Ok(self
            .app
            .store
            .peek_link(&token.hash(), Purpose::Reset, now.unix_timestamp())
            .await?)
    }

    /// Step 3 (POST): checks the password, then writes it at once. Then every other
    /// link of the account is voided, its credential epoch raised (every session
    /// and token issued before stops counting, even one being issued right now),
    /// its sessions end with their applications, and the owner is told by mail. A
    /// directory failure leaves the link usable.
    pub async fn change(
        &self,
        token: &Token,
        candidate: &str,
        confirmation: &str,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Changed, FlowError> {
        let at = now.unix_timestamp();
        let record = match self.peek(token, now).await? {
            LinkState::Live(record) => record,
            other => return self.gone(other).await,
        };
        let account = match self.app.directory.read(&record.account_dn).await? {
            Some(account) if account.is_active() => account,
            // Gone from the directory, or locked since the link was sent: the link is spent.
            _ => return self.refused(token, &record.account_dn, at).await,
        };
        let policy = PasswordPolicy::new(self.app.profile().password.clone());
        let password = match policy.check(candidate, confirmation, &personal_data(&account)) {
            Ok(password) => password,
            // Nothing was claimed: the link stays usable for a corrected try.
            Err(violations) => return Ok(Changed::Refused(violations)),
        };
        let secret = self
            .app
            .directory
            .prepare_password(password.password())
            .await?;
        let hash = token.hash();
        match critical::claim(self.app, &hash, Purpose::Reset).await? {
            Claim::Held(_) => {}
            Claim::Gone(state) => return self.gone(state).await,
        }
        let mail = account
            .personal_email
            .as_ref()
            .map(|email| changed_mail(self.app, &account, email, lang, now));
        let write = PasswordWrite {
            app: self.app.clone(),
            origin: self.origin.clone(),
            link: Some(hash),
            account_dn: account.dn.clone(),
            secret,
            change: AccountChange::default(),
            keep_session: None,
            mail,
            event: "reset.password_changed",
            expected_epoch: None,
            at,
        };
        let Written::Done(ended) = self.app.finish(write.run()).await? else {
            // Only a change signed in expects an epoch: a reset is never overtaken.
            return Err(FlowError::Interrupted);
        };
        Ok(Changed::Done {
            login: account.login.to_string(),
            sessions_ended: ended.sessions,
        })
    }

    async fn gone(&self, state: LinkState) -> Result<Changed, FlowError> {
        let event = AuditEvent::new("reset.link", "gone").detail(json!({ "state": state.name() }));
        self.app.store.audit(&self.origin, event).await?;
        Ok(Changed::Gone(state))
    }

    async fn refused(&self, token: &Token, dn: &str, at: i64) -> Result<Changed, FlowError> {
        let mut tx = self.app.store.begin().await?;
        tx.spend_link(&token.hash(), at).await?;
        let event = AuditEvent::new("reset.password_changed", "refused").account(dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        Ok(Changed::Gone(LinkState::Voided))
    }
}

/// "Your password was changed", with the time and where to get help: the owner
/// learns of a change they did not make.
pub(super) fn changed_mail(
    app: &App,
    account: &Account,
    to: &Email,
    lang: Lang,
    now: OffsetDateTime,
) -> Outgoing {
    Outgoing {
        kind: "password_changed".to_owned(),
        recipient: to.as_str().to_owned(),
        lang: lang.code().to_owned(),
        payload: json!({
            "name": account.greeting_name(),
            "login": account.login.as_str(),
            "when": mail_time(now),
            "help_url": page(app.public_url(), "/help"),
        }),
        account_dn: Some(account.dn.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ResetIdentifier; 3] = [
        ResetIdentifier::PersonalEmail,
        ResetIdentifier::StudentNumber,
        ResetIdentifier::Login,
    ];

    #[test]
    fn each_identifier_is_read_as_the_profile_allows() {
        assert!(matches!(
            Identifier::parse(" lea@example.org ", &ALL),
            Some(Identifier::Email(_))
        ));
        assert!(matches!(
            Identifier::parse("2401234", &ALL),
            Some(Identifier::Student(_))
        ));
        assert!(matches!(
            Identifier::parse("ldurand", &ALL),
            Some(Identifier::Login(_))
        ));
        let email_only = [ResetIdentifier::PersonalEmail];
        assert!(Identifier::parse("ldurand", &email_only).is_none());
        assert!(Identifier::parse("*)(uid=*", &ALL).is_none());
        assert!(Identifier::parse("lea@example.org", &[ResetIdentifier::Login]).is_none());
        let numbers = [ResetIdentifier::StudentNumber];
        assert!(matches!(
            Identifier::parse("A2401234", &numbers),
            Some(Identifier::Student(_))
        ));
    }
}
