//! `/cas/login` as credential requestor (§2.1): a service ticket on the SSO
//! session the OIDC clients share, or the login page first. `renew` needs a
//! sign-in made after this request asked for it: the request carries a signed
//! statement through the login page (`oidc::login_asked`), so reopening the
//! return address with an older session is not a new login.

use time::OffsetDateTime;
use url::Url;

use super::{CasFailure, CasProvider};
use crate::cas::CasError;
use crate::cas::protocol::{LoginRequest, Prompt, ResponseMethod, ServiceUrl};
use crate::cas::services::CasService;
use crate::cas::tickets::{ServiceTicket, TicketKind};
use crate::domain::{Token, TokenHash};
use crate::flows::sign_in::SignIn;
use crate::oidc::protocol::LOGIN_ASKED;
use crate::oidc::{login_asked, sid};
use crate::store::{AuditEvent, NewCasTicket, Origin, SessionRecord, unix_now};

/// What `/cas/login` does.
pub enum CasLogin {
    /// To the login page, back to `next` (this request and the statement).
    ToLogin { next: String },
    /// To the service, with its ticket in the query. Holds a live ticket.
    Redirect(Url),
    /// `method=POST`: a page that posts the ticket to the service.
    Post {
        service: ServiceUrl,
        ticket: ServiceTicket,
    },
    /// `gateway` and no session: back to the service without a ticket.
    Gateway(Url),
    /// No service, and signed in already.
    SignedIn,
    /// A request no ticket may answer (an unknown service, a bad parameter):
    /// a page, never a redirect.
    Refused(CasError),
}

/// Where a ticket is issued: the service, its registration, the session.
struct Issue<'a> {
    registered: &'a CasService,
    service: &'a ServiceUrl,
    record: &'a SessionRecord,
    session_hash: &'a TokenHash,
}

/// The audience of the login statement for a service.
fn audience(service: &CasService) -> String {
    format!("cas:{}", service.name)
}

impl CasProvider<'_> {
    pub async fn login(
        &self,
        params: &[(String, String)],
        session: Option<&Token>,
    ) -> Result<CasLogin, CasFailure> {
        let request = match LoginRequest::parse(params) {
            Ok(request) => request,
            Err(error) => return Ok(CasLogin::Refused(error)),
        };
        let now = unix_now();
        let session = self.session(session).await?;
        let (service, prompt, method) = match request {
            LoginRequest::Plain { renew } => {
                return Ok(match session {
                    Some(_) if !renew => CasLogin::SignedIn,
                    _ => CasLogin::ToLogin {
                        next: "/account".into(),
                    },
                });
            }
            LoginRequest::Service {
                service,
                prompt,
                method,
            } => (service, prompt, method),
        };
        let Some(registered) = self.registered(&service).await? else {
            let event = AuditEvent::new("cas.login", "refused")
                .detail(serde_json::json!({ "reason": "unregistered service" }));
            self.audit(event).await?;
            return Ok(CasLogin::Refused(CasError::unregistered_service()));
        };
        let asked = match crate::oidc::protocol::single(params, LOGIN_ASKED) {
            Ok(Some(raw)) => login_asked::asked(self.app, raw, &audience(&registered), now),
            _ => None,
        };
        // Opened after this request asked for a sign-in, and not the session the
        // browser had then (both can fall in the same second).
        let new_login = |(record, hash): &(SessionRecord, TokenHash)| {
            asked.as_ref().is_some_and(|asked| {
                record.created_at >= asked.at
                    && asked.prior.as_deref() != Some(sid(hash.as_str()).as_str())
            })
        };
        let fresh = session.as_ref().is_some_and(new_login);
        let current = session.as_ref().map(|(_, hash)| sid(hash.as_str()));
        let usable = session.filter(|_| prompt != Prompt::Renew || fresh);
        if let Some((record, hash)) = &usable {
            let at = Issue {
                registered: &registered,
                service: &service,
                record,
                session_hash: hash,
            };
            if let Some(ticket) = self.ticket_for(&at, fresh, prompt, now).await? {
                return Ok(match method {
                    ResponseMethod::Get => CasLogin::Redirect(service.with_ticket(&ticket)),
                    ResponseMethod::Post => CasLogin::Post { service, ticket },
                });
            }
        } else if prompt == Prompt::Gateway {
            return Ok(CasLogin::Gateway(service.as_url().clone()));
        }
        let audience = audience(&registered);
        let statement = login_asked::statement_since(self.app, &audience, now, current.as_deref())?;
        Ok(CasLogin::ToLogin {
            next: return_address(params, &statement),
        })
    }

    /// A ticket from the session: a new-login one if the sign-in was made for
    /// this request and has vouched for no ticket yet. A sign-in vouched for
    /// already gives an SSO ticket, or none when `renew` needs a new sign-in.
    async fn ticket_for(
        &self,
        at: &Issue<'_>,
        fresh: bool,
        prompt: Prompt,
        now: i64,
    ) -> Result<Option<ServiceTicket>, CasFailure> {
        if let Some(ticket) = self.issue(at, fresh, now).await? {
            return Ok(Some(ticket));
        }
        match prompt {
            Prompt::Renew => Ok(None),
            Prompt::Sso | Prompt::Gateway => self.issue(at, false, now).await,
        }
    }

    /// The live session behind the browser's cookie, and its hash.
    async fn session(
        &self,
        secret: Option<&Token>,
    ) -> Result<Option<(SessionRecord, TokenHash)>, CasFailure> {
        let sign_in = SignIn {
            app: self.app,
            origin: Origin::default(),
        };
        Ok(sign_in
            .session_of(secret, OffsetDateTime::now_utc())
            .await?)
    }

    /// A service ticket for this session, stored by its hash; none if it is a
    /// new-login ticket and the sign-in vouched for one already.
    async fn issue(
        &self,
        at: &Issue<'_>,
        from_new_login: bool,
        now: i64,
    ) -> Result<Option<ServiceTicket>, CasFailure> {
        let Issue {
            registered,
            service,
            record,
            session_hash,
        } = at;
        let ticket = ServiceTicket::generate();
        let lifetime = self.app.settings.cas.ticket_lifetime.as_secs() as i64;
        let stored = NewCasTicket {
            kind: TicketKind::Service,
            service_name: &registered.name,
            service_url: service.as_str(),
            session_hash: session_hash.as_str(),
            account_dn: &record.account_dn,
            epoch: record.epoch,
            auth_time: record.created_at,
            from_new_login,
            proxies: &[],
            expires_at: now + lifetime,
        };
        if !self
            .app
            .store
            .add_cas_ticket(&ticket.hash(), &stored, now)
            .await?
        {
            return Ok(None);
        }
        let event = AuditEvent::new("cas.ticket", "ok")
            .account(&record.account_dn)
            .detail(serde_json::json!({
                "service": registered.name,
                "kind": "ST",
                "from_new_login": from_new_login,
            }));
        self.audit(event).await?;
        Ok(Some(ticket))
    }
}

/// This request again, with the statement that a sign-in was asked now (an
/// older statement dropped).
fn return_address(params: &[(String, String)], statement: &str) -> String {
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in params.iter().filter(|(k, _)| k != LOGIN_ASKED) {
        back.append_pair(key, value);
    }
    back.append_pair(LOGIN_ASKED, statement);
    format!("/cas/login?{}", back.finish())
}
