//! A signed statement that Guichet sent the student to sign in, at a time, for
//! one audience (an OIDC client, a CAS service). Carried through the login page
//! in the return address, it tells a sign-in made after the request (which
//! meets `prompt=login`, `max_age`, CAS `renew`) from merely opening that
//! address again with an older session.

use super::keys::{self, Alg, KeyError};
use crate::app::App;
use crate::store::StoreError;

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
pub(crate) async fn statement<E>(app: &App, audience: &str, now: i64) -> Result<String, E>
where
    E: From<StoreError> + From<KeyError>,
{
    statement_since(app, audience, now, None).await
}

/// A statement that a sign-in was asked now, while the browser had the session
/// `prior` (its `sid`).
pub(crate) async fn statement_since<E>(
    app: &App,
    audience: &str,
    now: i64,
    prior: Option<&str>,
) -> Result<String, E>
where
    E: From<StoreError> + From<KeyError>,
{
    let keys = app.store.published_keys(now).await?;
    let mut claims = serde_json::json!({
        "iss": super::issuer(app),
        "aud": audience,
        "iat": now,
        "exp": now + LIFETIME,
    });
    if let (Some(prior), Some(fields)) = (prior, claims.as_object_mut()) {
        fields.insert("prior".into(), prior.into());
    }
    Ok(keys::sign_typed(
        &keys,
        &app.sealer,
        Alg::Rs256,
        TYP,
        &claims,
    )?)
}

/// When the sign-in was asked, from a statement; `None` if it is not one of
/// ours for `audience`, or has expired.
pub(crate) async fn asked_at(
    app: &App,
    raw: &str,
    audience: &str,
    now: i64,
) -> Result<Option<i64>, StoreError> {
    Ok(asked(app, raw, audience, now).await?.map(|asked| asked.at))
}

/// The sign-in a statement asked for; `None` if it is not one of ours for
/// `audience`, or has expired.
pub(crate) async fn asked(
    app: &App,
    raw: &str,
    audience: &str,
    now: i64,
) -> Result<Option<Asked>, StoreError> {
    let keys = app.store.published_keys(now).await?;
    let claims = keys::verify_own(&keys, raw, TYP, |validation| {
        // Only for the audience that asked, and not a second past its lifetime.
        validation.set_audience(&[audience]);
        validation.set_issuer(&[super::issuer(app)]);
        validation.leeway = 0;
    });
    Ok(claims.and_then(|claims| {
        Some(Asked {
            at: claims["iat"].as_i64()?,
            prior: claims["prior"].as_str().map(str::to_owned),
        })
    }))
}
