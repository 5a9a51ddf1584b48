//! The token endpoint: authorization_code (PKCE checked) and refresh_token (rotated;
//! a replayed code or refresh token revokes everything its grant issued).
//! Clients authenticate with client_secret_basic or client_secret_post; public
//! clients send only their id and rely on PKCE.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, FromRequest, Request, State};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, PRAGMA};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::OAuthError;
use super::clients::secret_matches;
use super::keys::{self, Alg};
use crate::directory::Account;
use crate::domain::{Token, TokenHash};
use crate::store::{
    AuditEvent, ClientRecord, NewToken, Origin, Redemption, StoreTx, TokenKind, unix_now,
};
use crate::web::{AppState, Frame};

const ACCESS_SECS: i64 = 3600;
const REFRESH_SECS: i64 = 30 * 86400;
const ID_TOKEN_SECS: i64 = 600;

pub(super) type Params = Vec<(String, String)>;

/// A form body, or the JSON `invalid_request` an OAuth client expects (RFC 6749
/// §5.2) rather than axum's plain-text 415 or 422.
pub(super) struct OAuthForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Form::<Params>::from_request(request, state)
            .await
            .map(|Form(params)| OAuthForm(params))
            .map_err(|rejection| {
                tracing::debug!(%rejection, "token endpoint body refused");
                OAuthError::invalid_request(
                    "the body must be an application/x-www-form-urlencoded form",
                )
            })
    }
}

pub(super) fn param<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, OAuthError> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(format!("{name} is repeated")));
    }
    Ok(first.filter(|v| !v.is_empty()))
}

pub async fn token(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let origin = frame.origin(peer);
    match exchange(&state, &origin, &headers, &params).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            let headers = response.headers_mut();
            headers.insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
            headers.insert(PRAGMA, "no-cache".parse().expect("static header"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn exchange(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, OAuthError> {
    let client = authenticate(state, origin, headers, params).await?;
    match param(params, "grant_type")? {
        Some("authorization_code") => from_code(state, origin, &client, params).await,
        Some("refresh_token") => from_refresh(state, origin, &client, params).await,
        None => Err(OAuthError::invalid_request("grant_type is required")),
        Some(_) => Err(OAuthError::unsupported_grant_type()),
    }
}

/// The credentials after an authentication scheme, whose name is case-insensitive
/// (RFC 9110 §11.1).
pub(super) fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = value.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim_start())
}

/// `Authorization: Basic` credentials, each part form-decoded (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let encoded = value
        .to_str()
        .ok()
        .and_then(|v| strip_scheme(v, "Basic"))
        .ok_or_else(OAuthError::invalid_client)?;
    let decoded = STANDARD
        .decode(encoded.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(OAuthError::invalid_client)?;
    let (id, secret) = decoded
        .split_once(':')
        .ok_or_else(OAuthError::invalid_client)?;
    let form_decode = |raw: &str| {
        url::form_urlencoded::parse(format!("x={raw}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Ok(Some((form_decode(id), form_decode(secret))))
}

/// The client, authenticated; a failure is audited (who tried which client id).
pub(super) async fn authenticate(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRecord, OAuthError> {
    match authenticated(state, headers, params).await {
        Err(error) if error.error == "invalid_client" => {
            // The id the caller gave, from the form or the Basic credentials, cut
            // short: a flood of made-up ids must not fill the log.
            let basic = basic_credentials(headers).ok().flatten().map(|(id, _)| id);
            let posted = param(params, "client_id").ok().flatten().map(str::to_owned);
            let named: Option<String> = basic.or(posted).map(|id| id.chars().take(64).collect());
            let event = AuditEvent::new("oidc.client_auth", "refused")
                .detail(json!({ "client_id": named }));
            state.store.audit(origin, event).await?;
            Err(error)
        }
        other => other,
    }
}

async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<ClientRecord, OAuthError> {
    let basic = basic_credentials(headers)?;
    let posted_secret = param(params, "client_secret")?;
    let posted_id = param(params, "client_id")?;
    let (client_id, secret) = match (basic, posted_secret) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::invalid_request(
                "use one client authentication method",
            ));
        }
        (Some((id, secret)), None) => {
            if posted_id.is_some_and(|posted| posted != id) {
                return Err(OAuthError::invalid_client());
            }
            (id, Some(secret))
        }
        (None, secret) => (
            posted_id.ok_or_else(OAuthError::invalid_client)?.to_owned(),
            secret.map(str::to_owned),
        ),
    };
    let client = state
        .store
        .client(&client_id)
        .await?
        .ok_or_else(OAuthError::invalid_client)?;
    let authenticated = match (&client.secret_hash, secret) {
        (Some(_), Some(secret)) => secret_matches(&client, &secret),
        (None, None) => true,
        _ => false,
    };
    if !authenticated {
        return Err(OAuthError::invalid_client());
    }
    Ok(client)
}

async fn from_code(
    state: &AppState,
    origin: &Origin,
    client: &ClientRecord,
    params: &Params,
) -> Result<Value, OAuthError> {
    let code =
        param(params, "code")?.ok_or_else(|| OAuthError::invalid_request("code is required"))?;
    let Ok(code) = code.parse::<Token>() else {
        return Err(OAuthError::invalid_grant("unknown code"));
    };
    let now = unix_now();
    let hash = code.hash();
    let record = match state.store.use_code(&hash, &client.client_id, now).await? {
        Redemption::Redeemed(record) => record,
        Redemption::Replayed => {
            // A replayed code: whatever it issued may be in the wrong hands.
            let revoked = state.store.revoke_grant(hash.as_str(), now).await?;
            tracing::warn!(client = %client.client_id, revoked, "authorization code replayed");
            let event = AuditEvent::new("oidc.code", "replayed")
                .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
            state.store.audit(origin, event).await?;
            return Err(OAuthError::invalid_grant("code already used"));
        }
        Redemption::Unknown => return Err(OAuthError::invalid_grant("unknown code")),
    };
    if record.expires_at <= now {
        return Err(OAuthError::invalid_grant("code expired"));
    }
    if param(params, "redirect_uri")? != Some(record.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant("redirect_uri does not match"));
    }
    match (&record.code_challenge, param(params, "code_verifier")?) {
        (Some(challenge), Some(verifier)) => {
            if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                return Err(OAuthError::invalid_grant("code_verifier does not match"));
            }
        }
        (Some(_), None) => return Err(OAuthError::invalid_grant("code_verifier is required")),
        // A verifier for a code issued without a challenge: a downgrade (RFC 9700 §4.8.2).
        (None, Some(_)) => {
            return Err(OAuthError::invalid_grant(
                "this code was issued without PKCE",
            ));
        }
        (None, None) => {}
    }
    // Signed out (or reset) since the code was issued: it gives nothing.
    if !state
        .store
        .session_is_live(&record.session_hash, now)
        .await?
        || state.store.credential_epoch(&record.account_dn).await? != record.epoch
    {
        return Err(OAuthError::invalid_grant(
            "the session of this code has ended",
        ));
    }
    let account = active_account(state, &record.account_dn).await?;
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
    issue(state, &grant, now).await
}

async fn from_refresh(
    state: &AppState,
    origin: &Origin,
    client: &ClientRecord,
    params: &Params,
) -> Result<Value, OAuthError> {
    let presented = param(params, "refresh_token")?
        .ok_or_else(|| OAuthError::invalid_request("refresh_token is required"))?;
    let Ok(presented) = presented.parse::<Token>() else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    let now = unix_now();
    let hash = presented.hash();
    let record = state
        .store
        .token(&hash)
        .await?
        .filter(|t| t.kind == TokenKind::Refresh && t.client_id == client.client_id)
        .ok_or_else(|| OAuthError::invalid_grant("unknown refresh token"))?;
    if !record.is_live(now) {
        return Err(OAuthError::invalid_grant(
            "refresh token expired or revoked",
        ));
    }
    // The directory first: an outage must fail the refresh before the token is
    // rotated, or the client's retry would look like reuse and end its grant.
    let account = active_account(state, &record.account_dn).await?;
    if !state.store.rotate_token(&hash, now).await? {
        // Used before: a stolen copy is in play. End the whole grant.
        let revoked = state.store.revoke_grant(&record.grant_id, now).await?;
        tracing::warn!(client = %client.client_id, revoked, "refresh token reused");
        let event = AuditEvent::new("oidc.refresh", "reused")
            .account(&record.account_dn)
            .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
        state.store.audit(origin, event).await?;
        return Err(OAuthError::invalid_grant("refresh token already used"));
    }
    // A refresh may narrow the scope, never widen it (RFC 6749 §6).
    let scope = match param(params, "scope")? {
        Some(asked) => {
            let granted: Vec<&str> = record.scope.split(' ').collect();
            let asked = super::claims::granted(asked, &state.settings.oidc.claims);
            if asked.split(' ').any(|s| !granted.contains(&s)) {
                return Err(OAuthError::invalid_scope());
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
    issue(state, &grant, now).await
}

/// The account behind a grant, if it may still sign in.
async fn active_account(state: &AppState, dn: &str) -> Result<Account, OAuthError> {
    match state.directory.read(dn).await? {
        Some(account) if account.is_active() => Ok(account),
        _ => Err(OAuthError::invalid_grant(
            "the account can no longer sign in",
        )),
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

async fn issue(state: &AppState, grant: &Grant<'_>, now: i64) -> Result<Value, OAuthError> {
    let access = Token::generate();
    // The refresh token keeps the grant's whole scope, even after a narrowing refresh.
    let refresh = grant
        .refresh_scope
        .split(' ')
        .any(|s| s == "offline_access")
        .then(Token::generate);
    let mut tx = state.store.begin().await?;
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
        return Err(OAuthError::invalid_grant(
            "the session of this code has ended",
        ));
    }
    tx.commit().await?;
    // A replay that raced this redemption revoked the grant before these tokens
    // existed: they die with it (the replay's revocation or this one, whichever
    // comes last, sees them).
    if state.store.grant_is_revoked(grant.id).await? {
        state.store.revoke_grant(grant.id, now).await?;
        return Err(OAuthError::invalid_grant("this grant was revoked"));
    }
    let alg = Alg::parse(&grant.client.id_token_alg).unwrap_or(Alg::Rs256);
    let keys = state.store.published_keys(now).await?;
    let id_token = keys::sign(
        &keys,
        &state.sealer,
        alg,
        &id_token_claims(state, grant, &access, alg, now),
    )?;
    let mut body = json!({
        "access_token": access.expose(),
        "token_type": "Bearer",
        "expires_in": ACCESS_SECS,
        "id_token": id_token,
        "scope": grant.scope,
    });
    if let (Some(refresh), Some(fields)) = (&refresh, body.as_object_mut()) {
        fields.insert("refresh_token".into(), json!(refresh.expose()));
    }
    Ok(body)
}

async fn store_token(
    tx: &mut StoreTx,
    grant: &Grant<'_>,
    (hash, kind, scope, expires_at): (&TokenHash, TokenKind, &str, i64),
    now: i64,
) -> Result<(), OAuthError> {
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

fn id_token_claims(
    state: &AppState,
    grant: &Grant<'_>,
    access: &Token,
    alg: Alg,
    now: i64,
) -> Value {
    let mut claims = json!({
        "iss": super::issuer(state),
        "sub": super::claims::subject(grant.account),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let mut headers = HeaderMap::new();
        let encoded = STANDARD.encode("my%20app:s%3Acret");
        headers.insert(AUTHORIZATION, format!("Basic {encoded}").parse().unwrap());
        assert_eq!(
            basic_credentials(&headers).unwrap(),
            Some(("my app".to_owned(), "s:cret".to_owned()))
        );
        headers.insert(AUTHORIZATION, format!("basic {encoded}").parse().unwrap());
        assert!(
            basic_credentials(&headers).unwrap().is_some(),
            "case-insensitive scheme"
        );
        headers.insert(AUTHORIZATION, "Bearer x".parse().unwrap());
        assert!(basic_credentials(&headers).is_err());
    }

    #[test]
    fn at_hash_is_the_left_half_of_the_hash() {
        let token: Token = "dNZX1hEZ9wBCzNL40Upu646bdzQA7ZgUL2d5xGW2C8k"
            .parse()
            .unwrap();
        assert_eq!(at_hash(&token, Alg::Rs256).len(), 22);
        assert_eq!(at_hash(&token, Alg::EdDsa).len(), 43);
    }
}
