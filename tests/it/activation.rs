//! Activation by personal e-mail (Paris Cité), end to end over HTTP: real slapd, real
//! SMTP server process, SQLite and PostgreSQL.

use crate::common::{
    Backend, TestApp, TestSmtp, both_backends, csrf_of, link_token, people_dn, with_transport,
};
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "Cerisier-en-fleur-7";

async fn start(backend: Backend) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, |t| t).await
}

async fn ask_for_link(app: &TestApp, email: &str) -> (StatusCode, String) {
    app.post_form("/activation", &[("email", email), ("terms", "accepted")])
        .await
}

/// The `t=` value of the password link in a message.
fn token_in(raw: &str) -> String {
    link_token(raw, "/activation/password")
}

async fn save_password(
    app: &TestApp,
    token: &str,
    password: &str,
    confirmation: &str,
) -> (StatusCode, String) {
    let fields = [
        ("t", token),
        ("password", password),
        ("confirmation", confirmation),
    ];
    app.post_form("/activation/password", &fields).await
}

async fn paris_cite_activation_end_to_end(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn("ldurand");
    let (status, page) = ask_for_link(&app, "Lea.Durand@example.org").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Consultez votre messagerie"), "{page}");
    let mails = smtp.wait_for(1, 20).await;
    assert_eq!(mails.len(), 1);
    assert!(
        mails[0].contains("To: lea.durand@example.org")
            || mails[0].contains("To: Lea.Durand@example.org")
    );
    let token = token_in(&mails[0]);

    // Opening the link (as a mail scanner would) only shows the form.
    for _ in 0..2 {
        let form = app.get(&format!("/activation/password?t={token}")).await;
        assert_eq!(form.status(), StatusCode::OK);
        assert_eq!(form.headers()["cache-control"], "no-store");
        let html = form.text().await.unwrap();
        assert!(
            html.contains("au moins 8 caractères") && html.contains("au moins 2 lettres"),
            "{html}"
        );
    }
    let (status, page) = save_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Votre compte est activé") && page.contains("ldurand"));

    assert_eq!(
        app.directory.whoami(&dn, NEW_PASSWORD),
        0,
        "the new password binds at once"
    );
    let state = app.directory.read(&dn, "supannRessourceEtatDate");
    let today = time::OffsetDateTime::now_utc().date();
    let expected = format!(
        "{{COMPTE}}A:SupannActif:{}{:02}{:02}:",
        today.year(),
        u8::from(today.month()),
        today.day()
    );
    assert_eq!(state, vec![expected]);
    assert_eq!(
        app.directory.read(&dn, "guichetTermsVersion"),
        vec!["2025-09"]
    );
    assert_eq!(app.directory.read(&dn, "guichetTermsAcceptedAt").len(), 1);

    let mails = smtp.wait_for(2, 20).await;
    assert_eq!(mails.len(), 2, "confirmation mail");
    assert!(
        mails
            .iter()
            .any(|m| m.contains("Votre compte est activ") || m.contains("=?utf-8?"))
    );

    // The link is spent.
    let (status, page) =
        save_password(&app, &token, "Autre-mot-de-passe-9", "Autre-mot-de-passe-9").await;
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("déjà servi"), "{page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    app.shutdown().await;
}

async fn strangers_cannot_tell_who_has_an_account(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let message = |page: &str| {
        page.split("role=\"status\"")
            .nth(1)
            .unwrap()
            .split("</div>")
            .next()
            .unwrap()
            .replace(|c: char| c.is_whitespace(), "")
    };
    let mut answers = Vec::new();
    for email in [
        "nobody@example.org",
        "chloe.bernard@example.org",
        "manon.petit@example.org",
        "famille.jumeau@example.org",
    ] {
        let started = std::time::Instant::now();
        let (status, page) = ask_for_link(&app, email).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(300),
            "even answer time"
        );
        answers.push(message(&page).replace(email, "EMAIL"));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:#?}");
    smtp.wait_for(1, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(
        received.len(),
        1,
        "unknown, active, locked and shared addresses get no link; only the helpdesk is told"
    );
    let support = app.state.settings.profile.support.email.to_string();
    assert!(
        received[0].contains(&format!("To: {support}")),
        "{}",
        received[0]
    );
    assert!(received[0].contains("jumeau1") && received[0].contains("jumeau2"));
    let audit: Vec<(String, String)> =
        sqlx::query_as("SELECT kind, outcome FROM audit_events ORDER BY outcome")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|(_, o)| o.as_str()).collect();
    assert_eq!(
        outcomes,
        ["already_active", "ambiguous", "refused", "unknown"]
    );
    app.shutdown().await;
}

async fn a_refused_password_keeps_the_link_usable(backend: Backend) {
    let (app, smtp) = start(backend).await;
    ask_for_link(&app, "lea.durand@example.org").await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    let (status, page) = save_password(&app, &token, "ldurand2025", "ldurand2025").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("ni votre identifiant"), "{page}");
    let fields = [
        ("t", token.as_str()),
        ("password", NEW_PASSWORD),
        ("confirmation", "something else 1"),
    ];
    let response = app
        .post_form_response("/activation/password", &fields)
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        response.headers()["cache-control"],
        "no-store",
        "a page holding the link is not cached"
    );
    let page = response.text().await.unwrap();
    assert!(page.contains("identiques"), "{page}");
    // The mismatch is tied to the confirmation field, and the summary links to it.
    assert!(
        page.contains(r#"aria-invalid="true" aria-describedby="confirmation-error""#),
        "{page}"
    );
    assert!(page.contains(r##"<a href="#confirmation">"##), "{page}");
    // The language switch shows this form again, link included, not a dead end.
    assert!(
        page.contains(&format!("password?t={token}&amp;lang=en")),
        "{page}"
    );
    let (status, _) = save_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    app.shutdown().await;
}

async fn a_directory_outage_at_saving_writes_nothing_and_keeps_the_link(backend: Backend) {
    let (mut app, smtp) = start(backend).await;
    let dn = people_dn("ldurand");
    ask_for_link(&app, "lea.durand@example.org").await;
    let token = token_in(&smtp.wait_for(1, 20).await[0]);
    let page = app
        .get(&format!("/activation/password?t={token}"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&page);
    app.directory.slapd.stop();
    let response = app
        .http
        .post(app.url("/activation/password"))
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
    assert!(
        html.contains("annuaire") && html.contains("Rien n’a été modifié"),
        "{html}"
    );
    app.directory.slapd.start().unwrap();
    assert_eq!(
        app.directory.read(&dn, "supannRessourceEtat"),
        vec!["{COMPTE}I:SupannCree"]
    );
    let (status, page) = save_password(&app, &token, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the same link works once the directory is back: {page}"
    );
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    app.shutdown().await;
}

async fn expired_replaced_and_tampered_links_say_which(backend: Backend) {
    let (app, smtp) = start(backend).await;
    ask_for_link(&app, "lea.durand@example.org").await;
    let first = token_in(&smtp.wait_for(1, 20).await[0]);
    ask_for_link(&app, "lea.durand@example.org").await;
    let mails = smtp.wait_for(2, 20).await;
    let second = mails
        .iter()
        .map(|m| token_in(m))
        .find(|t| *t != first)
        .unwrap();
    let replaced = app.get(&format!("/activation/password?t={first}")).await;
    assert_eq!(replaced.status(), StatusCode::GONE);
    assert!(replaced.text().await.unwrap().contains("remplacé"));
    let mut tampered = second.clone();
    tampered.replace_range(0..1, if second.starts_with('A') { "B" } else { "A" });
    let page = app
        .get(&format!("/activation/password?t={tampered}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Lien non reconnu"), "{page}");
    let page = app
        .get("/activation/password?t=%27%29%28uid%3D*")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Lien non reconnu"));
    // Make the live link old: 13 hours ago, for a 12-hour lifetime.
    sqlx::query("UPDATE one_time_tokens SET expires_at = expires_at - 13 * 3600")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let expired = app.get(&format!("/activation/password?t={second}")).await;
    assert_eq!(expired.status(), StatusCode::GONE);
    let html = expired.text().await.unwrap();
    assert!(
        html.contains("Ce lien a expiré") && html.contains("12 heures"),
        "{html}"
    );
    let english = app
        .get(&format!("/activation/password?t={second}&lang=en"))
        .await
        .text()
        .await
        .unwrap();
    assert!(english.contains("This link has expired"));
    app.shutdown().await;
}

async fn forms_without_the_csrf_token_are_refused(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let response = app
        .http
        .post(app.url("/activation"))
        .form(&[("email", "lea.durand@example.org"), ("terms", "accepted")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("Formulaire expiré"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(smtp.received().is_empty());
    app.shutdown().await;
}

async fn malformed_input_gets_field_errors_and_metacharacters_match_nobody(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let form = app.get("/activation").await.text().await.unwrap();
    let csrf = csrf_of(&form);
    let response = app
        .http
        .post(app.url("/activation"))
        .form(&[("csrf", csrf.as_str()), ("email", "pas-une-adresse")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("aria-invalid=\"true\"")
            && html.contains("Saisissez une adresse électronique valide")
    );
    assert!(html.contains("Vous devez accepter la charte"));
    for hostile in [
        "*@example.org",
        "lea.durand@example.org)(uid=*",
        "*)(supannMailPerso=*",
    ] {
        let (status, _) = ask_for_link(&app, hostile).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::BAD_REQUEST,
            "{hostile}: {status}"
        );
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        smtp.received().is_empty(),
        "no hostile value matched an entry"
    );
    app.shutdown().await;
}

async fn start_perpignan(backend: Backend) -> (TestApp, TestSmtp) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "perpignan", |t| {
        with_transport(t, &smtp.transport())
    })
    .await;
    (app, smtp)
}

/// Identifies with a student number and INE; returns the token of the next form.
async fn identify(app: &TestApp, student: &str, ine: &str) -> String {
    identify_born(app, student, ine, "").await
}

/// The same, with a date of birth (Perpignan's profile makes it optional).
async fn identify_born(app: &TestApp, student: &str, ine: &str, born: &str) -> String {
    let form = app.get("/activation").await.text().await.unwrap();
    assert!(
        form.contains("Numéro étudiant") && form.contains("Code INE"),
        "{form}"
    );
    let fields = [("student", student), ("ine", ine), ("born", born)];
    let (status, page) = app.post_form("/activation", &fields).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(
        page.contains("Mot de passe et adresse personnelle"),
        "{page}"
    );
    page.split("name=\"t\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

async fn choose(app: &TestApp, token: &str, password: &str, email: &str) -> (StatusCode, String) {
    let fields = [
        ("t", token),
        ("password", password),
        ("confirmation", password),
        ("email", email),
        ("terms", "accepted"),
    ];
    app.post_form("/activation/choose", &fields).await
}

/// The `t=` of the confirmation link in a mail.
fn confirmation_token_in(raw: &str) -> String {
    link_token(raw, "/activation/confirm")
}

async fn perpignan_activation_end_to_end(backend: Backend) {
    let (app, smtp) = start_perpignan(backend).await;
    let dn = people_dn("e2401234");
    let token = identify(&app, "2401234", "0987654321d").await;
    let (status, page) = choose(&app, &token, "Tramontane#47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("blaise.new@example.org"));
    let mails = smtp.wait_for(1, 20).await;
    assert!(mails[0].contains("To: blaise.new@example.org"));
    // Nothing is written before the link is clicked.
    assert_eq!(app.directory.whoami(&dn, "Tramontane#47"), 49);
    assert_eq!(
        app.directory.read(&dn, "supannRessourceEtat"),
        vec!["{COMPTE}I:SupannCree"]
    );
    let confirm = confirmation_token_in(&mails[0]);
    // Opening the link (a mail scanner) only shows a button.
    let shown = app.get(&format!("/activation/confirm?t={confirm}")).await;
    assert_eq!(shown.status(), StatusCode::OK);
    assert_eq!(app.directory.whoami(&dn, "Tramontane#47"), 49);
    let csrf = csrf_of(&shown.text().await.unwrap());
    let done = app
        .http
        .post(app.url("/activation/confirm"))
        .form(&[("csrf", csrf.as_str()), ("t", confirm.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert!(done.text().await.unwrap().contains("e2401234"));
    assert_eq!(
        app.directory.whoami(&dn, "Tramontane#47"),
        0,
        "active with the password chosen earlier"
    );
    assert_eq!(
        app.directory.read(&dn, "supannMailPerso"),
        vec!["blaise.new@example.org"]
    );
    assert_eq!(
        app.directory.read(&dn, "supannRessourceEtat"),
        vec!["{COMPTE}A:SupannActif"]
    );
    assert_eq!(
        app.directory.read(&dn, "guichetTermsVersion"),
        vec!["2024-09"]
    );
    assert_eq!(
        smtp.wait_for(2, 20).await.len(),
        2,
        "confirmation of activation"
    );
    app.shutdown().await;
}

async fn a_wrong_ine_gets_the_same_pages_and_no_mail(backend: Backend) {
    let (app, smtp) = start_perpignan(backend).await;
    let token = identify(&app, "2401234", "1111111111Z").await;
    // The rules apply, as for a real account.
    let (status, _) = choose(&app, &token, "abc", "attacker@example.org").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, page) = choose(&app, &token, "Tramontane#47", "attacker@example.org").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Si les informations saisies correspondent"),
        "{page}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty());
    app.shutdown().await;
}

/// After the identification step, a matching and a non-matching identity get the
/// same answers in every later case: used again, expired, identified twice.
async fn identification_tokens_age_alike_matched_or_not(backend: Backend) {
    let (app, _smtp) = start_perpignan(backend).await;
    // A page holds the visitor's own token (its language switch shows it again):
    // that is what they sent, so it is set aside before comparing.
    let answers = |token: String| {
        let app = &app;
        async move {
            let (status, page) = choose(app, &token, "Tramontane#47", "someone@example.org").await;
            (status, page.replace(&token, "TOKEN"))
        }
    };
    // Identified twice: the first token still works in both cases.
    let right_first = identify(&app, "2401234", "0987654321D").await;
    let wrong_first = identify(&app, "2401234", "1111111111Z").await;
    let right_second = identify(&app, "2401234", "0987654321D").await;
    let wrong_second = identify(&app, "2401234", "1111111111Z").await;
    let (right, wrong) = (
        answers(right_first.clone()).await,
        answers(wrong_first.clone()).await,
    );
    assert_eq!((right.0, wrong.0), (StatusCode::OK, StatusCode::OK));
    // Used again.
    let (right, wrong) = (answers(right_first).await, answers(wrong_first).await);
    assert_eq!(right.0, StatusCode::GONE);
    assert_eq!(wrong.0, StatusCode::GONE);
    assert_eq!(right.1, wrong.1);
    // Expired (15 minutes later).
    sqlx::query("UPDATE one_time_tokens SET expires_at = created_at - 1")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let (right, wrong) = (answers(right_second).await, answers(wrong_second).await);
    assert_eq!((right.0, wrong.0), (StatusCode::GONE, StatusCode::GONE));
    assert!(right.1.contains("expiré"), "{}", right.1);
    assert_eq!(right.1, wrong.1);
    app.shutdown().await;
}

async fn a_date_of_birth_that_does_not_match_gets_the_same_pages_and_no_mail(backend: Backend) {
    let (app, smtp) = start_perpignan(backend).await;
    let token = identify_born(&app, "2401234", "0987654321D", "22/03/2004").await;
    let (status, page) = choose(&app, &token, "Tramontane#47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Si les informations saisies correspondent"),
        "{page}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(
        smtp.received().is_empty(),
        "a wrong date of birth sends nothing"
    );
    // The right date, typed the French way, leads on.
    let token = identify_born(&app, "2401234", "0987654321D", " 21/03/2004 ").await;
    let (status, _) = choose(&app, &token, "Tramontane#47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::OK);
    let mails = smtp.wait_for(1, 20).await;
    assert!(mails[0].contains("To: blaise.new@example.org"));
    // A date that does not exist is a field error tied to its field.
    let fields = [
        ("student", "2401234"),
        ("ine", "0987654321D"),
        ("born", "31/02/2004"),
    ];
    let (status, page) = app.post_form("/activation", &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // minijinja escapes "/" as "&#x2f;" in HTML.
    assert!(
        page.contains("sous la forme JJ&#x2f;MM&#x2f;AAAA"),
        "{page}"
    );
    assert!(
        page.contains(r#"aria-describedby="born-hint born-error""#),
        "{page}"
    );
    assert!(page.contains(r##"<a href="#born">"##), "{page}");
    app.shutdown().await;
}

async fn a_required_date_of_birth_must_be_given_and_on_record(backend: Backend) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "perpignan", |t| {
        let t = t.replace(r#"birth_date = "optional""#, r#"birth_date = "required""#);
        assert!(t.contains(r#"birth_date = "required""#));
        with_transport(t, &smtp.transport())
    })
    .await;
    let form = app.get("/activation").await.text().await.unwrap();
    assert!(form.contains("Date de naissance") && !form.contains("(facultatif)"));
    // Left blank: the field asks for it.
    let fields = [("student", "2401234"), ("ine", "0987654321D"), ("born", "")];
    let (status, page) = app.post_form("/activation", &fields).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Ce champ est obligatoire."), "{page}");
    // e2401235 has no date of birth in the directory: nothing can be checked, nothing sent.
    let token = identify_born(&app, "2401235", "098765432EF", "01/01/2004").await;
    let (status, _) = choose(&app, &token, "Tramontane#47", "ines.new@example.org").await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(smtp.received().is_empty());
    // The account that has one gets its link.
    let token = identify_born(&app, "2401234", "0987654321D", "2004-03-21").await;
    let (status, _) = choose(&app, &token, "Tramontane#47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(smtp.wait_for(1, 20).await.len(), 1);
    app.shutdown().await;
}

async fn perpignan_rules_refuse_unlisted_special_characters(backend: Backend) {
    let (app, _smtp) = start_perpignan(backend).await;
    let token = identify(&app, "2401234", "0987654321D").await;
    let (status, page) = choose(&app, &token, "Tramontane&47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("uniquement : !.@#+:&lt;&gt;$%"), "{page}");
    let (status, _) = choose(&app, &token, "Tramontane#47", "blaise.new@example.org").await;
    assert_eq!(status, StatusCode::OK, "the same form works once corrected");
    app.shutdown().await;
}

async fn repeated_attempts_are_limited_per_identifier_and_per_address(backend: Backend) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        let limits = "[limits]\nper_address = { max = 4, window = \"10m\" }\nper_identifier = { max = 2, window = \"1h\" }\n";
        with_transport(t, &smtp.transport()).replace("[invitations]", &format!("{limits}[invitations]"))
    })
    .await;
    for _ in 0..2 {
        assert_eq!(
            ask_for_link(&app, "nobody@example.org").await.0,
            StatusCode::OK
        );
    }
    let (status, page) = ask_for_link(&app, "NOBODY@example.org").await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the same identifier, whatever its case"
    );
    assert!(page.contains("Trop de tentatives"), "{page}");
    // Another identifier still works, until the address itself is over its limit
    // (four requests: the refused one is not counted).
    for other in ["someone@example.org", "third@example.org"] {
        assert_eq!(ask_for_link(&app, other).await.0, StatusCode::OK);
    }
    let (status, _) = ask_for_link(&app, "fourth@example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.shutdown().await;
}

both_backends!(
    repeated_attempts_are_limited_per_identifier_and_per_address,
    perpignan_activation_end_to_end,
    a_wrong_ine_gets_the_same_pages_and_no_mail,
    identification_tokens_age_alike_matched_or_not,
    perpignan_rules_refuse_unlisted_special_characters,
    a_date_of_birth_that_does_not_match_gets_the_same_pages_and_no_mail,
    a_required_date_of_birth_must_be_given_and_on_record,
    paris_cite_activation_end_to_end,
    strangers_cannot_tell_who_has_an_account,
    a_refused_password_keeps_the_link_usable,
    a_directory_outage_at_saving_writes_nothing_and_keeps_the_link,
    expired_replaced_and_tampered_links_say_which,
    forms_without_the_csrf_token_are_refused,
    malformed_input_gets_field_errors_and_metacharacters_match_nobody,
);
