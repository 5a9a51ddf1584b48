//! The authorization endpoint (code flow, GET and POST) and the consent form's
//! answer: the request goes to the provider as sent, the outcome comes back as a
//! redirect (code, error, login page) or a page (consent, refusal).

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::redirect;
use crate::oidc::protocol::{AuthorizeRequest, Params, single};
use crate::oidc::provider::{
    Authorization, ConsentAnswer, ConsentAsked, Provider, Refusal, ToLogin,
};
use crate::store::Origin;
use crate::web::client::Client;
use crate::web::{AppState, Frame, WebError, leaving_page, session};

pub async fn get(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let asking = Provider::new(&state.app, Origin::default());
    authorize(&state, &frame, &headers, asking, params, None).await
}

pub async fn post(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    Form(params): Form<Params>,
) -> Response {
    let asking = Provider::new(&state.app, Origin::default());
    authorize(&state, &frame, &headers, asking, params, None).await
}

/// The student's answer on the consent page (a CSRF-protected form carrying the
/// original request).
pub async fn consent(
    State(state): State<AppState>,
    peer: Client,
    frame: Frame,
    headers: HeaderMap,
    Form(mut params): Form<Params>,
) -> Response {
    // Exactly one answer, and it is the button the student pressed: a client cannot
    // slip its own `decision` into the request the page carries.
    let Ok(decision) = single(&params, "decision") else {
        return WebError::Authorize("the answer is repeated".into()).into_response();
    };
    let answer = ConsentAnswer {
        allowed: decision == Some("allow"),
    };
    params.retain(|(k, _)| k != "decision" && k != "csrf");
    // Who answered goes to the audit log with the consent.
    let answering = Provider::new(&state.app, frame.origin(peer));
    authorize(&state, &frame, &headers, answering, params, Some(answer)).await
}

async fn authorize(
    state: &AppState,
    frame: &Frame,
    headers: &HeaderMap,
    provider: Provider<'_>,
    params: Params,
    consent: Option<ConsentAnswer>,
) -> Response {
    let session = session::browser_secret(state, headers);
    let request = AuthorizeRequest::parse(params);
    match provider.authorize(request, session.as_ref(), consent).await {
        Ok(outcome) => respond(state, frame, outcome),
        Err(error) => WebError::from(error).into_response(),
    }
}

fn respond(state: &AppState, frame: &Frame, outcome: Authorization) -> Response {
    match outcome {
        Authorization::Code(location) => redirect(StatusCode::FOUND, location.as_str()),
        Authorization::Refused(Refusal::ToClient { location, error }) => {
            tracing::info!(%error, "authorization request refused at the client");
            redirect(StatusCode::FOUND, location.as_str())
        }
        Authorization::Refused(Refusal::Page(error)) => WebError::from(error).into_response(),
        Authorization::Login(to) => redirect(StatusCode::SEE_OTHER, &login_page(&to)),
        Authorization::Consent(asked) => consent_page(state, frame, &asked)
            .map_or_else(IntoResponse::into_response, leaving_page),
    }
}

/// The login page's address, coming back to the request afterwards.
fn login_page(to: &ToLogin) -> String {
    let mut login = url::form_urlencoded::Serializer::new(String::new());
    login.append_pair("next", &to.next);
    if let Some(hint) = &to.login_hint {
        login.append_pair("login_hint", hint);
    }
    if let Some(lang) = to.lang {
        login.append_pair("lang", lang);
    }
    format!("/login?{}", login.finish())
}

fn consent_page(
    state: &AppState,
    frame: &Frame,
    asked: &ConsentAsked,
) -> Result<axum::response::Html<String>, WebError> {
    let page = context! {
        client_name => asked.client_name.as_str(),
        scopes => asked.scopes,
        params => asked.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect::<Vec<_>>(),
    };
    state.render("consent.html", frame, page)
}
