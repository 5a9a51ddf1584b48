//! Token introspection (RFC 7662: how Dovecot checks the bearer tokens Roundcube
//! sends) and revocation (RFC 7009). Both require client authentication.

use serde_json::json;

use super::{Provider, ProviderError};
use crate::domain::Token;
use crate::oidc::protocol::{ClientRequest, TokenQuestion};
use crate::oidc::responses::{ActiveToken, Introspection};
use crate::oidc::{OAuthError, claims};
use crate::store::{AuditEvent, TokenKind, unix_now};

impl Provider<'_> {
    pub async fn introspect(
        &self,
        request: &ClientRequest,
    ) -> Result<Introspection, ProviderError> {
        // Only a client with a secret may ask.
        let asker = self.authenticate(request).await?;
        if asker.secret_hash.is_none() {
            return Err(OAuthError::invalid_client().into());
        }
        let question = TokenQuestion::parse(&request.params)?;
        let Ok(token) = question.token.parse::<Token>() else {
            return Ok(Introspection::Inactive);
        };
        let now = unix_now();
        let Some(record) = self.app.store.token(&token.hash()).await? else {
            return Ok(Introspection::Inactive);
        };
        // A client learns about its own tokens; only a resource server registered
        // with --introspection learns about others' (RFC 7662 §2.2: "active": false
        // when the caller may not know).
        if record.client_id != asker.client_id && !asker.introspection {
            let event = AuditEvent::new("oidc.introspect", "refused")
                .account(&record.account_dn)
                .detail(json!({ "asker": asker.client_id, "client_id": record.client_id }));
            self.app.store.audit(&self.origin, event).await?;
            return Ok(Introspection::Inactive);
        }
        let live = record.is_live(now)
            && (record.kind == TokenKind::Access || record.rotated_at.is_none());
        if !live {
            return Ok(Introspection::Inactive);
        }
        let account = self.app.directory.read(&record.account_dn).await?;
        let Some(account) = account.filter(|a| a.is_active()) else {
            return Ok(Introspection::Inactive);
        };
        // The login is the profile scope's preferred_username: a token without that
        // scope does not disclose it.
        let username = record
            .scope
            .split(' ')
            .any(|s| s == "profile")
            .then(|| account.login.as_str().to_owned());
        Ok(Introspection::Active(ActiveToken {
            token_type: match record.kind {
                TokenKind::Access => "Bearer",
                TokenKind::Refresh => "refresh_token",
            },
            exp: record.expires_at,
            sub: claims::subject(&account),
            aud: record.client_id.clone(),
            iss: self.issuer(),
            scope: record.scope,
            client_id: record.client_id,
            username,
        }))
    }

    /// Revoking a refresh token ends its whole grant; an access token, itself. An
    /// unknown token is answered like a revoked one (RFC 7009 §2.2).
    pub async fn revoke(&self, request: &ClientRequest) -> Result<(), ProviderError> {
        let client = self.authenticate(request).await?;
        let question = TokenQuestion::parse(&request.params)?;
        let Ok(token) = question.token.parse::<Token>() else {
            return Ok(());
        };
        let (store, now) = (&self.app.store, unix_now());
        let Some(record) = store.token(&token.hash()).await? else {
            return Ok(());
        };
        if record.client_id != client.client_id {
            let other = "the token was issued to another client";
            return Err(OAuthError::unauthorized_client(other).into());
        }
        let revoked = match record.kind {
            TokenKind::Refresh => store.revoke_grant(&record.grant_id, now).await?,
            TokenKind::Access => {
                store.revoke_token(&token.hash(), now).await?;
                1
            }
        };
        let event = AuditEvent::new("oidc.revoke", "ok")
            .account(&record.account_dn)
            .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
        store.audit(&self.origin, event).await?;
        Ok(())
    }
}
