//! The token endpoint's decisions: authorization_code (PKCE checked) and
//! refresh_token (rotated; a replayed code or refresh token revokes everything its
//! grant issued). Clients authenticate with client_secret_basic or
//! client_secret_post; public clients send only their id and rely on PKCE.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::{Provider, ProviderError};
use crate::directory::Account;
use crate::domain::{Token, TokenHash};
use crate::oidc::clients::secret_matches;
use crate::oidc::keys::Alg;
use crate::oidc::protocol::{ClientRequest, TokenRequest};
use crate::oidc::responses::TokenResponse;
use crate::oidc::{OAuthCode, OAuthError, claims};
use crate::store::{
    AuditEvent, ClientRecord, CodeRecord, NewToken, Redemption, StoreTx, TokenKind, unix_now,
};

const ACCESS_SECS: i64 = 3600;
const REFRESH_SECS: i64 = 30 * 86400;
const ID_TOKEN_SECS: i64 = 600;

impl Provider<'_> {
    /// A token request: the client authenticates, then its grant is exchanged.
    pub async fn token(&self, request: &ClientRequest) -> Result<TokenResponse, ProviderError> {
        let client = self.authenticate(request).await?;
        match TokenRequest::parse(&request.params)? {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                let presented = CodeExchange {
                    code: &code,
                    redirect_uri: redirect_uri.as_deref(),
                    code_verifier: code_verifier.as_deref(),
                };
                self.exchange(&client, &presented).await
            }
            TokenRequest::RefreshToken {
                refresh_token,
                scope,
            } => {
                self.refresh(&client, &refresh_token, scope.as_deref())
                    .await
            }
        }
    }

    /// The client, authenticated; a failure is audited (who tried which client id).
    pub(super) async fn authenticate(
        &self,
        request: &ClientRequest,
    ) -> Result<ClientRecord, ProviderError> {
        match self.authenticated(request).await {
            Err(ProviderError::Refused(error)) if error.code == OAuthCode::InvalidClient => {
                // Cut short: a flood of made-up ids must not fill the log.
                let named: Option<String> = request
                    .named_client()
                    .map(|id| id.chars().take(64).collect());
                let event = AuditEvent::new("oidc.client_auth", "refused")
                    .detail(json!({ "client_id": named }));
                self.app.store.audit(&self.origin, event).await?;
                Err(error.into())
            }
            other => other,
        }
    }

    async fn authenticated(&self, request: &ClientRequest) -> Result<ClientRecord, ProviderError> {
        let credentials = request.credentials()?;
        let client = self
            .app
            .store
            .client(&credentials.client_id)
            .await?
            .ok_or_else(OAuthError::invalid_client)?;
        let authenticated = match (&client.secret_hash, &credentials.secret) {
            (Some(_), Some(secret)) => secret_matches(&client, secret),
            (None, None) => true,
            _ => false,
        };
        if !authenticated {
            return Err(OAuthError::invalid_client().into());
        }
        Ok(client)
    }

    async fn exchange(
        &self,
        client: &ClientRecord,
        presented: &CodeExchange<'_>,
    ) -> Result<TokenResponse, ProviderError> {
        let Ok(code) = presented.code.parse::<Token>() else {
            return Err(OAuthError::invalid_grant("unknown code").into());
        };
        let (store, now) = (&self.app.store, unix_now());
        let hash = code.hash();
        let record = match store.find_code(&hash, &client.client_id).await? {
            Redemption::Redeemable(record) => record,
            Redemption::Replayed => return self.code_replayed(client, &hash, now).await,
            Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown code").into()),
        };
        let account = match self.redeemable(&record, presented, now).await {
            Ok(account) => account,
            // Presented wrongly or too late: spent all the same. An outage spends
            // nothing: the client may try again.
            Err(refused @ ProviderError::Refused(_)) => {
                store.spend_code(&hash, &client.client_id, now).await?;
                return Err(refused);
            }
            Err(failed) => return Err(failed),
        };
        let grant = Grant {
            id: hash.as_str(),
            client,
            account: &account,
            session_hash: &record.session_hash,
            scope: &record.scope,
            refresh_scope: &record.scope,
            auth_time: record.auth_time,
            nonce: record.nonce.as_deref(),
            epoch: record.epoch,
            bound: SessionBound::Live,
        };
        let spending = Spending::Code {
            hash: &hash,
            client_id: &client.client_id,
        };
        match self.issue(&grant, spending, now).await? {
            Issued::Tokens(tokens) => Ok(tokens),
            // Another redemption of this code was first.
            Issued::AlreadySpent => self.code_replayed(client, &hash, now).await,
        }
    }

    /// The account a code was issued for, if the code may still be redeemed as
    /// presented.
    async fn redeemable(
        &self,
        record: &CodeRecord,
        presented: &CodeExchange<'_>,
        now: i64,
    ) -> Result<Account, ProviderError> {
        let store = &self.app.store;
        if record.expires_at <= now {
            return Err(OAuthError::invalid_grant("code expired").into());
        }
        if presented.redirect_uri != Some(record.redirect_uri.as_str()) {
            return Err(OAuthError::invalid_grant("redirect_uri does not match").into());
        }
        checked_verifier(record.code_challenge.as_deref(), presented.code_verifier)?;
        // Signed out (or reset) since the code was issued: it gives nothing.
        if !store.session_is_live(&record.session_hash, now).await?
            || store.credential_epoch(&record.account_dn).await? != record.epoch
        {
            let ended = "the session of this code has ended";
            return Err(OAuthError::invalid_grant(ended).into());
        }
        self.active_account(&record.account_dn).await
    }

    /// A code presented again: whatever it issued may be in the wrong hands.
    async fn code_replayed(
        &self,
        client: &ClientRecord,
        hash: &TokenHash,
        now: i64,
    ) -> Result<TokenResponse, ProviderError> {
        let store = &self.app.store;
        let revoked = store.revoke_grant(hash.as_str(), now).await?;
        tracing::warn!(client = %client.client_id, revoked, "authorization code replayed");
        let event = AuditEvent::new("oidc.code", "replayed")
            .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
        store.audit(&self.origin, event).await?;
        Err(OAuthError::invalid_grant("code already used").into())
    }

    async fn refresh(
        &self,
        client: &ClientRecord,
        presented: &str,
        asked_scope: Option<&str>,
    ) -> Result<TokenResponse, ProviderError> {
        let unknown = || OAuthError::invalid_grant("unknown refresh token");
        let presented = presented.parse::<Token>().map_err(|_| unknown())?;
        let (store, now) = (&self.app.store, unix_now());
        let hash = presented.hash();
        let record = store
            .token(&hash)
            .await?
            .filter(|t| t.kind == TokenKind::Refresh && t.client_id == client.client_id)
            .ok_or_else(unknown)?;
        if !record.is_live(now) {
            let dead = "refresh token expired or revoked";
            return Err(OAuthError::invalid_grant(dead).into());
        }
        // The directory first: an outage must fail the refresh before the token is
        // rotated, or the client's retry would look like reuse and end its grant.
        let account = self.active_account(&record.account_dn).await?;
        // A refresh may narrow the scope, never widen it (RFC 6749 §6).
        let scope = match asked_scope {
            Some(asked) => {
                let granted: Vec<&str> = record.scope.split(' ').collect();
                let asked = claims::granted(asked, &self.app.settings.oidc.claims);
                if asked.split(' ').any(|s| !granted.contains(&s)) {
                    return Err(OAuthError::invalid_scope().into());
                }
                asked
            }
            None => record.scope.clone(),
        };
        let grant = Grant {
            id: &record.grant_id,
            client,
            account: &account,
            session_hash: &record.session_hash,
            scope: &scope,
            refresh_scope: &record.scope,
            auth_time: record.auth_time,
            nonce: None,
            epoch: record.epoch,
            bound: SessionBound::Offline,
        };
        match self
            .issue(&grant, Spending::RefreshToken(&hash), now)
            .await?
        {
            Issued::Tokens(tokens) => Ok(tokens),
            Issued::AlreadySpent => {
                // Used before: a stolen copy is in play. End the whole grant.
                let revoked = store.revoke_grant(&record.grant_id, now).await?;
                tracing::warn!(client = %client.client_id, revoked, "refresh token reused");
                let event = AuditEvent::new("oidc.refresh", "reused")
                    .account(&record.account_dn)
                    .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
                store.audit(&self.origin, event).await?;
                Err(OAuthError::invalid_grant("refresh token already used").into())
            }
        }
    }

    /// The account behind a grant, if it may still sign in.
    async fn active_account(&self, dn: &str) -> Result<Account, ProviderError> {
        match self.app.directory.read(dn).await? {
            Some(account) if account.is_active() => Ok(account),
            _ => {
                let gone = "the account can no longer sign in";
                Err(OAuthError::invalid_grant(gone).into())
            }
        }
    }

    /// The grant's new tokens, stored in one transaction (one commit) with the
    /// code or refresh token they are exchanged for marked spent: the two are
    /// made together or not at all.
    async fn issue(
        &self,
        grant: &Grant<'_>,
        spending: Spending<'_>,
        now: i64,
    ) -> Result<Issued, ProviderError> {
        let store = &self.app.store;
        let access = Token::generate();
        // The refresh token keeps the grant's whole scope, even after a narrowing refresh.
        let refresh = grant
            .refresh_scope
            .split(' ')
            .any(|s| s == "offline_access")
            .then(Token::generate);
        let mut tx = store.begin().await?;
        // Spent first, so the transaction writes from its first statement (SQLite
        // takes its write lock there) and a second use waits for this one, then
        // finds it spent (PostgreSQL's row lock).
        let spent = match spending {
            Spending::Code { hash, client_id } => tx.spend_code(hash, client_id, now).await?,
            Spending::RefreshToken(hash) => tx.rotate_token(hash, now).await?,
        };
        if !spent {
            return Ok(Issued::AlreadySpent);
        }
        let access_row = (
            &access.hash(),
            TokenKind::Access,
            grant.scope,
            now + ACCESS_SECS,
        );
        store_token(&mut tx, grant, access_row, now).await?;
        if let Some(refresh) = &refresh {
            let refresh_row = (
                &refresh.hash(),
                TokenKind::Refresh,
                grant.refresh_scope,
                now + REFRESH_SECS,
            );
            store_token(&mut tx, grant, refresh_row, now).await?;
        }
        // Signed out while this exchange ran: its tokens are never committed.
        if grant.bound == SessionBound::Live && !tx.hold_session(grant.session_hash, now).await? {
            let ended = "the session of this code has ended";
            return Err(OAuthError::invalid_grant(ended).into());
        }
        tx.commit().await?;
        // A replay that raced this redemption revoked the grant before these tokens
        // existed: they die with it (the replay's revocation or this one, whichever
        // comes last, sees them).
        if store.grant_is_revoked(grant.id).await? {
            store.revoke_grant(grant.id, now).await?;
            return Err(OAuthError::invalid_grant("this grant was revoked").into());
        }
        let alg = Alg::of_client(grant.client);
        let claims = self.id_token_claims(grant, &access, alg, now);
        let id_token = self.app.keys.current().sign(alg, "JWT", &claims, now)?;
        Ok(Issued::Tokens(TokenResponse {
            access_token: access.expose().to_owned(),
            token_type: "Bearer",
            expires_in: ACCESS_SECS,
            id_token,
            scope: grant.scope.to_owned(),
            refresh_token: refresh.map(|refresh| refresh.expose().to_owned()),
        }))
    }

    fn id_token_claims(&self, grant: &Grant<'_>, access: &Token, alg: Alg, now: i64) -> Value {
        let mut claims = json!({
            "iss": self.issuer(),
            "sub": claims::subject(grant.account),
            "aud": grant.client.client_id,
            "azp": grant.client.client_id,
            "exp": now + ID_TOKEN_SECS,
            "iat": now,
            "auth_time": grant.auth_time,
            "sid": sid(grant.session_hash),
            "at_hash": at_hash(access, alg),
        });
        if let (Some(nonce), Some(fields)) = (grant.nonce, claims.as_object_mut()) {
            fields.insert("nonce".into(), json!(nonce));
        }
        claims
    }
}

/// What new tokens are exchanged for.
enum Spending<'a> {
    Code {
        hash: &'a TokenHash,
        client_id: &'a str,
    },
    RefreshToken(&'a TokenHash),
}

/// What issuing gave.
enum Issued {
    Tokens(TokenResponse),
    /// The code or refresh token was spent (or revoked) before: nothing was issued.
    AlreadySpent,
}

/// What a client presents to exchange a code.
struct CodeExchange<'a> {
    code: &'a str,
    redirect_uri: Option<&'a str>,
    code_verifier: Option<&'a str>,
}

/// PKCE at the token endpoint (RFC 7636 §4.6).
fn checked_verifier(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), OAuthError> {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                return Err(OAuthError::invalid_grant("code_verifier does not match"));
            }
            Ok(())
        }
        (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
        // A verifier for a code issued without a challenge: a downgrade (RFC 9700 §4.8.2).
        (None, Some(_)) => Err(OAuthError::invalid_grant(
            "this code was issued without PKCE",
        )),
        (None, None) => Ok(()),
    }
}

struct Grant<'a> {
    id: &'a str,
    client: &'a ClientRecord,
    account: &'a Account,
    session_hash: &'a str,
    /// The access token's scope (a refresh may narrow it).
    scope: &'a str,
    /// The refresh token's scope: always the grant's whole scope (RFC 6749 §6).
    refresh_scope: &'a str,
    auth_time: i64,
    nonce: Option<&'a str>,
    /// The credential epoch it was issued under, which its tokens carry on.
    epoch: i64,
    bound: SessionBound,
}

/// Whether the tokens need their session alive (a code exchange) or outlive it
/// (a refresh: only `offline_access` grants have refresh tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SessionBound {
    Live,
    Offline,
}

async fn store_token(
    tx: &mut StoreTx,
    grant: &Grant<'_>,
    (hash, kind, scope, expires_at): (&TokenHash, TokenKind, &str, i64),
    now: i64,
) -> Result<(), ProviderError> {
    let token = NewToken {
        hash,
        kind,
        grant_id: grant.id,
        client_id: &grant.client.client_id,
        account_dn: &grant.account.dn,
        session_hash: grant.session_hash,
        scope,
        auth_time: grant.auth_time,
        expires_at,
        epoch: grant.epoch,
    };
    Ok(tx.add_token(&token, now).await?)
}

/// `at_hash`: the left half of the access token's hash, with the hash of the
/// signature algorithm (SHA-256 for RS256 and ES256, SHA-512 for Ed25519).
fn at_hash(access: &Token, alg: Alg) -> String {
    let digest: Vec<u8> = match alg {
        Alg::Rs256 | Alg::Es256 => Sha256::digest(access.expose().as_bytes()).to_vec(),
        Alg::EdDsa => Sha512::digest(access.expose().as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// The session id clients see (`sid`): derived from, but not, the stored hash.
pub fn sid(session_hash: &str) -> String {
    URL_SAFE_NO_PAD.encode(&Sha256::digest(format!("sid:{session_hash}").as_bytes())[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_the_hash() {
        let token: Token = "dNZX1hEZ9wBCzNL40Upu646bdzQA7ZgUL2d5xGW2C8k"
            .parse()
            .unwrap();
        assert_eq!(at_hash(&token, Alg::Rs256).len(), 22);
        assert_eq!(at_hash(&token, Alg::EdDsa).len(), 43);
    }

    #[test]
    fn a_verifier_must_match_its_challenge_and_never_come_alone() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(checked_verifier(Some(challenge), Some(verifier)).is_ok());
        assert!(checked_verifier(Some(challenge), Some("other")).is_err());
        assert!(checked_verifier(Some(challenge), None).is_err());
        assert!(checked_verifier(None, Some(verifier)).is_err());
        assert!(checked_verifier(None, None).is_ok());
    }
}
