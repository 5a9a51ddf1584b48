//! OpenID Connect helpers shared by the OIDC, interop, conformance and browser tests.

use guichet::oidc::clients::{NewClient, register};

use reqwest::StatusCode;
use serde_json::Value;

use super::TestApp;

/// Moodle's redirect URI: the one the OIDC tests' clients register.
pub const REDIRECT: &str = "https://moodle.univ-demo.fr/admin/oauth2callback.php";

/// The logout tokens a back-channel receiver was sent.
pub type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

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

pub fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

pub fn query_of(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// An authorization request; `extra` overrides or adds parameters.
pub fn authorize_url(client_id: &str, extra: &[(&str, &str)]) -> String {
    let defaults = [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
    ];
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in defaults {
        if !extra.iter().any(|(key, _)| *key == k) {
            query.append_pair(k, v);
        }
    }
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    format!("/authorize?{}", query.finish())
}

/// Signs in through the login page the authorization endpoint sends to, and
/// returns the query the client gets back.
pub async fn sign_in_and_authorize(app: &TestApp, url: &str) -> Vec<(String, String)> {
    let first = app.get(url).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER, "to the login page");
    let login = location(&first);
    let to_client = signs_in_and_returns(app, &login_next(&login)).await;
    assert!(to_client.starts_with(REDIRECT), "{to_client}");
    query_of(&to_client)
}

pub async fn token_request(
    app: &TestApp,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut request = app.http.post(app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

/// Redeems `code` for `client` (client_secret_basic) with the test's redirect URI.
pub async fn redeem_code(app: &TestApp, client: (&str, &str), code: &str) -> (StatusCode, Value) {
    token_request(
        app,
        Some(client),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await
}

pub async fn userinfo(app: &TestApp, access: &str) -> (StatusCode, Value) {
    let response = app
        .http
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A client's back-channel endpoint: a real HTTP server recording logout tokens.
pub async fn backchannel_receiver() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (format!("http://{addr}/bcl"), receive_logouts(listener))
}

/// A back-channel receiver at `http://127.0.0.1:{port}/bcl` (an application that
/// comes back where it was).
pub async fn backchannel_receiver_on(port: u16) -> Seen {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    receive_logouts(listener)
}

fn receive_logouts(listener: tokio::net::TcpListener) -> Seen {
    use axum::extract::{Form, State};
    let seen: Seen = Default::default();
    async fn record(
        State(seen): State<Seen>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> &'static str {
        let token = form
            .into_iter()
            .find(|(k, _)| k == "logout_token")
            .map(|(_, v)| v)
            .unwrap_or_default();
        seen.lock().unwrap().push(token);
        "ok"
    }
    let app = axum::Router::new()
        .route("/bcl", axum::routing::post(record))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    seen
}
