//! The student's language: every page and mail exists in French and English.

use serde::Deserialize;

/// The two languages of every page and mail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Fr,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Fr, Lang::En];

    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn from_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| {
            code.trim()
                .get(..2)
                .is_some_and(|c| c.eq_ignore_ascii_case(lang.code()))
        })
    }
}
