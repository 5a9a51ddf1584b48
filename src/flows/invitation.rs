//! Invitations: pre-provisioned accounts awaiting activation are invited, through the
//! outbox, at their personal e-mail, within one scan interval of appearing in the
//! directory; then reminded on the configured schedule while still not activated.
//!
//! An address that several entries share is invited nowhere: activation would refuse
//! each of them (it cannot tell whose the address is). The helpdesk is told once,
//! with the logins, and the entries are held; the first scan after each has an
//! address of its own invites it, as a first invitation.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use url::Url;

use super::FlowError;
use crate::config::Profile;
use crate::directory::{Account, Directory};
use crate::domain::{Email, Login};
use crate::store::{Invitation, Outgoing, Store};

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub invited: usize,
    pub reminded: usize,
    /// Not invited: their address is another entry's too (the helpdesk is told).
    pub held: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resent {
    Sent {
        email: String,
    },
    UnknownLogin,
    NotAwaiting,
    NoPersonalEmail,
    /// Nothing sent: these entries share the address.
    SharedAddress {
        logins: Vec<String>,
    },
}

/// What a scan would send an awaiting entry.
enum Due {
    First,
    /// Held for a shared address: invited once the address is its own.
    Held,
    /// The reminder after this many.
    Reminder(i64),
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
        let sent: std::collections::HashMap<String, Invitation> = self
            .store
            .invitations()
            .await?
            .into_iter()
            .map(|i| (i.account_dn.clone(), i))
            .collect();
        let mut report = ScanReport::default();
        // Shared addresses found in this pass: the helpdesk hears of each once.
        let mut shared: BTreeMap<String, Vec<Account>> = BTreeMap::new();
        for account in &awaiting {
            let Some(mail) = self.mail(account) else {
                continue;
            };
            let due = match sent.get(&account.dn) {
                None => Due::First,
                Some(row) if row.held_at.is_some() => Due::Held,
                Some(row) if self.reminder_due(row.last_sent_at, row.reminders, now) => {
                    Due::Reminder(row.reminders)
                }
                Some(_) => continue,
            };
            // Checked only when something would be sent: one search per mail.
            if let Some(sharing) = self.sharing(account).await? {
                shared.entry(mail.recipient).or_insert(sharing);
                continue;
            }
            let sent = match due {
                Due::First => self.store.invite_once(&account.dn, &mail, now).await?,
                Due::Held => self.store.release_hold(&account.dn, &mail, now).await?,
                Due::Reminder(count) => {
                    let reminded = self.store.remind(&account.dn, &mail, Some(count), now);
                    if reminded.await? {
                        report.reminded += 1;
                    }
                    continue;
                }
            };
            if sent {
                report.invited += 1;
            }
        }
        for (email, accounts) in shared {
            report.held += self.hold(&email, &accounts, now).await?;
        }
        if report != ScanReport::default() {
            tracing::info!(
                invited = report.invited,
                reminded = report.reminded,
                held = report.held,
                "invitations queued"
            );
        }
        Ok(report)
    }

    fn reminder_due(&self, last: i64, count: i64, now: i64) -> bool {
        usize::try_from(count)
            .ok()
            .and_then(|n| self.reminders.get(n))
            .is_some_and(|wait| last + wait.as_secs() as i64 <= now)
    }

    /// Every entry with `account`'s address, if there are several.
    async fn sharing(&self, account: &Account) -> Result<Option<Vec<Account>>, FlowError> {
        let Some(email) = &account.personal_email else {
            return Ok(None);
        };
        let found = self.directory.find_by_personal_email(email).await?;
        Ok((found.len() > 1).then_some(found))
    }

    /// Holds the awaiting entries of a shared address (nothing is sent to them
    /// until it is theirs alone) and tells the helpdesk, once, in one commit; how
    /// many were newly held. A reminder that finds its address shared since holds
    /// it the same way.
    async fn hold(&self, email: &str, accounts: &[Account], now: i64) -> Result<usize, FlowError> {
        let awaiting: Vec<&str> = accounts
            .iter()
            .filter(|a| self.is_awaiting(a))
            .map(|a| a.dn.as_str())
            .collect();
        let notice = shared_address_mail(self.profile, email, accounts);
        Ok(self
            .store
            .hold_invitations(&awaiting, email, &notice, now)
            .await?)
    }

    fn is_awaiting(&self, account: &Account) -> bool {
        account
            .state
            .as_ref()
            .is_some_and(|s| self.profile.activation.awaiting_states.contains(&s.short()))
    }

    /// `guichet accounts invite --resend LOGIN`: one more invitation, now.
    pub async fn resend(&self, login: &Login, now: i64) -> Result<Resent, FlowError> {
        let Some(account) = self.directory.find_by_login(login).await? else {
            return Ok(Resent::UnknownLogin);
        };
        if !self.is_awaiting(&account) {
            return Ok(Resent::NotAwaiting);
        }
        let Some(mail) = self.mail(&account) else {
            return Ok(Resent::NoPersonalEmail);
        };
        if let Some(sharing) = self.sharing(&account).await? {
            let logins = sharing
                .iter()
                .map(|a| a.login.as_str().to_owned())
                .collect();
            return Ok(Resent::SharedAddress { logins });
        }
        self.store.remind(&account.dn, &mail, None, now).await?;
        Ok(Resent::Sent {
            email: mail.recipient,
        })
    }

    fn mail(&self, account: &Account) -> Option<Outgoing> {
        let email: &Email = account.personal_email.as_ref()?;
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

/// The helpdesk's notice: entries awaiting activation share one address, so none
/// was invited.
fn shared_address_mail(profile: &Profile, email: &str, accounts: &[Account]) -> Outgoing {
    let logins: Vec<&str> = accounts.iter().map(|a| a.login.as_str()).collect();
    Outgoing {
        kind: "support_shared_address".to_owned(),
        recipient: profile.support.email.as_str().to_owned(),
        lang: profile.languages.default.code().to_owned(),
        payload: json!({ "email": email, "logins": logins }),
        account_dn: None,
    }
}
