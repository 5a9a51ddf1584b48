//! Sign-in, sign-out and the signed-in student: the session cookie, the login page,
//! and an extractor that sends anyone without a live session to the login page.

use axum::Form;
use axum::extract::{FromRequestParts, Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use cookie::{Cookie, SameSite};
use minijinja::context;
use serde::Deserialize;
use time::OffsetDateTime;

use super::client::Client;
use super::error::WebError;
use super::limits::{Step, Verdict};
use super::{AppState, Frame, devices, limits};
use crate::directory::Account;
use crate::domain::{Login, Password, Token, TokenHash};
use crate::flows::sign_in::{Refusal, SignIn, SignedIn};
use crate::store::{Origin, SessionRecord};

/// With https the `__Host-` prefix makes browsers refuse the cookie from any other
/// origin or path; plain http (development) cannot use it.
fn cookie_name(state: &AppState) -> &'static str {
    if state.settings.secure_cookies() {
        "__Host-guichet_session"
    } else {
        "guichet_session"
    }
}

/// `Lax`, not `Strict`: a student arriving from the ENT or Moodle (a top-level GET
/// from another site) must arrive signed in.
fn session_cookie(state: &AppState, value: &str, max_age: u64) -> Option<HeaderValue> {
    let max_age = i64::try_from(max_age).unwrap_or(i64::MAX);
    let cookie = Cookie::build((cookie_name(state), value))
        .path("/")
        .max_age(cookie::time::Duration::seconds(max_age))
        .same_site(SameSite::Lax)
        .http_only(true)
        .secure(state.settings.secure_cookies());
    super::set_cookie(&cookie.build())
}

pub fn flow(state: &AppState, origin: Origin) -> SignIn<'_> {
    SignIn {
        app: &state.app,
        origin,
    }
}

/// A local path to go back to after signing in; anything else (another site, a
/// protocol-relative `//host`) falls back to the account page.
fn local_target(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(char::is_control) =>
        {
            path.to_owned()
        }
        _ => "/account".to_owned(),
    }
}

fn see_other(target: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(target) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// The live session behind the request's cookie, with its stored hash (what OIDC
/// codes and tokens are tied to).
pub async fn current(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Option<(SessionRecord, TokenHash)>, WebError> {
    let Some(secret) =
        super::cookie(headers, cookie_name(state)).and_then(|value| value.parse::<Token>().ok())
    else {
        return Ok(None);
    };
    let record = flow(state, Origin::default())
        .session(&secret, OffsetDateTime::now_utc())
        .await?;
    Ok(record.map(|record| (record, secret.hash())))
}

/// The signed-in student, read from the session cookie and the directory.
#[derive(Debug)]
pub struct Student {
    pub account: Account,
    /// The session's stored hash (a change of password keeps this one open).
    pub session: TokenHash,
    /// When the password was typed to open it (Unix seconds).
    pub signed_in_at: i64,
}

impl FromRequestParts<AppState> for Student {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let to_login = || {
            let here = parts
                .uri
                .path_and_query()
                .map_or("/account", |p| p.as_str());
            let next: String = url::form_urlencoded::byte_serialize(here.as_bytes()).collect();
            see_other(&format!("/login?next={next}"))
        };
        let session = current(state, &parts.headers)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some((session, hash)) = session else {
            return Err(to_login());
        };
        match state.directory.read(&session.account_dn).await {
            Ok(Some(account)) => Ok(Student {
                account,
                session: hash,
                signed_in_at: session.created_at,
            }),
            Ok(None) => Err(to_login()),
            Err(e) => Err(WebError::from(e).into_response()),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
    /// From an application (OIDC `login_hint`): the login to fill in.
    login_hint: Option<String>,
}

fn login_page(
    state: &AppState,
    frame: &Frame,
    login: &str,
    next: &str,
    refusal: Option<&str>,
) -> Result<Html<String>, WebError> {
    state.render("login.html", frame, context! { login, next, refusal })
}

pub async fn login_form(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<NextQuery>,
) -> Result<Response, WebError> {
    let next = local_target(query.next.as_deref());
    let hint = query
        .login_hint
        .as_deref()
        .and_then(|hint| hint.parse::<Login>().ok());
    let login = hint.as_ref().map_or("", |l| l.as_str());
    Ok(super::leaving_page(login_page(
        &state, &frame, login, &next, None,
    )?))
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

impl std::fmt::Debug for LoginForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

pub async fn login(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: axum::http::HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, WebError> {
    let trust = devices::trust(&state, &headers, &form.login).await;
    let attempt = limits::begin(&state, Step::SIGN_IN, client.0, &form.login, &trust).await?;
    let next = local_target(form.next.as_deref());
    let typed = form.login.trim();
    let outcome = match typed.parse::<Login>() {
        Ok(login) => {
            let password = Password::new(form.password);
            let previous = browser_session(&state, &headers);
            flow(&state, frame.origin(client))
                .sign_in(
                    &login,
                    &password,
                    previous.as_ref(),
                    OffsetDateTime::now_utc(),
                )
                .await
        }
        Err(_) => Ok(SignedIn::Refused(Refusal::BadCredentials)),
    };
    let verdict = Verdict::of(&outcome, |o| matches!(o, SignedIn::Refused(_)));
    attempt.settle(&state, verdict).await;
    let refusal = match outcome? {
        SignedIn::Session(secret) => {
            let mut response = see_other(&next);
            let max_age = state.settings.sessions.absolute.as_secs();
            if let Some(cookie) = session_cookie(&state, secret.expose(), max_age) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
            devices::remember(&state, &headers, &form.login, &mut response).await;
            return Ok(response);
        }
        SignedIn::Refused(Refusal::BadCredentials) => "login.refused.credentials",
        // Tells that the login exists: probing it costs like a wrong password.
        SignedIn::Refused(Refusal::NotActivated) => "login.refused.not_activated",
        SignedIn::Refused(Refusal::Locked) => "login.refused.locked",
    };
    let html = login_page(&state, &frame, typed, &next, Some(refusal))?;
    let mut response = super::leaving_page(html);
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    Ok(response)
}

/// The stored hash of the session cookie the browser sends, live or not.
fn browser_session(state: &AppState, headers: &axum::http::HeaderMap) -> Option<TokenHash> {
    browser_secret(state, headers).map(|secret| secret.hash())
}

/// The secret the browser's session cookie holds, if any (the OIDC provider looks
/// its session up itself).
pub(crate) fn browser_secret(state: &AppState, headers: &axum::http::HeaderMap) -> Option<Token> {
    super::cookie(headers, cookie_name(state)).and_then(|value| value.parse::<Token>().ok())
}

/// Ends the browser's session, with its applications (back-channel logout, tokens
/// revoked), at sign-out.
pub async fn end_current_session(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    frame: &Frame,
    client: Option<Client>,
) -> Result<(), WebError> {
    let Some(id) = browser_session(state, headers) else {
        return Ok(());
    };
    let origin = client.map_or_else(Origin::default, |client| frame.origin(client));
    flow(state, origin)
        .sign_out(&id, OffsetDateTime::now_utc())
        .await?;
    Ok(())
}

/// The cookie that removes the session cookie from the browser.
pub fn cleared_cookie(state: &AppState) -> Option<HeaderValue> {
    session_cookie(state, "", 0)
}

#[derive(Debug, Default, Deserialize)]
pub struct LogoutForm {
    /// Set when the logout started at an application (end-session confirmation).
    client_id: Option<String>,
    post_logout_redirect_uri: Option<String>,
    state: Option<String>,
}

/// Signs out of Guichet and of every application the session signed into.
pub async fn logout(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: axum::http::HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, WebError> {
    let application = match form.client_id.as_deref() {
        Some(id) => state.store.client(id).await?,
        None => None,
    };
    let target = crate::oidc::provider::after_logout(
        application.as_ref(),
        form.post_logout_redirect_uri.as_deref(),
        form.state.as_deref(),
    )?;
    end_current_session(&state, &headers, &frame, Some(client)).await?;
    if target.is_none() && application.is_none() {
        let mut response = see_other("/");
        if let Some(cookie) = cleared_cookie(&state) {
            response.headers_mut().append(SET_COOKIE, cookie);
        }
        return Ok(response);
    }
    super::oidc::finished(&state, &frame, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_sign_in() {
        assert_eq!(local_target(Some("/account/email")), "/account/email");
        for hostile in [
            "https://evil.example",
            "//evil.example/x",
            "/\\evil.example",
            "/a\nSet-Cookie: x",
            "",
        ] {
            assert_eq!(local_target(Some(hostile)), "/account", "{hostile:?}");
        }
        assert_eq!(local_target(None), "/account");
    }
}
