//! Activation pages: parse the forms into domain types, apply the rate limits, call
//! the activation flow, and show its answer.

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
use crate::config::{BirthDate, IdentityMethod};
use crate::domain::{DateOfBirth, Email, Ine, ParseError, PasswordPolicy, StudentId, Token};
use crate::flows::activation::{Activation, NotSent, Opened, Requested, Saved};
use crate::flows::activation_by_ine::{Chosen, Confirmed};
use crate::store::{LinkState, Origin};

/// Every answer to the e-mail step takes at least this long, whether or not an
/// account matched, so timing tells nothing about who studies here.
const EVEN_ANSWER: Duration = Duration::from_millis(300);

fn flow(state: &AppState, origin: Origin) -> Activation<'_> {
    Activation {
        app: &state.app,
        origin,
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

/// The activation link's lifetime in seconds; pages print it with the `duration`
/// filter.
fn lifetime(state: &AppState) -> u64 {
    state.settings.profile.links.activation.as_secs()
}

/// The page for an activation link that no longer works.
fn gone(
    state: &AppState,
    frame: &Frame,
    link: &LinkState,
    token: Option<&Token>,
) -> Result<Response, WebError> {
    link_pages::gone(state, frame, link, token, "/activation", lifetime(state))
}

pub async fn start(State(state): State<AppState>, frame: Frame) -> Result<Html<String>, WebError> {
    if by_ine(&state) {
        let errors = context! { student => (), ine => (), born => () };
        return identify_page(&state, &frame, &RequestForm::default(), errors);
    }
    let errors = context! { email => (), terms => () };
    let page = context! { terms => terms(&state, &frame), email => "", errors };
    state.render("activation_start.html", &frame, page)
}

#[derive(Debug, Default, Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    terms: Option<String>,
    #[serde(default)]
    student: String,
    #[serde(default)]
    ine: String,
    #[serde(default)]
    born: String,
}

/// Whether the profile identifies by student number and INE (Perpignan).
fn by_ine(state: &AppState) -> bool {
    state.settings.profile.identity.method == IdentityMethod::StudentNumberIne
}

pub async fn request(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Form(form): Form<RequestForm>,
) -> Result<Response, WebError> {
    let started = Instant::now();
    if by_ine(&state) {
        return identify(state, client, frame, form, started).await;
    }
    limits::guard(&state, Step::ACTIVATION_REQUEST, client.0, &form.email, async {
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
    let outcome = flow(&state, frame.origin(client))
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
    let page = context! { message => shown, email => email.as_str(), lifetime => lifetime(&state) };
    Ok(state
        .render("activation_sent.html", &frame, page)?
        .into_response())
    })
    .await
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
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    match flow(&state, Origin::default())
        .open(&token, OffsetDateTime::now_utc())
        .await?
    {
        Opened::Form {
            login,
            display_name,
        } => {
            let html = password_page(&state, &frame, &token, &login, &display_name, Vec::new())?;
            Ok(private(StatusCode::OK, html))
        }
        Opened::Gone(link) => gone(&state, &frame, &link, Some(&token)),
    }
}

pub async fn save(
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
        let flow = flow(&state, frame.origin(client));
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
            Saved::Activated { login } => done(&state, frame, &headers, login).await,
            Saved::Refused(violations) => {
                let Opened::Form {
                    login,
                    display_name,
                } = flow.open(&token, now).await?
                else {
                    return gone(&state, &frame, &LinkState::Unknown, Some(&token));
                };
                let violations = violation_lines(violations);
                let frame = frame.for_link(&token);
                let html =
                    password_page(&state, &frame, &token, &login, &display_name, violations)?;
                Ok(private(StatusCode::BAD_REQUEST, html))
            }
            Saved::Gone(link) => gone(&state, &frame, &link, Some(&token)),
        }
    })
    .await
}

/// Perpignan's step 1: student number and INE. Matched or not, the next form shows,
/// after the same time.
async fn identify(
    state: AppState,
    client: Client,
    frame: Frame,
    form: RequestForm,
    started: Instant,
) -> Result<Response, WebError> {
    limits::guard(
        &state,
        Step::ACTIVATION_REQUEST,
        client.0,
        &form.student,
        async {
            let (student, ine) = (form.student.parse::<StudentId>(), form.ine.parse::<Ine>());
            let born = date_of_birth(state.settings.profile.identity.birth_date, &form.born);
            let (Ok(student), Ok(ine), Ok(born)) = (&student, &ine, &born) else {
                let errors = context! {
                    student => student.as_ref().err().map(|e| e.code()),
                    ine => ine.as_ref().err().map(|e| e.code()),
                    born => born.as_ref().err().map(|e| e.code()),
                };
                let html = identify_page(&state, &frame, &form, errors)?;
                return Ok((StatusCode::BAD_REQUEST, html).into_response());
            };
            let token = flow(&state, frame.origin(client))
                .identify(student, ine, *born, OffsetDateTime::now_utc())
                .await?;
            tokio::time::sleep(EVEN_ANSWER.saturating_sub(started.elapsed())).await;
            let frame = frame.for_link(&token);
            let html = choose_page(&state, &frame, &token, "", Vec::new(), no_errors())?;
            Ok(private(StatusCode::OK, html))
        },
    )
    .await
}

fn no_errors() -> Value {
    context! { email => (), terms => () }
}

/// Perpignan's step 2 shown again (GET), after a language switch. Any well-formed
/// token gets the form, matched or not, as after step 1.
pub async fn choosing(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    let html = choose_page(&state, &frame, &token, "", Vec::new(), no_errors())?;
    Ok(private(StatusCode::OK, html))
}

/// The last page of an activation. Its language switch leads home: the form behind
/// it is used up.
/// The account is active: the browser that activated it is trusted for it (the
/// student proved the mailbox; strangers guessing the new password never slow her).
async fn done(
    state: &AppState,
    frame: Frame,
    headers: &HeaderMap,
    login: String,
) -> Result<Response, WebError> {
    let frame = frame.switching_to("/".to_owned());
    let html = state.render("activation_done.html", &frame, context! { login })?;
    let mut response = private(StatusCode::OK, html);
    devices::remember(state, headers, &login, &mut response).await;
    Ok(response)
}

/// The date of birth as the profile asks for it: ignored when off, blank allowed when
/// optional.
fn date_of_birth(rule: BirthDate, raw: &str) -> Result<Option<DateOfBirth>, ParseError> {
    match rule {
        BirthDate::Off => Ok(None),
        BirthDate::Optional if raw.trim().is_empty() => Ok(None),
        BirthDate::Optional | BirthDate::Required => raw.parse().map(Some),
    }
}

fn identify_page(
    state: &AppState,
    frame: &Frame,
    form: &RequestForm,
    errors: Value,
) -> Result<Html<String>, WebError> {
    let born_field = match state.settings.profile.identity.birth_date {
        BirthDate::Off => None,
        BirthDate::Optional => Some("optional"),
        BirthDate::Required => Some("required"),
    };
    let page = context! {
        student => form.student.trim(), ine => form.ine.trim(), born => form.born.trim(),
        born_field, errors,
    };
    state.render("activation_identify.html", frame, page)
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

/// A password and a token: no `Debug`, so neither can reach a log.
#[derive(Deserialize)]
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
    client: Client,
    frame: Frame,
    Form(form): Form<ChooseForm>,
) -> Result<Response, WebError> {
    let started = Instant::now();
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    limits::guard(&state, Step::LINK, client.0, &form.t, async {
    let frame = frame.for_link(&token);
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
        return Ok(private(StatusCode::BAD_REQUEST, html));
    };
    if !accepted {
        let errors = context! { email => (), terms => "activation.terms.required" };
        let html = choose_page(&state, &frame, &token, email.as_str(), Vec::new(), errors)?;
        return Ok(private(StatusCode::BAD_REQUEST, html));
    }
    let now = OffsetDateTime::now_utc();
    match flow(&state, frame.origin(client))
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
            let page = context! { message => "activation.confirm.sent", email => email.as_str(), lifetime => lifetime(&state) };
            let frame = frame.switching_to("/".to_owned());
            Ok(state
                .render("activation_sent.html", &frame, page)?
                .into_response())
        }
        Chosen::Refused(violations) => {
            let violations = violation_lines(violations);
            let html = choose_page(
                &state,
                &frame,
                &token,
                email.as_str(),
                violations,
                no_errors(),
            )?;
            Ok(private(StatusCode::BAD_REQUEST, html))
        }
        Chosen::Gone(link) => gone(&state, &frame, &link, Some(&token)),
    }
    })
    .await
}

/// Perpignan's step 3 (GET): a button, so that a mail scanner opening the link does
/// not activate the account.
pub async fn confirmation(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<LinkQuery>,
) -> Result<Response, WebError> {
    let Ok(token) = query.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    match flow(&state, Origin::default())
        .confirmation(&token, OffsetDateTime::now_utc())
        .await?
    {
        LinkState::Live(_) => {
            let html = state.render(
                "activation_confirm.html",
                &frame,
                context! { token => token.expose() },
            )?;
            Ok(private(StatusCode::OK, html))
        }
        other => gone(&state, &frame, &other, Some(&token)),
    }
}

/// A token: no `Debug`, so it cannot reach a log.
#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    t: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    headers: HeaderMap,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, WebError> {
    let Ok(token) = form.t.parse::<Token>() else {
        return gone(&state, &frame, &LinkState::Unknown, None);
    };
    limits::guard(&state, Step::LINK, client.0, &form.t, async {
        match flow(&state, frame.origin(client))
            .confirm(&token, frame.0.lang, OffsetDateTime::now_utc())
            .await?
        {
            Confirmed::Activated { login } => done(&state, frame, &headers, login).await,
            Confirmed::Gone(link) => gone(&state, &frame, &link, Some(&token)),
        }
    })
    .await
}
