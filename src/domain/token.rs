use std::fmt;
use std::str::FromStr;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

use super::ParseError;

/// 256 bits: a one-time link cannot be guessed, even with every link ever sent known.
const TOKEN_BYTES: usize = 32;
/// Base64url of 32 bytes without padding.
const TOKEN_CHARS: usize = 43;

/// The secret part of a one-time link. Only its SHA-256 (`TokenHash`) is stored; the
/// raw value lives in the mail until it is sent. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// What the store keeps of a token: its SHA-256, hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl Token {
    /// A fresh token from the operating system's random number generator.
    pub fn generate() -> Token {
        let mut bytes = [0u8; TOKEN_BYTES];
        OsRng.fill_bytes(&mut bytes);
        Token(URL_SAFE_NO_PAD.encode(bytes))
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(self.0.as_bytes())))
    }

    /// The raw value, for the link in the mail only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TokenHash {
    /// The hash of another secret kept the same way: a CAS ticket (`cas::tickets`).
    pub(crate) fn of_secret(raw: &str) -> TokenHash {
        TokenHash(hex::encode(Sha256::digest(raw.as_bytes())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A hash as stored (64 lowercase hex digits), read back from a link's payload.
    pub fn from_stored(raw: &str) -> Option<TokenHash> {
        let hex = raw.len() == 64 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        hex.then(|| TokenHash(raw.to_owned()))
    }
}

impl FromStr for Token {
    type Err = ParseError;

    /// Accepts exactly the shape `generate` makes; anything else is not a link of ours.
    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let raw = raw.trim();
        let decoded = URL_SAFE_NO_PAD.decode(raw).map_err(|_| ParseError::Token)?;
        if raw.len() != TOKEN_CHARS || decoded.len() != TOKEN_BYTES {
            return Err(ParseError::Token);
        }
        Ok(Token(raw.to_owned()))
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_256_bit_url_safe_and_unique() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_CHARS);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_eq!(a.expose().parse::<Token>().unwrap(), a);
    }

    #[test]
    fn only_the_hash_is_comparable_and_debug_hides_the_token() {
        let token = Token::generate();
        assert_eq!(token.hash(), token.clone().hash());
        assert_eq!(token.hash().as_str().len(), 64);
        assert!(!format!("{token:?}").contains(token.expose()));
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = Token::generate();
        let tampered = format!("{}A", good.expose());
        for bad in [
            "",
            "abc",
            tampered.as_str(),
            &good.expose()[..42],
            "%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%",
        ] {
            assert!(bad.parse::<Token>().is_err(), "{bad:?}");
        }
    }
}
