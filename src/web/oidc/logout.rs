//! The end-session endpoint (RP-initiated logout, GET and POST), and the answer
//! once signed out, which the sign-out form of the account pages shares.

use axum::extract::{Form, Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use url::Url;

use super::redirect;
use crate::oidc::protocol::{EndSessionRequest, Params};
use crate::oidc::provider::{EndSession, Provider};
use crate::store::Origin;
use crate::web::client::Client;
use crate::web::{AppState, Frame, WebError, leaving_page, session};

pub async fn get(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let origin = frame.origin(client);
    end_session(&state, &frame, origin, &headers, &params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

pub async fn post(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let origin = frame.origin(client);
    end_session(&state, &frame, origin, &headers, &params)
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

/// `origin`: who asked, for the audit log's `logout` row.
async fn end_session(
    state: &AppState,
    frame: &Frame,
    origin: Origin,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Response, WebError> {
    let session = session::browser_secret(state, headers);
    let provider = Provider::new(&state.app, origin);
    let outcome = provider
        .end_session(EndSessionRequest::parse(params), session.as_ref())
        .await?;
    match outcome {
        EndSession::Confirm {
            client,
            post_logout_redirect_uri,
            state: client_state,
        } => {
            let page = context! {
                client_id => client.as_ref().map(|c| c.client_id.as_str()),
                client_name => client.as_ref().map(|c| c.name.as_str()),
                post_logout_redirect_uri => post_logout_redirect_uri,
                state_value => client_state,
            };
            let html = state.render("logout_confirm.html", frame, page)?;
            Ok(leaving_page(html))
        }
        EndSession::SignedOut { to } => finished(state, frame, to),
    }
}

/// The answer once signed out: the client's page, or ours; the cookie is cleared.
pub(crate) fn finished(
    state: &AppState,
    frame: &Frame,
    target: Option<Url>,
) -> Result<Response, WebError> {
    let mut response = match target {
        Some(url) => redirect(StatusCode::FOUND, url.as_str()),
        None => state
            .render("logged_out.html", frame, context! {})?
            .into_response(),
    };
    if let Some(cookie) = session::cleared_cookie(state) {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    Ok(response)
}
