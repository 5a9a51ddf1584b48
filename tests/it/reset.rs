//! Forgot password, end to end over HTTP: real slapd, real SMTP server process,
//! SQLite and PostgreSQL.

use crate::common::{
    self, ACTIVE_EMAIL, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, TestSmtp, both_backends,
    csrf_of, link_token, people_dn,
};
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "Magnolia-au-vent-42";

async fn start_tweaked(
    backend: Backend,
    tweak: impl FnOnce(String) -> String,
) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, tweak).await
}

async fn start(backend: Backend) -> (TestApp, TestSmtp) {
    start_tweaked(backend, |t| t).await
}

async fn ask(app: &TestApp, identifier: &str) -> (StatusCode, String) {
    app.post_form("/password/forgot", &[("identifier", identifier)])
        .await
}

async fn change(app: &TestApp, token: &str, password: &str) -> (StatusCode, String) {
    let fields = [
        ("t", token),
        ("password", password),
        ("confirmation", password),
    ];
    app.post_form("/password/reset", &fields).await
}

fn token_in(raw: &str) -> String {
    link_token(raw, "/password/reset")
}

/// The mail sent to `to`, as text (decoded).
fn text_to(received: &[String], to: &str) -> Vec<String> {
    received
        .iter()
        .filter(|raw| raw.contains(&format!("To: {to}")))
        .map(|raw| {
            let message = mail_parser::MessageParser::default()
                .parse(raw.as_bytes())
                .unwrap();
            format!(
                "{}\n{}",
                message.subject().unwrap_or_default(),
                message.body_text(0).unwrap()
            )
        })
        .collect()
}

async fn audit_kinds(app: &TestApp) -> Vec<(String, String, Option<String>, Option<String>)> {
    sqlx::query_as("SELECT kind, outcome, account, client_ip FROM audit_events ORDER BY at, kind")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap()
}

async fn a_forgotten_password_is_replaced_and_works_at_once(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    sqlx::query("INSERT INTO sso_sessions (id_hash, account_dn, created_at, last_seen_at, expires_at) VALUES ('s1', $1, 0, 0, 9999999999)")
        .bind(&dn)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let form = app.get("/password/forgot").await.text().await.unwrap();
    assert!(form.contains("Adresse électronique personnelle"), "{form}");
    let (status, page) = ask(&app, ACTIVE_EMAIL).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Consultez votre messagerie"), "{page}");
    let mails = smtp.wait_for(1, 20).await;
    let token = token_in(&mails[0]);
    // Opening the link (a mail scanner) changes nothing and uses nothing up.
    let shown = app.get(&format!("/password/reset?t={token}")).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(shown.headers()["cache-control"], "no-store");
    assert!(shown.text().await.unwrap().contains(ACTIVE_UID));
    // The old password is in use until the very moment of the change.
    assert_eq!(app.directory.whoami(&dn, DEMO_PASSWORD), 0);
    let (status, page) = change(&app, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Mot de passe changé"), "{page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0, "works at once");
    assert_eq!(
        app.directory.whoami(&dn, DEMO_PASSWORD),
        49,
        "the old one is gone"
    );
    let ended: Option<i64> =
        sqlx::query_scalar("SELECT ended_at FROM sso_sessions WHERE id_hash = 's1'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert!(ended.is_some(), "the account's sessions end");
    let mails = smtp.wait_for(2, 20).await;
    let told = text_to(&mails, ACTIVE_EMAIL);
    let changed = told
        .iter()
        .find(|m| m.starts_with("Votre mot de passe a été changé"))
        .expect("a 'changed' mail");
    assert!(
        changed.contains(" UTC") && changed.contains("/help"),
        "{changed}"
    );
    // The link served once.
    let (status, page) = change(&app, &token, "Autre-mot-de-passe-9").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("déjà servi"), "{page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    let audit = audit_kinds(&app).await;
    assert!(
        audit.iter().any(|(k, o, a, ip)| k == "reset.request"
            && o == "ok"
            && a.as_deref() == Some(dn.as_str())
            && ip.as_deref() == Some("127.0.0.1")),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(k, o, _, _)| k == "reset.password_changed" && o == "ok"),
        "{audit:?}"
    );
    assert!(
        audit
            .iter()
            .any(|(k, o, _, _)| k == "reset.link" && o == "gone"),
        "{audit:?}"
    );
    app.shutdown().await;
}

/// Unknown, not yet activated, locked and shared addresses all get the page a real
/// request gets; only the mail tells the owner (or the helpdesk) what to do.
async fn strangers_see_one_page_and_only_the_owner_is_told_why(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let (_, reference) = ask(&app, ACTIVE_EMAIL).await;
    for typed in [
        "personne@example.org",
        common::PENDING_EMAIL,
        "manon.petit@example.org",
        common::SHARED_EMAIL,
    ] {
        let (status, page) = ask(&app, typed).await;
        assert_eq!(status, StatusCode::OK, "{typed}: {page}");
        assert_eq!(page, reference, "{typed} answers like a real account");
    }
    // LDAP metacharacters are not an address: a field error, and no search at all.
    let (status, page) = ask(&app, "x*)(supannMailPerso=*@example.org").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("Saisissez une adresse électronique complète"),
        "{page}"
    );
    smtp.wait_for(5, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mails = smtp.received();
    assert_eq!(
        mails.len(),
        4,
        "owner of the active, pending and locked accounts, and the helpdesk"
    );
    let pending = &text_to(&mails, common::PENDING_EMAIL)[0];
    assert!(
        pending.contains("pas encore activé") && pending.contains("/activation"),
        "{pending}"
    );
    assert!(!pending.contains("/password/reset"));
    let locked = &text_to(&mails, "manon.petit@example.org")[0];
    assert!(
        locked.contains("bloqué") && locked.contains("/help"),
        "{locked}"
    );
    assert!(!locked.contains("/password/reset"));
    let support = &text_to(
        &mails,
        &app.state.settings.profile.support.email.to_string(),
    )[0];
    assert!(
        support.contains("jumeau1") && support.contains("jumeau2"),
        "{support}"
    );
    assert!(
        text_to(&mails, common::SHARED_EMAIL).is_empty(),
        "no link to a shared address"
    );
    let audit = audit_kinds(&app).await;
    for outcome in ["ok", "unknown", "not_activated", "locked", "ambiguous"] {
        assert!(
            audit
                .iter()
                .any(|(k, o, _, _)| k == "reset.request" && o == outcome),
            "{outcome}: {audit:?}"
        );
    }
    app.shutdown().await;
}

/// Two submissions of one link at the same moment: one wins, the other is told the
/// link served, and the directory holds the winner's password.
async fn two_resets_racing_have_one_winner(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    ask(&app, ACTIVE_EMAIL).await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    let (first, second) = tokio::join!(
        change(&app, &token, "Premier-essai-11"),
        change(&app, &token, "Second-essai-22")
    );
    let statuses = [first.0, second.0];
    assert!(
        statuses.contains(&StatusCode::OK) && statuses.contains(&StatusCode::GONE),
        "{statuses:?}"
    );
    let winner = if first.0 == StatusCode::OK {
        "Premier-essai-11"
    } else {
        "Second-essai-22"
    };
    let loser = if first.0 == StatusCode::OK {
        "Second-essai-22"
    } else {
        "Premier-essai-11"
    };
    assert_eq!(app.directory.whoami(&dn, winner), 0);
    assert_eq!(app.directory.whoami(&dn, loser), 49);
    app.shutdown().await;
}

/// A newer link replaces the older; once the password changed, no earlier link works.
async fn earlier_links_die_with_a_password_change(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    ask(&app, ACTIVE_EMAIL).await;
    let first = token_in(&smtp.wait_for(1, 20).await[0]);
    ask(&app, ACTIVE_EMAIL).await;
    let mails = smtp.wait_for(2, 20).await;
    let second = mails
        .iter()
        .map(|m| token_in(m))
        .find(|t| *t != first)
        .unwrap();
    let (status, page) = change(&app, &first, "Ancien-lien-33").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("remplacé"), "{page}");
    let (status, _) = change(&app, &second, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = change(&app, &first, "Ancien-lien-33").await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    app.shutdown().await;
}

/// An account locked by an admin after the link was sent: the link no longer works
/// and the password does not change.
async fn a_link_dies_when_the_account_is_locked(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    ask(&app, ACTIVE_EMAIL).await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    app.directory.admin_modify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: supannRessourceEtat\nsupannRessourceEtat: {{COMPTE}}S:SupannVerrouille\n-\nreplace: supannRessourceEtatDate\nsupannRessourceEtatDate: {{COMPTE}}S:SupannVerrouille::\n"
    ));
    let (status, page) = change(&app, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 49);
    app.shutdown().await;
}

async fn a_directory_outage_at_saving_keeps_the_old_password_and_the_link(backend: Backend) {
    let (mut app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    ask(&app, ACTIVE_EMAIL).await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    let page = app
        .get(&format!("/password/reset?t={token}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    app.directory.slapd.stop();
    let response = app
        .http
        .post(app.url("/password/reset"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("t", token.as_str()),
            ("password", NEW_PASSWORD),
            ("confirmation", NEW_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = response.text().await.unwrap();
    assert!(html.contains("Rien n’a été modifié"), "{html}");
    app.directory.slapd.start().unwrap();
    assert_eq!(
        app.directory.whoami(&dn, DEMO_PASSWORD),
        0,
        "old password unchanged"
    );
    let (status, page) = change(&app, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the link still works: {page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    app.shutdown().await;
}

/// Where the profile allows it, the login or the student number name the account;
/// the link still goes only to the personal address on record.
async fn login_and_student_number_reach_the_address_on_record(backend: Backend) {
    let (app, smtp) = start_tweaked(backend, |t| {
        t.replace(
            "identifiers = [\"personal_email\"]",
            "identifiers = [\"personal_email\", \"login\", \"student_number\"]",
        )
    })
    .await;
    let form = app.get("/password/forgot").await.text().await.unwrap();
    assert!(form.contains("identifiant ou numéro étudiant"), "{form}");
    let (status, _) = ask(&app, ACTIVE_UID).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = ask(&app, "22400003").await;
    assert_eq!(status, StatusCode::OK);
    let mails = smtp.wait_for(2, 20).await;
    assert_eq!(mails.len(), 2);
    assert!(
        mails
            .iter()
            .all(|m| m.contains(&format!("To: {ACTIVE_EMAIL}")))
    );
    let (status, page) = ask(&app, "*)(uid=*").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    app.shutdown().await;
}

async fn pages_and_mails_speak_english_when_asked(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let form = app
        .get("/password/forgot?lang=en")
        .await
        .text()
        .await
        .unwrap();
    assert!(form.contains("Personal e-mail address"), "{form}");
    let (_, page) = ask(&app, ACTIVE_EMAIL).await;
    assert!(page.contains("Check your e-mail"), "{page}");
    let mails = smtp.wait_for(1, 20).await;
    let text = &text_to(&mails, ACTIVE_EMAIL)[0];
    assert!(text.starts_with("Choose a new password"), "{text}");
    app.shutdown().await;
}

/// The Sorbonne page warns that a link followed after 12 hours gets an error and the
/// procedure starts again: the page says so, in both languages, and leads back.
async fn an_expired_link_says_so_and_leads_back_to_the_start(backend: Backend) {
    let (app, smtp) = start(backend).await;
    ask(&app, ACTIVE_EMAIL).await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    sqlx::query("UPDATE one_time_tokens SET expires_at = created_at - 1")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let page = app.get(&format!("/password/reset?t={token}")).await;
    assert_eq!(page.status(), StatusCode::GONE);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Ce lien a expiré") && page.contains("12 heures"),
        "{page}"
    );
    assert!(
        page.contains("href=\"&#x2f;password&#x2f;forgot\""),
        "{page}"
    );
    let (status, french) = change(&app, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::GONE);
    assert!(french.contains("Ce lien a expiré"));
    // Its language switch shows the same page in English; it does not leave it.
    let switch = french
        .split("class=\"lang\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x3d;", "=");
    let switched = app.get(&switch).await;
    assert_eq!(switched.status(), StatusCode::GONE, "{switch}");
    let switched = switched.text().await.unwrap();
    assert!(
        switched.contains("This link has expired"),
        "{switch}: {switched}"
    );
    let english = app
        .get(&format!("/password/reset?t={token}&lang=en"))
        .await
        .text()
        .await
        .unwrap();
    assert!(english.contains("This link has expired"), "{english}");
    assert_eq!(
        app.directory.whoami(&people_dn(ACTIVE_UID), NEW_PASSWORD),
        49
    );
    app.shutdown().await;
}

/// A link that lives less than an hour says how many minutes, on the page and in
/// the mail (never "valable 0 heures").
async fn a_short_lived_link_gives_its_minutes(backend: Backend) {
    let (app, smtp) =
        start_tweaked(backend, |t| t.replace("reset = \"12h\"", "reset = \"45m\"")).await;
    let (status, page) = ask(&app, ACTIVE_EMAIL).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("valable 45 minutes"), "{page}");
    let mail = text_to(&smtp.wait_for(1, 20).await, ACTIVE_EMAIL).remove(0);
    assert!(mail.contains("Ce lien est valable 45 minutes."), "{mail}");
    assert!(!mail.contains("0 heure"), "{mail}");
    app.shutdown().await;
}

both_backends!(
    a_short_lived_link_gives_its_minutes,
    an_expired_link_says_so_and_leads_back_to_the_start,
    a_forgotten_password_is_replaced_and_works_at_once,
    strangers_see_one_page_and_only_the_owner_is_told_why,
    two_resets_racing_have_one_winner,
    earlier_links_die_with_a_password_change,
    a_link_dies_when_the_account_is_locked,
    a_directory_outage_at_saving_keeps_the_old_password_and_the_link,
    login_and_student_number_reach_the_address_on_record,
    pages_and_mails_speak_english_when_asked,
);
