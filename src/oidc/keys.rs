//! Signing keys: generated here (RSA 2048 for RS256, P-256 for ES256, Ed25519 for
//! EdDSA), stored in the database, published as a JWKS and rotated with overlap.
//! Private keys never reach a log, an error or `Debug` output.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hkdf;
use aws_lc_rs::rand::SecureRandom;
use secrecy::{ExposeSecret, SecretString};

use crate::store::{ClientRecord, Store, StoreError, StoredKey};

/// The algorithms ID tokens may be signed with. RS256 is the default every client
/// understands; a client may ask for ES256 or EdDSA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alg {
    Rs256,
    Es256,
    EdDsa,
}

impl Alg {
    pub const ALL: [Alg; 3] = [Alg::Rs256, Alg::Es256, Alg::EdDsa];

    pub fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::EdDsa => "EdDSA",
        }
    }

    pub fn parse(name: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|alg| alg.name() == name)
    }

    /// The algorithm a client's tokens are signed with. Registration accepts only
    /// known names, so an unknown one (an edited row) falls back to the default.
    pub fn of_client(client: &ClientRecord) -> Alg {
        Alg::parse(&client.id_token_alg).unwrap_or(Alg::Rs256)
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Alg::Rs256 => Algorithm::RS256,
            Alg::Es256 => Algorithm::ES256,
            Alg::EdDsa => Algorithm::EdDSA,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation failed: {0}")]
    Generation(String),
    #[error("no signing key for {0}: run `guichet keys rotate`")]
    Missing(&'static str),
    #[error("a stored key is unreadable: {0}")]
    Corrupt(String),
    #[error("signing failed: {0}")]
    Signing(String),
    #[error(
        "the signing keys are encrypted: set oidc.key_encryption_key (or _file) to the secret they were sealed with"
    )]
    Sealed,
    #[error(
        "oidc.key_encryption_key: 32 random bytes or more, in base64 (make one with `openssl rand -base64 32`)"
    )]
    WeakSecret,
    #[error("key {0} is stored unsealed while oidc.key_encryption_key is set: refused")]
    Unsealed(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// RFC 7638 thumbprint: the kid is derived from the public key itself.
fn thumbprint(required: &Value) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(required.to_string().as_bytes()))
}

/// A fresh key of `alg`, ready to store.
pub fn generate(alg: Alg, now: i64) -> Result<StoredKey, KeyError> {
    let (der, mut jwk) = match alg {
        Alg::Rs256 => {
            use rsa::pkcs1::EncodeRsaPrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)
                .map_err(|e| KeyError::Generation(e.to_string()))?;
            let der = key
                .to_pkcs1_der()
                .map_err(|e| KeyError::Generation(e.to_string()))?
                .as_bytes()
                .to_vec();
            let jwk = json!({
                "e": URL_SAFE_NO_PAD.encode(key.e().to_bytes_be()),
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(key.n().to_bytes_be()),
            });
            (der, jwk)
        }
        Alg::Es256 => {
            let rng = SystemRandom::new();
            let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(|e| KeyError::Generation(e.to_string()))?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref())
                .map_err(|e| KeyError::Generation(e.to_string()))?;
            // An uncompressed point: 0x04, then x and y (32 bytes each).
            let point = pair.public_key().as_ref();
            let jwk = json!({
                "crv": "P-256",
                "kty": "EC",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
        Alg::EdDsa => {
            let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                .map_err(|e| KeyError::Generation(e.to_string()))?;
            let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|e| KeyError::Generation(e.to_string()))?;
            let jwk = json!({
                "crv": "Ed25519",
                "kty": "OKP",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (pkcs8.as_ref().to_vec(), jwk)
        }
    };
    let kid = thumbprint(&jwk);
    if let Some(fields) = jwk.as_object_mut() {
        fields.insert("kid".into(), json!(kid));
        fields.insert("alg".into(), json!(alg.name()));
        fields.insert("use".into(), json!("sig"));
    }
    Ok(StoredKey {
        kid,
        alg: alg.name().to_owned(),
        private_der: STANDARD.encode(der),
        public_jwk: jwk.to_string(),
        created_at: now,
        signs_from: now,
        retired_at: None,
        published_until: None,
    })
}

/// What marks a private key sealed with the key-encryption key.
const SEALED: &str = "sealed:v2:";
/// Keys sealed before the secret had to be random bytes: their AES key came from
/// HKDF over the secret's text. Opened that way, and sealed again as v2 at start.
const SEALED_V1: &str = "sealed:v1:";

/// The AES keys a secret gives: today's, and the one v1 rows were sealed with.
struct SealingKeys {
    current: LessSafeKey,
    v1: LessSafeKey,
}

/// Seals and opens private keys with `oidc.key_encryption_key` (AES-256-GCM with a
/// key derived by HKDF-SHA256; the key's kid as associated data, so a sealed key
/// cannot be moved to another row).
/// Without a secret, keys are stored as plain base64 DER.
pub struct Sealer(Option<SealingKeys>);

/// Says whether keys are sealed, never the key.
impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Sealer")
            .field(&if self.0.is_some() { "sealing" } else { "plain" })
            .finish()
    }
}

impl Sealer {
    pub fn new(secret: Option<&SecretString>) -> Result<Sealer, KeyError> {
        let Some(secret) = secret else {
            return Ok(Sealer(None));
        };
        let bytes = key_bytes(secret).ok_or(KeyError::WeakSecret)?;
        // HKDF does not stretch: it is sound only because the input is random bytes.
        Ok(Sealer(Some(SealingKeys {
            current: aes_key(b"guichet signing-key sealing v2", &bytes)?,
            v1: aes_key(
                b"guichet signing-key sealing v1",
                secret.expose_secret().as_bytes(),
            )?,
        })))
    }

    /// The DER of a key stored plain or sealed as v1, to seal it as today's.
    fn unsealed_der(&self, stored: &StoredKey) -> Result<Vec<u8>, KeyError> {
        if stored.private_der.starts_with(SEALED_V1) {
            return self.open(stored);
        }
        STANDARD
            .decode(&stored.private_der)
            .map_err(|_| KeyError::Corrupt(stored.kid.clone()))
    }

    /// The stored form of a private key.
    fn seal(&self, kid: &str, der: &[u8]) -> Result<String, KeyError> {
        match &self.0 {
            Some(keys) => seal_with(&keys.current, SEALED, kid, der),
            None => Ok(STANDARD.encode(der)),
        }
    }

    /// The DER of a stored private key.
    pub(crate) fn open(&self, stored: &StoredKey) -> Result<Vec<u8>, KeyError> {
        let corrupt = || KeyError::Corrupt(stored.kid.clone());
        let (sealed, v1) = match (
            stored.private_der.strip_prefix(SEALED),
            stored.private_der.strip_prefix(SEALED_V1),
        ) {
            (Some(sealed), _) => (Some(sealed), false),
            (None, Some(sealed)) => (Some(sealed), true),
            (None, None) => (None, false),
        };
        let Some(sealed) = sealed else {
            // With a secret set, a plain key was planted in the database (or
            // `ensure` has not sealed it yet): it signs nothing.
            if self.0.is_some() {
                return Err(KeyError::Unsealed(stored.kid.clone()));
            }
            return STANDARD.decode(&stored.private_der).map_err(|_| corrupt());
        };
        let keys = self.0.as_ref().ok_or(KeyError::Sealed)?;
        let key = if v1 { &keys.v1 } else { &keys.current };
        let bytes = STANDARD.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| corrupt())?;
        let mut rest = rest.to_vec();
        // A wrong secret fails here too: say which, without detail.
        let der = key
            .open_in_place(nonce, Aad::from(stored.kid.as_bytes()), &mut rest)
            .map_err(|_| KeyError::Sealed)?;
        Ok(der.to_vec())
    }
}

/// `der` sealed with `key` (a fresh random nonce, the kid as associated data),
/// marked with `prefix`.
fn seal_with(key: &LessSafeKey, prefix: &str, kid: &str, der: &[u8]) -> Result<String, KeyError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| KeyError::Generation("nonce".into()))?;
    let mut sealed = der.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(kid.as_bytes()),
        &mut sealed,
    )
    .map_err(|_| KeyError::Generation("sealing".into()))?;
    Ok(format!(
        "{prefix}{}",
        STANDARD.encode([&nonce[..], &sealed].concat())
    ))
}

/// An AES-256-GCM key from `input` by HKDF-SHA256 (RFC 5869), labelled, so this
/// secret's key serves nothing else.
fn aes_key(label: &[u8], input: &[u8]) -> Result<LessSafeKey, KeyError> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, label).extract(input);
    let okm = prk
        .expand(&[b"aes-256-gcm"], &AES_256_GCM)
        .map_err(|_| KeyError::Generation("AES key".into()))?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

/// The secret's bytes, if it is base64 of at least 32 random-looking bytes. A
/// passphrase (or `aaaa…`) is refused: it would need stretching, and a stretched
/// passphrase is still weaker than 256 random bits. The check on distinct bytes
/// only catches the obvious; 32 random bytes have about 30 distinct values.
fn key_bytes(secret: &SecretString) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE};
    // `openssl rand -base64 64` wraps its line; a file ends with a newline. Spaces
    // stay: a passphrase has them, and base64 refuses them.
    let text: String = secret
        .expose_secret()
        .trim()
        .chars()
        .filter(|c| !matches!(c, '\n' | '\r'))
        .collect();
    // Random base64 has both cases (a key without one: about 1 in 10⁹); words
    // typed in one case do not.
    let mixed = text.chars().any(|c| c.is_ascii_uppercase())
        && text.chars().any(|c| c.is_ascii_lowercase());
    if !mixed {
        return None;
    }
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|engine| engine.decode(&text).ok())?;
    let distinct: std::collections::HashSet<u8> = bytes.iter().copied().collect();
    (bytes.len() >= 32 && distinct.len() >= 16).then_some(bytes)
}

/// Makes sure each algorithm has an active key (first start, or a new algorithm).
pub async fn ensure(store: &Store, sealer: &Sealer, now: i64) -> Result<(), KeyError> {
    let keys = store.published_keys(now).await?;
    for key in &keys {
        if sealer.0.is_some() && !key.private_der.starts_with(SEALED) {
            // Stored before a key-encryption key was set, or sealed as v1: sealed
            // (again) now.
            let der = sealer.unsealed_der(key)?;
            let sealed = StoredKey {
                private_der: sealer.seal(&key.kid, &der)?,
                ..key.clone()
            };
            store
                .replace_private_key(&key.kid, &sealed.private_der)
                .await?;
            tracing::info!(kid = %key.kid, "signing key sealed");
        } else {
            // A wrong or missing secret stops the start here, not at the first token.
            sealer.open(key)?;
        }
    }
    for alg in Alg::ALL {
        let active = keys
            .iter()
            .any(|k| k.alg == alg.name() && k.retired_at.is_none());
        if !active {
            // Key generation is CPU work (RSA: tens of milliseconds optimised).
            let key = tokio::task::spawn_blocking(move || generate(alg, now))
                .await
                .map_err(|e| KeyError::Generation(e.to_string()))??;
            store.add_key(&sealed(sealer, key)?).await?;
            tracing::info!(alg = alg.name(), "signing key created");
        }
    }
    Ok(())
}

/// A key made by a rotation, and when it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub kid: String,
    pub alg: Alg,
    pub signs_from: i64,
}

/// A new key for every algorithm, published now and signing `ahead_secs` from
/// now (at once for an algorithm no key signs yet: no client holds one); the keys
/// it replaces sign until then and stay published `overlap_secs` more, so tokens
/// they signed still verify. `ahead_secs` 0 is the emergency rotation: clients
/// that cached the JWKS meet the new key before they read it.
pub async fn rotate(
    store: &Store,
    sealer: &Sealer,
    now: i64,
    ahead_secs: i64,
    overlap_secs: i64,
) -> Result<Vec<Rotated>, KeyError> {
    let published = store.published_keys(now).await?;
    let mut rotated = Vec::new();
    for alg in Alg::ALL {
        let signing = published.iter().any(|k| {
            k.alg == alg.name()
                && k.signs_from <= now
                && k.retired_at.is_none_or(|retired| retired > now)
        });
        let signs_from = if signing { now + ahead_secs } else { now };
        let key = tokio::task::spawn_blocking(move || generate(alg, now))
            .await
            .map_err(|e| KeyError::Generation(e.to_string()))??;
        let key = StoredKey {
            signs_from,
            ..sealed(sealer, key)?
        };
        store.add_key(&key).await?;
        store
            .retire_keys(alg.name(), &key.kid, signs_from, signs_from + overlap_secs)
            .await?;
        rotated.push(Rotated {
            kid: key.kid,
            alg,
            signs_from,
        });
    }
    Ok(rotated)
}

/// `key` with its private part in stored form.
fn sealed(sealer: &Sealer, key: StoredKey) -> Result<StoredKey, KeyError> {
    let der = STANDARD
        .decode(&key.private_der)
        .map_err(|_| KeyError::Corrupt(key.kid.clone()))?;
    let private_der = sealer.seal(&key.kid, &der)?;
    Ok(StoredKey { private_der, ..key })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `openssl rand -base64 32`, twice.
    const KEK: &str = "x+x+tW8g8474utKsEjO28m387XA74OrbpuEhM1yGkXc=";
    const OTHER_KEK: &str = "s2u2kkPQnQ4LLa9gt64VNxo6kgjyNqqzmsQ06xP2trc=";

    fn secret(text: &str) -> SecretString {
        SecretString::from(text.to_owned())
    }

    #[test]
    fn sealed_keys_open_only_with_their_secret_and_row() {
        let sealer = Sealer::new(Some(&secret(KEK))).unwrap();
        let key = sealed(&sealer, generate(Alg::EdDsa, 1000).unwrap()).unwrap();
        assert!(key.private_der.starts_with(SEALED));
        assert!(sealer.open(&key).is_ok());
        // No secret, or another one: refused, and the error says what to set.
        for other in [
            Sealer::new(None).unwrap(),
            Sealer::new(Some(&secret(OTHER_KEK))).unwrap(),
        ] {
            assert!(matches!(other.open(&key), Err(KeyError::Sealed)));
        }
        // Moved to another kid's row: the associated data no longer matches.
        let moved = StoredKey {
            kid: "another-kid".into(),
            ..key.clone()
        };
        assert!(matches!(sealer.open(&moved), Err(KeyError::Sealed)));
        // A plain key (planted, or not yet sealed at start) is refused.
        let plain = generate(Alg::EdDsa, 1000).unwrap();
        assert!(matches!(sealer.open(&plain), Err(KeyError::Unsealed(_))));
        // A passphrase, however long, too few bytes, or bytes that are not random.
        for weak in [
            "a university passphrase of more than 32 characters",
            "auniversitypassphraseofmorethanthirtytwochars",
            "c2hvcnQ=",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            assert!(
                matches!(Sealer::new(Some(&secret(weak))), Err(KeyError::WeakSecret)),
                "{weak}"
            );
        }
        // A key sealed as v1 (HKDF over the secret's text) still opens, and is
        // what `ensure` seals again as v2.
        let plain_der = STANDARD.decode(&plain.private_der).unwrap();
        let keys = sealer.0.as_ref().unwrap();
        let v1 = StoredKey {
            private_der: seal_with(&keys.v1, SEALED_V1, &plain.kid, &plain_der).unwrap(),
            ..plain.clone()
        };
        assert_eq!(sealer.open(&v1).unwrap(), plain_der);
        assert_eq!(sealer.unsealed_der(&v1).unwrap(), plain_der);
        // `openssl rand -base64 32` read from a file, with its newline.
        assert!(Sealer::new(Some(&secret(&format!("{KEK}\n")))).is_ok());
        // Wrapped over two lines (as `openssl rand -base64 64` prints).
        let wrapped = format!("{}\n{}\n", &KEK[..20], &KEK[20..]);
        assert!(Sealer::new(Some(&secret(&wrapped))).is_ok());
    }

    #[test]
    fn the_kid_is_the_rfc7638_thumbprint() {
        // RFC 7638 §3.1's example key.
        let jwk = json!({
            "e": "AQAB",
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        });
        assert_eq!(
            thumbprint(&jwk),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }
}
