//! Change of password, signed in (`/account/password`): the current password, then
//! a new one under the profile's rules, written at once. The student's other
//! sessions and every token end (the credential epoch is raised); this session
//! stays open; the owner is told by mail.

use time::OffsetDateTime;

use super::FlowError;
use super::activation::personal_data;
use super::critical::{PasswordWrite, Written};
use super::reset::changed_mail;
use crate::app::App;
use crate::directory::{Account, AccountChange, BindOutcome};
use crate::domain::Lang;
use crate::domain::{Password, PasswordPolicy, TokenHash, Violation};
use crate::store::{AuditEvent, Origin};

#[derive(Debug)]
pub enum PasswordChanged {
    Done,
    /// The current password is not the one given: nothing changed.
    WrongPassword,
    /// The new password breaks these rules: nothing changed.
    Refused(Vec<Violation>),
}

pub struct PasswordChange<'a> {
    pub app: &'a App,
    pub origin: Origin,
}

impl PasswordChange<'_> {
    /// `new` is the new password and its confirmation, as typed.
    pub async fn change(
        &self,
        account: &Account,
        session: &TokenHash,
        current: &Password,
        (candidate, confirmation): (&str, &str),
        lang: Lang,
        now: OffsetDateTime,
    ) -> Result<PasswordChanged, FlowError> {
        let at = now.unix_timestamp();
        if !account.is_active() {
            return self.wrong(account).await;
        }
        // Read before the check: a reset committed after it overtakes this change.
        let epoch = self.app.store.credential_epoch(&account.dn).await?;
        let bound = self
            .app
            .directory
            .verify_password(&account.dn, current)
            .await?;
        if bound != BindOutcome::Accepted {
            return self.wrong(account).await;
        }
        let policy = PasswordPolicy::new(self.app.profile().password.clone());
        let password = match policy.check(candidate, confirmation, &personal_data(account)) {
            Ok(password) => password,
            Err(violations) => return Ok(PasswordChanged::Refused(violations)),
        };
        let secret = self
            .app
            .directory
            .prepare_password(password.password())
            .await?;
        let write = PasswordWrite {
            app: self.app.clone(),
            origin: self.origin.clone(),
            link: None,
            account_dn: account.dn.clone(),
            secret,
            change: AccountChange::default(),
            keep_session: Some(session.clone()),
            mail: account
                .personal_email
                .as_ref()
                .map(|email| changed_mail(self.app, account, email, lang, now)),
            event: "account.password_changed",
            expected_epoch: Some(epoch),
            at,
        };
        match self.app.finish(write.run()).await? {
            Written::Done(_) => Ok(PasswordChanged::Done),
            // The password was reset meanwhile: this session has ended with it.
            Written::Overtaken => self.wrong(account).await,
        }
    }

    async fn wrong(&self, account: &Account) -> Result<PasswordChanged, FlowError> {
        let event =
            AuditEvent::new("account.password_changed", "bad_credentials").account(&account.dn);
        self.app.store.audit(&self.origin, event).await?;
        Ok(PasswordChanged::WrongPassword)
    }
}
