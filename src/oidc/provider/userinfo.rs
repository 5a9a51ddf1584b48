//! UserInfo (OIDC Core §5.3), and the documents a client discovers the provider
//! by: the metadata and the signing keys (JWKS).

use serde_json::Value;

use super::{Provider, ProviderError};
use crate::domain::Token;
use crate::oidc::keyring::Published;
use crate::oidc::keys::Alg;
use crate::oidc::responses::Discovery;
use crate::oidc::{OAuthError, claims};
use crate::store::{TokenKind, unix_now};

impl Provider<'_> {
    /// The claims an access token's scope allows, while the token and the account live.
    pub async fn userinfo(&self, access: &Token) -> Result<Value, ProviderError> {
        let now = unix_now();
        let record = self
            .app
            .store
            .token(&access.hash())
            .await?
            .filter(|t| t.kind == TokenKind::Access && t.is_live(now))
            .ok_or_else(OAuthError::invalid_token)?;
        let account = self
            .app
            .directory
            .read(&record.account_dn)
            .await?
            .filter(|a| a.is_active())
            .ok_or_else(OAuthError::invalid_token)?;
        Ok(claims::userinfo(
            &account,
            &record.scope,
            &self.app.settings.oidc.claims,
        ))
    }

    /// The JWKS document: every published key's public half, as last read.
    pub fn jwks(&self) -> Published {
        self.app.keys.current().jwks().clone()
    }

    /// OpenID Provider Metadata (OIDC Discovery 1.0 §3).
    pub fn discovery(&self) -> Discovery {
        let issuer = self.issuer();
        let at = |path: &str| format!("{issuer}{path}");
        let mapping = &self.app.settings.oidc.claims;
        let owned = |names: Vec<&str>| names.into_iter().map(str::to_owned).collect();
        let client_auth = vec!["client_secret_basic", "client_secret_post", "none"];
        Discovery {
            authorization_endpoint: at("/authorize"),
            token_endpoint: at("/token"),
            userinfo_endpoint: at("/userinfo"),
            jwks_uri: at("/jwks.json"),
            introspection_endpoint: at("/introspect"),
            revocation_endpoint: at("/revoke"),
            end_session_endpoint: at("/end_session"),
            backchannel_logout_supported: true,
            backchannel_logout_session_supported: true,
            frontchannel_logout_supported: false,
            // Only a client with a secret may introspect.
            introspection_endpoint_auth_methods_supported: vec![
                "client_secret_basic",
                "client_secret_post",
            ],
            revocation_endpoint_auth_methods_supported: client_auth.clone(),
            scopes_supported: owned(claims::scopes(mapping)),
            response_types_supported: vec!["code"],
            response_modes_supported: vec!["query"],
            grant_types_supported: vec!["authorization_code", "refresh_token"],
            subject_types_supported: vec!["public"],
            id_token_signing_alg_values_supported: Alg::ALL.map(Alg::name).to_vec(),
            token_endpoint_auth_methods_supported: client_auth,
            code_challenge_methods_supported: vec!["S256"],
            claims_supported: owned(claims::supported(mapping)),
            prompt_values_supported: vec!["none", "login", "consent"],
            request_parameter_supported: false,
            request_uri_parameter_supported: false,
            claims_parameter_supported: false,
            authorization_response_iss_parameter_supported: true,
            ui_locales_supported: vec!["fr", "en"],
            issuer,
        }
    }
}
