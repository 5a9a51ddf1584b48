//! The whole app over HTTP: health, readiness, pages, languages, errors, headers, and
//! the bounds on connections and on sign-ins that serving keeps.

use std::time::Duration;

use crate::common::ldap_proxy::LdapProxy;
use crate::common::{
    self, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, both_backends, browser, signs_in,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::start(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::OK);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "up");
    assert_eq!(body["directory"], "up");
    app.shutdown().await;
}

async fn readiness_names_the_directory_when_it_is_down(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    app.directory.slapd.stop();
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["directory"], "down");
    assert_eq!(body["database"], "up");
    assert_eq!(body["down"], serde_json::json!(["directory"]));
    // Pages that need no directory keep working.
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    app.directory.slapd.start().unwrap();
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::OK,
        "recovers without a restart"
    );
    app.shutdown().await;
}

async fn readiness_names_the_database_when_it_is_down(backend: Backend) {
    let app = TestApp::start(backend).await;
    match backend {
        Backend::Postgres => app.database.drop_postgres_now().await,
        // A SQLite file cannot be taken away from an open pool; closing the pool is
        // what the app sees when it can no longer use its database.
        Backend::Sqlite => app.state.store.close().await,
    }
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["database"], "down");
    assert_eq!(body["directory"], "up");
}

async fn pages_are_french_by_default_with_an_english_switch(backend: Backend) {
    let app = TestApp::start(backend).await;
    let home = app.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    let html = home.text().await.unwrap();
    assert!(html.contains("<html lang=\"fr\">"), "{html}");
    assert!(html.contains("Votre compte numérique"));
    assert!(html.contains("Université Paris Cité"));
    // The switch leads to this same page (minijinja writes "/" as "&#x2f;").
    assert!(html.contains("href=\"&#x2f;?lang=en\""), "{html}");

    let english = app.get("/?lang=en").await;
    assert!(
        english
            .headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("guichet_lang=en"))
    );
    assert!(
        english
            .text()
            .await
            .unwrap()
            .contains("Your digital account")
    );
    // The cookie keeps the choice on the next page.
    let next = app.get("/").await.text().await.unwrap();
    assert!(next.contains("<html lang=\"en\">"));
    app.shutdown().await;
}

async fn unknown_pages_get_a_translated_error_page_with_a_reference(backend: Backend) {
    let app = TestApp::start(backend).await;
    let response = app.get("/no/such/page").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = response.text().await.unwrap();
    assert!(html.contains("Page introuvable"), "{html}");
    assert!(
        html.contains(&request_id),
        "the page shows the reference the logs carry"
    );
    let english = app.get("/no/such/page?lang=en").await.text().await.unwrap();
    assert!(english.contains("Page not found"));
    // A wrong method gets a page too, not a bare status.
    let post = app
        .http
        .post(app.url("/healthz?lang=fr"))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(post.text().await.unwrap().contains("Demande incorrecte"));
    app.shutdown().await;
}

async fn every_response_carries_strict_security_headers(backend: Backend) {
    let app = TestApp::start(backend).await;
    for path in ["/", "/healthz", "/nothing", "/static/style.css"] {
        let response = app.get(path).await;
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert!(headers.contains_key("x-request-id"));
    }
    let theme = app.get("/static/theme.css").await.text().await.unwrap();
    assert!(theme.contains("--primary: #1d1d6b"), "{theme}");
    app.shutdown().await;
}

async fn the_dev_mailbox_lists_and_shows_sent_mail(backend: Backend) {
    let app = TestApp::start(backend).await;
    assert!(
        app.get("/dev/mail")
            .await
            .text()
            .await
            .unwrap()
            .contains("Aucun courriel")
    );
    let mailer = guichet::mail::Mailer::new(&app.state.settings.mail).unwrap();
    let message = lettre::Message::builder()
        .from(mailer.from().clone())
        .to("lea.durand@example.org".parse().unwrap())
        .subject("Activez votre compte")
        .multipart(lettre::message::MultiPart::alternative_plain_html(
            "Bonjour Léa,\nhttps://example.org/activation?x=1".to_owned(),
            "<p>Bonjour Léa</p>".to_owned(),
        ))
        .unwrap();
    mailer.send(message).await.unwrap();
    let list = app.get("/dev/mail").await.text().await.unwrap();
    assert!(
        list.contains("Activez votre compte") && list.contains("lea.durand@example.org"),
        "{list}"
    );
    let id = list
        .split("href=\"/dev/mail/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let shown = app
        .get(&format!("/dev/mail/{id}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(shown.contains("Bonjour Léa"), "{shown}");
    let html = app.get(&format!("/dev/mail/{id}/html")).await;
    assert!(
        html.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .starts_with("sandbox")
    );
    assert_eq!(
        app.get("/dev/mail/..%2F..%2Fetc%2Fpasswd").await.status(),
        StatusCode::NOT_FOUND
    );
    app.shutdown().await;
}

async fn serves_https_when_a_certificate_is_configured(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let tls = format!(
        "public_url = \"https://localhost/\"\ntls = {{ cert_path = \"{}\", key_path = \"{}\" }}",
        cert.display(),
        key.display()
    );
    let app = TestApp::start_tweaked(backend, "paris-cite", |text| {
        text.replace("public_url = \"http://localhost/\"", &tls)
    })
    .await;
    let client = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap(),
        )
        .build()
        .unwrap();
    let response = client
        .get(format!("https://localhost:{}/", app.addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=")
    );
    let english = client
        .get(format!("https://localhost:{}/?lang=en", app.addr.port()))
        .send()
        .await
        .unwrap();
    let cookie = english.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    // Plain HTTP on the TLS port gets no page.
    assert!(
        reqwest::get(app.url("/healthz"))
            .await
            .map(|r| r.status() != StatusCode::OK)
            .unwrap_or(true)
    );
    app.shutdown().await;
}

both_backends!(
    serves_https_when_a_certificate_is_configured,
    health_and_readiness,
    readiness_names_the_directory_when_it_is_down,
    readiness_names_the_database_when_it_is_down,
    pages_are_french_by_default_with_an_english_switch,
    unknown_pages_get_a_translated_error_page_with_a_reference,
    every_response_carries_strict_security_headers,
    the_dev_mailbox_lists_and_shows_sent_mail,
);

/// Settings with `lines` added to `[server]`.
fn with_server(text: String, lines: &str) -> String {
    text.replace(
        "listen = \"127.0.0.1:0\"",
        &format!("listen = \"127.0.0.1:0\"\n{lines}"),
    )
}

/// Whether the server closes `stream` within `seconds`, whatever it sent before.
async fn closed_within(stream: &mut TcpStream, seconds: u64) -> bool {
    let mut buffer = [0u8; 4096];
    let reads = async {
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(seconds), reads)
        .await
        .is_ok()
}

/// Reads one response to `GET /healthz` (its body is `ok`), or `None` if none
/// comes within `seconds`.
async fn health_answer(stream: &mut TcpStream, seconds: u64) -> Option<String> {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let reads = async {
        while !answer.ends_with(b"\r\n\r\nok") {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => answer.extend_from_slice(&buffer[..read]),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(seconds), reads)
        .await
        .ok()?;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    answer.starts_with("HTTP/1.1 200").then_some(answer)
}

const HEALTH: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";

async fn slow_clients_are_closed_and_others_still_served(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_server(t, "header_read_timeout = \"1s\"")
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        stream.write_all(b"GET / HT").await.unwrap();
        slow.push(stream);
    }
    let health = app.get("/healthz").await;
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "answered while 200 are slow"
    );
    let closed =
        futures_util::future::join_all(slow.iter_mut().map(|stream| closed_within(stream, 15)))
            .await;
    assert!(closed.iter().all(|c| *c), "every slow client is closed");
    // A fresh connection with a whole request is answered.
    let mut fresh = TcpStream::connect(app.addr).await.unwrap();
    fresh.write_all(HEALTH).await.unwrap();
    assert!(health_answer(&mut fresh, 10).await.is_some());
    app.shutdown().await;
}

async fn kept_alive_connections_are_closed_when_idle_or_slow(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_server(t, "header_read_timeout = \"1s\"\nidle_timeout = \"4s\"")
    })
    .await;
    // Idle for longer than the header timeout but within the idle one: still served.
    let mut idle = TcpStream::connect(app.addr).await.unwrap();
    idle.write_all(HEALTH).await.unwrap();
    assert!(health_answer(&mut idle, 10).await.is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    idle.write_all(HEALTH).await.unwrap();
    assert!(
        health_answer(&mut idle, 10).await.is_some(),
        "an idle pause shorter than idle_timeout keeps the connection"
    );
    // Then idle past idle_timeout: closed.
    assert!(closed_within(&mut idle, 20).await, "closed once idle");
    // A kept-alive connection whose next request head is too slow.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(HEALTH).await.unwrap();
    assert!(health_answer(&mut slow, 10).await.is_some());
    slow.write_all(b"GET /healthz HT").await.unwrap();
    assert!(
        health_answer(&mut slow, 20).await.is_none(),
        "no answer, closed"
    );
    app.shutdown().await;
}

async fn connections_past_the_cap_wait_until_one_ends(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_server(t, "max_connections = 50\nheader_read_timeout = \"60s\"")
    })
    .await;
    // Connected in order, accepted in order: the first 50 take every place.
    let mut held = Vec::new();
    for _ in 0..60 {
        held.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let mut waiting = held.split_off(50);
    let fifty_first = &mut waiting[0];
    fifty_first.write_all(HEALTH).await.unwrap();
    assert!(
        health_answer(fifty_first, 2).await.is_none(),
        "not served while 50 connections are held"
    );
    drop(held.pop());
    assert!(
        health_answer(fifty_first, 10).await.is_some(),
        "served once one of the 50 ends"
    );
    drop((held, waiting));
    app.shutdown().await;
}

/// With one bind at a time and one waiting, a third sign-in while binds are slow is
/// answered 503 at once, before any rate limit counts it: no rate-limit row, no audit
/// row. Sign-in works again after.
async fn sign_ins_past_the_bind_queue_get_503_at_once(backend: Backend) {
    let mut proxy = None;
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        let (t, front) = LdapProxy::in_front_of_settings(&t);
        proxy = Some(front);
        t.replace("timeout = \"2s\"", "timeout = \"30s\"").replace(
            "pool_size = 4",
            "pool_size = 1\nbind_queue = 1\nbind_wait = \"30s\"",
        )
    })
    .await;
    let proxy = proxy.unwrap();
    proxy.hold_bind_answers(Some(Duration::from_secs(5)));
    let app = std::sync::Arc::new(app);
    let start = |app: &std::sync::Arc<TestApp>, from: &'static str, login: &'static str| {
        let app = app.clone();
        tokio::spawn(async move {
            let browser = common::browser_at(from);
            let response = common::sign_in_with(&app, &browser, login, DEMO_PASSWORD).await;
            let status = response.status();
            let retry = response.headers().get("retry-after").cloned();
            (status, retry, response.text().await.unwrap())
        })
    };
    let binding = start(&app, "127.0.0.1", ACTIVE_UID);
    let student = common::people_dn(ACTIVE_UID);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !proxy.binds().contains(&student) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first bind starts"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Its address holds its half of the two places: another check from there is
    // refused at once, so one address hammering never takes every place.
    let (status, _, _) = start(&app, "127.0.0.1", ACTIVE_UID).await.unwrap();
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "one address, half the places"
    );
    // From another address the student is counted (two counts for the login) and
    // waits for the bind.
    let waiting = start(&app, "127.0.0.3", ACTIVE_UID);
    let login_bucket = format!("login:id:{}@", guichet::web::digest(ACTIVE_UID));
    while hits_on(&app, &login_bucket).await < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the second is counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A stranger from a third address, on another login: nothing of his may be
    // counted anywhere (his network, his login, the account-wide throttle).
    const STRANGER: &str = "quelqu-un-d-autre";
    let stranger = start(&app, "127.0.0.2", STRANGER);
    let (status, retry, page) = stranger.await.unwrap();
    assert!(
        !binding.is_finished(),
        "refused while the first bind is held"
    );
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(retry.is_some(), "a 503 says when to come back");
    assert!(page.contains("Trop de demandes en même temps"), "{page}");
    let stranger_digest = guichet::web::digest(STRANGER);
    let rows: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM rate_limits WHERE bucket LIKE $1 OR bucket LIKE $2")
            .bind("%127.0.0.2%")
            .bind(format!("%{stranger_digest}%"))
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(rows.0, 0, "refused before a rate limit was counted");
    assert_eq!(
        binding.await.unwrap().0,
        StatusCode::SEE_OTHER,
        "the first signs in"
    );
    assert_eq!(
        waiting.await.unwrap().0,
        StatusCode::SEE_OTHER,
        "the waiting one too"
    );
    proxy.hold_bind_answers(None);
    assert!(signs_in(&app, &browser(), ACTIVE_UID, DEMO_PASSWORD).await);
    // The refused attempts left no trace: three sign-ins, three sessions, and no
    // failed sign-in in the audit log.
    let logins: Vec<(String,)> =
        sqlx::query_as("SELECT outcome FROM audit_events WHERE kind = 'login'")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(logins, vec![("ok".to_owned(),); 3]);
    let sessions: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sso_sessions")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(sessions.0, 3);
    if let Ok(app) = std::sync::Arc::try_unwrap(app) {
        app.shutdown().await;
    }
}

/// The hits counted in the buckets whose name starts with `prefix`.
async fn hits_on(app: &TestApp, prefix: &str) -> i64 {
    let hits: (Option<i64>,) =
        sqlx::query_as("SELECT CAST(SUM(hits) AS BIGINT) FROM rate_limits WHERE bucket LIKE $1")
            .bind(format!("{prefix}%"))
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    hits.0.unwrap_or(0)
}

both_backends!(
    slow_clients_are_closed_and_others_still_served,
    kept_alive_connections_are_closed_when_idle_or_slow,
    connections_past_the_cap_wait_until_one_ends,
    sign_ins_past_the_bind_queue_get_503_at_once,
);
