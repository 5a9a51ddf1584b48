//! The signing keys in memory: opened and parsed once when they are read, not at
//! every signature, with the JWKS document serialised and tagged (ETag) once.
//! Every instance reads the keys table again every [`RELOAD_SECS`] (in the
//! background: no request waits for it), so a key `guichet keys rotate` added from
//! another process is here before it signs: rotation publishes a key
//! [`PUBLISH_AHEAD_SECS`] before it signs (`keys::rotate`).

use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::keys::{Alg, KeyError, Sealer};
use crate::store::{Store, StoredKey, unix_now};

/// How often an instance reads the keys again.
pub const RELOAD_SECS: u64 = 30;
/// How long after a failed read it tries again (the last keys read serve meanwhile).
const RETRY_SECS: u64 = 5;
/// How long a client may keep the JWKS (`Cache-Control: max-age`).
pub const JWKS_MAX_AGE_SECS: u64 = 300;
/// How long before it signs a rotated key is published, at the least: a client
/// that fetched the JWKS just before the rotation, and an instance that read the
/// keys just before it, both hold the new key by the time it signs.
pub const PUBLISH_AHEAD_SECS: u64 = JWKS_MAX_AGE_SECS + RELOAD_SECS;

/// A private key, parsed once.
enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    EdDsa(Ed25519KeyPair),
}

impl Signer {
    fn open(alg: Alg, der: &[u8]) -> Result<Signer, aws_lc_rs::error::KeyRejected> {
        Ok(match alg {
            Alg::Rs256 => Signer::Rsa(RsaKeyPair::from_der(der)?),
            Alg::Es256 => Signer::Ecdsa(EcdsaKeyPair::from_pkcs8(
                &ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
            )?),
            Alg::EdDsa => Signer::EdDsa(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)?),
        })
    }

    /// The JWS signature of `input` (RFC 7518 §3: PKCS#1 v1.5 for RS256, R‖S for
    /// ES256; RFC 8037 for EdDSA).
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, KeyError> {
        let failed = || KeyError::Signing("the signature could not be made".into());
        let rng = SystemRandom::new();
        match self {
            Signer::Rsa(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(&RSA_PKCS1_SHA256, &rng, input, &mut signature)
                    .map_err(|_| failed())?;
                Ok(signature)
            }
            Signer::Ecdsa(pair) => Ok(pair
                .sign(&rng, input)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
            Signer::EdDsa(pair) => Ok(pair
                .try_sign(input)
                .map_err(|_| failed())?
                .as_ref()
                .to_vec()),
        }
    }
}

/// A published key, ready to sign and verify.
struct ReadyKey {
    kid: String,
    alg: Alg,
    created_at: i64,
    signs_from: i64,
    retired_at: Option<i64>,
    published_until: Option<i64>,
    /// `None` when its private part did not open (logged when it was read): it
    /// signs nothing.
    signer: Option<Signer>,
    verifier: DecodingKey,
}

impl ReadyKey {
    fn read(stored: &StoredKey, sealer: &Sealer) -> Option<ReadyKey> {
        let alg = Alg::parse(&stored.alg)?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&stored.public_jwk).ok()?;
        let verifier = DecodingKey::from_jwk(&jwk).ok()?;
        let signer = match sealer.open(stored).and_then(|der| {
            Signer::open(alg, &der).map_err(|_| KeyError::Corrupt(stored.kid.clone()))
        }) {
            Ok(signer) => Some(signer),
            Err(error) => {
                tracing::error!(kid = %stored.kid, %error, "a signing key does not open");
                None
            }
        };
        Some(ReadyKey {
            kid: stored.kid.clone(),
            alg,
            created_at: stored.created_at,
            signs_from: stored.signs_from,
            retired_at: stored.retired_at,
            published_until: stored.published_until,
            signer,
            verifier,
        })
    }

    fn signs_at(&self, now: i64) -> bool {
        self.signs_from <= now && self.retired_at.is_none_or(|retired| retired > now)
    }

    fn published_at(&self, now: i64) -> bool {
        self.retired_at.is_none() || self.published_until.is_some_and(|until| until > now)
    }
}

/// A document served as it is, with its entity tag (RFC 9110 §8.8.3).
#[derive(Debug, Clone)]
pub struct Published {
    pub body: bytes::Bytes,
    /// A strong tag, quoted: a digest of the body.
    pub etag: String,
}

impl Published {
    /// `value` as JSON.
    pub fn of(value: &impl serde::Serialize) -> Result<Published, serde_json::Error> {
        Ok(Published::new(serde_json::to_vec(value)?))
    }

    pub fn new(body: Vec<u8>) -> Published {
        let digest = Sha256::digest(&body);
        let etag = format!("\"{}\"", URL_SAFE_NO_PAD.encode(&digest[..16]));
        Published {
            body: body.into(),
            etag,
        }
    }
}

/// The keys as read at one moment.
pub struct KeySet {
    keys: Vec<ReadyKey>,
    jwks: Published,
}

impl KeySet {
    /// `stored` (newest first), opened with `sealer`. A row that does not parse is
    /// left out (logged); one whose private part does not open is published and
    /// verifies, but signs nothing.
    pub fn read(stored: &[StoredKey], sealer: &Sealer) -> KeySet {
        let public: Vec<Value> = stored
            .iter()
            .filter_map(|k| serde_json::from_str(&k.public_jwk).ok())
            .collect();
        let jwks = Published::new(json!({ "keys": public }).to_string().into_bytes());
        let keys = stored
            .iter()
            .filter_map(|key| {
                let ready = ReadyKey::read(key, sealer);
                if ready.is_none() {
                    tracing::error!(kid = %key.kid, "a stored signing key is unreadable");
                }
                ready
            })
            .collect();
        KeySet { keys, jwks }
    }

    /// The JWKS document: every published key's public half.
    pub fn jwks(&self) -> &Published {
        &self.jwks
    }

    /// The key of `alg` that signs at `now`: the newest whose time has come and
    /// that no newer key has replaced yet.
    fn signing(&self, alg: Alg, now: i64) -> Option<&ReadyKey> {
        self.keys
            .iter()
            .filter(|k| k.alg == alg && k.signs_at(now))
            .max_by(|a, b| {
                (a.signs_from, a.created_at, &a.kid).cmp(&(b.signs_from, b.created_at, &b.kid))
            })
    }

    /// `claims` as a compact JWS (RFC 7515 §7.1) signed with `alg`'s key of the
    /// moment, naming it by `kid`, with the JOSE `typ` given (`logout+jwt` for
    /// logout tokens, so they can never be mistaken for ID tokens).
    pub fn sign(&self, alg: Alg, typ: &str, claims: &Value, now: i64) -> Result<String, KeyError> {
        let key = self
            .signing(alg, now)
            .ok_or(KeyError::Missing(alg.name()))?;
        let signer = key
            .signer
            .as_ref()
            .ok_or_else(|| KeyError::Corrupt(key.kid.clone()))?;
        let header = json!({ "alg": alg.name(), "kid": key.kid, "typ": typ });
        let payload = serde_json::to_vec(claims).map_err(|e| KeyError::Signing(e.to_string()))?;
        let mut jws = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = signer.sign(jws.as_bytes())?;
        jws.push('.');
        jws.push_str(&URL_SAFE_NO_PAD.encode(signature));
        Ok(jws)
    }

    /// The claims of a token Guichet signed with one of the keys published at
    /// `now`, if its JOSE `typ` is `typ` (an absent one counts as `JWT`: an ID
    /// token) and the validation that `configure` sets up accepts it. Tokens of one
    /// kind are never taken for another (ID tokens, logout tokens and login
    /// requests share the keys).
    pub fn verify_own(
        &self,
        token: &str,
        typ: &str,
        now: i64,
        configure: impl FnOnce(&mut jsonwebtoken::Validation),
    ) -> Option<Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        if header.typ.as_deref().unwrap_or("JWT") != typ {
            return None;
        }
        let key = self
            .keys
            .iter()
            .find(|k| Some(&k.kid) == header.kid.as_ref() && k.published_at(now))?;
        // The key's own algorithm, never the one the token names (RFC 8725 §3.1):
        // our RSA key does not verify RS512 or PS256 signatures, which Guichet
        // never makes.
        let alg = key.alg.jwt();
        if header.alg != alg {
            return None;
        }
        let mut validation = jsonwebtoken::Validation::new(alg);
        configure(&mut validation);
        jsonwebtoken::decode::<Value>(token, &key.verifier, &validation)
            .ok()
            .map(|data| data.claims)
    }
}

/// The keys of the moment, read again every [`RELOAD_SECS`].
pub struct KeyRing {
    store: Store,
    sealer: Sealer,
    set: RwLock<Arc<KeySet>>,
    /// When the keys are read next; pushed back before a read starts, so only one
    /// runs at a time.
    due: Mutex<Instant>,
}

/// Names no key.
impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRing")
            .field("sealer", &self.sealer)
            .finish()
    }
}

impl KeyRing {
    /// The keys as they are now; an error if the database cannot give them (at
    /// start, where no older keys could serve).
    pub async fn load(store: Store, sealer: Sealer) -> Result<KeyRing, KeyError> {
        let stored = store.published_keys(unix_now()).await?;
        let set = KeySet::read(&stored, &sealer);
        Ok(KeyRing {
            store,
            sealer,
            set: RwLock::new(Arc::new(set)),
            due: Mutex::new(Instant::now() + Duration::from_secs(RELOAD_SECS)),
        })
    }

    /// The keys last read; starts reading them again in the background when it
    /// is time. Never waits on the database: while it is down, the last keys read
    /// go on signing and verifying.
    pub fn current(self: &Arc<Self>) -> Arc<KeySet> {
        if let Ok(mut due) = self.due.try_lock() {
            let now = Instant::now();
            if now >= *due {
                *due = now + Duration::from_secs(RELOAD_SECS);
                let ring = Arc::clone(self);
                tokio::spawn(async move { ring.reload().await });
            }
        }
        Arc::clone(&self.set.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Reads the keys now (the background read; tests call it after a rotation).
    pub async fn reload(&self) {
        match self.store.published_keys(unix_now()).await {
            Ok(stored) => {
                let set = Arc::new(KeySet::read(&stored, &self.sealer));
                *self.set.write().unwrap_or_else(PoisonError::into_inner) = set;
            }
            Err(error) => {
                tracing::warn!(%error, "the signing keys could not be read again; the last ones serve");
                let retry = Instant::now() + Duration::from_secs(RETRY_SECS);
                *self.due.lock().unwrap_or_else(PoisonError::into_inner) = retry;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::keys::generate;
    use jsonwebtoken::{Validation, jwk::Jwk};

    fn claims() -> Value {
        json!({ "sub": "cbernard", "aud": "moodle", "exp": 4_000_000_000_i64 })
    }

    #[test]
    fn each_algorithm_signs_what_its_published_key_verifies() {
        let plain_sealer = Sealer::new(None).unwrap();
        for alg in Alg::ALL {
            let key = generate(alg, 1000).unwrap();
            let set = KeySet::read(std::slice::from_ref(&key), &plain_sealer);
            let token = set.sign(alg, "JWT", &claims(), 2000).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(key.kid.as_str()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            // Verified by the JOSE library from the published JWK alone.
            let jwks: Value = serde_json::from_slice(&set.jwks().body).unwrap();
            assert!(!jwks.to_string().contains("\"d\""), "no private part");
            let jwk: Jwk = serde_json::from_value(jwks["keys"][0].clone()).unwrap();
            let mut validation = Validation::new(alg.jwt());
            validation.set_audience(&["moodle"]);
            let decoded = jsonwebtoken::decode::<Value>(
                &token,
                &DecodingKey::from_jwk(&jwk).unwrap(),
                &validation,
            )
            .unwrap();
            assert_eq!(decoded.claims["sub"], "cbernard");
            let own = set.verify_own(&token, "JWT", 2000, |v| v.set_audience(&["moodle"]));
            assert_eq!(own.unwrap()["sub"], "cbernard");
            assert!(set.verify_own(&token, "logout+jwt", 2000, |_| {}).is_none());
        }
    }

    #[test]
    fn a_key_published_ahead_signs_from_its_time_and_the_old_one_until_then() {
        let sealer = Sealer::new(None).unwrap();
        let old = generate(Alg::EdDsa, 1000).unwrap();
        let next = StoredKey {
            signs_from: 5000,
            ..generate(Alg::EdDsa, 4000).unwrap()
        };
        let old = StoredKey {
            retired_at: Some(5000),
            published_until: Some(9000),
            ..old
        };
        let set = KeySet::read(&[next.clone(), old.clone()], &sealer);
        let kid_at = |now| {
            let token = set.sign(Alg::EdDsa, "JWT", &claims(), now).unwrap();
            jsonwebtoken::decode_header(&token).unwrap().kid.unwrap()
        };
        assert_eq!(kid_at(4999), old.kid, "published, not signing yet");
        assert_eq!(kid_at(5000), next.kid);
        let by_old = {
            let only_old = KeySet::read(std::slice::from_ref(&old), &sealer);
            only_old.sign(Alg::EdDsa, "JWT", &claims(), 4999).unwrap()
        };
        // The old key verifies until it leaves the JWKS, not after.
        assert!(
            set.verify_own(&by_old, "JWT", 8999, |v| v.validate_aud = false)
                .is_some()
        );
        assert!(
            set.verify_own(&by_old, "JWT", 9000, |v| v.validate_aud = false)
                .is_none()
        );
        // No key of an algorithm: said, not a panic.
        assert!(matches!(
            set.sign(Alg::Rs256, "JWT", &claims(), 5000),
            Err(KeyError::Missing("RS256"))
        ));
    }

    #[test]
    fn a_key_that_does_not_open_is_published_but_signs_nothing() {
        let kek = secrecy::SecretString::from("x+x+tW8g8474utKsEjO28m387XA74OrbpuEhM1yGkXc=");
        let sealing = Sealer::new(Some(&kek)).unwrap();
        // A plain key while a key-encryption key is set: refused as a signer.
        let planted = generate(Alg::EdDsa, 1000).unwrap();
        let set = KeySet::read(std::slice::from_ref(&planted), &sealing);
        assert!(matches!(
            set.sign(Alg::EdDsa, "JWT", &claims(), 2000),
            Err(KeyError::Corrupt(kid)) if kid == planted.kid
        ));
        assert_ne!(set.jwks().etag, Published::new(b"{}".to_vec()).etag);
    }

    #[test]
    fn the_entity_tag_changes_with_the_document() {
        let one = Published::new(b"{\"keys\":[]}".to_vec());
        assert_eq!(one.etag, Published::new(b"{\"keys\":[]}".to_vec()).etag);
        assert_ne!(one.etag, Published::new(b"{\"keys\":[{}]}".to_vec()).etag);
        assert!(one.etag.starts_with('"') && one.etag.ends_with('"'));
    }
}
