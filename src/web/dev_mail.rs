//! `/dev/mail`: the dev mailbox of `guichet dev`. Routed only when
//! `server.dev_mailbox` is set, which only `guichet dev` does.

use std::path::PathBuf;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;

use super::error::WebError;
use super::{AppState, Frame};
use crate::mail::mailbox;

#[derive(Debug, Clone)]
pub struct MailboxDir(pub PathBuf);

pub async fn list(
    State(state): State<AppState>,
    Extension(MailboxDir(dir)): Extension<MailboxDir>,
    frame: Frame,
) -> Result<Html<String>, WebError> {
    let letters = mailbox::list(&dir).map_err(|e| WebError::Internal(e.to_string()))?;
    state.render("dev_mail_list.html", &frame, context! { letters })
}

pub async fn show(
    State(state): State<AppState>,
    Extension(MailboxDir(dir)): Extension<MailboxDir>,
    Path(id): Path<String>,
    frame: Frame,
) -> Result<Html<String>, WebError> {
    let letter = mailbox::read(&dir, &id)
        .map_err(|e| WebError::Internal(e.to_string()))?
        .ok_or(WebError::NotFound)?;
    state.render("dev_mail_show.html", &frame, context! { letter })
}

/// The HTML part as sent, sandboxed: no script, no form, no same-origin access.
pub async fn html(
    Extension(MailboxDir(dir)): Extension<MailboxDir>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let html = mailbox::read(&dir, &id)
        .map_err(|e| WebError::Internal(e.to_string()))?
        .and_then(|letter| letter.html)
        .ok_or(WebError::NotFound)?;
    Ok((
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                CONTENT_SECURITY_POLICY,
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
            ),
        ],
        html,
    )
        .into_response())
}
