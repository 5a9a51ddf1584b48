//! The CAS demo `guichet dev` serves at `/dev/cas-app`: a page protected as a
//! CAS service (`demo-cas`) that sends the student to `/cas/login`, validates
//! its ticket at `/cas/p3/serviceValidate` over HTTP as any CAS client would,
//! and shows the user and attributes it received. Signing in to `/dev/app`
//! (OIDC) first shows single sign-on across both. Only mounted in dev.

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use serde_json::Value;

use super::error::WebError;
use super::{AppState, Frame};
use crate::cas::services::{NewService, ServiceError};
use crate::store::{StoreError, unix_now};

pub const SERVICE: &str = "demo-cas";

fn page_url(state: &AppState) -> String {
    format!("{}/dev/cas-app", crate::oidc::issuer(state))
}

/// Why the demo service could not be registered.
#[derive(Debug, thiserror::Error)]
pub enum DemoServiceError {
    #[error(transparent)]
    Registry(#[from] ServiceError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Registers the demo service once, with single logout to its own page.
pub async fn register_service(state: &AppState) -> Result<(), DemoServiceError> {
    if state.store.cas_service(SERVICE).await?.is_some() {
        return Ok(());
    }
    let claims = state.settings.oidc.claims.claim_names();
    let released = ["name", "email", "eduperson_affiliation"];
    let new = NewService {
        name: SERVICE.to_owned(),
        display_name: "Démonstration CAS".to_owned(),
        url: Some(page_url(state)),
        attributes: released
            .iter()
            .filter(|claim| claims.contains(claim))
            .map(|claim| (*claim).to_owned())
            .collect(),
        single_logout: Some("service".to_owned()),
        ..NewService::default()
    };
    state
        .store
        .add_cas_service(&new.checked(&claims, unix_now())?)
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct Arrival {
    ticket: Option<String>,
}

/// Without a ticket, a sign-in button; with one, what its validation gave.
pub async fn page(
    State(state): State<AppState>,
    frame: Frame,
    Query(arrival): Query<Arrival>,
) -> Result<Response, WebError> {
    let service = page_url(&state);
    let encoded: String = url::form_urlencoded::byte_serialize(service.as_bytes()).collect();
    let Some(ticket) = arrival.ticket else {
        let page =
            context! { signed_in => false, login => format!("/cas/login?service={encoded}") };
        return Ok(state
            .render("dev_cas_app.html", &frame, page)?
            .into_response());
    };
    let validate = format!("{}/cas/p3/serviceValidate", crate::oidc::issuer(&state));
    let internal = |e: reqwest::Error| WebError::Internal(format!("demo CAS app: {e}"));
    let answer: Value = reqwest::Client::new()
        .get(validate)
        .query(&[
            ("service", service.as_str()),
            ("ticket", ticket.as_str()),
            ("format", "JSON"),
        ])
        .send()
        .await
        .map_err(internal)?
        .json()
        .await
        .map_err(internal)?;
    let page = context! {
        signed_in => true,
        answer => serde_json::to_string_pretty(&answer).unwrap_or_default(),
        logout => format!("/cas/logout?service={encoded}"),
    };
    Ok(state
        .render("dev_cas_app.html", &frame, page)?
        .into_response())
}
