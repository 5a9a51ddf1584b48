use std::fmt;
use std::str::FromStr;

use super::{ParseError, trimmed};

/// An e-mail address as RFC 5321 allows for delivery: `local@domain`, domain with a dot,
/// no display name, no comments. The domain is lower-cased; the local part is kept as
/// typed because some servers treat it as case-sensitive.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

/// RFC 5321 §4.5.3.1.3: a forward-path is at most 256 octets, so an address is at most 254.
const MAX_LEN: usize = 254;

impl Email {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The same address for comparison: the whole address lower-cased, as directory
    /// matching (caseIgnoreIA5Match on supannMailPerso) does.
    pub fn normalized(&self) -> String {
        self.0.to_lowercase()
    }
}

impl FromStr for Email {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let value = trimmed(raw, MAX_LEN)?;
        let (local, domain) = value.rsplit_once('@').ok_or(ParseError::Email)?;
        let plain = |c: char| c.is_ascii_graphic() && !"<>()[]\\,;:\"@".contains(c);
        let valid_local = !local.is_empty()
            && local.len() <= 64
            && local.chars().all(plain)
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        let valid_domain = domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        // The crate is the reference parser; the checks above narrow it to what a
        // mail relay delivers (no quoted local parts, no IP literals).
        if !valid_local || !valid_domain || !email_address::EmailAddress::is_valid(value) {
            return Err(ParseError::Email);
        }
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses_and_lowercases_the_domain() {
        let email: Email = "  Lea.Durand+ent@Example.ORG ".parse().unwrap();
        assert_eq!(email.as_str(), "Lea.Durand+ent@example.org");
        assert_eq!(email.normalized(), "lea.durand+ent@example.org");
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in [
            "",
            "   ",
            "plain",
            "a@b",
            "@example.org",
            "a@.example.org",
            "a..b@example.org",
            ".a@example.org",
            "a b@example.org",
            "a@exa mple.org",
            "a@-example.org",
            "\"quoted\"@example.org",
            "a@[127.0.0.1]",
            "a(comment)@example.org",
            "Léa <lea@example.org>",
            "a*)(uid=*@example.org",
        ] {
            assert!(bad.parse::<Email>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn refuses_overlong_addresses() {
        let long = format!("{}@example.org", "a".repeat(250));
        assert_eq!(long.parse::<Email>(), Err(ParseError::TooLong));
        let long_local = format!("{}@example.org", "a".repeat(65));
        assert_eq!(long_local.parse::<Email>(), Err(ParseError::Email));
    }
}
