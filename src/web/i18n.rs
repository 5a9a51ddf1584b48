//! The choice of language for each request:
//! `?lang=` (remembered in a cookie), then the cookie, then the profile's default.

use axum::extract::{Request, State};
use axum::http::header::SET_COOKIE;
use axum::middleware::Next;
use axum::response::Response;
use cookie::{Cookie, SameSite};

use super::AppState;
use crate::domain::Lang;

const COOKIE_NAME: &str = "guichet_lang";
/// The choice is remembered for a year.
const COOKIE_MAX_AGE: cookie::time::Duration = cookie::time::Duration::days(365);

/// The language of the current request, set by `choose_language`.
#[derive(Debug, Clone, Copy)]
pub struct Locale(pub Lang);

pub async fn choose_language(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_query = request
        .uri()
        .query()
        .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "lang"))
        .and_then(|(_, v)| Lang::from_code(&v));
    let from_cookie = super::cookie(request.headers(), COOKIE_NAME).and_then(Lang::from_code);
    let lang = from_query
        .or(from_cookie)
        .unwrap_or(state.settings.profile.languages.default);
    request.extensions_mut().insert(Locale(lang));
    let mut response = next.run(request).await;
    if from_query.is_some() && from_query != from_cookie {
        let cookie = Cookie::build((COOKIE_NAME, lang.code()))
            .path("/")
            .max_age(COOKIE_MAX_AGE)
            .same_site(SameSite::Lax)
            .http_only(true)
            .secure(state.settings.secure_cookies());
        if let Some(value) = super::set_cookie(&cookie.build()) {
            response.headers_mut().append(SET_COOKIE, value);
        }
    }
    response
}
