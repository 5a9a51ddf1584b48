//! `/cas/logout` (§2.3): ends the SSO session, and with it every application's
//! (OIDC back-channel logouts and CAS single logouts, queued in the same
//! commit), then follows `service` only if it is a registered service.

use time::OffsetDateTime;
use url::Url;

use super::{CasFailure, CasProvider};
use crate::cas::protocol::LogoutRequestParams;
use crate::domain::Token;
use crate::flows::sign_in::SignIn;

/// Where the browser goes once signed out.
pub enum CasLogout {
    /// Back to a registered service.
    ToService(Url),
    /// The "you are signed out" page.
    SignedOut,
}

impl CasProvider<'_> {
    pub async fn logout(
        &self,
        params: &[(String, String)],
        session: Option<&Token>,
    ) -> Result<CasLogout, CasFailure> {
        if let Some(secret) = session {
            let sign_in = SignIn {
                app: self.app,
                origin: self.origin.clone(),
            };
            sign_in
                .sign_out(&secret.hash(), OffsetDateTime::now_utc())
                .await?;
        }
        let Some(service) = LogoutRequestParams::parse(params).service else {
            return Ok(CasLogout::SignedOut);
        };
        Ok(match self.registered(&service).await? {
            Some(_) => CasLogout::ToService(service.as_url().clone()),
            None => CasLogout::SignedOut,
        })
    }
}
