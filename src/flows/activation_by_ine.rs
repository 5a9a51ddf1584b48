//! Activation by student number + INE, Perpignan's order: the student identifies,
//! chooses a password and gives a personal e-mail; a confirmation link goes to that
//! e-mail; only the click on it (a POST) makes the account active in the directory.
//!
//! Until then the password is kept only as its `{ARGON2}` hash, in the link's row. A
//! student number and INE that match nobody get the same pages; no mail is sent.

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::{
    Activation, NotSent, activated_mail, activation_change, link, not_eligible, personal_data,
};
use super::critical::{self, Claim, PasswordWrite};
use crate::config::BirthDate;
use crate::directory::{Account, NewSecret};
use crate::domain::Lang;
use crate::domain::{
    DateOfBirth, Email, Ine, PasswordPolicy, PersonalData, StudentId, Token, Violation,
};
use crate::store::{AuditEvent, LinkState, Outgoing, Purpose};

/// Time to fill in the password form after identifying.
const IDENTIFIED_SECS: i64 = 20 * 60;

#[derive(Debug)]
pub enum Chosen {
    /// The confirmation link went to the e-mail given, if the identity matched.
    Sent,
    Refused(Vec<Violation>),
    Gone(LinkState),
}

#[derive(Debug)]
pub enum Confirmed {
    Activated { login: String },
    Gone(LinkState),
}

impl Activation<'_> {
    /// Step 1. Always stores and returns a token for the next form; it leads somewhere
    /// only if exactly one account awaiting activation has this student number and
    /// INE (and this date of birth, when the profile asks for it). Otherwise the token
    /// is a decoy with no account: it expires and is used up like a real one, so no
    /// later answer tells the two apart.
    pub async fn identify(
        &self,
        student: &StudentId,
        ine: &Ine,
        born: Option<DateOfBirth>,
        now: OffsetDateTime,
    ) -> Result<Token, FlowError> {
        let token = Token::generate();
        let account_dn = self
            .matching(student, ine, born)
            .await?
            .map_or_else(String::new, |account| account.dn);
        let now = now.unix_timestamp();
        let event = if account_dn.is_empty() {
            AuditEvent::new("activation.identify", "unmatched").account(student.as_str())
        } else {
            AuditEvent::new("activation.identify", "ok").account(&account_dn)
        };
        let mut tx = self.app.store.begin().await?;
        tx.audit(&self.origin, event, now).await?;
        tx.issue_link(
            &token.hash(),
            Purpose::Identified,
            &account_dn,
            &json!({}),
            now,
            now + IDENTIFIED_SECS,
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The one account awaiting activation with this identity, if there is one.
    async fn matching(
        &self,
        student: &StudentId,
        ine: &Ine,
        born: Option<DateOfBirth>,
    ) -> Result<Option<Account>, FlowError> {
        let mut found = self
            .app
            .directory
            .find_by_student_and_ine(student, ine)
            .await?;
        if found.len() != 1 {
            return Ok(None);
        }
        let account = found.remove(0);
        if !birth_date_matches(self.app.profile().identity.birth_date, born, &account) {
            tracing::info!("activation by INE: date of birth does not match");
            return Ok(None);
        }
        if let Some(reason) = not_eligible(self.app.profile(), &account) {
            tracing::info!(?reason, "activation by INE: not eligible");
            return Ok(None);
        }
        Ok(Some(account))
    }

    /// Step 2: password and personal e-mail, terms accepted.
    pub async fn choose(
        &self,
        identified: &Token,
        candidate: &str,
        confirmation: &str,
        email: &Email,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Chosen, FlowError> {
        let at = now.unix_timestamp();
        let policy = PasswordPolicy::new(self.app.profile().password.clone());
        let record = match self
            .app
            .store
            .peek_link(&identified.hash(), Purpose::Identified, at)
            .await?
        {
            // A decoy: check the rules as for anyone, use it up, answer as if sent.
            LinkState::Live(record) if record.account_dn.is_empty() => {
                return self.decoy(identified, candidate, confirmation, at).await;
            }
            LinkState::Live(record) => record,
            other => return Ok(Chosen::Gone(other)),
        };
        let Some(account) = self.app.directory.read(&record.account_dn).await? else {
            return Ok(Chosen::Gone(LinkState::Unknown));
        };
        let password = match policy.check(candidate, confirmation, &personal_data(&account)) {
            Ok(password) => password,
            Err(violations) => return Ok(Chosen::Refused(violations)),
        };
        let hash = self
            .app
            .directory
            .hash_password(password.password())
            .await?;
        let token = Token::generate();
        let lifetime = self.app.profile().links.activation.as_secs() as i64;
        let payload = json!({
            "password_hash": hash,
            "email": email.as_str(),
            "terms_version": self.app.profile().terms.version,
            "terms_accepted_at": at,
        });
        let mail = Outgoing {
            kind: "email_confirmation".to_owned(),
            recipient: email.as_str().to_owned(),
            lang: lang.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "link": link(self.app.public_url(), "/activation/confirm", &token),
                "lifetime": lifetime,
            }),
            account_dn: Some(account.dn.clone()),
        };
        let mut tx = self.app.store.begin().await?;
        if tx
            .use_link(&identified.hash(), Purpose::Identified, at)
            .await?
            .is_none()
        {
            return Ok(Chosen::Gone(LinkState::Used));
        }
        tx.issue_link(
            &token.hash(),
            Purpose::Activation,
            &account.dn,
            &payload,
            at,
            at + lifetime,
        )
        .await?;
        tx.enqueue_mail(&mail, at).await?;
        let event = AuditEvent::new("activation.choose", "ok").account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(Chosen::Sent)
    }

    /// Step 2 on a decoy token: the same checks and answers as a real one, no mail.
    async fn decoy(
        &self,
        identified: &Token,
        candidate: &str,
        confirmation: &str,
        at: i64,
    ) -> Result<Chosen, FlowError> {
        let policy = PasswordPolicy::new(self.app.profile().password.clone());
        let password = match policy.check(candidate, confirmation, &PersonalData::default()) {
            Ok(password) => password,
            Err(violations) => return Ok(Chosen::Refused(violations)),
        };
        // Hashed and thrown away: the answer takes as long as a real one.
        self.app
            .directory
            .hash_password(password.password())
            .await?;
        let mut tx = self.app.store.begin().await?;
        let used = tx
            .use_link(&identified.hash(), Purpose::Identified, at)
            .await?;
        tx.commit().await?;
        Ok(match used {
            Some(_) => Chosen::Sent,
            None => Chosen::Gone(LinkState::Used),
        })
    }

    /// Step 3 (GET): whether the confirmation link still works. Uses nothing up.
    pub async fn confirmation(
        &self,
        token: &Token,
        now: OffsetDateTime,
    ) -> Result<LinkState, FlowError> {
        Ok(self
            .app
            .store
            .peek_link(&token.hash(), Purpose::Activation, now.unix_timestamp())
            .await?)
    }

    /// Step 3 (POST): the e-mail is confirmed; the entry is written active, with the
    /// password, the personal e-mail and the accepted terms, in one LDAP operation.
    pub async fn confirm(
        &self,
        token: &Token,
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<Confirmed, FlowError> {
        let at = now.unix_timestamp();
        let hash = token.hash();
        let record = match self
            .app
            .store
            .peek_link(&hash, Purpose::Activation, at)
            .await?
        {
            LinkState::Live(record) => record,
            other => return Ok(Confirmed::Gone(other)),
        };
        let (Some(password_hash), Some(email)) = (
            record.payload["password_hash"].as_str(),
            record.payload["email"]
                .as_str()
                .and_then(|e| e.parse::<Email>().ok()),
        ) else {
            return Ok(Confirmed::Gone(LinkState::Unknown));
        };
        let Some(account) = self.app.directory.read(&record.account_dn).await? else {
            return Ok(Confirmed::Gone(LinkState::Unknown));
        };
        if let Some(reason) = not_eligible(self.app.profile(), &account) {
            let mut tx = self.app.store.begin().await?;
            tx.spend_link(&hash, at).await?;
            tx.commit().await?;
            let state = if reason == NotSent::AlreadyActive {
                LinkState::Used
            } else {
                LinkState::Voided
            };
            return Ok(Confirmed::Gone(state));
        }
        let secret = NewSecret::Hashed(password_hash.to_owned());
        match critical::claim(self.app, &hash, Purpose::Activation).await? {
            Claim::Held(_) => {}
            Claim::Gone(state) => return Ok(Confirmed::Gone(state)),
        }
        let write = PasswordWrite {
            app: self.app.clone(),
            origin: self.origin.clone(),
            link: Some(hash),
            account_dn: account.dn.clone(),
            secret,
            change: activation_change(self.app.profile(), &account, &record.payload, now)
                .set_personal_email(&email),
            keep_session: None,
            mail: Some(activated_mail(&account, email.as_str(), lang)),
            event: "activation.activated",
            expected_epoch: None,
            at,
        };
        // A directory failure lets the claim go: the link works once it is back.
        self.app.finish(write.run()).await?;
        Ok(Confirmed::Activated {
            login: account.login.to_string(),
        })
    }
}

/// `Required`: the date given must be the one in the directory (an entry without one
/// cannot be activated this way). `Optional`: a date given must match when the
/// directory has one; none given, or none recorded, is not held against the student.
fn birth_date_matches(rule: BirthDate, born: Option<DateOfBirth>, account: &Account) -> bool {
    match (rule, born, account.date_of_birth) {
        (BirthDate::Off, _, _) => true,
        (_, Some(given), Some(recorded)) => given == recorded,
        (BirthDate::Required, _, _) => false,
        (BirthDate::Optional, _, _) => true,
    }
}
