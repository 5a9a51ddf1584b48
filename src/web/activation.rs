//! Activation pages: parse the forms into domain types, apply the rate limits, call
//! the activation flow, and show its answer.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Value, context};
use serde::Deserialize;
use time::OffsetDateTime;

use super::error::WebError;
use super::{AppState, Frame, limits};
use crate::config::IdentityMethod;
use crate::domain::{Email, Ine, PasswordPolicy, StudentId, Token, Violation};
use crate::flows::activation::{Activation, NotSent, Opened, Requested, Saved};
use crate::flows::activation_by_ine::{Chosen, Confirmed};
use crate::store::LinkState;

/// Every answer to the e-mail step takes at least this long, whether or not an
/// account matched, so timing tells nothing about who studies here.
const EVEN_ANSWER: Duration = Duration::from_millis(300);

fn flow(state: &AppState) -> Activation<'_> {
    Activation {
        store: &state.store,
        directory: &state.directory,
        profile: &state.settings.profile,
        public_url: &state.settings.server.public_url,
        outbox: state.outbox.waker(),
    }
}

fn terms(state: &AppState, frame: &Frame) -> Value {
    let terms = &state.settings.profile.terms;
    let lang = frame.0.lang;
    context! {
        title => terms.title.get(lang),
        text => terms.text.get(lang),
        url => terms.url.as_ref().map(|u| u.as_str()),
        version => &terms.version,
    }
}

/// The profile's rules as the page lists them: a text key and its number.
fn rule_lines(policy: &PasswordPolicy) -> Vec<Value> {
    policy
        .describe()
        .into_iter()
        .map(|(key, n)| context! { key, n => n.map(|n| n.to_string()).unwrap_or_default() })
        .collect()
}

/// The broken rules, in the same shape.
fn violation_lines(violations: Vec<Violation>) -> Vec<Value> {
    violations
        .into_iter()
        .map(|v| context! { key => v.code(), n => v.number().map(|n| n.to_string()).unwrap_or_default() })
        .collect()
}

/// The activation link's lifetime in hours, as pages print it.
fn hours(state: &AppState) -> String {
    (state.settings.profile.links.activation.as_secs() / 3600).to_string()
}

pub async fn start(State(state): State<AppState>, frame: Frame) -> Result<Html<String>, WebError> {
    if by_ine(&state) {
        let errors = context! { student => (), ine => () };
        return state.render(
            "activation_identify.html",
            &frame,
            context! { student => "", ine => "", errors },
        );
    }
    let errors = context! { email => (), terms => () };
    let page = context! { terms => terms(&state, &frame), email => "", errors };
    state.render("activation_start.html", &frame, page)
}

#[derive(Debug, Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    terms: Option<String>,
    #[serde(default)]
    student: String,
    #[serde(default)]
    ine: String,
}

/// Whether the profile identifies by student number and INE (Perpignan).
fn by_ine(state: &AppState) -> bool {
    state.settings.profile.identity.method == IdentityMethod::StudentNumberIne
}

pub async fn request(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    frame: Frame,
    Form(form): Form<RequestForm>,
) -> Result<Response, WebError> {
    let started = Instant::now();
    if by_ine(&state) {
        return identify(state, client, frame, form, started).await;
    }
    limits::check(&state, "activation", client.ip(), &form.email).await?;
    let email = form.email.parse::<Email>();
    let accepted = form.terms.as_deref() == Some("accepted");
    if email.is_err() || !accepted {
        let errors = context! {
            email => email.as_ref().err().map(|e| e.code()),
            terms => (!accepted).then_some("activation.terms.required"),
        };
        let page = context! { terms => terms(&state, &frame), email => form.email.trim(), errors };
        let html = state.render("activation_start.html", &frame, page)?;
        return Ok((StatusCode::BAD_REQUEST, html).into_response());
    }
    let email = email.map_err(|e| WebError::BadRequest(e.to_string()))?;
    let outcome = flow(&state)
        .request(&email, frame.0.lang, OffsetDateTime::now_utc())
        .await?;
    let reveal = state.settings.profile.identity.reveal_account_status;
    let shown = match outcome {
        Requested::NotSent(reason) if reveal => match reason {
            NotSent::Unknown => "activation.sent.unknown",
            NotSent::AlreadyActive => "activation.sent.already_active",
            NotSent::Refused | NotSent::Ambiguous => "activation.sent.refused",
        },
        _ => "activation.sent.body",
    };
    tokio::time::sleep(EVEN_ANSWER.saturating_sub(started.elapsed())).await;
    let page = context! { message => shown, email => email.as_str(), hours => hours(&state) };
    Ok(state
        .render("activation_sent.html", &frame, page)?
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct LinkQuery {
    #[serde(default)]
    t: String,
}

/// The page for a link that no longer works, saying which case it is.
fn gone(state: &AppState, frame: &Frame, link: &LinkState) -> Result<Response, WebError> {
    let reason = match link {
        LinkState::Expired => "link.expired",
        LinkState::Used => "link.used",
        LinkState::Voided => "link.voided",
        LinkState::Unknown | LinkState::Live(_) => "link.unknown",
    };
    let page = context! { reason, hours => hours(state), restart => "/activation" };
    let html = state.render("link_gone.html", frame, page)?;
    Ok((StatusCode::GONE, html).into_response())
}

fn password_page(
    state: &AppState,
    frame: &Frame,
    token: &Token,
    login: &str,
    display_name: &str,
    violations: Vec<Value>,
) -> Result<Html<String>, WebError> {
    let policy = PasswordPolicy::new(state.settings.profile.password.clone());
    let rules = rule_lines(&policy);
    let page = context! {
        token => token.expose(),
        login, display_name, rules, violations,
        specials => policy.allowed_specials(),
    };
    state.render("activation_password.html", frame, page)
}

pub async fn open(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown);
    };
    match flow(&state).open(&token, OffsetDateTime::now_utc()).await? {
        Opened::Form {
            login,
            display_name,
        } => {
            let html = password_page(&state, &frame, &token, &login, &display_name, Vec::new())?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], html).into_response())
        }
        Opened::Gone(link) => gone(&state, &frame, &link),
    }
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
}

pub async fn save(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    frame: Frame,
    Form(form): Form<PasswordForm>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown);
    };
    limits::check(&state, "activation-password", client.ip(), &form.t).await?;
    let now = OffsetDateTime::now_utc();
    let flow = flow(&state);
    match flow
        .save(
            &token,
            &form.password,
            &form.confirmation,
            frame.0.lang,
            now,
        )
        .await?
    {
        Saved::Activated { login } => {
            let html = state.render("activation_done.html", &frame, context! { login })?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], html).into_response())
        }
        Saved::Refused(violations) => {
            let Opened::Form {
                login,
                display_name,
            } = flow.open(&token, now).await?
            else {
                return gone(&state, &frame, &LinkState::Unknown);
            };
            let violations = violation_lines(violations);
            let html = password_page(&state, &frame, &token, &login, &display_name, violations)?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
        Saved::Gone(link) => gone(&state, &frame, &link),
    }
}

/// Perpignan's step 1: student number and INE. Matched or not, the next form shows,
/// after the same time.
async fn identify(
    state: AppState,
    client: SocketAddr,
    frame: Frame,
    form: RequestForm,
    started: Instant,
) -> Result<Response, WebError> {
    limits::check(&state, "activation", client.ip(), &form.student).await?;
    let (student, ine) = (form.student.parse::<StudentId>(), form.ine.parse::<Ine>());
    let (Ok(student), Ok(ine)) = (&student, &ine) else {
        let errors = context! {
            student => student.as_ref().err().map(|e| e.code()),
            ine => ine.as_ref().err().map(|e| e.code()),
        };
        let page = context! { student => form.student.trim(), ine => form.ine.trim(), errors };
        let html = state.render("activation_identify.html", &frame, page)?;
        return Ok((StatusCode::BAD_REQUEST, html).into_response());
    };
    let token = flow(&state)
        .identify(student, ine, OffsetDateTime::now_utc())
        .await?;
    tokio::time::sleep(EVEN_ANSWER.saturating_sub(started.elapsed())).await;
    Ok(choose_page(
        &state,
        &frame,
        &token,
        "",
        Vec::new(),
        context! { email => (), terms => () },
    )?
    .into_response())
}

fn choose_page(
    state: &AppState,
    frame: &Frame,
    token: &Token,
    email: &str,
    violations: Vec<Value>,
    errors: Value,
) -> Result<Html<String>, WebError> {
    let policy = PasswordPolicy::new(state.settings.profile.password.clone());
    let rules = rule_lines(&policy);
    let page = context! {
        token => token.expose(), email, rules, violations, errors,
        terms => terms(state, frame),
        specials => policy.allowed_specials(),
    };
    state.render("activation_choose.html", frame, page)
}

#[derive(Debug, Deserialize)]
pub struct ChooseForm {
    #[serde(default)]
    t: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    confirmation: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    terms: Option<String>,
}

/// Perpignan's step 2: password, personal e-mail, terms.
pub async fn choose(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    frame: Frame,
    Form(form): Form<ChooseForm>,
) -> Result<Response, WebError> {
    let started = Instant::now();
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown);
    };
    limits::check(&state, "activation-choose", client.ip(), &form.t).await?;
    let email = form.email.parse::<Email>();
    let accepted = form.terms.as_deref() == Some("accepted");
    let Ok(email) = email else {
        let errors = context! { email => email.err().map(|e| e.code()), terms => (!accepted).then_some("activation.terms.required") };
        let html = choose_page(
            &state,
            &frame,
            &token,
            form.email.trim(),
            Vec::new(),
            errors,
        )?;
        return Ok((StatusCode::BAD_REQUEST, html).into_response());
    };
    if !accepted {
        let errors = context! { email => (), terms => "activation.terms.required" };
        let html = choose_page(&state, &frame, &token, email.as_str(), Vec::new(), errors)?;
        return Ok((StatusCode::BAD_REQUEST, html).into_response());
    }
    let now = OffsetDateTime::now_utc();
    match flow(&state)
        .choose(
            &token,
            &form.password,
            &form.confirmation,
            &email,
            frame.0.lang,
            now,
        )
        .await?
    {
        Chosen::Sent => {
            tokio::time::sleep(EVEN_ANSWER.saturating_sub(started.elapsed())).await;
            let page = context! { message => "activation.confirm.sent", email => email.as_str(), hours => hours(&state) };
            Ok(state
                .render("activation_sent.html", &frame, page)?
                .into_response())
        }
        Chosen::Refused(violations) => {
            let violations = violation_lines(violations);
            let errors = context! { email => (), terms => () };
            let html = choose_page(&state, &frame, &token, email.as_str(), violations, errors)?;
            Ok((StatusCode::BAD_REQUEST, html).into_response())
        }
        Chosen::Gone(link) => gone(&state, &frame, &link),
    }
}

/// Perpignan's step 3 (GET): a button, so that a mail scanner opening the link does
/// not activate the account.
pub async fn confirmation(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown);
    };
    match flow(&state)
        .confirmation(&token, OffsetDateTime::now_utc())
        .await?
    {
        LinkState::Live(_) => {
            let html = state.render(
                "activation_confirm.html",
                &frame,
                context! { token => token.expose() },
            )?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], html).into_response())
        }
        other => gone(&state, &frame, &other),
    }
}

#[derive(Debug, Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    t: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    frame: Frame,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown);
    };
    limits::check(&state, "activation-confirm", client.ip(), &form.t).await?;
    match flow(&state)
        .confirm(&token, frame.0.lang, OffsetDateTime::now_utc())
        .await?
    {
        Confirmed::Activated { login } => {
            let html = state.render("activation_done.html", &frame, context! { login })?;
            Ok(([(axum::http::header::CACHE_CONTROL, "no-store")], html).into_response())
        }
        Confirmed::Gone(link) => gone(&state, &frame, &link),
    }
}
