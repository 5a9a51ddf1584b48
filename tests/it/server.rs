//! The whole app over HTTP: health, readiness, pages, languages, errors, headers.

use crate::common::{Backend, TestApp, both_backends};
use reqwest::StatusCode;

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
