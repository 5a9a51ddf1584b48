//! Help: the contact form's requests reach the support address with the account's
//! diagnostic (state, last mails, last failures), which only the helpdesk sees; the
//! student gets a reference. `guichet accounts show` prints the same diagnostic.

use std::sync::Arc;

use rand::Rng;
use rand::rngs::OsRng;
use serde::Serialize;
use serde_json::json;
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::FlowError;
use crate::config::Profile;
use crate::directory::{Account, Directory};
use crate::domain::{Email, HelpRequest, Login, StudentId};
use crate::store::{AuditEvent, AuditFilter, AuditRecord, MailSummary, Origin, Outgoing, Store};

/// How many mails and failures the diagnostic lists.
const RECENT: i64 = 10;

/// One account as the helpdesk sees it.
#[derive(Debug, Clone, Serialize)]
pub struct AccountDiagnostic {
    pub login: String,
    pub dn: String,
    pub display_name: Option<String>,
    /// The `{COMPTE}` value, e.g. `A:SupannActif`, or `none`.
    pub state: String,
    pub personal_email: Option<String>,
    pub student_id: Option<String>,
    pub terms_version: Option<String>,
    pub mails: Vec<MailSummary>,
    pub failures: Vec<AuditRecord>,
}

/// Everything the directory and the store say about what was typed. Several
/// accounts when an address is shared (the helpdesk must sort that out).
#[derive(Debug, Clone, Serialize)]
pub struct Diagnostic {
    pub typed: String,
    pub accounts: Vec<AccountDiagnostic>,
}

pub struct Help<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub profile: &'a Profile,
    pub outbox: Arc<Notify>,
    pub origin: Origin,
}

impl Help<'_> {
    /// The accounts a login, a student number or a personal e-mail names.
    pub async fn diagnose(&self, typed: &str) -> Result<Diagnostic, FlowError> {
        let typed = typed.trim();
        let found = self.find(typed).await?;
        let mut accounts = Vec::with_capacity(found.len());
        for account in found {
            accounts.push(self.account_diagnostic(account).await?);
        }
        Ok(Diagnostic {
            typed: typed.to_owned(),
            accounts,
        })
    }

    async fn find(&self, typed: &str) -> Result<Vec<Account>, FlowError> {
        if let Ok(email) = typed.parse::<Email>() {
            return Ok(self.directory.find_by_personal_email(&email).await?);
        }
        if let Ok(login) = typed.parse::<Login>() {
            if let Some(account) = self.directory.find_by_login(&login).await? {
                return Ok(vec![account]);
            }
        }
        match typed.parse::<StudentId>() {
            Ok(student) => Ok(self.directory.find_by_student_id(&student).await?),
            Err(_) => Ok(Vec::new()),
        }
    }

    async fn account_diagnostic(&self, account: Account) -> Result<AccountDiagnostic, FlowError> {
        let mails = self.store.recent_mail(&account.dn, RECENT).await?;
        let filter = AuditFilter {
            account: Some(account.dn.clone()),
            failures_only: true,
            limit: RECENT,
            ..AuditFilter::default()
        };
        let failures = self.store.audit_log(&filter).await?;
        Ok(AccountDiagnostic {
            login: account.login.to_string(),
            display_name: account.display_name.clone(),
            state: account
                .state
                .as_ref()
                .map_or_else(|| "none".to_owned(), |s| s.short()),
            personal_email: account
                .personal_email
                .as_ref()
                .map(|e| e.as_str().to_owned()),
            student_id: account.student_id.as_ref().map(|s| s.as_str().to_owned()),
            terms_version: account.terms_version.clone(),
            dn: account.dn,
            mails,
            failures,
        })
    }

    /// Stores the request and sends it to the support address with the diagnostic.
    /// Returns the reference the student quotes.
    pub async fn submit(
        &self,
        request: &HelpRequest,
        now: OffsetDateTime,
    ) -> Result<String, FlowError> {
        let at = now.unix_timestamp();
        let diagnostic = self.diagnose(&request.identifier).await?;
        let reference = new_reference(now);
        let account_dn = match diagnostic.accounts.as_slice() {
            [one] => Some(one.dn.as_str()),
            _ => None,
        };
        let mail = Outgoing {
            kind: "support_help".to_owned(),
            recipient: self.profile.support.email.as_str().to_owned(),
            lang: self.profile.languages.default.code().to_owned(),
            payload: json!({
                "reference": reference,
                "name": request.name,
                "identifier": request.identifier,
                "contact": request.contact.as_str(),
                "category": request.category.as_str(),
                "message": request.message,
                "diagnostic": diagnostic,
            }),
            account_dn: None,
        };
        let mut tx = self.store.begin().await?;
        tx.record_help(&reference, request, account_dn, &self.origin, at)
            .await?;
        tx.enqueue_mail(&mail, at).await?;
        let mut event =
            AuditEvent::new("help.request", "ok").detail(json!({ "reference": reference }));
        event.account = account_dn.map(str::to_owned);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.outbox.notify_one();
        Ok(reference)
    }
}

/// `AIDE-YYMMDD-XXXXXX`: the date helps the helpdesk, six random characters from an
/// alphabet without look-alikes (no 0/O, 1/I/L) make it unguessable and easy to read
/// over the phone.
fn new_reference(now: OffsetDateTime) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
    let mut rng = OsRng;
    let random: String = (0..6)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!(
        "AIDE-{:02}{:02}{:02}-{random}",
        now.year() % 100,
        u8::from(now.month()),
        now.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_carry_the_date_and_no_look_alikes() {
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        let reference = new_reference(now);
        assert!(reference.starts_with("AIDE-261123-"), "{reference}");
        assert_eq!(reference.len(), "AIDE-261123-".len() + 6);
        assert!(!reference[12..].contains(['0', 'O', '1', 'I', 'L']));
        assert_ne!(new_reference(now), reference);
    }
}
