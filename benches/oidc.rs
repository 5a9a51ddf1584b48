//! Figures for the OpenID Connect provider, over HTTP against a whole Guichet (the
//! `guichet dev` set-up: a private slapd from `directory-schema/` and SQLite):
//! discovery, sign-in, the single sign-on hop an application makes for a student
//! who is already signed in, the token exchange, UserInfo and refresh.
//! Run with `cargo bench --bench oidc`; compare runs on the same machine.

#[path = "support/client.rs"]
mod client;
mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use client::{REDIRECT, authorize_url, register_bench};
use guichet::dev::{self, DevOptions};
use reqwest::header::LOCATION;
use serde_json::Value;
use support::measure;

const LOGIN: &str = "cbernard";
const PASSWORD: &str = "Demo-Passw0rd!";

struct Bed {
    base: String,
    secret: String,
}

/// A browser with a cookie jar that does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

fn location(response: &reqwest::Response) -> String {
    response.headers()[LOCATION]
        .to_str()
        .expect("location")
        .to_owned()
}

/// Signs `browser` in through the login form.
async fn sign_in(bed: &Bed, browser: &reqwest::Client) {
    let page = browser
        .get(format!("{}/login", bed.base))
        .send()
        .await
        .expect("login page")
        .text()
        .await
        .expect("page");
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf field")
        .to_owned();
    let signed = browser
        .post(format!("{}/login", bed.base))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", LOGIN),
            ("password", PASSWORD),
            ("next", "/account"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER);
}

/// The code a signed-in browser gets without seeing a page.
async fn silent_code(bed: &Bed, browser: &reqwest::Client, scope: &str) -> String {
    let response = browser
        .get(authorize_url(&bed.base, scope))
        .send()
        .await
        .expect("authorize");
    assert_eq!(response.status(), reqwest::StatusCode::FOUND);
    let back = url::Url::parse(&location(&response)).expect("url");
    back.query_pairs()
        .find(|(k, _)| k == "code")
        .expect("code")
        .1
        .into_owned()
}

async fn tokens(bed: &Bed, http: &reqwest::Client, form: &[(&str, &str)]) -> Value {
    let response = http
        .post(format!("{}/token", bed.base))
        .basic_auth("bench", Some(&bed.secret))
        .form(form)
        .send()
        .await
        .expect("token");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.json().await.expect("json")
}

async fn redeem(bed: &Bed, http: &reqwest::Client, code: &str) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    tokens(bed, http, &form).await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("guichet OIDC bench, {cpus} CPUs (server, slapd and clients share them)");
    let data = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let options = DevOptions {
        data_dir: data.path().join("dev"),
        reset: true,
        port,
        profile: "paris-cite".to_owned(),
    };
    let (_environment, settings) = dev::prepare(&options).expect("dev set-up");
    let state = guichet::server::prepare(settings).await.expect("start");
    let listener = guichet::server::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("bind");
    let secret = register_bench(&state.store).await;
    tokio::spawn(guichet::server::run(
        listener,
        state,
        std::future::pending(),
    ));
    let bed = Arc::new(Bed {
        base: format!("http://localhost:{port}"),
        secret,
    });
    let http = reqwest::Client::new();

    let (b, h) = (bed.clone(), http.clone());
    measure("discovery document", 4000, 16, move |_| {
        let (b, h) = (b.clone(), h.clone());
        async move {
            let url = format!("{}/.well-known/openid-configuration", b.base);
            assert!(h.get(url).send().await.expect("get").status().is_success());
        }
    })
    .await;

    let b = bed.clone();
    measure("sign-in (login form, bind to slapd)", 200, 8, move |_| {
        let b = b.clone();
        async move { sign_in(&b, &browser()).await }
    })
    .await;

    // One signed-in browser: the hop every application makes for a student who is
    // already signed in (ENT, then Moodle, then webmail).
    let student = browser();
    sign_in(&bed, &student).await;
    let (b, s) = (bed.clone(), student.clone());
    measure(
        "SSO hop: authorize with a session (code)",
        2000,
        8,
        move |_| {
            let (b, s) = (b.clone(), s.clone());
            async move {
                silent_code(&b, &s, "openid").await;
            }
        },
    )
    .await;

    let (b, s, h) = (bed.clone(), student.clone(), http.clone());
    measure("code flow: authorize + token (RS256)", 1000, 8, move |_| {
        let (b, s, h) = (b.clone(), s.clone(), h.clone());
        async move {
            let code = silent_code(&b, &s, "openid profile email").await;
            redeem(&b, &h, &code).await;
        }
    })
    .await;

    let code = silent_code(&bed, &student, "openid profile email").await;
    let access = redeem(&bed, &http, &code).await["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let (b, h) = (bed.clone(), http.clone());
    measure("UserInfo (directory read)", 2000, 8, move |_| {
        let (b, h, access) = (b.clone(), h.clone(), access.clone());
        async move {
            let response = h
                .get(format!("{}/userinfo", b.base))
                .bearer_auth(access)
                .send()
                .await
                .expect("userinfo");
            assert!(response.status().is_success());
        }
    })
    .await;

    let (b, s, h) = (bed.clone(), student.clone(), http.clone());
    measure(
        "offline code flow + one refresh (rotation)",
        500,
        8,
        move |_| {
            let (b, s, h) = (b.clone(), s.clone(), h.clone());
            async move {
                let code = silent_code(&b, &s, "openid offline_access").await;
                let first = redeem(&b, &h, &code).await;
                let refresh = first["refresh_token"].as_str().expect("refresh");
                let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
                tokens(&b, &h, &form).await;
            }
        },
    )
    .await;
}
