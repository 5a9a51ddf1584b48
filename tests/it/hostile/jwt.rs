//! The JWTs Guichet reads back (`id_token_hint`, the signed login request): only a
//! token it signed, unchanged, of the kind asked for, gives claims; anything else,
//! however built, gives none and never a panic.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use guichet::oidc::keyring::KeySet;
use guichet::oidc::keys::{self, Alg, Sealer};
use guichet::store::StoredKey;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::hostile::{cases, near};

/// One key of each algorithm, made once: RSA generation is the slow part.
static KEYS: LazyLock<Vec<StoredKey>> = LazyLock::new(|| {
    Alg::ALL
        .into_iter()
        .map(|alg| keys::generate(alg, 1000).unwrap())
        .collect()
});

/// The keys, ready: as an instance holds them.
static SET: LazyLock<KeySet> = LazyLock::new(|| KeySet::read(&KEYS, &Sealer::new(None).unwrap()));

/// When the tokens are checked: the keys were made at 1000, and never retired.
const NOW: i64 = 2000;

/// What `hint_claims` asks of an ID token hint, with the issuer pinned.
fn as_hint(token: &str) -> Option<Value> {
    SET.verify_own(token, "JWT", NOW, |validation| {
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.set_issuer(&["https://guichet.test"]);
    })
}

fn signed(alg: Alg, claims: &Value) -> String {
    SET.sign(alg, "JWT", claims, NOW).unwrap()
}

fn claims() -> impl Strategy<Value = Value> {
    // An ID token always has `exp`, which a hint may be past.
    (near("a-z0-9-"), 0..u32::MAX, near("a-z")).prop_map(|(sub, at, extra)| {
        json!({ "iss": "https://guichet.test", "sub": sub, "aud": "app", "iat": at, "exp": at, "x": extra })
    })
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        near("A-Za-z0-9_\\-"),
        proptest::collection::vec(any::<u8>(), 0..300).prop_map(|b| URL_SAFE_NO_PAD.encode(b)),
        near("a-z\"{}:,").prop_map(|json| URL_SAFE_NO_PAD.encode(json)),
    ]
}

/// Every algorithm a JOSE library knows, and none.
const ALGS: [&str; 14] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "ES384", "EdDSA", "none", "",
];

/// A header naming one of our keys, with any algorithm.
fn forged_header() -> impl Strategy<Value = String> {
    (
        proptest::sample::select(&ALGS[..]),
        0..Alg::ALL.len(),
        prop_oneof![Just(None), Just(Some("JWT")), Just(Some("logout+jwt"))],
    )
        .prop_map(|(alg, key, typ)| {
            let header = json!({ "alg": alg, "kid": KEYS[key].kid, "typ": typ });
            URL_SAFE_NO_PAD.encode(header.to_string())
        })
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn any_text_as_a_hint_gives_no_claims(raw in prop_oneof![
        near("A-Za-z0-9_\\-."),
        (segment(), segment(), segment()).prop_map(|(h, p, s)| format!("{h}.{p}.{s}")),
        "[A-Za-z0-9_.-]{4000,20000}",
    ]) {
        prop_assert_eq!(as_hint(&raw), None);
    }

    #[test]
    fn a_forged_header_naming_our_key_gives_no_claims(header in forged_header(), payload in segment(), signature in segment()) {
        prop_assert_eq!(as_hint(&format!("{header}.{payload}.{signature}")), None);
        prop_assert_eq!(as_hint(&format!("{header}.{payload}.")), None);
    }
}

proptest! {
    // Each case signs (RSA included): fewer cases.
    #![proptest_config(cases(96))]

    #[test]
    fn a_token_we_signed_gives_its_claims_and_any_change_gives_none(
        alg in proptest::sample::select(&Alg::ALL[..]),
        claims in claims(),
        at in any::<prop::sample::Index>(),
        replacement in proptest::char::range('!', '~'),
    ) {
        let token = signed(alg, &claims);
        prop_assert_eq!(as_hint(&token), Some(claims.clone()));
        let i = at.index(token.len());
        let original = token.as_bytes()[i] as char;
        if replacement != original {
            let changed = format!("{}{replacement}{}", &token[..i], &token[i + 1..]);
            prop_assert_eq!(as_hint(&changed), None, "changed at {}", i);
        }
        prop_assert_eq!(as_hint(&token[..i]), None, "truncated at {}", i);
        prop_assert_eq!(as_hint(&format!("{token}.")), None);
    }

    #[test]
    fn a_token_with_a_segment_encoded_again_gives_none(
        alg in proptest::sample::select(&Alg::ALL[..]),
        claims in claims(),
        which in 0usize..3,
        padded in any::<bool>(),
    ) {
        let token = signed(alg, &claims);
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let bytes = URL_SAFE_NO_PAD.decode(&parts[which]).unwrap();
        let again = if padded { URL_SAFE.encode(&bytes) } else { STANDARD.encode(&bytes) };
        if again != parts[which] {
            parts[which] = again;
            prop_assert_eq!(as_hint(&parts.join(".")), None);
        }
    }

    #[test]
    fn a_token_of_another_kind_is_not_taken_for_an_id_token(alg in proptest::sample::select(&Alg::ALL[..]), claims in claims()) {
        let logout = SET.sign(alg, "logout+jwt", &claims, NOW).unwrap();
        prop_assert_eq!(as_hint(&logout), None);
    }
}

/// RFC 8725 §3.1: a key is used with its one algorithm. A token signed with our RSA
/// key under RS512 or PS256 is not one Guichet made.
#[test]
fn a_token_signed_with_our_key_under_another_algorithm_is_refused() {
    let rsa = KEYS.iter().find(|k| k.alg == "RS256").unwrap();
    let der = STANDARD.decode(&rsa.private_der).unwrap();
    let claims =
        json!({ "iss": "https://guichet.test", "sub": "someone", "exp": 4_000_000_000u64 });
    // RS256 itself, signed by the JOSE library: what Guichet's own signer makes
    // (hand-written on ring) is what a library makes and reads.
    let by_library = {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.kid = Some(rsa.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
        jsonwebtoken::encode(&header, &claims, &key).unwrap()
    };
    assert_eq!(as_hint(&by_library).unwrap()["sub"], "someone");
    for other in [
        jsonwebtoken::Algorithm::RS512,
        jsonwebtoken::Algorithm::PS256,
    ] {
        let mut header = jsonwebtoken::Header::new(other);
        header.kid = Some(rsa.kid.clone());
        let key = jsonwebtoken::EncodingKey::from_rsa_der(&der);
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        assert_eq!(as_hint(&token), None, "{other:?}");
    }
}
