//! CAS helpers shared by the CAS tests: registering services, the browser's
//! part of a login, and reading the server's answers.

use guichet::cas::services::NewService;

use super::TestApp;
use super::oidc::{location, login_next, query_of, signs_in_and_returns};

/// The ENT's service URL, as uPortal sends it.
pub const ENT: &str = "https://ent.univ-demo.fr/uPortal/Login";

/// A service matched by its exact URL, releasing `attributes`; a test sets the
/// other fields with `..exact(…)`.
pub fn exact(name: &str, url: &str, attributes: &[&str]) -> NewService {
    NewService {
        name: name.to_owned(),
        display_name: name.to_owned(),
        url: Some(url.to_owned()),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        ..NewService::default()
    }
}

/// Registers `service` as `guichet cas-services add` does.
pub async fn register(app: &TestApp, service: NewService) {
    let claims = app.state.settings.oidc.claims.claim_names();
    let service = service
        .checked(&claims, guichet::store::unix_now())
        .unwrap();
    assert!(app.state.store.add_cas_service(&service).await.unwrap());
}

/// `/cas/login?service=…` with extra parameters.
pub fn login_url(service: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", service);
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    format!("/cas/login?{}", query.finish())
}

/// The ticket in the address the browser is sent to, which must be `service`'s.
pub fn ticket_in(to_service: &str, service: &str) -> String {
    assert!(to_service.starts_with(service), "{to_service}");
    let pairs = query_of(to_service);
    pairs
        .iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no ticket in {to_service}"))
}

/// The student opens the service with no session: the login page, then back
/// through `/cas/login` to the service with a ticket.
pub async fn signs_in_for_ticket(app: &TestApp, service: &str, extra: &[(&str, &str)]) -> String {
    let first = app.get(&login_url(service, extra)).await;
    assert_eq!(
        first.status(),
        reqwest::StatusCode::SEE_OTHER,
        "to the login page"
    );
    let to_service = signs_in_and_returns(app, &login_next(&location(&first))).await;
    ticket_in(&to_service, service)
}

/// A ticket from the live session, without the login page.
pub async fn sso_ticket(app: &TestApp, service: &str) -> String {
    let response = app.get(&login_url(service, &[])).await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::FOUND,
        "straight to the service"
    );
    ticket_in(&location(&response), service)
}

/// A validation endpoint's answer (`/cas/p3/serviceValidate` …) to `pairs`.
pub async fn validation(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let response = app.get(&format!("/cas{path}?{}", query.finish())).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.text().await.unwrap()
}

/// The text of the first `<cas:{tag}>` element of an answer.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<cas:{tag}");
    let start = xml.find(&open)?;
    let body = &xml[start + open.len()..];
    let body = &body[body.find('>')? + 1..];
    let end = body.find(&format!("</cas:{tag}>"))?;
    Some(body[..end].trim().to_owned())
}

/// The failure code of an answer, if it is a failure.
pub fn failure_code(xml: &str) -> Option<String> {
    let start = xml.find("code=\"")? + "code=\"".len();
    let end = xml[start..].find('"')?;
    Some(xml[start..start + end].to_owned())
}
