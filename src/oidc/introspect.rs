//! Token introspection (RFC 7662: how Dovecot checks the bearer tokens Roundcube
//! sends) and revocation (RFC 7009). Both require client authentication.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::OAuthError;
use super::token::{OAuthForm, Params, authenticate, param};
use crate::domain::{StateKind, Token};
use crate::store::unix_now;
use crate::web::AppState;

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    match introspection(&state, &headers, &params).await {
        Ok(body) => {
            let mut response = Json(body).into_response();
            response.headers_mut().insert(
                axum::http::header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn introspection(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, OAuthError> {
    // Only a client with a secret may ask.
    let asker = authenticate(state, headers, params).await?;
    if asker.secret_hash.is_none() {
        return Err(OAuthError::invalid_client());
    }
    let raw =
        param(params, "token")?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let inactive = json!({ "active": false });
    let Ok(token) = raw.parse::<Token>() else {
        return Ok(inactive);
    };
    let now = unix_now();
    let Some(record) = state.store.token(&token.hash()).await? else {
        return Ok(inactive);
    };
    // A client learns about its own tokens; only a resource server registered
    // with --introspection learns about others' (RFC 7662 §2.2: "active": false
    // when the caller may not know).
    if record.client_id != asker.client_id && !asker.introspection {
        return Ok(inactive);
    }
    let live = record.revoked_at.is_none()
        && record.expires_at > now
        && (record.kind == "access" || record.rotated_at.is_none());
    if !live {
        return Ok(inactive);
    }
    let account = state.directory.read(&record.account_dn).await?;
    let Some(account) = account.filter(|a| {
        a.state
            .as_ref()
            .is_some_and(|s| s.kind == StateKind::Active)
    }) else {
        return Ok(inactive);
    };
    let mut body = json!({
        "active": true,
        "scope": record.scope,
        "client_id": record.client_id,
        "token_type": if record.kind == "access" { "Bearer" } else { "refresh_token" },
        "exp": record.expires_at,
        "sub": super::claims::subject(&account),
        "aud": record.client_id,
        "iss": super::issuer(state),
    });
    // The login is the profile scope's preferred_username: a token without that
    // scope does not disclose it.
    if record.scope.split(' ').any(|s| s == "profile")
        && let Some(fields) = body.as_object_mut()
    {
        fields.insert("username".into(), json!(account.login.as_str()));
    }
    Ok(body)
}

pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    match revocation(&state, &headers, &params).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Revoking a refresh token ends its whole grant; an access token, itself. An unknown
/// token is answered like a revoked one (RFC 7009 §2.2).
async fn revocation(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), OAuthError> {
    let client = authenticate(state, headers, params).await?;
    let raw =
        param(params, "token")?.ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    let Ok(token) = raw.parse::<Token>() else {
        return Ok(());
    };
    let now = unix_now();
    let Some(record) = state.store.token(&token.hash()).await? else {
        return Ok(());
    };
    if record.client_id != client.client_id {
        return Err(OAuthError::unauthorized_client(
            "the token was issued to another client",
        ));
    }
    if record.kind == "refresh" {
        state.store.revoke_grant(&record.grant_id, now).await?;
    } else {
        state.store.revoke_token(&token.hash(), now).await?;
    }
    Ok(())
}
