//! Signing in to Guichet: the password is checked by binding to the directory as the
//! student (Guichet never reads hashes), and a session is opened. The same session
//! serves Guichet's own pages and, with OIDC, every client.

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::not_eligible;
use crate::config::{Profile, SessionSettings};
use crate::directory::{BindOutcome, Directory};
use crate::domain::{Login, Password, StateKind, Token};
use crate::store::{AuditEvent, Origin, SessionRecord, Store};

/// Why a sign-in was refused; each has its own message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Unknown login or wrong password: the page does not say which.
    BadCredentials,
    /// The account awaits activation: it has no password yet.
    NotActivated,
    /// Locked or closed; told only to whoever gave the right password.
    Locked,
}

#[derive(Debug)]
pub enum SignedIn {
    /// The session's secret, for the cookie; only its hash is stored.
    Session(Token),
    Refused(Refusal),
}

pub struct SignIn<'a> {
    pub store: &'a Store,
    pub directory: &'a Directory,
    pub profile: &'a Profile,
    pub sessions: &'a SessionSettings,
    pub origin: Origin,
}

impl SignIn<'_> {
    pub async fn sign_in(
        &self,
        login: &Login,
        password: &Password,
        now: OffsetDateTime,
    ) -> Result<SignedIn, FlowError> {
        let at = now.unix_timestamp();
        // An empty password is refused before any bind; hash anyway, so the answer
        // takes as long as for any other wrong password.
        if password.is_empty() {
            self.directory.hash_password(password).await?;
            return self.refuse(Refusal::BadCredentials, login.as_str()).await;
        }
        let Some(account) = self.directory.find_by_login(login).await? else {
            // Hash anyway, so an unknown login answers in about the time of a bind.
            self.directory.hash_password(password).await?;
            return self.refuse(Refusal::BadCredentials, login.as_str()).await;
        };
        let active = account
            .state
            .as_ref()
            .is_some_and(|s| s.kind == StateKind::Active);
        if !active && not_eligible(self.profile, &account).is_none() {
            return self.refuse(Refusal::NotActivated, &account.dn).await;
        }
        if self
            .directory
            .verify_password(&account.dn, password)
            .await?
            != BindOutcome::Accepted
        {
            return self.refuse(Refusal::BadCredentials, &account.dn).await;
        }
        if !active {
            return self.refuse(Refusal::Locked, &account.dn).await;
        }
        let session = Token::generate();
        let expires = at + self.sessions.absolute.as_secs() as i64;
        self.store
            .create_session(&session.hash(), &account.dn, at, expires)
            .await?;
        let event = AuditEvent::new("login", "ok").account(&account.dn);
        self.store.audit(&self.origin, event).await?;
        Ok(SignedIn::Session(session))
    }

    async fn refuse(&self, refusal: Refusal, account: &str) -> Result<SignedIn, FlowError> {
        let outcome = match refusal {
            Refusal::BadCredentials => "bad_credentials",
            Refusal::NotActivated => "not_activated",
            Refusal::Locked => "locked",
        };
        let event = AuditEvent::new("login", outcome).account(account);
        self.store.audit(&self.origin, event).await?;
        Ok(SignedIn::Refused(refusal))
    }

    /// The live session behind a cookie's value, kept from going idle.
    pub async fn session(
        &self,
        secret: &Token,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, FlowError> {
        let at = now.unix_timestamp();
        let idle = self.sessions.idle.as_secs() as i64;
        let Some(record) = self.store.live_session(&secret.hash(), at, idle).await? else {
            return Ok(None);
        };
        // Writing on every request would be wasted; a minute's precision is enough.
        if at - record.last_seen_at >= 60 {
            self.store.touch_session(&secret.hash(), at).await?;
        }
        Ok(Some(record))
    }

    pub async fn sign_out(&self, secret: &Token, now: OffsetDateTime) -> Result<(), FlowError> {
        let at = now.unix_timestamp();
        let account = self
            .store
            .live_session(&secret.hash(), at, i64::MAX / 2)
            .await?
            .map(|r| r.account_dn);
        self.store.end_session(&secret.hash(), at).await?;
        let mut event = AuditEvent::new("logout", "ok").detail(json!({}));
        event.account = account;
        self.store.audit(&self.origin, event).await?;
        Ok(())
    }
}
