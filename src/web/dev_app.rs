//! The demo application `guichet dev` serves at `/dev/app`: a small OIDC relying
//! party (public client `demo`, PKCE) that signs in through Guichet and shows the
//! claims it received, so a newcomer sees single sign-on work. Only mounted in dev.

use axum::extract::{Query, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cookie::{Cookie, SameSite};
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::error::WebError;
use super::{AppState, Frame};
use crate::domain::Token;
use crate::oidc::clients::{ClientError, NewClient, register};
use crate::store::unix_now;

pub const CLIENT_ID: &str = "demo";
const COOKIE: &str = "guichet_demo";
/// The demo's cookie is for its own pages only.
const COOKIE_PATH: &str = "/dev/app";

fn app_url(state: &AppState, path: &str) -> String {
    format!("{}{path}", crate::oidc::issuer(state))
}

/// Registers the demo client once (a public client: nothing secret to keep).
pub async fn register_client(state: &AppState) -> Result<(), ClientError> {
    if state.store.client(CLIENT_ID).await?.is_some() {
        return Ok(());
    }
    let new = NewClient {
        client_id: CLIENT_ID.to_owned(),
        name: "Application de démonstration".to_owned(),
        public: true,
        redirect_uris: vec![app_url(state, "/dev/app/callback")],
        post_logout_redirect_uris: vec![app_url(state, "/dev/app")],
        backchannel_logout_uri: None,
        first_party: true,
        introspection: false,
        id_token_alg: "RS256".to_owned(),
    };
    register(&state.store, new, unix_now()).await.map(|_| ())
}

fn redirect(location: &str, cookie: &Cookie<'_>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    if let Some(value) = super::set_cookie(cookie) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

/// The demo's home: a sign-in button, or what the last sign-in returned.
pub async fn home(State(state): State<AppState>, frame: Frame) -> Result<Response, WebError> {
    let page = context! { signed_in => false };
    Ok(state.render("dev_app.html", &frame, page)?.into_response())
}

/// Starts a sign-in: state and PKCE verifier in a short-lived cookie.
pub async fn start(State(state): State<AppState>) -> Response {
    let (client_state, verifier) = (Token::generate(), Token::generate());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose().as_bytes()));
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", &app_url(&state, "/dev/app/callback"))
        .append_pair("scope", "openid profile email")
        .append_pair("state", client_state.expose())
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let saved = format!("{}.{}", client_state.expose(), verifier.expose());
    let cookie = Cookie::build((COOKIE, saved))
        .path(COOKIE_PATH)
        .max_age(cookie::time::Duration::minutes(10))
        .same_site(SameSite::Lax)
        .http_only(true);
    redirect(&format!("/authorize?{}", query.finish()), &cookie.build())
}

#[derive(Debug, Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The code comes back: exchange it at the token endpoint, as any client would
/// (over HTTP), then read UserInfo and show both.
pub async fn callback(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Query(reply): Query<Callback>,
) -> Result<Response, WebError> {
    if let Some(error) = reply.error {
        return Err(WebError::Authorize(format!("demo app got {error}")));
    }
    let saved = super::cookie(&headers, COOKIE).unwrap_or_default();
    let (expected_state, verifier) = saved.split_once('.').unwrap_or_default();
    if reply.state.as_deref() != Some(expected_state) || expected_state.is_empty() {
        return Err(WebError::Authorize("demo app: state does not match".into()));
    }
    let code = reply.code.unwrap_or_default();
    let http = reqwest::Client::new();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", &app_url(&state, "/dev/app/callback")),
        ("client_id", CLIENT_ID),
        ("code_verifier", verifier),
    ];
    let internal = |e: reqwest::Error| WebError::Internal(format!("demo app: {e}"));
    let tokens: Value = http
        .post(app_url(&state, "/token"))
        .form(&form)
        .send()
        .await
        .map_err(internal)?
        .json()
        .await
        .map_err(internal)?;
    let (Some(access), Some(id_token)) =
        (tokens["access_token"].as_str(), tokens["id_token"].as_str())
    else {
        return Err(WebError::Authorize(format!(
            "demo app: token endpoint said {tokens}"
        )));
    };
    let userinfo: Value = http
        .get(app_url(&state, "/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .map_err(internal)?
        .json()
        .await
        .map_err(internal)?;
    // Shown, not trusted: the payload is only displayed.
    let id_claims: Value = id_token
        .split('.')
        .nth(1)
        .and_then(|part| URL_SAFE_NO_PAD.decode(part).ok())
        .and_then(|bytes: Vec<u8>| serde_json::from_slice::<Value>(&bytes).ok())
        .unwrap_or(Value::Null);
    let mut logout = url::form_urlencoded::Serializer::new(String::new());
    logout
        .append_pair("id_token_hint", id_token)
        .append_pair("post_logout_redirect_uri", &app_url(&state, "/dev/app"));
    let page = context! {
        signed_in => true,
        id_claims => serde_json::to_string_pretty(&id_claims).unwrap_or_default(),
        userinfo => serde_json::to_string_pretty(&userinfo).unwrap_or_default(),
        logout => format!("/end_session?{}", logout.finish()),
    };
    let html = state.render("dev_app.html", &frame, page)?;
    let mut response = html.into_response();
    let cleared = Cookie::build((COOKIE, ""))
        .path(COOKIE_PATH)
        .max_age(cookie::time::Duration::ZERO);
    if let Some(value) = super::set_cookie(&cleared.build()) {
        response.headers_mut().append(SET_COOKIE, value);
    }
    Ok(response)
}
