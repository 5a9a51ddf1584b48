//! The relying party's checks on what the provider signs: ID tokens (OpenID
//! Connect Core §3.1.3.7) and logout tokens (Back-Channel Logout §2.6), verified
//! against the published JWKS.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Clock skew allowed on iat.
const SKEW: i64 = 300;

/// Verifies a JWT's signature with the key its `kid` names, and checks iss, aud,
/// exp and the presence of `required`; returns the header's `typ` and the claims.
fn decode(
    jwks: &JwkSet,
    token: &str,
    issuer: &str,
    audience: &str,
    required: &[&str],
) -> Result<(Option<String>, Value)> {
    let header = jsonwebtoken::decode_header(token).context("not a signed JWT")?;
    let kid = header.kid.as_deref().context("no kid in the header")?;
    let jwk = jwks
        .find(kid)
        .with_context(|| format!("kid {kid} is not in the JWKS"))?;
    let key = DecodingKey::from_jwk(jwk).context("unusable JWK")?;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    // iat is checked by the callers: the crate only knows exp, nbf, aud, iss, sub.
    validation.set_required_spec_claims(required);
    validation.leeway = 0;
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .context("signature or claims refused")?;
    Ok((header.typ, data.claims))
}

pub fn number(claims: &Value, name: &str) -> Result<i64> {
    claims[name]
        .as_i64()
        .with_context(|| format!("{name} is missing or not a number"))
}

pub fn text<'a>(claims: &'a Value, name: &str) -> Result<&'a str> {
    claims[name]
        .as_str()
        .with_context(|| format!("{name} is missing or not a string"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What an ID token must say beyond its signature.
pub struct IdTokenRules<'a> {
    pub client_id: &'a str,
    pub nonce: Option<&'a str>,
    /// After a refresh (Core §12.2) the nonce may be left out; if present it is
    /// the original one.
    pub nonce_optional: bool,
    pub access_token: Option<&'a str>,
}

/// Core §3.1.3.7 and §2: the ID token's claims, `at_hash` included.
pub fn id_token(
    jwks: &JwkSet,
    token: &str,
    issuer: &str,
    rules: &IdTokenRules<'_>,
) -> Result<Value> {
    let header = jsonwebtoken::decode_header(token).context("not a signed JWT")?;
    // The runner's clients are registered for RS256: a token in another algorithm
    // is not what the client asked for.
    ensure!(
        header.alg == Algorithm::RS256,
        "ID token signed {:?}, not RS256",
        header.alg
    );
    let required = ["iss", "aud", "exp", "sub"];
    let (_, claims) = decode(jwks, token, issuer, rules.client_id, &required)?;
    ensure!(!text(&claims, "sub")?.is_empty(), "sub is empty");
    let iat = number(&claims, "iat")?;
    ensure!((iat - now()).abs() <= SKEW, "iat {iat} is far from now");
    let exp = number(&claims, "exp")?;
    ensure!(exp > iat, "exp is not after iat");
    if let Some(auds) = claims["aud"].as_array()
        && auds.len() > 1
    {
        ensure!(
            claims["azp"].as_str() == Some(rules.client_id),
            "several audiences and azp is not the client"
        );
    }
    match (rules.nonce, claims.get("nonce")) {
        (Some(sent), Some(got)) => ensure!(got.as_str() == Some(sent), "nonce {got} was not sent"),
        (Some(_), None) if rules.nonce_optional => {}
        (Some(_), None) => bail!("the nonce sent is missing"),
        (None, Some(got)) => bail!("nonce {got} in a token for a request without nonce"),
        (None, None) => {}
    }
    if let Some(auth_time) = claims.get("auth_time") {
        let auth_time = auth_time.as_i64().context("auth_time is not a number")?;
        ensure!(auth_time <= now() + SKEW, "auth_time is in the future");
    }
    if let (Some(access), Some(at_hash)) = (rules.access_token, claims.get("at_hash")) {
        let expected = left_half_hash(header.alg, access)?;
        ensure!(
            at_hash.as_str() == Some(expected.as_str()),
            "at_hash does not match the access token"
        );
    }
    Ok(claims)
}

/// Core §3.1.3.6: the left half of the token's hash with the JWS algorithm's hash.
fn left_half_hash(alg: Algorithm, token: &str) -> Result<String> {
    let digest = match alg {
        Algorithm::RS256 | Algorithm::ES256 | Algorithm::PS256 | Algorithm::HS256 => {
            Sha256::digest(token).to_vec()
        }
        Algorithm::RS384 | Algorithm::ES384 | Algorithm::PS384 | Algorithm::HS384 => {
            Sha384::digest(token).to_vec()
        }
        // EdDSA with Ed25519 uses SHA-512, as the OpenID Foundation's suite does.
        Algorithm::RS512 | Algorithm::PS512 | Algorithm::HS512 | Algorithm::EdDSA => {
            Sha512::digest(token).to_vec()
        }
    };
    Ok(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// Back-Channel Logout §2.4 and §2.6: a logout token for `client_id`.
pub fn logout_token(jwks: &JwkSet, token: &str, issuer: &str, client_id: &str) -> Result<Value> {
    // Back-Channel Logout §2.4: iss, aud, iat, jti, events and exp are required.
    let (typ, claims) = decode(jwks, token, issuer, client_id, &["iss", "aud", "exp"])?;
    ensure!(
        typ.as_deref() == Some("logout+jwt"),
        "typ is {typ:?}, not logout+jwt"
    );
    let iat = number(&claims, "iat")?;
    ensure!((iat - now()).abs() <= SKEW, "iat {iat} is far from now");
    ensure!(!text(&claims, "jti")?.is_empty(), "jti is empty");
    ensure!(
        claims["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object(),
        "events lacks the back-channel logout event"
    );
    ensure!(
        claims.get("nonce").is_none(),
        "a logout token must not hold a nonce"
    );
    ensure!(
        claims.get("sub").is_some() || claims.get("sid").is_some(),
        "neither sub nor sid"
    );
    Ok(claims)
}

/// The claims of a JWT without checking anything: only to pick, among the
/// logout tokens received, the one a module waits for.
pub fn peek(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core, Appendix A.3's access token and at_hash.
        let hash = left_half_hash(
            Algorithm::RS256,
            "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y",
        )
        .unwrap();
        assert_eq!(hash, "77QmUPtjPfzWtF2AnpK9RQ");
    }

    #[test]
    fn peek_reads_a_payload() {
        let token = format!("e30.{}.sig", URL_SAFE_NO_PAD.encode(br#"{"sid":"s1"}"#));
        assert_eq!(peek(&token).unwrap()["sid"], "s1");
        assert!(peek("garbage").is_none());
    }
}
