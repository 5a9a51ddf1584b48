//! Help requests, the helpdesk diagnostic and the audit log, over HTTP and through
//! the `guichet` command, on both backends.

use std::process::Command;

use crate::common::{self, Backend, TestApp, TestSmtp, both_backends};
use reqwest::StatusCode;

const LOCKED_EMAIL: &str = "manon.petit@example.org";

async fn start(backend: Backend) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, |t| t).await
}

fn guichet(app: &TestApp, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("guichet.toml");
    std::fs::write(&path, &app.settings_text).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(args)
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn decoded(raw: &str) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    format!(
        "{}\n{}",
        message.subject().unwrap_or_default(),
        message.body_text(0).unwrap()
    )
}

async fn a_help_request_reaches_the_helpdesk_with_the_diagnostic(backend: Backend) {
    let (app, smtp) = start(backend).await;
    // The student tried a reset first: the locked account got a mail, and the
    // attempt is a failure in the audit log.
    app.post_form("/password/forgot", &[("identifier", LOCKED_EMAIL)])
        .await;
    smtp.wait_for(1, 20).await;
    let form = app.get("/help").await.text().await.unwrap();
    assert!(
        form.contains("Contacter l’assistance") && form.contains("<select id=\"category\""),
        "{form}"
    );
    let fields = [
        ("name", "Manon Petit"),
        ("identifier", "mpetit"),
        ("contact", LOCKED_EMAIL),
        ("category", "locked"),
        (
            "message",
            "Mon compte est bloqué depuis hier <script>alert(1)</script>.",
        ),
    ];
    let (status, page) = app.post_form("/help", &fields).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let reference = page
        .split("id=\"reference\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap()
        .to_owned();
    assert!(reference.starts_with("AIDE-"), "{reference}");
    assert!(
        !page.contains("SupannVerrouille"),
        "the student does not see the diagnostic"
    );
    let mails = smtp.wait_for(2, 20).await;
    let support = mails
        .iter()
        .find(|m| {
            m.contains("To: support@univ-demo.fr")
                || m.contains(&format!("To: {}", app.state.settings.profile.support.email))
        })
        .map(|m| decoded(m))
        .expect("a mail to the helpdesk");
    assert!(support.contains(&reference), "{support}");
    assert!(support.contains("S:SupannVerrouille"), "{support}");
    assert!(
        support.contains("reset_locked"),
        "the last mails: {support}"
    );
    assert!(
        support.contains("reset.request locked from 127.0.0.1"),
        "the last failures: {support}"
    );
    assert!(
        support.contains("<script>alert(1)</script>"),
        "the text mail keeps the message as typed"
    );
    let raw = mails
        .iter()
        .find(|m| decoded(m).contains(&reference))
        .unwrap();
    let html = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap()
        .body_html(0)
        .unwrap()
        .into_owned();
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"),
        "escaped in HTML: {html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    let stored: (String, String, Option<String>) =
        sqlx::query_as("SELECT reference, category, account_dn FROM help_requests")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(stored.0, reference);
    assert_eq!(stored.1, "locked");
    assert_eq!(
        stored.2.as_deref(),
        Some(common::people_dn("mpetit").as_str())
    );
    app.shutdown().await;
}

async fn a_bad_help_form_names_every_field_and_keeps_what_was_typed(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let fields = [
        ("name", ""),
        ("identifier", "mpetit"),
        ("contact", "pas-une-adresse"),
        ("category", "piratage"),
        ("message", "Bonjour"),
    ];
    let (status, page) = app.post_form("/help", &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for field in ["#name", "#contact", "#category"] {
        assert!(
            page.contains(&format!("href=\"{field}\"")),
            "{field}: {page}"
        );
    }
    assert!(!page.contains("href=\"#message\""));
    assert!(
        page.contains("value=\"pas-une-adresse\"") && page.contains(">Bonjour</textarea>"),
        "{page}"
    );
    let english = app.get("/help?lang=en").await.text().await.unwrap();
    assert!(english.contains("Contact the helpdesk"), "{english}");
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM help_requests")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.received().is_empty());
    app.shutdown().await;
}

/// `guichet accounts show` prints what the helpdesk mail shows; `guichet audit`
/// filters the log by account, kind, outcome and time.
async fn admins_read_the_diagnostic_and_the_audit_log(backend: Backend) {
    let (app, smtp) = start(backend).await;
    app.post_form("/password/forgot", &[("identifier", LOCKED_EMAIL)])
        .await;
    app.post_form(
        "/password/forgot",
        &[("identifier", "chloe.bernard@example.org")],
    )
    .await;
    app.post_form(
        "/password/forgot",
        &[("identifier", "personne@example.org")],
    )
    .await;
    smtp.wait_for(2, 20).await;
    let (code, out, err) = guichet(&app, &["accounts", "show", "mpetit"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("state:           S:SupannVerrouille"), "{out}");
    assert!(
        out.contains("reset_locked") && out.contains("to manon.petit@example.org"),
        "{out}"
    );
    assert!(
        out.contains("reset.request") && out.contains("locked"),
        "{out}"
    );
    let (code, out, _) = guichet(&app, &["accounts", "show", "22400003", "--json"]);
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["accounts"][0]["login"], "cbernard");
    let (code, _, err) = guichet(&app, &["accounts", "show", "nobody"]);
    assert_eq!(code, Some(1), "{err}");
    let (code, out, _) = guichet(&app, &["audit", "--account", "cbernard"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(
        out.contains("reset.request") && out.contains(" ok ") && out.contains("127.0.0.1"),
        "{out}"
    );
    let (_, out, _) = guichet(&app, &["audit", "--kind", "reset.", "--failures"]);
    assert_eq!(out.lines().count(), 2, "locked and unknown: {out}");
    let (_, out, _) = guichet(
        &app,
        &["audit", "--account", "personne@example.org", "--json"],
    );
    let event: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(event["outcome"], "unknown");
    let (_, out, _) = guichet(&app, &["audit", "--since", "1h"]);
    assert_eq!(out.lines().count(), 3, "{out}");
    let (_, out, _) = guichet(&app, &["audit", "--until", "2000-01-01"]);
    assert_eq!(out.lines().count(), 0, "{out}");
    let (code, _, err) = guichet(&app, &["audit", "--since", "yesterday-ish"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("not a date"), "{err}");
    app.shutdown().await;
}

both_backends!(
    a_help_request_reaches_the_helpdesk_with_the_diagnostic,
    a_bad_help_form_names_every_field_and_keeps_what_was_typed,
    admins_read_the_diagnostic_and_the_audit_log,
);
