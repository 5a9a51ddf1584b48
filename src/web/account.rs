//! The signed-in student's pages: their account, the change of password, and the
//! change of personal e-mail (requested signed in; confirmed by the link sent to
//! the new address, signed in or not, since students often open mail on another
//! device).

use axum::Form;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use time::OffsetDateTime;

use super::client::Client;
use super::devices::{self, Trust};
use super::error::WebError;
use super::limits::{Step, Verdict};
use super::link_pages::{self, LinkQuery, private, rule_lines, violation_lines};
use super::session::Student;
use super::{AppState, Frame, limits};
use crate::domain::{Email, Password, PasswordPolicy, Token};
use crate::flows::email_change::{CancelView, Cancelled, Confirmed, EmailChange, Proof, Requested};
use crate::flows::password_change::{PasswordChange, PasswordChanged};
use crate::store::{LinkState, Origin};

fn flow(state: &AppState, origin: Origin) -> EmailChange<'_> {
    EmailChange {
        app: &state.app,
        origin,
    }
}

/// The link's lifetime in seconds; pages print it with the `duration` filter.
fn lifetime(state: &AppState) -> u64 {
    state.settings.profile.links.email_change.as_secs()
}

fn gone(
    state: &AppState,
    frame: &Frame,
    link: &LinkState,
    token: Option<&Token>,
) -> Result<Response, WebError> {
    link_pages::gone(state, frame, link, token, "/account/email", lifetime(state))
}

pub async fn show(
    State(state): State<AppState>,
    frame: Frame,
    student: Student,
) -> Result<Response, WebError> {
    let account = &student.account;
    let page = context! {
        login => account.login.as_str(),
        display_name => account.display_name.as_deref(),
        personal_email => account.personal_email.as_ref().map(|e| e.as_str()),
        institutional_email => account.institutional_email.as_deref(),
        student_id => account.student_id.as_ref().map(|s| s.as_str()),
    };
    // Personal data, on computers students share: never cached.
    Ok(private(
        StatusCode::OK,
        state.render("account.html", &frame, page)?,
    ))
}

/// `error`: a text key, and the field it is about (`email` or `current`).
fn email_page(
    state: &AppState,
    frame: &Frame,
    student: &Student,
    typed: &str,
    error: Option<(&str, &str)>,
) -> Result<Html<String>, WebError> {
    let current = student.account.personal_email.as_ref().map(|e| e.as_str());
    let ask_password = Proof::needs_password(student.signed_in_at, OffsetDateTime::now_utc());
    let (error, field) = error.unzip();
    state.render(
        "email_change.html",
        frame,
        context! { current, typed, error, field, ask_password },
    )
}

pub async fn email_form(
    State(state): State<AppState>,
    frame: Frame,
    student: Student,
) -> Result<Html<String>, WebError> {
    email_page(&state, &frame, &student, "", None)
}

#[derive(Deserialize)]
pub struct EmailForm {
    #[serde(default)]
    email: String,
    /// Asked for when the sign-in is not recent.
    #[serde(default)]
    current: String,
}

/// Never prints the password.
impl std::fmt::Debug for EmailForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailForm").finish_non_exhaustive()
    }
}

pub async fn email_request(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    student: Student,
    headers: axum::http::HeaderMap,
    Form(form): Form<EmailForm>,
) -> Result<Response, WebError> {
    let login = student.account.login.as_str();
    let stranger = Trust::Stranger;
    let asked = limits::begin(&state, Step::EMAIL_CHANGE, client.0, login, &stranger).await?;
    let typed = form.email.trim();
    let email = match typed.parse::<Email>() {
        Ok(email) => email,
        Err(e) => {
            asked.settle(&state, Verdict::Unchecked).await;
            let html = email_page(&state, &frame, &student, typed, Some((e.code(), "email")))?;
            return Ok((StatusCode::BAD_REQUEST, html).into_response());
        }
    };
    let now = OffsetDateTime::now_utc();
    // A current password typed here counts like a sign-in's: a session found open
    // on a shared computer is no place to guess it either.
    let checked = if Proof::needs_password(student.signed_in_at, now) {
        let trust = devices::trust(&state, &headers, login).await;
        match limits::begin(&state, Step::SIGN_IN, client.0, login, &trust).await {
            Ok(checked) => Some(checked),
            Err(refused) => {
                asked.settle(&state, Verdict::Unchecked).await;
                return Err(refused);
            }
        }
    } else {
        None
    };
    let current = Password::new(form.current);
    let proof = Proof {
        signed_in_at: student.signed_in_at,
        current: &current,
        session: &student.session,
    };
    let outcome = flow(&state, frame.origin(client))
        .request(&student.account, proof, &email, frame.0.lang, now)
        .await;
    asked.settle(&state, Verdict::of(&outcome, |_| false)).await;
    if let Some(checked) = checked {
        let verdict = Verdict::of(&outcome, |o| *o == Requested::WrongPassword);
        checked.settle(&state, verdict).await;
    }
    let error = match outcome? {
        Requested::LinkSent => {
            let page = context! { email => email.as_str(), lifetime => lifetime(&state) };
            let html = state.render("email_change_sent.html", &frame, page)?;
            return Ok(private(StatusCode::OK, html));
        }
        Requested::Unchanged => ("email_change.unchanged", "email"),
        Requested::PasswordNeeded => ("email_change.password_needed", "current"),
        Requested::WrongPassword => ("password_change.wrong_current", "current"),
    };
    let html = email_page(&state, &frame, &student, typed, Some(error))?;
    Ok(private(StatusCode::BAD_REQUEST, html))
}

/// The old address's link: what it would cancel, and a button to cancel it.
pub async fn cancellation(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return cancel_outcome(&state, &frame, &Cancelled::Gone(LinkState::Unknown), None);
    };
    match flow(&state, Origin::default())
        .peek_cancel(&token, OffsetDateTime::now_utc())
        .await?
    {
        CancelView::Pending { new_email } => {
            let page = context! { token => token.expose(), new_email };
            let html = state.render("email_change_cancel.html", &frame, page)?;
            Ok(private(StatusCode::OK, html))
        }
        CancelView::Settled(outcome) => cancel_outcome(&state, &frame, &outcome, Some(&token)),
    }
}

pub async fn cancel(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Form(form): Form<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return cancel_outcome(&state, &frame, &Cancelled::Gone(LinkState::Unknown), None);
    };
    limits::guard(&state, Step::LINK, client.0, &form.t, async {
        let outcome = flow(&state, frame.origin(client))
            .cancel(&token, OffsetDateTime::now_utc())
            .await?;
        cancel_outcome(&state, &frame, &outcome, Some(&token))
    })
    .await
}

fn cancel_outcome(
    state: &AppState,
    frame: &Frame,
    outcome: &Cancelled,
    token: Option<&Token>,
) -> Result<Response, WebError> {
    let (status, outcome) = match outcome {
        Cancelled::Cancelled => (StatusCode::OK, "cancelled"),
        Cancelled::AlreadyChanged => (StatusCode::CONFLICT, "already_changed"),
        Cancelled::NothingPending => (StatusCode::OK, "nothing_pending"),
        Cancelled::Gone(link) => return gone(state, frame, link, token),
    };
    let html = state.render("email_change_cancelled.html", frame, context! { outcome })?;
    Ok(private(status, html))
}

pub async fn confirmation(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    match flow(&state, Origin::default())
        .peek(&token, OffsetDateTime::now_utc())
        .await?
    {
        LinkState::Live(record) => {
            let email = record.payload["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let page = context! { token => token.expose(), email };
            let html = state.render("email_change_confirm.html", &frame, page)?;
            Ok(private(StatusCode::OK, html))
        }
        other => gone(&state, &frame, &other, Some(&token)),
    }
}

pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Form(form): Form<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    limits::guard(&state, Step::LINK, client.0, &form.t, async {
        match flow(&state, frame.origin(client))
            .confirm(&token, OffsetDateTime::now_utc())
            .await?
        {
            Confirmed::Changed { email } => {
                let html = state.render("email_change_done.html", &frame, context! { email })?;
                Ok(private(StatusCode::OK, html))
            }
            Confirmed::Gone(link) => gone(&state, &frame, &link, Some(&token)),
        }
    })
    .await
}

fn password_page(
    state: &AppState,
    frame: &Frame,
    student: &Student,
    wrong_current: bool,
    violations: Vec<minijinja::Value>,
) -> Result<Html<String>, WebError> {
    let policy = PasswordPolicy::new(state.settings.profile.password.clone());
    let page = context! {
        login => student.account.login.as_str(),
        wrong_current,
        violations,
        rules => rule_lines(&policy),
        specials => policy.allowed_specials(),
    };
    state.render("password_change.html", frame, page)
}

pub async fn password_form(
    State(state): State<AppState>,
    frame: Frame,
    student: Student,
) -> Result<Response, WebError> {
    let html = password_page(&state, &frame, &student, false, Vec::new())?;
    Ok(private(StatusCode::OK, html))
}

#[derive(Deserialize)]
pub struct PasswordChangeForm {
    #[serde(default)]
    current: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
}

/// Never prints the passwords.
impl std::fmt::Debug for PasswordChangeForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChangeForm").finish_non_exhaustive()
    }
}

pub async fn password_change(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    student: Student,
    headers: axum::http::HeaderMap,
    Form(form): Form<PasswordChangeForm>,
) -> Result<Response, WebError> {
    let login = student.account.login.as_str();
    // Wrong current passwords count like wrong sign-ins: whoever finds a session
    // open on a shared computer may not guess the password here either.
    let trust = devices::trust(&state, &headers, login).await;
    let attempt = limits::begin(&state, Step::SIGN_IN, client.0, login, &trust).await?;
    let change = PasswordChange {
        app: &state.app,
        origin: frame.origin(client),
    };
    let outcome = change
        .change(
            &student.account,
            &student.session,
            &Password::new(form.current),
            (&form.password, &form.confirmation),
            frame.0.lang,
            OffsetDateTime::now_utc(),
        )
        .await;
    let verdict = Verdict::of(&outcome, |o| matches!(o, PasswordChanged::WrongPassword));
    attempt.settle(&state, verdict).await;
    let (wrong, violations) = match outcome? {
        PasswordChanged::Done => {
            let html = state.render(
                "password_done.html",
                &frame,
                context! { login, signed_in => true },
            )?;
            return Ok(private(StatusCode::OK, html));
        }
        PasswordChanged::WrongPassword => (true, Vec::new()),
        PasswordChanged::Refused(violations) => (false, violation_lines(violations)),
    };
    let html = password_page(&state, &frame, &student, wrong, violations)?;
    Ok(private(StatusCode::BAD_REQUEST, html))
}
