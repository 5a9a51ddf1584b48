use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use unicode_normalization::UnicodeNormalization;

/// The NFC form of `value` (RFC 8265 §4.2.2, step 4 of the enforcement rules).
pub fn nfc(value: &str) -> String {
    value.nfc().collect()
}

/// A cleartext password on its way to the directory. It is never printed: `Debug`
/// shows a placeholder and there is no `Display`. The policy check that decides
/// whether a new password is acceptable lives with the profile's rules.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    /// Takes the password in Unicode NFC, as RFC 8265's OpaqueString profile
    /// prescribes, so that an "é" typed as one character or as "e" + U+0301 is the
    /// same password when it is set and when it is checked.
    pub fn new(value: impl Into<String>) -> Self {
        Password(SecretString::from(nfc(&value.into())))
    }

    /// The cleartext, for the hasher or the LDAP bind only.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composed_and_decomposed_accents_are_one_password() {
        let composed = Password::new("R\u{e9}sum\u{e9}-2024!");
        let decomposed = Password::new("Re\u{301}sume\u{301}-2024!");
        assert_eq!(composed.expose(), decomposed.expose());
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::new("Tr0ub4dor&3");
        assert!(!format!("{password:?}").contains("Tr0ub4dor"));
        assert_eq!(password.expose(), "Tr0ub4dor&3");
    }
}
