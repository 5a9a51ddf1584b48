//! The domain types a form, a link or an import gives: arbitrary text is refused with
//! the type's own error or accepted as a value that parses again to itself.

use std::sync::LazyLock;

use guichet::domain::{
    AccountState, DateOfBirth, Email, HelpRequest, Ine, Lang, Login, ParseError, PasswordPolicy,
    PasswordRules, PersonalData, StudentId, Token, TokenHash,
};
use proptest::prelude::*;

use crate::common::hostile::{cases, near};

/// Surrounding white space as copy-and-paste brings it.
fn padded(core: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    (core, "[ \t\n\r]{0,3}", "[ \t\n\r]{0,3}").prop_map(|(c, l, r)| format!("{l}{c}{r}"))
}

proptest! {
    #![proptest_config(cases(512))]

    #[test]
    fn a_login_is_refused_with_its_error_or_kept_normalised(raw in near("a-zA-Z0-9._\\-*()=,@")) {
        match raw.parse::<Login>() {
            Ok(login) => {
                prop_assert_eq!(login.as_str(), raw.trim().to_ascii_lowercase());
                prop_assert_eq!(login.as_str().parse::<Login>().ok(), Some(login.clone()));
            }
            Err(e) => prop_assert!(matches!(e, ParseError::Login | ParseError::Empty | ParseError::TooLong), "{e:?}"),
        }
    }

    #[test]
    fn a_well_formed_login_is_accepted_in_lower_case(raw in padded("[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}")) {
        let login = raw.parse::<Login>();
        prop_assert_eq!(login.map(|l| l.to_string()), Ok(raw.trim().to_ascii_lowercase()));
    }

    #[test]
    fn a_student_number_is_refused_with_its_error_or_kept_upper_case(raw in near("a-zA-Z0-9")) {
        match raw.parse::<StudentId>() {
            Ok(id) => {
                prop_assert_eq!(id.as_str(), raw.trim().to_ascii_uppercase());
                prop_assert!((4..=20).contains(&id.as_str().len()));
                prop_assert_eq!(id.as_str().parse::<StudentId>().ok(), Some(id.clone()));
            }
            Err(e) => prop_assert!(matches!(e, ParseError::StudentId | ParseError::Empty | ParseError::TooLong), "{e:?}"),
        }
    }

    #[test]
    fn an_ine_is_refused_with_its_error_or_has_one_of_the_two_shapes(raw in near("0-9a-zA-Z ")) {
        match raw.parse::<Ine>() {
            Ok(ine) => {
                let shape = |digits: usize| {
                    let (head, tail) = ine.as_str().split_at(digits);
                    head.bytes().all(|b| b.is_ascii_digit()) && tail.bytes().all(|b| b.is_ascii_uppercase())
                };
                prop_assert_eq!(ine.as_str().len(), 11);
                prop_assert!(shape(10) || shape(9), "{ine:?}");
                prop_assert_eq!(ine.as_str().parse::<Ine>().ok(), Some(ine.clone()));
            }
            Err(e) => prop_assert!(matches!(e, ParseError::Ine | ParseError::Empty | ParseError::TooLong), "{e:?}"),
        }
    }

    #[test]
    fn an_ine_typed_in_groups_is_accepted(digits in "[0-9]{9}", last in "[0-9][a-zA-Z]|[a-zA-Z]{2}", gaps in proptest::collection::vec(" {0,2}", 11)) {
        let plain = format!("{digits}{last}");
        let spaced: String = plain.chars().zip(&gaps).map(|(c, gap)| format!("{c}{gap}")).collect();
        let ine = spaced.parse::<Ine>();
        prop_assert_eq!(ine.map(|i| i.to_string()), Ok(plain.to_ascii_uppercase()));
    }

    #[test]
    fn an_email_is_refused_with_its_error_or_parses_again_to_itself(raw in near("a-zA-Z0-9.@+_\\-\"<>()\\[\\],;:\\\\")) {
        match raw.parse::<Email>() {
            Ok(email) => {
                prop_assert!(email.as_str().len() <= 254);
                prop_assert_eq!(email.as_str().parse::<Email>().ok(), Some(email.clone()));
                let (_, domain) = email.as_str().rsplit_once('@').unwrap_or_default();
                prop_assert_eq!(domain, domain.to_ascii_lowercase());
            }
            Err(e) => prop_assert!(matches!(e, ParseError::Email | ParseError::Empty | ParseError::TooLong), "{e:?}"),
        }
    }

    #[test]
    fn an_ordinary_email_is_accepted_with_its_domain_in_lower_case(local in "[a-zA-Z0-9+_-]{1,30}", domain in "[a-zA-Z0-9]{1,20}\\.[a-zA-Z]{2,6}") {
        let email = format!(" {local}@{domain} ").parse::<Email>();
        prop_assert_eq!(email.map(|e| e.to_string()), Ok(format!("{local}@{}", domain.to_ascii_lowercase())));
    }

    #[test]
    fn a_birth_date_is_refused_with_its_error_or_parses_again_from_its_iso_form(raw in near("0-9/.\\-")) {
        match raw.parse::<DateOfBirth>() {
            Ok(date) => prop_assert_eq!(date.iso().parse::<DateOfBirth>(), Ok(date)),
            Err(e) => prop_assert!(matches!(e, ParseError::DateOfBirth | ParseError::Empty), "{e:?}"),
        }
    }

    #[test]
    fn a_birth_date_with_multibyte_characters_is_refused_not_a_panic(raw in "[0-9/\\-.]{0,4}[é€😀\u{301}][0-9/\\-.é€😀]{0,8}") {
        let refused = raw.parse::<DateOfBirth>();
        prop_assert!(matches!(refused, Err(ParseError::DateOfBirth | ParseError::Empty)), "{raw:?}");
    }

    #[test]
    fn a_real_birth_date_is_the_same_date_in_every_spelling(day in 1u8..=31, month in 1u8..=12, year in 1900i32..=2100, separator in "[/.\\-]") {
        let Ok(real) = time::Date::from_calendar_date(year, time::Month::try_from(month).unwrap(), day) else {
            return Ok(());
        };
        let expected = format!("{year:04}-{month:02}-{day:02}");
        for spelling in [
            format!("{day:02}{separator}{month:02}{separator}{year}"),
            format!("{day}{separator}{month}{separator}{year}"),
            format!("{year}-{month:02}-{day:02}"),
            format!("{year}{month:02}{day:02}"),
        ] {
            prop_assert_eq!(spelling.parse::<DateOfBirth>().map(|d| d.iso()), Ok(expected.clone()), "{} ({})", spelling, real);
        }
    }

    #[test]
    fn a_form_or_settings_value_deserialises_as_it_parses(raw in near("a-zA-Z0-9.@{}:_\\-")) {
        let value = serde_json::Value::String(raw.clone());
        prop_assert_eq!(serde_json::from_value::<Login>(value.clone()).ok(), raw.parse::<Login>().ok());
        prop_assert_eq!(serde_json::from_value::<Email>(value.clone()).ok(), raw.parse::<Email>().ok());
        prop_assert_eq!(serde_json::from_value::<StudentId>(value.clone()).ok(), raw.parse::<StudentId>().ok());
        prop_assert_eq!(serde_json::from_value::<Ine>(value.clone()).ok(), raw.parse::<Ine>().ok());
        prop_assert_eq!(serde_json::from_value::<AccountState>(value).ok(), raw.parse::<AccountState>().ok());
    }

    #[test]
    fn a_link_token_is_refused_or_has_the_shape_of_a_generated_one(raw in near("A-Za-z0-9_\\-+/=")) {
        if let Ok(token) = raw.parse::<Token>() {
            prop_assert_eq!(token.expose().len(), 43);
            prop_assert_eq!(token.expose().parse::<Token>().ok(), Some(token.clone()));
        }
    }

    #[test]
    fn any_32_bytes_in_base64url_are_a_token_of_our_shape(bytes in proptest::array::uniform32(any::<u8>())) {
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        prop_assert_eq!(text.parse::<Token>().map(|t| t.expose().to_owned()), Ok(text));
    }

    #[test]
    fn a_stored_token_hash_is_64_lower_case_hex_digits(raw in near("0-9a-fA-F")) {
        if let Some(hash) = TokenHash::from_stored(&raw) {
            prop_assert_eq!(hash.as_str().len(), 64);
            prop_assert!(hash.as_str().bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }

    #[test]
    fn an_account_state_is_refused_or_written_back_as_read(raw in prop_oneof![near("{}COMPTEAIS:0-9a-z"), "\\{COMPTE\\}[AISX]:[A-Za-z0-9é ]{0,12}(:[0-9]{0,9}(:[0-9]{0,9})?)?"]) {
        if let Ok(state) = raw.parse::<AccountState>() {
            prop_assert_eq!(state.to_string().parse::<AccountState>(), Ok(state.clone()));
            prop_assert_eq!(state.etat_value().parse::<AccountState>().map(|s| s.short()), Ok(state.short()));
        } else {
            prop_assert_eq!(raw.parse::<AccountState>(), Err(ParseError::AccountState));
        }
    }

    #[test]
    fn a_language_code_is_one_of_ours_or_none(raw in near("frenFRENa-z\\-_;=,.")) {
        if let Some(lang) = Lang::from_code(&raw) {
            let given = raw.trim().get(..2).unwrap_or_default();
            prop_assert!(given.eq_ignore_ascii_case(lang.code()), "{raw:?} → {lang:?}");
        }
    }

    #[test]
    fn a_help_request_names_each_bad_field_once(
        name in near("a-zA-Z "), identifier in near("a-z0-9"), contact in near("a-z@."),
        category in prop_oneof![Just("password".to_owned()), near("a-z")], message in near("a-z \n"),
    ) {
        match HelpRequest::parse(&name, &identifier, &contact, &category, &message) {
            Ok(request) => {
                prop_assert_eq!(request.name.as_str(), name.trim());
                prop_assert_eq!(request.message.as_str(), message.trim());
                prop_assert!(request.name.chars().count() <= 100);
            }
            Err(errors) => {
                prop_assert!(!errors.is_empty());
                let mut fields: Vec<&str> = errors.iter().map(|(field, _)| *field).collect();
                fields.dedup();
                prop_assert_eq!(fields.len(), errors.len());
            }
        }
    }

    #[test]
    fn password_rules_from_any_settings_text_are_read_or_refused(text in "((min_length|max_length|min_letters|min_digits|min_classes|min_strength|allowed_specials|require_upper|other) = (-?[0-9]{1,22}|true|\"[!-/é]{0,4}\"|\\[\\])\n){1,6}") {
        let Ok(rules) = toml::from_str::<PasswordRules>(&text) else { return Ok(()) };
        if rules.check().is_ok() {
            prop_assert!(rules.min_length >= 8 && rules.max_length <= 256);
        }
    }
}

/// The profiles' own rules, which the forms apply to every new password.
static PROFILE_RULES: LazyLock<Vec<PasswordRules>> = LazyLock::new(|| {
    ["sorbonne", "paris-cite", "perpignan"]
        .iter()
        .filter_map(|name| std::fs::read_to_string(format!("profiles/{name}.toml")).ok())
        .filter_map(|text| toml::from_str::<toml::Value>(&text).ok())
        .filter_map(|value| {
            value
                .get("profile")?
                .get("password")?
                .clone()
                .try_into()
                .ok()
        })
        .collect()
});

proptest! {
    // zxcvbn weighs every candidate: fewer cases, still hundreds per run.
    #![proptest_config(cases(192))]

    #[test]
    fn a_new_password_passes_every_rule_or_is_refused_with_the_rules_it_breaks(
        candidate in prop_oneof![any::<String>(), near("a-zA-Z0-9!.@#"), "[A-Za-z0-9!.@#é\u{301}]{8,300}"],
        same in any::<bool>(),
        name in near("a-zA-Zé"),
    ) {
        prop_assert_eq!(PROFILE_RULES.len(), 3, "profiles/ holds the three profiles");
        for rules in PROFILE_RULES.iter() {
            let (min, max) = (rules.min_length, rules.max_length);
            let policy = PasswordPolicy::new(rules.clone());
            let personal = PersonalData { login: Some("ldurand"), names: vec![&name], ..PersonalData::default() };
            let confirmation = if same { candidate.clone() } else { format!("{candidate}x") };
            match policy.check(&candidate, &confirmation, &personal) {
                Ok(new) => {
                    let length = new.password().expose().chars().count();
                    prop_assert!(same && (min..=max).contains(&length));
                }
                Err(violations) => prop_assert!(!violations.is_empty()),
            }
        }
    }
}
