//! What the provider's JSON endpoints answer, as types: the discovery document,
//! a token response and an introspection. Token responses hold secrets: no `Debug`.

use serde::{Serialize, Serializer};

/// OpenID Provider Metadata (OIDC Discovery 1.0 §3).
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub userinfo_endpoint: String,
    pub jwks_uri: String,
    pub introspection_endpoint: String,
    pub revocation_endpoint: String,
    pub end_session_endpoint: String,
    pub backchannel_logout_supported: bool,
    pub backchannel_logout_session_supported: bool,
    pub frontchannel_logout_supported: bool,
    pub introspection_endpoint_auth_methods_supported: Vec<&'static str>,
    pub revocation_endpoint_auth_methods_supported: Vec<&'static str>,
    pub scopes_supported: Vec<String>,
    pub response_types_supported: Vec<&'static str>,
    pub response_modes_supported: Vec<&'static str>,
    pub grant_types_supported: Vec<&'static str>,
    pub subject_types_supported: Vec<&'static str>,
    pub id_token_signing_alg_values_supported: Vec<&'static str>,
    pub token_endpoint_auth_methods_supported: Vec<&'static str>,
    pub code_challenge_methods_supported: Vec<&'static str>,
    pub claims_supported: Vec<String>,
    pub prompt_values_supported: Vec<&'static str>,
    pub request_parameter_supported: bool,
    pub request_uri_parameter_supported: bool,
    pub claims_parameter_supported: bool,
    pub authorization_response_iss_parameter_supported: bool,
    pub ui_locales_supported: Vec<&'static str>,
}

/// A successful token response (RFC 6749 §5.1, OIDC Core §3.1.3.3).
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    pub id_token: String,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// An introspection answer (RFC 7662 §2.2): inactive says nothing more, whatever
/// the reason (unknown, expired, revoked, or not the caller's to know).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Introspection {
    Inactive,
    Active(ActiveToken),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActiveToken {
    pub scope: String,
    pub client_id: String,
    pub token_type: &'static str,
    pub exp: i64,
    pub sub: String,
    pub aud: String,
    pub iss: String,
    /// The login, only for a token with the profile scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

impl Serialize for Introspection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            active: bool,
            #[serde(flatten)]
            token: Option<&'a ActiveToken>,
        }
        let token = match self {
            Introspection::Inactive => None,
            Introspection::Active(token) => Some(token),
        };
        Wire {
            active: token.is_some(),
            token,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inactive_token_says_nothing_more() {
        let json = serde_json::to_value(Introspection::Inactive).unwrap();
        assert_eq!(json, serde_json::json!({ "active": false }));
    }
}
