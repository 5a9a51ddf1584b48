//! The outbox worker: claims due rows, renders and sends them, records the outcome.
//! Transient failures are retried with exponential backoff; a permanent refusal, an
//! unrenderable message or too many attempts give the row up.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use super::{MailError, Mailer, message};
use crate::config::Settings;
use crate::store::{Claimed, Store, StoreError, unix_now};
use crate::templates::Templates;

/// Leases are counted in whole seconds, so a lease of `n` may have `n - 1` left when
/// claimed; from 3 s, renewing every third of it keeps it ahead.
const MIN_LEASE_SECS: i64 = 3;
const MAX_BACKOFF_SECS: i64 = 3600;

#[derive(Clone, Debug)]
pub struct OutboxWorker {
    store: Store,
    mailer: Mailer,
    templates: Arc<Templates>,
    settings: Arc<Settings>,
    /// Flows ring this after enqueueing, so mail leaves at once, not at the next poll.
    wake: Arc<Notify>,
}

impl OutboxWorker {
    pub fn new(
        store: Store,
        mailer: Mailer,
        templates: Arc<Templates>,
        settings: Arc<Settings>,
    ) -> Self {
        OutboxWorker {
            store,
            mailer,
            templates,
            settings,
            wake: Arc::new(Notify::new()),
        }
    }

    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Sends what is due now; returns how many messages were sent.
    pub async fn drain(&self) -> Result<usize, StoreError> {
        self.drain_while(|| true).await
    }

    /// Claims and sends one row at a time while `go_on` says so: the lease only has to
    /// cover one send, and a stop request waits for at most the message in flight.
    async fn drain_while(&self, go_on: impl Fn() -> bool) -> Result<usize, StoreError> {
        let mut sent = 0;
        while go_on() {
            let Some(mut mail) = self
                .store
                .claim_mail(unix_now(), self.lease_secs(), 1)
                .await?
                .pop()
            else {
                break;
            };
            sent += usize::from(self.deliver(&mut mail).await?);
        }
        Ok(sent)
    }

    fn lease_secs(&self) -> i64 {
        let lease = i64::try_from(self.settings.mail.lease.as_secs()).unwrap_or(i64::MAX);
        lease.max(MIN_LEASE_SECS)
    }

    async fn deliver(&self, mail: &mut Claimed) -> Result<bool, StoreError> {
        let settings = &self.settings;
        let outcome = match message::build(
            &self.templates,
            &settings.profile,
            self.mailer.from(),
            mail,
        ) {
            Ok(message) => match self.send_holding_lease(message, mail).await {
                Some(outcome) => outcome,
                None => {
                    tracing::warn!(id = %mail.id, "lease lost during the send, left to its new holder");
                    return Ok(false);
                }
            },
            Err(e) => Err(e),
        };
        let now = unix_now();
        match outcome {
            Ok(()) => {
                if !self.store.mail_sent(mail, now).await? {
                    tracing::warn!(id = %mail.id, "mail sent after its lease ran out");
                }
                tracing::info!(id = %mail.id, kind = %mail.kind, attempts = mail.attempts, "mail sent");
                Ok(true)
            }
            Err(MailError::Transient(error))
                if mail.attempts < i64::from(settings.mail.max_attempts) =>
            {
                let base = settings.mail.retry_base.as_secs().max(1) as i64;
                let exponent = u32::try_from(mail.attempts - 1).unwrap_or(u32::MAX).min(20);
                let wait = base
                    .saturating_mul(2_i64.saturating_pow(exponent))
                    .min(MAX_BACKOFF_SECS);
                tracing::warn!(id = %mail.id, kind = %mail.kind, attempts = mail.attempts, retry_in = wait, %error, "mail not sent, will retry");
                self.store
                    .mail_failed(mail, &error, Some(now + wait), now)
                    .await?;
                Ok(false)
            }
            Err(error) => {
                tracing::error!(id = %mail.id, kind = %mail.kind, attempts = mail.attempts, %error, "mail given up");
                self.store
                    .mail_failed(mail, &error.to_string(), None, now)
                    .await?;
                Ok(false)
            }
        }
    }

    /// Sends `message` while renewing the lease of `mail` every third of it, so that
    /// a live send, however slow, keeps its row and a dead worker's row is free again
    /// within one lease. `None` if the lease was lost meanwhile: the send is dropped,
    /// as the row's new holder sends it. A renewal the database cannot make now is
    /// tried again at the next tick; the lease may still be ours then.
    async fn send_holding_lease(
        &self,
        message: lettre::Message,
        mail: &mut Claimed,
    ) -> Option<Result<(), MailError>> {
        let lease = self.lease_secs();
        let every = Duration::from_millis(u64::try_from(lease).unwrap_or(u64::MAX) * 1000 / 3);
        let send = self.mailer.send(message);
        tokio::pin!(send);
        loop {
            tokio::select! {
                outcome = &mut send => return Some(outcome),
                () = tokio::time::sleep(every) => {}
            }
            // Renewed outside the race with the send: cut off half-way, a renewal the
            // database applied would leave us holding a lease we no longer know.
            match self.store.renew_mail_lease(mail, unix_now(), lease).await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    tracing::warn!(id = %mail.id, %error, "lease not renewed, will retry")
                }
            }
        }
    }

    /// Runs until `stop` turns true: drains, then waits for the poll interval or a wake.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let interval = self
            .settings
            .mail
            .poll_interval
            .max(Duration::from_millis(50));
        while !*stop.borrow() {
            if let Err(error) = self.drain_while(|| !*stop.borrow()).await {
                tracing::warn!(%error, "outbox: database unavailable, will retry");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                () = self.wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
    }
}
