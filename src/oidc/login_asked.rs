//! A signed statement that Guichet sent the student to sign in, at a time, for
//! one audience (an OIDC client, a CAS service). Carried through the login page
//! in the return address, it tells a sign-in made after the request (which
//! meets `prompt=login`, `max_age`, CAS `renew`) from merely opening that
//! address again with an older session.

use super::keys::{Alg, KeyError};
use crate::app::App;

/// How long the student has to sign in.
const LIFETIME: i64 = 600;

const TYP: &str = "login-request+jwt";

/// A sign-in asked for: when, and which session the browser had then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Asked {
    pub at: i64,
    /// The `sid` of the session the browser had when asked: a session that is
    /// still this one was not opened by a new sign-in, whatever its second.
    pub prior: Option<String>,
}

/// A statement that a sign-in was asked now, for `audience`.
pub(crate) fn statement(app: &App, audience: &str, now: i64) -> Result<String, KeyError> {
    statement_since(app, audience, now, None)
}

/// A statement that a sign-in was asked now, while the browser had the session
/// `prior` (its `sid`).
pub(crate) fn statement_since(
    app: &App,
    audience: &str,
    now: i64,
    prior: Option<&str>,
) -> Result<String, KeyError> {
    let mut claims = serde_json::json!({
        "iss": super::issuer(app),
        "aud": audience,
        "iat": now,
        "exp": now + LIFETIME,
    });
    if let (Some(prior), Some(fields)) = (prior, claims.as_object_mut()) {
        fields.insert("prior".into(), prior.into());
    }
    app.keys.current().sign(Alg::Rs256, TYP, &claims, now)
}

/// The sign-in a statement asked for; `None` if it is not one of ours for
/// `audience`, or has expired.
pub(crate) fn asked(app: &App, raw: &str, audience: &str, now: i64) -> Option<Asked> {
    let claims = app.keys.current().verify_own(raw, TYP, now, |validation| {
        // Only for the audience that asked, and not a second past its lifetime.
        validation.set_audience(&[audience]);
        validation.set_issuer(&[super::issuer(app)]);
        validation.leeway = 0;
    })?;
    Some(Asked {
        at: claims["iat"].as_i64()?,
        prior: claims["prior"].as_str().map(str::to_owned),
    })
}
