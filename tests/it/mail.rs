//! Mail through the outbox to a real SMTP server process, on both backends.

use crate::common::{
    self, Backend, SmtpOptions, SmtpSecurity, TestApp, TestSmtp, both_backends, with_transport,
};
use guichet::store::{Outgoing, Store, unix_now};
use std::time::Duration;

fn activation_mail(recipient: &str) -> Outgoing {
    Outgoing {
        kind: "activation_link".to_owned(),
        recipient: recipient.to_owned(),
        lang: "fr".to_owned(),
        payload: serde_json::json!({
            "name": "Léa Durand",
            "lifetime": 43200,
            "link": "http://localhost/activation/SECRET-LINK-VALUE",
        }),
        account_dn: Some(common::people_dn("ldurand")),
    }
}

async fn enqueue(app: &TestApp, mail: &Outgoing) {
    let mut conn = app.state.store.pool().acquire().await.unwrap();
    Store::enqueue_mail(&mut conn, mail, unix_now())
        .await
        .unwrap();
    app.state.outbox.waker().notify_one();
}

async fn rows(app: &TestApp) -> Vec<(Option<i64>, String, i64)> {
    sqlx::query_as::<_, (Option<i64>, String, i64)>("SELECT sent_at, payload, attempts FROM outbox")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap()
}

async fn queued_mail_reaches_the_smtp_server_once_and_the_link_is_wiped(backend: Backend) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_transport(t, &smtp.transport())
    })
    .await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    let received = smtp.wait_for(1, 20).await;
    assert_eq!(received.len(), 1);
    let raw = &received[0];
    assert!(raw.contains("To: lea.durand@example.org"), "{raw}");
    assert!(
        raw.contains("Subject: =?utf-8?") || raw.contains("Subject: Activez votre compte"),
        "{raw}"
    );
    assert!(raw.contains("SECRET-LINK-VALUE"));
    assert!(raw.contains("multipart/alternative"));
    // Once sent, the row keeps no link.
    let mut state = rows(&app).await;
    for _ in 0..40 {
        if state[0].0.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        state = rows(&app).await;
    }
    assert!(state[0].0.is_some(), "marked sent");
    assert_eq!(state[0].1, "{}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1, "sent exactly once");
    app.shutdown().await;
}

async fn mail_queued_during_an_smtp_outage_goes_out_once_smtp_is_back(backend: Backend) {
    let port = common::free_port();
    let transport = format!(
        "transport = {{ kind = \"smtp\", host = \"127.0.0.1\", port = {port}, security = \"none\", timeout = \"2s\" }}"
    );
    let app =
        TestApp::start_tweaked(backend, "paris-cite", |t| with_transport(t, &transport)).await;
    enqueue(&app, &activation_mail("theo.martin@example.org")).await;
    // The first attempt fails: the row waits for its retry, link intact.
    let mut state = rows(&app).await;
    for _ in 0..100 {
        if state[0].2 >= 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        state = rows(&app).await;
    }
    assert_eq!(state[0].0, None, "not sent while SMTP is down");
    assert!(state[0].1.contains("SECRET-LINK-VALUE"));
    let smtp = TestSmtp::start_on(port);
    let received = smtp.wait_for(1, 20).await;
    assert_eq!(received.len(), 1, "delivered after the outage");
    assert!(received[0].contains("To: theo.martin@example.org"));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(smtp.received().len(), 1, "and only once");
    app.shutdown().await;
}

/// Waits until `check` holds for the outbox rows (up to 10 s), and returns them.
async fn rows_until(
    app: &TestApp,
    check: impl Fn(&[(Option<i64>, String, i64)]) -> bool,
) -> Vec<(Option<i64>, String, i64)> {
    let mut state = rows(app).await;
    for _ in 0..200 {
        if check(&state) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        state = rows(app).await;
    }
    state
}

fn authenticated(security: SmtpSecurity) -> SmtpOptions {
    SmtpOptions {
        security,
        auth: Some(("guichet".to_owned(), "relay-secret".to_owned())),
        ..SmtpOptions::default()
    }
}

async fn sends_through(smtp: &TestSmtp, transport: &str, backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| with_transport(t, transport)).await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    let received = smtp.wait_for(1, 20).await;
    assert_eq!(received.len(), 1, "delivered through {transport}");
    assert!(received[0].contains("SECRET-LINK-VALUE"));
    let state = rows_until(&app, |r| r[0].0.is_some()).await;
    assert!(state[0].0.is_some(), "marked sent");
    app.shutdown().await;
}

async fn mail_goes_out_over_starttls_with_the_relays_password(backend: Backend) {
    let smtp = TestSmtp::start_with(common::free_port(), authenticated(SmtpSecurity::Starttls));
    sends_through(&smtp, &smtp.transport(), backend).await;
}

async fn mail_goes_out_over_implicit_tls_with_the_relays_password(backend: Backend) {
    let smtp = TestSmtp::start_with(common::free_port(), authenticated(SmtpSecurity::Implicit));
    sends_through(&smtp, &smtp.transport(), backend).await;
}

/// A relay whose certificate no trusted CA signed gets nothing: not the link, not
/// the password. The mail waits for the settings to be fixed.
async fn a_relay_with_an_untrusted_certificate_gets_no_mail(backend: Backend) {
    let smtp = TestSmtp::start_with(common::free_port(), authenticated(SmtpSecurity::Starttls));
    let untrusted = smtp
        .transport()
        .replace(&format!(", ca_file = \"{}\"", smtp.ca_file().display()), "");
    assert!(!untrusted.contains("ca_file"));
    let app =
        TestApp::start_tweaked(backend, "paris-cite", |t| with_transport(t, &untrusted)).await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    let errors = || async {
        sqlx::query_scalar::<_, Option<String>>("SELECT last_error FROM outbox")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap()
    };
    let mut error = errors().await;
    for _ in 0..200 {
        if error.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        error = errors().await;
    }
    let error = error.expect("the attempt failed");
    assert!(error.to_lowercase().contains("certificate"), "{error}");
    let state = rows(&app).await;
    assert_eq!(state[0].0, None, "not sent");
    assert!(state[0].1.contains("SECRET-LINK-VALUE"), "kept for a retry");
    assert!(smtp.received().is_empty());
    app.shutdown().await;
}

/// A refused SMTP login is a settings problem: the mail is kept and retried, not
/// given up as a refused message would be.
async fn a_refused_smtp_login_keeps_the_mail_for_a_retry(backend: Backend) {
    let smtp = TestSmtp::start_with(common::free_port(), authenticated(SmtpSecurity::Implicit));
    let wrong = smtp.transport().replace("relay-secret", "wrong-secret");
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| with_transport(t, &wrong)).await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    let outcome = || async {
        sqlx::query_as::<_, (Option<i64>, Option<String>)>(
            "SELECT failed_at, last_error FROM outbox",
        )
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
    };
    let mut attempt = outcome().await;
    for _ in 0..200 {
        if attempt.1.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        attempt = outcome().await;
    }
    let (failed_at, last_error) = attempt;
    let state = rows(&app).await;
    assert_eq!(failed_at, None, "not given up");
    assert!(last_error.unwrap_or_default().contains("535"));
    assert!(state[0].1.contains("SECRET-LINK-VALUE"), "kept for a retry");
    assert!(
        !format!("{:?}", app.state.settings).contains("wrong-secret"),
        "the relay password stays out of Debug"
    );
    assert!(smtp.received().is_empty());
    app.shutdown().await;
}

fn recipients(received: &[String]) -> Vec<String> {
    let mut to: Vec<String> = received
        .iter()
        .filter_map(|raw| {
            raw.lines()
                .find_map(|l| l.strip_prefix("To: "))
                .map(str::to_owned)
        })
        .collect();
    to.sort();
    to
}

const THREE: [&str; 3] = ["a@example.org", "b@example.org", "c@example.org"];

/// SIGTERM while the relay is still answering DATA: that message finishes, the rest
/// waits in the outbox, and the next start sends each remaining one once.
async fn a_restart_mid_send_sends_every_mail_exactly_once(backend: Backend) {
    let slow = SmtpOptions {
        data_delay: 1.0,
        ..SmtpOptions::default()
    };
    let smtp = TestSmtp::start_with(common::free_port(), slow);
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_transport(t, &smtp.transport())
    })
    .await;
    for to in THREE {
        enqueue(&app, &activation_mail(to)).await;
    }
    let in_flight = rows_until(&app, |r| r.iter().any(|row| row.2 == 1)).await;
    assert!(
        in_flight.iter().all(|row| row.0.is_none()),
        "the first is in flight, unsent"
    );
    let app = app.restart().await;
    let received = smtp.wait_for(3, 20).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let received_later = smtp.received();
    assert_eq!(received.len(), 3);
    assert_eq!(recipients(&received_later), THREE, "each mail once");
    let state = rows_until(&app, |r| r.iter().all(|row| row.0.is_some())).await;
    assert!(state.iter().all(|row| row.0.is_some()), "all marked sent");
    assert!(
        state.iter().all(|row| row.2 == 1),
        "each claimed once: {state:?}"
    );
    app.shutdown().await;
}

/// A crash before the relay has the whole message (here while it answers RCPT): the
/// relay keeps nothing, the row stays leased so no other instance sends it meanwhile,
/// and once the lease runs out it goes out once, with the same Message-ID.
///
/// SMTP cannot do better for a crash after the final "." and before the relay's 250:
/// the relay has the message and we cannot know it, so it is sent again after the
/// lease. The stable Message-ID lets mail clients fold such a copy (RFC 5321 §6.1).
async fn a_crash_mid_send_loses_nothing_and_sends_nothing_twice(backend: Backend) {
    let slow = SmtpOptions {
        rcpt_delay: 1.5,
        ..SmtpOptions::default()
    };
    let smtp = TestSmtp::start_with(common::free_port(), slow);
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_transport(t, &smtp.transport())
    })
    .await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    rows_until(&app, |r| r[0].2 == 1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = app.crash_and_restart().await;
    app.state.outbox.waker().notify_one();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        smtp.received().is_empty(),
        "nothing kept from the cut send, nothing sent under the lease"
    );
    let state = rows(&app).await;
    assert_eq!(state[0].0, None);
    assert!(
        state[0].1.contains("SECRET-LINK-VALUE"),
        "the link is kept for the retry"
    );
    // Time passes: the crashed worker's lease runs out.
    sqlx::query("UPDATE outbox SET lease_until = $1")
        .bind(guichet::store::unix_now() - 1)
        .execute(app.state.store.pool())
        .await
        .unwrap();
    app.state.outbox.waker().notify_one();
    let received = smtp.wait_for(1, 20).await;
    let state = rows_until(&app, |r| r[0].0.is_some()).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(smtp.received().len(), 1, "sent once");
    let id: String = sqlx::query_scalar("SELECT id FROM outbox")
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
    assert!(
        received[0].contains(&format!("Message-ID: <{id}@")),
        "{}",
        received[0]
    );
    assert_eq!(state[0].2, 2, "claimed twice, delivered once");
    app.shutdown().await;
}

/// A relay slower than the lease (4.5 s to answer DATA, the lease 3 s): the worker
/// renews the lease while it waits, so another worker looking all along never gets
/// the row, and the mail is claimed and sent once.
async fn a_slow_send_keeps_its_lease_from_another_worker(backend: Backend) {
    let slow = SmtpOptions {
        data_delay: 4.5,
        ..SmtpOptions::default()
    };
    let smtp = TestSmtp::start_with(common::free_port(), slow);
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_transport(t, &smtp.transport())
            .replace("retry_base = \"1s\"", "retry_base = \"1s\"\nlease = \"3s\"")
    })
    .await;
    enqueue(&app, &activation_mail("lea.durand@example.org")).await;
    rows_until(&app, |r| r[0].2 == 1).await;
    // The other worker: another instance's, on the same database.
    while rows(&app).await[0].0.is_none() {
        let taken = app.state.store.claim_mail(unix_now(), 3, 1).await.unwrap();
        assert!(taken.is_empty(), "the row was taken from a live send");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let state = rows(&app).await;
    assert_eq!(state[0].2, 1, "claimed once");
    assert_eq!(smtp.received().len(), 1, "sent once");
    app.shutdown().await;
}

both_backends!(
    a_slow_send_keeps_its_lease_from_another_worker,
    queued_mail_reaches_the_smtp_server_once_and_the_link_is_wiped,
    mail_queued_during_an_smtp_outage_goes_out_once_smtp_is_back,
    mail_goes_out_over_starttls_with_the_relays_password,
    mail_goes_out_over_implicit_tls_with_the_relays_password,
    a_relay_with_an_untrusted_certificate_gets_no_mail,
    a_refused_smtp_login_keeps_the_mail_for_a_retry,
    a_restart_mid_send_sends_every_mail_exactly_once,
    a_crash_mid_send_loses_nothing_and_sends_nothing_twice,
);
