//! DESIGN §7, tried as an attacker or an outage would: credentials racing a
//! password reset, requests cut off right after the directory write, sign-out with
//! the directory down, a crash right after a reset. Real slapd, real SMTP server
//! process, SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::common::ldap_proxy::LdapProxy;
use crate::common::oidc::{
    REDIRECT, authorize_url, backchannel_receiver, backchannel_receiver_on, confidential, param,
    redeem_code, registered, sign_in_and_authorize, token_request, userinfo,
};
use crate::common::{
    ACTIVE_EMAIL, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, TestSmtp, both_backends, browser,
    csrf_of, free_port, is_signed_in, link_token, mail_to, open_link, people_dn, signs_in,
    submit_link,
};
use guichet::oidc::clients::NewClient;
use reqwest::StatusCode;
use serde_json::Value;

const NEW_PASSWORD: &str = "Magnolia-au-vent-42";

async fn start(backend: Backend, tweak: impl FnOnce(String) -> String) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, tweak).await
}

/// Asks for a reset link and returns its token from the mail.
async fn reset_link(app: &TestApp, smtp: &TestSmtp, mails_before: usize) -> String {
    let (status, _) = app
        .post_form("/password/forgot", &[("identifier", ACTIVE_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mails = smtp.wait_for(mails_before + 1, 20).await;
    let reset = mails
        .iter()
        .rev()
        .find(|raw| raw.contains("password/reset"))
        .expect("a reset link");
    link_token(reset, "/password/reset")
}

async fn reset(app: &TestApp, token: &str) -> (StatusCode, String) {
    let fields = [
        ("t", token),
        ("password", NEW_PASSWORD),
        ("confirmation", NEW_PASSWORD),
    ];
    app.post_form("/password/reset", &fields).await
}

async fn refresh(app: &TestApp, secret: &str, token: &str) -> (StatusCode, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    token_request(app, Some(("moodle", secret)), &form).await
}

/// Waits up to `seconds` for `check` to hold.
async fn eventually<F, Fut>(seconds: u64, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..seconds * 10 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Guarantee 1: sign-ins with the old password and a chain of refreshes run
/// without pause while a reset commits. Whatever each obtained, before or during
/// the reset, is dead once the reset has answered: every such sign-in used the
/// old password, so its bind came before the directory write.
async fn credentials_issued_while_a_reset_commits_die_with_it(backend: Backend) {
    let (app, smtp) = start(backend, |t| t).await;
    let app = Arc::new(app);
    let secret = registered(&app, confidential("moodle", REDIRECT))
        .await
        .unwrap();
    let url = authorize_url("moodle", &[("scope", "openid offline_access")]);
    let back = sign_in_and_authorize(&app, &url).await;
    let (status, tokens) =
        redeem_code(&app, ("moodle", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let first_refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let token = reset_link(&app, &smtp, 0).await;

    let done = Arc::new(AtomicBool::new(false));
    let mut sign_ins = Vec::new();
    for _ in 0..3 {
        let (app, done) = (app.clone(), done.clone());
        sign_ins.push(tokio::spawn(async move {
            let mut opened = Vec::new();
            while !done.load(Ordering::SeqCst) {
                let browser = browser();
                if signs_in(&app, &browser, ACTIVE_UID, DEMO_PASSWORD).await {
                    opened.push(browser);
                }
            }
            opened
        }));
    }
    let refresher = {
        let (app, done, secret) = (app.clone(), done.clone(), secret.clone());
        tokio::spawn(async move {
            let (mut current, mut access) = (first_refresh, Vec::new());
            while !done.load(Ordering::SeqCst) {
                let (status, body) = refresh(&app, &secret, &current).await;
                if status != StatusCode::OK {
                    break;
                }
                access.push(body["access_token"].as_str().unwrap().to_owned());
                current = body["refresh_token"].as_str().unwrap().to_owned();
            }
            (current, access)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    done.store(true, Ordering::SeqCst);

    let mut opened = Vec::new();
    for task in sign_ins {
        opened.extend(task.await.unwrap());
    }
    let (last_refresh, access) = refresher.await.unwrap();
    assert!(!opened.is_empty(), "sign-ins ran before the reset");
    assert!(!access.is_empty(), "refreshes ran before the reset");
    for browser in &opened {
        assert!(
            !is_signed_in(&app, browser).await,
            "a session from the old password survived"
        );
    }
    for token in &access {
        let (status, _) = userinfo(&app, token).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "an access token survived the reset"
        );
    }
    let (status, body) = refresh(&app, &secret, &last_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(
        app.directory.whoami(&people_dn(ACTIVE_UID), NEW_PASSWORD),
        0
    );
}

/// Guarantee 1 again, from the other side: whoever knows the password keeps
/// changing it, signed in, while the owner resets it. The reset has the last word:
/// the directory ends with the reset's password and the other session is over.
async fn a_reset_wins_over_changes_made_while_it_runs(backend: Backend) {
    let (app, smtp) = start(backend, |t| t).await;
    let app = Arc::new(app);
    let intruder = browser();
    assert!(signs_in(&app, &intruder, ACTIVE_UID, DEMO_PASSWORD).await);
    let token = reset_link(&app, &smtp, 0).await;
    let changes = {
        let app = app.clone();
        tokio::spawn(async move {
            let (mut current, mut made) = (DEMO_PASSWORD.to_owned(), 0);
            for round in 0.. {
                let new = format!("Intrus-{round}-Passw0rd!");
                let page = intruder
                    .get(app.url("/account/password"))
                    .send()
                    .await
                    .unwrap();
                if page.status() != StatusCode::OK {
                    break;
                }
                let csrf = csrf_of(&page.text().await.unwrap());
                let fields = [
                    ("csrf", csrf.as_str()),
                    ("current", current.as_str()),
                    ("password", new.as_str()),
                    ("confirmation", new.as_str()),
                ];
                let response = intruder
                    .post(app.url("/account/password"))
                    .form(&fields)
                    .send()
                    .await
                    .unwrap();
                if response.status() != StatusCode::OK {
                    break;
                }
                (current, made) = (new, made + 1);
            }
            (intruder, made)
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (intruder, made) = changes.await.unwrap();
    assert!(made > 0, "changes ran before the reset");
    let dn = people_dn(ACTIVE_UID);
    assert_eq!(
        app.directory.whoami(&dn, NEW_PASSWORD),
        0,
        "the reset's password holds"
    );
    assert!(
        !is_signed_in(&app, &intruder).await,
        "the other session is over"
    );
}

/// Guarantee 3: the request times out while the directory applies the new password
/// (its answer held back longer than the request may last). The write happened,
/// so everything that must follow it happens too: the link is spent, the other
/// links voided, the sessions ended, the notice sent, the audit row written.
async fn a_reset_cut_off_after_the_directory_write_still_finishes(backend: Backend) {
    let mut proxy = None;
    let (app, smtp) = start(backend, |t| {
        let (t, front) = LdapProxy::in_front_of_settings(&t);
        let t = t
            .replace("timeout = \"2s\"", "timeout = \"6s\"")
            .replace("[server]\n", "[server]\nrequest_timeout = \"1s\"\n");
        proxy = Some(front);
        t
    })
    .await;
    let proxy = proxy.unwrap();
    let dn = people_dn(ACTIVE_UID);
    let student = browser();
    assert!(signs_in(&app, &student, ACTIVE_UID, DEMO_PASSWORD).await);
    // A link of another kind is live: the change of personal e-mail.
    let page = student.get(app.url("/account/email")).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let asked = student
        .post(app.url("/account/email"))
        .form(&[("csrf", csrf.as_str()), ("email", "chloe.new@example.org")])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    // Its link to the new address, and the warning to the old one.
    smtp.wait_for(2, 20).await;
    let token = reset_link(&app, &smtp, 2).await;

    proxy.hold_write_answers(Some(Duration::from_secs(3)));
    let (status, _) = reset(&app, &token).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "the request was cut off"
    );
    proxy.hold_write_answers(None);

    let pool = app.state.store.pool();
    let spent = eventually(15, || async {
        let used: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT used_at FROM one_time_tokens WHERE purpose = 'reset' AND used_at IS NOT NULL",
        )
        .fetch_optional(pool)
        .await
        .unwrap();
        used.is_some()
    })
    .await;
    assert!(spent, "the link was spent after the write");
    assert_eq!(
        app.directory.whoami(&dn, NEW_PASSWORD),
        0,
        "the password was written"
    );
    assert!(!is_signed_in(&app, &student).await, "the sessions ended");
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    let audited: Option<String> = sqlx::query_scalar(
        "SELECT outcome FROM audit_events WHERE kind = 'reset.password_changed'",
    )
    .fetch_optional(pool)
    .await
    .unwrap();
    assert_eq!(audited.as_deref(), Some("ok"));
    let voided: Option<i64> =
        sqlx::query_scalar("SELECT voided_at FROM one_time_tokens WHERE purpose = 'email_change'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(voided.is_some(), "the account's other links were voided");
    let subjects: Vec<String> = smtp
        .wait_for(4, 20)
        .await
        .iter()
        .filter_map(|raw| {
            let message = mail_parser::MessageParser::default().parse(raw.as_bytes())?;
            message.subject().map(str::to_owned)
        })
        .collect();
    assert!(
        subjects
            .iter()
            .any(|s| s.starts_with("Votre mot de passe a été changé")),
        "the notice went out: {subjects:?}"
    );
    app.shutdown().await;
}

/// Guarantee 4: signing out needs only the database. With the directory down, the
/// session ends and the application still hears of it over the back channel.
async fn sign_out_with_the_directory_down_still_tells_the_applications(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let (bcl, seen) = backchannel_receiver().await;
    let new = NewClient {
        backchannel_logout_uri: Some(bcl),
        ..confidential("ent", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("ent", &[])).await;
    let (status, _) = redeem_code(&app, ("ent", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    app.directory.slapd.stop();
    let out = app.post_form_response("/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let told = eventually(15, || async { seen.lock().unwrap().len() == 1 }).await;
    assert!(told, "the logout token reached the application");
    app.directory.slapd.start().unwrap();
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

/// Guarantee 4: a crash right after a reset commits loses no logout. The
/// application is unreachable at first; after the restart it gets its logout.
async fn logouts_queued_by_a_reset_survive_a_crash(backend: Backend) {
    let (app, smtp) = start(backend, |t| t).await;
    let port = free_port();
    let new = NewClient {
        backchannel_logout_uri: Some(format!("http://127.0.0.1:{port}/bcl")),
        ..confidential("ent", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("ent", &[])).await;
    let (status, _) = redeem_code(&app, ("ent", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let token = reset_link(&app, &smtp, 0).await;
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let app = app.crash_and_restart().await;
    let seen = backchannel_receiver_on(port).await;
    let told = eventually(60, || async { seen.lock().unwrap().len() == 1 }).await;
    assert!(told, "the logout was delivered after the restart");
    app.shutdown().await;
}

/// Guarantee 5: the old address's cancel and the new address's confirmation,
/// pressed at the same moment, end one way only. Either the address changed and
/// the cancel says it is too late, or the change was cancelled and the
/// confirmation finds its link void, with nothing written.
async fn a_cancel_and_a_confirmation_at_once_end_one_way(backend: Backend) {
    let (app, smtp) = start(backend, |t| t).await;
    let dn = people_dn(ACTIVE_UID);
    let mut seen: Vec<String> = Vec::new();
    let (mut changed, mut cancelled) = (0, 0);
    // Four rounds: a student may ask for five changes an hour.
    for round in 0..4 {
        // A cancel ends the session that asked: sign in for each round.
        assert!(signs_in(&app, &app.http, ACTIVE_UID, DEMO_PASSWORD).await);
        let old = app.directory.read(&dn, "supannMailPerso")[0].clone();
        let new = format!("chloe.tour{round}@example.org");
        let (status, _) = app.post_form("/account/email", &[("email", &new)]).await;
        assert_eq!(status, StatusCode::OK);
        let mails: Vec<String> = smtp
            .wait_for(seen.len() + 2, 20)
            .await
            .into_iter()
            .filter(|m| !seen.contains(m))
            .collect();
        let link_in = |to: &str, path: &str| link_token(mail_to(&mails, to, path), path);
        let confirm = link_in(&new, "/account/email/confirm");
        let cancel = link_in(&old, "/account/email/cancel");
        seen.extend(mails.iter().cloned());
        let (laptop, phone) = (browser(), browser());
        let confirm_csrf = open_link(&app, &laptop, "/account/email/confirm", &confirm).await;
        let cancel_csrf = open_link(&app, &phone, "/account/email/cancel", &cancel).await;
        let ((confirmed, _), (cancel_status, cancel_page)) = tokio::join!(
            submit_link(
                &app,
                &laptop,
                "/account/email/confirm",
                &confirm,
                &confirm_csrf
            ),
            submit_link(&app, &phone, "/account/email/cancel", &cancel, &cancel_csrf),
        );
        let now = app.directory.read(&dn, "supannMailPerso");
        if now == vec![new.clone()] {
            changed += 1;
            assert_eq!(confirmed, StatusCode::OK);
            assert_eq!(cancel_status, StatusCode::CONFLICT, "{cancel_page}");
            // The old address was told of the change too.
            smtp.wait_for(seen.len() + 1, 20).await;
            seen = smtp.received();
        } else {
            cancelled += 1;
            assert_eq!(now, vec![old], "nothing written");
            assert_eq!(confirmed, StatusCode::GONE);
            assert_eq!(cancel_status, StatusCode::OK, "{cancel_page}");
        }
    }
    eprintln!("{changed} changed, {cancelled} cancelled");
    app.shutdown().await;
}

both_backends!(
    a_cancel_and_a_confirmation_at_once_end_one_way,
    credentials_issued_while_a_reset_commits_die_with_it,
    a_reset_wins_over_changes_made_while_it_runs,
    a_reset_cut_off_after_the_directory_write_still_finishes,
    sign_out_with_the_directory_down_still_tells_the_applications,
    logouts_queued_by_a_reset_survive_a_crash,
);
