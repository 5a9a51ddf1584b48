//! A student entry as Guichet sees it, read from SUPANN / eduPerson attributes, and the
//! changes Guichet may make to it.

use std::collections::{HashMap, HashSet};

use ldap3::{Mod, SearchEntry};
use time::OffsetDateTime;
use time::macros::format_description;

use crate::domain::{AccountState, DateOfBirth, Email, Ine, Login, StudentId};

/// The attributes read for an account. `userPassword` is never read.
pub const ATTRIBUTES: &[&str] = &[
    "uid",
    "cn",
    "sn",
    "givenName",
    "displayName",
    "mail",
    "supannMailPerso",
    "supannEtuId",
    "supannCodeINE",
    "supannOIDCDateDeNaissance",
    "supannRessourceEtat",
    "supannRessourceEtatDate",
    "eduPersonAffiliation",
    "eduPersonPrimaryAffiliation",
    "guichetTermsVersion",
    "objectClass",
    // Operational (RFC 4530): never reassigned, survives renames; OIDC's `sub`.
    "entryUUID",
];

/// The auxiliary class that carries Guichet's own attributes.
const GUICHET_CLASS: &str = "guichetAccount";

#[derive(Debug, Clone)]
pub struct Account {
    pub dn: String,
    /// The entry's `entryUUID`: a stable identifier that a rename or a reused login
    /// does not change.
    pub uuid: Option<String>,
    pub login: Login,
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub display_name: Option<String>,
    pub institutional_email: Option<String>,
    pub personal_email: Option<Email>,
    pub student_id: Option<StudentId>,
    pub ine: Option<Ine>,
    pub date_of_birth: Option<DateOfBirth>,
    /// The `{COMPTE}` state, from `supannRessourceEtatDate` or else `supannRessourceEtat`.
    pub state: Option<AccountState>,
    pub affiliations: Vec<String>,
    pub primary_affiliation: Option<String>,
    pub terms_version: Option<String>,
    /// Every attribute read, by lower-case name: the source of mapped claims.
    attributes: HashMap<String, Vec<String>>,
    /// The raw `{COMPTE}` values, so a change replaces exactly these and keeps `{MAIL}`….
    account_values: AccountValues,
    has_guichet_class: bool,
}

#[derive(Debug, Clone, Default)]
struct AccountValues {
    etat: Vec<String>,
    etat_date: Vec<String>,
}

/// Why an entry cannot be used as an account.
#[derive(Debug, thiserror::Error)]
#[error("entry {dn} has no usable uid")]
pub struct UnusableEntry {
    pub dn: String,
}

impl Account {
    /// Whether the account may sign in and change its password: its state is `A`.
    pub fn is_active(&self) -> bool {
        self.state
            .as_ref()
            .is_some_and(|s| s.kind == crate::domain::StateKind::Active)
    }

    /// The name mails and pages greet the student by: the display name, else the login.
    pub fn greeting_name(&self) -> String {
        self.display_name
            .clone()
            .unwrap_or_else(|| self.login.to_string())
    }

    pub fn from_entry(entry: SearchEntry) -> Result<Account, UnusableEntry> {
        let attrs = lowercase_keys(entry.attrs);
        let first = |name: &str| attrs.get(name).and_then(|v| v.first()).cloned();
        let all = |name: &str| attrs.get(name).cloned().unwrap_or_default();
        let dn = entry.dn;
        let login = first("uid")
            .and_then(|uid| uid.parse::<Login>().ok())
            .ok_or_else(|| UnusableEntry { dn: dn.clone() })?;
        let account_values = AccountValues {
            etat: all("supannressourceetat")
                .into_iter()
                .filter(|v| AccountState::is_account_value(v))
                .collect(),
            etat_date: all("supannressourceetatdate")
                .into_iter()
                .filter(|v| AccountState::is_account_value(v))
                .collect(),
        };
        let state = account_values
            .etat_date
            .iter()
            .chain(&account_values.etat)
            .find_map(|v| v.parse::<AccountState>().ok());
        Ok(Account {
            uuid: first("entryuuid"),
            given_name: first("givenname"),
            surname: first("sn"),
            display_name: first("displayname").or_else(|| first("cn")),
            institutional_email: first("mail"),
            personal_email: parse_logged(first("supannmailperso"), &dn, "supannMailPerso"),
            student_id: parse_logged(first("supannetuid"), &dn, "supannEtuId"),
            ine: parse_logged(first("supanncodeine"), &dn, "supannCodeINE"),
            date_of_birth: parse_logged(
                first("supannoidcdatedenaissance"),
                &dn,
                "supannOIDCDateDeNaissance",
            ),
            state,
            affiliations: all("edupersonaffiliation"),
            primary_affiliation: first("edupersonprimaryaffiliation"),
            terms_version: first("guichettermsversion"),
            has_guichet_class: all("objectclass")
                .iter()
                .any(|c| c.eq_ignore_ascii_case(GUICHET_CLASS)),
            account_values,
            login,
            dn,
            attributes: attrs,
        })
    }

    /// The values of `attribute` (any case), as read from the directory.
    pub fn values(&self, attribute: &str) -> &[String] {
        self.attributes
            .get(&attribute.to_ascii_lowercase())
            .map_or(&[], Vec::as_slice)
    }
}

/// A malformed optional value in the directory is treated as absent and logged: one
/// bad attribute must not lock a student out of every flow.
fn parse_logged<T: std::str::FromStr>(raw: Option<String>, dn: &str, attribute: &str) -> Option<T> {
    let raw = raw?;
    raw.parse().ok().or_else(|| {
        tracing::warn!(dn, attribute, "malformed value in directory, ignored");
        None
    })
}

/// Attribute names are case-insensitive in LDAP; servers return them as defined in
/// the schema or as requested.
fn lowercase_keys(attrs: HashMap<String, Vec<String>>) -> HashMap<String, Vec<String>> {
    attrs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect()
}

/// One atomic modification of an account: everything in it lands in a single LDAP
/// modify operation, or nothing does.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    pub(super) mods: Vec<Mod<String>>,
}

impl AccountChange {
    /// Replaces the `{COMPTE}` values of `supannRessourceEtat` and
    /// `supannRessourceEtatDate` and keeps every other resource's values. The delete of
    /// the old values makes the write fail if an admin changed the state meanwhile.
    pub fn set_state(mut self, account: &Account, state: &AccountState) -> Self {
        let pairs = [
            (
                "supannRessourceEtat",
                &account.account_values.etat,
                state.etat_value(),
            ),
            (
                "supannRessourceEtatDate",
                &account.account_values.etat_date,
                state.to_string(),
            ),
        ];
        for (attribute, old, new) in pairs {
            if !old.is_empty() {
                self.mods.push(Mod::Delete(
                    attribute.to_owned(),
                    old.iter().cloned().collect(),
                ));
            }
            self.mods
                .push(Mod::Add(attribute.to_owned(), HashSet::from([new])));
        }
        self
    }

    /// Records which terms version was accepted and when, and the activation time.
    pub fn accept_terms(mut self, account: &Account, version: &str, at: OffsetDateTime) -> Self {
        self = self.with_guichet_class(account);
        let when = generalized_time(at);
        self.mods
            .push(replace("guichetTermsVersion", version.to_owned()));
        self.mods.push(replace("guichetTermsAcceptedAt", when));
        self
    }

    pub fn activated_at(mut self, account: &Account, at: OffsetDateTime) -> Self {
        self = self.with_guichet_class(account);
        self.mods
            .push(replace("guichetActivatedAt", generalized_time(at)));
        self
    }

    pub fn set_personal_email(mut self, email: &Email) -> Self {
        self.mods
            .push(replace("supannMailPerso", email.as_str().to_owned()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.mods.is_empty()
    }

    fn with_guichet_class(mut self, account: &Account) -> Self {
        let already = self
            .mods
            .iter()
            .any(|m| matches!(m, Mod::Add(a, _) if a == "objectClass"));
        if !account.has_guichet_class && !already {
            self.mods.push(Mod::Add(
                "objectClass".to_owned(),
                HashSet::from([GUICHET_CLASS.to_owned()]),
            ));
        }
        self
    }
}

fn replace(attribute: &str, value: String) -> Mod<String> {
    Mod::Replace(attribute.to_owned(), HashSet::from([value]))
}

/// LDAP GeneralizedTime in UTC: `20261122153000Z`.
pub fn generalized_time(at: OffsetDateTime) -> String {
    let utc = at.to_offset(time::UtcOffset::UTC);
    utc.format(format_description!(
        "[year][month][day][hour][minute][second]Z"
    ))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime};

    use super::*;

    fn entry(extra: &[(&str, &[&str])]) -> SearchEntry {
        let mut attrs: HashMap<String, Vec<String>> = HashMap::from([
            ("uid".to_owned(), vec!["ldurand".to_owned()]),
            (
                "supannMailPerso".to_owned(),
                vec!["Lea.Durand@Example.org".to_owned()],
            ),
            (
                "supannRessourceEtatDate".to_owned(),
                vec![
                    "{MAIL}A:SupannActif::".to_owned(),
                    "{COMPTE}I:SupannCree::".to_owned(),
                ],
            ),
            (
                "supannRessourceEtat".to_owned(),
                vec!["{COMPTE}I:SupannCree".to_owned()],
            ),
        ]);
        for (k, v) in extra {
            attrs.insert((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect());
        }
        SearchEntry {
            dn: "uid=ldurand,ou=people,dc=univ-demo,dc=fr".to_owned(),
            attrs,
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn maps_supann_attributes() {
        let account = Account::from_entry(entry(&[("supannCodeINE", &["1234567890a"])])).unwrap();
        assert_eq!(account.login.as_str(), "ldurand");
        assert_eq!(
            account.personal_email.unwrap().as_str(),
            "Lea.Durand@example.org"
        );
        assert_eq!(account.state.unwrap().short(), "I:SupannCree");
        assert_eq!(account.ine.unwrap().as_str(), "1234567890A");
    }

    #[test]
    fn a_malformed_optional_value_is_ignored_not_fatal() {
        let account = Account::from_entry(entry(&[("supannCodeINE", &["not-an-ine"])])).unwrap();
        assert!(account.ine.is_none());
        assert!(Account::from_entry(entry(&[("uid", &["bad uid*"])])).is_err());
    }

    #[test]
    fn a_state_change_keeps_other_resources() {
        let account = Account::from_entry(entry(&[])).unwrap();
        let change = AccountChange::default()
            .set_state(&account, &AccountState::activated(date!(2026 - 11 - 22)));
        let deleted: Vec<_> = change
            .mods
            .iter()
            .filter_map(|m| match m {
                Mod::Delete(_, values) => Some(values.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert!(deleted.contains(&"{COMPTE}I:SupannCree::".to_owned()));
        assert!(!deleted.iter().any(|v| v.starts_with("{MAIL}")));
        assert!(change.mods.iter().any(|m| matches!(m, Mod::Add(a, v)
            if a == "supannRessourceEtatDate" && v.contains("{COMPTE}A:SupannActif:20261122:"))));
    }

    #[test]
    fn guichet_class_is_added_once() {
        let account = Account::from_entry(entry(&[])).unwrap();
        let at = datetime!(2026-11-22 15:30:00 UTC);
        let change = AccountChange::default()
            .accept_terms(&account, "2025-09", at)
            .activated_at(&account, at);
        let class_adds = change
            .mods
            .iter()
            .filter(|m| matches!(m, Mod::Add(a, _) if a == "objectClass"))
            .count();
        assert_eq!(class_adds, 1);
        assert_eq!(generalized_time(at), "20261122153000Z");
    }
}
