use std::fmt;

use secrecy::{ExposeSecret, SecretString};

/// A cleartext password on its way to the directory. It is never printed: `Debug`
/// shows a placeholder and there is no `Display`. The policy check that decides
/// whether a new password is acceptable lives with the profile's rules.
#[derive(Clone)]
pub struct Password(SecretString);

impl Password {
    pub fn new(value: impl Into<String>) -> Self {
        Password(SecretString::from(value.into()))
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
    fn debug_never_shows_the_password() {
        let password = Password::new("Tr0ub4dor&3");
        assert!(!format!("{password:?}").contains("Tr0ub4dor"));
        assert_eq!(password.expose(), "Tr0ub4dor&3");
    }
}
