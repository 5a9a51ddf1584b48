//! The authorization endpoint (code flow, GET and POST). Until the client and its
//! redirect URI are known to be registered, errors are shown as a page; after that
//! they go back to the client (RFC 6749 §4.1.2.1), with `iss` (RFC 9207).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Form, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use url::Url;

use super::claims;
use super::keys::{self, Alg};
use crate::domain::Token;
use crate::store::{AuditEvent, ClientRecord, CodeRecord, Origin, StoreError, unix_now};
use crate::web::session;
use crate::web::{AppState, Frame, WebError};
use minijinja::context;

/// A code is exchanged at once by the client's back end; a minute is plenty.
const CODE_SECS: i64 = 60;

type Params = Vec<(String, String)>;

pub async fn get(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    authorize(state, frame, headers, params, None).await
}

pub async fn post(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    authorize(state, frame, headers, params, None).await
}

/// The student's answer on the consent page (a CSRF-protected form carrying the
/// original request).
pub async fn consent(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    frame: Frame,
    headers: HeaderMap,
    Form(mut params): Form<Params>,
) -> Response {
    // Exactly one answer, and it is the button the student pressed: a client cannot
    // slip its own `decision` into the request the page carries.
    let Ok(decision) = single(&params, "decision") else {
        return page_error("the answer is repeated");
    };
    let answer = Consent {
        allowed: decision == Some("allow"),
        origin: frame.origin(peer),
    };
    params.retain(|(k, _)| k != "decision" && k != "csrf");
    authorize(state, frame, headers, params, Some(answer)).await
}

/// The student's answer on the consent page, and who gave it (for the audit log).
#[derive(Debug, Clone)]
struct Consent {
    allowed: bool,
    origin: Origin,
}

/// One value per parameter: a repeated parameter is an error (RFC 6749 §3.1).
fn single<'a>(params: &'a Params, name: &str) -> Result<Option<&'a str>, ()> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    match values.next() {
        Some(_) => Err(()),
        None => Ok(first.filter(|v| !v.is_empty())),
    }
}

/// Where errors and codes go once the client and its redirect URI check out.
struct Reply {
    redirect_uri: Url,
    /// The URI exactly as registered (and sent): what the token request must repeat.
    registered_uri: String,
    state: Option<String>,
    issuer: String,
}

impl Reply {
    fn send(&self, pairs: &[(&str, &str)]) -> Response {
        let mut url = self.redirect_uri.clone();
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        found(url.as_str())
    }

    fn error(&self, error: &str, description: &str) -> Response {
        self.send(&[("error", error), ("error_description", description)])
    }
}

fn found(location: &str) -> Response {
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

fn page_error(message: &str) -> Response {
    WebError::Authorize(message.to_owned()).into_response()
}

async fn authorize(
    state: AppState,
    frame: Frame,
    headers: HeaderMap,
    params: Params,
    consent: Option<Consent>,
) -> Response {
    match checked_client(&state, &params).await {
        Ok((client, reply)) => {
            match grant(&state, &frame, &headers, &params, &client, &reply, consent).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            }
        }
        Err(response) => response,
    }
}

/// The client and the exact redirect URI, or a page (never a redirect to an
/// unregistered address).
async fn checked_client(
    state: &AppState,
    params: &Params,
) -> Result<(ClientRecord, Reply), Response> {
    let (Ok(client_id), Ok(redirect_uri), Ok(client_state)) = (
        single(params, "client_id"),
        single(params, "redirect_uri"),
        single(params, "state"),
    ) else {
        return Err(page_error("repeated client_id, redirect_uri or state"));
    };
    let Some(client_id) = client_id else {
        return Err(page_error("no client_id"));
    };
    let client = match state.store.client(client_id).await {
        Ok(Some(client)) => client,
        Ok(None) => return Err(page_error("unknown client")),
        Err(e) => return Err(WebError::from(e).into_response()),
    };
    let Some(redirect_uri) =
        redirect_uri.filter(|uri| client.redirect_uris.iter().any(|r| r == uri))
    else {
        return Err(page_error("redirect_uri not registered for this client"));
    };
    let Ok(parsed) = Url::parse(redirect_uri) else {
        return Err(page_error("redirect_uri unreadable"));
    };
    let reply = Reply {
        redirect_uri: parsed,
        registered_uri: redirect_uri.to_owned(),
        state: client_state.map(str::to_owned),
        issuer: super::issuer(state),
    };
    Ok((client, reply))
}

/// The rest of the request, checked; then the student's session, then the code.
#[allow(clippy::too_many_arguments)]
async fn grant(
    state: &AppState,
    frame: &Frame,
    headers: &HeaderMap,
    params: &Params,
    client: &ClientRecord,
    reply: &Reply,
    consent: Option<Consent>,
) -> Result<Response, WebError> {
    let get = |name: &str| single(params, name);
    let names = [
        "response_type",
        "scope",
        "nonce",
        "code_challenge",
        "code_challenge_method",
        "prompt",
        "max_age",
        "response_mode",
        LOGIN_ASKED,
    ];
    if names.iter().any(|n| get(n).is_err()) {
        return Ok(reply.error("invalid_request", "a parameter is repeated"));
    }
    let value = |name: &str| get(name).ok().flatten();
    if value("request").is_some() {
        return Ok(reply.error("request_not_supported", "request objects are not supported"));
    }
    if value("request_uri").is_some() {
        return Ok(reply.error("request_uri_not_supported", "request_uri is not supported"));
    }
    match value("response_type") {
        Some("code") => {}
        None => return Ok(reply.error("invalid_request", "response_type is required")),
        Some(_) => return Ok(reply.error("unsupported_response_type", "only the code flow")),
    }
    if value("response_mode").is_some_and(|m| m != "query") {
        return Ok(reply.error("invalid_request", "only response_mode=query"));
    }
    let scope = claims::granted(
        value("scope").unwrap_or_default(),
        &state.settings.oidc.claims,
    );
    if !scope.split(' ').any(|s| s == "openid") {
        return Ok(reply.error("invalid_scope", "the openid scope is required"));
    }
    let challenge = value("code_challenge");
    match (challenge, value("code_challenge_method")) {
        (Some(c), Some("S256")) if is_s256_challenge(c) => {}
        (Some(_), Some("S256")) => {
            return Ok(reply.error("invalid_request", "code_challenge is not a S256 value"));
        }
        (Some(_), _) => {
            return Ok(reply.error("invalid_request", "code_challenge_method must be S256"));
        }
        (None, Some(_)) => return Ok(reply.error("invalid_request", "code_challenge is missing")),
        (None, None) if client.secret_hash.is_none() => {
            return Ok(reply.error(
                "invalid_request",
                "PKCE (S256) is required for public clients",
            ));
        }
        (None, None) => {}
    }
    let prompts: Vec<&str> = value("prompt")
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    if prompts.contains(&"none") && prompts.len() > 1 {
        return Ok(reply.error("invalid_request", "prompt=none cannot be combined"));
    }
    let max_age = match value("max_age").map(str::parse::<i64>) {
        None => None,
        Some(Ok(age)) if age >= 0 => Some(age),
        Some(_) => return Ok(reply.error("invalid_request", "max_age must be a number of seconds")),
    };
    let now = unix_now();
    let session = session::current(state, headers).await?;
    let login_asked = prompts.contains(&"login");
    // prompt=login and max_age are met only by a sign-in after Guichet asked for it
    // (a signed statement carried through the login page): opening the login page's
    // return address without signing in meets neither.
    let needs_statement = login_asked || max_age.is_some();
    let asked_at = match value(LOGIN_ASKED) {
        Some(raw) if needs_statement => {
            match login_asked_at(state, raw, &client.client_id, now).await {
                Ok(at) => at,
                Err(_) => {
                    return Ok(reply.error("temporarily_unavailable", "try again in a moment"));
                }
            }
        }
        _ => None,
    };
    let since_asked = |created: i64| asked_at.is_some_and(|t| created >= t);
    let fresh_enough =
        |created: i64| max_age.is_none_or(|age| now - created <= age) || since_asked(created);
    let signed_in_since = |created: i64| !login_asked || since_asked(created);
    let live = session.filter(|(record, _)| {
        fresh_enough(record.created_at) && signed_in_since(record.created_at)
    });
    let Some((record, session_hash)) = live else {
        if prompts.contains(&"none") {
            return Ok(reply.error("login_required", "the student must sign in"));
        }
        let asked = match needs_statement {
            true => Some(login_request(state, &client.client_id, now).await?),
            false => None,
        };
        return Ok(to_login(params, asked.as_deref()));
    };
    // The client names whom it expects: another student signed in here must not be
    // handed to it silently.
    if let Some(hint) = value("id_token_hint") {
        let Ok(hinted) = super::logout::hint_claims(state, hint).await else {
            return Ok(reply.error("temporarily_unavailable", "try again in a moment"));
        };
        let Some(claims) = hinted else {
            return Ok(reply.error(
                "invalid_request",
                "id_token_hint is not an ID token of ours",
            ));
        };
        let current = state.directory.read(&record.account_dn).await?;
        let same =
            current.is_some_and(|account| claims["sub"] == claims::subject(&account).as_str());
        if !same {
            if prompts.contains(&"none") {
                return Ok(reply.error("login_required", "another account is signed in"));
            }
            return Ok(to_login(params, None));
        }
    }
    // A third-party application needs the student's agreement to what it reads.
    if !client.first_party {
        match consent {
            Some(Consent { allowed: false, .. }) => {
                return Ok(reply.error("access_denied", "the student declined"));
            }
            Some(Consent {
                allowed: true,
                origin,
            }) => {
                state
                    .store
                    .add_consent(&record.account_dn, &client.client_id, &scope, now)
                    .await?;
                let event = AuditEvent::new("oidc.consent", "ok")
                    .account(&record.account_dn)
                    .detail(serde_json::json!({ "client_id": client.client_id, "scope": scope }));
                state.store.audit(&origin, event).await?;
            }
            None => {
                let agreed = state
                    .store
                    .has_consent(&record.account_dn, &client.client_id, &scope)
                    .await?;
                if !agreed || prompts.contains(&"consent") {
                    if prompts.contains(&"none") {
                        return Ok(reply.error("consent_required", "the student must agree first"));
                    }
                    let page = context! {
                        client_name => client.name.as_str(),
                        scopes => scope.split(' ').filter(|s| *s != "openid").collect::<Vec<_>>(),
                        params => params.iter().filter(|(k, _)| !matches!(k.as_str(), "prompt" | "decision" | "csrf")).map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
                    };
                    let html = state.render("consent.html", frame, page)?;
                    return Ok(crate::web::leaving_page(html));
                }
            }
        }
    }
    let code = Token::generate();
    let stored = CodeRecord {
        client_id: client.client_id.clone(),
        account_dn: record.account_dn.clone(),
        session_hash: session_hash.as_str().to_owned(),
        redirect_uri: reply.registered_uri.clone(),
        scope,
        nonce: value("nonce").map(str::to_owned),
        code_challenge: challenge.map(str::to_owned),
        auth_time: record.created_at,
        expires_at: now + CODE_SECS,
        epoch: record.epoch,
    };
    state.store.add_code(&code.hash(), &stored, now).await?;
    Ok(reply.send(&[("code", code.expose())]))
}

/// 43 to 128 characters of base64url: the shape of a S256 challenge (RFC 7636 §4.2).
fn is_s256_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// To the login page, coming back to this request afterwards. `prompt=login` is
/// dropped from the way back, or the student would be asked again and again.
/// The parameter that carries Guichet's signed "a sign-in was asked at T" through
/// the login page, so that prompt=login cannot be met by opening the page's
/// return address without signing in.
const LOGIN_ASKED: &str = "guichet_login_asked";

/// How long the student has to sign in after prompt=login.
const LOGIN_ASKED_LIFETIME: i64 = 600;

const LOGIN_ASKED_TYP: &str = "login-request+jwt";

/// A signed statement that a sign-in was asked now.
async fn login_request(state: &AppState, client_id: &str, now: i64) -> Result<String, WebError> {
    let keys = state.store.published_keys(now).await?;
    let claims = serde_json::json!({
        "iss": super::issuer(state),
        "aud": client_id,
        "iat": now,
        "exp": now + LOGIN_ASKED_LIFETIME,
    });
    keys::sign_typed(&keys, &state.sealer, Alg::Rs256, LOGIN_ASKED_TYP, &claims)
        .map_err(|e| WebError::Internal(format!("signing a login request: {e}")))
}

/// When Guichet asked for the sign-in, if `raw` is its own unexpired statement.
/// When Guichet asked for the sign-in, from its signed statement; `None` if the
/// statement is not one of ours for this client, or has expired.
async fn login_asked_at(
    state: &AppState,
    raw: &str,
    client_id: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    let keys = state.store.published_keys(now).await?;
    let claims = keys::verify_own(&keys, raw, LOGIN_ASKED_TYP, |validation| {
        // Only for the client that asked, and not a second past its lifetime.
        validation.set_audience(&[client_id]);
        validation.set_issuer(&[super::issuer(state)]);
        validation.leeway = 0;
    });
    Ok(claims.and_then(|claims| claims["iat"].as_i64()))
}

/// To the login page, back here afterwards. `asked` is the signed login request
/// when prompt=login or max_age sent the student there (the sign-in after it meets
/// both); without it, `login` leaves `prompt`.
fn to_login(params: &Params, asked: Option<&str>) -> Response {
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in params {
        if key == LOGIN_ASKED {
            continue;
        }
        if key == "prompt" && asked.is_none() {
            let kept: Vec<&str> = value.split_whitespace().filter(|p| *p != "login").collect();
            if !kept.is_empty() {
                back.append_pair(key, &kept.join(" "));
            }
        } else {
            back.append_pair(key, value);
        }
    }
    if let Some(asked) = asked {
        back.append_pair(LOGIN_ASKED, asked);
    }
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("next", &format!("/authorize?{}", back.finish()));
    let find = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(hint) = find("login_hint") {
        login.append_pair("login_hint", hint);
    }
    // The first of the student's preferred languages that the pages speak.
    let preferred = find("ui_locales")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|tag| tag.split('-').next())
        .find(|lang| matches!(*lang, "fr" | "en"));
    if let Some(lang) = preferred {
        login.append_pair("lang", lang);
    }
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(&format!("/login?{}", login.finish())) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let params = vec![
            ("a".to_owned(), "1".to_owned()),
            ("a".to_owned(), "2".to_owned()),
        ];
        assert!(single(&params, "a").is_err());
        assert_eq!(single(&params, "b"), Ok(None));
    }

    #[test]
    fn challenges_have_the_s256_shape() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge("short"));
        assert!(!is_s256_challenge(&"a".repeat(129)));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
