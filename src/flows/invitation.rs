//! Invitations: pre-provisioned accounts awaiting activation are invited, through the
//! outbox, at their personal e-mail, within one scan interval of appearing in the
//! directory; then reminded on the configured schedule while still not activated.

use std::time::Duration;

use serde_json::json;
use url::Url;

use super::FlowError;
use crate::config::Profile;
use crate::directory::{Account, Directory};
use crate::domain::Login;
use crate::store::{Outgoing, Store};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub invited: usize,
    pub reminded: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    Sent { email: String },
    UnknownLogin,
    NotAwaiting,
    NoPersonalEmail,
}

pub struct Invitations<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub profile: &'a Profile,
    pub public_url: &'a Url,
    pub reminders: &'a [Duration],
}

impl Invitations<'_> {
    /// One pass: invites accounts never invited, reminds those due.
    pub async fn scan(&self, now: i64) -> Result<ScanReport, FlowError> {
        let awaiting = self
            .directory
            .find_in_states(&self.profile.activation.awaiting_states)
            .await?;
        let sent: std::collections::HashMap<String, (i64, i64)> = self
            .store
            .invitations()
            .await?
            .into_iter()
            .map(|i| (i.account_dn, (i.last_sent_at, i.reminders)))
            .collect();
        let mut report = ScanReport::default();
        for account in &awaiting {
            let Some(mail) = self.mail(account) else {
                continue;
            };
            match sent.get(&account.dn) {
                None => {
                    if self.store.invite_once(&account.dn, &mail, now).await? {
                        report.invited += 1;
                    }
                }
                Some(&(last, count)) => {
                    let due = usize::try_from(count)
                        .ok()
                        .and_then(|n| self.reminders.get(n))
                        .is_some_and(|wait| last + wait.as_secs() as i64 <= now);
                    if due
                        && self
                            .store
                            .remind(&account.dn, &mail, Some(count), now)
                            .await?
                    {
                        report.reminded += 1;
                    }
                }
            }
        }
        if report != ScanReport::default() {
            tracing::info!(
                invited = report.invited,
                reminded = report.reminded,
                "invitations queued"
            );
        }
        Ok(report)
    }

    /// `guichet accounts invite --resend LOGIN`: one more invitation, now.
    pub async fn resend(&self, login: &Login, now: i64) -> Result<Resent, FlowError> {
        let Some(account) = self.directory.find_by_login(login).await? else {
            return Ok(Resent::UnknownLogin);
        };
        let awaiting = account
            .state
            .as_ref()
            .is_some_and(|s| self.profile.activation.awaiting_states.contains(&s.short()));
        if !awaiting {
            return Ok(Resent::NotAwaiting);
        }
        let Some(mail) = self.mail(&account) else {
            return Ok(Resent::NoPersonalEmail);
        };
        self.store.remind(&account.dn, &mail, None, now).await?;
        Ok(Resent::Sent {
            email: mail.recipient,
        })
    }

    fn mail(&self, account: &Account) -> Option<Outgoing> {
        let email = account.personal_email.as_ref()?;
        Some(Outgoing {
            kind: "invitation".to_owned(),
            recipient: email.as_str().to_owned(),
            lang: self.profile.languages.default.code().to_owned(),
            payload: json!({
                "name": account.greeting_name(),
                "login": account.login.as_str(),
                "link": super::activation::page(self.public_url, "/activation"),
            }),
            account_dn: Some(account.dn.clone()),
        })
    }
}
