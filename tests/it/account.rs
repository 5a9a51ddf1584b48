//! Signing in, the session, the change of password and the change of personal
//! e-mail, end to end over HTTP: real slapd, real SMTP server process, SQLite and
//! PostgreSQL.

use crate::common::ldap_proxy::LdapProxy;
use crate::common::{
    self, ACTIVE_EMAIL, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, TestSmtp, both_backends,
    browser, csrf_of, follow_and_submit, is_signed_in, link_token, mail_to, people_dn, signs_in,
};
use guichet::dev::slapd;
use reqwest::StatusCode;

const NEW_EMAIL: &str = "chloe.nouvelle@example.org";
const NEW_PASSWORD: &str = "Magnolia-au-vent-42";

async fn start(backend: Backend) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, |t| t).await
}

async fn sign_in(app: &TestApp, login: &str, password: &str) -> reqwest::Response {
    app.post_form_response(
        "/login",
        &[
            ("login", login),
            ("password", password),
            ("next", "/account"),
        ],
    )
    .await
}

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn signing_in_opens_a_session_that_signing_out_ends(backend: Backend) {
    let (app, _smtp) = start(backend).await;
    let anonymous = app.get("/account").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?next=%2Faccount");
    let wrong = sign_in(&app, ACTIVE_UID, "not-the-password").await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let page = wrong.text().await.unwrap();
    assert!(
        page.contains("Identifiant ou mot de passe incorrect"),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{ACTIVE_UID}\"")),
        "the login is kept"
    );
    let unknown = sign_in(&app, "personne", "whatever").await;
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Identifiant ou mot de passe incorrect")
    );
    let signed = sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(signed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&signed), "/account");
    let cookie = signed
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("guichet_session="))
        .expect("a session cookie");
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    let secret = cookie["guichet_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let page = app.get("/account").await.text().await.unwrap();
    assert!(
        page.contains(ACTIVE_EMAIL) && page.contains("Mon compte"),
        "{page}"
    );
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sso_sessions")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], secret, "only the hash is stored");
    let csrf = csrf_of(&page);
    let out = app
        .http
        .post(app.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    // The old cookie value is dead even if a browser kept it.
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(app.url("/account"))
        .header("cookie", format!("guichet_session={secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::SEE_OTHER);
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM audit_events WHERE kind = 'login' ORDER BY at, outcome",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(audit.iter().filter(|o| *o == "bad_credentials").count(), 2);
    assert!(audit.contains(&"ok".to_owned()));
    app.shutdown().await;
}

/// A pending account's login answers like a wrong password: logins are
/// predictable, and "not activated" would tell a stranger who has just enrolled.
/// The page always offers activation; a profile that reveals account status says
/// it outright. A locked account is told only to whoever gives its password.
async fn pending_and_locked_accounts_are_told_why(backend: Backend) {
    let (app, _smtp) = start(backend).await;
    let pending = sign_in(&app, common::PENDING_UID, "anything-at-all").await;
    assert_eq!(pending.status(), StatusCode::UNAUTHORIZED);
    let page = pending.text().await.unwrap();
    assert!(
        page.contains("Identifiant ou mot de passe incorrect")
            && !page.contains("pas encore activé")
            && page.contains("href=\"/activation\""),
        "{page}"
    );
    let outcome: String = sqlx::query_scalar(
        "SELECT outcome FROM audit_events WHERE kind = 'login' AND account LIKE 'uid=ldurand,%'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(outcome, "not_activated", "the helpdesk still sees why");
    let revealing = TestApp::start_tweaked(backend, "paris-cite", |t| {
        t.replace(
            "[profile.identity]\n",
            "[profile.identity]\nreveal_account_status = true\n",
        )
    })
    .await;
    let told = sign_in(&revealing, common::PENDING_UID, "anything-at-all").await;
    let page = told.text().await.unwrap();
    assert!(
        page.contains("pas encore activé") && page.contains("href=\"/activation\""),
        "{page}"
    );
    revealing.shutdown().await;
    let locked_wrong = sign_in(&app, "mpetit", "not-the-password").await;
    assert!(
        locked_wrong
            .text()
            .await
            .unwrap()
            .contains("Identifiant ou mot de passe incorrect"),
        "locked is told only to the right password"
    );
    let locked = sign_in(&app, "mpetit", DEMO_PASSWORD).await;
    assert_eq!(locked.status(), StatusCode::UNAUTHORIZED);
    let page = locked.text().await.unwrap();
    assert!(
        page.contains("Ce compte est bloqué") && page.contains("href=\"/help\""),
        "{page}"
    );
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM sso_sessions")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(count, 0);
    app.shutdown().await;
}

async fn sign_in_goes_back_only_to_local_pages_and_is_rate_limited(backend: Backend) {
    let (app, _smtp) = start(backend).await;
    let form = app
        .get("/login?next=https%3A%2F%2Fevil.example%2F")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        form.contains("name=\"next\" value=\"&#x2f;account\""),
        "{form}"
    );
    let response = app
        .post_form_response(
            "/login",
            &[
                ("login", ACTIVE_UID),
                ("password", DEMO_PASSWORD),
                ("next", "//evil.example/"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/account");
    // Sign-ins that succeed use up nothing: a student with many devices, or a
    // lecture hall behind one address, is never stopped by them.
    for _ in 0..8 {
        let again = sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
        assert_eq!(again.status(), StatusCode::SEE_OTHER);
    }
    // The same login, attacked: the per-identifier limit (5 an hour) stops it.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(sign_in(&app, "cbernard", "guess").await.status());
    }
    assert_eq!(
        statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    let limited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE kind = 'rate_limit'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(limited, 1);
    app.shutdown().await;
}

/// Guesses sent all at once are each counted before the password is checked: the
/// per-identifier limit (5 an hour) lets exactly five through.
async fn parallel_guesses_are_all_counted(backend: Backend) {
    let (app, _smtp) = start(backend).await;
    // One CSRF token for all: each page fetch would set a new cookie under the
    // others' feet.
    let csrf = common::csrf_of(&app.get("/login").await.text().await.unwrap());
    let guesses = (0..10).map(|_| {
        app.http
            .post(app.url("/login"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("login", ACTIVE_UID),
                ("password", "guess"),
                ("next", "/account"),
            ])
            .send()
    });
    let statuses: Vec<StatusCode> = futures_util::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.as_ref().unwrap().status())
        .collect();
    assert!(!statuses.contains(&StatusCode::FORBIDDEN), "{statuses:?}");
    let refused = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(refused, 5, "{statuses:?}");
    app.shutdown().await;
}

/// On a shared computer, the next student's sign-in ends the session the browser
/// still held: only one live session remains, the new student's.
async fn a_sign_in_ends_the_session_the_browser_held(backend: Backend) {
    let (app, _smtp) = start(backend).await;
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    let next = sign_in(&app, "e2301999", DEMO_PASSWORD).await;
    assert_eq!(next.status(), StatusCode::SEE_OTHER);
    let live: Vec<String> =
        sqlx::query_scalar("SELECT account_dn FROM sso_sessions WHERE ended_at IS NULL")
            .fetch_all(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(live, [common::people_dn("e2301999")]);
    let page = app.get("/account").await.text().await.unwrap();
    assert!(page.contains("e2301999"), "the new student's account");
    app.shutdown().await;
}

async fn sessions_end_when_idle_and_when_the_password_is_reset(backend: Backend) {
    let (app, smtp) = start(backend).await;
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    // Idle for longer than the idle lifetime (1 h by default).
    sqlx::query("UPDATE sso_sessions SET last_seen_at = last_seen_at - 3601")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    let reset = common::resets_password(&app, &smtp, ACTIVE_EMAIL, "Nouveau-depart-2026");
    assert_eq!(reset.await, StatusCode::OK);
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "the reset ended the session"
    );
    app.shutdown().await;
}

async fn changing_the_personal_email_confirms_the_new_and_tells_the_old(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    assert_eq!(
        app.get("/account/email").await.status(),
        StatusCode::SEE_OTHER,
        "signed in only"
    );
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    let (status, page) = app
        .post_form("/account/email", &[("email", ACTIVE_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("déjà votre adresse"), "{page}");
    let (status, page) = app
        .post_form("/account/email", &[("email", "x*)(uid=*")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    let (status, page) = app
        .post_form("/account/email", &[("email", NEW_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mails = smtp.wait_for(2, 20).await;
    let link = mail_to(&mails, NEW_EMAIL, "/account/email/confirm");
    let token = link_token(link, "/account/email/confirm");
    // The old address is told at once, with a link that would cancel the change.
    let warning = mail_to(&mails, ACTIVE_EMAIL, "/account/email/cancel");
    assert!(!warning.contains(NEW_EMAIL), "the new address is masked");
    assert_eq!(
        app.directory.read(&dn, "supannMailPerso"),
        vec![ACTIVE_EMAIL],
        "nothing written yet"
    );
    // A reset link sent to the old address before the change...
    app.post_form("/password/forgot", &[("identifier", ACTIVE_EMAIL)])
        .await;
    let mails = smtp.wait_for(3, 20).await;
    let old_reset = mails
        .iter()
        .find(|m| m.contains(&format!("To: {ACTIVE_EMAIL}")) && m.contains("/password/reset"))
        .expect("a reset link to the old address");
    let old_reset = link_token(old_reset, "/password/reset");
    // Confirmed from another device, not signed in.
    let phone = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let shown = phone
        .get(app.url(&format!("/account/email/confirm?t={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status(), StatusCode::OK);
    let page = shown.text().await.unwrap();
    assert!(page.contains(NEW_EMAIL));
    assert_eq!(
        app.directory.read(&dn, "supannMailPerso"),
        vec![ACTIVE_EMAIL],
        "opening changes nothing"
    );
    let done = phone
        .post(app.url("/account/email/confirm"))
        .form(&[("csrf", csrf_of(&page).as_str()), ("t", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(app.directory.read(&dn, "supannMailPerso"), vec![NEW_EMAIL]);
    // ...dies with it: whoever reads the old mailbox cannot reset the password.
    let gone = app.get(&format!("/password/reset?t={old_reset}")).await;
    assert_eq!(
        gone.status(),
        StatusCode::GONE,
        "the old address's reset link is void"
    );
    let mails = smtp.wait_for(4, 20).await;
    let notice = mails
        .iter()
        .find(|m| {
            m.contains(&format!("To: {ACTIVE_EMAIL}"))
                && !m.contains("/password/reset")
                && !m.contains("/account/email/cancel")
        })
        .expect("a notice to the old address");
    let text = mail_parser::MessageParser::default()
        .parse(notice.as_bytes())
        .unwrap()
        .body_text(0)
        .unwrap()
        .into_owned();
    assert!(
        text.contains("c***@example.org") && !text.contains(NEW_EMAIL),
        "{text}"
    );
    let again = phone
        .post(app.url("/account/email/confirm"))
        .form(&[("csrf", csrf_of(&page).as_str()), ("t", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::GONE);
    // The new address is the one forgot-password now uses.
    app.post_form("/password/forgot", &[("identifier", NEW_EMAIL)])
        .await;
    let mails = smtp.wait_for(5, 20).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&format!("To: {NEW_EMAIL}")) && m.contains("/password/reset"))
    );
    // Another account's address: the page, and the mail to the student's own
    // address with its cancel link, are those a free address gets (the student
    // learns nothing of other accounts); that address's owner is told, with no
    // link, and nothing changes.
    let earlier = smtp.received();
    let (status, page) = app
        .post_form("/account/email", &[("email", common::PENDING_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mails: Vec<String> = smtp
        .wait_for(earlier.len() + 2, 20)
        .await
        .into_iter()
        .filter(|m| !earlier.contains(m))
        .collect();
    let notice = mail_to(&mails, common::PENDING_EMAIL, "/help");
    assert!(!notice.contains("/account/email/confirm"), "no link");
    let cancel = link_token(
        mail_to(&mails, NEW_EMAIL, "/account/email/cancel"),
        "/account/email/cancel",
    );
    let page = browser()
        .get(app.url(&format!("/account/email/cancel?t={cancel}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        page.status(),
        StatusCode::OK,
        "a change waits, as for any address"
    );
    assert_eq!(app.directory.read(&dn, "supannMailPerso"), vec![NEW_EMAIL]);
    assert_eq!(
        app.directory
            .read(&people_dn(common::PENDING_UID), "supannMailPerso"),
        vec![common::PENDING_EMAIL]
    );
    app.shutdown().await;
}

/// `/account/password`: the current password first; a wrong one changes nothing.
/// The new one is written at once; the student's other sessions end, this one
/// stays; the personal address is told.
async fn a_signed_in_student_changes_their_password(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    let (here, elsewhere) = (browser(), browser());
    assert!(signs_in(&app, &here, ACTIVE_UID, DEMO_PASSWORD).await);
    assert!(signs_in(&app, &elsewhere, ACTIVE_UID, DEMO_PASSWORD).await);
    let account = here.get(app.url("/account")).send().await.unwrap();
    assert!(
        account
            .text()
            .await
            .unwrap()
            .contains("href=\"/account/password\"")
    );
    let change = async |current: &str, new: &str| {
        let page = here.get(app.url("/account/password")).send().await.unwrap();
        assert_eq!(page.headers()["cache-control"], "no-store");
        let csrf = csrf_of(&page.text().await.unwrap());
        let fields = [
            ("csrf", csrf.as_str()),
            ("current", current),
            ("password", new),
            ("confirmation", new),
        ];
        let response = here
            .post(app.url("/account/password"))
            .form(&fields)
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    };
    let (status, page) = change("not-my-password", NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("Le mot de passe actuel n’est pas le bon"),
        "{page}"
    );
    assert_eq!(
        app.directory.whoami(&dn, DEMO_PASSWORD),
        0,
        "nothing changed"
    );
    let (status, page) = change(DEMO_PASSWORD, "court").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the profile's rules apply");
    assert!(page.contains("aria-invalid=\"true\""), "{page}");
    let (status, page) = change(DEMO_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Mot de passe changé"), "{page}");
    assert_eq!(
        app.directory.whoami(&dn, NEW_PASSWORD),
        0,
        "written at once"
    );
    assert_eq!(app.directory.whoami(&dn, DEMO_PASSWORD), 49);
    assert!(is_signed_in(&app, &here).await, "this session stays");
    assert!(!is_signed_in(&app, &elsewhere).await, "the other one ended");
    let mails = smtp.wait_for(1, 20).await;
    assert!(
        mails
            .iter()
            .any(|m| m.contains(&format!("To: {ACTIVE_EMAIL}"))),
        "the personal address is told"
    );
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT outcome FROM audit_events WHERE kind = 'account.password_changed' ORDER BY at, outcome",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(audited, ["bad_credentials", "ok"]);
    app.shutdown().await;
}

/// The personal address is where reset links go: once the sign-in is more than
/// five minutes old, changing it needs the current password (a session left open
/// on a shared computer is not enough), and the old address is told at once, with
/// a link that cancels the change until it is confirmed.
async fn the_recovery_address_needs_the_password_and_the_old_one_can_cancel(backend: Backend) {
    let (app, smtp) = start(backend).await;
    let dn = people_dn(ACTIVE_UID);
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    let form = app.get("/account/email").await.text().await.unwrap();
    assert!(
        !form.contains("name=\"current\""),
        "a sign-in moments ago stands for the password"
    );
    // Six minutes later, someone else at the same computer.
    sqlx::query("UPDATE sso_sessions SET created_at = created_at - 360")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let form = app.get("/account/email").await.text().await.unwrap();
    assert!(form.contains("name=\"current\""), "{form}");
    let (status, page) = app
        .post_form("/account/email", &[("email", NEW_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("Saisissez votre mot de passe actuel"),
        "{page}"
    );
    let (status, page) = app
        .post_form(
            "/account/email",
            &[("email", NEW_EMAIL), ("current", "Pas-le-bon-2026")],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("n’est pas le bon"), "{page}");
    let queued: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(queued, 0, "nothing is sent without the password");
    let (status, page) = app
        .post_form(
            "/account/email",
            &[("email", NEW_EMAIL), ("current", DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let mails = smtp.wait_for(2, 20).await;
    let confirm = link_token(
        mail_to(&mails, NEW_EMAIL, "/account/email/confirm"),
        "/account/email/confirm",
    );
    let cancel = link_token(
        mail_to(&mails, ACTIVE_EMAIL, "/account/email/cancel"),
        "/account/email/cancel",
    );
    // The owner reads the old mailbox on their phone, and cancels.
    let phone = browser();
    let (status, page) = follow_and_submit(&app, &phone, "/account/email/cancel", &cancel).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Changement annulé"), "{page}");
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "the session that asked is ended"
    );
    sign_in(&app, ACTIVE_UID, DEMO_PASSWORD).await;
    let dead = phone
        .get(app.url(&format!("/account/email/confirm?t={confirm}")))
        .send()
        .await
        .unwrap();
    assert_eq!(dead.status(), StatusCode::GONE, "the change's link is void");
    assert_eq!(
        app.directory.read(&dn, "supannMailPerso"),
        vec![ACTIVE_EMAIL]
    );
    let spent = phone
        .get(app.url(&format!("/account/email/cancel?t={cancel}")))
        .send()
        .await
        .unwrap();
    assert_eq!(spent.status(), StatusCode::GONE, "a cancel link works once");

    // Confirmed before the old address cancels: too late, and the page says whom
    // to write to.
    let (status, _) = app
        .post_form(
            "/account/email",
            &[("email", NEW_EMAIL), ("current", DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let earlier = mails;
    let mails: Vec<String> = smtp
        .wait_for(4, 20)
        .await
        .into_iter()
        .filter(|m| !earlier.contains(m))
        .collect();
    let confirm = link_token(
        mail_to(&mails, NEW_EMAIL, "/account/email/confirm"),
        "/account/email/confirm",
    );
    let cancel = link_token(
        mail_to(&mails, ACTIVE_EMAIL, "/account/email/cancel"),
        "/account/email/cancel",
    );
    let (status, _) = follow_and_submit(&app, &browser(), "/account/email/confirm", &confirm).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.directory.read(&dn, "supannMailPerso"), vec![NEW_EMAIL]);
    let late = phone
        .get(app.url(&format!("/account/email/cancel?t={cancel}")))
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let page = late.text().await.unwrap();
    assert!(
        page.contains("déjà eu lieu") && page.contains("/help"),
        "{page}"
    );
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, outcome FROM audit_events WHERE kind LIKE 'email_change.%' ORDER BY kind, outcome",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    let audited: Vec<(&str, &str)> = audited
        .iter()
        .map(|(k, o)| (k.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        audited,
        [
            ("email_change.cancelled", "ok"),
            ("email_change.confirmed", "ok"),
            ("email_change.request", "ok"),
            ("email_change.request", "ok"),
            ("email_change.request", "wrong_password"),
        ]
    );
    app.shutdown().await;
}

/// Sign-in tells a stranger nothing by its timing either. An unknown login, an
/// empty password and a pending account's login each cost one bind, as a known
/// login with a wrong password does: to the decoy entry, whose password Guichet
/// replaced at start with a random one hashed with the students' parameters.
async fn an_unknown_login_costs_a_real_bind(backend: Backend) {
    let mut proxy = None;
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        let (t, front) = LdapProxy::in_front_of_settings(&t);
        proxy = Some(front);
        t
    })
    .await;
    let proxy = proxy.unwrap();
    let hash = app.directory.read(slapd::DECOY_DN, "userPassword");
    assert!(
        hash.len() == 1 && hash[0].starts_with("{ARGON2}$argon2id$v=19$m=8192,t=1,p=1$"),
        "set at start with the [hashing] settings: {hash:?}"
    );
    let student_binds = || -> Vec<String> {
        proxy
            .binds()
            .into_iter()
            .filter(|dn| dn != slapd::SERVICE_DN)
            .collect()
    };
    let tries = [
        (
            "personne-inconnue",
            "Un-essai-2026",
            slapd::DECOY_DN.to_owned(),
        ),
        (ACTIVE_UID, "", slapd::DECOY_DN.to_owned()),
        (
            common::PENDING_UID,
            "Un-essai-2026",
            slapd::DECOY_DN.to_owned(),
        ),
        (ACTIVE_UID, "Un-essai-2026", people_dn(ACTIVE_UID)),
    ];
    for (login, password, bound) in tries {
        let before = student_binds().len();
        let refused = sign_in(&app, login, password).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{login}");
        assert_eq!(student_binds()[before..], [bound], "{login} costs one bind");
    }
    app.shutdown().await;
}

both_backends!(
    an_unknown_login_costs_a_real_bind,
    the_recovery_address_needs_the_password_and_the_old_one_can_cancel,
    a_signed_in_student_changes_their_password,
    signing_in_opens_a_session_that_signing_out_ends,
    pending_and_locked_accounts_are_told_why,
    sign_in_goes_back_only_to_local_pages_and_is_rate_limited,
    sessions_end_when_idle_and_when_the_password_is_reset,
    a_sign_in_ends_the_session_the_browser_held,
    parallel_guesses_are_all_counted,
    changing_the_personal_email_confirms_the_new_and_tells_the_old,
);
