//! The SQL store on both backends: the same migrations, the same queries.

use crate::common::{self, Backend, TestDatabase, both_backends};
use guichet::config::Settings;
use guichet::domain::Token;
use guichet::store::{LinkState, Outgoing, Purpose, Store, StoreError};

async fn connect(database: &TestDatabase) -> Store {
    let text = common::settings_text(
        "ldapi://%2Ftmp%2Fnone",
        &database.url,
        std::path::Path::new("/tmp"),
        "paris-cite",
    );
    let settings = Settings::from_toml(&text).unwrap();
    Store::connect(&settings.database).await.unwrap()
}

async fn migrations_create_the_schema_and_can_run_again(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = connect(&database).await;
    store.migrate().await.unwrap();
    store.migrate().await.unwrap();
    for table in ["one_time_tokens", "outbox", "rate_limits", "audit_events"] {
        let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(store.pool())
            .await
            .unwrap_or_else(|e| panic!("{table}: {e}"));
        assert_eq!(count, 0);
    }
    // `$n` placeholders work on both backends.
    sqlx::query("INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, $3)")
        .bind("ip:192.0.2.1")
        .bind(1_700_000_000_i64)
        .bind(1_i64)
        .execute(store.pool())
        .await
        .unwrap();
    let hits: i64 = sqlx::query_scalar("SELECT hits FROM rate_limits WHERE bucket = $1")
        .bind("ip:192.0.2.1")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(hits, 1);
    store.close().await;
}

async fn a_second_instance_sees_the_same_schema(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (first, second) = (connect(&database).await, connect(&database).await);
    // Two instances starting at once both migrate; neither fails.
    let (a, b) = tokio::join!(first.migrate(), second.migrate());
    a.unwrap();
    b.unwrap();
    second.ping().await.unwrap();
}

async fn ping_reports_an_unreachable_database(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let store = connect(&database).await;
    store.ping().await.unwrap();
    match backend {
        Backend::Postgres => database.drop_postgres_now().await,
        Backend::Sqlite => store.close().await,
    }
    let error = store.ping().await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

async fn ready(backend: Backend) -> (TestDatabase, Store) {
    let database = TestDatabase::create(backend).await;
    let store = connect(&database).await;
    store.migrate().await.unwrap();
    (database, store)
}

const DN: &str = "uid=ldurand,ou=people,dc=univ-demo,dc=fr";

async fn issue(store: &Store, token: &Token, now: i64, ttl: i64) {
    let mut conn = store.pool().acquire().await.unwrap();
    let payload = serde_json::json!({"email": "lea.durand@example.org"});
    Store::issue_link(
        &mut conn,
        &token.hash(),
        Purpose::Activation,
        DN,
        &payload,
        now,
        now + ttl,
    )
    .await
    .unwrap();
}

async fn links_are_single_use_expire_and_void_older_ones(backend: Backend) {
    let (_db, store) = ready(backend).await;
    let (first, second) = (Token::generate(), Token::generate());
    issue(&store, &first, 1_000, 3_600).await;
    assert!(matches!(
        store
            .peek_link(&first.hash(), Purpose::Activation, 1_001)
            .await
            .unwrap(),
        LinkState::Live(_)
    ));
    // Peeking (a GET, or a mail scanner) does not use the link up.
    assert!(matches!(
        store
            .peek_link(&first.hash(), Purpose::Activation, 1_002)
            .await
            .unwrap(),
        LinkState::Live(_)
    ));
    issue(&store, &second, 1_010, 3_600).await;
    assert!(matches!(
        store
            .peek_link(&first.hash(), Purpose::Activation, 1_011)
            .await
            .unwrap(),
        LinkState::Voided
    ));
    // The wrong purpose is unknown, as is a link never issued.
    assert!(matches!(
        store
            .peek_link(&second.hash(), Purpose::Reset, 1_011)
            .await
            .unwrap(),
        LinkState::Unknown
    ));
    assert!(matches!(
        store
            .peek_link(&Token::generate().hash(), Purpose::Activation, 1_011)
            .await
            .unwrap(),
        LinkState::Unknown
    ));

    let mut conn = store.pool().acquire().await.unwrap();
    let used = Store::use_link(&mut conn, &second.hash(), Purpose::Activation, 1_020)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(used.account_dn, DN);
    assert_eq!(used.payload["email"], "lea.durand@example.org");
    assert!(
        Store::use_link(&mut conn, &second.hash(), Purpose::Activation, 1_021)
            .await
            .unwrap()
            .is_none()
    );
    assert!(matches!(
        store
            .peek_link(&second.hash(), Purpose::Activation, 1_022)
            .await
            .unwrap(),
        LinkState::Used
    ));

    let late = Token::generate();
    issue(&store, &late, 2_000, 60).await;
    assert!(matches!(
        store
            .peek_link(&late.hash(), Purpose::Activation, 2_060)
            .await
            .unwrap(),
        LinkState::Expired
    ));
    assert!(
        Store::use_link(&mut conn, &late.hash(), Purpose::Activation, 2_061)
            .await
            .unwrap()
            .is_none()
    );
}

async fn racing_uses_of_one_link_let_exactly_one_through(backend: Backend) {
    let (_db, store) = ready(backend).await;
    let token = Token::generate();
    issue(&store, &token, 1_000, 3_600).await;
    let attempts = (0..8).map(|_| {
        let (store, hash) = (store.clone(), token.hash());
        tokio::spawn(async move {
            let mut conn = store.pool().acquire().await.unwrap();
            Store::use_link(&mut conn, &hash, Purpose::Activation, 1_100)
                .await
                .unwrap()
                .is_some()
        })
    });
    let mut winners = 0;
    for attempt in attempts {
        winners += usize::from(attempt.await.unwrap());
    }
    assert_eq!(winners, 1);
}

async fn a_password_change_voids_every_live_link(backend: Backend) {
    let (_db, store) = ready(backend).await;
    let token = Token::generate();
    issue(&store, &token, 1_000, 3_600).await;
    let mut conn = store.pool().acquire().await.unwrap();
    assert_eq!(
        Store::void_links(&mut conn, DN, None, 1_100).await.unwrap(),
        1
    );
    assert!(matches!(
        store
            .peek_link(&token.hash(), Purpose::Activation, 1_101)
            .await
            .unwrap(),
        LinkState::Voided
    ));
}

fn mail(n: usize) -> Outgoing {
    Outgoing {
        kind: "activation_link".to_owned(),
        recipient: format!("student{n}@example.org"),
        lang: "fr".to_owned(),
        payload: serde_json::json!({"link": format!("https://x/activation/secret{n}")}),
        account_dn: Some(DN.to_owned()),
    }
}

async fn the_outbox_hands_each_mail_to_one_worker_and_wipes_links_once_sent(backend: Backend) {
    let (_db, store) = ready(backend).await;
    {
        let mut tx = store.pool().begin().await.unwrap();
        for n in 0..10 {
            Store::enqueue_mail(&mut tx, &mail(n), 1_000).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
    // Three workers claim at once: every row goes to exactly one of them.
    let (a, b, c) = tokio::join!(
        store.claim_mail(1_000, 300, 4),
        store.claim_mail(1_000, 300, 4),
        store.claim_mail(1_000, 300, 4)
    );
    let mut ids: Vec<String> = [a.unwrap(), b.unwrap(), c.unwrap()]
        .concat()
        .into_iter()
        .map(|m| m.id)
        .collect();
    let claimed = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), claimed, "no row claimed twice");
    assert!(claimed >= 4, "claims progress");
    // Nothing more is due while the leases hold.
    let rest = store.claim_mail(1_001, 300, 20).await.unwrap();
    assert_eq!(claimed + rest.len(), 10);
    for row in &rest {
        assert!(store.mail_sent(row, 1_002).await.unwrap());
    }
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE sent_at IS NOT NULL")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(
        payloads.iter().all(|p| p == "{}"),
        "sent rows keep no link: {payloads:?}"
    );
    // A lease that ran out (the worker died) makes the row due again.
    let again = store.claim_mail(1_000 + 301, 300, 20).await.unwrap();
    assert_eq!(again.len(), claimed);
    assert!(again.iter().all(|m| m.attempts == 2));
    assert_eq!(store.pending_mail().await.unwrap(), claimed as i64);
}

/// A worker renews the lease of the mail it is sending; one that died stops renewing.
/// The renewed row stays its worker's; the other is free once its lease runs out,
/// and its first holder can neither renew it nor mark it sent any more.
async fn a_renewed_lease_holds_the_mail_and_one_left_to_run_out_frees_it(backend: Backend) {
    let (_db, store) = ready(backend).await;
    let mut conn = store.pool().acquire().await.unwrap();
    for n in 0..2 {
        Store::enqueue_mail(&mut conn, &mail(n), 1_000)
            .await
            .unwrap();
    }
    drop(conn);
    let mut held = store.claim_mail(1_000, 3, 2).await.unwrap();
    assert_eq!(held.len(), 2);
    let (mut live, mut dead) = (held.remove(0), held.remove(0));
    assert!(store.renew_mail_lease(&mut live, 1_002, 3).await.unwrap());
    assert!(
        store.claim_mail(1_002, 3, 10).await.unwrap().is_empty(),
        "both leases hold before they run out"
    );
    let taken = store.claim_mail(1_003, 3, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "only the lease left to run out is free");
    assert_eq!(taken[0].id, dead.id);
    assert_eq!(taken[0].attempts, 2);
    assert!(
        !store.renew_mail_lease(&mut dead, 1_003, 3).await.unwrap(),
        "its first holder lost it"
    );
    assert!(!store.mail_sent(&dead, 1_004).await.unwrap());
    assert!(store.mail_sent(&taken[0], 1_004).await.unwrap());
    assert!(
        store.renew_mail_lease(&mut live, 1_004, 3).await.unwrap(),
        "renewed again"
    );
    assert!(store.claim_mail(1_006, 3, 10).await.unwrap().is_empty());
    assert!(
        store.mail_sent(&live, 1_006).await.unwrap(),
        "sent under the renewed lease"
    );
    assert_eq!(store.pending_mail().await.unwrap(), 0);
}

async fn failed_mail_is_retried_later_or_given_up(backend: Backend) {
    let (_db, store) = ready(backend).await;
    let mut conn = store.pool().acquire().await.unwrap();
    Store::enqueue_mail(&mut conn, &mail(1), 1_000)
        .await
        .unwrap();
    Store::enqueue_mail(&mut conn, &mail(2), 1_000)
        .await
        .unwrap();
    drop(conn);
    let claimed = store.claim_mail(1_000, 300, 10).await.unwrap();
    store
        .mail_failed(&claimed[0], "connection refused", Some(1_060), 1_001)
        .await
        .unwrap();
    store
        .mail_failed(&claimed[1], "550 no such user", None, 1_001)
        .await
        .unwrap();
    assert!(
        store.claim_mail(1_030, 300, 10).await.unwrap().is_empty(),
        "not before the retry time"
    );
    let retried = store.claim_mail(1_060, 300, 10).await.unwrap();
    assert_eq!(retried.len(), 1);
    assert_eq!(retried[0].id, claimed[0].id);
    assert_eq!(
        retried[0].payload, claimed[0].payload,
        "the link survives a retry"
    );
}

async fn rate_limit_counters_are_shared_and_windowed(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let (one, two) = (connect(&database).await, connect(&database).await);
    one.migrate().await.unwrap();
    // Two instances count into the same window, never past its limit; a refused
    // attempt adds nothing.
    assert!(one.take_hit("ip:192.0.2.7", 1_200, 2, 1_200).await.unwrap());
    assert!(two.take_hit("ip:192.0.2.7", 1_200, 2, 1_210).await.unwrap());
    assert!(!one.take_hit("ip:192.0.2.7", 1_200, 2, 1_211).await.unwrap());
    let count = two.count_hits("ip:192.0.2.7", 1_200).await.unwrap();
    assert_eq!((count.hits, count.last_at), (2, 1_210));
    assert_eq!(one.note_refusal("ip:192.0.2.7", 1_200).await.unwrap(), 1);
    assert!(one.take_hit("ip:192.0.2.8", 1_200, 2, 1_210).await.unwrap());
    // A count given back frees its place; a take that expected another count fails.
    two.give_back_hit("ip:192.0.2.7", 1_200).await.unwrap();
    assert!(
        !one.take_hit_after("ip:192.0.2.7", 1_200, 2, 1_220)
            .await
            .unwrap()
    );
    assert!(
        one.take_hit_after("ip:192.0.2.7", 1_200, 1, 1_220)
            .await
            .unwrap()
    );
    assert!(
        one.take_hit("ip:192.0.2.7", 1_260, 2, 1_260).await.unwrap(),
        "a new window starts afresh"
    );
    assert_eq!(one.forget_hits(1_260).await.unwrap(), 2);
}

/// The hourly purge forgets expired flow state (codes, tokens, sessions, links,
/// counters, retired keys) and records older than their retention, and keeps
/// everything still in use.
async fn the_purge_forgets_what_expired_and_keeps_the_rest(backend: Backend) {
    let (_database, store) = ready(backend).await;
    let now: i64 = 1_800_000_000;
    let day = 86_400;
    let inserts: [(&str, i64); 16] = [
        (
            "INSERT INTO oidc_codes (code_hash, client_id, account_dn, session_hash, redirect_uri, scope, auth_time, created_at, expires_at) VALUES ('c-{n}', 'c', 'dn', 's', 'r', 'openid', 0, 0, $1)",
            0,
        ),
        (
            "INSERT INTO oidc_codes (code_hash, client_id, account_dn, session_hash, redirect_uri, scope, auth_time, created_at, expires_at) VALUES ('c-{n}', 'c', 'dn', 's', 'r', 'openid', 0, 0, $1)",
            now + 60,
        ),
        (
            "INSERT INTO oidc_tokens (token_hash, kind, grant_id, client_id, account_dn, session_hash, scope, auth_time, created_at, expires_at) VALUES ('t-{n}', 'access', 'g', 'c', 'dn', 's', 'openid', 0, 0, $1)",
            now - 2 * day,
        ),
        (
            "INSERT INTO oidc_tokens (token_hash, kind, grant_id, client_id, account_dn, session_hash, scope, auth_time, created_at, expires_at) VALUES ('t-{n}', 'refresh', 'g', 'c', 'dn', 's', 'openid', 0, 0, $1)",
            now + 29 * day,
        ),
        (
            "INSERT INTO sso_sessions (id_hash, account_dn, created_at, last_seen_at, expires_at, ended_at) VALUES ('s-{n}', 'dn', 0, 0, $1, 1)",
            now + day,
        ),
        (
            "INSERT INTO sso_sessions (id_hash, account_dn, created_at, last_seen_at, expires_at) VALUES ('s-{n}', 'dn', 0, 0, $1)",
            now + 3600,
        ),
        (
            "INSERT INTO one_time_tokens (token_hash, purpose, account_dn, created_at, expires_at) VALUES ('l-{n}', 'reset', 'dn', 0, $1)",
            now - 40 * day,
        ),
        (
            "INSERT INTO one_time_tokens (token_hash, purpose, account_dn, created_at, expires_at) VALUES ('l-{n}', 'reset', 'dn', 0, $1)",
            now - day,
        ),
        (
            "INSERT INTO audit_events (id, at, kind, outcome) VALUES ('a-{n}', $1, 'login', 'ok')",
            now - 400 * day,
        ),
        (
            "INSERT INTO audit_events (id, at, kind, outcome) VALUES ('a-{n}', $1, 'login', 'ok')",
            now - 300 * day,
        ),
        (
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('b-{n}', $1, 1)",
            now - 2 * day,
        ),
        (
            "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('b-{n}', $1, 1)",
            now - 60,
        ),
        (
            "INSERT INTO oidc_keys (kid, alg, private_der, public_jwk, created_at, retired_at, published_until) VALUES ('k-{n}', 'RS256', 'x', '{}', 0, 0, $1)",
            now - 1,
        ),
        (
            "INSERT INTO oidc_keys (kid, alg, private_der, public_jwk, created_at, retired_at, published_until) VALUES ('k-{n}', 'RS256', 'x', '{}', 0, 0, $1)",
            now + day,
        ),
        (
            "INSERT INTO oidc_revoked_grants (grant_id, revoked_at) VALUES ('g-{n}', $1)",
            now - 3 * day,
        ),
        (
            "INSERT INTO oidc_revoked_grants (grant_id, revoked_at) VALUES ('g-{n}', $1)",
            now,
        ),
    ];
    for (n, (sql, at)) in inserts.iter().enumerate() {
        sqlx::query(&sql.replace("{n}", &n.to_string()))
            .bind(*at)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let retention = guichet::store::Retention {
        audit_secs: 365 * day,
        support_secs: 365 * day,
    };
    assert_eq!(
        store.purge(now, retention).await.unwrap(),
        8,
        "one of each pair"
    );
    for table in [
        "oidc_codes",
        "oidc_tokens",
        "sso_sessions",
        "one_time_tokens",
        "audit_events",
        "rate_limits",
        "oidc_keys",
        "oidc_revoked_grants",
    ] {
        let left: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(left, 1, "{table} keeps what is still in use");
    }
    assert_eq!(store.purge(now, retention).await.unwrap(), 0, "idempotent");
}

both_backends!(
    the_purge_forgets_what_expired_and_keeps_the_rest,
    links_are_single_use_expire_and_void_older_ones,
    racing_uses_of_one_link_let_exactly_one_through,
    a_password_change_voids_every_live_link,
    the_outbox_hands_each_mail_to_one_worker_and_wipes_links_once_sent,
    a_renewed_lease_holds_the_mail_and_one_left_to_run_out_frees_it,
    failed_mail_is_retried_later_or_given_up,
    rate_limit_counters_are_shared_and_windowed,
    migrations_create_the_schema_and_can_run_again,
    a_second_instance_sees_the_same_schema,
    ping_reports_an_unreachable_database,
);

#[tokio::test]
async fn an_unreachable_postgres_is_a_clear_start_error() {
    let text = common::settings_text(
        "ldapi://%2Ftmp%2Fnone",
        "postgres://postgres@127.0.0.1:1/nothing",
        std::path::Path::new("/tmp"),
        "paris-cite",
    );
    let settings = Settings::from_toml(&text).unwrap();
    let error = Store::connect(&settings.database).await.unwrap_err();
    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

/// `database.sqlite_synchronous` reaches every SQLite connection: FULL unless
/// the settings say NORMAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_commits_are_as_durable_as_the_settings_say() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    for (line, expected) in [
        ("", 2_i64),
        ("sqlite_synchronous = \"normal\"\n", 1),
        ("sqlite_synchronous = \"full\"\n", 2),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let text = common::settings_text(
            "ldap://127.0.0.1:9",
            &database.url,
            dir.path(),
            "paris-cite",
        )
        .replace(
            "max_connections = 5\n",
            &format!("max_connections = 5\n{line}"),
        );
        let settings = guichet::config::Settings::from_toml(&text).unwrap();
        let store = Store::connect(&settings.database).await.unwrap();
        let synchronous: i64 = sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(synchronous, expected, "{line:?}");
        store.close().await;
    }
}
