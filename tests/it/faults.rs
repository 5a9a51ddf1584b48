//! The fault matrix (issue 14): a component dies or goes away in the middle of a flow,
//! and nothing is lost, no account is half-written, no link works twice, and a mail
//! is sent twice only where SMTP leaves no choice. The rows other modules already
//! cover are listed in the README's testing section; this module holds the rest.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::ldap_proxy::{Cut, LdapProxy};
use crate::common::tcp_proxy::TcpProxy;
use crate::common::{
    self, ACTIVE_EMAIL, ACTIVE_UID, Backend, DEMO_PASSWORD, PENDING_EMAIL, PENDING_UID,
    SmtpOptions, TestApp, TestDatabase, TestDirectory, TestSmtp, both_backends, browser, csrf_of,
    is_signed_in, link_token, mail_to, people_dn, signs_in, with_transport,
};
use guichet::config::Settings;
use guichet::store::{Outgoing, Store, unix_now};
use reqwest::StatusCode;

const NEW_PASSWORD: &str = "Magnolia-au-vent-42";
const LATER_PASSWORD: &str = "Glycine-sous-la-pluie-8";

async fn start(backend: Backend, tweak: impl FnOnce(String) -> String) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, tweak).await
}

/// The app with its directory behind a proxy that can cut a write.
async fn start_behind_ldap_proxy(backend: Backend) -> (TestApp, TestSmtp, LdapProxy) {
    let mut proxy = None;
    let (app, smtp) = start(backend, |t| {
        let (t, front) = LdapProxy::in_front_of_settings(&t);
        proxy = Some(front);
        t
    })
    .await;
    (app, smtp, proxy.unwrap())
}

/// Posts a form to the instance at `at` with `browser`'s CSRF value.
async fn post_at(
    browser: &reqwest::Client,
    at: SocketAddr,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let page = browser
        .get(format!("http://{at}/activation"))
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = browser
        .post(format!("http://{at}{path}"))
        .form(&form)
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn open_at(browser: &reqwest::Client, at: SocketAddr, path: &str, token: &str) -> StatusCode {
    browser
        .get(format!("http://{at}{path}?t={token}"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Sets `password` through the link at `path` on the instance at `at`.
async fn save_at(
    browser: &reqwest::Client,
    at: SocketAddr,
    path: &str,
    token: &str,
    password: &str,
) -> (StatusCode, String) {
    let fields = [
        ("t", token),
        ("password", password),
        ("confirmation", password),
    ];
    post_at(browser, at, path, &fields).await
}

/// Asks for a reset link for the active account and returns its token.
async fn reset_link(app: &TestApp, smtp: &TestSmtp) -> String {
    let before = smtp.received().len();
    let (status, _) = app
        .post_form("/password/forgot", &[("identifier", ACTIVE_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mails = smtp.wait_for(before + 1, 20).await;
    link_token(
        mail_to(&mails, ACTIVE_EMAIL, "/password/reset"),
        "/password/reset",
    )
}

async fn reset(app: &TestApp, token: &str) -> (StatusCode, String) {
    save_at(&app.http, app.addr, "/password/reset", token, NEW_PASSWORD).await
}

/// How many times each outbox row was received, by the row id in its Message-ID.
fn copies_per_message(received: &[String]) -> HashMap<String, usize> {
    let mut copies = HashMap::new();
    for raw in received {
        let message = mail_parser::MessageParser::default()
            .parse(raw.as_bytes())
            .unwrap();
        let id = message.message_id().expect("a Message-ID");
        let row = id.split('@').next().unwrap().to_owned();
        *copies.entry(row).or_insert(0) += 1;
    }
    copies
}

/// Waits until nothing more arrives for a second, then checks that no mail came
/// twice; the messages received.
async fn each_mail_once(smtp: &TestSmtp, expected: usize) -> Vec<String> {
    smtp.wait_for(expected, 20).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let received = smtp.received();
    assert_eq!(received.len(), expected, "every mail, and no more");
    let copies = copies_per_message(&received);
    assert!(copies.values().all(|&n| n == 1), "no duplicate: {copies:?}");
    received
}

async fn audited(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM audit_events WHERE kind = $1 AND outcome = 'ok'")
        .bind(kind)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

// --- SIGKILL of Guichet while the outbox sends ---------------------------------

// Enough that mail is still waiting at the third kill: while a killed worker's
// message waits out its lease, the restarted one sends about a dozen others.
const MAILS: usize = 60;
const KILLS: usize = 3;

fn serve(config: &Path) -> common::Served {
    common::serve(config, Stdio::inherit())
}

fn mail(n: usize) -> Outgoing {
    Outgoing {
        kind: "activation_link".to_owned(),
        recipient: format!("etudiant{n}@example.org"),
        lang: "fr".to_owned(),
        payload: serde_json::json!({
            "name": format!("Étudiant {n}"),
            "lifetime": 43200,
            "link": format!("http://localhost/activation/LINK-{n}"),
        }),
        account_dn: None,
    }
}

/// The row a worker held when it died: claimed (leased), neither sent nor given up.
async fn in_flight(store: &Store) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT id FROM outbox WHERE sent_at IS NULL AND failed_at IS NULL \
         AND lease_until IS NOT NULL",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
}

/// Each row's attempts, when it was sent and its last error: what the test saw.
async fn outbox_state(store: &Store) -> Vec<(i64, Option<i64>, Option<String>)> {
    sqlx::query_as("SELECT attempts, sent_at, last_error FROM outbox ORDER BY id")
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn sent_within(store: &Store, id: &str, limit: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        let sent: Option<i64> = sqlx::query_scalar("SELECT sent_at FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(store.pool())
            .await
            .unwrap();
        if sent.is_some() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The real binary, killed with SIGKILL three times while a slow relay takes 60
/// mails, and started again each time. Every mail arrives; the only copies are of
/// the message in flight at a kill (the relay had it, the dead worker never heard
/// its 250), and that message goes out again within seconds of the restart: its
/// lease (3 s here) was no longer renewed.
async fn a_sigkill_while_the_outbox_sends_loses_nothing_and_resends_within_seconds(
    backend: Backend,
) {
    let slow = SmtpOptions {
        data_delay: 0.2,
        ..SmtpOptions::default()
    };
    let smtp = TestSmtp::start_with(common::free_port(), slow);
    let directory = TestDirectory::start();
    let database = TestDatabase::create(backend).await;
    let work = tempfile::tempdir().unwrap();
    let text = common::settings_text(&directory.url(), &database.url, work.path(), "paris-cite")
        .replace("retry_base = \"1s\"", "retry_base = \"1s\"\nlease = \"3s\"");
    let text = with_transport(text, &smtp.transport());
    let config = work.path().join("guichet.toml");
    std::fs::write(&config, &text).unwrap();
    let store = Store::connect(&Settings::from_toml(&text).unwrap().database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let mut queued = Vec::new();
    let mut tx = store.pool().begin().await.unwrap();
    for n in 0..MAILS {
        queued.push(
            Store::enqueue_mail(&mut tx, &mail(n), unix_now())
                .await
                .unwrap(),
        );
    }
    tx.commit().await.unwrap();

    let mut guichet = serve(&config);
    let mut cut_off = Vec::new();
    let mut resent_after = Vec::new();
    for kill in 1..=KILLS {
        smtp.wait_for(MAILS * kill / (KILLS + 1), 60).await;
        let sending = async {
            while in_flight(&store).await.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        // Under a loaded suite a send can fail and wait for its retry: give it time,
        // and say what the outbox held if none is ever caught in flight.
        if tokio::time::timeout(Duration::from_secs(30), sending)
            .await
            .is_err()
        {
            panic!(
                "no mail in flight before kill {kill}: {:?}",
                outbox_state(&store).await
            );
        }
        // Inside that message's DATA step, which takes the relay 200 ms.
        tokio::time::sleep(Duration::from_millis(100)).await;
        guichet.kill();
        let held = in_flight(&store).await;
        assert_eq!(held.len(), 1, "one mail was being sent at kill {kill}");
        guichet = serve(&config);
        let restarted = Instant::now();
        assert!(
            sent_within(&store, &held[0], Duration::from_secs(15)).await,
            "the mail in flight went out again after the restart"
        );
        resent_after.push(restarted.elapsed());
        cut_off.extend(held);
    }
    let all_sent = async {
        while store.pending_mail().await.unwrap() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_sent)
        .await
        .expect("the outbox empties");
    tokio::time::sleep(Duration::from_secs(1)).await;
    guichet.kill();

    let copies = copies_per_message(&smtp.received());
    let lost: Vec<&String> = queued
        .iter()
        .filter(|id| !copies.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "0 lost: {lost:?}");
    let doubled: Vec<&String> = copies.keys().filter(|id| copies[*id] > 1).collect();
    assert!(copies.values().all(|&n| n <= 2), "{copies:?}");
    assert!(
        doubled.iter().all(|id| cut_off.contains(id)),
        "only a message in flight at a kill came twice: {doubled:?}, in flight {cut_off:?}"
    );
    assert!(doubled.len() <= KILLS);
    assert!(
        resent_after.iter().all(|d| *d < Duration::from_secs(8)),
        "resent within seconds of the restart: {resent_after:?}"
    );
    eprintln!(
        "{MAILS} mails, {KILLS} kills: 0 lost, {} duplicates, resent {resent_after:?} after the restarts",
        doubled.len()
    );
}

// --- The directory at the write ------------------------------------------------

/// The directory goes away as the password write is sent: it never has the write.
/// Guichet cannot tell this from a write whose answer is lost, so the page says the
/// change was not confirmed and to send the form again (never that nothing
/// changed); the old password still binds, and the same link sets the password once
/// the directory is back; only then are the records made.
async fn the_directory_lost_at_the_write_changes_nothing_and_the_link_still_works(
    backend: Backend,
) {
    let (app, smtp, proxy) = start_behind_ldap_proxy(backend).await;
    let dn = people_dn(ACTIVE_UID);
    let token = reset_link(&app, &smtp).await;
    proxy.cut_next_write(Cut::BeforeTheWrite);
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("n’a pas confirmé l’enregistrement"), "{page}");
    assert!(!page.contains("Rien n’a été modifié"), "{page}");
    assert_eq!(
        app.directory.whoami(&dn, DEMO_PASSWORD),
        0,
        "nothing written"
    );
    assert_eq!(audited(&app, "reset.password_changed").await, 0);

    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "the same link works: {page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    let (status, _) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::GONE, "and only once");
    assert_eq!(audited(&app, "reset.password_changed").await, 1);
    let mails = each_mail_once(&smtp, 2).await;
    assert!(
        mails.iter().any(|m| !m.contains("/password/reset?t=")),
        "the notice"
    );
    app.shutdown().await;
}

/// The directory applies the new password and dies before its answer leaves: Guichet
/// cannot know the write happened. The sessions were ended before the write, so
/// none outlives it; the link stays usable, and the student's retry (the page
/// asks for one) writes again and makes the records: the link spent, one notice,
/// one audit row.
async fn a_write_whose_answer_is_lost_is_recorded_when_the_student_retries(backend: Backend) {
    let (app, smtp, proxy) = start_behind_ldap_proxy(backend).await;
    let dn = people_dn(ACTIVE_UID);
    let student = browser();
    assert!(signs_in(&app, &student, ACTIVE_UID, DEMO_PASSWORD).await);
    let token = reset_link(&app, &smtp).await;
    proxy.cut_next_write(Cut::AfterTheWrite);
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(
        page.contains("il a peut-être été fait") && !page.contains("Rien n’a été modifié"),
        "the page does not say nothing changed: {page}"
    );
    assert_eq!(
        app.directory.whoami(&dn, NEW_PASSWORD),
        0,
        "the write was applied"
    );
    assert!(
        !is_signed_in(&app, &student).await,
        "the sessions ended at once"
    );

    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "the retry: {page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    let (status, _) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::GONE, "the link is spent");
    assert_eq!(audited(&app, "reset.password_changed").await, 1);
    each_mail_once(&smtp, 2).await;
    app.shutdown().await;
}

// --- The database down mid-flow --------------------------------------------------

/// PostgreSQL goes away between the link's page and its form: the form answers 503
/// and writes nothing, `/readyz` names the database, the JWKS is still served from
/// memory, and once it is back the same
/// link works without a restart, once. (SQLite is a file inside the process: it has
/// no outage of its own short of the process dying, the SIGKILL row.)
async fn the_database_down_mid_flow_changes_nothing_and_the_flow_resumes() {
    let mut proxy = None;
    let (app, smtp) = start(Backend::Postgres, |t| {
        let (t, front) = TcpProxy::in_front_of_database(&t);
        proxy = Some(front);
        t
    })
    .await;
    let proxy = proxy.unwrap();
    let dn = people_dn(ACTIVE_UID);
    let token = reset_link(&app, &smtp).await;
    assert_eq!(
        open_at(&app.http, app.addr, "/password/reset", &token).await,
        StatusCode::OK
    );

    proxy.cut();
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    let ready: serde_json::Value = app.get("/readyz").await.json().await.unwrap();
    assert_eq!(ready["database"], "down");
    assert_eq!(
        app.directory.whoami(&dn, DEMO_PASSWORD),
        0,
        "nothing written"
    );
    // The signing keys are held in memory: a reread that fails keeps them, and
    // the JWKS is still served.
    app.state.keys.reload().await;
    let jwks = app.get("/jwks.json").await;
    assert_eq!(jwks.status(), StatusCode::OK);
    let jwks: serde_json::Value = jwks.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(3));

    proxy.restore();
    let mut ready = app.get("/readyz").await.status();
    for _ in 0..100 {
        if ready == StatusCode::OK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = app.get("/readyz").await.status();
    }
    assert_eq!(ready, StatusCode::OK, "ready again without a restart");
    let (status, page) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "the same link works: {page}");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    let (status, _) = reset(&app, &token).await;
    assert_eq!(status, StatusCode::GONE, "and only once");
    each_mail_once(&smtp, 2).await;
    app.shutdown().await;
}

mod the_database_down_mid_flow_changes_nothing_and_the_flow_resumes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        super::the_database_down_mid_flow_changes_nothing_and_the_flow_resumes().await
    }
}

// --- Two instances on one database ---------------------------------------------

/// Two instances behind a load balancer that sends each request of a student to
/// the other one: activation asked on one, saved on the other; reset likewise.
/// Both flows end as on one instance, each link works once on either, and both
/// outbox workers together send each mail once.
async fn two_instances_alternating_the_steps_of_activation_and_reset_converge(backend: Backend) {
    let (app, smtp) = start(backend, |t| t).await;
    let other = app.another_instance().await;
    let (one, two) = (app.addr, other.addr);
    let dn = people_dn(PENDING_UID);
    let student = browser();

    let ask = [("email", PENDING_EMAIL), ("terms", "accepted")];
    assert_eq!(
        post_at(&student, one, "/activation", &ask).await.0,
        StatusCode::OK
    );
    let mails = smtp.wait_for(1, 20).await;
    let path = "/activation/password";
    let token = link_token(mail_to(&mails, PENDING_EMAIL, path), path);
    assert_eq!(open_at(&student, two, path, &token).await, StatusCode::OK);
    let (status, page) = save_at(&student, one, path, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = save_at(&student, two, path, &token, LATER_PASSWORD).await;
    assert_eq!(status, StatusCode::GONE, "spent on both instances");
    assert_eq!(app.directory.whoami(&dn, NEW_PASSWORD), 0);
    let state = app.directory.read(&dn, "supannRessourceEtatDate");
    assert!(state[0].starts_with("{COMPTE}A:SupannActif:"), "{state:?}");

    let ask = [("identifier", PENDING_EMAIL)];
    assert_eq!(
        post_at(&student, two, "/password/forgot", &ask).await.0,
        StatusCode::OK
    );
    let mails = smtp.wait_for(3, 20).await;
    let path = "/password/reset";
    let token = link_token(mail_to(&mails, PENDING_EMAIL, path), path);
    assert_eq!(open_at(&student, one, path, &token).await, StatusCode::OK);
    let (status, page) = save_at(&student, two, path, &token, LATER_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (status, _) = save_at(&student, one, path, &token, NEW_PASSWORD).await;
    assert_eq!(status, StatusCode::GONE, "spent on both instances");
    assert_eq!(app.directory.whoami(&dn, LATER_PASSWORD), 0);

    // The link, the confirmation, the link, the notice: each once.
    each_mail_once(&smtp, 4).await;
    other.shutdown().await;
    app.shutdown().await;
}

both_backends!(
    a_sigkill_while_the_outbox_sends_loses_nothing_and_resends_within_seconds,
    the_directory_lost_at_the_write_changes_nothing_and_the_link_still_works,
    a_write_whose_answer_is_lost_is_recorded_when_the_student_retries,
    two_instances_alternating_the_steps_of_activation_and_reset_converge,
);
