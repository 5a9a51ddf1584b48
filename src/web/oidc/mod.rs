//! The OpenID Connect endpoints over HTTP: each handler parses its request into
//! `oidc::protocol` types, asks `oidc::provider`, and maps the outcome once to a
//! redirect, a page or JSON. The JSON form of a refusal (RFC 6749 §5.2, RFC 6750
//! §3) is here; its page form is `WebError`'s.

mod authorize;
mod logout;
mod token;
mod userinfo;

use axum::Json;
use axum::Router;
use axum::http::header::{CACHE_CONTROL, LOCATION, PRAGMA, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;

use super::AppState;
use crate::oidc::provider::ProviderError;
use crate::oidc::{OAuthCode, OAuthError};

pub(crate) use logout::finished;

/// The OIDC endpoints. Clients post to the token endpoint from their back ends, so
/// only the student's own answers (consent) go through the CSRF check.
pub fn routes(state: AppState) -> Router<AppState> {
    // These pages may ask the student something (sign out? share?) with a form.
    let asking = Router::new()
        .route("/end_session", get(logout::get).post(logout::post))
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            super::csrf::provide,
        ));
    let answering = Router::new()
        .route("/authorize/consent", post(authorize::consent))
        .route_layer(axum::middleware::from_fn_with_state(
            state,
            super::csrf::protect,
        ));
    Router::new()
        .merge(asking)
        .merge(answering)
        .route(
            "/.well-known/openid-configuration",
            get(userinfo::discovery),
        )
        .route("/jwks.json", get(userinfo::jwks))
        .route("/token", post(token::token))
        .route("/userinfo", get(userinfo::get).post(userinfo::post))
        .route("/introspect", post(token::introspect))
        .route("/revoke", post(token::revoke))
}

/// The status a refusal is answered with: 401 where the client must authenticate
/// (again), 503 where it may retry.
fn status(code: OAuthCode) -> StatusCode {
    match code {
        OAuthCode::InvalidClient | OAuthCode::InvalidToken => StatusCode::UNAUTHORIZED,
        OAuthCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        tracing::info!(error = %self.code, description = %self.description, "OIDC request refused");
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status(self.code), Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        let challenge = match self.code {
            OAuthCode::InvalidClient => Some("Basic realm=\"guichet\""),
            OAuthCode::InvalidToken => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        // An outage or overload: the client is told when to come back, as pages are.
        if self.code == OAuthCode::TemporarilyUnavailable {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("30"));
        }
        response
    }
}

/// A failure is logged with its detail; the client only learns it may retry.
impl IntoResponse for ProviderError {
    fn into_response(self) -> Response {
        match self {
            ProviderError::Refused(error) => error.into_response(),
            failed => {
                tracing::error!(error = %failed, "OIDC request failed");
                OAuthError::unavailable().into_response()
            }
        }
    }
}

/// A JSON answer that no cache may keep (it carries tokens or claims).
fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    let mut response = status.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outage_tells_the_client_when_to_come_back() {
        let response = OAuthError::unavailable().into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[RETRY_AFTER], "30");
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
}
