//! UserInfo (GET and POST; the access token in the `Authorization` header or, for
//! POST, the form body, RFC 6750 §2.1–2.2), and the discovery and JWKS documents.

use axum::Json;
use axum::extract::State;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, ETAG};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use headers::{ETag, HeaderMapExt, IfNoneMatch};

use super::no_store;
use crate::domain::Token;
use crate::oidc::OAuthError;
use crate::oidc::keyring::{JWKS_MAX_AGE_SECS, Published};
use crate::oidc::protocol::strip_scheme;
use crate::oidc::provider::Provider;
use crate::store::Origin;
use crate::web::AppState;

/// The bearer token from the header, else from a form body; both is an error.
fn bearer(headers: &HeaderMap, body: &str) -> Result<Token, OAuthError> {
    let from_header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_scheme(v, "Bearer"))
        .map(str::trim);
    let from_body = url::form_urlencoded::parse(body.as_bytes())
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned());
    let raw = match (from_header, from_body.as_deref()) {
        (Some(_), Some(_)) => return Err(OAuthError::invalid_request("send the token once")),
        (Some(token), None) | (None, Some(token)) => token,
        (None, None) => return Err(OAuthError::invalid_token()),
    };
    raw.parse().map_err(|_| OAuthError::invalid_token())
}

pub async fn get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    userinfo(&state, &headers, "").await
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    userinfo(&state, &headers, &body).await
}

async fn userinfo(state: &AppState, headers: &HeaderMap, body: &str) -> Response {
    let token = match bearer(headers, body) {
        Ok(token) => token,
        Err(error) => return error.into_response(),
    };
    match provider(state).userinfo(&token).await {
        Ok(claims) => no_store(Json(claims)),
        Err(error) => error.into_response(),
    }
}

fn provider(state: &AppState) -> Provider<'_> {
    Provider::new(&state.app, Origin::default())
}

/// The JWKS, as the keys were last read. Clients may keep it for
/// `JWKS_MAX_AGE_SECS`: a rotated key is published longer than that before it
/// signs.
pub async fn jwks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let jwks = provider(&state).jwks();
    cached(&jwks, JWKS_MAX_AGE_SECS, &headers)
}

/// The metadata, serialised once at start (it changes only with the settings).
pub async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Response {
    cached(state.discovery(), DISCOVERY_MAX_AGE_SECS, &headers)
}

/// How long a client may keep the metadata: a restart with new settings reaches
/// every client within the hour.
const DISCOVERY_MAX_AGE_SECS: u64 = 3600;

/// A public JSON document with its entity tag; a client that holds this version
/// (`If-None-Match`, RFC 9110 §13.1.2) is told so with a 304 and no body.
fn cached(document: &Published, max_age: u64, headers: &HeaderMap) -> Response {
    let cache = HeaderValue::from_str(&format!("public, max-age={max_age}"));
    let etag = HeaderValue::from_str(&document.etag);
    let held = match (
        headers.typed_get::<IfNoneMatch>(),
        document.etag.parse::<ETag>(),
    ) {
        (Some(condition), Ok(tag)) => !condition.precondition_passes(&tag),
        _ => false,
    };
    let mut response = if held {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let json = [(CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        (json, document.body.clone()).into_response()
    };
    let answer = response.headers_mut();
    if let (Ok(cache), Ok(etag)) = (cache, etag) {
        answer.insert(CACHE_CONTROL, cache);
        answer.insert(ETAG, etag);
    }
    response
}
