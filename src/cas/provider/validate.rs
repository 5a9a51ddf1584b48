//! Ticket validation (§2.4–§2.6, §2.8, §2.9). The ticket is spent first, by
//! the one statement that lets only one caller have it; every check after that
//! (expiry, session and credential epoch, service, `renew`, the account) refuses
//! a ticket that can never be presented again. A `pgtUrl` gets a PGT only from
//! a service allowed to proxy, at a callback its registration names, and only
//! once that callback answered 200 (§2.5.4).

use std::time::Duration;

use time::OffsetDateTime;

use super::{CasFailure, CasProvider};
use crate::cas::CasError;
use crate::cas::protocol::{ProxyCallbackUrl, Refused, ServiceUrl, ValidateRequest};
use crate::cas::responses::ValidationSuccess;
use crate::cas::services::CasService;
use crate::cas::tickets::{PgtIou, ProxyGrantingTicket, TicketKind};
use crate::directory::Account;
use crate::store::{AuditEvent, CasTicketRecord, NewCasTicket, Spent, unix_now};

/// How long a proxy callback has to answer.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(5);

/// A validation's outcome, in the request's format.
pub enum Validation {
    Valid(Box<ValidationSuccess>),
    Refused(CasError),
}

/// A refusal: what the client is told, and why, for the audit log.
type Refusal = (CasError, &'static str);

fn refusal(reason: &'static str, error: CasError) -> Refusal {
    (error, reason)
}

/// What the checks of a spent ticket found.
enum Checked {
    // Boxed: a service and an account are large beside a refusal.
    Passed(Box<(CasService, Account)>),
    Failed(Refusal),
}

/// What came of a `pgtUrl`.
enum Proxying {
    /// The PGT is at the callback; its IOU goes in the answer.
    HandedOver(PgtIou),
    /// The callback did not answer 200: no PGT, the validation still succeeds.
    NotHandedOver,
    Refused(Refusal),
}

impl CasProvider<'_> {
    pub async fn validate(
        &self,
        request: Result<ValidateRequest, Refused>,
    ) -> Result<Validation, CasFailure> {
        let now = unix_now();
        let request = match request {
            Ok(request) => request,
            Err(refused) => {
                // Presented is spent, whatever was wrong with the request (§3.1.1).
                for ticket in &refused.spent {
                    let store = &self.app.store;
                    store
                        .spend_cas_ticket(&ticket.hash(), now, self.idle_secs())
                        .await?;
                }
                return self
                    .refuse(None, None, (refused.error, "malformed request"))
                    .await;
            }
        };
        let ticket = match self
            .app
            .store
            .spend_cas_ticket(&request.ticket.hash(), now, self.idle_secs())
            .await?
        {
            Spent::Fresh { ticket, live } => (ticket, live),
            Spent::Replayed => {
                let replayed = refusal("replayed", CasError::ticket_not_recognized());
                return self.refuse(None, None, replayed).await;
            }
            Spent::Unknown => {
                let unknown = refusal("unknown", CasError::ticket_not_recognized());
                return self.refuse(None, None, unknown).await;
            }
        };
        let (record, live) = ticket;
        match self.checked(&request, &record, live, now).await? {
            Checked::Passed(passed) => {
                let (service, account) = *passed;
                self.valid(&request, &record, &service, &account, now).await
            }
            Checked::Failed(refused) => {
                self.refuse(Some(&record), Some(&record.service_name), refused)
                    .await
            }
        }
    }

    /// Everything a spent ticket must meet, in the order a client can act on.
    async fn checked(
        &self,
        request: &ValidateRequest,
        record: &CasTicketRecord,
        live: bool,
        now: i64,
    ) -> Result<Checked, CasFailure> {
        if record.expires_at <= now {
            return Ok(Checked::Failed(refusal(
                "expired",
                CasError::ticket_not_recognized(),
            )));
        }
        if !live {
            return Ok(Checked::Failed(refusal(
                "session ended",
                CasError::ticket_not_recognized(),
            )));
        }
        if record.service_url != request.service.as_str() {
            return Ok(Checked::Failed(refusal(
                "another service",
                CasError::service_mismatch(),
            )));
        }
        if request.renew && !record.from_new_login {
            return Ok(Checked::Failed(refusal(
                "not from a new login",
                CasError::not_from_new_login(),
            )));
        }
        let service = self
            .registered(&request.service)
            .await?
            .filter(|service| service.name == record.service_name);
        let Some(service) = service else {
            return Ok(Checked::Failed(refusal(
                "unregistered since",
                CasError::unregistered_service(),
            )));
        };
        let account = self.app.directory.read(&record.account_dn).await?;
        let Some(account) = account.filter(Account::is_active) else {
            return Ok(Checked::Failed(refusal(
                "account not active",
                CasError::ticket_not_recognized(),
            )));
        };
        Ok(Checked::Passed(Box::new((service, account))))
    }

    async fn refuse(
        &self,
        record: Option<&CasTicketRecord>,
        service: Option<&str>,
        (error, reason): Refusal,
    ) -> Result<Validation, CasFailure> {
        let mut event = AuditEvent::new("cas.validate", "refused").detail(serde_json::json!({
            "code": error.code.as_str(),
            "reason": reason,
            "service": service,
        }));
        if let Some(record) = record {
            event = event.account(&record.account_dn);
        }
        self.audit(event).await?;
        Ok(Validation::Refused(error))
    }

    async fn valid(
        &self,
        request: &ValidateRequest,
        record: &CasTicketRecord,
        service: &CasService,
        account: &Account,
        now: i64,
    ) -> Result<Validation, CasFailure> {
        let pgt_iou = match &request.proxy_callback {
            None => None,
            Some(callback) => match self.grant_proxying(service, callback, record, now).await? {
                Proxying::HandedOver(iou) => Some(iou),
                Proxying::NotHandedOver => None,
                Proxying::Refused(refused) => {
                    return self
                        .refuse(Some(record), Some(&service.name), refused)
                        .await;
                }
            },
        };
        let user = account.login.as_str().to_owned();
        if !self.signed_in(request, record, service, &user, now).await? {
            let ended = refusal("session ended", CasError::ticket_not_recognized());
            return self.refuse(Some(record), Some(&service.name), ended).await;
        }
        let event = AuditEvent::new("cas.validate", "ok")
            .account(&record.account_dn)
            .detail(serde_json::json!({
                "service": service.name,
                "kind": if record.kind == TicketKind::Proxy { "PT" } else { "ST" },
                "pgt": pgt_iou.is_some(),
            }));
        self.audit(event).await?;
        let attributes = crate::oidc::claims::cas_attributes(
            account,
            &service.attributes,
            &self.app.settings.oidc.claims,
        );
        Ok(Validation::Valid(Box::new(ValidationSuccess {
            user,
            attributes,
            authentication_date: OffsetDateTime::from_unix_timestamp(record.auth_time)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH),
            is_from_new_login: record.from_new_login,
            long_term: false,
            pgt_iou,
            proxies: record
                .proxies
                .iter()
                .filter_map(|p| ProxyCallbackUrl::parse(p).ok())
                .collect(),
        })))
    }

    /// Records that the session signed in to the service (single logout will
    /// name the ticket), holding the session: false if it ended meanwhile.
    async fn signed_in(
        &self,
        request: &ValidateRequest,
        record: &CasTicketRecord,
        service: &CasService,
        user: &str,
        now: i64,
    ) -> Result<bool, CasFailure> {
        let mut tx = self.app.store.begin().await?;
        // The session held, the ticket read again: a sign-out or a change of
        // password committing meanwhile is either seen here or waits for us.
        let hash = request.ticket.hash();
        if !tx.hold_session(&record.session_hash, now).await?
            || !tx.cas_ticket_is_live(&hash, now, self.idle_secs()).await?
        {
            return Ok(false);
        }
        if service.single_logout.is_some() {
            tx.record_cas_sign_in(
                &record.session_hash,
                &service.name,
                request.service.as_str(),
                request.ticket.expose(),
                user,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// A PGT for `callback`, refused when the service may not proxy or the
    /// callback is not one its registration names.
    async fn grant_proxying(
        &self,
        service: &CasService,
        callback: &ProxyCallbackUrl,
        record: &CasTicketRecord,
        now: i64,
    ) -> Result<Proxying, CasFailure> {
        let Some(allowed) = &service.proxy_callbacks else {
            let refused = refusal(
                "proxying not allowed",
                CasError::unauthorized_service_proxy(),
            );
            return Ok(Proxying::Refused(refused));
        };
        let named = ServiceUrl::parse(callback.as_str()).is_ok_and(|url| allowed.matches(&url));
        if !named {
            let refused = refusal(
                "callback not registered",
                CasError::unregistered_proxy_callback(),
            );
            return Ok(Proxying::Refused(refused));
        }
        let pgt = ProxyGrantingTicket::generate();
        let iou = PgtIou::generate();
        // The chain a PT from this PGT reports: this callback, then the ones
        // the validated ticket went through.
        let mut proxies = vec![callback.as_str().to_owned()];
        proxies.extend(record.proxies.iter().cloned());
        let stored = NewCasTicket {
            kind: TicketKind::ProxyGranting,
            service_name: &service.name,
            service_url: callback.as_str(),
            session_hash: &record.session_hash,
            account_dn: &record.account_dn,
            epoch: record.epoch,
            auth_time: record.auth_time,
            from_new_login: false,
            proxies: &proxies,
            expires_at: now + self.app.settings.sessions.absolute.as_secs() as i64,
        };
        self.app
            .store
            .add_cas_ticket(&pgt.hash(), &stored, now)
            .await?;
        if self.hand_over(callback, &iou, &pgt).await {
            return Ok(Proxying::HandedOver(iou));
        }
        self.app
            .store
            .void_cas_ticket(&pgt.hash(), unix_now())
            .await?;
        Ok(Proxying::NotHandedOver)
    }

    /// GET `pgtUrl?pgtIou=…&pgtId=…`, no redirect followed: true on a 200.
    async fn hand_over(
        &self,
        callback: &ProxyCallbackUrl,
        iou: &PgtIou,
        pgt: &ProxyGrantingTicket,
    ) -> bool {
        let client = match self.app.cas_http() {
            Ok(client) => client,
            Err(error) => {
                tracing::error!(%error, "no HTTP client for CAS proxy callbacks");
                return false;
            }
        };
        let sent = client
            .get(callback.with_tickets(iou, pgt))
            .timeout(CALLBACK_TIMEOUT)
            .send()
            .await;
        match sent {
            Ok(response) if response.status() == reqwest::StatusCode::OK => true,
            Ok(response) => {
                tracing::warn!(status = %response.status(), "CAS proxy callback refused the PGT");
                false
            }
            Err(error) => {
                // Without the URL: it carries the PGT.
                tracing::warn!(error = %error.without_url(), "CAS proxy callback unreachable");
                false
            }
        }
    }
}
