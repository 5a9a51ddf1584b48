//! Interoperability: an independent relying party, the `openidconnect` crate, signs
//! in through Guichet (discovery, code flow with PKCE, ID token verified against the
//! JWKS with its own checks), reads UserInfo, refreshes, revokes, and logs out.
//! Only the login form is filled in by hand, as a student would.

use crate::common::oidc::{confidential, issuer, login_next, registered, signs_in_and_returns};
use crate::common::{self, ACTIVE_UID, Backend, TestApp, both_backends};
use guichet::oidc::clients::NewClient;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreUserInfoClaims};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, LogoutRequest, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PostLogoutRedirectUrl, ProviderMetadataWithLogout,
    RedirectUrl, Scope, TokenResponse,
};
use reqwest::StatusCode;

const REDIRECT: &str = "http://127.0.0.1:9/callback";
const AFTER_LOGOUT: &str = "http://127.0.0.1:9/bye";

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

/// The student's part: the login page the authorization URL leads to.
async fn student_signs_in(app: &TestApp, authorize: &str) -> url::Url {
    let to_login = app.http.get(authorize).send().await.unwrap();
    assert_eq!(to_login.status(), StatusCode::SEE_OTHER);
    let login = location(&to_login);
    let back = signs_in_and_returns(app, &login_next(&login)).await;
    url::Url::parse(&back).unwrap()
}

async fn the_openidconnect_crate_signs_in_refreshes_and_logs_out(backend: Backend) {
    let app = TestApp::start_published(backend).await;
    let issuer = issuer(&app);
    let new = NewClient {
        post_logout_redirect_uris: vec![AFTER_LOGOUT.to_owned()],
        ..confidential("rp", REDIRECT)
    };
    let secret = registered(&app, new).await.unwrap();
    let http = openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let metadata =
        ProviderMetadataWithLogout::discover_async(IssuerUrl::new(issuer).unwrap(), &http)
            .await
            .expect("discovery");
    let end_session = metadata
        .additional_metadata()
        .end_session_endpoint
        .clone()
        .expect("an end-session endpoint");
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new("rp".into()),
        Some(ClientSecret::new(secret)),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (authorize, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let back = student_signs_in(&app, authorize.as_str()).await;
    let pairs: Vec<(String, String)> = back
        .query_pairs()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let value = |key: &str| pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    assert_eq!(value("state").as_deref(), Some(csrf.secret().as_str()));
    let code = AuthorizationCode::new(value("code").expect("a code"));
    let tokens = client
        .exchange_code(code)
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("an ID token");
    let claims = id_token
        .claims(&client.id_token_verifier(), &nonce)
        .expect("the ID token verifies: signature, issuer, audience, nonce, expiry");
    let uuid = app
        .directory
        .read(&common::people_dn(ACTIVE_UID), "entryUUID");
    assert_eq!(claims.subject().as_str(), uuid[0]);
    let userinfo: CoreUserInfoClaims = client
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http)
        .await
        .expect("UserInfo");
    assert_eq!(
        userinfo.preferred_username().map(|u| u.as_str()),
        Some(ACTIVE_UID)
    );
    assert_eq!(userinfo.subject(), claims.subject());
    let refresh = tokens
        .refresh_token()
        .expect("offline_access gives a refresh token");
    let renewed = client
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http)
        .await
        .expect("refresh");
    assert_ne!(
        renewed.refresh_token().unwrap().secret(),
        refresh.secret(),
        "rotated"
    );
    assert!(
        client
            .exchange_refresh_token(refresh)
            .unwrap()
            .request_async(&http)
            .await
            .is_err(),
        "the old refresh token is refused"
    );
    let logout = LogoutRequest::from(end_session)
        .set_id_token_hint(id_token)
        .set_post_logout_redirect_uri(PostLogoutRedirectUrl::new(AFTER_LOGOUT.into()).unwrap())
        .set_state(CsrfToken::new("bye-state".into()))
        .http_get_url();
    let out = app.http.get(logout.as_str()).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::FOUND);
    assert_eq!(location(&out), format!("{AFTER_LOGOUT}?state=bye-state"));
    assert_eq!(
        app.get("/account").await.status(),
        StatusCode::SEE_OTHER,
        "signed out"
    );
    app.shutdown().await;
}

both_backends!(the_openidconnect_crate_signs_in_refreshes_and_logs_out);
