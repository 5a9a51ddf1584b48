//! Logout across applications: RP-initiated logout (the end-session endpoint) and
//! back-channel logout (a signed logout token posted to every client the session
//! signed into, OpenID Connect Back-Channel Logout 1.0).

use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde_json::Value;
use url::Url;

use crate::store::{ClientRecord, StoreError, unix_now};
use crate::web::{AppState, Frame, WebError, session};

type Params = Vec<(String, String)>;

fn value<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

pub async fn get(
    state: State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    end_session(state, frame, headers, params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn post(
    state: State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    end_session(state, frame, headers, params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// The claims of an ID token we signed (expired or not: a hint may be old); `None`
/// if it is not one. A database that cannot give the keys is an error, not a bad
/// hint: the client is told to try again, not that its hint is wrong.
pub(super) async fn hint_claims(state: &AppState, hint: &str) -> Result<Option<Value>, StoreError> {
    let keys = state.store.published_keys(unix_now()).await?;
    // Only an ID token: never a logout token or a login request.
    Ok(super::keys::verify_own(&keys, hint, "JWT", |validation| {
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&[super::issuer(state)]);
    }))
}

/// RP-initiated logout. The session ends at once when the client proves which
/// session it means (an ID token of ours for this very session); otherwise the
/// student confirms, so a link on any site cannot sign them out.
async fn end_session(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    params: Params,
) -> Result<Response, WebError> {
    let hint = match value(&params, "id_token_hint") {
        Some(raw) => match hint_claims(&state, raw).await? {
            Some(claims) => Some(claims),
            None => {
                return Err(WebError::Authorize(
                    "id_token_hint is not an ID token of ours".into(),
                ));
            }
        },
        None => None,
    };
    let hinted = hint
        .as_ref()
        .and_then(|c| c["aud"].as_str().map(str::to_owned));
    let named = value(&params, "client_id").map(str::to_owned);
    // Both given: they must name the same client (RP-Initiated Logout §2).
    if let (Some(named), Some(hinted)) = (&named, &hinted) {
        if named != hinted {
            return Err(WebError::Authorize(
                "client_id and id_token_hint disagree".into(),
            ));
        }
    }
    let client_id = named.or(hinted);
    let client = match &client_id {
        Some(id) => Some(
            state
                .store
                .client(id)
                .await?
                .ok_or_else(|| WebError::Authorize("unknown client".into()))?,
        ),
        None => None,
    };
    let target = after_logout(
        client.as_ref(),
        value(&params, "post_logout_redirect_uri"),
        value(&params, "state"),
    )?;
    let current = session::current(&state, &headers).await?;
    let proven = match (&current, &hint) {
        (Some((_, hash)), Some(claims)) => {
            claims["sid"].as_str() == Some(super::sid(hash.as_str()).as_str())
        }
        (None, _) => true,
        (Some(_), None) => false,
    };
    if !proven {
        let page = context! {
            client_id => client.as_ref().map(|c| c.client_id.as_str()),
            client_name => client.as_ref().map(|c| c.name.as_str()),
            post_logout_redirect_uri => value(&params, "post_logout_redirect_uri"),
            state_value => value(&params, "state"),
        };
        let html = state.render("logout_confirm.html", &frame, page)?;
        return Ok(crate::web::leaving_page(html));
    }
    if current.is_some() {
        session::end_current_session(&state, &headers, &frame, None).await?;
    }
    finished(&state, &frame, target)
}

/// Where to send the student after logout: a URI registered for the client, with
/// the client's state; anything else is refused (never an open redirect).
pub fn after_logout(
    client: Option<&ClientRecord>,
    uri: Option<&str>,
    state: Option<&str>,
) -> Result<Option<Url>, WebError> {
    let Some(uri) = uri else { return Ok(None) };
    let registered = client.is_some_and(|c| c.post_logout_redirect_uris.iter().any(|r| r == uri));
    if !registered {
        return Err(WebError::Authorize(
            "post_logout_redirect_uri not registered".into(),
        ));
    }
    let mut url = Url::parse(uri)
        .map_err(|_| WebError::Authorize("post_logout_redirect_uri unreadable".into()))?;
    if let Some(state) = state {
        url.query_pairs_mut().append_pair("state", state);
    }
    Ok(Some(url))
}

/// The answer once signed out: the client's page, or ours; the cookie is cleared.
pub fn finished(
    state: &AppState,
    frame: &Frame,
    target: Option<Url>,
) -> Result<Response, WebError> {
    let mut response = match target {
        Some(url) => {
            let mut response = StatusCode::FOUND.into_response();
            if let Ok(value) = HeaderValue::from_str(url.as_str()) {
                response.headers_mut().insert(LOCATION, value);
            }
            response
        }
        None => state
            .render("logged_out.html", frame, context! {})?
            .into_response(),
    };
    if let Some(cookie) = session::cleared_cookie(state) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}
