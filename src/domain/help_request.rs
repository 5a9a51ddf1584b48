//! A help request as the contact form gives it: every field checked at once, so the
//! page can show every problem together.

use std::str::FromStr;

use super::{Email, ParseError, trimmed};

/// What the student needs help with; the helpdesk sorts requests by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelpCategory {
    Activation,
    Password,
    Email,
    Locked,
    Other,
}

impl HelpCategory {
    pub const ALL: [HelpCategory; 5] = [
        HelpCategory::Activation,
        HelpCategory::Password,
        HelpCategory::Email,
        HelpCategory::Locked,
        HelpCategory::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HelpCategory::Activation => "activation",
            HelpCategory::Password => "password",
            HelpCategory::Email => "email",
            HelpCategory::Locked => "locked",
            HelpCategory::Other => "other",
        }
    }
}

impl FromStr for HelpCategory {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        HelpCategory::ALL
            .into_iter()
            .find(|c| c.as_str() == raw.trim())
            .ok_or(ParseError::Category)
    }
}

/// The longest message kept: a page of text.
pub const MESSAGE_MAX: usize = 4000;

#[derive(Debug, Clone)]
pub struct HelpRequest {
    pub name: String,
    /// A login or a student number, as typed (the helpdesk reads it; the diagnostic
    /// looks it up).
    pub identifier: String,
    pub contact: Email,
    pub category: HelpCategory,
    pub message: String,
}

/// Which field a problem is about, with the problem.
pub type FieldError = (&'static str, ParseError);

impl HelpRequest {
    pub fn parse(
        name: &str,
        identifier: &str,
        contact: &str,
        category: &str,
        message: &str,
    ) -> Result<HelpRequest, Vec<FieldError>> {
        let name = trimmed(name, 100).map(str::to_owned);
        let identifier = trimmed(identifier, 64).map(str::to_owned);
        let contact = contact.parse::<Email>();
        let category = category.parse::<HelpCategory>();
        let message = trimmed(message, MESSAGE_MAX).map(str::to_owned);
        match (name, identifier, contact, category, message) {
            (Ok(name), Ok(identifier), Ok(contact), Ok(category), Ok(message)) => Ok(HelpRequest {
                name,
                identifier,
                contact,
                category,
                message,
            }),
            (name, identifier, contact, category, message) => Err([
                ("name", name.err()),
                ("identifier", identifier.err()),
                ("contact", contact.err()),
                ("category", category.err()),
                ("message", message.err()),
            ]
            .into_iter()
            .filter_map(|(field, error)| error.map(|e| (field, e)))
            .collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_request_parses() {
        let request = HelpRequest::parse(
            " Léa Durand ",
            "ldurand",
            "lea.durand@example.org",
            "password",
            "Je n’ai pas reçu le lien.",
        )
        .unwrap();
        assert_eq!(request.name, "Léa Durand");
        assert_eq!(request.category, HelpCategory::Password);
    }

    #[test]
    fn every_bad_field_is_named_at_once() {
        let errors = HelpRequest::parse(
            "",
            "x",
            "not-an-address",
            "hack",
            &"a".repeat(MESSAGE_MAX + 1),
        )
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                ("name", ParseError::Empty),
                ("contact", ParseError::Email),
                ("category", ParseError::Category),
                ("message", ParseError::TooLong),
            ]
        );
    }
}
