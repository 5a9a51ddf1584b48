//! Validated domain types. Each one can only hold a well-formed value, so code that
//! receives one never re-checks it. Parsing errors carry a stable code that pages
//! translate; they never echo the rejected input.

mod account_state;
mod date_of_birth;
mod email;
mod help_request;
mod identifiers;
mod lang;
mod password;
mod password_policy;
mod password_rules;
mod token;

pub use account_state::{AccountState, StateKind};
pub use date_of_birth::DateOfBirth;
pub use email::Email;
pub use help_request::{FieldError, HelpCategory, HelpRequest};
pub use identifiers::{Ine, Login, StudentId};
pub use lang::Lang;
pub use password::Password;
pub use password_policy::{NewPassword, PasswordPolicy, PersonalData, RuleLine, Violation};
pub use password_rules::{PasswordRules, RulesError};
pub use token::{Token, TokenHash};

/// Why a value was refused. `code()` is a stable key for the translation catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("the value is empty")]
    Empty,
    #[error("the value is too long")]
    TooLong,
    #[error("the value holds a control character (a tab, a line break)")]
    ControlCharacter,
    #[error("not a valid e-mail address")]
    Email,
    #[error("not a valid login")]
    Login,
    #[error("not a valid student number")]
    StudentId,
    #[error("not a valid INE: 10 digits and a letter, or 9 digits and 2 letters")]
    Ine,
    #[error("not a valid date of birth")]
    DateOfBirth,
    #[error("not a valid account state")]
    AccountState,
    #[error("not a link of ours")]
    Token,
    #[error("not a category of the help form")]
    Category,
}

impl ParseError {
    pub fn code(self) -> &'static str {
        match self {
            ParseError::Empty => "error.field.empty",
            ParseError::TooLong => "error.field.too_long",
            ParseError::ControlCharacter => "error.field.control_character",
            ParseError::Email => "error.field.email",
            ParseError::Login => "error.field.login",
            ParseError::StudentId => "error.field.student_id",
            ParseError::Ine => "error.field.ine",
            ParseError::DateOfBirth => "error.field.date_of_birth",
            ParseError::AccountState => "error.field.account_state",
            ParseError::Token => "error.link.unknown",
            ParseError::Category => "error.field.category",
        }
    }
}

/// Trims the surrounding white space that copy-and-paste brings, refuses empty and
/// over-long input.
fn trimmed(raw: &str, max: usize) -> Result<&str, ParseError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(ParseError::Empty);
    }
    if value.chars().count() > max {
        return Err(ParseError::TooLong);
    }
    Ok(value)
}

/// Configuration and forms carry these types as strings; deserializing parses them.
macro_rules! deserialize_by_parsing {
    ($($ty:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    )*};
}
deserialize_by_parsing!(Email, Login, StudentId, Ine, AccountState);
