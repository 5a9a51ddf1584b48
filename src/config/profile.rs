//! An institution profile: what differs between universities running the same code.
//! `profiles/` ships the three seeds' profiles (Paris Cité, Perpignan, Sorbonne).

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use super::ConfigError;
use crate::domain::{AccountState, Email, Lang, PasswordRules, StateKind};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// Short identifier, e.g. `paris-cite`.
    pub id: String,
    /// The institution's name as students read it.
    pub institution: Localized,
    pub languages: Languages,
    pub identity: IdentityCheck,
    #[serde(default)]
    pub activation: Activation,
    #[serde(default)]
    pub reset: Reset,
    #[serde(default)]
    pub links: LinkLifetimes,
    pub password: PasswordRules,
    pub support: Support,
    pub terms: Terms,
    pub branding: Branding,
}

/// A text in both languages.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Localized {
    pub fr: String,
    pub en: String,
}

impl Localized {
    pub fn get(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fr => &self.fr,
            Lang::En => &self.en,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Languages {
    pub default: Lang,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMethod {
    /// Paris Cité: the personal e-mail given at registration.
    PersonalEmail,
    /// Perpignan: student number and INE.
    StudentNumberIne,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BirthDate {
    #[default]
    Off,
    Optional,
    Required,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityCheck {
    pub method: IdentityMethod,
    /// With `student_number_ine`: whether the birth date is also asked.
    #[serde(default)]
    pub birth_date: BirthDate,
    /// Tells a visitor whether an account exists or is already active. Off by default:
    /// turning it on lets anyone test whether someone studies here.
    #[serde(default)]
    pub reveal_account_status: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActivationOrder {
    /// Paris Cité: identify, accept the terms, link by mail, then set the password.
    #[default]
    EmailFirst,
    /// Perpignan: identify, set the password and give an e-mail; the link finalises.
    PasswordFirst,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    #[serde(default)]
    pub order: ActivationOrder,
    /// `supannRessourceEtat` values that mean "pre-provisioned, awaiting activation".
    #[serde(default = "default_awaiting")]
    pub awaiting_states: Vec<String>,
}

impl Default for Activation {
    fn default() -> Self {
        Activation {
            order: ActivationOrder::default(),
            awaiting_states: default_awaiting(),
        }
    }
}

fn default_awaiting() -> Vec<String> {
    vec!["I:SupannCree".to_owned()]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResetIdentifier {
    PersonalEmail,
    Login,
    StudentNumber,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reset {
    /// What a student may type on the "forgot password" page.
    pub identifiers: Vec<ResetIdentifier>,
}

impl Default for Reset {
    fn default() -> Self {
        Reset {
            identifiers: vec![ResetIdentifier::PersonalEmail],
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkLifetimes {
    #[serde(with = "humantime_serde")]
    pub activation: Duration,
    #[serde(with = "humantime_serde")]
    pub reset: Duration,
    #[serde(with = "humantime_serde")]
    pub email_change: Duration,
}

impl Default for LinkLifetimes {
    fn default() -> Self {
        let twelve_hours = Duration::from_secs(12 * 3600);
        LinkLifetimes {
            activation: twelve_hours,
            reset: twelve_hours,
            email_change: twelve_hours,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    /// Where help requests go.
    pub email: Email,
    /// A help page students can read before writing.
    pub url: Option<Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Terms {
    /// Recorded in the directory with the acceptance date. Change it when the text
    /// changes.
    pub version: String,
    pub title: Localized,
    pub text: Localized,
    pub url: Option<Url>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branding {
    /// Path or URL of the logo shown at the top of every page.
    pub logo_url: Option<String>,
    pub primary_color: Color,
    pub accent_color: Color,
}

/// A CSS colour as `#rrggbb`, so it can go into a stylesheet without escaping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Color(String);

impl Color {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let valid = raw.len() == 7
            && raw.starts_with('#')
            && raw[1..].chars().all(|c| c.is_ascii_hexdigit());
        if valid {
            Ok(Color(raw.to_ascii_lowercase()))
        } else {
            Err(serde::de::Error::custom(format!(
                "`{raw}` is not a colour; expected #rrggbb"
            )))
        }
    }
}

impl Profile {
    pub(super) fn check(&self) -> Result<(), ConfigError> {
        let valid_id = !self.id.is_empty()
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !valid_id {
            return Err(ConfigError::new(
                "profile.id",
                "expected lower-case letters, digits and dashes, e.g. paris-cite",
            ));
        }
        for state in &self.activation.awaiting_states {
            let parsed = format!("{{COMPTE}}{state}").parse::<AccountState>();
            if !parsed.is_ok_and(|s| s.kind == StateKind::Inactive) {
                return Err(ConfigError::new(
                    "profile.activation.awaiting_states",
                    format!(
                        "`{state}` is not an inactive state; expected values like I:SupannCree"
                    ),
                ));
            }
        }
        let supported = matches!(
            (self.identity.method, self.activation.order),
            (IdentityMethod::PersonalEmail, ActivationOrder::EmailFirst)
                | (
                    IdentityMethod::StudentNumberIne,
                    ActivationOrder::PasswordFirst
                )
        );
        if !supported {
            return Err(ConfigError::new(
                "profile.activation.order",
                "expected \"email_first\" with method = \"personal_email\", or \"password_first\" with method = \"student_number_ine\"",
            ));
        }
        if self.reset.identifiers.is_empty() {
            return Err(ConfigError::new(
                "profile.reset.identifiers",
                "expected at least one of personal_email, login, student_number",
            ));
        }
        if self.identity.method == IdentityMethod::PersonalEmail
            && self.identity.birth_date != BirthDate::Off
        {
            return Err(ConfigError::new(
                "profile.identity.birth_date",
                "only applies with method = \"student_number_ine\"",
            ));
        }
        for (key, lifetime) in [
            ("activation", self.links.activation),
            ("reset", self.links.reset),
            ("email_change", self.links.email_change),
        ] {
            if lifetime < Duration::from_secs(5 * 60) || lifetime > Duration::from_secs(7 * 86400) {
                return Err(ConfigError::new(
                    format!("profile.links.{key}"),
                    "expected a lifetime between 5m and 7days, e.g. \"12h\"",
                ));
            }
        }
        if self.terms.version.trim().is_empty() {
            return Err(ConfigError::new(
                "profile.terms.version",
                "expected a version label, e.g. 2025-09",
            ));
        }
        self.password
            .check()
            .map_err(|e| ConfigError::new(format!("profile.password.{}", e.field()), e.to_string()))
    }
}
