//! What every page behind a mailed link shares: the link's token in queries and
//! forms, the "link gone" page, no caching, and the password rules as pages list them.

use axum::http::StatusCode;
use axum::http::header::CACHE_CONTROL;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;

use super::error::WebError;
use super::{AppState, Frame};
use crate::domain::{PasswordPolicy, Token, Violation};
use crate::store::LinkState;

/// The link's token: no `Debug`, so it cannot reach a log.
#[derive(Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    pub t: String,
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    pub t: String,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub confirmation: String,
}

/// Never prints the passwords (nor the link's token).
impl std::fmt::Debug for PasswordForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordForm").finish_non_exhaustive()
    }
}

/// The page for a link that no longer works, saying which case it is and where to
/// start again. Its language switch shows the same page again (the link's GET
/// page, `token` in its query), in the other language.
pub fn gone(
    state: &AppState,
    frame: &Frame,
    link: &LinkState,
    token: Option<&Token>,
    restart: &str,
    lifetime: u64,
) -> Result<Response, WebError> {
    let reason = match link {
        LinkState::Expired => "link.expired",
        LinkState::Used => "link.used",
        LinkState::Voided => "link.voided",
        LinkState::Unknown | LinkState::Live(_) => "link.unknown",
    };
    let page = context! { reason, lifetime, restart };
    let frame = match token {
        Some(token) => frame.clone().for_link(token),
        // No token of ours: the page's address without one says the same.
        None => frame.clone(),
    };
    let html = state.render("link_gone.html", &frame, page)?;
    // Its language switch holds the token: never kept by a browser or proxy.
    Ok(private(StatusCode::GONE, html))
}

/// A page that holds a link's token: never kept by the browser or a proxy.
pub fn private(status: StatusCode, html: Html<String>) -> Response {
    (status, [(CACHE_CONTROL, "no-store")], html).into_response()
}

/// The GET page a token-holding form page can be shown again at, in another language.
pub fn again(path: &str, token: &Token) -> String {
    format!("{path}?t={}", token.expose())
}

/// The profile's rules as the page lists them: a text key and its number.
pub fn rule_lines(policy: &PasswordPolicy) -> Vec<Value> {
    policy
        .describe()
        .into_iter()
        .map(|(key, n)| context! { key, n => n.map(|n| n.to_string()).unwrap_or_default() })
        .collect()
}

/// The broken rules, in the same shape, each with the field it is about.
pub fn violation_lines(violations: Vec<Violation>) -> Vec<Value> {
    violations
        .into_iter()
        .map(|v| {
            let field = match v {
                Violation::ConfirmationMismatch => "confirmation",
                _ => "password",
            };
            context! { key => v.code(), n => v.number().map(|n| n.to_string()).unwrap_or_default(), field }
        })
        .collect()
}
