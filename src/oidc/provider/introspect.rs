//! Token introspection (RFC 7662: how Dovecot checks the bearer tokens Roundcube
//! sends) and revocation (RFC 7009). Both require client authentication.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::OAuthError;
use super::token::{OAuthForm, Params, authenticate, param};
use crate::domain::Token;
use crate::store::{AuditEvent, Origin, TokenKind, unix_now};
use crate::web::{AppState, Frame};

pub async fn introspect(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let origin = frame.origin(peer);
    match introspection(&state, &origin, &headers, &params).await {
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
    origin: &Origin,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Value, OAuthError> {
    // Only a client with a secret may ask.
    let asker = authenticate(state, origin, headers, params).await?;
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
        let event = AuditEvent::new("oidc.introspect", "refused")
            .account(&record.account_dn)
            .detail(json!({ "asker": asker.client_id, "client_id": record.client_id }));
        state.store.audit(origin, event).await?;
        return Ok(inactive);
    }
    let live =
        record.is_live(now) && (record.kind == TokenKind::Access || record.rotated_at.is_none());
    if !live {
        return Ok(inactive);
    }
    let account = state.directory.read(&record.account_dn).await?;
    let Some(account) = account.filter(|a| a.is_active()) else {
        return Ok(inactive);
    };
    let mut body = json!({
        "active": true,
        "scope": record.scope,
        "client_id": record.client_id,
        "token_type": if record.kind == TokenKind::Access { "Bearer" } else { "refresh_token" },
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    frame: Frame,
    headers: HeaderMap,
    OAuthForm(params): OAuthForm,
) -> Response {
    let origin = frame.origin(peer);
    match revocation(&state, &origin, &headers, &params).await {
        Ok(()) => Json(json!({})).into_response(),
        Err(error) => error.into_response(),
    }
}

/// Revoking a refresh token ends its whole grant; an access token, itself. An unknown
/// token is answered like a revoked one (RFC 7009 §2.2).
async fn revocation(
    state: &AppState,
    origin: &Origin,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), OAuthError> {
    let client = authenticate(state, origin, headers, params).await?;
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
    let revoked = if record.kind == TokenKind::Refresh {
        state.store.revoke_grant(&record.grant_id, now).await?
    } else {
        state.store.revoke_token(&token.hash(), now).await?;
        1
    };
    let event = AuditEvent::new("oidc.revoke", "ok")
        .account(&record.account_dn)
        .detail(json!({ "client_id": client.client_id, "tokens_revoked": revoked }));
    state.store.audit(origin, event).await?;
    Ok(())
}
