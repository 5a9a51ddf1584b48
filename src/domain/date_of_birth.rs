//! A date of birth, as a student types it (`21/03/2004`, `21-03-2004`, `21.03.2004`) or
//! as a date picker sends it (`2004-03-21`), and as the directory stores it
//! (`supannOIDCDateDeNaissance`, `AAAA-MM-JJ`; some directories keep `AAAAMMJJ`).

use std::fmt;
use std::str::FromStr;

use time::{Date, Month};

use super::{ParseError, trimmed};

/// A real calendar date between 1900 and 2100: 31/02 and 00/13 are refused.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DateOfBirth(Date);

impl DateOfBirth {
    /// `AAAA-MM-JJ`, the form the directory and OpenID Connect's `birthdate` use.
    pub fn iso(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}",
            self.0.year(),
            u8::from(self.0.month()),
            self.0.day()
        )
    }

    /// The spellings a password must not contain: `21032004`, `20040321`, `210304`.
    pub fn spellings(&self) -> [String; 3] {
        let (y, m, d) = (self.0.year(), u8::from(self.0.month()), self.0.day());
        [
            format!("{d:02}{m:02}{y:04}"),
            format!("{y:04}{m:02}{d:02}"),
            format!("{d:02}{m:02}{:02}", y % 100),
        ]
    }
}

impl FromStr for DateOfBirth {
    type Err = ParseError;

    fn from_str(raw: &str) -> Result<Self, ParseError> {
        // Too long is still a date in the wrong form: the format hint helps more.
        let value = trimmed(raw, 10).map_err(|e| match e {
            ParseError::TooLong => ParseError::DateOfBirth,
            other => other,
        })?;
        let parts: Vec<&str> = value.split(['/', '-', '.']).collect();
        let (year, month, day) = match parts.as_slice() {
            [y, m, d] if y.len() == 4 => (*y, *m, *d),
            [d, m, y] if y.len() == 4 => (*y, *m, *d),
            // Digits only before slicing: a multi-byte character has no middle to cut.
            [compact] if compact.len() == 8 && compact.bytes().all(|b| b.is_ascii_digit()) => {
                (&compact[..4], &compact[4..6], &compact[6..])
            }
            _ => return Err(ParseError::DateOfBirth),
        };
        let number = |s: &str| {
            (!s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse::<i32>().ok())
                .flatten()
                .ok_or(ParseError::DateOfBirth)
        };
        let (year, month, day) = (number(year)?, number(month)?, number(day)?);
        if !(1900..=2100).contains(&year) {
            return Err(ParseError::DateOfBirth);
        }
        let month = u8::try_from(month)
            .ok()
            .and_then(|m| Month::try_from(m).ok())
            .ok_or(ParseError::DateOfBirth)?;
        let day = u8::try_from(day).map_err(|_| ParseError::DateOfBirth)?;
        Date::from_calendar_date(year, month, day)
            .map(DateOfBirth)
            .map_err(|_| ParseError::DateOfBirth)
    }
}

/// A date of birth is personal data: logs and debug output show only that one is there.
impl fmt::Debug for DateOfBirth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DateOfBirth(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_byte_input_is_refused_not_a_panic() {
        for raw in ["123é567", "12é45678", "éééé", "2004-0é-21"] {
            assert!(raw.parse::<DateOfBirth>().is_err(), "{raw}");
        }
    }

    #[test]
    fn french_iso_and_compact_spellings_give_the_same_date() {
        let expected = "2004-03-21".parse::<DateOfBirth>().unwrap();
        for raw in [
            "21/03/2004",
            " 21-03-2004 ",
            "21.03.2004",
            "20040321",
            "2004-3-21",
            "21/3/2004",
        ] {
            assert_eq!(raw.parse::<DateOfBirth>().unwrap(), expected, "{raw}");
        }
        assert_eq!(expected.iso(), "2004-03-21");
    }

    #[test]
    fn impossible_dates_and_other_text_are_refused() {
        for raw in [
            "31/02/2004",
            "00/01/2004",
            "01/13/2004",
            "2004/03",
            "21/03/04",
            "1850-01-01",
            "aa/bb/cccc",
            "2004-03-21T00:00",
            "+1/03/2004",
            "21/03/2004/1",
            "*",
        ] {
            assert_eq!(
                raw.parse::<DateOfBirth>(),
                Err(ParseError::DateOfBirth),
                "{raw}"
            );
        }
        assert_eq!("".parse::<DateOfBirth>(), Err(ParseError::Empty));
    }

    #[test]
    fn spellings_cover_the_usual_ways_to_write_it_in_a_password() {
        let date = "05/01/2003".parse::<DateOfBirth>().unwrap();
        assert_eq!(date.spellings(), ["05012003", "20030105", "050103"]);
        assert_eq!(format!("{date:?}"), "DateOfBirth(..)");
    }
}
