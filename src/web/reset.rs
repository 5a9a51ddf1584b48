//! Forgot-password pages: the request form, the same "check your mail" answer for
//! everyone, and the new-password form behind the mailed link.

use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;
use time::OffsetDateTime;

use super::client::Client;
use super::error::WebError;
use super::limits::Step;
use super::link_pages::{self, LinkQuery, PasswordForm, private, rule_lines, violation_lines};
use super::{AppState, Frame, devices, limits};
use crate::config::ResetIdentifier;
use crate::domain::{PasswordPolicy, Token};
use crate::flows::reset::{Changed, Identifier, Opened, Reset};
use crate::store::LinkState;

/// Every answer to the request takes at least this long, whatever the account.
const EVEN_ANSWER: Duration = Duration::from_millis(300);

fn flow<'a>(state: &'a AppState, client: Client, frame: &Frame) -> Reset<'a> {
    Reset {
        app: &state.app,
        origin: frame.origin(client),
    }
}

/// The link's lifetime in seconds; pages print it with the `duration` filter.
fn lifetime(state: &AppState) -> u64 {
    state.settings.profile.links.reset.as_secs()
}

fn gone(
    state: &AppState,
    frame: &Frame,
    link: &LinkState,
    token: Option<&Token>,
) -> Result<Response, WebError> {
    link_pages::gone(
        state,
        frame,
        link,
        token,
        "/password/forgot",
        lifetime(state),
    )
}

/// The label of the identifier field: what this profile accepts.
fn identifier_label(state: &AppState) -> &'static str {
    match state.settings.profile.reset.identifiers.as_slice() {
        [ResetIdentifier::PersonalEmail] => "reset.forgot.email",
        _ => "reset.forgot.any",
    }
}

fn forgot_page(
    state: &AppState,
    frame: &Frame,
    typed: &str,
    error: Option<&str>,
) -> Result<Html<String>, WebError> {
    let page = context! { label => identifier_label(state), typed, error };
    state.render("password_forgot.html", frame, page)
}

pub async fn forgot(State(state): State<AppState>, frame: Frame) -> Result<Html<String>, WebError> {
    forgot_page(&state, &frame, "", None)
}

#[derive(Debug, Deserialize)]
pub struct ForgotForm {
    #[serde(default)]
    identifier: String,
}

pub async fn request(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Form(form): Form<ForgotForm>,
) -> Result<Response, WebError> {
    let started = Instant::now();
    limits::guard(
        &state,
        Step::RESET_REQUEST,
        client.0,
        &form.identifier,
        async {
            let allowed = &state.settings.profile.reset.identifiers;
            let Some(identifier) = Identifier::parse(&form.identifier, allowed) else {
                let error = if identifier_label(&state) == "reset.forgot.email" {
                    "reset.forgot.email_invalid"
                } else {
                    "reset.forgot.any_invalid"
                };
                let html = forgot_page(&state, &frame, form.identifier.trim(), Some(error))?;
                return Ok((StatusCode::BAD_REQUEST, html).into_response());
            };
            flow(&state, client, &frame)
                .request(&identifier, frame.0.lang, OffsetDateTime::now_utc())
                .await?;
            tokio::time::sleep(EVEN_ANSWER.saturating_sub(started.elapsed())).await;
            let page = context! { lifetime => lifetime(&state) };
            Ok(state
                .render("password_sent.html", &frame, page)?
                .into_response())
        },
    )
    .await
}

fn reset_page(
    state: &AppState,
    frame: &Frame,
    token: &Token,
    login: &str,
    violations: Vec<Value>,
) -> Result<Html<String>, WebError> {
    let policy = PasswordPolicy::new(state.settings.profile.password.clone());
    let page = context! {
        token => token.expose(),
        login, violations,
        rules => rule_lines(&policy),
        specials => policy.allowed_specials(),
    };
    state.render("password_reset.html", frame, page)
}

pub async fn open(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    match flow(&state, client, &frame)
        .open(&token, OffsetDateTime::now_utc())
        .await?
    {
        Opened::Form { login } => Ok(private(
            StatusCode::OK,
            reset_page(&state, &frame, &token, &login, Vec::new())?,
        )),
        Opened::Gone(link) => gone(&state, &frame, &link, Some(&token)),
    }
}

pub async fn change(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    limits::guard(&state, Step::LINK, client.0, &form.t, async {
        let now = OffsetDateTime::now_utc();
        let flow = flow(&state, client, &frame);
        match flow
            .change(
                &token,
                &form.password,
                &form.confirmation,
                frame.0.lang,
                now,
            )
            .await?
        {
            Changed::Done { login, .. } => {
                let html = state.render(
                    "password_done.html",
                    &frame,
                    context! { login, signed_in => false },
                )?;
                // The way out of a throttled login: the browser that proved the
                // mailbox is trusted for the account from now on.
                let mut response = private(StatusCode::OK, html);
                devices::remember(&state, &headers, &login, &mut response).await;
                Ok(response)
            }
            Changed::Refused(violations) => {
                let Opened::Form { login } = flow.open(&token, now).await? else {
                    return gone(&state, &frame, &LinkState::Unknown, Some(&token));
                };
                let frame = frame.for_link(&token);
                let html = reset_page(&state, &frame, &token, &login, violation_lines(violations))?;
                Ok(private(StatusCode::BAD_REQUEST, html))
            }
            Changed::Gone(link) => gone(&state, &frame, &link, Some(&token)),
        }
    })
    .await
}
