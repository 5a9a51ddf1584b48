//! OpenID Connect helpers shared by the OIDC, interop, conformance and browser tests.

use guichet::oidc::clients::{NewClient, register};

use super::TestApp;

/// A confidential, first-party RS256 client with one redirect URI; a test sets
/// the other fields it needs with `..confidential(…)`.
pub fn confidential(id: &str, redirect: &str) -> NewClient {
    NewClient {
        client_id: id.to_owned(),
        name: id.to_owned(),
        public: false,
        redirect_uris: vec![redirect.to_owned()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        first_party: true,
        introspection: false,
        id_token_alg: "RS256".to_owned(),
    }
}

/// Registers `client`; returns its secret (none for a public client).
pub async fn registered(app: &TestApp, client: NewClient) -> Option<String> {
    register(&app.state.store, client, guichet::store::unix_now())
        .await
        .unwrap()
}

/// The `next` parameter of the login page's address (`/login?next=…`).
pub fn login_next(login: &str) -> String {
    assert!(login.starts_with("/login?next="), "{login}");
    url::form_urlencoded::parse(&login.as_bytes()["/login?".len()..])
        .find(|(k, _)| k == "next")
        .unwrap()
        .1
        .into_owned()
}
