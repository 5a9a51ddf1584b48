//! `/cas/proxy` (§2.7): a proxy ticket for a registered target service, from a
//! PGT whose session is still open and whose credential epoch is current.

use super::{CasFailure, CasProvider};
use crate::cas::CasError;
use crate::cas::protocol::{ProxyRequest, Refused};
use crate::cas::tickets::{ProxyTicket, TicketKind};
use crate::store::{AuditEvent, NewCasTicket, unix_now};

/// What `/proxy` answers.
pub enum Proxied {
    /// Holds a live ticket.
    Granted(ProxyTicket),
    Refused(CasError),
}

impl CasProvider<'_> {
    pub async fn proxy(
        &self,
        request: Result<ProxyRequest, Refused>,
    ) -> Result<Proxied, CasFailure> {
        let request = match request {
            Ok(request) => request,
            Err(refused) => {
                return self
                    .proxy_refused(None, refused.error, "malformed request")
                    .await;
            }
        };
        let now = unix_now();
        let Some(pgt) = self
            .app
            .store
            .live_pgt(&request.pgt.hash(), now, self.idle_secs())
            .await?
        else {
            let unknown = CasError::ticket_not_recognized();
            return self.proxy_refused(None, unknown, "no live PGT").await;
        };
        let Some(target) = self.registered(&request.target_service).await? else {
            let refused = CasError::unauthorized_service();
            return self
                .proxy_refused(Some(&pgt.account_dn), refused, "unregistered target")
                .await;
        };
        let ticket = ProxyTicket::generate();
        let stored = NewCasTicket {
            kind: TicketKind::Proxy,
            service_name: &target.name,
            service_url: request.target_service.as_str(),
            session_hash: &pgt.session_hash,
            account_dn: &pgt.account_dn,
            epoch: pgt.epoch,
            auth_time: pgt.auth_time,
            from_new_login: false,
            proxies: &pgt.proxies,
            expires_at: now + self.app.settings.cas.ticket_lifetime.as_secs() as i64,
        };
        self.app
            .store
            .add_cas_ticket(&ticket.hash(), &stored, now)
            .await?;
        let event = AuditEvent::new("cas.ticket", "ok")
            .account(&pgt.account_dn)
            .detail(serde_json::json!({ "service": target.name, "kind": "PT", "from": pgt.service_name }));
        self.audit(event).await?;
        Ok(Proxied::Granted(ticket))
    }

    async fn proxy_refused(
        &self,
        account: Option<&str>,
        error: CasError,
        reason: &'static str,
    ) -> Result<Proxied, CasFailure> {
        let mut event = AuditEvent::new("cas.proxy", "refused")
            .detail(serde_json::json!({ "code": error.code.as_str(), "reason": reason }));
        if let Some(account) = account {
            event = event.account(account);
        }
        self.audit(event).await?;
        Ok(Proxied::Refused(error))
    }
}
