use std::fmt;
use std::str::FromStr;

use time::Date;
use time::macros::format_description;

use super::ParseError;

/// The three SUPANN account states: `A` (active), `I` (inactive), `S` (suspended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateKind {
    Active,
    Inactive,
    Suspended,
}

impl StateKind {
    fn letter(self) -> char {
        match self {
            StateKind::Active => 'A',
            StateKind::Inactive => 'I',
            StateKind::Suspended => 'S',
        }
    }
}

/// The `{COMPTE}` value of `supannRessourceEtatDate`:
/// `{COMPTE}<A|I|S>:<sub-state>:<start YYYYMMDD>:<end YYYYMMDD>`, dates optional.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountState {
    pub kind: StateKind,
    pub sub_state: String,
    pub start: Option<Date>,
    pub end: Option<Date>,
}

pub const RESOURCE_PREFIX: &str = "{COMPTE}";

impl AccountState {
    /// `{COMPTE}A:SupannActif:<today>:` — what activation writes.
    pub fn activated(on: Date) -> Self {
        AccountState {
            kind: StateKind::Active,
            sub_state: "SupannActif".to_owned(),
            start: Some(on),
            end: None,
        }
    }

    /// `{COMPTE}I:SupannCree::` — pre-provisioned, awaiting activation.
    pub fn created() -> Self {
        AccountState {
            kind: StateKind::Inactive,
            sub_state: "SupannCree".to_owned(),
            start: None,
            end: None,
        }
    }

    /// `A:SupannActif`, `I:SupannCree`: the form of a profile's configured states and
    /// of `supannRessourceEtat`.
    pub fn short(&self) -> String {
        format!("{}:{}", self.kind.letter(), self.sub_state)
    }

    /// The value for `supannRessourceEtat` (no dates).
    pub fn etat_value(&self) -> String {
        format!("{RESOURCE_PREFIX}{}", self.short())
    }

    /// True for a `supannRessourceEtat`/`supannRessourceEtatDate` value of the account
    /// resource, whatever its state; other resources (`{MAIL}`…) are left alone.
    pub fn is_account_value(raw: &str) -> bool {
        raw.starts_with(RESOURCE_PREFIX)
    }
}

fn yyyymmdd() -> &'static [time::format_description::FormatItem<'static>] {
    format_description!("[year][month][day]")
}

fn parse_date(raw: &str) -> Result<Option<Date>, ParseError> {
    if raw.is_empty() {
        return Ok(None);
    }
    Date::parse(raw, yyyymmdd())
        .map(Some)
        .map_err(|_| ParseError::AccountState)
}

impl FromStr for AccountState {
    type Err = ParseError;

    /// Accepts the dated form and the short `supannRessourceEtat` form.
    fn from_str(raw: &str) -> Result<Self, ParseError> {
        let body = raw
            .trim()
            .strip_prefix(RESOURCE_PREFIX)
            .ok_or(ParseError::AccountState)?;
        let mut parts = body.split(':');
        let kind = match parts.next() {
            Some("A") => StateKind::Active,
            Some("I") => StateKind::Inactive,
            Some("S") => StateKind::Suspended,
            _ => return Err(ParseError::AccountState),
        };
        let sub_state = parts.next().unwrap_or_default();
        if sub_state.is_empty() || !sub_state.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(ParseError::AccountState);
        }
        let start = parse_date(parts.next().unwrap_or_default())?;
        let end = parse_date(parts.next().unwrap_or_default())?;
        if parts.next().is_some() {
            return Err(ParseError::AccountState);
        }
        Ok(AccountState {
            kind,
            sub_state: sub_state.to_owned(),
            start,
            end,
        })
    }
}

/// Formats the dated form for `supannRessourceEtatDate`.
impl fmt::Display for AccountState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |d: Option<Date>| {
            d.and_then(|d| d.format(yyyymmdd()).ok())
                .unwrap_or_default()
        };
        write!(
            f,
            "{}:{}:{}",
            self.etat_value(),
            date(self.start),
            date(self.end)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn parses_the_dated_and_short_forms() {
        let state: AccountState = "{COMPTE}A:SupannActif:20250901:".parse().unwrap();
        assert_eq!(state.kind, StateKind::Active);
        assert_eq!(state.sub_state, "SupannActif");
        assert_eq!(state.start, Some(date!(2025 - 09 - 01)));
        assert_eq!(state.end, None);
        let short: AccountState = "{COMPTE}I:SupannCree".parse().unwrap();
        assert_eq!(short.short(), "I:SupannCree");
        assert_eq!(short.start, None);
    }

    #[test]
    fn writes_the_activation_value() {
        let state = AccountState::activated(date!(2026 - 11 - 22));
        assert_eq!(state.to_string(), "{COMPTE}A:SupannActif:20261122:");
        assert_eq!(state.etat_value(), "{COMPTE}A:SupannActif");
    }

    #[test]
    fn refuses_other_resources_and_garbage() {
        for bad in [
            "{MAIL}A:SupannActif::",
            "{COMPTE}X:SupannActif::",
            "{COMPTE}A:::",
            "{COMPTE}A:Supann Actif::",
            "{COMPTE}A:SupannActif:2025-09-01:",
            "{COMPTE}A:SupannActif:20251301:",
            "{COMPTE}A:SupannActif:::extra",
        ] {
            assert!(bad.parse::<AccountState>().is_err(), "{bad:?} was accepted");
        }
        assert!(AccountState::is_account_value("{COMPTE}I:SupannCree"));
        assert!(!AccountState::is_account_value("{MAIL}A:SupannActif"));
    }
}
