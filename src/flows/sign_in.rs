//! Signing in to Guichet: the password is checked by binding to the directory as the
//! student (Guichet never reads hashes), and a session is opened. The same session
//! serves Guichet's own pages and, with OIDC, every client.

use serde_json::json;
use time::OffsetDateTime;

use super::FlowError;
use super::activation::not_eligible;
use crate::app::App;
use crate::directory::BindOutcome;
use crate::domain::{Login, Password, Token, TokenHash};
use crate::store::{AuditEvent, NewSession, Origin, SessionRecord, StoreTx};

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
    pub app: &'a App,
    pub origin: Origin,
}

impl SignIn<'_> {
    /// Checks the password and opens a session. `previous` is the session the
    /// browser still holds, if any: it ends with its applications when the new one
    /// opens (a shared computer: the next student must not inherit the previous
    /// one's ENT or webmail), in the same commit.
    pub async fn sign_in(
        &self,
        login: &Login,
        password: &Password,
        previous: Option<&TokenHash>,
        now: OffsetDateTime,
    ) -> Result<SignedIn, FlowError> {
        let (store, directory) = (&self.app.store, &self.app.directory);
        let at = now.unix_timestamp();
        // An empty password is refused before any bind; the decoy's bind makes the
        // answer take as long as for any other wrong password.
        if password.is_empty() {
            directory.bind_decoy(password).await?;
            return self.refuse(Refusal::BadCredentials, login.as_str()).await;
        }
        let Some(account) = directory.find_by_login(login).await? else {
            // A bind anyway (to the decoy): an unknown login answers in the time of
            // a known one, so logins cannot be told apart by timing.
            directory.bind_decoy(password).await?;
            return self.refuse(Refusal::BadCredentials, login.as_str()).await;
        };
        let active = account.is_active();
        let profile = &self.app.settings.profile;
        if !active && not_eligible(profile, &account).is_none() {
            // Logins are predictable: saying "not activated" to any password tells a
            // stranger who has just enrolled. Only a profile that reveals account
            // status says it; otherwise the answer, and its cost, are a wrong
            // password's. The login page always offers activation.
            if profile.identity.reveal_account_status {
                return self.refuse(Refusal::NotActivated, &account.dn).await;
            }
            directory.bind_decoy(password).await?;
            return self
                .refuse_as(Refusal::BadCredentials, "not_activated", &account.dn)
                .await;
        }
        // Read before the bind: if a reset commits while the bind runs, the session
        // below is stamped with the old epoch and never counts.
        let epoch = store.credential_epoch(&account.dn).await?;
        if directory.verify_password(&account.dn, password).await? != BindOutcome::Accepted {
            return self.refuse(Refusal::BadCredentials, &account.dn).await;
        }
        if !active {
            return self.refuse(Refusal::Locked, &account.dn).await;
        }
        let secret = Token::generate();
        let session = NewSession {
            id: &secret.hash(),
            account_dn: &account.dn,
            subject: &crate::oidc::claims::subject(&account),
            epoch,
            created_at: at,
            expires_at: at + self.app.settings.sessions.absolute.as_secs() as i64,
        };
        let mut tx = store.begin().await?;
        if let Some(previous) = previous {
            self.end_in(&mut tx, previous, at).await?;
        }
        tx.create_session(&session).await?;
        let event = AuditEvent::new("login", "ok").account(&account.dn);
        tx.audit(&self.origin, event, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(SignedIn::Session(secret))
    }

    async fn refuse(&self, refusal: Refusal, account: &str) -> Result<SignedIn, FlowError> {
        let outcome = match refusal {
            Refusal::BadCredentials => "bad_credentials",
            Refusal::NotActivated => "not_activated",
            Refusal::Locked => "locked",
        };
        self.refuse_as(refusal, outcome, account).await
    }

    /// Refuses with `refusal` on the page; the audit log keeps the real `outcome`.
    async fn refuse_as(
        &self,
        refusal: Refusal,
        outcome: &'static str,
        account: &str,
    ) -> Result<SignedIn, FlowError> {
        let event = AuditEvent::new("login", outcome).account(account);
        self.app.store.audit(&self.origin, event).await?;
        Ok(SignedIn::Refused(refusal))
    }

    /// The live session behind a cookie's value, kept from going idle.
    pub async fn session(
        &self,
        secret: &Token,
        now: OffsetDateTime,
    ) -> Result<Option<SessionRecord>, FlowError> {
        let store = &self.app.store;
        let at = now.unix_timestamp();
        let idle = self.app.settings.sessions.idle.as_secs() as i64;
        let Some(record) = store.live_session(&secret.hash(), at, idle).await? else {
            return Ok(None);
        };
        // Writing on every request would be wasted; a minute's precision is enough.
        if at - record.last_seen_at >= 60 {
            store.touch_session(&secret.hash(), at).await?;
        }
        Ok(Some(record))
    }

    /// The live session behind a browser's cookie secret, if it sent one, with
    /// the session's stored hash: what the OIDC and CAS providers issue from.
    pub async fn session_of(
        &self,
        secret: Option<&Token>,
        now: OffsetDateTime,
    ) -> Result<Option<(SessionRecord, TokenHash)>, FlowError> {
        let Some(secret) = secret else {
            return Ok(None);
        };
        let record = self.session(secret, now).await?;
        Ok(record.map(|record| (record, secret.hash())))
    }

    /// Ends a session, idle or not (a session left idle on a shared computer still
    /// has applications signed in), with its applications: one commit ends the row,
    /// revokes its tokens and queues the back-channel logouts. Whether the directory
    /// answers does not matter. False if it had already ended.
    pub async fn sign_out(&self, id: &TokenHash, now: OffsetDateTime) -> Result<bool, FlowError> {
        let at = now.unix_timestamp();
        let mut tx = self.app.store.begin().await?;
        let ended = self.end_in(&mut tx, id, at).await?;
        tx.commit().await?;
        self.app.wake_workers();
        Ok(ended)
    }

    async fn end_in(&self, tx: &mut StoreTx, id: &TokenHash, at: i64) -> Result<bool, FlowError> {
        let Some(ended) = tx.end_session(id.as_str(), at).await? else {
            return Ok(false);
        };
        let event = AuditEvent::new("logout", "ok")
            .account(&ended.account_dn)
            .detail(json!({ "logouts_queued": ended.logouts_queued }));
        tx.audit(&self.origin, event, at).await?;
        Ok(true)
    }
}
