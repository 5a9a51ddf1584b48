//! The password rules of a profile, as the institution writes them in its settings.
//! `PasswordPolicy` applies them; `check` refuses rules too weak or contradictory to
//! apply.

use serde::Deserialize;

/// The profile's password rules. Every profile also refuses passwords that contain
/// the login, names or student number, and very guessable ones.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordRules {
    pub min_length: usize,
    #[serde(default = "default_max_length")]
    pub max_length: usize,
    #[serde(default)]
    pub min_letters: usize,
    #[serde(default)]
    pub min_digits: usize,
    #[serde(default)]
    pub require_upper: bool,
    #[serde(default)]
    pub require_lower: bool,
    #[serde(default)]
    pub require_digit: bool,
    #[serde(default)]
    pub require_special: bool,
    /// At least this many of: upper case, lower case, digits, special characters.
    #[serde(default)]
    pub min_classes: usize,
    /// When set, the only special characters allowed (Perpignan lists its own).
    pub allowed_specials: Option<String>,
    /// zxcvbn score (0–4) a password must reach.
    #[serde(default = "default_min_strength")]
    pub min_strength: u8,
}

fn default_max_length() -> usize {
    64
}
fn default_min_strength() -> u8 {
    2
}

/// Rules that cannot be applied as written, named by the field to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("expected at least 8 (ANSSI's floor)")]
    MinLength,
    #[error("expected a value between min_length and 256")]
    MaxLength,
    #[error("expected 0 to 4")]
    MinClasses,
    #[error("expected a zxcvbn score from 0 to 4")]
    MinStrength,
    #[error("expected ASCII punctuation characters, e.g. \"!.@#+:<>$%\"")]
    AllowedSpecials,
    #[error("min_letters + min_digits cannot exceed max_length")]
    LettersAndDigits,
}

impl RulesError {
    /// The field of `PasswordRules` at fault, as the settings spell it.
    pub fn field(self) -> &'static str {
        match self {
            RulesError::MinLength => "min_length",
            RulesError::MaxLength => "max_length",
            RulesError::MinClasses => "min_classes",
            RulesError::MinStrength => "min_strength",
            RulesError::AllowedSpecials => "allowed_specials",
            RulesError::LettersAndDigits => "min_letters",
        }
    }
}

impl PasswordRules {
    pub fn check(&self) -> Result<(), RulesError> {
        if self.min_length < 8 {
            return Err(RulesError::MinLength);
        }
        if self.max_length < self.min_length || self.max_length > 256 {
            return Err(RulesError::MaxLength);
        }
        if self.min_classes > 4 {
            return Err(RulesError::MinClasses);
        }
        if self.min_strength > 4 {
            return Err(RulesError::MinStrength);
        }
        if let Some(specials) = &self.allowed_specials {
            if specials.is_empty() || !specials.chars().all(|c| c.is_ascii_punctuation()) {
                return Err(RulesError::AllowedSpecials);
            }
        }
        // Saturating: settings from the environment can hold any usize, and an
        // overflow here would be a panic at start instead of the field's error.
        if self.min_letters.saturating_add(self.min_digits) > self.max_length {
            return Err(RulesError::LettersAndDigits);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn letter_and_digit_counts_past_usize_are_refused_not_a_panic() {
        let mut huge = rules("");
        (huge.min_letters, huge.min_digits) = (usize::MAX, 1);
        assert_eq!(huge.check(), Err(RulesError::LettersAndDigits));
    }

    /// Mostly numbers a profile would write, sometimes any at all.
    fn small_or_any() -> impl Strategy<Value = usize> {
        prop_oneof![3 => 0usize..300, 1 => any::<usize>()]
    }

    proptest! {
        #[test]
        fn rules_that_check_out_can_be_applied(
            lengths in (small_or_any(), small_or_any()),
            counts in (small_or_any(), small_or_any(), 0usize..8, any::<u8>()),
            specials in proptest::option::of(".{0,6}"),
        ) {
            let mut r = rules("");
            (r.min_length, r.max_length) = lengths;
            (r.min_letters, r.min_digits, r.min_classes, r.min_strength) = counts;
            r.allowed_specials = specials;
            if r.check().is_ok() {
                prop_assert!(8 <= r.min_length && r.min_length <= r.max_length && r.max_length <= 256);
                prop_assert!(r.min_letters + r.min_digits <= r.max_length);
                prop_assert!(r.min_classes <= 4 && r.min_strength <= 4);
                prop_assert!(r.allowed_specials.iter().all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_punctuation())));
            }
        }
    }

    fn rules(extra: &str) -> PasswordRules {
        toml::from_str(&format!("min_length = 12\n{extra}")).unwrap()
    }

    #[test]
    fn defaults_hold_and_each_broken_rule_names_its_field() {
        let defaults = rules("");
        assert_eq!((defaults.max_length, defaults.min_strength), (64, 2));
        assert_eq!(defaults.check(), Ok(()));
        for (extra, field) in [
            ("max_length = 10", "max_length"),
            ("min_classes = 5", "min_classes"),
            ("min_strength = 5", "min_strength"),
            ("allowed_specials = \"é\"", "allowed_specials"),
            ("min_letters = 40\nmin_digits = 30", "min_letters"),
        ] {
            let error = rules(extra).check().unwrap_err();
            assert_eq!(error.field(), field, "{extra}");
        }
        let short: PasswordRules = toml::from_str("min_length = 6").unwrap();
        assert_eq!(short.check(), Err(RulesError::MinLength));
    }
}
