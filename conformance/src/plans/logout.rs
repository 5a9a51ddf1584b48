//! RP-Initiated Logout OP and Back-Channel Logout OP: a signed-in browser is sent
//! to the end-session endpoint with more or less of the spec's parameters.

use std::time::Duration;

use anyhow::{Result, bail, ensure};
use url::Url;

use crate::Verdict;
use crate::agent::{Agent, Journey, Landing};
use crate::checks;
use crate::flow::{self, Auth, Context, Request, Tokens, session_is_over, sign_in};

pub async fn play(context: &Context<'_>, module: &str) -> Result<Option<Verdict>> {
    let verdict = match module {
        "oidcc-rp-initiated-logout" => back_to_the_client(context, true).await?,
        "oidcc-rp-initiated-logout-no-state" => back_to_the_client(context, false).await?,
        "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri" => {
            let elsewhere = format!(
                "{}/{}",
                context.receiver.post_logout_redirect_uri(),
                flow::random()
            );
            refused_post_logout_uri(context, &elsewhere).await?
        }
        "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri" => {
            let added = format!("{}?foo=bar", context.receiver.post_logout_redirect_uri());
            refused_post_logout_uri(context, &added).await?
        }
        "oidcc-rp-initiated-logout-modified-id-token-hint" => {
            bad_hint(context, |token| {
                // Flip the signature's first character: same claims, bad signature.
                let (rest, signature) = token.rsplit_once('.').unwrap_or((token, ""));
                let flipped = if signature.starts_with('A') { "B" } else { "A" };
                format!("{rest}.{flipped}{}", signature.get(1..).unwrap_or_default())
            })
            .await?
        }
        "oidcc-rp-initiated-logout-bad-id-token-hint" => {
            bad_hint(context, |_| {
                "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned()
            })
            .await?
        }
        "oidcc-rp-initiated-logout-no-id-token-hint" => no_id_token_hint(context).await?,
        "oidcc-rp-initiated-logout-no-params" => confirmed_here(context, &[]).await?,
        "oidcc-rp-initiated-logout-only-state" => {
            let state = flow::random();
            confirmed_here(context, &[("state", state.as_str())]).await?
        }
        "oidcc-rp-initiated-logout-no-post-logout-redirect-uri" => {
            no_post_logout_redirect_uri(context).await?
        }
        "oidcc-backchannel-rp-initiated-logout" => backchannel(context).await?,
        _ => return Ok(None),
    };
    Ok(Some(verdict))
}

/// A fresh browser signed in to the first client.
async fn signed_in(context: &Context<'_>) -> Result<(Agent, Tokens)> {
    let agent = context.agent()?;
    let request = Request::new(context, &context.target.client);
    let (tokens, _) = sign_in(context, &agent, &request, Auth::Basic).await?;
    Ok((agent, tokens))
}

async fn end_session(
    context: &Context<'_>,
    agent: &Agent,
    params: &[(&str, &str)],
) -> Result<Journey> {
    let mut url = context.endpoint("end_session_endpoint")?;
    if !params.is_empty() {
        url.query_pairs_mut().extend_pairs(params);
    }
    agent.visit(url).await
}

/// Where the provider sent the browser, if it was to the post-logout URI; fails
/// when it sent it anywhere else.
fn at_post_logout_uri(context: &Context<'_>, journey: &Journey) -> Result<Option<Url>> {
    match &journey.landing {
        Landing::Away(url) => {
            let expected = context.receiver.post_logout_redirect_uri();
            let without_query = url.as_str().split('?').next().unwrap_or_default();
            ensure!(
                without_query == expected,
                "sent to {url}, not to {expected}"
            );
            Ok(Some(url.clone()))
        }
        Landing::Page { status, .. } if status.is_server_error() => {
            bail!("the provider failed: {}", journey.landing.describe())
        }
        Landing::Page { .. } => Ok(None),
    }
}

/// Signs out with an ID token hint, the registered post-logout URI and, if
/// `with_state`, a state: straight back to the client with that state, and the
/// session is over.
async fn back_to_the_client(context: &Context<'_>, with_state: bool) -> Result<Verdict> {
    let (agent, tokens) = signed_in(context).await?;
    let uri = context.receiver.post_logout_redirect_uri();
    let state = flow::random();
    let mut params = vec![
        ("id_token_hint", tokens.id_token.as_str()),
        ("post_logout_redirect_uri", uri.as_str()),
    ];
    if with_state {
        params.push(("state", state.as_str()));
    }
    let journey = end_session(context, &agent, &params).await?;
    let Some(back) = at_post_logout_uri(context, &journey)? else {
        bail!(
            "not sent back to the client: {}",
            journey.landing.describe()
        );
    };
    let returned = back
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    ensure!(
        returned == with_state.then_some(state),
        "state {returned:?} at the post-logout URI"
    );
    session_is_over(context, &agent).await?;
    Ok(Verdict::Pass)
}

/// A post-logout URI that is not registered (RP-Initiated Logout §3): never a
/// redirect there.
async fn refused_post_logout_uri(context: &Context<'_>, uri: &str) -> Result<Verdict> {
    let (agent, tokens) = signed_in(context).await?;
    let params = [
        ("id_token_hint", tokens.id_token.as_str()),
        ("post_logout_redirect_uri", uri),
        ("state", "s"),
    ];
    let journey = end_session(context, &agent, &params).await?;
    ensure!(
        matches!(journey.landing, Landing::Page { status, .. } if !status.is_server_error()),
        "unregistered post_logout_redirect_uri: {}",
        journey.landing.describe()
    );
    Ok(Verdict::Pass)
}

/// An ID token hint that does not verify: the provider must not trust it to send
/// the browser to the post-logout URI without asking.
async fn bad_hint(context: &Context<'_>, spoil: impl Fn(&str) -> String) -> Result<Verdict> {
    let (agent, tokens) = signed_in(context).await?;
    let uri = context.receiver.post_logout_redirect_uri();
    let hint = spoil(&tokens.id_token);
    let params = [
        ("id_token_hint", hint.as_str()),
        ("post_logout_redirect_uri", uri.as_str()),
        ("state", "s"),
    ];
    let journey = end_session(context, &agent, &params).await?;
    ensure!(
        matches!(journey.landing, Landing::Page { status, .. } if !status.is_server_error()),
        "a bad id_token_hint: {}",
        journey.landing.describe()
    );
    Ok(Verdict::Pass)
}

/// client_id instead of a hint (RP-Initiated Logout §2): the student confirms,
/// then goes back to the client with the state.
async fn no_id_token_hint(context: &Context<'_>) -> Result<Verdict> {
    let (agent, _) = signed_in(context).await?;
    let uri = context.receiver.post_logout_redirect_uri();
    let state = flow::random();
    let params = [
        ("client_id", context.target.client.id.as_str()),
        ("post_logout_redirect_uri", uri.as_str()),
        ("state", state.as_str()),
    ];
    let journey = end_session(context, &agent, &params).await?;
    let journey = match at_post_logout_uri(context, &journey)? {
        // Logging out without asking is allowed, but then it must be done.
        Some(_) => journey,
        None => agent.confirm_logout(&journey.landing).await?,
    };
    let Some(back) = at_post_logout_uri(context, &journey)? else {
        bail!(
            "not sent back after confirming: {}",
            journey.landing.describe()
        );
    };
    ensure!(
        back.query_pairs().any(|(k, v)| k == "state" && v == state),
        "state not returned to the post-logout URI"
    );
    session_is_over(context, &agent).await?;
    Ok(Verdict::Pass)
}

/// No post-logout URI: the student stays at the provider (confirming if asked)
/// and is signed out.
async fn confirmed_here(context: &Context<'_>, params: &[(&str, &str)]) -> Result<Verdict> {
    let (agent, _) = signed_in(context).await?;
    let journey = end_session(context, &agent, params).await?;
    ensure!(
        at_post_logout_uri(context, &journey)?.is_none(),
        "redirected without a post_logout_redirect_uri"
    );
    let after = agent.confirm_logout(&journey.landing).await?;
    ensure!(
        matches!(after.landing, Landing::Page { status, .. } if status.is_success()),
        "after confirming: {}",
        after.landing.describe()
    );
    session_is_over(context, &agent).await?;
    Ok(Verdict::Pass)
}

async fn no_post_logout_redirect_uri(context: &Context<'_>) -> Result<Verdict> {
    let (agent, tokens) = signed_in(context).await?;
    let params = [("id_token_hint", tokens.id_token.as_str())];
    let journey = end_session(context, &agent, &params).await?;
    let Landing::Page { status, .. } = &journey.landing else {
        bail!("redirected without a post_logout_redirect_uri");
    };
    ensure!(status.is_success(), "the provider answered {status}");
    session_is_over(context, &agent).await?;
    Ok(Verdict::Pass)
}

/// Back-Channel Logout §2.5: the client of the session gets a logout token
/// naming the session (sid) and the subject, signed like an ID token.
async fn backchannel(context: &Context<'_>) -> Result<Verdict> {
    let (agent, tokens) = signed_in(context).await?;
    let sid = checks::text(&tokens.claims, "sid")?.to_owned();
    let sub = checks::text(&tokens.claims, "sub")?.to_owned();
    let uri = context.receiver.post_logout_redirect_uri();
    let params = [
        ("id_token_hint", tokens.id_token.as_str()),
        ("post_logout_redirect_uri", uri.as_str()),
        ("state", "s"),
    ];
    let journey = end_session(context, &agent, &params).await?;
    ensure!(
        at_post_logout_uri(context, &journey)?.is_some(),
        "not sent back to the client: {}",
        journey.landing.describe()
    );
    let client_id = context.target.client.id.as_str();
    let wanted = |token: &str| {
        checks::peek(token).is_some_and(|c| {
            c["sid"] == sid.as_str()
                && (c["aud"] == client_id
                    || c["aud"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|x| x == client_id)))
        })
    };
    let Some(token) = context
        .receiver
        .logout_token(Duration::from_secs(10), wanted)
        .await
    else {
        bail!("no logout token for the session within 10 s");
    };
    let claims = checks::logout_token(&context.jwks().await?, &token, context.issuer(), client_id)?;
    if let Some(got) = claims.get("sub") {
        ensure!(
            got == sub.as_str(),
            "the logout token's sub is not the ID token's"
        );
    }
    session_is_over(context, &agent).await?;
    Ok(Verdict::Pass)
}
