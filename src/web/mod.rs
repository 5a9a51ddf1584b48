//! The HTTP side: routes, pages, language, security headers, error pages. Handlers
//! parse requests into domain types and call `flows`; they hold no business rule.

mod account;
mod activation;
mod assets;
mod cas;
pub(crate) mod client;
pub(crate) mod csrf;
pub mod dev_app;
pub mod dev_cas_app;
mod dev_mail;
mod devices;
pub mod error;
mod flood;
mod health;
mod help;
mod i18n;
mod limits;
mod link_pages;
mod oidc;
mod pages;
mod reset;
pub(crate) mod session;

/// How rate-limit buckets name an identifier (for the tests that read them).
#[doc(hidden)]
pub use limits::digest;

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router, middleware};
use minijinja::{Value, context};
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::app::App;
use crate::oidc::keyring::Published;
use crate::templates::Templates;
pub use error::WebError;
use i18n::Locale;
use pages::PageFrame;

/// Forms are small; anything bigger is refused before it is read.
const BODY_LIMIT: usize = 64 * 1024;

/// What handlers share: the application core and the page templates. Cheap to
/// clone; derefs to [`App`].
#[derive(Clone, Debug)]
pub struct AppState {
    pub app: App,
    templates: Arc<Templates>,
    flood: Arc<flood::Flood>,
    /// The OpenID Provider Metadata, serialised once.
    discovery: Arc<Published>,
}

impl std::ops::Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

impl AppState {
    pub fn new(app: App, templates: Arc<Templates>, discovery: Published) -> AppState {
        let directory = &app.settings.directory;
        let flood = flood::Flood::new(directory.pool_size + directory.bind_queue);
        AppState {
            app,
            templates,
            flood: Arc::new(flood),
            discovery: Arc::new(discovery),
        }
    }

    pub fn discovery(&self) -> &Published {
        &self.discovery
    }

    pub fn render(&self, name: &str, frame: &Frame, page: Value) -> Result<Html<String>, WebError> {
        pages::render(
            &self.templates,
            name,
            &self.settings.profile,
            &frame.0,
            page,
        )
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|pair| pair.name() == name)
        .and_then(|pair| pair.value_raw())
}

/// `cookie` as the value of a `Set-Cookie` header.
pub(crate) fn set_cookie(cookie: &cookie::Cookie<'_>) -> Option<HeaderValue> {
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// The page frame of the current request (language, request id), as an extractor.
#[derive(Debug, Clone)]
pub struct Frame(PageFrame);

impl<S: Send + Sync> FromRequestParts<S> for Frame {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let lang = parts
            .extensions
            .get::<Locale>()
            .map_or(crate::domain::Lang::Fr, |l| l.0);
        let request_id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let csrf = parts
            .extensions
            .get::<csrf::CsrfToken>()
            .map(|t| t.0.clone());
        Ok(Frame(PageFrame {
            lang,
            request_id,
            csrf,
            here: here(&parts.method, &parts.uri),
        }))
    }
}

impl Frame {
    /// Who is asking, for the audit log.
    pub(crate) fn origin(&self, client: client::Client) -> crate::store::Origin {
        crate::store::Origin {
            client_ip: Some(client.0),
            request_id: self.0.request_id.clone(),
        }
    }

    /// Points the language switch at this page's GET twin for `token`: a link's
    /// page answering a POST (or a GET) shows again for the same link.
    pub(crate) fn for_link(self, token: &crate::domain::Token) -> Frame {
        let path = self.0.here.split('?').next().unwrap_or("/").to_owned();
        self.switching_to(link_pages::again(&path, token))
    }

    /// Points the language switch at `path_and_query`: a page answering a POST shows
    /// the switch to its GET twin, so switching does not resubmit or lose the link.
    fn switching_to(mut self, path_and_query: String) -> Frame {
        self.0.here = path_and_query;
        self
    }
}

/// The current page for the language switch: a GET keeps its query but `lang`; any
/// other method leads back to its path.
fn here(method: &axum::http::Method, uri: &axum::http::Uri) -> String {
    // `//host/x` (or `/\host`) would be another site to a browser: the switch of
    // a 404 page at such an address must not lead there.
    let path = match uri.path() {
        p if p.starts_with("//") || p.starts_with("/\\") => "/",
        p => p,
    };
    let query = match (method, uri.query()) {
        (&axum::http::Method::GET | &axum::http::Method::HEAD, Some(q)) => {
            url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(
                    url::form_urlencoded::parse(q.as_bytes()).filter(|(key, _)| key != "lang"),
                )
                .finish()
        }
        _ => String::new(),
    };
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{query}")
    }
}

async fn home(State(state): State<AppState>, frame: Frame) -> Result<Html<String>, WebError> {
    state.render("home.html", &frame, context! {})
}

pub fn router(state: AppState) -> Router {
    // Student forms: CSRF-protected. API endpoints (OIDC) stay outside this layer.
    let forms = Router::new()
        .route(
            "/activation",
            get(activation::start).post(activation::request),
        )
        .route(
            "/activation/password",
            get(activation::open).post(activation::save),
        )
        .route(
            "/activation/choose",
            get(activation::choosing).post(activation::choose),
        )
        .route(
            "/activation/confirm",
            get(activation::confirmation).post(activation::confirm),
        )
        .route("/password/forgot", get(reset::forgot).post(reset::request))
        .route("/help", get(help::show).post(help::submit))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", axum::routing::post(session::logout))
        .route("/account", get(account::show))
        .route(
            "/account/password",
            get(account::password_form).post(account::password_change),
        )
        .route(
            "/account/email",
            get(account::email_form).post(account::email_request),
        )
        .route(
            "/account/email/confirm",
            get(account::confirmation).post(account::confirm),
        )
        .route(
            "/account/email/cancel",
            get(account::cancellation).post(account::cancel),
        )
        .route("/password/reset", get(reset::open).post(reset::change))
        .route_layer(middleware::from_fn_with_state(state.clone(), csrf::protect));
    let mut app = Router::new()
        .merge(forms)
        .merge(oidc::routes(state.clone()))
        .merge(cas::routes())
        .route("/", get(home))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/favicon.ico", get(assets::favicon))
        .route("/static/theme.css", get(assets::theme))
        .route("/static/{name}", get(assets::file));
    if let Some(dir) = state.settings.server.dev_mailbox.clone() {
        app = app
            .route("/dev/mail", get(dev_mail::list))
            .route("/dev/mail/{id}", get(dev_mail::show))
            .route("/dev/mail/{id}/html", get(dev_mail::html))
            .route("/dev/app", get(dev_app::home))
            .route("/dev/app/start", get(dev_app::start))
            .route("/dev/app/callback", get(dev_app::callback))
            .route(
                "/dev/cas-app",
                get(dev_cas_app::page).post(dev_cas_app::page),
            )
            .layer(Extension(dev_mail::MailboxDir(dir)));
    }
    let request_id = HeaderName::from_static("x-request-id");
    let timeout = state.settings.server.request_timeout;
    app.fallback(|| async { WebError::NotFound })
        .layer(middleware::from_fn_with_state(state.clone(), error::render_error_pages))
        .layer(middleware::from_fn_with_state(state.clone(), i18n::choose_language))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(
                    |request: &axum::http::Request<_>| {
                        let id = request
                            .headers()
                            .get("x-request-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default();
                        // The path only: query strings may carry tokens.
                        tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
                    },
                ))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout)),
        )
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// For pages whose form ends in a redirect to an application (sign-in, consent,
/// sign-out confirmation): browsers apply `form-action` to every redirect after the
/// submission, so `'self'` would stop the student at Guichet. The redirect targets
/// are checked against each client's registered URIs instead.
pub(crate) const CSP_FORMS_LEAVING: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; object-src 'none'";

/// A page of this kind: its own CSP, and never cached (it holds a form's CSRF value).
pub(crate) fn leaving_page(html: Html<String>) -> Response {
    (
        [
            (header::CONTENT_SECURITY_POLICY, CSP_FORMS_LEAVING),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// Strict headers on every response: no inline script or style, no framing, no
/// referrer (links carry tokens), HSTS when students reach us over https. A handler
/// that sets its own CSP (the sandboxed dev mail view) keeps it.
async fn security_headers(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(
        HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if state.settings.secure_cookies() {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=63072000; includeSubDomains",
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, Method, Uri, header};
    use proptest::prelude::*;

    proptest! {
        // Requests reach the pages in origin form: a path, maybe a query.
        #[test]
        fn the_language_switch_of_any_address_stays_on_site(raw in "/[/\\\\]{0,3}[a-z.%2F/\\\\]{0,20}(\\?([a-z]{0,4}=[a-z%&=+]{0,6}&?){0,3})?") {
            let Ok(uri) = raw.parse::<Uri>() else { return Ok(()) };
            for method in [Method::GET, Method::POST] {
                let here = super::here(&method, &uri);
                prop_assert!(here.starts_with('/') && !here.starts_with("//") && !here.starts_with("/\\"), "{raw:?} → {here:?}");
                let query = here.split_once('?').map(|(_, q)| q).unwrap_or_default();
                prop_assert!(url::form_urlencoded::parse(query.as_bytes()).all(|(k, _)| k != "lang"));
            }
        }

        #[test]
        fn a_cookie_header_of_any_bytes_gives_a_value_it_holds_or_none(bytes in proptest::collection::vec(any::<u8>(), 0..80), name in "[a-z_]{1,6}") {
            let Ok(value) = HeaderValue::from_bytes(&bytes) else { return Ok(()) };
            let mut headers = axum::http::HeaderMap::new();
            headers.append(header::COOKIE, value);
            if let Some(found) = super::cookie(&headers, &name) {
                prop_assert!(String::from_utf8_lossy(&bytes).contains(found));
            }
        }
    }

    #[test]
    fn the_language_switch_never_leads_off_site() {
        for hostile in [
            "//evil.example/x",
            "/\\evil.example/x",
            "//evil.example/x?lang=en",
        ] {
            let uri: Uri = hostile.parse().unwrap();
            assert_eq!(super::here(&Method::GET, &uri), "/", "{hostile}");
        }
        let uri: Uri = "/password/reset?t=abc&lang=fr".parse().unwrap();
        assert_eq!(super::here(&Method::GET, &uri), "/password/reset?t=abc");
    }

    #[test]
    fn a_cookie_is_found_among_others_and_in_any_cookie_header() {
        let mut headers = axum::http::HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=1; broken; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("guichet_lang=en"));
        assert_eq!(super::cookie(&headers, "b"), Some("2"));
        assert_eq!(super::cookie(&headers, "guichet_lang"), Some("en"));
        assert_eq!(super::cookie(&headers, "guichet"), None);
    }
}
