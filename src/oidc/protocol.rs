//! The requests the provider's endpoints take, parsed from their parameters
//! (query or form, as sent: ordered pairs) without HTTP or storage. A parameter
//! sent twice is refused (RFC 6749 §3.1, §3.2); an empty one counts as absent.
//! Several hold secrets (codes, refresh tokens, client secrets): none has `Debug`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::OAuthError;

/// Parameters as sent, in order, repeats included.
pub type Params = Vec<(String, String)>;

/// A parameter given more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeated;

/// The one value of `name`; empty is absent.
pub fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, Repeated> {
    let mut values = params
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str());
    let first = values.next();
    match values.next() {
        Some(_) => Err(Repeated),
        None => Ok(first.filter(|v| !v.is_empty())),
    }
}

/// `single`, owned, with the client told which parameter is repeated.
fn owned(params: &[(String, String)], name: &str) -> Result<Option<String>, OAuthError> {
    single(params, name)
        .map(|value| value.map(str::to_owned))
        .map_err(|Repeated| OAuthError::invalid_request(format!("{name} is repeated")))
}

fn required(params: &[(String, String)], name: &str) -> Result<String, OAuthError> {
    owned(params, name)?.ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
}

/// The parameter that carries Guichet's signed "a sign-in was asked at T" through
/// the login page, so that prompt=login cannot be met by opening the page's
/// return address without signing in.
pub const LOGIN_ASKED: &str = "guichet_login_asked";

/// An authorization request (OIDC Core §3.1.2.1). Who asks and where the answer
/// goes come first: until they are checked, no error may be sent anywhere.
pub struct AuthorizeRequest {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    /// The rest; a repeated parameter is refused at the client's redirect URI,
    /// once it is known.
    pub rest: Result<AuthorizeParams, Repeated>,
    /// The request as sent: the login page and the consent form carry it back.
    pub sent: Params,
}

pub struct AuthorizeParams {
    pub response_type: Option<String>,
    pub scope: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub response_mode: Option<String>,
    pub login_asked: Option<String>,
    pub id_token_hint: Option<String>,
    pub request_uri: bool,
}

impl AuthorizeRequest {
    /// Fails if the client id, the redirect URI or the state is repeated: then no
    /// redirect can be trusted. A request object is not read, but the redirect URI
    /// and state it carries say where its refusal goes (OIDC Core §6.1 lets a client
    /// send them only there); that URI is checked like any other.
    pub fn parse(sent: Params) -> Result<AuthorizeRequest, Repeated> {
        let client_id = single(&sent, "client_id")?.map(str::to_owned);
        let mut redirect_uri = single(&sent, "redirect_uri")?.map(str::to_owned);
        let mut state = single(&sent, "state")?.map(str::to_owned);
        let rest = AuthorizeParams::parse(&sent);
        if let Ok(object) = single(&sent, "request")
            && let Some(claims) = object.and_then(unverified_claims)
        {
            let claim = |name: &str| claims[name].as_str().map(str::to_owned);
            redirect_uri = redirect_uri.or_else(|| claim("redirect_uri"));
            state = state.or_else(|| claim("state"));
        }
        Ok(AuthorizeRequest {
            client_id,
            redirect_uri,
            state,
            rest,
            sent,
        })
    }

    /// Whether a request object (OIDC Core §6) came, once or more: not supported,
    /// refused before anything else.
    pub fn carries_object(&self) -> bool {
        self.sent.iter().any(|(name, _)| name == "request")
    }

    /// The first value of a parameter that only shapes the login page.
    pub fn hint(&self, name: &str) -> Option<&str> {
        self.sent
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

impl AuthorizeParams {
    fn parse(params: &[(String, String)]) -> Result<AuthorizeParams, Repeated> {
        let get = |name: &str| single(params, name).map(|v| v.map(str::to_owned));
        Ok(AuthorizeParams {
            response_type: get("response_type")?,
            scope: get("scope")?,
            nonce: get("nonce")?,
            code_challenge: get("code_challenge")?,
            code_challenge_method: get("code_challenge_method")?,
            prompt: get("prompt")?,
            max_age: get("max_age")?,
            response_mode: get("response_mode")?,
            login_asked: get(LOGIN_ASKED)?,
            // Not checked for repeats before: only whether they are there.
            id_token_hint: single(params, "id_token_hint")
                .ok()
                .flatten()
                .map(str::to_owned),
            request_uri: single(params, "request_uri").ok().flatten().is_some(),
        })
    }

    /// The prompt values, space-separated (OIDC Core §3.1.2.1).
    pub fn prompts(&self) -> Vec<&str> {
        self.prompt
            .as_deref()
            .unwrap_or_default()
            .split_whitespace()
            .collect()
    }
}

/// The payload of a JWT, its signature unchecked: only to find where to send the
/// refusal of a request object, whose every claim is then checked like a parameter.
fn unverified_claims(jwt: &str) -> Option<serde_json::Value> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A client's own request (token, introspection, revocation): its form and its
/// `Authorization` header, for client authentication (RFC 6749 §2.3.1).
pub struct ClientRequest {
    pub params: Params,
    /// The header as sent; one that is not text is kept as empty (and refused).
    pub authorization: Option<String>,
}

/// Who the client says it is, and its secret if it has one.
pub struct ClientCredentials {
    pub client_id: String,
    pub secret: Option<String>,
}

impl ClientRequest {
    /// The client id the caller gave, from the Basic credentials or the form,
    /// whatever else is wrong: for the audit of a failed authentication.
    pub fn named_client(&self) -> Option<String> {
        let basic = self.basic().ok().flatten().map(|(id, _)| id);
        let posted = single(&self.params, "client_id")
            .ok()
            .flatten()
            .map(str::to_owned);
        basic.or(posted)
    }

    /// The credentials, from the Basic header or the form, but not both.
    pub fn credentials(&self) -> Result<ClientCredentials, OAuthError> {
        let basic = self.basic()?;
        let posted_secret = owned(&self.params, "client_secret")?;
        let posted_id = owned(&self.params, "client_id")?;
        match (basic, posted_secret) {
            (Some(_), Some(_)) => Err(OAuthError::invalid_request(
                "use one client authentication method",
            )),
            (Some((id, secret)), None) => {
                if posted_id.is_some_and(|posted| posted != id) {
                    return Err(OAuthError::invalid_client());
                }
                Ok(ClientCredentials {
                    client_id: id,
                    secret: Some(secret),
                })
            }
            (None, secret) => Ok(ClientCredentials {
                client_id: posted_id.ok_or_else(OAuthError::invalid_client)?,
                secret,
            }),
        }
    }

    /// `Authorization: Basic` credentials, each part form-decoded (RFC 6749 §2.3.1).
    fn basic(&self) -> Result<Option<(String, String)>, OAuthError> {
        let Some(value) = &self.authorization else {
            return Ok(None);
        };
        let encoded = strip_scheme(value, "Basic").ok_or_else(OAuthError::invalid_client)?;
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(OAuthError::invalid_client)?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or_else(OAuthError::invalid_client)?;
        let form_decode = |raw: &str| {
            url::form_urlencoded::parse(format!("x={raw}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        Ok(Some((form_decode(id), form_decode(secret))))
    }
}

/// The credentials after an authentication scheme, whose name is case-insensitive
/// (RFC 9110 §11.1).
pub fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (name, rest) = value.split_once(' ')?;
    name.eq_ignore_ascii_case(scheme).then(|| rest.trim_start())
}

/// A token request (RFC 6749 §4.1.3, §6), after the client has authenticated.
pub enum TokenRequest {
    AuthorizationCode {
        code: String,
        redirect_uri: Option<String>,
        code_verifier: Option<String>,
    },
    RefreshToken {
        refresh_token: String,
        scope: Option<String>,
    },
}

impl TokenRequest {
    pub fn parse(params: &[(String, String)]) -> Result<TokenRequest, OAuthError> {
        match owned(params, "grant_type")?.as_deref() {
            Some("authorization_code") => Ok(TokenRequest::AuthorizationCode {
                code: required(params, "code")?,
                redirect_uri: owned(params, "redirect_uri")?,
                code_verifier: owned(params, "code_verifier")?,
            }),
            Some("refresh_token") => Ok(TokenRequest::RefreshToken {
                refresh_token: required(params, "refresh_token")?,
                scope: owned(params, "scope")?,
            }),
            None => Err(OAuthError::invalid_request("grant_type is required")),
            Some(_) => Err(OAuthError::unsupported_grant_type()),
        }
    }
}

/// The token an introspection (RFC 7662 §2.1) or a revocation (RFC 7009 §2.1) is
/// about; `token_type_hint` is not needed to find it.
pub struct TokenQuestion {
    pub token: String,
}

impl TokenQuestion {
    pub fn parse(params: &[(String, String)]) -> Result<TokenQuestion, OAuthError> {
        Ok(TokenQuestion {
            token: required(params, "token")?,
        })
    }
}

/// An RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0 §2): the first
/// value of each parameter counts. No `Debug`: the hint alone signs a student out.
#[derive(Clone, Default)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

impl EndSessionRequest {
    pub fn parse(params: &[(String, String)]) -> EndSessionRequest {
        let first = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        EndSessionRequest {
            id_token_hint: first("id_token_hint"),
            client_id: first("client_id"),
            post_logout_redirect_uri: first("post_logout_redirect_uri"),
            state: first("state"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Params {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn repeated_parameters_are_refused() {
        let sent = params(&[("a", "1"), ("a", "2")]);
        assert_eq!(single(&sent, "a"), Err(Repeated));
        assert_eq!(single(&sent, "b"), Ok(None));
    }

    #[test]
    fn a_request_object_says_where_its_refusal_goes() {
        let claims = r#"{"redirect_uri":"https://app.example/cb","state":"s1"}"#;
        let object = format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(claims));
        let request =
            AuthorizeRequest::parse(params(&[("client_id", "app"), ("request", &object)])).unwrap();
        assert_eq!(
            request.redirect_uri.as_deref(),
            Some("https://app.example/cb")
        );
        assert_eq!(request.state.as_deref(), Some("s1"));
        assert!(request.carries_object());
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%20app:s%3Acret");
        let mut request = ClientRequest {
            params: Params::new(),
            authorization: Some(format!("Basic {encoded}")),
        };
        let credentials = request.credentials().unwrap();
        assert_eq!(credentials.client_id, "my app");
        assert_eq!(credentials.secret.as_deref(), Some("s:cret"));
        request.authorization = Some(format!("basic {encoded}"));
        assert!(request.credentials().is_ok(), "case-insensitive scheme");
        request.authorization = Some("Bearer x".into());
        assert!(request.credentials().is_err());
    }
}
