//! The OpenID Connect requests, as pairs of a query or a form: any pairs give a
//! request or the OAuth error, and a parameter sent twice is never read as one.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use guichet::config::ClaimMapping;
use guichet::oidc::claims;
use guichet::oidc::protocol::{
    AuthorizeRequest, ClientRequest, EndSessionRequest, Params, Repeated, TokenQuestion,
    TokenRequest, single, strip_scheme,
};
use guichet::oidc::{OAuthCode, OAuthError};
use proptest::prelude::*;

use crate::common::hostile::{cases, near};

/// The names the endpoints read, and some they do not.
const NAMES: &[&str] = &[
    "client_id",
    "redirect_uri",
    "state",
    "response_type",
    "scope",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "response_mode",
    "id_token_hint",
    "request",
    "request_uri",
    "ui_locales",
    "acr_values",
    "claims",
    "login_hint",
    "guichet_login_asked",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
    "post_logout_redirect_uri",
];

/// The authorization parameters refused when repeated, once the client is known.
const REPEAT_CHECKED: &[&str] = &[
    "response_type",
    "scope",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "prompt",
    "max_age",
    "response_mode",
    "guichet_login_asked",
];

/// Pairs as a hostile client sends them: known names (often twice), odd names,
/// values of any shape, empty ones.
fn params() -> impl Strategy<Value = Params> {
    let name = prop_oneof![
        4 => proptest::sample::select(NAMES).prop_map(str::to_owned),
        1 => near("a-z_"),
    ];
    let value = prop_oneof![
        1 => Just(String::new()),
        1 => proptest::sample::select(&["code", "openid", "S256", "none login", "authorization_code", "refresh_token", "-1", "99999999999999999999"][..]).prop_map(str::to_owned),
        4 => near("a-zA-Z0-9 ._~:/?#=&%+\\-"),
        // Request objects (and hints) of JWT shape, with any JSON inside.
        1 => "[A-Za-z0-9_-]{0,30}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,10}",
        1 => near("a-z\"{}:,\\[\\]").prop_map(|json| format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(json))),
    ];
    proptest::collection::vec((name, value), 0..24)
}

/// How many times `name` was sent with a value that is not empty, and in all.
fn sent(params: &Params, name: &str) -> (usize, usize) {
    let all = params.iter().filter(|(k, _)| k == name);
    let given = all.clone().filter(|(_, v)| !v.is_empty()).count();
    (given, all.count())
}

fn is_oauth_error(error: &OAuthError) -> bool {
    !error.description.is_empty()
        && matches!(
            error.code,
            OAuthCode::InvalidRequest | OAuthCode::InvalidClient | OAuthCode::UnsupportedGrantType
        )
}

proptest! {
    #![proptest_config(cases(1024))]

    #[test]
    fn a_parameter_is_read_once_or_refused_as_repeated(params in params(), name in proptest::sample::select(NAMES)) {
        let (given, all) = sent(&params, name);
        match single(&params, name) {
            Ok(Some(value)) => prop_assert!(all == 1 && given == 1 && !value.is_empty()),
            Ok(None) => prop_assert!(all <= 1 && given == 0),
            Err(Repeated) => prop_assert!(all > 1),
        }
    }

    #[test]
    fn an_authorization_request_keeps_what_was_sent_and_refuses_repeats(params in params()) {
        let repeated = |name: &str| sent(&params, name).1 > 1;
        let who_and_where_repeated = ["client_id", "redirect_uri", "state"].iter().any(|n| repeated(n));
        match AuthorizeRequest::parse(params.clone()) {
            Err(Repeated) => prop_assert!(who_and_where_repeated),
            Ok(request) => {
                prop_assert!(!who_and_where_repeated);
                prop_assert_eq!(&request.sent, &params);
                prop_assert_eq!(request.carries_object(), sent(&params, "request").1 > 0);
                let client_id = single(&params, "client_id").ok().flatten();
                prop_assert_eq!(request.client_id.as_deref(), client_id);
                let checked_repeated = REPEAT_CHECKED.iter().any(|n| repeated(n));
                prop_assert_eq!(request.rest.is_err(), checked_repeated);
                if let Ok(rest) = &request.rest {
                    let prompt = rest.prompt.as_deref().unwrap_or_default();
                    prop_assert_eq!(rest.prompts(), prompt.split_whitespace().collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn a_request_object_only_says_where_a_refusal_goes(redirect in near("a-z:/."), state in near("a-z0-9"), sent_uri in any::<bool>()) {
        let claims = serde_json::json!({ "redirect_uri": redirect, "state": state });
        let object = format!("eyJhbGciOiJub25lIn0.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let mut params: Params = vec![("client_id".into(), "app".into()), ("request".into(), object)];
        if sent_uri {
            params.push(("redirect_uri".into(), "https://app.example/cb".into()));
        }
        let request = AuthorizeRequest::parse(params);
        prop_assert!(request.is_ok());
        let request = request.map_err(|_| TestCaseError::fail("refused"))?;
        // A redirect URI sent as a parameter wins over the object's.
        let expected = if sent_uri { "https://app.example/cb" } else { redirect.as_str() };
        prop_assert_eq!(request.redirect_uri.as_deref(), Some(expected));
        prop_assert_eq!(request.state.as_deref(), Some(state.as_str()));
        prop_assert!(request.carries_object());
    }

    #[test]
    fn a_token_request_is_one_of_the_two_grants_or_an_oauth_error(params in params()) {
        match TokenRequest::parse(&params) {
            Ok(TokenRequest::AuthorizationCode { code, .. }) => {
                prop_assert_eq!(single(&params, "grant_type"), Ok(Some("authorization_code")));
                prop_assert_eq!(single(&params, "code"), Ok(Some(code.as_str())));
            }
            Ok(TokenRequest::RefreshToken { refresh_token, .. }) => {
                prop_assert_eq!(single(&params, "grant_type"), Ok(Some("refresh_token")));
                prop_assert_eq!(single(&params, "refresh_token"), Ok(Some(refresh_token.as_str())));
            }
            Err(error) => prop_assert!(is_oauth_error(&error), "{error:?}"),
        }
        match TokenQuestion::parse(&params) {
            Ok(question) => prop_assert!(!question.token.is_empty()),
            Err(error) => prop_assert!(is_oauth_error(&error), "{error:?}"),
        }
    }

    #[test]
    fn an_end_session_request_takes_the_first_value_of_each_parameter(params in params()) {
        let request = EndSessionRequest::parse(&params);
        let first = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty());
        prop_assert_eq!(request.id_token_hint.as_deref(), first("id_token_hint"));
        prop_assert_eq!(request.client_id.as_deref(), first("client_id"));
        prop_assert_eq!(request.post_logout_redirect_uri.as_deref(), first("post_logout_redirect_uri"));
        prop_assert_eq!(request.state.as_deref(), first("state"));
    }

    #[test]
    fn client_credentials_are_read_from_one_place_or_refused(
        params in params(),
        header in prop_oneof![
            Just(None),
            near("A-Za-z0-9+/= ").prop_map(Some),
            (near("a-z:%"), near("a-z:%")).prop_map(|(id, secret)| Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))),
            proptest::collection::vec(any::<u8>(), 0..64).prop_map(|bytes| Some(format!("basic {}", STANDARD.encode(bytes)))),
        ],
    ) {
        let request = ClientRequest { params: params.clone(), authorization: header.clone() };
        let named = request.named_client();
        match request.credentials() {
            Ok(credentials) => {
                prop_assert_eq!(named.as_deref(), Some(credentials.client_id.as_str()));
                let posted_secret = single(&params, "client_secret").ok().flatten();
                prop_assert!(header.is_none() || posted_secret.is_none(), "two authentication methods accepted");
            }
            Err(error) => prop_assert!(is_oauth_error(&error), "{error:?}"),
        }
    }

    #[test]
    fn an_authentication_scheme_is_matched_whatever_its_case(value in near("A-Za-z0-9 ")) {
        if let Some(rest) = strip_scheme(&value, "Bearer") {
            let (scheme, _) = value.split_once(' ').unwrap_or_default();
            prop_assert!(scheme.eq_ignore_ascii_case("bearer"));
            prop_assert!(value.ends_with(rest));
        }
    }

    #[test]
    fn the_granted_scope_holds_only_known_scopes_once_each(scope in prop_oneof![near("a-z_ "), "(openid|profile|email|offline_access|x| |\t|\u{a0}){0,12}"]) {
        let mapping = ClaimMapping::default();
        let granted = claims::granted(&scope, &mapping);
        let known = claims::scopes(&mapping);
        let parts: Vec<&str> = granted.split(' ').filter(|s| !s.is_empty()).collect();
        prop_assert!(parts.iter().all(|s| known.contains(s) && scope.split_whitespace().any(|asked| asked == *s)));
        let mut unique = parts.clone();
        unique.dedup();
        prop_assert_eq!(unique.len(), parts.len());
        prop_assert_eq!(claims::granted(&granted, &mapping), granted.clone(), "granting is idempotent");
    }
}
