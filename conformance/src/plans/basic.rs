//! Basic OP: the code flow with client_secret_basic and client_secret_post, and
//! the authorization request's parameters (OpenID Connect Core §3.1).

use std::time::Duration;

use anyhow::{Context as _, Result, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;

use crate::Verdict;
use crate::checks;
use crate::flow::{
    self, Auth, Context, Request, UserInfoCall, code_of, error_of, error_page, redeem, sign_in,
    token_error, userinfo, userinfo_call,
};

pub async fn play(context: &Context<'_>, module: &str) -> Result<Option<Verdict>> {
    let client = &context.target.client;
    let plain = || Request::new(context, client);
    let verdict = match module {
        "oidcc-server" | "oidcc-idtoken-signature" => happy(context, plain()).await?,
        "oidcc-response-type-missing" => response_type_missing(context).await?,
        "oidcc-codereuse" => code_reuse(context, Duration::ZERO).await?,
        "oidcc-codereuse-30seconds" => code_reuse(context, Duration::from_secs(30)).await?,
        "oidcc-scope-address" => scope(context, "address", &["address"]).await?,
        "oidcc-scope-phone" => scope(context, "phone", &["phone_number"]).await?,
        "oidcc-scope-email" => scope(context, "email", &["email"]).await?,
        "oidcc-scope-profile" => {
            scope(context, "profile", &["name", "given_name", "family_name"]).await?
        }
        "oidcc-scope-all" => scope_all(context).await?,
        "oidcc-alternate-happy-flow" => alternate_happy_flow(context).await?,
        "oidcc-claims-essential" => {
            let claims = r#"{"userinfo":{"name":{"essential":true}}}"#;
            happy(context, plain().set("claims", claims)).await?
        }
        "oidcc-claims-locales" => happy(context, plain().set("claims_locales", "fr-FR en")).await?,
        "oidcc-ui-locales" => happy(context, plain().set("ui_locales", "fr-FR en")).await?,
        "oidcc-display-page" => happy(context, plain().set("display", "page")).await?,
        "oidcc-display-popup" => happy(context, plain().set("display", "popup")).await?,
        "oidcc-userinfo-get" => userinfo_by(context, UserInfoCall::Get).await?,
        "oidcc-userinfo-post-header" => userinfo_by(context, UserInfoCall::PostHeader).await?,
        "oidcc-userinfo-post-body" => userinfo_by(context, UserInfoCall::PostBody).await?,
        "oidcc-login-hint" => {
            let hint = context.target.login.clone();
            happy(context, plain().set("login_hint", &hint)).await?
        }
        "oidcc-id-token-hint" => id_token_hint(context).await?,
        "oidcc-prompt-login" => prompt_login(context).await?,
        "oidcc-prompt-none-logged-in" => prompt_none_logged_in(context).await?,
        "oidcc-prompt-none-not-logged-in" => prompt_none_not_logged_in(context).await?,
        "oidcc-max-age-1" => max_age_1(context).await?,
        "oidcc-max-age-10000" => max_age_10000(context).await?,
        "oidcc-ensure-post-request-succeeds" => post_request(context).await?,
        "oidcc-ensure-registered-redirect-uri" => unregistered_redirect_uri(context).await?,
        "oidcc-ensure-request-object-with-redirect-uri" => request_object(context, true).await?,
        "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported" => {
            request_object(context, false).await?
        }
        "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported" => {
            request_uri(context).await?
        }
        "oidcc-ensure-request-with-acr-values-succeeds" => {
            happy(context, plain().set("acr_values", "1 2")).await?
        }
        "oidcc-ensure-request-with-unknown-parameter-succeeds" => {
            happy(context, plain().set("extra_parameter", "foobar")).await?
        }
        "oidcc-ensure-request-with-valid-pkce-succeeds" => happy(context, plain().pkce()).await?,
        "oidcc-ensure-request-without-nonce-succeeds-for-code-flow" => {
            happy(context, plain().without("nonce")).await?
        }
        "oidcc-refresh-token" => refresh_token(context).await?,
        "oidcc-server-client-secret-post" => {
            let agent = context.agent()?;
            sign_in(context, &agent, &plain(), Auth::Post).await?;
            Verdict::Pass
        }
        "oidcc-idtoken-unsigned" => skip_unless(
            context,
            "id_token_signing_alg_values_supported",
            "none",
            "unsigned ID tokens are not offered",
        )
        .unwrap_or(Verdict::Fail("unsigned ID tokens are offered".into())),
        _ => return Ok(None),
    };
    Ok(Some(verdict))
}

/// Skips when discovery does not list `value` under `key`, as the Foundation's
/// suite does for optional features.
fn skip_unless(context: &Context<'_>, key: &str, value: &str, why: &str) -> Option<Verdict> {
    (!context.supports(key, value)).then(|| Verdict::Skip(why.to_owned()))
}

/// Signs in with a fresh browser and redeems the code (client_secret_basic).
async fn happy(context: &Context<'_>, request: Request) -> Result<Verdict> {
    let agent = context.agent()?;
    let (_, journey) = sign_in(context, &agent, &request, Auth::Basic).await?;
    ensure!(
        journey.logins == 1,
        "the login form was filled {} times",
        journey.logins
    );
    Ok(Verdict::Pass)
}

async fn response_type_missing(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client).without("response_type");
    let journey = request.send(context, &agent).await?;
    // Either answer is allowed: invalid_request sent to the client, or an error
    // page (the suite asks for a screenshot then).
    if error_page(&journey).is_ok() {
        return Ok(Verdict::Pass);
    }
    let error = error_of(context, &request, &journey)?;
    ensure!(
        error == "invalid_request",
        "error={error}, expected invalid_request"
    );
    Ok(Verdict::Pass)
}

/// Core §4.1.3 / RFC 6749 §4.1.2: a code works once; its second use is refused
/// and should revoke what the first one gave.
async fn code_reuse(context: &Context<'_>, wait: Duration) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client);
    let journey = request.send(context, &agent).await?;
    let code = code_of(context, &request, &journey)?;
    let tokens = redeem(context, &request, &code, Auth::Basic).await?;
    tokio::time::sleep(wait).await;
    let redirect = context.receiver.redirect_uri();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect.as_str()),
    ];
    let error = token_error(context, &request.client, Auth::Basic, &form).await?;
    ensure!(
        error == "invalid_grant",
        "second use: error={error}, expected invalid_grant"
    );
    let (status, _) = userinfo_call(context, &tokens.access, UserInfoCall::Get).await?;
    ensure!(
        status == StatusCode::UNAUTHORIZED,
        "the access token of a reused code still works ({status})"
    );
    Ok(Verdict::Pass)
}

async fn scope(context: &Context<'_>, scope: &str, wanted: &[&str]) -> Result<Verdict> {
    if let Some(skip) = skip_unless(
        context,
        "scopes_supported",
        scope,
        &format!("the {scope} scope is not offered"),
    ) {
        return Ok(skip);
    }
    let agent = context.agent()?;
    let request =
        Request::new(context, &context.target.client).set("scope", &format!("openid {scope}"));
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    let claims = userinfo(context, &tokens, UserInfoCall::Get).await?;
    for name in wanted {
        ensure!(
            claims.get(*name).is_some(),
            "UserInfo lacks {name} for scope {scope}"
        );
    }
    Ok(Verdict::Pass)
}

/// Every scope the suite knows; those the provider does not offer are ignored.
async fn scope_all(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client)
        .set("scope", "openid profile email address phone");
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    let claims = userinfo(context, &tokens, UserInfoCall::Get).await?;
    for name in ["name", "email"] {
        ensure!(claims.get(name).is_some(), "UserInfo lacks {name}");
    }
    Ok(Verdict::Pass)
}

/// Scopes reversed and parameters in another order (RFC 6749 §3.3).
async fn alternate_happy_flow(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let mut request = Request::new(context, &context.target.client).set("scope", "email openid");
    request.params.reverse();
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    let claims = userinfo(context, &tokens, UserInfoCall::Get).await?;
    ensure!(claims.get("email").is_some(), "UserInfo lacks email");
    Ok(Verdict::Pass)
}

async fn userinfo_by(context: &Context<'_>, how: UserInfoCall) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client);
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    userinfo(context, &tokens, how).await?;
    Ok(Verdict::Pass)
}

/// Signs in, then sends a second request with `change` applied in the same
/// browser; returns the first and second ID tokens' claims and the second
/// journey's number of logins.
async fn twice(
    context: &Context<'_>,
    pause: Duration,
    change: impl FnOnce(Request, &flow::Tokens) -> Request,
) -> Result<(serde_json::Value, serde_json::Value, usize)> {
    let agent = context.agent()?;
    let first = Request::new(context, &context.target.client);
    let (tokens, _) = sign_in(context, &agent, &first, Auth::Basic).await?;
    tokio::time::sleep(pause).await;
    let second = change(Request::new(context, &context.target.client), &tokens);
    let (again, journey) = sign_in(context, &agent, &second, Auth::Basic).await?;
    ensure!(
        again.claims["sub"] == tokens.claims["sub"],
        "sub changed between sign-ins"
    );
    Ok((tokens.claims, again.claims, journey.logins))
}

async fn id_token_hint(context: &Context<'_>) -> Result<Verdict> {
    let (_, _, logins) = twice(context, Duration::ZERO, |r, tokens| {
        r.set("prompt", "none")
            .set("id_token_hint", &tokens.id_token)
    })
    .await?;
    ensure!(logins == 0, "a login form was shown under prompt=none");
    Ok(Verdict::Pass)
}

/// Core §3.1.2.1: prompt=login re-authenticates even with a session.
async fn prompt_login(context: &Context<'_>) -> Result<Verdict> {
    let (first, second, logins) = twice(context, Duration::from_millis(1100), |r, _| {
        r.set("prompt", "login")
    })
    .await?;
    ensure!(
        logins == 1,
        "prompt=login did not ask for the password again"
    );
    let (before, after) = (
        checks::number(&first, "auth_time")?,
        checks::number(&second, "auth_time")?,
    );
    ensure!(after > before, "auth_time did not move after a new login");
    Ok(Verdict::Pass)
}

async fn prompt_none_logged_in(context: &Context<'_>) -> Result<Verdict> {
    let (_, _, logins) = twice(context, Duration::ZERO, |r, _| r.set("prompt", "none")).await?;
    ensure!(logins == 0, "a login form was shown under prompt=none");
    Ok(Verdict::Pass)
}

async fn prompt_none_not_logged_in(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client).set("prompt", "none");
    let journey = request.send(context, &agent).await?;
    let error = error_of(context, &request, &journey)?;
    let allowed = [
        "login_required",
        "interaction_required",
        "consent_required",
        "account_selection_required",
    ];
    ensure!(allowed.contains(&error.as_str()), "error={error}");
    Ok(Verdict::Pass)
}

/// Core §3.1.2.1: max_age=1 after more than a second asks for the password again
/// and auth_time says when.
async fn max_age_1(context: &Context<'_>) -> Result<Verdict> {
    let (first, second, logins) = twice(context, Duration::from_secs(2), |r, _| {
        r.set("max_age", "1")
    })
    .await?;
    ensure!(logins == 1, "max_age=1 did not ask for the password again");
    let (before, after) = (
        checks::number(&first, "auth_time")?,
        checks::number(&second, "auth_time")?,
    );
    ensure!(after > before, "auth_time did not move after a new login");
    Ok(Verdict::Pass)
}

async fn max_age_10000(context: &Context<'_>) -> Result<Verdict> {
    let (first, second, logins) =
        twice(context, Duration::ZERO, |r, _| r.set("max_age", "10000")).await?;
    ensure!(logins == 0, "max_age=10000 asked for the password again");
    ensure!(
        checks::number(&second, "auth_time")? == checks::number(&first, "auth_time")?,
        "auth_time changed without a new login"
    );
    Ok(Verdict::Pass)
}

/// Core §3.1.2.1: the authorization endpoint takes POST too.
async fn post_request(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client);
    let journey = agent
        .post(context.endpoint("authorization_endpoint")?, &request.params)
        .await?;
    let code = code_of(context, &request, &journey)?;
    redeem(context, &request, &code, Auth::Basic).await?;
    Ok(Verdict::Pass)
}

/// RFC 6749 §4.1.2.1: an unregistered redirect URI gets a page, never a redirect.
async fn unregistered_redirect_uri(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let elsewhere = format!("{}/{}", context.receiver.redirect_uri(), flow::random());
    let request = Request::new(context, &context.target.client).set("redirect_uri", &elsewhere);
    let journey = request.send(context, &agent).await?;
    error_page(&journey)?;
    Ok(Verdict::Pass)
}

fn unsigned_jwt(claims: &serde_json::Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// Core §6.1: request objects. A provider that does not support them answers
/// request_not_supported (§6.3) at the redirect URI, or shows an error page.
async fn request_object(context: &Context<'_>, with_redirect_uri: bool) -> Result<Verdict> {
    let agent = context.agent()?;
    let mut request = Request::new(context, &context.target.client);
    let mut object = serde_json::json!({
        "iss": request.client.id,
        "aud": context.issuer(),
        "response_type": "code",
        "client_id": request.client.id,
        "scope": "openid",
        "state": request.get("state"),
        "nonce": request.get("nonce"),
    });
    if with_redirect_uri {
        object["redirect_uri"] = context.receiver.redirect_uri().into();
        request = request.without("redirect_uri");
    }
    request = request.set("request", &unsigned_jwt(&object));
    let journey = request.send(context, &agent).await?;
    if context.discovery["request_parameter_supported"] == true {
        let code = code_of(context, &request, &journey)?;
        redeem(context, &request, &code, Auth::Basic).await?;
        return Ok(Verdict::Pass);
    }
    if error_page(&journey).is_ok() {
        return Ok(Verdict::Pass);
    }
    let error = error_of(context, &request, &journey)?;
    ensure!(
        error == "request_not_supported",
        "error={error}, expected request_not_supported"
    );
    Ok(Verdict::Pass)
}

async fn request_uri(context: &Context<'_>) -> Result<Verdict> {
    let agent = context.agent()?;
    let object_at = format!(
        "{}/request/{}",
        context.receiver.redirect_uri(),
        flow::random()
    );
    let request = Request::new(context, &context.target.client).set("request_uri", &object_at);
    let journey = request.send(context, &agent).await?;
    ensure!(
        context.discovery["request_uri_parameter_supported"] == false,
        "request_uri is offered: this runner cannot serve request objects"
    );
    if error_page(&journey).is_ok() {
        return Ok(Verdict::Pass);
    }
    let error = error_of(context, &request, &journey)?;
    ensure!(
        error == "request_uri_not_supported",
        "error={error}, expected request_uri_not_supported"
    );
    Ok(Verdict::Pass)
}

/// Core §12: offline_access gives a refresh token; refreshing rotates it, keeps
/// the subject, and another client cannot use it.
async fn refresh_token(context: &Context<'_>) -> Result<Verdict> {
    if let Some(skip) = skip_unless(
        context,
        "grant_types_supported",
        "refresh_token",
        "no refresh tokens",
    ) {
        return Ok(skip);
    }
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client)
        .set("scope", "openid offline_access")
        .set("prompt", "consent");
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    let refresh = tokens
        .refresh
        .clone()
        .context("no refresh_token for offline_access")?;
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.as_str()),
    ];
    let stolen = token_error(context, &context.target.client2, Auth::Basic, &form).await?;
    ensure!(
        stolen == "invalid_grant",
        "another client's refresh: error={stolen}"
    );
    let (status, body) = flow::token_call(context, &request.client, Auth::Basic, &form).await?;
    let nonce = request.get("nonce");
    let renewed = flow::tokens_of(context, &request.client, nonce, true, status, body).await?;
    ensure!(
        renewed.claims["sub"] == tokens.claims["sub"],
        "the refreshed ID token has another sub"
    );
    ensure!(
        renewed.claims["auth_time"] == tokens.claims["auth_time"],
        "the refreshed ID token has another auth_time"
    );
    let rotated = renewed.refresh.as_deref().context("no new refresh token")?;
    ensure!(rotated != refresh, "the refresh token was not rotated");
    userinfo(context, &renewed, UserInfoCall::Get).await?;
    Ok(Verdict::Pass)
}
