//! The profile's password rules, checked on the server for every new password. A
//! `NewPassword` can only come out of `PasswordPolicy::check`, so code that writes a
//! password to the directory cannot receive one that skipped the rules.

use super::password::nfc;
use super::{Password, PasswordRules};

/// Words that make a password guessable in a French university, on top of zxcvbn's
/// (English) dictionaries: common French passwords and the institutions' own names.
const LOCAL_WORDS: &[&str] = &[
    "azerty",
    "azertyuiop",
    "motdepasse",
    "soleil",
    "bonjour",
    "doudou",
    "chouchou",
    "loulou",
    "jetaime",
    "chocolat",
    "princesse",
    "coucou",
    "marseille",
    "toulouse",
    "nicolas",
    "camille",
    "julien",
    "thomas",
    "ordinateur",
    "universite",
    "université",
    "etudiant",
    "étudiant",
    "etudiante",
    "sorbonne",
    "paris",
    "cite",
    "perpignan",
    "upvd",
    "sesame",
    "moodle",
    "webmail",
    "ent",
    "compte",
    "password",
    "motdepasse",
];

/// One broken rule, with the number the message needs (`{n}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    TooShort(usize),
    TooLong(usize),
    TooFewLetters(usize),
    TooFewDigits(usize),
    NoUpper,
    NoLower,
    NoDigit,
    NoSpecial,
    TooFewClasses(usize),
    /// A character outside letters, digits and the profile's listed special characters.
    ForbiddenCharacter,
    ContainsPersonalData,
    Guessable,
    ConfirmationMismatch,
}

impl Violation {
    /// The translation key of the message; `{n}` in it is `number()`.
    pub fn code(self) -> &'static str {
        match self {
            Violation::TooShort(_) => "password.rule.min_length",
            Violation::TooLong(_) => "password.rule.max_length",
            Violation::TooFewLetters(_) => "password.rule.min_letters",
            Violation::TooFewDigits(_) => "password.rule.min_digits",
            Violation::NoUpper => "password.rule.upper",
            Violation::NoLower => "password.rule.lower",
            Violation::NoDigit => "password.rule.digit",
            Violation::NoSpecial => "password.rule.special",
            Violation::TooFewClasses(_) => "password.rule.min_classes",
            Violation::ForbiddenCharacter => "password.rule.allowed_specials",
            Violation::ContainsPersonalData => "password.rule.personal_data",
            Violation::Guessable => "password.rule.guessable",
            Violation::ConfirmationMismatch => "password.rule.confirmation",
        }
    }

    pub fn number(self) -> Option<usize> {
        match self {
            Violation::TooShort(n)
            | Violation::TooLong(n)
            | Violation::TooFewLetters(n)
            | Violation::TooFewDigits(n)
            | Violation::TooFewClasses(n) => Some(n),
            _ => None,
        }
    }
}

/// What the password must not contain: the account's own identifiers and names.
#[derive(Debug, Default)]
pub struct PersonalData<'a> {
    pub login: Option<&'a str>,
    pub student_id: Option<&'a str>,
    pub names: Vec<&'a str>,
    /// The date of birth, spelled as people put it in passwords (`21032004`…).
    pub dates: Vec<String>,
}

/// A password that passed the profile's rules.
#[derive(Debug, Clone)]
pub struct NewPassword(Password);

impl NewPassword {
    pub fn password(&self) -> &Password {
        &self.0
    }
}

#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    rules: PasswordRules,
}

/// The rules to show on the page, in order, as (translation key, number).
pub type RuleLine = (&'static str, Option<usize>);

impl PasswordPolicy {
    pub fn new(rules: PasswordRules) -> Self {
        PasswordPolicy { rules }
    }

    /// The rules as the student reads them above the form.
    pub fn describe(&self) -> Vec<RuleLine> {
        let r = &self.rules;
        let mut lines = vec![("password.rule.min_length", Some(r.min_length))];
        let counted = [
            (r.min_letters, "password.rule.min_letters"),
            (r.min_digits, "password.rule.min_digits"),
            (r.min_classes, "password.rule.min_classes"),
        ];
        lines.extend(
            counted
                .into_iter()
                .filter(|(n, _)| *n > 0)
                .map(|(n, key)| (key, Some(n))),
        );
        let required = [
            (r.require_upper, "password.rule.upper"),
            (r.require_lower, "password.rule.lower"),
            (r.require_digit, "password.rule.digit"),
            (r.require_special, "password.rule.special"),
        ];
        lines.extend(
            required
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, key)| (key, None)),
        );
        if r.allowed_specials.is_some() {
            lines.push(("password.rule.allowed_specials", None));
        }
        lines.push(("password.rule.max_length", Some(r.max_length)));
        lines.push(("password.rule.personal_data", None));
        lines.push(("password.rule.guessable", None));
        lines
    }

    /// The listed special characters, for the page (Perpignan shows them).
    pub fn allowed_specials(&self) -> Option<&str> {
        self.rules.allowed_specials.as_deref()
    }

    /// Checks every rule and reports every failure at once, so the student fixes
    /// everything in one go.
    pub fn check(
        &self,
        candidate: &str,
        confirmation: &str,
        personal: &PersonalData<'_>,
    ) -> Result<NewPassword, Vec<Violation>> {
        // Rules and the comparison apply to the password as it will be stored (NFC).
        let (candidate, confirmation) = (&nfc(candidate), &nfc(confirmation));
        let mut violations = self.composition(candidate);
        if contains_personal_data(candidate, personal) {
            violations.push(Violation::ContainsPersonalData);
        }
        // zxcvbn's cost grows with length; the length rule already failed if too long.
        if !violations.contains(&Violation::TooLong(self.rules.max_length))
            && self.is_guessable(candidate, personal)
        {
            violations.push(Violation::Guessable);
        }
        if candidate != confirmation {
            violations.push(Violation::ConfirmationMismatch);
        }
        if violations.is_empty() {
            Ok(NewPassword(Password::new(candidate)))
        } else {
            Err(violations)
        }
    }

    fn composition(&self, candidate: &str) -> Vec<Violation> {
        let r = &self.rules;
        let length = candidate.chars().count();
        let count = |f: fn(&char) -> bool| candidate.chars().filter(f).count();
        let letters = count(|c| c.is_alphabetic());
        let digits = count(char::is_ascii_digit);
        let upper = count(|c| c.is_uppercase());
        let lower = count(|c| c.is_lowercase());
        let special = count(|c| !c.is_alphanumeric());
        let classes = [upper, lower, digits, special]
            .iter()
            .filter(|n| **n > 0)
            .count();
        let mut violations = Vec::new();
        let mut need = |failed: bool, violation: Violation| {
            if failed {
                violations.push(violation);
            }
        };
        need(length < r.min_length, Violation::TooShort(r.min_length));
        need(length > r.max_length, Violation::TooLong(r.max_length));
        need(
            letters < r.min_letters,
            Violation::TooFewLetters(r.min_letters),
        );
        need(digits < r.min_digits, Violation::TooFewDigits(r.min_digits));
        need(r.require_upper && upper == 0, Violation::NoUpper);
        need(r.require_lower && lower == 0, Violation::NoLower);
        need(r.require_digit && digits == 0, Violation::NoDigit);
        need(r.require_special && special == 0, Violation::NoSpecial);
        need(
            classes < r.min_classes,
            Violation::TooFewClasses(r.min_classes),
        );
        if let Some(allowed) = &r.allowed_specials {
            let forbidden = candidate
                .chars()
                .any(|c| !c.is_ascii_alphanumeric() && !allowed.contains(c));
            need(forbidden, Violation::ForbiddenCharacter);
        }
        violations
    }

    fn is_guessable(&self, candidate: &str, personal: &PersonalData<'_>) -> bool {
        let mut inputs: Vec<&str> = LOCAL_WORDS.to_vec();
        inputs.extend(personal.login);
        inputs.extend(personal.student_id);
        inputs.extend(personal.names.iter().copied());
        inputs.extend(personal.dates.iter().map(String::as_str));
        let score: u8 = zxcvbn::zxcvbn(candidate, &inputs).score().into();
        score < self.rules.min_strength
    }
}

/// Case- and accent-insensitive: `Zoé` is found in `zoe2025!`. Parts shorter than 3
/// characters are ignored (a name like `Li` would forbid too much).
fn contains_personal_data(candidate: &str, personal: &PersonalData<'_>) -> bool {
    let haystack = fold(candidate);
    // Names in NFC too, or a decomposed accent would split them into short pieces.
    let names: Vec<String> = personal.names.iter().map(|name| nfc(name)).collect();
    let names = names
        .iter()
        .flat_map(|name| name.split(|c: char| !c.is_alphanumeric()));
    personal
        .login
        .into_iter()
        .chain(personal.student_id)
        .chain(names)
        .chain(personal.dates.iter().map(String::as_str))
        .map(fold)
        .filter(|part| part.chars().count() >= 3)
        .any(|part| haystack.contains(&part))
}

/// Lower case without French diacritics.
fn fold(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'ÿ' => 'y',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(profile: &str) -> PasswordRules {
        let text = std::fs::read_to_string(format!("profiles/{profile}.toml")).unwrap();
        let value: toml::Value = toml::from_str(&text).unwrap();
        value["profile"]["password"].clone().try_into().unwrap()
    }

    fn check(profile: &str, candidate: &str) -> Result<NewPassword, Vec<Violation>> {
        let personal = PersonalData {
            login: Some("ldurand"),
            student_id: Some("28700001"),
            names: vec!["Léa", "Durand"],
            dates: "21/03/2004"
                .parse::<crate::domain::DateOfBirth>()
                .unwrap()
                .spellings()
                .to_vec(),
        };
        PasswordPolicy::new(rules(profile)).check(candidate, candidate, &personal)
    }

    #[test]
    fn paris_cite_wants_8_characters_2_letters_1_digit() {
        assert!(check("paris-cite", "cerisier en fleur 7").is_ok());
        let errors = check("paris-cite", "1234567").unwrap_err();
        assert!(errors.contains(&Violation::TooShort(8)));
        assert!(errors.contains(&Violation::TooFewLetters(2)));
        assert!(
            check("paris-cite", "ciel-gris-tranquille").unwrap_err()
                == vec![Violation::TooFewDigits(1)]
        );
    }

    #[test]
    fn perpignan_wants_3_classes_and_only_its_specials() {
        assert!(check("perpignan", "Tramontane#47").is_ok());
        assert_eq!(
            check("perpignan", "tramontane-catalane").unwrap_err(),
            vec![Violation::TooFewClasses(3), Violation::ForbiddenCharacter]
        );
        assert_eq!(
            check("perpignan", "Tramontane&47").unwrap_err(),
            vec![Violation::ForbiddenCharacter]
        );
        assert_eq!(
            check("perpignan", "Trämontane#47").unwrap_err(),
            vec![Violation::ForbiddenCharacter]
        );
    }

    #[test]
    fn sorbonne_wants_every_class() {
        assert!(check("sorbonne", "Jussieu-Amphi-25").is_ok());
        let errors = check("sorbonne", "jussieu amphi vingt").unwrap_err();
        assert_eq!(errors, vec![Violation::NoUpper, Violation::NoDigit]);
    }

    #[test]
    fn personal_data_and_guessable_passwords_are_refused_everywhere() {
        for profile in ["paris-cite", "perpignan", "sorbonne"] {
            assert!(
                check(profile, "Ldurand#2025x")
                    .unwrap_err()
                    .contains(&Violation::ContainsPersonalData)
            );
            assert!(
                check(profile, "Lea#Durand99")
                    .unwrap_err()
                    .contains(&Violation::ContainsPersonalData)
            );
            assert!(
                check(profile, "Zq28700001#x")
                    .unwrap_err()
                    .contains(&Violation::ContainsPersonalData)
            );
            assert!(
                check(profile, "Kw#21032004q")
                    .unwrap_err()
                    .contains(&Violation::ContainsPersonalData),
                "{profile}: date of birth"
            );
            assert!(
                check(profile, "Azerty123!")
                    .unwrap_err()
                    .contains(&Violation::Guessable),
                "{profile}"
            );
            assert!(
                check(profile, "Password1!")
                    .unwrap_err()
                    .contains(&Violation::Guessable),
                "{profile}"
            );
        }
        let zoe = PersonalData {
            names: vec!["Zoé"],
            ..PersonalData::default()
        };
        let policy = PasswordPolicy::new(rules("paris-cite"));
        assert!(
            policy
                .check("zoe-au-jardin-42", "zoe-au-jardin-42", &zoe)
                .unwrap_err()
                .contains(&Violation::ContainsPersonalData)
        );
    }

    #[test]
    fn length_is_bounded_and_confirmation_must_match() {
        let long = format!("Aa1#{}", "x9".repeat(40));
        assert!(
            check("sorbonne", &long)
                .unwrap_err()
                .contains(&Violation::TooLong(64))
        );
        let policy = PasswordPolicy::new(rules("sorbonne"));
        let errors = policy
            .check(
                "Jussieu-Amphi-25",
                "Jussieu-Amphi-26",
                &PersonalData::default(),
            )
            .unwrap_err();
        assert_eq!(errors, vec![Violation::ConfirmationMismatch]);
    }

    #[test]
    fn the_description_lists_each_profile_rule() {
        let keys: Vec<_> = PasswordPolicy::new(rules("perpignan"))
            .describe()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert!(keys.contains(&"password.rule.min_classes"));
        assert!(keys.contains(&"password.rule.allowed_specials"));
        assert!(!keys.contains(&"password.rule.upper"));
    }
}
