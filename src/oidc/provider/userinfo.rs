//! UserInfo (GET and POST; the access token in the `Authorization` header or, for
//! POST, the form body, RFC 6750 §2.1–2.2), and the discovery and JWKS documents.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{OAuthError, claims, keys};
use crate::domain::Token;
use crate::store::{TokenKind, unix_now};
use crate::web::AppState;

/// The bearer token from the header, else from a form body; both is an error.
fn bearer(headers: &HeaderMap, body: &str) -> Result<Token, OAuthError> {
    let from_header = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| super::token::strip_scheme(v, "Bearer"))
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
    respond(userinfo(&state, &headers, "").await)
}

pub async fn post(State(state): State<AppState>, headers: HeaderMap, body: String) -> Response {
    respond(userinfo(&state, &headers, &body).await)
}

fn respond(result: Result<Value, OAuthError>) -> Response {
    match result {
        Ok(claims) => {
            let mut response = Json(claims).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, "no-store".parse().expect("static header"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn userinfo(state: &AppState, headers: &HeaderMap, body: &str) -> Result<Value, OAuthError> {
    let token = bearer(headers, body)?;
    let now = unix_now();
    let record = state
        .store
        .token(&token.hash())
        .await?
        .filter(|t| t.kind == TokenKind::Access && t.is_live(now))
        .ok_or_else(OAuthError::invalid_token)?;
    let account = state
        .directory
        .read(&record.account_dn)
        .await?
        .filter(|a| a.is_active())
        .ok_or_else(OAuthError::invalid_token)?;
    Ok(claims::userinfo(
        &account,
        &record.scope,
        &state.settings.oidc.claims,
    ))
}

pub async fn jwks(State(state): State<AppState>) -> Result<Json<Value>, OAuthError> {
    let published = state.store.published_keys(unix_now()).await?;
    Ok(Json(keys::jwks(&published)))
}

/// OpenID Provider Metadata (OIDC Discovery 1.0 §3).
pub async fn discovery(State(state): State<AppState>) -> Json<Value> {
    let issuer = super::issuer(&state);
    let at = |path: &str| format!("{issuer}{path}");
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": at("/authorize"),
        "token_endpoint": at("/token"),
        "userinfo_endpoint": at("/userinfo"),
        "jwks_uri": at("/jwks.json"),
        "introspection_endpoint": at("/introspect"),
        "revocation_endpoint": at("/revoke"),
        "end_session_endpoint": at("/end_session"),
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "scopes_supported": claims::scopes(&state.settings.oidc.claims),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": keys::Alg::ALL.map(keys::Alg::name),
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": claims::supported(&state.settings.oidc.claims),
        "prompt_values_supported": ["none", "login", "consent"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "authorization_response_iss_parameter_supported": true,
        "ui_locales_supported": ["fr", "en"],
    }))
}
