//! The error codes of OAuth 2.0 and OpenID Connect (RFC 6749 §4.1.2.1 and §5.2,
//! RFC 6750 §3.1, OIDC Core §3.1.2.6 and §6.3), and a refusal: a code with a short
//! description for the client. The same refusal becomes a JSON answer, an error at
//! the client's redirect URI or an error page; how is the web layer's business.
//! Internal detail never goes in a description (it goes to the log).

use std::fmt;

/// Every code Guichet answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    InvalidToken,
    AccessDenied,
    UnsupportedResponseType,
    TemporarilyUnavailable,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
}

impl OAuthCode {
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::InvalidToken => "invalid_token",
            OAuthCode::AccessDenied => "access_denied",
            OAuthCode::UnsupportedResponseType => "unsupported_response_type",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthCode::LoginRequired => "login_required",
            OAuthCode::ConsentRequired => "consent_required",
            OAuthCode::RequestNotSupported => "request_not_supported",
            OAuthCode::RequestUriNotSupported => "request_uri_not_supported",
        }
    }
}

impl fmt::Display for OAuthCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal the client is told about: the code, and what it got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: OAuthCode,
    pub description: String,
}

impl OAuthError {
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidRequest, description)
    }

    pub fn invalid_client() -> Self {
        Self::new(OAuthCode::InvalidClient, "client authentication failed")
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::InvalidGrant, description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(OAuthCode::UnauthorizedClient, description)
    }

    pub fn invalid_scope() -> Self {
        Self::new(OAuthCode::InvalidScope, "a refresh cannot widen the scope")
    }

    pub fn unsupported_grant_type() -> Self {
        Self::new(
            OAuthCode::UnsupportedGrantType,
            "only authorization_code and refresh_token",
        )
    }

    pub fn invalid_token() -> Self {
        Self::new(
            OAuthCode::InvalidToken,
            "the access token is missing, expired or revoked",
        )
    }

    /// The database, the directory or the keys failed: the client may retry.
    pub fn unavailable() -> Self {
        Self::new(OAuthCode::TemporarilyUnavailable, "try again later")
    }
}
