//! The help page: a contact form that reaches the helpdesk, rate-limited, and a
//! reference number for the student.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use std::collections::BTreeMap;

use minijinja::context;
use serde::Deserialize;
use time::OffsetDateTime;

use super::client::Client;
use super::error::WebError;
use super::limits::Step;
use super::{AppState, Frame, limits};
use crate::domain::{FieldError, HelpCategory, HelpRequest};
use crate::flows::help::Help;

/// The form's fields, in page order: each has an entry in `errors`, empty or not.
const FIELDS: [&str; 5] = ["name", "identifier", "contact", "category", "message"];

#[derive(Debug, Default, Deserialize)]
pub struct HelpForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    identifier: String,
    #[serde(default)]
    contact: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    message: String,
}

fn help_page(
    state: &AppState,
    frame: &Frame,
    form: &HelpForm,
    problems: &[FieldError],
) -> Result<Html<String>, WebError> {
    let categories: Vec<&str> = HelpCategory::ALL.iter().map(|c| c.as_str()).collect();
    let support = &state.settings.profile.support;
    let errors: BTreeMap<&str, Option<&str>> = FIELDS
        .iter()
        .map(|field| {
            let problem = problems.iter().find(|(f, _)| f == field);
            (*field, problem.map(|(_, e)| e.code()))
        })
        .collect();
    let page = context! {
        name => form.name.trim(),
        identifier => form.identifier.trim(),
        contact => form.contact.trim(),
        category => form.category.trim(),
        message => form.message.as_str(),
        categories, errors,
        invalid => !problems.is_empty(),
        support_url => support.url.as_ref().map(|u| u.as_str()),
    };
    state.render("help.html", frame, page)
}

pub async fn show(State(state): State<AppState>, frame: Frame) -> Result<Html<String>, WebError> {
    help_page(&state, &frame, &HelpForm::default(), &[])
}

pub async fn submit(
    State(state): State<AppState>,
    client: Client,
    frame: Frame,
    Form(form): Form<HelpForm>,
) -> Result<Response, WebError> {
    limits::guard(&state, Step::HELP, client.0, &form.contact, async {
        let request = match HelpRequest::parse(
            &form.name,
            &form.identifier,
            &form.contact,
            &form.category,
            &form.message,
        ) {
            Ok(request) => request,
            Err(problems) => {
                let html = help_page(&state, &frame, &form, &problems)?;
                return Ok((StatusCode::BAD_REQUEST, html).into_response());
            }
        };
        let help = Help {
            store: &state.store,
            directory: &state.directory,
            profile: &state.settings.profile,
            outbox: state.outbox.waker(),
            origin: frame.origin(client),
        };
        let reference = help.submit(&request, OffsetDateTime::now_utc()).await?;
        let page = context! { reference, contact => request.contact.as_str() };
        Ok(state
            .render("help_sent.html", &frame, page)?
            .into_response())
    })
    .await
}
