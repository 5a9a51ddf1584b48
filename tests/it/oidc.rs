//! The OpenID Connect provider over HTTP, against a real slapd and both SQL backends:
//! discovery, the code flow with PKCE, tokens checked against the published keys,
//! UserInfo, refresh rotation, replays, and hostile requests.

use crate::common::oidc::{
    REDIRECT, authorize_url, backchannel_receiver, confidential, issuer, location, login_next,
    param, query_of, redeem_code, registered, sign_in_and_authorize, signs_in_and_returns,
    token_request, userinfo,
};
use crate::common::{self, ACTIVE_UID, Backend, DEMO_PASSWORD, TestApp, both_backends};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use guichet::oidc::clients::NewClient;
use guichet::oidc::keyring::PUBLISH_AHEAD_SECS;
use guichet::oidc::keys::{self, Alg};
use guichet::store::unix_now;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

async fn client(app: &TestApp, id: &str, public: bool, alg: &str) -> Option<String> {
    let new = NewClient {
        public,
        id_token_alg: alg.to_owned(),
        ..confidential(id, REDIRECT)
    };
    registered(app, new).await
}

async fn verified_claims(app: &TestApp, id_token: &str, audience: &str) -> Value {
    let jwks: JwkSet = app.get("/jwks.json").await.json().await.unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is published");
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[issuer(app)]);
    jsonwebtoken::decode::<Value>(id_token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

async fn the_code_flow_gives_verifiable_tokens_and_claims(backend: Backend) {
    let app = TestApp::start(backend).await;
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    let issuer = issuer(&app);
    assert_eq!(discovery["issuer"], issuer);
    assert_eq!(discovery["token_endpoint"], format!("{issuer}/token"));
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    assert_eq!(param(&back, "state"), Some("st-123"));
    assert_eq!(param(&back, "iss"), Some(issuer.as_str()));
    let code = param(&back, "code").unwrap().to_owned();
    assert!(
        URL_SAFE_NO_PAD.decode(&code).unwrap().len() >= 16,
        "at least 128 bits"
    );
    let (status, tokens) = redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert!(
        tokens.get("refresh_token").is_none(),
        "no offline_access asked"
    );
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().alg,
        jsonwebtoken::Algorithm::RS256
    );
    let claims = verified_claims(&app, id_token, "moodle").await;
    let dn = common::people_dn(ACTIVE_UID);
    let uuid = app.directory.read(&dn, "entryUUID");
    assert_eq!(claims["sub"], uuid[0], "sub is the entryUUID");
    assert_eq!(claims["nonce"], "n-456");
    for claim in ["auth_time", "iat", "exp", "sid", "at_hash"] {
        assert!(claims.get(claim).is_some(), "{claim} in {claims}");
    }
    let access = tokens["access_token"].as_str().unwrap();
    let expected_at_hash = URL_SAFE_NO_PAD.encode(&Sha256::digest(access.as_bytes())[..16]);
    assert_eq!(claims["at_hash"], expected_at_hash);
    let (status, info) = userinfo(&app, access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(info["sub"], claims["sub"]);
    assert_eq!(info["preferred_username"], ACTIVE_UID);
    assert!(
        info["email"].as_str().unwrap().ends_with("@univ-demo.fr"),
        "{info}"
    );
    // The scheme name is case-insensitive (RFC 9110 §11.1).
    let lower = app
        .http
        .get(app.url("/userinfo"))
        .header("authorization", format!("bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(lower.status(), StatusCode::OK);
    // POST, with the token in the body.
    let posted: Value = app
        .http
        .post(app.url("/userinfo"))
        .form(&[("access_token", access)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(posted["sub"], claims["sub"]);
    // The code served once; its replay revokes what it issued.
    let (status, error) = redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error["error"], "invalid_grant");
    assert_eq!(userinfo(&app, access).await.0, StatusCode::UNAUTHORIZED);
    app.shutdown().await;
}

async fn public_clients_need_pkce_and_refresh_tokens_rotate(backend: Backend) {
    let app = TestApp::start(backend).await;
    assert!(client(&app, "webmail", true, "ES256").await.is_none());
    // Without a challenge the request goes back with an error, not a code.
    let response = app.get(&authorize_url("webmail", &[])).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let back = query_of(&location(&response));
    assert_eq!(param(&back, "error"), Some("invalid_request"));
    assert_eq!(param(&back, "code"), None);
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let url = authorize_url(
        "webmail",
        &[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("scope", "openid offline_access"),
        ],
    );
    let back = sign_in_and_authorize(&app, &url).await;
    let code = param(&back, "code").expect("a code").to_owned();
    let exchange = |verifier: &'static str, code: String| {
        let app = &app;
        async move {
            token_request(
                app,
                None,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("client_id", "webmail"),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    let (status, tokens) = exchange(verifier, code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(id_token).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    verified_claims(&app, id_token, "webmail").await;
    let first_refresh = tokens["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_owned();
    let refresh = |token: String| {
        let app = &app;
        async move {
            token_request(
                app,
                None,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &token),
                    ("client_id", "webmail"),
                ],
            )
            .await
        }
    };
    let (status, renewed) = refresh(first_refresh.clone()).await;
    assert_eq!(status, StatusCode::OK, "{renewed}");
    let second_refresh = renewed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(second_refresh, first_refresh, "rotated");
    assert_eq!(
        userinfo(&app, renewed["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    // The old refresh token again: a stolen copy. The whole grant is revoked.
    let (status, error) = refresh(first_refresh).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, _) = refresh(second_refresh).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "the newer one died with the grant"
    );
    assert_eq!(
        userinfo(&app, renewed["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    // A wrong verifier gets nothing.
    let response = app.get(&url).await;
    let code = param(&query_of(&location(&response)), "code")
        .unwrap()
        .to_owned();
    let (status, error) = exchange("wrong-verifier-wrong-verifier-wrong-verifier", code).await;
    assert_eq!(
        (status, error["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    app.shutdown().await;
}

async fn hostile_requests_get_the_errors_the_specs_prescribe(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "ent", false, "EdDSA").await.unwrap();
    // Unknown client, unregistered redirect: a page, never a redirect.
    for url in [
        authorize_url("nobody", &[]),
        authorize_url("ent", &[]).replace("moodle.univ-demo.fr", "evil.example"),
        "/authorize?client_id=ent".to_owned(),
    ] {
        let response = app.get(&url).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{url}");
        assert!(response.headers().get("location").is_none());
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("Demande de connexion non reconnue")
        );
    }
    // Known client and redirect: errors go back to the client, with the state.
    for (extra, error) in [
        (vec![("prompt", "none")], "login_required"),
        (
            vec![("request", "eyJhbGciOiJub25lIn0.e30.")],
            "request_not_supported",
        ),
        (
            vec![("request_uri", "https://evil.example/r")],
            "request_uri_not_supported",
        ),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "profile")], "invalid_scope"),
        (
            vec![
                ("code_challenge", "abc"),
                ("code_challenge_method", "plain"),
            ],
            "invalid_request",
        ),
        (
            vec![("nonce", "n-456"), ("nonce", "twice")],
            "invalid_request",
        ),
    ] {
        let response = app.get(&authorize_url("ent", &extra)).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{extra:?}");
        let back = query_of(&location(&response));
        assert_eq!(param(&back, "error"), Some(error), "{extra:?}");
    }
    // The token endpoint answers in JSON, with 401 for a bad client.
    let code_form = [
        ("grant_type", "authorization_code"),
        ("code", "nope"),
        ("redirect_uri", REDIRECT),
    ];
    let (status, body) = token_request(&app, Some(("ent", "wrong")), &code_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (status, body) = token_request(
        &app,
        None,
        &[("grant_type", "authorization_code"), ("client_id", "ent")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client")),
        "a confidential client must authenticate"
    );
    let (status, body) =
        token_request(&app, Some(("ent", &secret)), &[("grant_type", "password")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("unsupported_grant_type"))
    );
    let (status, body) = token_request(&app, Some(("ent", &secret)), &code_form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (status, body) = token_request(
        &app,
        Some(("ent", &secret)),
        &[
            ("grant_type", "authorization_code"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // A body that is not a form (JSON, nothing, a form that does not parse): the
    // JSON error of RFC 6749 §5.2, not a plain-text 415 or 422.
    for (endpoint, content_type, body) in [
        (
            "/token",
            "application/json",
            r#"{"grant_type":"authorization_code"}"#,
        ),
        ("/token", "text/plain", "grant_type=authorization_code"),
        ("/introspect", "application/json", r#"{"token":"x"}"#),
    ] {
        let response = app
            .http
            .post(app.url(endpoint))
            .basic_auth("ent", Some(&secret))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{endpoint}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{endpoint}");
    }
    // UserInfo without a token, or with a forged one.
    let response = app.http.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    assert_eq!(
        userinfo(&app, "forged.token.value").await.0,
        StatusCode::UNAUTHORIZED
    );
    app.shutdown().await;
}

/// A password reset ends the account's sessions and every token issued to clients.
async fn a_password_reset_revokes_oidc_tokens(backend: Backend) {
    let smtp = common::TestSmtp::start();
    let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
        common::with_transport(t, &smtp.transport())
    })
    .await;
    let (bcl, seen) = backchannel_receiver().await;
    let new = NewClient {
        backchannel_logout_uri: Some(bcl),
        ..confidential("moodle", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let url = authorize_url("moodle", &[("scope", "openid offline_access")]);
    let back = sign_in_and_authorize(&app, &url).await;
    let code = param(&back, "code").unwrap().to_owned();
    let (_, tokens) = redeem_code(&app, ("moodle", &secret), &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, StatusCode::OK);
    let reset = common::resets_password(&app, &smtp, common::ACTIVE_EMAIL, "Apres-la-pluie-77");
    assert_eq!(reset.await, StatusCode::OK);
    assert_eq!(userinfo(&app, access).await.0, StatusCode::UNAUTHORIZED);
    for _ in 0..100 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        seen.lock().unwrap().len(),
        1,
        "Moodle hears of it on the back channel"
    );
    let (status, body) = token_request(
        &app,
        Some(("moodle", &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // And the session: a new authorization asks to sign in again.
    let response = app.get(&authorize_url("moodle", &[])).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

/// Dovecot checks Roundcube's bearer tokens by introspection; Roundcube revokes on
/// logout.
async fn introspection_and_revocation_follow_the_token(backend: Backend) {
    let app = TestApp::start(backend).await;
    let roundcube = client(&app, "roundcube", false, "RS256").await.unwrap();
    let moodle = client(&app, "moodle", false, "RS256").await.unwrap();
    let new = NewClient {
        introspection: true,
        ..confidential("dovecot", REDIRECT)
    };
    let dovecot = registered(&app, new).await.unwrap();
    assert!(client(&app, "spa", true, "RS256").await.is_none());
    let url = authorize_url(
        "roundcube",
        &[("scope", "openid profile email offline_access")],
    );
    let code = param(&sign_in_and_authorize(&app, &url).await, "code")
        .unwrap()
        .to_owned();
    let (_, tokens) = redeem_code(&app, ("roundcube", &roundcube), &code).await;
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let introspect = |who: (&'static str, String), token: String| {
        let app = &app;
        async move {
            let response = app
                .http
                .post(app.url("/introspect"))
                .basic_auth(who.0, Some(who.1))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<Value>().await.unwrap())
        }
    };
    let (status, answer) = introspect(("dovecot", dovecot.clone()), access.to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["active"], true);
    assert_eq!(answer["username"], ACTIVE_UID, "Dovecot's username claim");
    assert_eq!(answer["client_id"], "roundcube");
    // A client that is not a resource server learns nothing of another's token,
    // but may ask about its own.
    let (status, answer) = introspect(("moodle", moodle), access.to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, serde_json::json!({ "active": false }));
    let (_, answer) = introspect(("roundcube", roundcube.clone()), access.to_owned()).await;
    assert_eq!(answer["active"], true);
    let (_, answer) = introspect(("dovecot", dovecot.clone()), "not-a-token".to_owned()).await;
    assert_eq!(answer, serde_json::json!({ "active": false }));
    let (status, _) = introspect(("dovecot", "wrong".to_owned()), access.to_owned()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let public = app
        .http
        .post(app.url("/introspect"))
        .form(&[("client_id", "spa"), ("token", access)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        public.status(),
        StatusCode::UNAUTHORIZED,
        "public clients may not introspect"
    );
    // Another client may not revoke Roundcube's tokens.
    let revoke = |who: (&'static str, String), token: String| {
        let app = &app;
        async move {
            app.http
                .post(app.url("/revoke"))
                .basic_auth(who.0, Some(who.1))
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke(("dovecot", dovecot.clone()), refresh.to_owned()).await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        revoke(("roundcube", roundcube.clone()), "unknown-token".to_owned()).await,
        StatusCode::OK
    );
    assert_eq!(
        revoke(("roundcube", roundcube.clone()), refresh.to_owned()).await,
        StatusCode::OK
    );
    let (_, answer) = introspect(("dovecot", dovecot), access.to_owned()).await;
    assert_eq!(
        answer["active"], false,
        "revoking the refresh token ends its grant"
    );
    app.shutdown().await;
}

/// RP-initiated logout with a proof of session ends it at once, sends the student
/// back to the registered page with the client's state, and tells every client of
/// the session over the back channel; without proof, the student confirms.
async fn logout_ends_the_session_everywhere(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (bcl, seen) = backchannel_receiver().await;
    let new = NewClient {
        name: "ENT".to_owned(),
        post_logout_redirect_uris: vec!["https://ent.univ-demo.fr/bye".to_owned()],
        backchannel_logout_uri: Some(bcl),
        ..confidential("ent", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let sign_in_ent = || async {
        let back = if app.get("/account").await.status() == StatusCode::OK {
            query_of(&location(&app.get(&authorize_url("ent", &[])).await))
        } else {
            sign_in_and_authorize(&app, &authorize_url("ent", &[])).await
        };
        let code = param(&back, "code").unwrap().to_owned();
        let (_, tokens) = redeem_code(&app, ("ent", &secret), &code).await;
        tokens
    };
    let tokens = sign_in_ent().await;
    let id_token = tokens["id_token"].as_str().unwrap().to_owned();
    let claims = verified_claims(&app, &id_token, "ent").await;
    // A post-logout address that is not registered: a page, and the session stays.
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/")
        .append_pair("state", "s-1");
    let refused = app.get(&format!("/end_session?{}", query.finish())).await;
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert!(refused.headers().get("location").is_none());
    assert_eq!(app.get("/account").await.status(), StatusCode::OK);
    // With the hint of this session: out at once.
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://ent.univ-demo.fr/bye")
        .append_pair("state", "s-1");
    let out = app.get(&format!("/end_session?{}", query.finish())).await;
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(location(&out), "https://ent.univ-demo.fr/bye?state=s-1");
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "signed out of Guichet"
    );
    let from: Option<String> = sqlx::query_scalar(
        "SELECT client_ip FROM audit_events WHERE kind = 'logout' AND outcome = 'ok'",
    )
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        from.as_deref(),
        Some("127.0.0.1"),
        "the audit says from where"
    );
    assert_eq!(
        userinfo(&app, tokens["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let mut logout_token = None;
    for _ in 0..100 {
        logout_token = seen.lock().unwrap().first().cloned();
        if logout_token.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logout_token = logout_token.expect("a logout token on the back channel");
    assert_eq!(
        jsonwebtoken::decode_header(&logout_token)
            .unwrap()
            .typ
            .as_deref(),
        Some("logout+jwt"),
        "a logout token is typed, never to be taken for an ID token"
    );
    let logout = verified_claims(&app, &logout_token, "ent").await;
    assert_eq!(logout["sid"], claims["sid"]);
    assert_eq!(logout["sub"], claims["sub"]);
    assert!(
        logout["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some()
    );
    assert!(logout.get("nonce").is_none());
    // Without proof: the student is asked, and confirms.
    sign_in_ent().await;
    let ask = app.get("/end_session?client_id=ent&post_logout_redirect_uri=https%3A%2F%2Fent.univ-demo.fr%2Fbye&state=s-2").await;
    assert_eq!(ask.status(), StatusCode::OK);
    let page = ask.text().await.unwrap();
    assert!(page.contains("ENT demande votre déconnexion"), "{page}");
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::OK,
        "not signed out by a mere link"
    );
    let confirmed = app
        .http
        .post(app.url("/logout"))
        .form(&[
            ("csrf", common::csrf_of(&page).as_str()),
            ("client_id", "ent"),
            ("post_logout_redirect_uri", "https://ent.univ-demo.fr/bye"),
            ("state", "s-2"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        location(&confirmed),
        "https://ent.univ-demo.fr/bye?state=s-2"
    );
    assert_eq!(app.get("/account").await.status(), StatusCode::SEE_OTHER);
    app.shutdown().await;
}

/// `login_hint` fills the login in, `ui_locales` picks the language, and an
/// `id_token_hint` for someone else never yields a code for the signed-in student.
async fn hints_shape_the_login_and_guard_the_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let url = authorize_url(
        "moodle",
        &[("login_hint", ACTIVE_UID), ("ui_locales", "de en-GB fr")],
    );
    let to_login = location(&app.get(&url).await);
    let page = app.get(&to_login).await.text().await.unwrap();
    assert!(page.contains("<html lang=\"en\""), "{page}");
    assert!(page.contains(&format!("value=\"{ACTIVE_UID}\"")), "{page}");
    let back = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let code = param(&back, "code").unwrap().to_owned();
    let (_, tokens) = redeem_code(&app, ("moodle", &secret), &code).await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // The right hint, silently: a code.
    let silent = app
        .get(&authorize_url(
            "moodle",
            &[("prompt", "none"), ("id_token_hint", id_token)],
        ))
        .await;
    assert!(param(&query_of(&location(&silent)), "code").is_some());
    // Another student signs in on this browser: the hint names someone else.
    let page = app.get("/account").await.text().await.unwrap();
    app.http
        .post(app.url("/logout"))
        .form(&[("csrf", common::csrf_of(&page))])
        .send()
        .await
        .unwrap();
    let other = app
        .post_form_response(
            "/login",
            &[("login", "28700001"), ("password", DEMO_PASSWORD)],
        )
        .await;
    assert_eq!(other.status(), StatusCode::SEE_OTHER);
    let refused = app
        .get(&authorize_url(
            "moodle",
            &[("prompt", "none"), ("id_token_hint", id_token)],
        ))
        .await;
    assert_eq!(
        param(&query_of(&location(&refused)), "error"),
        Some("login_required")
    );
    let asked = app
        .get(&authorize_url("moodle", &[("id_token_hint", id_token)]))
        .await;
    assert_eq!(
        asked.status(),
        StatusCode::SEE_OTHER,
        "without prompt=none: to the login page"
    );
    assert!(location(&asked).starts_with("/login?"));
    let forged = format!("{}x", id_token);
    let refused = app
        .get(&authorize_url(
            "moodle",
            &[("prompt", "none"), ("id_token_hint", &forged)],
        ))
        .await;
    assert_eq!(
        param(&query_of(&location(&refused)), "error"),
        Some("invalid_request")
    );
    app.shutdown().await;
}

/// A third-party application asks the student first; first-party ones never do.
async fn third_party_clients_ask_for_consent(backend: Backend) {
    let app = TestApp::start(backend).await;
    let new = NewClient {
        name: "Agenda Étudiant".to_owned(),
        first_party: false,
        ..confidential("planner", REDIRECT)
    };
    registered(&app, new).await;
    // Signed in first (through a first-party client).
    client(&app, "moodle", false, "RS256").await.unwrap();
    sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let silent = app
        .get(&authorize_url("planner", &[("prompt", "none")]))
        .await;
    assert_eq!(
        param(&query_of(&location(&silent)), "error"),
        Some("consent_required")
    );
    let asked = app.get(&authorize_url("planner", &[])).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let page = asked.text().await.unwrap();
    assert!(
        page.contains("Agenda Étudiant n’est pas une application de l’université"),
        "{page}"
    );
    assert!(
        page.contains("votre adresse électronique de l’université"),
        "{page}"
    );
    let answer = |decision: &'static str, page: String| {
        let app = &app;
        async move {
            let mut form: Vec<(String, String)> = vec![("csrf".into(), common::csrf_of(&page))];
            for piece in page.split("<input type=\"hidden\" name=\"").skip(2) {
                let name = piece.split('"').next().unwrap().to_owned();
                let value = piece
                    .split("value=\"")
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap();
                let value = value.replace("&#x2f;", "/").replace("&amp;", "&");
                form.push((name, value));
            }
            form.push(("decision".into(), decision.into()));
            app.http
                .post(app.url("/authorize/consent"))
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let denied = answer("deny", page.clone()).await;
    assert_eq!(
        param(&query_of(&location(&denied)), "error"),
        Some("access_denied")
    );
    // A client that slips `decision=allow` into its request cannot answer for the
    // student: the page does not carry it, and a doubled answer is refused.
    let sneaky = app
        .get(&authorize_url("planner", &[("decision", "allow")]))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !sneaky.contains("type=\"hidden\" name=\"decision\""),
        "{sneaky}"
    );
    let doubled = app
        .http
        .post(app.url("/authorize/consent"))
        .form(&[
            ("csrf", common::csrf_of(&sneaky).as_str()),
            ("client_id", "planner"),
            ("redirect_uri", REDIRECT),
            ("decision", "allow"),
            ("decision", "deny"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(doubled.status(), StatusCode::BAD_REQUEST);
    assert!(doubled.headers().get("location").is_none());
    let allowed = answer("allow", page).await;
    let back = query_of(&location(&allowed));
    assert!(param(&back, "code").is_some(), "{back:?}");
    assert_eq!(param(&back, "state"), Some("st-123"));
    // Asked once: the next sign-in is silent.
    let again = app
        .get(&authorize_url("planner", &[("prompt", "none")]))
        .await;
    assert!(param(&query_of(&location(&again)), "code").is_some());
    // Without the CSRF value, an answer is refused.
    let forged = app
        .http
        .post(app.url("/authorize/consent"))
        .form(&[("client_id", "planner"), ("decision", "allow")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    app.shutdown().await;
}

/// Review findings, pinned: no PKCE downgrade, no code after sign-out, a code is
/// burnt only by its own client, and a narrowing refresh keeps the grant's scope.
async fn codes_and_refreshes_resist_downgrade_and_misuse(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    client(&app, "spa", true, "RS256").await;
    let exchange = |code: String, extra: Vec<(&'static str, &'static str)>| {
        let app = &app;
        let secret = secret.clone();
        async move {
            let mut form = vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code),
                ("redirect_uri", REDIRECT.to_owned()),
            ];
            form.extend(extra.into_iter().map(|(k, v)| (k, v.to_owned())));
            let refs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            token_request(app, Some(("moodle", &secret)), &refs).await
        }
    };
    let url = authorize_url("moodle", &[("scope", "openid profile offline_access")]);
    let code = param(&sign_in_and_authorize(&app, &url).await, "code")
        .unwrap()
        .to_owned();
    // A verifier for a code issued without a challenge.
    let (status, body) = exchange(
        code.clone(),
        vec![(
            "code_verifier",
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        )],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Another (public) client presenting Moodle's code does not burn it.
    let code = param(&query_of(&location(&app.get(&url).await)), "code")
        .unwrap()
        .to_owned();
    let (status, _) = token_request(
        &app,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, tokens) = exchange(code, vec![]).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "Moodle's code still works: {tokens}"
    );
    // Narrowing on refresh: the access token is narrower, the grant is not.
    let (status, narrowed) = token_request(
        &app,
        Some(("moodle", &secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(narrowed["scope"], "openid");
    let next = narrowed["refresh_token"]
        .as_str()
        .expect("the grant keeps offline_access");
    let (status, widened) = token_request(
        &app,
        Some(("moodle", &secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(widened["scope"], "openid profile offline_access");
    // A code issued just before sign-out gives nothing after it.
    let code = param(&query_of(&location(&app.get(&url).await)), "code")
        .unwrap()
        .to_owned();
    let page = app.get("/account").await.text().await.unwrap();
    app.http
        .post(app.url("/logout"))
        .form(&[("csrf", common::csrf_of(&page))])
        .send()
        .await
        .unwrap();
    let (status, body) = exchange(code, vec![]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    app.shutdown().await;
}

/// Claims come from the settings' mapping: a scope of the university's own, a
/// default scope replaced, alternatives and arrays; discovery lists them.
async fn the_claims_mapping_comes_from_the_settings(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |text| {
        format!(
            "{text}\n[oidc.claims.profile]\nname = \"nickname|cn\"\n\n\
             [oidc.claims.campus]\nlogin = \"uid\"\ncontact = \"supannMailPerso\"\n\
             classes = \"objectClass[]\"\n"
        )
    })
    .await;
    let discovery: Value = app
        .get("/.well-known/openid-configuration")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        discovery["scopes_supported"],
        serde_json::json!(["openid", "campus", "email", "profile", "offline_access"])
    );
    for claim in [
        "classes",
        "contact",
        "login",
        "name",
        "email",
        "email_verified",
    ] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .contains(&claim.into()),
            "{claim}"
        );
    }
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let url = authorize_url("moodle", &[("scope", "openid profile campus")]);
    let back = sign_in_and_authorize(&app, &url).await;
    let (status, tokens) =
        redeem_code(&app, ("moodle", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let (status, claims) = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let dn = common::people_dn(ACTIVE_UID);
    let object = claims.as_object().unwrap();
    let mut names: Vec<&str> = object.keys().map(String::as_str).collect();
    names.sort_unstable();
    // profile is only `name` now (no nickname attribute: cn), and no e-mail scope.
    assert_eq!(
        names,
        ["classes", "contact", "login", "name", "sub"],
        "{claims}"
    );
    assert_eq!(claims["name"], app.directory.read(&dn, "cn")[0]);
    assert_eq!(claims["login"], ACTIVE_UID);
    assert_eq!(
        claims["contact"],
        app.directory.read(&dn, "supannMailPerso")[0]
    );
    assert!(
        claims["classes"]
            .as_array()
            .unwrap()
            .contains(&"inetOrgPerson".into()),
        "{claims}"
    );
    app.shutdown().await;
}

/// prompt=login asks for the password again, even with a session, and opening
/// the login page's return address without signing in does not meet it.
async fn prompt_login_cannot_be_skipped(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let redeem = async |back: &[(String, String)]| {
        let (status, tokens) =
            redeem_code(&app, ("moodle", &secret), param(back, "code").unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{tokens}");
        verified_claims(&app, tokens["id_token"].as_str().unwrap(), "moodle").await
    };
    let first = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let first = redeem(&first).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let again = app
        .get(&authorize_url("moodle", &[("prompt", "login")]))
        .await;
    let login = location(&again);
    let next = login_next(&login);
    assert!(next.contains("guichet_login_asked="), "{next}");
    // Someone at the signed-in computer opens the return address directly.
    let skipped = app.get(&next).await;
    assert_eq!(skipped.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&skipped).starts_with("/login?"),
        "no code without the password"
    );
    // Or forges the statement.
    let forged = url::Url::parse(&format!("http://x{next}")).unwrap();
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "guichet_login_asked" {
                "e30.e30.x".into()
            } else {
                v
            };
            (k.into_owned(), v.into_owned())
        })
        .collect();
    let forged = format!(
        "/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&pairs)
            .finish()
    );
    assert!(location(&app.get(&forged).await).starts_with("/login?"));

    let back = signs_in_and_returns(&app, &next).await;
    let second = redeem(&query_of(&back)).await;
    assert!(
        second["auth_time"].as_i64() > first["auth_time"].as_i64(),
        "auth_time is the new sign-in's"
    );
    app.shutdown().await;
}

/// The provider's security events reach the audit log with the account and the
/// client: a failed client authentication, a replayed code, a reused refresh
/// token, a revocation. None carries a token or a secret.
async fn the_provider_audits_its_security_events(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let url = authorize_url("moodle", &[("scope", "openid offline_access")]);
    let back = sign_in_and_authorize(&app, &url).await;
    let code = param(&back, "code").unwrap().to_owned();
    let (status, _) = redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a replayed code");
    let (status, _) = redeem_code(&app, ("moodle", "not-the-secret"), &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a wrong secret");
    // Still signed in: the SSO hop gives a second code at once.
    let back = query_of(&location(&app.get(&url).await));
    let (_, tokens) = redeem_code(&app, ("moodle", &secret), param(&back, "code").unwrap()).await;
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let (status, rotated) = token_request(&app, Some(("moodle", &secret)), &form).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = token_request(&app, Some(("moodle", &secret)), &form).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a reused refresh token");
    let revoked = app
        .http
        .post(app.url("/revoke"))
        .basic_auth("moodle", Some(&secret))
        .form(&[("token", rotated["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let events: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT kind, outcome, account, detail FROM audit_events WHERE kind LIKE 'oidc.%' ORDER BY at, kind",
    )
    .fetch_all(app.state.store.pool())
    .await
    .unwrap();
    let seen = |kind: &str, outcome: &str| {
        events
            .iter()
            .find(|(k, o, _, _)| k == kind && o == outcome)
            .unwrap_or_else(|| panic!("no {kind} {outcome} in {events:?}"))
    };
    assert!(seen("oidc.code", "replayed").3.contains("moodle"));
    assert_eq!(
        seen("oidc.client_auth", "refused").3,
        r#"{"client_id":"moodle"}"#
    );
    let dn = common::people_dn(ACTIVE_UID);
    assert_eq!(
        seen("oidc.refresh", "reused").2.as_deref(),
        Some(dn.as_str())
    );
    assert_eq!(seen("oidc.revoke", "ok").2.as_deref(), Some(dn.as_str()));
    for (_, _, _, detail) in &events {
        assert!(!detail.contains(&secret) && !detail.contains(&refresh) && !detail.contains(&code));
    }
    app.shutdown().await;
}

/// max_age, like prompt=login, is met only by a sign-in Guichet asked for: the
/// login page's return address keeps max_age with a signed statement, and opening
/// it without signing in gives no code.
async fn max_age_cannot_be_skipped(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let first = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let (status, _) = redeem_code(&app, ("moodle", &secret), param(&first, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let again = app.get(&authorize_url("moodle", &[("max_age", "1")])).await;
    let next = login_next(&location(&again));
    assert!(
        next.contains("max_age=1") && next.contains("guichet_login_asked="),
        "{next}"
    );
    let skipped = app.get(&next).await;
    assert_eq!(skipped.status(), StatusCode::SEE_OTHER);
    assert!(
        location(&skipped).starts_with("/login?"),
        "no code without a new sign-in"
    );
    let back = signs_in_and_returns(&app, &next).await;
    let (status, tokens) = redeem_code(
        &app,
        ("moodle", &secret),
        param(&query_of(&back), "code").unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    app.shutdown().await;
}

/// A replay that lands between the first redemption's use of the code and the
/// storing of its tokens revokes a grant that has no token yet; the tokens stored
/// afterwards must die too. The replay's revocation is played here first, then the
/// redemption: it is refused and leaves no live token.
async fn a_replay_racing_the_first_redemption_leaves_nothing_alive(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let code = param(&back, "code").unwrap();
    let grant = code.parse::<guichet::domain::Token>().unwrap().hash();
    app.state
        .store
        .revoke_grant(grant.as_str(), guichet::store::unix_now())
        .await
        .unwrap();
    let (status, body) = redeem_code(&app, ("moodle", &secret), code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM oidc_tokens WHERE grant_id = $1 AND revoked_at IS NULL",
    )
    .bind(grant.as_str())
    .fetch_one(app.state.store.pool())
    .await
    .unwrap();
    assert_eq!(
        live, 0,
        "the tokens stored after the revocation are revoked"
    );
    app.shutdown().await;
}

/// The tokens of a grant no revocation has reached.
async fn live_tokens_of(app: &TestApp, grant: &str) -> i64 {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM oidc_tokens WHERE grant_id = $1 AND revoked_at IS NULL",
    )
    .bind(grant)
    .fetch_one(app.state.store.pool())
    .await
    .unwrap()
}

/// Sends `form` to the token endpoint 8 times at once; the statuses and errors.
async fn eight_at_once(
    app: &TestApp,
    secret: &str,
    form: &[(&str, &str)],
) -> Vec<(StatusCode, Value)> {
    let requests = (0..8).map(|_| token_request(app, Some(("moodle", secret)), form));
    futures_util::future::join_all(requests).await
}

/// One code, then one refresh token, sent 8 times at once (a leaked copy racing
/// its owner): at most one exchange gives tokens, every other is refused as a
/// replay, and the replay ends the grant, so no token of it stays alive
/// (RFC 9700 §4.14.2). Spending and issuing are one transaction.
async fn one_code_or_refresh_token_sent_at_once_gives_at_most_one_answer(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    let url = authorize_url("moodle", &[("scope", "openid offline_access")]);
    let back = sign_in_and_authorize(&app, &url).await;
    let code = param(&back, "code").unwrap().to_owned();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let answers = eight_at_once(&app, &secret, &form).await;
    let refused = |answers: &[(StatusCode, Value)]| {
        answers
            .iter()
            .filter(|(status, body)| {
                *status == StatusCode::BAD_REQUEST && body["error"] == "invalid_grant"
            })
            .count()
    };
    let given = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert!(given <= 1, "{answers:?}");
    assert_eq!(given + refused(&answers), 8, "{answers:?}");
    let grant = code.parse::<guichet::domain::Token>().unwrap().hash();
    assert_eq!(
        live_tokens_of(&app, grant.as_str()).await,
        0,
        "the replay ended the grant"
    );

    // A new code of the same session, redeemed once; its refresh token raced.
    let again = app.get(&url).await;
    let code = param(&query_of(&location(&again)), "code")
        .unwrap()
        .to_owned();
    let (status, tokens) = redeem_code(&app, ("moodle", &secret), &code).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh)];
    let answers = eight_at_once(&app, &secret, &form).await;
    let given = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert!(given <= 1, "{answers:?}");
    assert_eq!(given + refused(&answers), 8, "{answers:?}");
    let grant = code.parse::<guichet::domain::Token>().unwrap().hash();
    assert_eq!(
        live_tokens_of(&app, grant.as_str()).await,
        0,
        "the reuse ended the grant"
    );
    for (_, body) in answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
    {
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&app, access).await.0, StatusCode::UNAUTHORIZED);
    }
    app.shutdown().await;
}

/// A client whose back-channel endpoint is down gets its logout once it is back:
/// deliveries are queued in the database and retried (5 s, then 10 s…).
async fn a_back_channel_logout_reaches_a_client_that_was_down(backend: Backend) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let app = TestApp::start(backend).await;
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    // Down (503) at the first call, up afterwards.
    let endpoint = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move || {
            let seen = seen.clone();
            async move {
                match seen.fetch_add(1, Ordering::SeqCst) {
                    0 => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::OK,
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, endpoint).await.unwrap() });
    let new = NewClient {
        backchannel_logout_uri: Some(format!("http://{addr}/bcl")),
        ..confidential("ent", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("ent", &[])).await;
    let (status, _) = redeem_code(&app, ("ent", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    let out = app.post_form_response("/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let delivered = async || -> Option<i64> {
        sqlx::query_scalar(
            "SELECT attempts FROM oidc_logout_deliveries WHERE client_id = 'ent' \
             AND delivered_at IS NOT NULL",
        )
        .fetch_optional(app.state.store.pool())
        .await
        .unwrap()
    };
    let mut attempts = None;
    for _ in 0..150 {
        attempts = delivered().await;
        if attempts.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(attempts, Some(2), "refused once, delivered at the retry");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    app.shutdown().await;
}

/// With `oidc.key_encryption_key`, the private signing keys are sealed in the
/// database (a leaked backup signs nothing) and tokens are signed as before.
async fn signing_keys_are_sealed_in_the_database(backend: Backend) {
    let app = TestApp::start_tweaked(backend, "paris-cite", |text| {
        format!("{text}\n[oidc]\nkey_encryption_key = \"x+x+tW8g8474utKsEjO28m387XA74OrbpuEhM1yGkXc=\"\n")
    })
    .await;
    let stored: Vec<String> = sqlx::query_scalar("SELECT private_der FROM oidc_keys")
        .fetch_all(app.state.store.pool())
        .await
        .unwrap();
    assert_eq!(stored.len(), 3, "one key per algorithm");
    assert!(
        stored.iter().all(|k| k.starts_with("sealed:v2:")),
        "{stored:?}"
    );
    let secret = client(&app, "moodle", false, "ES256").await.unwrap();
    let back = sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let (status, tokens) =
        redeem_code(&app, ("moodle", &secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = verified_claims(&app, tokens["id_token"].as_str().unwrap(), "moodle").await;
    assert_eq!(claims["nonce"], "n-456");
    app.shutdown().await;
}

/// The kid an ID token names, from a new code of the browser's session.
async fn kid_of_a_new_id_token(app: &TestApp, secret: &str) -> String {
    let again = app.get(&authorize_url("moodle", &[])).await;
    let back = query_of(&location(&again));
    let (status, tokens) =
        redeem_code(app, ("moodle", secret), param(&back, "code").unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let id_token = tokens["id_token"].as_str().unwrap();
    verified_claims(app, id_token, "moodle").await;
    jsonwebtoken::decode_header(id_token).unwrap().kid.unwrap()
}

/// The JWKS a client holds, and its entity tag.
async fn jwks_and_tag(app: &TestApp) -> (JwkSet, String) {
    let response = app.get("/jwks.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "public, max-age=300");
    let tag = response.headers()["etag"].to_str().unwrap().to_owned();
    (response.json().await.unwrap(), tag)
}

/// The clock moves `seconds` on, as far as the signing keys can tell.
async fn keys_age(app: &TestApp, seconds: i64) {
    sqlx::query(
        "UPDATE oidc_keys SET created_at = created_at - $1, signs_from = signs_from - $1, \
         retired_at = retired_at - $1, published_until = published_until - $1",
    )
    .bind(seconds)
    .execute(app.state.store.pool())
    .await
    .unwrap();
    app.state.keys.reload().await;
}

/// `guichet keys rotate` publishes the new keys before they sign: a client that
/// cached the JWKS (Cache-Control, ETag) meets no unknown kid. The old key signs
/// until the handover, then stays published for the overlap, then leaves.
async fn a_rotated_key_is_published_before_it_signs(backend: Backend) {
    let app = TestApp::start(backend).await;
    let secret = client(&app, "moodle", false, "RS256").await.unwrap();
    sign_in_and_authorize(&app, &authorize_url("moodle", &[])).await;
    let first = kid_of_a_new_id_token(&app, &secret).await;
    let (before, tag) = jwks_and_tag(&app).await;
    assert_eq!(before.keys.len(), 3, "one key per algorithm");
    // A client that holds this version is told so, with no body.
    let held = app
        .http
        .get(app.url("/jwks.json"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(held.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(held.headers()["etag"], tag.as_str());
    assert!(held.bytes().await.unwrap().is_empty());
    let discovery = app.get("/.well-known/openid-configuration").await;
    assert_eq!(discovery.headers()["cache-control"], "public, max-age=3600");
    assert!(discovery.headers().contains_key("etag"));

    let settings = &app.state.settings.oidc;
    let sealer = keys::Sealer::new(settings.key_encryption_key.as_ref()).unwrap();
    let ahead = PUBLISH_AHEAD_SECS as i64;
    let rotated = keys::rotate(&app.state.store, &sealer, unix_now(), ahead, 3600)
        .await
        .unwrap();
    let next = rotated.iter().find(|k| k.alg == Alg::Rs256).unwrap();
    assert!(next.signs_from >= unix_now() + ahead - 5, "{next:?}");
    app.state.keys.reload().await;
    let (published, new_tag) = jwks_and_tag(&app).await;
    assert_ne!(new_tag, tag, "another document, another tag");
    assert!(published.find(&next.kid).is_some(), "published at once");
    assert_eq!(
        kid_of_a_new_id_token(&app, &secret).await,
        first,
        "not signing yet"
    );
    let stale = app
        .http
        .get(app.url("/jwks.json"))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        stale.status(),
        StatusCode::OK,
        "an old version is sent again"
    );

    // The handover: the new key signs, the old one still verifies.
    keys_age(&app, ahead).await;
    assert_eq!(kid_of_a_new_id_token(&app, &secret).await, next.kid);
    assert!(jwks_and_tag(&app).await.0.find(&first).is_some());
    // Past the overlap the old key leaves the JWKS.
    keys_age(&app, 3601).await;
    let (after, _) = jwks_and_tag(&app).await;
    assert!(
        after.find(&first).is_none(),
        "unpublished after the overlap"
    );
    assert_eq!(after.keys.len(), 3);
    app.shutdown().await;
}

/// OIDC Core §6.1: a client may send the redirect URI and state only inside a
/// request object. Guichet reads no request object, but a registered redirect URI
/// found there still gets request_not_supported (§6.3), with the state; one that
/// is not registered gets a page, as anywhere else.
async fn a_request_object_is_refused_at_its_redirect_uri(backend: Backend) {
    let app = TestApp::start(backend).await;
    client(&app, "ent", false, "RS256").await.unwrap();
    let object = |redirect_uri: &str| {
        let claims = serde_json::json!({
            "iss": "ent",
            "aud": issuer(&app),
            "response_type": "code",
            "client_id": "ent",
            "scope": "openid",
            "redirect_uri": redirect_uri,
            "state": "st-object",
            "nonce": "n-object",
        });
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
        format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims.to_string()))
    };
    let url = |redirect_uri: &str| {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", "ent")
            .append_pair("scope", "openid")
            .append_pair("request", &object(redirect_uri));
        format!("/authorize?{}", query.finish())
    };
    let response = app.get(&url(REDIRECT)).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let to = location(&response);
    assert!(to.starts_with(REDIRECT), "{to}");
    let back = query_of(&to);
    assert_eq!(param(&back, "error"), Some("request_not_supported"));
    assert_eq!(param(&back, "state"), Some("st-object"));
    assert_eq!(param(&back, "iss"), Some(issuer(&app).as_str()));
    let elsewhere = app.get(&url("https://evil.example/cb")).await;
    assert_eq!(elsewhere.status(), StatusCode::BAD_REQUEST);
    assert!(elsewhere.headers().get("location").is_none());
    app.shutdown().await;
}

both_backends!(
    signing_keys_are_sealed_in_the_database,
    a_rotated_key_is_published_before_it_signs,
    a_back_channel_logout_reaches_a_client_that_was_down,
    a_replay_racing_the_first_redemption_leaves_nothing_alive,
    one_code_or_refresh_token_sent_at_once_gives_at_most_one_answer,
    prompt_login_cannot_be_skipped,
    max_age_cannot_be_skipped,
    the_provider_audits_its_security_events,
    the_claims_mapping_comes_from_the_settings,
    codes_and_refreshes_resist_downgrade_and_misuse,
    third_party_clients_ask_for_consent,
    hints_shape_the_login_and_guard_the_session,
    logout_ends_the_session_everywhere,
    introspection_and_revocation_follow_the_token,
    the_code_flow_gives_verifiable_tokens_and_claims,
    public_clients_need_pkce_and_refresh_tokens_rotate,
    hostile_requests_get_the_errors_the_specs_prescribe,
    a_password_reset_revokes_oidc_tokens,
    a_request_object_is_refused_at_its_redirect_uri,
);
