//! RP-initiated logout (the end-session endpoint, OpenID Connect RP-Initiated
//! Logout 1.0). Back-channel logout, which tells every client of the session, is
//! `oidc::backchannel`.

use serde_json::Value;
use time::OffsetDateTime;
use url::Url;

use super::{Provider, ProviderError};
use crate::domain::Token;
use crate::flows::sign_in::SignIn;
use crate::oidc::protocol::EndSessionRequest;
use crate::oidc::{OAuthCode, OAuthError};
use crate::store::{ClientRecord, unix_now};

/// What the end-session endpoint does.
pub enum EndSession {
    /// The client did not prove which session it means: the student confirms, so
    /// a link on any site cannot sign them out.
    Confirm {
        client: Option<ClientRecord>,
        post_logout_redirect_uri: Option<String>,
        state: Option<String>,
    },
    /// Signed out (or was not signed in); then to the client's page, or ours.
    SignedOut { to: Option<Url> },
}

impl Provider<'_> {
    /// RP-initiated logout. The session ends at once when the client proves which
    /// session it means (an ID token of ours for this very session). `session` is
    /// the secret of the browser's session cookie.
    pub async fn end_session(
        &self,
        request: EndSessionRequest,
        session: Option<&Token>,
    ) -> Result<EndSession, ProviderError> {
        let hint = match &request.id_token_hint {
            Some(raw) => match self.hint_claims(raw) {
                Some(claims) => Some(claims),
                None => {
                    let foreign = "id_token_hint is not an ID token of ours";
                    return Err(OAuthError::invalid_request(foreign).into());
                }
            },
            None => None,
        };
        let hinted = hint
            .as_ref()
            .and_then(|c| c["aud"].as_str().map(str::to_owned));
        // Both given: they must name the same client (RP-Initiated Logout §2).
        if let (Some(named), Some(hinted)) = (&request.client_id, &hinted)
            && named != hinted
        {
            let disagree = "client_id and id_token_hint disagree";
            return Err(OAuthError::invalid_request(disagree).into());
        }
        let client =
            match request.client_id.as_ref().or(hinted.as_ref()) {
                Some(id) => {
                    Some(self.app.store.client(id).await?.ok_or_else(|| {
                        OAuthError::new(OAuthCode::InvalidClient, "unknown client")
                    })?)
                }
                None => None,
            };
        let to = after_logout(
            client.as_ref(),
            request.post_logout_redirect_uri.as_deref(),
            request.state.as_deref(),
        )?;
        let sign_in = SignIn {
            app: self.app,
            origin: self.origin.clone(),
        };
        let now = OffsetDateTime::now_utc();
        let current = match session {
            Some(secret) => sign_in.session(secret, now).await?.map(|_| secret.hash()),
            None => None,
        };
        let proven = match (&current, &hint) {
            (Some(hash), Some(claims)) => {
                claims["sid"].as_str() == Some(super::sid(hash.as_str()).as_str())
            }
            (None, _) => true,
            (Some(_), None) => false,
        };
        if !proven {
            return Ok(EndSession::Confirm {
                client,
                post_logout_redirect_uri: request.post_logout_redirect_uri,
                state: request.state,
            });
        }
        if let Some(hash) = &current {
            sign_in.sign_out(hash, now).await?;
        }
        Ok(EndSession::SignedOut { to })
    }

    /// The claims of an ID token we signed (expired or not: a hint may be old);
    /// `None` if it is not one.
    pub(super) fn hint_claims(&self, hint: &str) -> Option<Value> {
        // Only an ID token: never a logout token or a login request.
        let keys = self.app.keys.current();
        keys.verify_own(hint, "JWT", unix_now(), |validation| {
            validation.validate_exp = false;
            validation.validate_aud = false;
            validation.set_issuer(&[self.issuer()]);
        })
    }
}

/// Where to send the student after logout: a URI registered for the client, with
/// the client's state; anything else is refused (never an open redirect).
pub fn after_logout(
    client: Option<&ClientRecord>,
    uri: Option<&str>,
    state: Option<&str>,
) -> Result<Option<Url>, OAuthError> {
    let Some(uri) = uri else { return Ok(None) };
    let registered = client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
    if !registered {
        let unregistered = "post_logout_redirect_uri not registered";
        return Err(OAuthError::invalid_request(unregistered));
    }
    let mut url = Url::parse(uri)
        .map_err(|_| OAuthError::invalid_request("post_logout_redirect_uri unreadable"))?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok(Some(url))
}
