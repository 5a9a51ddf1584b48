//! The CAS 3.0 server over HTTP, against a real slapd and both SQL backends:
//! a student signs in to the ENT through `/cas/login`, the ENT validates the
//! ticket once, and every way a ticket can be misused is refused with the code
//! the specification names.

use std::time::Duration;

use crate::common::cas::{
    Apache, ENT, ProxyCallback, element, exact, failure_code, login_url, register,
    signs_in_for_ticket, sso_ticket, ticket_in, validation,
};
use crate::common::oidc::{
    REDIRECT, authorize_url, backchannel_receiver, confidential, location, login_next, registered,
    sign_in_and_authorize, signs_in_and_returns,
};
use crate::common::{self, ACTIVE_UID, Backend, TestApp, both_backends};
use reqwest::StatusCode;

both_backends!(
    a_student_signs_in_to_the_ent_and_the_ticket_opens_once,
    single_sign_on_renew_and_gateway,
    tickets_are_bound_to_their_service_and_their_seconds,
    every_error_code_on_the_input_that_causes_it,
    parallel_validations_of_one_ticket_give_it_once,
    a_password_reset_kills_outstanding_tickets,
    sign_on_and_logout_span_oidc_and_cas,
    proxying_hands_a_pgt_to_an_https_callback_then_gives_proxy_tickets,
    python_cas_validates_and_reads_single_logout,
    mod_auth_cas_lets_a_student_in_and_single_logout_lets_them_out,
    a_proxy_granting_ticket_dies_when_its_session_goes_idle,
    a_validation_racing_the_logout_leaves_no_service_untold,
);

async fn a_student_signs_in_to_the_ent_and_the_ticket_opens_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    register(
        &app,
        exact("ent", ENT, &["email", "name", "eduperson_affiliation"]),
    )
    .await;
    let ticket = signs_in_for_ticket(&app, ENT, &[]).await;
    assert!(
        ticket.starts_with("ST-") && ticket.len() >= 3 + 32,
        "{ticket}"
    );
    assert!(
        ticket[3..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    );

    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");
    assert_eq!(
        element(&xml, "email").as_deref(),
        Some(format!("{ACTIVE_UID}@univ-demo.fr").as_str())
    );
    assert!(element(&xml, "name").is_some(), "{xml}");
    assert_eq!(element(&xml, "isFromNewLogin").as_deref(), Some("true"));
    assert!(element(&xml, "authenticationDate").is_some());
    assert!(
        !xml.contains("student_number"),
        "only what the ENT is given: {xml}"
    );

    // Once, whatever comes next.
    let again = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        failure_code(&again).as_deref(),
        Some("INVALID_TICKET"),
        "{again}"
    );

    // JSON, and CAS 1.0, for a ticket from the session.
    let ticket = sso_ticket(&app, ENT).await;
    let json: serde_json::Value = serde_json::from_str(
        &validation(
            &app,
            "/p3/serviceValidate",
            &[("service", ENT), ("ticket", &ticket), ("format", "JSON")],
        )
        .await,
    )
    .unwrap();
    let success = &json["serviceResponse"]["authenticationSuccess"];
    assert_eq!(success["user"], ACTIVE_UID, "{json}");
    assert_eq!(success["attributes"]["isFromNewLogin"], false, "{json}");
    let ticket = sso_ticket(&app, ENT).await;
    let text = validation(&app, "/validate", &[("service", ENT), ("ticket", &ticket)]).await;
    assert_eq!(text, format!("yes\n{ACTIVE_UID}\n"));
    let text = validation(&app, "/validate", &[("service", ENT), ("ticket", &ticket)]).await;
    assert_eq!(text, "no\n\n");

    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT kind, outcome FROM audit_events WHERE kind LIKE 'cas.%' ORDER BY id",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    let count = |kind: &str, outcome: &str| {
        audit
            .iter()
            .filter(|(k, o)| k == kind && o == outcome)
            .count()
    };
    assert_eq!(
        (
            count("cas.ticket", "ok"),
            count("cas.validate", "ok"),
            count("cas.validate", "refused")
        ),
        (3, 3, 2),
        "{audit:?}"
    );
    let stored: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM cas_tickets WHERE ticket_hash LIKE 'ST-%'")
            .fetch_one(app.state.store.pool())
            .await
            .unwrap();
    assert_eq!(stored, 0, "tickets are stored by their hash only");
    app.shutdown().await;
}

async fn single_sign_on_renew_and_gateway(backend: Backend) {
    let app = TestApp::start(backend).await;
    register(&app, exact("ent", ENT, &[])).await;
    // Gateway with no session: back to the ENT without a ticket, no login page.
    let response = app.get(&login_url(ENT, &[("gateway", "true")])).await;
    assert_eq!(
        (response.status(), location(&response)),
        (StatusCode::FOUND, ENT.to_owned())
    );

    signs_in_for_ticket(&app, ENT, &[]).await;
    let response = app.get(&login_url(ENT, &[("gateway", "true")])).await;
    ticket_in(&location(&response), ENT);

    // A ticket from the session is refused where renew is asked, and is spent.
    let ticket = sso_ticket(&app, ENT).await;
    let xml = validation(
        &app,
        "/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("renew", "true")],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET"),
        "{xml}"
    );
    let xml = validation(
        &app,
        "/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET"),
        "{xml}"
    );

    // renew: the login page, signed in or not; coming back to the address
    // without signing in again gives no ticket.
    let first = app.get(&login_url(ENT, &[("renew", "true")])).await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let next = login_next(&location(&first));
    let unsigned = app.get(&next).await;
    assert_eq!(
        unsigned.status(),
        StatusCode::SEE_OTHER,
        "to the login page again"
    );
    assert!(location(&unsigned).starts_with("/login?"));
    let to_ent = signs_in_and_returns(&app, &next).await;
    let ticket = ticket_in(&to_ent, ENT);
    let xml = validation(
        &app,
        "/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("renew", "true")],
    )
    .await;
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");

    // A sign-in vouches for one ticket: reopening the address that got it asks
    // for the password again, and a plain request gets an SSO ticket.
    let reopened = app.get(&next).await;
    assert_eq!(
        reopened.status(),
        StatusCode::SEE_OTHER,
        "renew, once per sign-in"
    );
    assert!(location(&reopened).starts_with("/login?"));
    let plain_again = next.replace("renew=true&", "");
    assert_ne!(plain_again, next);
    let response = app.get(&plain_again).await;
    let ticket = ticket_in(&location(&response), ENT);
    let xml = validation(
        &app,
        "/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        element(&xml, "isFromNewLogin").as_deref(),
        Some("false"),
        "{xml}"
    );

    // method=POST: a page that posts the ticket to the ENT.
    let page = app.get(&login_url(ENT, &[("method", "POST")])).await;
    assert_eq!(page.status(), StatusCode::OK);
    // As a browser reads the attribute: minijinja writes `/` as `&#x2f;`.
    let html = page.text().await.unwrap().replace("&#x2f;", "/");
    assert!(html.contains(&format!("action=\"{ENT}\"")), "{html}");
    assert!(html.contains("name=\"ticket\" value=\"ST-"), "{html}");

    // No service: the account page when signed in.
    let plain = app.get("/cas/login").await;
    assert_eq!(
        (plain.status(), location(&plain)),
        (StatusCode::SEE_OTHER, "/account".to_owned())
    );
    app.shutdown().await;
}

async fn tickets_are_bound_to_their_service_and_their_seconds(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        format!("{t}\n[cas]\nticket_lifetime = \"1s\"\n")
    })
    .await;
    register(&app, exact("ent", ENT, &[])).await;
    register(
        &app,
        exact("moodle", "https://moodle.univ-demo.fr/login/index.php", &[]),
    )
    .await;
    // A service that only shares a prefix with a registered one is unknown:
    // a page, never a redirect.
    for stranger in [
        "https://ent.univ-demo.fr/uPortal/Login/../../evil",
        "https://ent.univ-demo.fr/uPortal/LoginX",
        "https://ent.univ-demo.fr.evil.example/uPortal/Login",
        "http://ent.univ-demo.fr/uPortal/Login",
        "javascript:alert(1)",
    ] {
        let response = app.get(&login_url(stranger, &[])).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{stranger}");
        assert!(response.headers().get("location").is_none(), "{stranger}");
        let html = response.text().await.unwrap();
        assert!(html.contains("n’est pas reconnue"), "{html}");
    }
    let ticket = signs_in_for_ticket(&app, ENT, &[]).await;
    // Presented by Moodle: refused, and spent for the ENT too.
    let moodle = "https://moodle.univ-demo.fr/login/index.php";
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", moodle), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_SERVICE"),
        "{xml}"
    );
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET"),
        "{xml}"
    );
    // The same service written differently is the same service.
    let ticket = sso_ticket(&app, ENT).await;
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[
            ("service", "HTTPS://ENT.univ-demo.fr:443/uPortal/Login"),
            ("ticket", &ticket),
        ],
    )
    .await;
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");
    // Past its lifetime.
    let ticket = sso_ticket(&app, ENT).await;
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET"),
        "{xml}"
    );
    app.shutdown().await;
}

async fn every_error_code_on_the_input_that_causes_it(backend: Backend) {
    let app = TestApp::start(backend).await;
    register(&app, exact("ent", ENT, &[])).await;
    let code = |xml: String| failure_code(&xml).unwrap_or_else(|| panic!("a failure: {xml}"));
    signs_in_for_ticket(&app, ENT, &[]).await;

    assert_eq!(
        code(validation(&app, "/p3/serviceValidate", &[("service", ENT)]).await),
        "INVALID_REQUEST"
    );
    let ticket = sso_ticket(&app, ENT).await;
    let repeated = [
        ("service", ENT),
        ("service", ENT),
        ("ticket", ticket.as_str()),
    ];
    assert_eq!(
        code(validation(&app, "/p3/serviceValidate", &repeated).await),
        "INVALID_REQUEST"
    );
    // The refused request spent its ticket all the same.
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(code(xml), "INVALID_TICKET");
    let ticket = sso_ticket(&app, ENT).await;
    let twice = [
        ("service", ENT),
        ("ticket", ticket.as_str()),
        ("ticket", ticket.as_str()),
    ];
    assert_eq!(
        code(validation(&app, "/p3/serviceValidate", &twice).await),
        "INVALID_REQUEST"
    );
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        code(xml),
        "INVALID_TICKET",
        "a repeated ticket is spent too"
    );
    // A validation posted with the wrong media type still gets the protocol's answer.
    let ticket = sso_ticket(&app, ENT).await;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("service", ENT)
        .append_pair("ticket", &ticket)
        .finish();
    let posted = app
        .http
        .post(app.url("/cas/p3/serviceValidate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), StatusCode::OK);
    let xml = posted.text().await.unwrap();
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", ENT), ("ticket", "PT-123")]
            )
            .await
        ),
        "INVALID_TICKET_SPEC"
    );
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", ENT), ("ticket", "ST-nope")]
            )
            .await
        ),
        "INVALID_TICKET"
    );
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", ENT), ("ticket", "ST-<x>")]
            )
            .await
        ),
        "INVALID_TICKET"
    );
    let ticket = sso_ticket(&app, ENT).await;
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", "not a url"), ("ticket", &ticket)]
            )
            .await
        ),
        "INVALID_SERVICE"
    );
    let ticket = sso_ticket(&app, ENT).await;
    let proxying = [
        ("service", ENT),
        ("ticket", ticket.as_str()),
        ("pgtUrl", "https://ent.univ-demo.fr/pgt"),
    ];
    assert_eq!(
        code(validation(&app, "/p3/serviceValidate", &proxying).await),
        "UNAUTHORIZED_SERVICE_PROXY"
    );
    let ticket = sso_ticket(&app, ENT).await;
    let plain_http = [
        ("service", ENT),
        ("ticket", ticket.as_str()),
        ("pgtUrl", "http://ent.univ-demo.fr/pgt"),
    ];
    assert_eq!(
        code(validation(&app, "/p3/serviceValidate", &plain_http).await),
        "INVALID_PROXY_CALLBACK"
    );
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", ENT), ("ticket", "ST-a"), ("format", "YAML")]
            )
            .await
        ),
        "INVALID_REQUEST"
    );
    let proxy = app
        .get("/cas/proxy?pgt=PGT-unknown&targetService=https%3A%2F%2Fent.univ-demo.fr%2F")
        .await;
    assert_eq!(code(proxy.text().await.unwrap()), "INVALID_TICKET");

    // The database gone: INTERNAL_ERROR, in the protocol's body.
    let ticket = sso_ticket(&app, ENT).await;
    app.state.store.close().await;
    assert_eq!(
        code(
            validation(
                &app,
                "/p3/serviceValidate",
                &[("service", ENT), ("ticket", &ticket)]
            )
            .await
        ),
        "INTERNAL_ERROR"
    );
    let json = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("format", "JSON")],
    )
    .await;
    assert!(json.contains("\"INTERNAL_ERROR\""), "{json}");
    app.shutdown().await;
}

async fn parallel_validations_of_one_ticket_give_it_once(backend: Backend) {
    let app = TestApp::start(backend).await;
    register(&app, exact("ent", ENT, &[])).await;
    signs_in_for_ticket(&app, ENT, &[]).await;
    for _ in 0..3 {
        let ticket = sso_ticket(&app, ENT).await;
        let pairs = [("service", ENT), ("ticket", ticket.as_str())];
        let attempts = (0..8).map(|_| validation(&app, "/p3/serviceValidate", &pairs));
        let answers = futures_util::future::join_all(attempts).await;
        let valid = answers
            .iter()
            .filter(|xml| element(xml, "user").is_some())
            .count();
        let refused = answers
            .iter()
            .filter(|xml| failure_code(xml).as_deref() == Some("INVALID_TICKET"))
            .count();
        assert_eq!((valid, refused), (1, 7), "{answers:?}");
    }
    app.shutdown().await;
}

async fn a_password_reset_kills_outstanding_tickets(backend: Backend) {
    let (app, smtp) = TestApp::start_with_smtp(backend, |t| t).await;
    register(&app, exact("ent", ENT, &[])).await;
    signs_in_for_ticket(&app, ENT, &[]).await;
    let outstanding = sso_ticket(&app, ENT).await;
    let reset = common::resets_password(&app, &smtp, common::ACTIVE_EMAIL, "Apres-la-pluie-77");
    assert_eq!(reset.await, StatusCode::OK);
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &outstanding)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET"),
        "{xml}"
    );
    // And the session is gone: the next login asks for the password.
    assert_eq!(
        app.get(&login_url(ENT, &[])).await.status(),
        StatusCode::SEE_OTHER
    );
    app.shutdown().await;
}

/// A CAS service's single-logout endpoint: records the posted `logoutRequest`s.
async fn single_logout_receiver() -> (String, common::oidc::Seen) {
    use axum::extract::{Form, State};
    let seen: common::oidc::Seen = Default::default();
    async fn record(
        State(seen): State<common::oidc::Seen>,
        Form(form): Form<Vec<(String, String)>>,
    ) -> &'static str {
        if let Some((_, message)) = form.into_iter().find(|(k, _)| k == "logoutRequest") {
            seen.lock().unwrap().push(message);
        }
        "ok"
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new()
        .route("/slo", axum::routing::post(record))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/slo"), seen)
}

async fn arrived(seen: &common::oidc::Seen, count: usize) -> Vec<String> {
    for _ in 0..200 {
        if seen.lock().unwrap().len() >= count {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    seen.lock().unwrap().clone()
}

async fn sign_on_and_logout_span_oidc_and_cas(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (bcl, oidc_seen) = backchannel_receiver().await;
    let new = guichet::oidc::clients::NewClient {
        backchannel_logout_uri: Some(bcl),
        ..confidential("moodle", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let (slo, cas_seen) = single_logout_receiver().await;
    register(
        &app,
        guichet::cas::services::NewService {
            single_logout: Some(slo),
            ..exact("ent", ENT, &[])
        },
    )
    .await;

    // Signed in to Moodle through OIDC: the ENT gets its ticket without a login page.
    let back = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let code = common::oidc::param(&back, "code").unwrap().to_owned();
    let (status, _) = common::oidc::redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::OK);
    let ticket = sso_ticket(&app, ENT).await;
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket)],
    )
    .await;
    assert_eq!(
        element(&xml, "isFromNewLogin").as_deref(),
        Some("false"),
        "{xml}"
    );

    // /cas/logout follows only a registered service, and ends both.
    let out = app
        .get(&format!(
            "/cas/logout?service={}",
            url::form_urlencoded::byte_serialize(ENT.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        (out.status(), location(&out)),
        (StatusCode::FOUND, ENT.to_owned())
    );
    let cas = arrived(&cas_seen, 1).await;
    let oidc = arrived(&oidc_seen, 1).await;
    assert_eq!(
        (cas.len(), oidc.len()),
        (1, 1),
        "each application told once"
    );
    assert!(
        cas[0].contains(&format!(
            "<samlp:SessionIndex>{ticket}</samlp:SessionIndex>"
        )),
        "{}",
        cas[0]
    );
    assert!(
        cas[0].contains(&format!(">{ACTIVE_UID}</saml:NameID>")),
        "{}",
        cas[0]
    );
    let first = app.get(&login_url(ENT, &[])).await;
    assert_eq!(
        first.status(),
        StatusCode::SEE_OTHER,
        "signed out of the ENT too"
    );
    let delivered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE kind = 'logout.delivery' AND outcome = 'ok'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(delivered, 2);

    let out = app
        .get("/cas/logout?service=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(
        out.status(),
        StatusCode::OK,
        "an unknown service: the signed-out page"
    );
    app.shutdown().await;
}

async fn proxying_hands_a_pgt_to_an_https_callback_then_gives_proxy_tickets(backend: Backend) {
    let callback = ProxyCallback::start();
    let settings = callback.settings();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| format!("{t}{settings}")).await;
    let webmail = "https://webmail.univ-demo.fr/";
    let callbacks = format!(r"https://127\.0\.0\.1:{}/.*", callback.port);
    let portal = guichet::cas::services::NewService {
        proxy_callbacks: Some(callbacks),
        ..exact("ent", ENT, &[])
    };
    register(&app, portal).await;
    register(&app, exact("webmail", webmail, &["email"])).await;
    signs_in_for_ticket(&app, ENT, &[]).await;

    let ticket = sso_ticket(&app, ENT).await;
    let pgt_url = callback.url("/pgt/receive");
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("pgtUrl", &pgt_url)],
    )
    .await;
    let iou = element(&xml, "proxyGrantingTicket").unwrap_or_else(|| panic!("{xml}"));
    assert!(iou.starts_with("PGTIOU-"), "{iou}");
    let calls = callback.calls();
    assert_eq!(calls.len(), 1, "handed over once, before the answer");
    let pgt = common::oidc::param(&calls[0], "pgtId").unwrap().to_owned();
    assert_eq!(common::oidc::param(&calls[0], "pgtIou"), Some(iou.as_str()));
    assert!(pgt.starts_with("PGT-"), "{pgt}");

    let proxy = |target: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("pgt", &pgt)
            .append_pair("targetService", target)
            .finish();
        let app = &app;
        async move {
            app.get(&format!("/cas/proxy?{query}"))
                .await
                .text()
                .await
                .unwrap()
        }
    };
    let answer = proxy(webmail).await;
    let pt = element(&answer, "proxyTicket").unwrap_or_else(|| panic!("{answer}"));
    assert!(pt.starts_with("PT-"), "{pt}");
    let xml = validation(
        &app,
        "/p3/proxyValidate",
        &[("service", webmail), ("ticket", &pt)],
    )
    .await;
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");
    assert_eq!(
        element(&xml, "proxy").as_deref(),
        Some(pgt_url.as_str()),
        "{xml}"
    );
    assert!(
        element(&xml, "email").is_some(),
        "the webmail's own attributes: {xml}"
    );
    // A proxy ticket is not a service ticket.
    let pt = element(&proxy(webmail).await, "proxyTicket").unwrap();
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", webmail), ("ticket", &pt)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_TICKET_SPEC"),
        "{xml}"
    );
    let answer = proxy("https://evil.example/").await;
    assert_eq!(
        failure_code(&answer).as_deref(),
        Some("UNAUTHORIZED_SERVICE"),
        "{answer}"
    );

    // A callback the registration does not name is refused; one that does not
    // answer 200 gets no PGT, and the validation still succeeds.
    let ticket = sso_ticket(&app, ENT).await;
    let elsewhere = "https://127.0.0.1:1/pgt";
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("pgtUrl", elsewhere)],
    )
    .await;
    assert_eq!(
        failure_code(&xml).as_deref(),
        Some("INVALID_PROXY_CALLBACK"),
        "{xml}"
    );
    let ticket = sso_ticket(&app, ENT).await;
    let refusing = callback.url("/refuse");
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("pgtUrl", &refusing)],
    )
    .await;
    assert_eq!(element(&xml, "user").as_deref(), Some(ACTIVE_UID), "{xml}");
    assert!(element(&xml, "proxyGrantingTicket").is_none(), "{xml}");
    let refused_pgt = common::oidc::param(&callback.calls()[1], "pgtId")
        .unwrap()
        .to_owned();
    let query = format!(
        "/cas/proxy?pgt={refused_pgt}&targetService={}",
        url::form_urlencoded::byte_serialize(webmail.as_bytes()).collect::<String>()
    );
    let answer = app.get(&query).await.text().await.unwrap();
    assert_eq!(
        failure_code(&answer).as_deref(),
        Some("INVALID_TICKET"),
        "a PGT not accepted never counts: {answer}"
    );

    // The PGT dies with the session.
    app.get("/cas/logout").await;
    let answer = proxy(webmail).await;
    assert_eq!(
        failure_code(&answer).as_deref(),
        Some("INVALID_TICKET"),
        "{answer}"
    );
    app.shutdown().await;
}

/// Runs python-cas (`interop/python/cas_client.py`) with `args`, `input` on its
/// standard input; its JSON answer.
fn python_cas(args: &[&str], input: &str) -> serde_json::Value {
    use std::io::Write;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("interop/python/cas_client.py");
    let mut child = std::process::Command::new("python3")
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with python-cas (scripts/install-deps installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn python_cas_validates_and_reads_single_logout(backend: Backend) {
    let app = TestApp::start(backend).await;
    let service = "http://127.0.0.1:9/python-app/";
    let (slo, seen) = single_logout_receiver().await;
    let registration = guichet::cas::services::NewService {
        single_logout: Some(slo),
        ..exact("python-app", service, &["email", "eduperson_affiliation"])
    };
    register(&app, registration).await;
    let ticket = signs_in_for_ticket(&app, service, &[]).await;
    let server = app.url("/cas/");
    let validated = tokio::task::spawn_blocking({
        let (server, ticket) = (server.clone(), ticket.clone());
        move || python_cas(&["validate", &server, service, &ticket], "")
    })
    .await
    .unwrap();
    assert_eq!(validated["user"], ACTIVE_UID, "{validated}");
    assert_eq!(
        validated["attributes"]["email"],
        format!("{ACTIVE_UID}@univ-demo.fr"),
        "{validated}"
    );
    assert_eq!(
        validated["attributes"]["eduperson_affiliation"],
        serde_json::json!(["student", "member"]),
        "{validated}"
    );
    assert_eq!(
        validated["attributes"]["isFromNewLogin"], "true",
        "{validated}"
    );
    let replayed = tokio::task::spawn_blocking({
        let (server, ticket) = (server.clone(), ticket.clone());
        move || python_cas(&["validate", &server, service, &ticket], "")
    })
    .await
    .unwrap();
    assert_eq!(replayed["user"], serde_json::Value::Null, "{replayed}");

    app.get("/cas/logout").await;
    let messages = arrived(&seen, 1).await;
    assert_eq!(messages.len(), 1);
    let read = tokio::task::spawn_blocking({
        let (message, ticket) = (messages[0].clone(), ticket.clone());
        move || python_cas(&["logout", &ticket], &message)
    })
    .await
    .unwrap();
    assert_eq!(
        read["accepted"], true,
        "python-cas reads the ticket it validated: {read}"
    );
    app.shutdown().await;
}

async fn mod_auth_cas_lets_a_student_in_and_single_logout_lets_them_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    let apache = Apache::start(&app.url(""));
    let protected = format!(r"http://127\.0\.0\.1:{}/secret/.*", apache.port);
    let registration = guichet::cas::services::NewService {
        name: "intranet".into(),
        display_name: "Intranet".into(),
        pattern: Some(protected),
        single_logout: Some("service".into()),
        ..guichet::cas::services::NewService::default()
    };
    register(&app, registration).await;
    let page = apache.url("/secret/page.shtml");
    // The browser (app.http) opens the page: Apache sends it to Guichet.
    let to_cas = app.http.get(&page).send().await.unwrap();
    assert_eq!(to_cas.status(), StatusCode::FOUND, "{}", apache.log());
    let cas_login = location(&to_cas);
    assert!(
        cas_login.starts_with(&app.url("/cas/login?service=")),
        "{cas_login}"
    );
    let to_login = app.http.get(&cas_login).send().await.unwrap();
    assert_eq!(to_login.status(), StatusCode::SEE_OTHER);
    let with_ticket = signs_in_and_returns(&app, &login_next(&location(&to_login))).await;
    assert!(with_ticket.starts_with(&page), "{with_ticket}");
    // Apache validates the ticket with Guichet, then drops it from the address.
    let validated = app.http.get(&with_ticket).send().await.unwrap();
    assert_eq!(validated.status(), StatusCode::FOUND, "{}", apache.log());
    assert_eq!(location(&validated), page);
    let shown = app.http.get(&page).send().await.unwrap();
    assert_eq!(shown.status(), StatusCode::OK, "{}", apache.log());
    assert!(
        shown
            .text()
            .await
            .unwrap()
            .contains(&format!("Signed in as {ACTIVE_UID}"))
    );

    // Signing out of Guichet signs out of the page: Apache hears it on its own.
    app.get("/cas/logout").await;
    let mut status = StatusCode::OK;
    for _ in 0..100 {
        status = app.http.get(&page).send().await.unwrap().status();
        if status == StatusCode::FOUND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status,
        StatusCode::FOUND,
        "back to the login: {}",
        apache.log()
    );
    let delivered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_events WHERE kind = 'logout.delivery' AND outcome = 'ok'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(delivered, 1, "Apache took the single logout");
    app.shutdown().await;
}

async fn a_proxy_granting_ticket_dies_when_its_session_goes_idle(backend: Backend) {
    let callback = ProxyCallback::start();
    let settings = callback.settings();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| format!("{t}{settings}")).await;
    let callbacks = format!(r"https://127\.0\.0\.1:{}/.*", callback.port);
    let portal = guichet::cas::services::NewService {
        proxy_callbacks: Some(callbacks),
        ..exact("ent", ENT, &[])
    };
    register(&app, portal).await;
    let ticket = signs_in_for_ticket(&app, ENT, &[]).await;
    let pgt_url = callback.url("/pgt");
    let xml = validation(
        &app,
        "/p3/serviceValidate",
        &[("service", ENT), ("ticket", &ticket), ("pgtUrl", &pgt_url)],
    )
    .await;
    assert!(element(&xml, "proxyGrantingTicket").is_some(), "{xml}");
    let pgt = common::oidc::param(&callback.calls()[0], "pgtId")
        .unwrap()
        .to_owned();
    let query = format!(
        "/cas/proxy?pgt={pgt}&targetService={}",
        url::form_urlencoded::byte_serialize(ENT.as_bytes()).collect::<String>()
    );
    let answer = app.get(&query).await.text().await.unwrap();
    assert!(element(&answer, "proxyTicket").is_some(), "{answer}");
    // Unused for longer than the idle lifetime (1 h by default).
    sqlx::query("UPDATE sso_sessions SET last_seen_at = last_seen_at - 3601")
        .execute(app.state.store.pool())
        .await
        .unwrap();
    let answer = app.get(&query).await.text().await.unwrap();
    assert_eq!(
        failure_code(&answer).as_deref(),
        Some("INVALID_TICKET"),
        "idle past its session: {answer}"
    );
    app.shutdown().await;
}

/// Tickets never reach the log: `guichet serve` at debug level, through a
/// sign-in, validations with and without a PGT handed over, a proxy ticket, a
/// refused validation, and a single logout that cannot be delivered. Every
/// ticket value the test saw is then looked for in what it wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_ticket_reaches_the_log() {
    let ldap = common::TestDirectory::start();
    let dir = tempfile::tempdir().unwrap();
    let callback = ProxyCallback::start();
    let port = common::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let text = common::settings_text(&ldap.url(), &db, dir.path(), "paris-cite")
        .replace(
            "listen = \"127.0.0.1:0\"",
            &format!("listen = \"127.0.0.1:{port}\""),
        )
        .replace(
            "public_url = \"http://localhost/\"",
            &format!("public_url = \"{base}/\""),
        )
        .replace("level = \"warn\"", "level = \"debug\"")
        + &callback.settings();
    let config = dir.path().join("guichet.toml");
    std::fs::write(&config, &text).unwrap();
    let settings = guichet::config::Settings::from_toml(&text).unwrap();
    let store = guichet::store::Store::connect(&settings.database)
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let ent = guichet::cas::services::NewService {
        proxy_callbacks: Some(format!(r"https://127\.0\.0\.1:{}/.*", callback.port)),
        single_logout: Some("http://127.0.0.1:1/slo".into()),
        ..exact("ent", ENT, &["email"])
    };
    let claims = settings.oidc.claims.claim_names();
    store
        .add_cas_service(&ent.checked(&claims, guichet::store::unix_now()).unwrap())
        .await
        .unwrap();
    store.close().await;
    let log_path = dir.path().join("guichet.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _served = common::serve(&config, std::process::Stdio::from(log));
    let started = std::time::Instant::now();
    while !reqwest::get(format!("{base}/readyz"))
        .await
        .is_ok_and(|r| r.status() == StatusCode::OK)
    {
        assert!(
            started.elapsed().as_secs() < 30,
            "guichet serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let browser = common::browser();
    let get = |path: String| {
        let browser = &browser;
        let base = &base;
        async move { browser.get(format!("{base}{path}")).send().await.unwrap() }
    };
    let to_login = get(login_url(ENT, &[])).await;
    let next = login_next(&location(&to_login));
    let form = get("/login".into()).await.text().await.unwrap();
    let csrf = common::csrf_of(&form);
    let signed = browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", ACTIVE_UID),
            ("password", common::DEMO_PASSWORD),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let back = get(location(&signed)).await;
    let mut secrets = vec![ticket_in(&location(&back), ENT)];
    let validate = |pairs: Vec<(&'static str, String)>| {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let get = &get;
        async move {
            get(format!("/cas/p3/serviceValidate?{query}"))
                .await
                .text()
                .await
                .unwrap()
        }
    };
    // Handed over to a callback that refuses it (logged), then to one that takes it.
    let refused = validate(vec![
        ("service", ENT.into()),
        ("ticket", secrets[0].clone()),
        ("pgtUrl", callback.url("/refuse")),
    ])
    .await;
    assert!(element(&refused, "user").is_some(), "{refused}");
    let again = get(login_url(ENT, &[])).await;
    secrets.push(ticket_in(&location(&again), ENT));
    let granted = validate(vec![
        ("service", ENT.into()),
        ("ticket", secrets[1].clone()),
        ("pgtUrl", callback.url("/pgt")),
    ])
    .await;
    secrets.push(element(&granted, "proxyGrantingTicket").unwrap());
    for call in callback.calls() {
        secrets.extend(
            call.into_iter()
                .filter(|(k, _)| k == "pgtId" || k == "pgtIou")
                .map(|(_, v)| v),
        );
    }
    let pgt = secrets
        .iter()
        .rev()
        .find(|s| s.starts_with("PGT-"))
        .unwrap()
        .clone();
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("pgt", &pgt)
        .append_pair("targetService", ENT)
        .finish();
    let proxied = get(format!("/cas/proxy?{query}"))
        .await
        .text()
        .await
        .unwrap();
    let pt = element(&proxied, "proxyTicket").unwrap();
    secrets.push(pt.clone());
    let mismatch = validate(vec![
        ("service", "https://elsewhere.univ-demo.fr/".into()),
        ("ticket", pt),
    ])
    .await;
    assert!(failure_code(&mismatch).is_some(), "{mismatch}");
    // Single logout to an address where nothing listens: retried, and logged.
    get("/cas/logout".into()).await;
    let logged = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let started = std::time::Instant::now();
    while !logged().contains("back-channel logout failed") {
        assert!(
            started.elapsed().as_secs() < 20,
            "no delivery attempt logged"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let written = logged();
    assert!(
        written.contains("CAS proxy callback refused the PGT"),
        "the refusal is logged"
    );
    assert!(secrets.len() >= 6, "{secrets:?}");
    for secret in &secrets {
        assert!(!written.contains(secret.as_str()), "{secret} is in the log");
    }
    for marker in ["ST-", "PT-", "PGT-", "PGTIOU-", "pgtId="] {
        assert!(!written.contains(marker), "{marker} in the log");
    }
}

/// A validation and the student's logout at the same moment: the validation
/// either fails, or the service is among those single logout tells.
async fn a_validation_racing_the_logout_leaves_no_service_untold(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (slo, _seen) = single_logout_receiver().await;
    let ent = guichet::cas::services::NewService {
        single_logout: Some(slo),
        ..exact("ent", ENT, &[])
    };
    register(&app, ent).await;
    let mut outcomes = Vec::new();
    // The logout leaves a little later each round, so both orders happen.
    for delay in [0, 1, 2, 3, 5, 8, 12, 20, 40] {
        let browser = common::browser();
        assert!(common::signs_in(&app, &browser, ACTIVE_UID, common::DEMO_PASSWORD).await);
        let to_ent = browser
            .get(app.url(&login_url(ENT, &[])))
            .send()
            .await
            .unwrap();
        let ticket = ticket_in(&location(&to_ent), ENT);
        let pairs = [("service", ENT), ("ticket", ticket.as_str())];
        let (xml, out) = tokio::join!(validation(&app, "/p3/serviceValidate", &pairs), async {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            browser.get(app.url("/cas/logout")).send().await
        },);
        assert_eq!(out.unwrap().status(), StatusCode::OK);
        let told: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM oidc_logout_deliveries WHERE protocol = 'cas' AND cas_ticket = $1",
        )
        .bind(&ticket)
        .fetch_one(app.state.store.pool())
        .await
        .unwrap();
        let valid = element(&xml, "user").is_some();
        assert_eq!((valid, told), (valid, i64::from(valid)), "{xml}");
        if !valid {
            assert_eq!(
                failure_code(&xml).as_deref(),
                Some("INVALID_TICKET"),
                "{xml}"
            );
        }
        outcomes.push(valid);
    }
    eprintln!("validations that won the race: {outcomes:?}");
    app.shutdown().await;
}
