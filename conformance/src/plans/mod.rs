//! The modules of each plan, named as in the OpenID Foundation's suite, and what
//! each one plays.

mod basic;
mod discovery;
mod logout;

use anyhow::Result;

use crate::Plan;
use crate::Verdict;
use crate::flow::Context;

const BASIC: &[&str] = &[
    "oidcc-server",
    "oidcc-response-type-missing",
    "oidcc-idtoken-signature",
    "oidcc-codereuse",
    "oidcc-scope-address",
    "oidcc-scope-all",
    "oidcc-scope-email",
    "oidcc-scope-phone",
    "oidcc-scope-profile",
    "oidcc-claims-essential",
    "oidcc-claims-locales",
    "oidcc-userinfo-get",
    "oidcc-userinfo-post-body",
    "oidcc-userinfo-post-header",
    "oidcc-alternate-happy-flow",
    "oidcc-display-page",
    "oidcc-display-popup",
    "oidcc-ui-locales",
    "oidcc-login-hint",
    "oidcc-id-token-hint",
    "oidcc-prompt-login",
    "oidcc-prompt-none-logged-in",
    "oidcc-prompt-none-not-logged-in",
    "oidcc-max-age-1",
    "oidcc-max-age-10000",
    "oidcc-ensure-post-request-succeeds",
    "oidcc-ensure-registered-redirect-uri",
    "oidcc-ensure-request-object-with-redirect-uri",
    "oidcc-ensure-request-with-acr-values-succeeds",
    "oidcc-ensure-request-with-unknown-parameter-succeeds",
    "oidcc-ensure-request-with-valid-pkce-succeeds",
    "oidcc-ensure-request-without-nonce-succeeds-for-code-flow",
    "oidcc-refresh-token",
    "oidcc-codereuse-30seconds",
    "oidcc-server-client-secret-post",
    "oidcc-idtoken-unsigned",
    "oidcc-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported",
    "oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported",
];

const CONFIG: &[&str] = &["oidcc-discovery-endpoint-verification"];

const RP_INITIATED_LOGOUT: &[&str] = &[
    "oidcc-rp-initiated-logout-discovery-endpoint-verification",
    "oidcc-rp-initiated-logout",
    "oidcc-rp-initiated-logout-bad-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-modified-id-token-hint",
    "oidcc-rp-initiated-logout-no-id-token-hint",
    "oidcc-rp-initiated-logout-no-params",
    "oidcc-rp-initiated-logout-no-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-no-state",
    "oidcc-rp-initiated-logout-only-state",
    "oidcc-rp-initiated-logout-query-added-to-post-logout-redirect-uri",
    "oidcc-rp-initiated-logout-bad-id-token-hint",
];

const BACK_CHANNEL_LOGOUT: &[&str] = &[
    "oidcc-backchannel-logout-discovery-endpoint-verification",
    "oidcc-backchannel-rp-initiated-logout",
];

pub fn modules(plan: Plan) -> &'static [&'static str] {
    match plan {
        Plan::Basic => BASIC,
        Plan::Config => CONFIG,
        Plan::RpInitiatedLogout => RP_INITIATED_LOGOUT,
        Plan::BackChannelLogout => BACK_CHANNEL_LOGOUT,
    }
}

pub async fn play(context: &Context<'_>, module: &str) -> Result<Verdict> {
    if let Some(verdict) = basic::play(context, module).await? {
        return Ok(verdict);
    }
    if let Some(verdict) = logout::play(context, module).await? {
        return Ok(verdict);
    }
    match module {
        "oidcc-discovery-endpoint-verification" => discovery::core(context).await,
        "oidcc-rp-initiated-logout-discovery-endpoint-verification" => {
            discovery::rp_initiated_logout(context)
        }
        "oidcc-backchannel-logout-discovery-endpoint-verification" => {
            discovery::backchannel_logout(context)
        }
        other => anyhow::bail!("no such module: {other}"),
    }
}
