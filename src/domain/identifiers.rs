use std::fmt;
use std::str::FromStr;

use super::{ParseError, trimmed};

/// A directory login (`uid`): letters, digits, `.`, `-`, `_`, starting with a letter or
/// digit, lower-cased. Institutions use `ldurand`, `e2401234` or `28700001`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Login(String);

impl Login {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Login {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let value = trimmed(raw, 64)?.to_ascii_lowercase();
        let mut chars = value.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if first_ok && rest_ok {
            Ok(Login(value))
        } else {
            Err(ParseError::Login)
        }
    }
}

/// A student number (`supannEtuId`): 4 to 20 letters or digits, upper-cased.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StudentId(String);

impl StudentId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for StudentId {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let value = trimmed(raw, 20)?.to_ascii_uppercase();
        if value.len() >= 4 && value.chars().all(|c| c.is_ascii_alphanumeric()) {
            Ok(StudentId(value))
        } else {
            Err(ParseError::StudentId)
        }
    }
}

/// The INE (identifiant national étudiant, `supannCodeINE`): 11 characters, either 10
/// digits and a letter (INE-RNIE / INE-BEA) or 9 digits and 2 letters (INE-Base
/// Élèves), upper-cased. Spaces typed between groups are dropped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Ine(String);

impl Ine {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Ine {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let value: String = trimmed(raw, 32)?
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let bytes = value.as_bytes();
        let shape = |digits: usize| {
            bytes.len() == 11
                && bytes[..digits].iter().all(u8::is_ascii_digit)
                && bytes[digits..].iter().all(u8::is_ascii_uppercase)
        };
        if shape(10) || shape(9) {
            Ok(Ine(value))
        } else {
            Err(ParseError::Ine)
        }
    }
}

macro_rules! show_as_text {
    ($($ty:ident),*) => {$(
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($ty), "({})"), self.0)
            }
        }
    )*};
}
show_as_text!(Login, StudentId, Ine);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_lowercased_and_restricted() {
        assert_eq!("LDurand".parse::<Login>().unwrap().as_str(), "ldurand");
        assert_eq!(" e2401234 ".parse::<Login>().unwrap().as_str(), "e2401234");
        for bad in [
            "",
            ".x",
            "-x",
            "a b",
            "a*",
            "a)(uid=*",
            "a,ou=x",
            "é",
            &"a".repeat(65),
        ] {
            assert!(bad.parse::<Login>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn student_ids_are_alphanumeric() {
        assert_eq!(
            "28700001".parse::<StudentId>().unwrap().as_str(),
            "28700001"
        );
        assert_eq!(
            "e2401234".parse::<StudentId>().unwrap().as_str(),
            "E2401234"
        );
        for bad in ["", "123", "12 34", "1234*", "12345678901234567890A"] {
            assert!(bad.parse::<StudentId>().is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ine_has_two_shapes_and_is_uppercased() {
        assert_eq!(
            "1234567890a".parse::<Ine>().unwrap().as_str(),
            "1234567890A"
        );
        assert_eq!(
            "123456789ab".parse::<Ine>().unwrap().as_str(),
            "123456789AB"
        );
        assert_eq!(
            "12345 67890 A".parse::<Ine>().unwrap().as_str(),
            "1234567890A"
        );
        for bad in [
            "",
            "1234567890",
            "12345678901",
            "12345678ABC",
            "A234567890B",
            "1234567890AB",
            "1234567890*",
            "1234567890É",
        ] {
            assert!(bad.parse::<Ine>().is_err(), "{bad:?} was accepted");
        }
    }
}
