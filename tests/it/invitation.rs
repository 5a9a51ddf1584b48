//! Invitations to activate, against a real slapd, on both backends, and through a
//! real SMTP server.

use std::time::Duration;

use crate::common::{self, Backend, TestApp, TestSmtp, both_backends, with_transport};
use guichet::flows::invitation::{Invitations, Resent};

/// Sample accounts in `I:SupannCree` with a personal e-mail.
const AWAITING: usize = 8;
/// Of which two share one address (`famille.jumeau@example.org`): never invited.
const TWINS: usize = 2;
const DAY: i64 = 86_400;

fn job<'a>(app: &'a TestApp, reminders: &'a [Duration]) -> Invitations<'a> {
    Invitations {
        store: &app.state.store,
        directory: &app.state.directory,
        profile: &app.state.settings.profile,
        public_url: &app.state.settings.server.public_url,
        reminders,
    }
}

async fn outbox_count(app: &TestApp, kind: &str) -> i64 {
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE kind = $1")
        .bind(kind)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap()
}

async fn each_awaiting_account_is_invited_once_then_reminded_on_schedule(backend: Backend) {
    let app = TestApp::start(backend).await;
    let reminders = [Duration::from_secs(3 * DAY as u64)];
    let now = 1_800_000_000;
    // Two jobs, as two instances would run them.
    let (one, two) = (job(&app, &reminders), job(&app, &reminders));
    let first = one.scan(now).await.unwrap();
    assert_eq!(first.invited, AWAITING - TWINS);
    assert_eq!(first.held, TWINS);
    // Two instances scanning at once invite nobody twice.
    let (a, b) = tokio::join!(one.scan(now + 60), two.scan(now + 60));
    assert_eq!(a.unwrap().invited + b.unwrap().invited, 0);
    assert_eq!(
        outbox_count(&app, "invitation").await,
        (AWAITING - TWINS) as i64
    );
    let early = job(&app, &reminders).scan(now + 2 * DAY).await.unwrap();
    assert_eq!(early.reminded, 0, "not before the reminder is due");
    let (a, b) = tokio::join!(one.scan(now + 3 * DAY), two.scan(now + 3 * DAY));
    assert_eq!(
        a.unwrap().reminded + b.unwrap().reminded,
        AWAITING - TWINS,
        "one reminder each, whichever instance"
    );
    assert_eq!(
        job(&app, &reminders).scan(now + 30 * DAY).await.unwrap(),
        Default::default(),
        "schedule exhausted"
    );
    assert_eq!(
        outbox_count(&app, "invitation").await,
        2 * (AWAITING - TWINS) as i64
    );
    app.shutdown().await;
}

async fn activated_accounts_are_not_reminded(backend: Backend) {
    let app = TestApp::start(backend).await;
    let reminders = [Duration::from_secs(DAY as u64)];
    job(&app, &reminders).scan(1_800_000_000).await.unwrap();
    let dn = common::people_dn("ldurand");
    app.directory.admin_modify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: supannRessourceEtat\nsupannRessourceEtat: {{COMPTE}}A:SupannActif\n"
    ));
    let later = job(&app, &reminders)
        .scan(1_800_000_000 + 2 * DAY)
        .await
        .unwrap();
    assert_eq!(later.reminded, AWAITING - TWINS - 1);
    app.shutdown().await;
}

async fn resend_queues_one_more_invitation(backend: Backend) {
    let app = TestApp::start(backend).await;
    let login = |l: &str| l.parse().unwrap();
    let outcome = job(&app, &[])
        .resend(&login("ldurand"), 1_800_000_000)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        Resent::Sent {
            email: "lea.durand@example.org".to_owned()
        }
    );
    job(&app, &[])
        .resend(&login("ldurand"), 1_800_000_100)
        .await
        .unwrap();
    assert_eq!(outbox_count(&app, "invitation").await, 2);
    assert_eq!(
        job(&app, &[]).resend(&login("cbernard"), 0).await.unwrap(),
        Resent::NotAwaiting
    );
    assert_eq!(
        job(&app, &[]).resend(&login("nobody"), 0).await.unwrap(),
        Resent::UnknownLogin
    );
    app.shutdown().await;
}

async fn the_running_server_invites_within_its_scan_interval(backend: Backend) {
    let smtp = TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        with_transport(t, &smtp.transport()).replace(
            "[invitations]\nenabled = false",
            "[invitations]\nenabled = true\ninterval = \"1s\"",
        )
    })
    .await;
    // The invitations, and the helpdesk's notice about the twins' shared address.
    let sent = AWAITING - TWINS + 1;
    let received = smtp.wait_for(sent, 30).await;
    assert_eq!(received.len(), sent);
    assert!(
        !received
            .iter()
            .any(|m| m.contains("To: famille.jumeau@example.org")),
        "a shared address is not invited"
    );
    let lea = received
        .iter()
        .find(|m| m.contains("To: lea.durand@example.org"))
        .expect("Léa is invited");
    let parsed = mail_parser::MessageParser::default()
        .parse(lea.as_bytes())
        .unwrap();
    let text = parsed.body_text(0).unwrap();
    assert!(
        text.contains("http://localhost/activation") && text.contains("ldurand"),
        "{text}"
    );
    assert!(
        !received
            .iter()
            .any(|m| m.contains("To: chloe.bernard@example.org")),
        "active accounts are not invited"
    );
    assert!(
        !received
            .iter()
            .any(|m| m.contains("To: paul.ancien@example.org")),
        "expired accounts are not invited"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        smtp.received().len(),
        sent,
        "the next scans send nothing more"
    );
    app.shutdown().await;
}

/// An address two awaiting entries share (the sample's twins, `jumeau1` and
/// `jumeau2`, at their family's address) is invited nowhere: each activation would
/// be refused. The helpdesk is told once, with both logins, however many instances
/// scan; once each twin has an address of their own, the next scan invites both.
async fn a_shared_address_invites_no_one_and_tells_the_helpdesk(backend: Backend) {
    let app = TestApp::start(backend).await;
    let reminders = [Duration::from_secs(DAY as u64)];
    let now = 1_800_000_000;
    let (one, two) = (job(&app, &reminders), job(&app, &reminders));
    let (a, b) = tokio::join!(one.scan(now), two.scan(now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.invited + b.invited, AWAITING - TWINS);
    assert_eq!(a.held + b.held, TWINS, "both twins are held, once");
    assert_eq!(outbox_count(&app, "support_shared_address").await, 1);
    let (recipient, payload): (String, String) = sqlx::query_as(
        "SELECT recipient, payload FROM outbox WHERE kind = 'support_shared_address'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(recipient, app.state.settings.profile.support.email.as_str());
    assert!(
        payload.contains("jumeau1") && payload.contains("jumeau2"),
        "{payload}"
    );
    let invited: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'invitation' AND recipient = 'famille.jumeau@example.org'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(invited, 0);
    let login = "jumeau2".parse().unwrap();
    assert_eq!(
        job(&app, &[]).resend(&login, now).await.unwrap(),
        Resent::SharedAddress {
            logins: vec!["jumeau1".to_owned(), "jumeau2".to_owned()]
        }
    );
    // A day later, still shared: still nobody, and the helpdesk is not told again.
    let later = job(&app, &reminders).scan(now + DAY).await.unwrap();
    assert_eq!((later.reminded, later.held), (AWAITING - TWINS, 0));
    assert_eq!(outbox_count(&app, "support_shared_address").await, 1);
    // The helpdesk gives a twin an address of their own: the next scan invites
    // both (each address now names one entry), as first invitations, even with
    // no reminders configured.
    app.directory.admin_modify(&format!(
        "dn: {}\nchangetype: modify\nreplace: supannMailPerso\nsupannMailPerso: jumeau2@example.org\n",
        common::people_dn("jumeau2")
    ));
    let fixed = job(&app, &[]).scan(now + DAY + 60).await.unwrap();
    assert_eq!((fixed.invited, fixed.reminded, fixed.held), (TWINS, 0, 0));
    for to in ["famille.jumeau@example.org", "jumeau2@example.org"] {
        let invited: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'invitation' AND recipient = $1",
        )
        .bind(to)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
        assert_eq!(invited, 1, "{to}");
    }
    let again = job(&app, &[]).scan(now + DAY + 120).await.unwrap();
    assert_eq!(again, Default::default(), "invited once");
    app.shutdown().await;
}

both_backends!(
    a_shared_address_invites_no_one_and_tells_the_helpdesk,
    each_awaiting_account_is_invited_once_then_reminded_on_schedule,
    activated_accounts_are_not_reminded,
    resend_queues_one_more_invitation,
    the_running_server_invites_within_its_scan_interval,
);
