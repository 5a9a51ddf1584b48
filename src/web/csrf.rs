//! CSRF protection for every form: a random value in a `SameSite=Strict`, `HttpOnly`
//! cookie, repeated in a hidden `csrf` field; a POST whose field does not match the
//! cookie is refused before any handler runs.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::Method;
use axum::http::header::SET_COOKIE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use rand::RngCore;
use rand::rngs::OsRng;
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::WebError;

/// Under https the `__Host-` prefix stops a sibling subdomain from planting its own
/// value (a double-submit cookie is only as good as its integrity).
fn cookie_name(state: &AppState) -> &'static str {
    if state.settings.secure_cookies() {
        "__Host-guichet_csrf"
    } else {
        "guichet_csrf"
    }
}
const FIELD: &str = "csrf";
/// Forms are small; the body limit of the router applies before this one.
const FORM_LIMIT: usize = 64 * 1024;

/// The value templates put in the hidden `csrf` field.
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// The cookie's value, if it has the shape `fresh` gives.
fn cookie_value(state: &AppState, request: &Request) -> Option<String> {
    super::cookie(request.headers(), cookie_name(state))
        .filter(|value| value.len() == 43)
        .map(str::to_owned)
}

fn fresh() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Constant-time comparison: the time taken does not tell how much matched (only
/// whether the lengths differ, and every value has the same length).
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

pub async fn protect(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let existing = cookie_value(&state, &request);
    let (parts, body) = request.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = to_bytes(body, FORM_LIMIT).await else {
            return WebError::BadRequest("form too large".to_owned()).into_response();
        };
        let submitted = url::form_urlencoded::parse(&bytes)
            .find(|(k, _)| k == FIELD)
            .map(|(_, v)| v.into_owned());
        match (&existing, submitted) {
            (Some(cookie), Some(field)) if same(cookie, &field) => {}
            _ => return WebError::Csrf.into_response(),
        }
        Body::from(bytes)
    } else {
        body
    };
    with_token(&state, existing, Request::from_parts(parts, body), next).await
}

/// Gives a page the CSRF value for the forms it shows, without checking the request
/// itself: for endpoints other sites post to (OIDC end-session), whose page leads
/// to a protected form.
pub async fn provide(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let existing = cookie_value(&state, &request);
    with_token(&state, existing, request, next).await
}

async fn with_token(
    state: &AppState,
    existing: Option<String>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let token = existing.clone().unwrap_or_else(fresh);
    parts.extensions.insert(CsrfToken(token.clone()));
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if existing.is_none() {
        // No Max-Age: the value lives as long as the browser session.
        let cookie = Cookie::build((cookie_name(state), token))
            .path("/")
            .same_site(SameSite::Strict)
            .http_only(true)
            .secure(state.settings.secure_cookies());
        if let Some(value) = super::set_cookie(&cookie.build()) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_compared_whole() {
        let (a, b) = (fresh(), fresh());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &b));
        assert!(!same(&a, &a[..42]));
    }
}
