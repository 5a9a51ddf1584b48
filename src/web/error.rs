//! One error type for the web layer, mapped once: handlers return `WebError`, which
//! becomes a status code and a marker; `render_error_pages` turns the marker into a
//! page in the request's language. Details go to the log, never to the client.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::AppState;
use super::i18n::Locale;
use super::pages::PageFrame;
use crate::directory::DirectoryError;
use crate::flows::FlowError;
use crate::hashing::HashError;
use crate::oidc::provider::ProviderError;
use crate::oidc::{OAuthCode, OAuthError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("not found")]
    NotFound,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
    /// A rate limit refused the request; it may come back after `retry_after` seconds.
    #[error("too many attempts")]
    TooManyAttempts { retry_after: u64 },
    /// Nothing was done; trying again in a moment will work.
    #[error("busy")]
    Busy,
    #[error("form refused: CSRF token missing or wrong")]
    Csrf,
    /// An authorization request whose client or redirect URI cannot be trusted: no
    /// redirect is safe, so the student gets a page.
    #[error("authorization request refused: {0}")]
    Authorize(String),
}

impl From<FlowError> for WebError {
    fn from(error: FlowError) -> Self {
        match error {
            FlowError::Directory(e) => WebError::Directory(e),
            FlowError::Store(e) => WebError::Store(e),
            FlowError::LinkBusy => WebError::Busy,
            FlowError::Interrupted => WebError::Internal("critical section interrupted".into()),
        }
    }
}

/// An OIDC request refused where no redirect can be trusted: the page says the
/// request is not recognised; the code and description go to the log.
impl From<OAuthError> for WebError {
    fn from(error: OAuthError) -> Self {
        match error.code {
            // An outage is not a bad request: 503 and Retry-After.
            OAuthCode::TemporarilyUnavailable => WebError::Busy,
            _ => WebError::Authorize(error.to_string()),
        }
    }
}

/// The page form of the provider's errors (authorization and end-session pages);
/// the JSON form is `web::oidc`'s.
impl From<ProviderError> for WebError {
    fn from(error: ProviderError) -> Self {
        match error {
            ProviderError::Refused(error) => error.into(),
            ProviderError::Store(e) => WebError::Store(e),
            ProviderError::Directory(e) => WebError::Directory(e),
            ProviderError::Flow(e) => e.into(),
            ProviderError::Keys(e) => WebError::Internal(format!("signing: {e}")),
        }
    }
}

/// Which page to show; put in the response's extensions for the renderer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPage(pub &'static str);

impl WebError {
    fn status_and_page(&self) -> (StatusCode, &'static str) {
        match self {
            WebError::NotFound => (StatusCode::NOT_FOUND, "error.not_found"),
            WebError::BadRequest(_) => (StatusCode::BAD_REQUEST, "error.bad_request"),
            WebError::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "error.too_many"),
            WebError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "error.busy"),
            WebError::Csrf => (StatusCode::FORBIDDEN, "error.csrf"),
            WebError::Authorize(_) => (StatusCode::BAD_REQUEST, "error.authorize"),
            WebError::Directory(
                DirectoryError::Busy | DirectoryError::Hashing(HashError::Busy),
            ) => (StatusCode::SERVICE_UNAVAILABLE, "error.busy"),
            WebError::Directory(DirectoryError::Unconfirmed(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "error.directory_unconfirmed",
            ),
            WebError::Directory(e) if e.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "error.directory_down")
            }
            WebError::Store(StoreError::Unavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "error.database_down")
            }
            WebError::Store(StoreError::Busy(_)) => (StatusCode::SERVICE_UNAVAILABLE, "error.busy"),
            WebError::Directory(_) | WebError::Store(_) | WebError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "error.internal")
            }
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let (status, page) = self.status_and_page();
        let retry_after = match self {
            WebError::TooManyAttempts { retry_after } => retry_after,
            _ => 30,
        };
        if page == "error.busy" {
            // Load shed on purpose: a flood of these must not read as a flood of faults.
            tracing::warn!(error = %self, "request refused: busy");
        } else if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        } else {
            tracing::info!(error = %self, "request refused");
        }
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage(page));
        // Overload and outages are answered at once with when to come back.
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::TOO_MANY_REQUESTS {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        response
    }
}

/// Renders the page for any response that carries an `ErrorPage` marker, and for
/// bare error statuses from the framework (404, 405, form rejections, panics) that
/// would otherwise reach the student as plain text.
pub async fn render_error_pages(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let locale = request.extensions().get::<Locale>().copied();
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let here = super::here(request.method(), request.uri());
    let response = next.run(request).await;
    let status = response.status();
    let marker = response.extensions().get::<ErrorPage>().copied();
    let page = match marker {
        Some(ErrorPage(page)) => page,
        None if !is_bare_error(&response) => return response,
        None if status == StatusCode::NOT_FOUND => "error.not_found",
        None if status == StatusCode::SERVICE_UNAVAILABLE => "error.busy",
        None if status.is_server_error() => "error.internal",
        None => "error.bad_request",
    };
    let frame = PageFrame {
        lang: locale.map_or(state.settings.profile.languages.default, |l| l.0),
        request_id,
        csrf: None,
        here,
    };
    // The page replaces the body; when to come back stays, and a refusal by the
    // limits says it in words too, rounded up to the minute.
    let retry_after = response
        .headers()
        .get(axum::http::header::RETRY_AFTER)
        .cloned();
    let wait = retry_after
        .as_ref()
        .filter(|_| status == StatusCode::TOO_MANY_REQUESTS)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
        .map(|seconds| seconds.div_ceil(60) * 60);
    let page = context! { key => page, wait };
    let profile = &state.settings.profile;
    let retry = retry_after.map(|value| [(axum::http::header::RETRY_AFTER, value)]);
    match super::pages::render(&state.templates, "error.html", profile, &frame, page) {
        Ok(html) => (status, retry, html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "error page could not be rendered");
            (status, retry, "Service indisponible / Service unavailable").into_response()
        }
    }
}

/// An error status whose body is not a page or a JSON document of ours.
fn is_bare_error(response: &Response) -> bool {
    let status = response.status();
    let typed = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html") || v.starts_with("application/json"));
    (status.is_client_error() || status.is_server_error()) && !typed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapped(error: WebError) -> (StatusCode, Option<ErrorPage>) {
        let response = error.into_response();
        (
            response.status(),
            response.extensions().get::<ErrorPage>().copied(),
        )
    }

    #[test]
    fn outages_and_overload_map_to_503_pages_that_say_so() {
        let down = WebError::Directory(DirectoryError::Unavailable("connect refused".into()));
        assert_eq!(
            mapped(down),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorPage("error.directory_down"))
            )
        );
        for busy in [
            DirectoryError::Hashing(HashError::Busy),
            DirectoryError::Busy,
        ] {
            let response = WebError::Directory(busy).into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()["retry-after"], "30");
            assert_eq!(
                response.extensions().get::<ErrorPage>(),
                Some(&ErrorPage("error.busy"))
            );
        }
        let lost = WebError::Directory(DirectoryError::Unconfirmed("result recv error".into()));
        assert_eq!(
            mapped(lost),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorPage("error.directory_unconfirmed"))
            ),
            "a write whose answer was lost is not said to have changed nothing"
        );
        let db = WebError::Store(StoreError::Unavailable("pool timed out".into()));
        assert_eq!(
            mapped(db),
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(ErrorPage("error.database_down"))
            )
        );
    }

    #[test]
    fn refusals_and_bugs_map_to_generic_pages() {
        let refused = WebError::Directory(DirectoryError::Refused {
            rc: 50,
            message: "no write access to mail".into(),
        });
        assert_eq!(
            mapped(refused),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(ErrorPage("error.internal"))
            )
        );
        assert_eq!(
            mapped(WebError::NotFound),
            (StatusCode::NOT_FOUND, Some(ErrorPage("error.not_found")))
        );
        assert_eq!(
            mapped(WebError::BadRequest("x".into())).0,
            StatusCode::BAD_REQUEST
        );
    }
}
