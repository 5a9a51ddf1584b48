//! Config OP, and the discovery modules of the logout plans: OpenID Connect
//! Discovery §3 and §4.3, RP-Initiated Logout §2.1, Back-Channel Logout §2.1.

use anyhow::{Result, ensure};

use crate::Verdict;
use crate::flow::Context;

/// Endpoints on the issuer's origin, over https (plain http only on the
/// loopback, where a demo or a test runs).
fn endpoint_is_sound(context: &Context<'_>, name: &str) -> Result<()> {
    let url = context.endpoint(name)?;
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    ensure!(
        url.scheme() == "https" || (url.scheme() == "http" && loopback),
        "{name} is not https"
    );
    ensure!(url.fragment().is_none(), "{name} has a fragment");
    let issuer = url::Url::parse(context.issuer())?;
    ensure!(
        url.origin() == issuer.origin(),
        "{name} is not on the issuer's origin"
    );
    Ok(())
}

fn lists(context: &Context<'_>, key: &str, value: &str) -> Result<()> {
    ensure!(context.supports(key, value), "{key} does not list {value}");
    Ok(())
}

pub async fn core(context: &Context<'_>) -> Result<Verdict> {
    let published = context.discovery["issuer"].as_str().unwrap_or_default();
    ensure!(
        published == context.issuer(),
        "issuer {published} is not the one the document was fetched for"
    );
    for name in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        endpoint_is_sound(context, name)?;
    }
    lists(context, "response_types_supported", "code")?;
    lists(context, "scopes_supported", "openid")?;
    lists(context, "id_token_signing_alg_values_supported", "RS256")?;
    lists(context, "claims_supported", "sub")?;
    ensure!(
        context.discovery["subject_types_supported"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "subject_types_supported is missing"
    );
    if let Some(methods) = context
        .discovery
        .get("token_endpoint_auth_methods_supported")
    {
        ensure!(
            methods
                .as_array()
                .is_some_and(|a| a.iter().any(|m| m == "client_secret_basic")),
            "token_endpoint_auth_methods_supported omits the default client_secret_basic"
        );
    }
    let jwks = context.jwks().await?;
    ensure!(!jwks.keys.is_empty(), "the JWKS holds no key");
    let raw: serde_json::Value = context
        .http
        .get(context.endpoint("jwks_uri")?)
        .send()
        .await?
        .json()
        .await?;
    for key in raw["keys"].as_array().into_iter().flatten() {
        ensure!(key["kid"].is_string(), "a key has no kid");
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            ensure!(
                key.get(private).is_none(),
                "a published key holds its private part {private}"
            );
        }
        ensure!(
            key.get("use").is_none_or(|u| u == "sig"),
            "a signing key is published for another use"
        );
    }
    Ok(Verdict::Pass)
}

pub fn rp_initiated_logout(context: &Context<'_>) -> Result<Verdict> {
    endpoint_is_sound(context, "end_session_endpoint")?;
    Ok(Verdict::Pass)
}

pub fn backchannel_logout(context: &Context<'_>) -> Result<Verdict> {
    ensure!(
        context.discovery["backchannel_logout_supported"] == true,
        "backchannel_logout_supported is not true"
    );
    ensure!(
        context.discovery["backchannel_logout_session_supported"] == true,
        "backchannel_logout_session_supported is not true: logout tokens would lack sid"
    );
    endpoint_is_sound(context, "end_session_endpoint")?;
    Ok(Verdict::Pass)
}
