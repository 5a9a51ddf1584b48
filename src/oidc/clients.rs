//! Registered clients: checked redirect URIs (matched exactly later), and a secret
//! shown once and stored as its SHA-256 (it is 256 random bits, so a slow hash adds
//! nothing).

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use super::keys::Alg;
use crate::domain::Token;
use crate::store::{ClientRecord, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("`{0}` is not a client id: 1 to 64 letters, digits, '.', '-' or '_'")]
    Id(String),
    #[error("`{0}` is not a usable redirect URI: {1}")]
    Uri(String, &'static str),
    #[error("a client needs at least one redirect URI")]
    NoRedirect,
    #[error("`{0}` is not a signing algorithm (RS256, ES256, EdDSA)")]
    Alg(String),
    #[error("a client with the id {0} exists already")]
    Exists(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an admin registers.
#[derive(Debug, Clone)]
pub struct NewClient {
    pub client_id: String,
    pub name: String,
    /// A public client (a single-page or mobile app) has no secret and must use PKCE.
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    /// First-party clients (the ENT, Moodle, webmail) get no consent screen.
    pub first_party: bool,
    /// A resource server (Dovecot) that introspects other clients' tokens.
    pub introspection: bool,
    pub id_token_alg: String,
}

/// An absolute `https` URL without a fragment; plain `http` only on the loopback,
/// for development and native apps (RFC 8252).
fn checked_uri(raw: &str) -> Result<String, ClientError> {
    let url =
        Url::parse(raw).map_err(|_| ClientError::Uri(raw.to_owned(), "not an absolute URL"))?;
    if url.fragment().is_some() {
        return Err(ClientError::Uri(
            raw.to_owned(),
            "a fragment is not allowed",
        ));
    }
    let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match url.scheme() {
        "https" => Ok(raw.to_owned()),
        "http" if loopback => Ok(raw.to_owned()),
        _ => Err(ClientError::Uri(
            raw.to_owned(),
            "https is required (http only on localhost)",
        )),
    }
}

pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `presented` is the client's secret, compared in constant time.
pub fn secret_matches(client: &ClientRecord, presented: &str) -> bool {
    let Some(expected) = &client.secret_hash else {
        return false;
    };
    // Both are hex SHA-256 digests, so the lengths match and only the content is
    // compared, in constant time.
    secret_hash(presented)
        .as_bytes()
        .ct_eq(expected.as_bytes())
        .into()
}

/// Registers a client; returns its secret (to show once), or `None` for a public one.
pub async fn register(
    store: &Store,
    new: NewClient,
    now: i64,
) -> Result<Option<String>, ClientError> {
    let id_ok = !new.client_id.is_empty()
        && new.client_id.len() <= 64
        && new
            .client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !id_ok {
        return Err(ClientError::Id(new.client_id));
    }
    if new.redirect_uris.is_empty() {
        return Err(ClientError::NoRedirect);
    }
    let alg =
        Alg::parse(&new.id_token_alg).ok_or_else(|| ClientError::Alg(new.id_token_alg.clone()))?;
    let check = |uris: &[String]| {
        uris.iter()
            .map(|u| checked_uri(u))
            .collect::<Result<Vec<_>, _>>()
    };
    let secret = (!new.public).then(|| Token::generate().expose().to_owned());
    let record = ClientRecord {
        client_id: new.client_id.clone(),
        name: new.name,
        secret_hash: secret.as_deref().map(secret_hash),
        redirect_uris: check(&new.redirect_uris)?,
        post_logout_redirect_uris: check(&new.post_logout_redirect_uris)?,
        backchannel_logout_uri: new
            .backchannel_logout_uri
            .as_deref()
            .map(checked_uri)
            .transpose()?,
        first_party: new.first_party,
        introspection: new.introspection,
        id_token_alg: alg.name().to_owned(),
        created_at: now,
    };
    if !store.add_client(&record).await? {
        return Err(ClientError::Exists(new.client_id));
    }
    Ok(secret)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_https_or_loopback_and_whole() {
        assert!(checked_uri("https://moodle.univ-demo.fr/admin/oauth2callback.php").is_ok());
        assert!(checked_uri("http://localhost:8081/callback").is_ok());
        assert!(checked_uri("http://127.0.0.1/cb").is_ok());
        for bad in [
            "http://moodle.univ-demo.fr/cb",
            "https://app.example/cb#frag",
            "/relative",
            "javascript:alert(1)",
        ] {
            assert!(checked_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_right_secret_matches() {
        let client = ClientRecord {
            client_id: "moodle".into(),
            name: "Moodle".into(),
            secret_hash: Some(secret_hash("s3cret")),
            redirect_uris: vec![],
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            first_party: true,
            introspection: false,
            id_token_alg: "RS256".into(),
            created_at: 0,
        };
        assert!(secret_matches(&client, "s3cret"));
        assert!(!secret_matches(&client, "s3cret "));
        assert!(!secret_matches(
            &ClientRecord {
                secret_hash: None,
                ..client
            },
            ""
        ));
    }
}
