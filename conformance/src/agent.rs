//! A headless browser: a cookie jar, redirects followed by hand, and a student
//! who fills in the login form and confirms sign-out when asked. It stops as soon
//! as the provider sends it elsewhere (to the relying party), so the runner can
//! read what the provider sent.

use anyhow::{Context as _, Result, bail};
use reqwest::StatusCode;
use reqwest::header::LOCATION;
use url::Url;

/// Where a visit ended.
#[derive(Debug)]
pub enum Landing {
    /// The provider redirected to an address outside its origin.
    Away(Url),
    /// The provider answered with a page of its own.
    Page {
        url: Url,
        status: StatusCode,
        body: String,
    },
}

impl Landing {
    /// Short description for failure messages.
    pub fn describe(&self) -> String {
        match self {
            Landing::Away(url) => format!("redirect to {url}"),
            Landing::Page { url, status, .. } => format!("page {} at {}", status, url.path()),
        }
    }
}

/// A visit's landing, and how many times the login form was filled in on the way.
#[derive(Debug)]
pub struct Journey {
    pub landing: Landing,
    pub logins: usize,
}

pub struct Agent {
    http: reqwest::Client,
    origin: url::Origin,
    login: String,
    password: String,
}

impl Agent {
    pub fn new(issuer: &Url, login: &str, password: &str) -> Result<Agent> {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Agent {
            http,
            origin: issuer.origin(),
            login: login.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Opens `url` and follows the provider's pages, signing in when asked.
    pub async fn visit(&self, url: Url) -> Result<Journey> {
        let response = self.http.get(url.clone()).send().await?;
        self.follow(url, response).await
    }

    /// Posts a form (an authorization request sent by POST) and follows.
    pub async fn post(&self, url: Url, form: &[(String, String)]) -> Result<Journey> {
        let response = self.http.post(url.clone()).form(form).send().await?;
        self.follow(url, response).await
    }

    /// Submits the sign-out confirmation that a page shows.
    pub async fn confirm_logout(&self, page: &Landing) -> Result<Journey> {
        let Landing::Page { url, body, .. } = page else {
            bail!("expected a confirmation page, got {}", page.describe());
        };
        let Some(form) = form_posting_to(body, "/logout") else {
            bail!("the page at {} has no sign-out form", url.path());
        };
        let action = url.join("/logout")?;
        let response = self.http.post(action.clone()).form(&form).send().await?;
        self.follow(action, response).await
    }

    async fn follow(&self, mut url: Url, mut response: reqwest::Response) -> Result<Journey> {
        let mut logins = 0;
        for _ in 0..12 {
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .context("a redirect without Location")?
                    .to_str()?;
                url = url.join(location)?;
                if url.origin() != self.origin {
                    return Ok(Journey {
                        landing: Landing::Away(url),
                        logins,
                    });
                }
                response = self.http.get(url.clone()).send().await?;
                continue;
            }
            let status = response.status();
            let body = response.text().await?;
            match form_posting_to(&body, "/login") {
                Some(mut form) if status.is_success() && logins == 0 => {
                    logins += 1;
                    form.retain(|(k, _)| k != "login" && k != "password");
                    form.push(("login".into(), self.login.clone()));
                    form.push(("password".into(), self.password.clone()));
                    url = url.join("/login")?;
                    response = self.http.post(url.clone()).form(&form).send().await?;
                }
                _ => {
                    return Ok(Journey {
                        landing: Landing::Page { url, status, body },
                        logins,
                    });
                }
            }
        }
        bail!("more than 12 redirects, last at {url}")
    }
}

/// The inputs of the page's form whose action is `action`, if there is one.
fn form_posting_to(html: &str, action: &str) -> Option<Vec<(String, String)>> {
    let start = html.find(&format!("action=\"{action}\""))?;
    let form = &html[start..];
    let form = &form[..form.find("</form>")?];
    let mut fields = Vec::new();
    for input in form.split("<input").skip(1) {
        let tag = &input[..input.find('>')?];
        if let Some(name) = attribute(tag, "name") {
            fields.push((name, attribute(tag, "value").unwrap_or_default()));
        }
    }
    Some(fields)
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')?;
    Some(unescape(&tag[start..start + end]))
}

/// Undoes HTML escaping of attribute values (`&amp;`, `&#x2f;`, `&#39;`…).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entities_are_decoded() {
        assert_eq!(
            unescape("&#x2f;authorize?a=1&amp;b=&#39;x&#x27;"),
            "/authorize?a=1&b='x'"
        );
        assert_eq!(unescape("a & b; &bogus; c"), "a & b; &bogus; c");
    }

    #[test]
    fn the_form_with_the_action_is_read() {
        let html = r#"<form method="post" action="/other"><input name="x" value="1"></form>
            <form method="post" action="/login" novalidate>
            <input type="hidden" name="csrf" value="abc">
            <input type="hidden" name="next" value="&#x2f;authorize?x=1&amp;y=2">
            <input type="text" id="login" name="login" value="" required>
            </form>"#;
        let form = form_posting_to(html, "/login").unwrap();
        assert_eq!(
            form,
            vec![
                ("csrf".into(), "abc".into()),
                ("next".into(), "/authorize?x=1&y=2".into()),
                ("login".into(), String::new()),
            ]
        );
        assert!(form_posting_to(html, "/logout").is_none());
    }
}
