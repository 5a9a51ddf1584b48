//! Device cookies (OWASP's defence against lockout): a browser that signed in to
//! an account gets a random cookie, and while it holds it, its attempts on that
//! account are counted for it alone (see [`super::limits`]). Strangers guessing the
//! password are throttled; the student's own browser never is. The store keeps
//! only the cookie's SHA-256 and a digest of the login.

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use cookie::{Cookie, SameSite};

use super::AppState;
use super::limits::digest;
use crate::domain::Token;
use crate::store::unix_now;

/// Whether a browser signed in to the account it now tries.
#[derive(Clone, PartialEq, Eq)]
pub enum Trust {
    Stranger,
    /// The SHA-256 of its device cookie.
    Device(String),
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Trust::Stranger => "Stranger",
            Trust::Device(_) => "Device",
        })
    }
}

fn cookie_name(state: &AppState) -> &'static str {
    if state.settings.secure_cookies() {
        "__Host-guichet_device"
    } else {
        "guichet_device"
    }
}

fn device_token(state: &AppState, headers: &HeaderMap) -> Option<Token> {
    super::cookie(headers, cookie_name(state))?.parse().ok()
}

/// How far the browser that sent `headers` is trusted for `login`. A store that
/// does not answer makes it a stranger: stricter limits, never looser.
pub async fn trust(state: &AppState, headers: &HeaderMap, login: &str) -> Trust {
    let Some(token) = device_token(state, headers) else {
        return Trust::Stranger;
    };
    let hash = token.hash().as_str().to_owned();
    match state
        .store
        .is_trusted_device(&hash, &digest(login), unix_now())
        .await
    {
        Ok(true) => Trust::Device(hash),
        Ok(false) => Trust::Stranger,
        Err(error) => {
            tracing::warn!(%error, "trusted devices could not be read");
            Trust::Stranger
        }
    }
}

/// Trusts the browser that just signed in to `login` with a new cookie, for that
/// account only; the cookie it held before is trusted no more. So a cookie copied
/// from a shared computer dies at the next student's sign-in there, and a cookie
/// planted before the student signs in is never trusted. Adds the `Set-Cookie` to
/// `response`; a store that does not answer only leaves the browser a stranger.
pub async fn remember(state: &AppState, headers: &HeaderMap, login: &str, response: &mut Response) {
    if let Some(cookie) = new_device_cookie(state, headers, login).await {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
}

async fn new_device_cookie(
    state: &AppState,
    headers: &HeaderMap,
    login: &str,
) -> Option<HeaderValue> {
    if let Some(old) = device_token(state, headers) {
        forget(state, old.hash().as_str()).await;
    }
    let token = Token::generate();
    let lifetime = state.settings.limits.trusted_device.as_secs();
    let expires_at = unix_now().saturating_add(i64::try_from(lifetime).unwrap_or(i64::MAX));
    if let Err(error) = state
        .store
        .trust_device(token.hash().as_str(), &digest(login), expires_at)
        .await
    {
        tracing::warn!(%error, "a trusted device could not be recorded");
        return None;
    }
    let cookie = Cookie::build((cookie_name(state), token.expose().to_owned()))
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(lifetime).unwrap_or(i64::MAX),
        ))
        // Only Guichet's own forms post a password: no other site needs it sent.
        .same_site(SameSite::Strict)
        .http_only(true)
        .secure(state.settings.secure_cookies());
    super::set_cookie(&cookie.build())
}

/// Trusts the device `hash` no more (a new cookie replaced it, or it guessed too
/// often: OWASP's lockout of a device cookie).
pub async fn forget(state: &AppState, hash: &str) {
    if let Err(error) = state.store.forget_device(hash).await {
        tracing::warn!(%error, "a trusted device could not be forgotten");
    }
}
