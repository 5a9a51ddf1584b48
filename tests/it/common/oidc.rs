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

/// The issuer, as Guichet publishes it.
pub fn issuer(app: &TestApp) -> String {
    guichet::oidc::issuer(&app.state)
}

/// The student signs in on the login page whose return address is `next`, and
/// the browser follows back to the authorization endpoint: the address the
/// provider then sends it to (the client's redirect URI with the code).
pub async fn signs_in_and_returns(app: &TestApp, next: &str) -> String {
    let signed = app
        .post_form_response(
            "/login",
            &[
                ("login", super::ACTIVE_UID),
                ("password", super::DEMO_PASSWORD),
                ("next", next),
            ],
        )
        .await;
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
    let to = signed.headers()["location"].to_str().unwrap().to_owned();
    let back = app.get(&to).await;
    let status = back.status();
    let to_client = back
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        status,
        reqwest::StatusCode::FOUND,
        "{}",
        back.text().await.unwrap()
    );
    to_client.unwrap()
}
