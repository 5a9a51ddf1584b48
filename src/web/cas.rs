//! The CAS endpoints over HTTP (`/cas/...`): each handler hands the decoded
//! parameters to `cas::provider` and maps the outcome once. Validation answers
//! are always 200 with the protocol's body (its failures are in the body); a
//! failure of the store or directory is `INTERNAL_ERROR` there, logged here.
//! `/cas/login` refusals are pages: an unknown service is never redirected to.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;

use super::client::Client;
use super::oidc::{finished, redirect};
use super::{AppState, Frame, WebError, leaving_page, session};
use crate::cas::protocol::{Endpoint, Format, ProxyRequest, ValidateRequest};
use crate::cas::provider::{CasFailure, CasLogin, CasLogout, CasProvider, Proxied, Validation};
use crate::cas::{CasError, responses};
use crate::oidc::protocol::Params;

pub fn routes() -> Router<AppState> {
    let mut router = Router::new()
        .route("/cas/login", get(login))
        .route("/cas/logout", get(logout))
        .route("/cas/proxy", get(proxy));
    for endpoint in Endpoint::ALL {
        let get_it =
            move |state, client, frame, query| validate(endpoint, state, client, frame, query);
        let post_it =
            move |state, client, frame, form| validate_posted(endpoint, state, client, frame, form);
        router = router.route(
            &format!("/cas{}", endpoint.path()),
            get(get_it).post(post_it),
        );
    }
    router
}

impl From<CasFailure> for WebError {
    fn from(error: CasFailure) -> Self {
        match error {
            CasFailure::Store(e) => WebError::Store(e),
            CasFailure::Directory(e) => WebError::Directory(e),
            CasFailure::Flow(e) => e.into(),
            CasFailure::Keys(e) => WebError::Internal(format!("signing: {e}")),
        }
    }
}

async fn login(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let provider = CasProvider::new(&state.app, frame.origin(client));
    let session = session::browser_secret(&state, &headers);
    let outcome = match provider.login(&params, session.as_ref()).await {
        Ok(outcome) => outcome,
        Err(failure) => return WebError::from(failure).into_response(),
    };
    match outcome {
        CasLogin::Redirect(location) | CasLogin::Gateway(location) => {
            redirect(StatusCode::FOUND, location.as_str())
        }
        CasLogin::ToLogin { next } => {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            redirect(StatusCode::SEE_OTHER, &format!("/login?next={next}"))
        }
        CasLogin::SignedIn => redirect(StatusCode::SEE_OTHER, "/account"),
        CasLogin::Post { service, ticket } => {
            let page = context! { action => service.as_str(), ticket => ticket.expose() };
            state
                .render("cas_post.html", &frame, page)
                .map_or_else(IntoResponse::into_response, leaving_page)
        }
        CasLogin::Refused(error) => WebError::Authorize(error.to_string()).into_response(),
    }
}

async fn logout(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> Response {
    let provider = CasProvider::new(&state.app, frame.origin(client));
    let session = session::browser_secret(&state, &headers);
    let outcome = provider.logout(&params, session.as_ref()).await;
    let target = match outcome {
        Ok(CasLogout::ToService(url)) => Some(url),
        Ok(CasLogout::SignedOut) => None,
        Err(failure) => return WebError::from(failure).into_response(),
    };
    finished(&state, &frame, target).unwrap_or_else(IntoResponse::into_response)
}

async fn validate(
    endpoint: Endpoint,
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Query(params): Query<Params>,
) -> Response {
    let provider = CasProvider::new(&state.app, frame.origin(client));
    validated(endpoint, provider, &params).await
}

/// Some clients post their validation (Apereo takes both). The body is read
/// as a form whatever its declared type, so a client's mistake still gets the
/// protocol's answer (and spends the ticket) rather than a bare 415.
async fn validate_posted(
    endpoint: Endpoint,
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    body: Bytes,
) -> Response {
    let params: Params = url::form_urlencoded::parse(&body).into_owned().collect();
    let provider = CasProvider::new(&state.app, frame.origin(client));
    validated(endpoint, provider, &params).await
}

async fn validated(endpoint: Endpoint, provider: CasProvider<'_>, params: &Params) -> Response {
    let request = ValidateRequest::parse(endpoint, params);
    let format = match &request {
        Ok(request) => request.format,
        Err(refused) => refused.format,
    };
    let body = match provider.validate(request).await {
        Ok(Validation::Valid(success)) => responses::validation_success(&success, format),
        Ok(Validation::Refused(error)) => responses::validation_failure(&error, format),
        Err(failure) => {
            tracing::error!(error = %failure, "CAS validation failed");
            responses::validation_failure(&CasError::internal(), format)
        }
    };
    answer(body, format)
}

async fn proxy(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Query(params): Query<Params>,
) -> Response {
    let request = ProxyRequest::parse(&params);
    let format = match &request {
        Ok(request) => request.format,
        Err(refused) => refused.format,
    };
    let provider = CasProvider::new(&state.app, frame.origin(client));
    let body = match provider.proxy(request).await {
        Ok(Proxied::Granted(ticket)) => responses::proxy_success(&ticket, format),
        Ok(Proxied::Refused(error)) => responses::proxy_failure(&error, format),
        Err(failure) => {
            tracing::error!(error = %failure, "CAS proxy ticket failed");
            responses::proxy_failure(&CasError::internal(), format)
        }
    };
    answer(body, format)
}

/// A protocol answer: 200, its media type, never cached (it names a student).
fn answer(body: String, format: Format) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(format.media_type()));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
