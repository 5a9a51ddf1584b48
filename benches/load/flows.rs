//! What a browser and an application do, step by step, over HTTP. Each step returns
//! the response's outcome when it is not the one the flow needs next, so a refused
//! or failed step ends the flow and is what gets counted.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use serde_json::Value;

use crate::bed::Bed;
use crate::client::REDIRECT;
use crate::run::Outcome;

pub type Step<T> = Result<T, Outcome>;

/// A browser of its own (cookies, no redirects followed) on the computer at `from`.
pub fn browser(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(from)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// An application's back end at `from` (no cookies).
pub fn application(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(from)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

async fn send(request: reqwest::RequestBuilder) -> Step<reqwest::Response> {
    request.send().await.map_err(|_| Outcome::Error)
}

/// `response` if it has `status`, else its outcome.
fn expect(response: reqwest::Response, status: u16) -> Step<reqwest::Response> {
    if response.status().as_u16() == status {
        Ok(response)
    } else {
        // LOAD_DEBUG=1 says which step stopped a flow, to tell a refusal from a bench bug.
        if std::env::var_os("LOAD_DEBUG").is_some() {
            eprintln!(
                "{} {} (expected {status})",
                response.url().path(),
                response.status()
            );
        }
        Err(Outcome::of(&response))
    }
}

async fn text(response: reqwest::Response) -> Step<String> {
    response.text().await.map_err(|_| Outcome::Error)
}

/// The path and query a redirect points to, on the bench's base address.
fn location(bed: &Bed, response: &reqwest::Response) -> Step<String> {
    let to = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(Outcome::Error)?;
    let mut url = url::Url::parse(&bed.base)
        .and_then(|base| base.join(to))
        .map_err(|_| Outcome::Error)?;
    // Guichet's public URL names localhost; the browsers' cookies are for 127.0.0.1.
    if url.host_str() == Some("localhost") {
        url.set_host(Some("127.0.0.1"))
            .map_err(|_| Outcome::Error)?;
    }
    Ok(url.to_string())
}

fn field(html: &str, name: &str) -> Step<String> {
    html.split(&format!("name=\"{name}\" value=\""))
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .map(str::to_owned)
        .ok_or(Outcome::Error)
}

/// The login page, then its form posted; the response to the post.
pub async fn sign_in(
    bed: &Bed,
    browser: &reqwest::Client,
    page: &str,
    login: &str,
    password: &str,
) -> Step<reqwest::Response> {
    let form = expect(send(browser.get(page)).await?, 200)?;
    let html = text(form).await?;
    // The page's own `next` (the request to come back to), unescaped, as the form posts it.
    let next = url::Url::parse(page)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "next")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_else(|| "/account".to_owned());
    let fields = [
        ("csrf", field(&html, "csrf")?),
        ("next", next),
        ("login", login.to_owned()),
        ("password", password.to_owned()),
    ];
    send(browser.post(format!("{}/login", bed.base)).form(&fields)).await
}

/// A sign-in on the plain login page; its outcome (303 when signed in).
pub async fn sign_in_outcome(
    bed: &Bed,
    browser: &reqwest::Client,
    login: &str,
    password: &str,
) -> Outcome {
    let page = format!("{}/login", bed.base);
    match sign_in(bed, browser, &page, login, password).await {
        Ok(response) => Outcome::of(&response),
        Err(outcome) => outcome,
    }
}

/// The code the redirect to the application carries.
fn code_of(bed: &Bed, response: &reqwest::Response) -> Step<String> {
    let back = url::Url::parse(&location(bed, response)?).map_err(|_| Outcome::Error)?;
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or(Outcome::Error)
}

/// authorize → login page → form posted → authorize again → code.
pub async fn login_for_code(
    bed: &Bed,
    browser: &reqwest::Client,
    login: &str,
    scope: &str,
) -> Step<String> {
    let asked = expect(
        send(browser.get(crate::client::authorize_url(&bed.base, scope))).await?,
        303,
    )?;
    let page = location(bed, &asked)?;
    let signed = expect(
        sign_in(bed, browser, &page, login, crate::bed::PASSWORD).await?,
        303,
    )?;
    let back = expect(send(browser.get(location(bed, &signed)?)).await?, 302)?;
    code_of(bed, &back)
}

/// The single sign-on hop: authorize with a live session → code.
pub async fn silent_code(bed: &Bed, browser: &reqwest::Client, scope: &str) -> Step<String> {
    let back = expect(
        send(browser.get(crate::client::authorize_url(&bed.base, scope))).await?,
        302,
    )?;
    code_of(bed, &back)
}

pub async fn tokens(bed: &Bed, app: &reqwest::Client, form: &[(&str, &str)]) -> Step<Value> {
    let request = app
        .post(format!("{}/token", bed.base))
        .basic_auth("bench", Some(&bed.secret))
        .form(form);
    let answer = expect(send(request).await?, 200)?;
    answer.json().await.map_err(|_| Outcome::Error)
}

pub async fn redeem(bed: &Bed, app: &reqwest::Client, code: &str) -> Step<Value> {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    tokens(bed, app, &form).await
}

pub async fn refresh(bed: &Bed, app: &reqwest::Client, token: &str) -> Step<String> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    let answer = tokens(bed, app, &form).await?;
    string(&answer, "refresh_token")
}

pub fn string(answer: &Value, name: &str) -> Step<String> {
    answer[name]
        .as_str()
        .map(str::to_owned)
        .ok_or(Outcome::Error)
}

pub async fn userinfo(bed: &Bed, app: &reqwest::Client, access: &str) -> Outcome {
    let request = app
        .get(format!("{}/userinfo", bed.base))
        .bearer_auth(access);
    match send(request).await {
        Ok(response) => Outcome::of(&response),
        Err(outcome) => outcome,
    }
}

/// A form page's CSRF value, then the form posted with `fields`; the response.
async fn post_form(
    bed: &Bed,
    browser: &reqwest::Client,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> Step<reqwest::Response> {
    let form = expect(send(browser.get(format!("{}{page}", bed.base))).await?, 200)?;
    let csrf = field(&text(form).await?, "csrf")?;
    let mut all = vec![("csrf", csrf.as_str())];
    all.extend_from_slice(fields);
    send(browser.post(format!("{}{action}", bed.base)).form(&all)).await
}

/// Forgot password → mail → link page → new password saved.
pub async fn reset(bed: &Bed, browser: &reqwest::Client, uid: &str) -> Step<()> {
    let email = format!("{uid}@example.org");
    let fields = [("identifier", email.as_str())];
    let asked = post_form(
        bed,
        browser,
        "/password/forgot",
        "/password/forgot",
        &fields,
    )
    .await?;
    expect(asked, 200)?;
    let token = mailed_token(&bed.mail_dir, &email, "/password/reset").await?;
    let page = format!("/password/reset?t={token}");
    let password = "Magnolia-au-vent-42";
    let fields = [
        ("t", token.as_str()),
        ("password", password),
        ("confirmation", password),
    ];
    expect(
        post_form(bed, browser, &page, "/password/reset", &fields).await?,
        200,
    )?;
    Ok(())
}

/// Activation (Paris Cité: link first) → mail → link page → password chosen.
pub async fn activate(bed: &Bed, browser: &reqwest::Client, uid: &str) -> Step<()> {
    let email = format!("{uid}@example.org");
    let fields = [("email", email.as_str()), ("terms", "accepted")];
    expect(
        post_form(bed, browser, "/activation", "/activation", &fields).await?,
        200,
    )?;
    let token = mailed_token(&bed.mail_dir, &email, "/activation/password").await?;
    let page = format!("/activation/password?t={token}");
    let password = "Magnolia-au-vent-42";
    let fields = [
        ("t", token.as_str()),
        ("password", password),
        ("confirmation", password),
    ];
    expect(
        post_form(bed, browser, &page, "/activation/password", &fields).await?,
        200,
    )?;
    Ok(())
}

/// The token of the link to `path` in the mail to `to`, once the outbox has written
/// it to the dev mail folder (the file transport); waits up to 60 s.
async fn mailed_token(dir: &Path, to: &str, path: &str) -> Step<String> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(token) = find_token(dir, to, path) {
            return Ok(token);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Outcome::Error)
}

fn find_token(dir: &Path, to: &str, path: &str) -> Option<String> {
    let header = format!("To: {to}");
    std::fs::read_dir(dir).ok()?.flatten().find_map(|entry| {
        let raw = std::fs::read_to_string(entry.path()).ok()?;
        if !raw.lines().any(|l| l.trim_end() == header) {
            return None;
        }
        let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
        let body = message.body_text(0)?.into_owned();
        let rest = body.split(&format!("{path}?t=")).nth(1)?;
        rest.split_whitespace().next().map(str::to_owned)
    })
}
