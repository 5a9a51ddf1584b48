//! Static files built into the binary, and the theme stylesheet made from the
//! profile's colours (a stylesheet, so the CSP can forbid inline styles).

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::WebError;

const FILES: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../static/style.css"),
    ),
    (
        "logo.svg",
        "image/svg+xml",
        include_str!("../../static/logo.svg"),
    ),
    (
        "password.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/password.js"),
    ),
    (
        "autopost.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/autopost.js"),
    ),
];

/// Browsers ask for `/favicon.ico` on their own; the pages name the logo as their
/// icon, and this answers the stray request without an error page.
pub async fn favicon() -> Response {
    (
        [(CACHE_CONTROL, "public, max-age=86400")],
        axum::http::StatusCode::NO_CONTENT,
    )
        .into_response()
}

pub async fn file(Path(name): Path<String>) -> Result<Response, WebError> {
    let (_, content_type, body) = FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .ok_or(WebError::NotFound)?;
    Ok((
        [
            (CONTENT_TYPE, *content_type),
            (CACHE_CONTROL, "public, max-age=3600"),
        ],
        *body,
    )
        .into_response())
}

pub async fn theme(State(state): State<AppState>) -> Response {
    let branding = &state.settings.profile.branding;
    let css = format!(
        ":root {{ --primary: {}; --accent: {}; }}\n",
        branding.primary_color.as_str(),
        branding.accent_color.as_str()
    );
    (
        [
            (CONTENT_TYPE, "text/css; charset=utf-8"),
            (CACHE_CONTROL, "public, max-age=300"),
        ],
        css,
    )
        .into_response()
}
