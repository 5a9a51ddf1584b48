//! UserInfo (GET and POST; the access token in the `Authorization` header or, for
//! POST, the form body, RFC 6750 §2.1–2.2), and the discovery and JWKS documents.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::no_store;
use crate::domain::Token;
use crate::oidc::OAuthError;
use crate::oidc::protocol::strip_scheme;
use crate::oidc::provider::{Provider, ProviderError};
use crate::oidc::responses::Discovery;
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

pub async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, ProviderError> {
    provider(&state).jwks().await.map(Json)
}

pub async fn discovery(State(state): State<AppState>) -> Json<Discovery> {
    Json(provider(&state).discovery())
}
