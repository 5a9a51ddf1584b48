//! Fair rate limits (DESIGN §7): the first morning of term, a guesser, a spray, a
//! load balancer. Clients come from distinct loopback addresses (127.0.0.0/8), so
//! Guichet sees distinct client addresses, as it would on a campus.

use reqwest::StatusCode;

use crate::common::{
    self, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, TestSmtp, both_backends, browser_at,
    sign_in_with,
};

async fn start(backend: Backend, limits: &str) -> (TestApp, TestSmtp) {
    TestApp::start_with_smtp(backend, |t| {
        t.replace("[invitations]", &format!("{limits}\n[invitations]"))
    })
    .await
}

/// What one rate-limit bucket counts now, whatever its window.
async fn counted(app: &TestApp, bucket: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT CAST(COALESCE(SUM(hits), 0) AS BIGINT) FROM rate_limits WHERE bucket = $1",
    )
    .bind(bucket)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap()
}

/// The `Retry-After` of a refusal, in seconds.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// 60 students of one lecture hall behind the campus address, all at once: typos
/// count, right passwords never do, so every one of them signs in, and the hall
/// keeps signing in afterwards.
async fn a_lecture_hall_behind_one_address_all_sign_in(backend: Backend) {
    let (app, _smtp) = start(backend, "").await;
    let hall = app.directory.add_students("amphi", 60);
    for login in &hall[..10] {
        let typo = sign_in_with(&app, &browser_at("127.0.0.7"), login, "Demo-Passw0rd").await;
        assert_eq!(typo.status(), StatusCode::UNAUTHORIZED);
    }
    let everyone = hall.iter().map(|login| {
        let app = &app;
        async move {
            let browser = browser_at("127.0.0.7");
            sign_in_with(app, &browser, login, DEMO_PASSWORD)
                .await
                .status()
        }
    });
    let statuses = futures_util::future::join_all(everyone).await;
    let signed_in = statuses
        .iter()
        .filter(|s| **s == StatusCode::SEE_OTHER)
        .count();
    assert_eq!(signed_in, 60, "{statuses:?}");
    assert_eq!(
        counted(&app, "login:ip:127.0.0.7").await,
        10,
        "only the typos count against the address"
    );
    let later = sign_in_with(&app, &browser_at("127.0.0.7"), &hall[0], DEMO_PASSWORD).await;
    assert_eq!(later.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

/// A guesser who fails five times on a student's login is refused, from his own
/// address, with when to come back; refused guesses add nothing. The student,
/// from hers, signs in at once.
async fn a_guesser_cannot_lock_the_student_out(backend: Backend) {
    let (app, _smtp) = start(backend, "").await;
    let guesser = browser_at("127.0.0.66");
    for _ in 0..5 {
        let guess = sign_in_with(&app, &guesser, ACTIVE_UID, "guess").await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..10 {
        let refused = sign_in_with(&app, &guesser, ACTIVE_UID, "guess").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&refused);
        assert!((1..=3600).contains(&wait), "Retry-After {wait}");
        let page = refused.text().await.unwrap();
        assert!(page.contains("Trop de tentatives"), "{page}");
        assert!(page.contains("Vous pourrez réessayer dans "), "{page}");
    }
    assert_eq!(
        counted(&app, "login:ip:127.0.0.66").await,
        5,
        "refused attempts are not counted"
    );
    let student = browser_at("127.0.0.8");
    let own = sign_in_with(&app, &student, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(own.status(), StatusCode::SEE_OTHER, "the student signs in");
    let audited: Vec<String> = sqlx::query_scalar(
        "SELECT client_ip FROM audit_events WHERE kind = 'rate_limit' AND outcome = 'refused'",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(audited, ["127.0.0.66"], "one audit row, the guesser's");
    app.shutdown().await;
}

/// A guesser spread over many addresses is slowed account-wide (a doubling delay,
/// not a lockout), and so is any stranger; the browser the student signed in with
/// before is not, and signs in at once.
async fn strangers_are_slowed_but_the_students_own_browser_is_not(backend: Backend) {
    let limits = "[limits]\nper_account = { free = 6, window = \"1h\", first_delay = \"1m\", max_delay = \"5m\" }";
    let (app, smtp) = start(backend, limits).await;
    let laptop = browser_at("127.0.0.9");
    let first = sign_in_with(&app, &laptop, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let cookies: Vec<&str> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        cookies
            .iter()
            .any(|c| c.starts_with("guichet_device=") && c.contains("HttpOnly")),
        "{cookies:?}"
    );
    for address in 20..26 {
        let guesser = browser_at(&format!("127.0.0.{address}"));
        let guess = sign_in_with(&app, &guesser, ACTIVE_UID, "guess").await;
        assert_eq!(guess.status(), StatusCode::UNAUTHORIZED);
    }
    let stranger = sign_in_with(&app, &browser_at("127.0.0.30"), ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(
        stranger.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "past the free attempts, strangers wait"
    );
    assert!((1..=60).contains(&retry_after(&stranger)));
    let page = stranger.text().await.unwrap();
    assert!(
        page.contains("Vous pourrez réessayer dans 1 minute."),
        "{page}"
    );
    let next_guess = sign_in_with(&app, &browser_at("127.0.0.31"), ACTIVE_UID, "guess").await;
    assert_eq!(next_guess.status(), StatusCode::TOO_MANY_REQUESTS);
    let own = sign_in_with(&app, &laptop, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(
        own.status(),
        StatusCode::SEE_OTHER,
        "the student's own browser is not slowed"
    );
    // Each sign-in gives the browser a new cookie: one copied from it before (on a
    // shared computer) is trusted no more.
    let copied = browser_with_cookie(&app, &device_cookie(&first));
    let copy = sign_in_with(&app, &copied, ACTIVE_UID, DEMO_PASSWORD).await;
    assert_eq!(copy.status(), StatusCode::TOO_MANY_REQUESTS);
    // The trusted browser's own typos count for it alone, and do not free strangers.
    let typo = sign_in_with(&app, &laptop, ACTIVE_UID, "typo").await;
    assert_eq!(typo.status(), StatusCode::UNAUTHORIZED);
    // A student on a new computer gets out through her mailbox: the browser that
    // resets the password is trusted for the account.
    let (status, _) = app
        .post_form("/password/forgot", &[("identifier", common::ACTIVE_EMAIL)])
        .await;
    assert_eq!(status, StatusCode::OK);
    let mails = smtp.wait_for(1, 20).await;
    let token = common::link_token(&mails[0], "/password/reset");
    let new_password = "Tramontane-2026!";
    let fields = [
        ("t", token.as_str()),
        ("password", new_password),
        ("confirmation", new_password),
    ];
    let (status, page) = app.post_form("/password/reset", &fields).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let after = sign_in_with(&app, &app.http, ACTIVE_UID, new_password).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

/// The `guichet_device` cookie a response sets.
fn device_cookie(response: &reqwest::Response) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("guichet_device="))
        .expect("a device cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

/// A browser elsewhere holding `cookie` (copied from another one).
fn browser_with_cookie(app: &TestApp, cookie: &str) -> reqwest::Client {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    jar.add_cookie_str(cookie, &app.url("/").parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .redirect(reqwest::redirect::Policy::none())
        .local_address("127.0.0.32".parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// A campus NAT named in `limits.shared_networks` is not limited as one client:
/// its students' failures on many logins never refuse it; each login from it is
/// still limited, and other networks keep their own limit.
async fn a_shared_network_is_not_one_client(backend: Backend) {
    let limits =
        "[limits]\nper_address = { max = 3, window = \"10m\" }\nshared_networks = [\"127.0.0.7\"]";
    let (app, _smtp) = start(backend, limits).await;
    let hall = app.directory.add_students("amphi", 5);
    let (campus, outside) = (browser_at("127.0.0.7"), browser_at("127.0.0.8"));
    for login in &hall {
        let typo = sign_in_with(&app, &campus, login, "typo").await;
        assert_eq!(typo.status(), StatusCode::UNAUTHORIZED, "campus, {login}");
    }
    let mut outside_statuses = Vec::new();
    for login in &hall[..4] {
        outside_statuses.push(sign_in_with(&app, &outside, login, "typo").await.status());
    }
    assert_eq!(
        outside_statuses.last(),
        Some(&StatusCode::TOO_MANY_REQUESTS),
        "{outside_statuses:?}"
    );
    for _ in 0..4 {
        sign_in_with(&app, &campus, &hall[0], "typo").await;
    }
    let locked = sign_in_with(&app, &campus, &hall[0], "typo").await;
    assert_eq!(
        locked.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "one login from the campus"
    );
    app.shutdown().await;
}

/// A password spray: 20 addresses try 6 logins each with wrong passwords. A
/// student who is not targeted, from her own address, signs in as usual: nothing
/// service-wide is a count that strangers can spend.
async fn a_password_spray_does_not_stop_other_students(backend: Backend) {
    let (app, _smtp) = start(backend, "").await;
    let logins = [
        "adurand", "jmartin", "nobody1", "nobody2", "lpetit", "nobody3",
    ];
    let spray = (40..60).map(|address| {
        let app = &app;
        async move {
            let sprayer = browser_at(&format!("127.0.0.{address}"));
            let mut statuses = Vec::new();
            for login in logins {
                statuses.push(
                    sign_in_with(app, &sprayer, login, "Printemps2026!")
                        .await
                        .status(),
                );
            }
            statuses
        }
    });
    let answers: Vec<StatusCode> = futures_util::future::join_all(spray)
        .await
        .into_iter()
        .flatten()
        .collect();
    // Each address stays under its own limits; the accounts it targets are
    // throttled once they have had their free attempts.
    assert!(
        answers
            .iter()
            .all(|s| [StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS].contains(s)),
        "{answers:?}"
    );
    assert!(
        answers.contains(&StatusCode::TOO_MANY_REQUESTS),
        "the spray is slowed"
    );
    let student = browser_at("127.0.0.99");
    assert!(common::signs_in(&app, &student, ACTIVE_UID, DEMO_PASSWORD).await);
    app.shutdown().await;
}

/// An address past its limit is refused again from memory, for the rest of the
/// window: its hammering reaches neither the database (the bucket notes one
/// refusal, not six) nor the directory, and students elsewhere sign in.
async fn a_refused_address_is_refused_again_without_the_database(backend: Backend) {
    let limits = "[limits]\nper_address = { max = 3, window = \"10m\" }";
    let (app, _smtp) = start(backend, limits).await;
    let hammer = browser_at("127.0.0.50");
    for _ in 0..3 {
        let response = sign_in_with(&app, &hammer, "nobody1", "Printemps2026!").await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    for _ in 0..6 {
        let response = sign_in_with(&app, &hammer, ACTIVE_UID, DEMO_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait = retry_after(&response);
        assert!((1..=600).contains(&wait), "Retry-After {wait}");
    }
    let (hits, refused): (i64, i64) = sqlx::query_as(
        "SELECT hits, refused FROM rate_limits WHERE bucket = 'login:ip:127.0.0.50'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!((hits, refused), (3, 1), "one refusal reached the database");
    let student = browser_at("127.0.0.51");
    assert!(common::signs_in(&app, &student, ACTIVE_UID, DEMO_PASSWORD).await);
    app.shutdown().await;
}

/// Behind a load balancer, the client is the rightmost address of
/// `X-Forwarded-For` that is not a trusted proxy: the audit log names it, each
/// student behind the balancer has buckets of her own, and an IPv6 client counts
/// for its /64. Without `trusted_proxies`, the header is not believed.
async fn the_client_address_comes_from_trusted_proxies_only(backend: Backend) {
    let limits = "[limits]\nper_identifier = { max = 2, window = \"1h\" }";
    let (app, _smtp) = start(backend, limits).await;
    assert_eq!(
        forwarded_for(&app, "198.51.100.1").await,
        StatusCode::UNAUTHORIZED
    );
    let mut app = app;
    app.settings_text = app.settings_text.replace(
        "[server]\n",
        "[server]\ntrusted_proxies = [\"127.0.0.0/24\"]\n",
    );
    let app = app.restart().await;
    let behind = |client| forwarded_for(&app, client);
    assert_eq!(behind("198.51.100.7").await, StatusCode::UNAUTHORIZED);
    assert_eq!(behind("198.51.100.7").await, StatusCode::UNAUTHORIZED);
    assert_eq!(behind("198.51.100.7").await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        behind("198.51.100.8").await,
        StatusCode::UNAUTHORIZED,
        "another student behind the balancer is counted apart"
    );
    assert_eq!(behind("2001:db8:1:2::a").await, StatusCode::UNAUTHORIZED);
    assert_eq!(behind("2001:db8:1:2::b").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        behind("2001:db8:1:2:ffff::c").await,
        StatusCode::TOO_MANY_REQUESTS,
        "addresses of one /64 share a bucket"
    );
    assert_eq!(behind("2001:db8:1:3::a").await, StatusCode::UNAUTHORIZED);
    let seen: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT client_ip FROM audit_events WHERE kind = 'login' ORDER BY client_ip",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        seen,
        [
            "127.0.0.1",
            "198.51.100.7",
            "198.51.100.8",
            "2001:db8:1:2::a",
            "2001:db8:1:2::b",
            "2001:db8:1:3::a"
        ],
        "the proxy itself before it was trusted, then the students behind it, \
         never the hop the client forged"
    );
    app.shutdown().await;
}

/// A wrong sign-in through a balancer at 127.0.0.1 that says it forwards for
/// `client`, after a first hop the client itself forged.
async fn forwarded_for(app: &TestApp, client: &str) -> StatusCode {
    let balancer = common::browser();
    let page = balancer.get(app.url("/login")).send().await.unwrap();
    let csrf = common::csrf_of(&page.text().await.unwrap());
    balancer
        .post(app.url("/login"))
        .header("x-forwarded-for", format!("6.6.6.6, {client}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", ACTIVE_UID),
            ("password", "guess"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

both_backends!(
    a_lecture_hall_behind_one_address_all_sign_in,
    a_guesser_cannot_lock_the_student_out,
    strangers_are_slowed_but_the_students_own_browser_is_not,
    a_password_spray_does_not_stop_other_students,
    a_refused_address_is_refused_again_without_the_database,
    the_client_address_comes_from_trusted_proxies_only,
    a_shared_network_is_not_one_client,
);
