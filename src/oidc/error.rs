//! OAuth 2.0 / OIDC errors as JSON (RFC 6749 §5.2, RFC 6750 §3): what the client
//! needs to know, never internal detail (that goes to the log).

use axum::Json;
use axum::http::header::{CACHE_CONTROL, PRAGMA, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::keys::KeyError;
use crate::directory::DirectoryError;
use crate::flows::FlowError;
use crate::store::StoreError;

#[derive(Debug)]
pub struct OAuthError {
    pub error: &'static str,
    pub description: String,
    status: StatusCode,
}

impl OAuthError {
    fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            description: description.into(),
            status,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn invalid_client() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        )
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn invalid_scope() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "a refresh cannot widen the scope",
        )
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "only authorization_code and refresh_token",
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "the access token is missing, expired or revoked",
        )
    }

    /// The database, the directory or the keys failed: the client may retry.
    fn unavailable(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "OIDC request failed");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again later",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(error: StoreError) -> Self {
        Self::unavailable(&error)
    }
}

impl From<DirectoryError> for OAuthError {
    fn from(error: DirectoryError) -> Self {
        Self::unavailable(&error)
    }
}

impl From<FlowError> for OAuthError {
    fn from(error: FlowError) -> Self {
        Self::unavailable(&error)
    }
}

impl From<KeyError> for OAuthError {
    fn from(error: KeyError) -> Self {
        Self::unavailable(&error)
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        tracing::info!(error = self.error, description = %self.description, "OIDC request refused");
        let body = json!({ "error": self.error, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        let challenge = match self.error {
            "invalid_client" => Some("Basic realm=\"guichet\""),
            "invalid_token" => Some("Bearer error=\"invalid_token\""),
            _ => None,
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
