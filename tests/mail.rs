//! Mail through the outbox to a real SMTP server process, on both backends.

mod common;

use common::{Backend, TestApp, TestSmtp, with_transport};
use guichet::store::{Outgoing, Store, unix_now};

fn activation_mail(recipient: &str) -> Outgoing {
    Outgoing {
        kind: "activation_link".to_owned(),
        recipient: recipient.to_owned(),
        lang: "fr".to_owned(),
        payload: serde_json::json!({
            "name": "Léa Durand",
            "hours": 12,
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

both_backends!(
    queued_mail_reaches_the_smtp_server_once_and_the_link_is_wiped,
    mail_queued_during_an_smtp_outage_goes_out_once_smtp_is_back,
);
