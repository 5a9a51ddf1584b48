//! A student entry as Guichet sees it, read from SUPANN / eduPerson attributes, and the
//! changes Guichet may make to it.

use std::collections::{HashMap, HashSet};

use ldap3::asn1::StructureTag;
use ldap3::{Mod, ResultEntry, SearchEntry};
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
pub enum UnusableEntry {
    #[error("entry {dn} has no usable uid")]
    NoUid { dn: String },
    /// The directory's answer is not an entry as RFC 4511 §4.5.2 shapes it (a DN
    /// that is not UTF-8, a missing attribute list…).
    #[error("a search result is not a well-formed entry")]
    Malformed,
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

    /// The account of a search result as the directory sent it.
    pub fn from_result(result: ResultEntry) -> Result<Account, UnusableEntry> {
        search_entry(result).and_then(Account::from_entry)
    }

    fn from_entry(entry: SearchEntry) -> Result<Account, UnusableEntry> {
        let attrs = lowercase_keys(entry.attrs);
        let first = |name: &str| attrs.get(name).and_then(|v| v.first()).cloned();
        let all = |name: &str| attrs.get(name).cloned().unwrap_or_default();
        let dn = entry.dn;
        let login = first("uid")
            .and_then(|uid| uid.parse::<Login>().ok())
            .ok_or_else(|| UnusableEntry::NoUid { dn: dn.clone() })?;
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
/// the schema or as requested. The values of one attribute sent under two spellings
/// are kept together, not one spelling's dropped.
fn lowercase_keys(attrs: HashMap<String, Vec<String>>) -> HashMap<String, Vec<String>> {
    let mut merged: HashMap<String, Vec<String>> = HashMap::new();
    for (name, values) in attrs {
        merged
            .entry(name.to_ascii_lowercase())
            .or_default()
            .extend(values);
    }
    merged
}

/// `SearchEntry::construct` without its panics: ldap3 `expect`s every part of the
/// entry (a DN that is not UTF-8 from a corrupt or hostile directory would bring the
/// request down). As there, an attribute with a value that is not UTF-8 is binary.
fn search_entry(result: ResultEntry) -> Result<SearchEntry, UnusableEntry> {
    let mut parts = result
        .0
        .match_id(4)
        .and_then(StructureTag::expect_constructed)
        .ok_or(UnusableEntry::Malformed)?
        .into_iter();
    let dn = parts
        .next()
        .and_then(StructureTag::expect_primitive)
        .and_then(|dn| String::from_utf8(dn).ok())
        .ok_or(UnusableEntry::Malformed)?;
    let attributes = parts
        .next()
        .and_then(StructureTag::expect_constructed)
        .ok_or(UnusableEntry::Malformed)?;
    let mut entry = SearchEntry {
        dn,
        attrs: HashMap::new(),
        bin_attrs: HashMap::new(),
    };
    for attribute in attributes {
        let (name, values) = attribute_of(attribute).ok_or(UnusableEntry::Malformed)?;
        match values
            .iter()
            .map(|v| String::from_utf8(v.clone()))
            .collect::<Result<Vec<String>, _>>()
        {
            Ok(text) => entry.attrs.entry(name).or_default().extend(text),
            Err(_) => entry.bin_attrs.entry(name).or_default().extend(values),
        }
    }
    Ok(entry)
}

/// A PartialAttribute: its type and its values, as bytes.
fn attribute_of(tag: StructureTag) -> Option<(String, Vec<Vec<u8>>)> {
    let mut parts = tag.expect_constructed()?.into_iter();
    let name = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
    let values = parts
        .next()?
        .expect_constructed()?
        .into_iter()
        .map(StructureTag::expect_primitive)
        .collect::<Option<Vec<Vec<u8>>>>()?;
    Some((name, values))
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
    use ldap3::asn1::{PL, TagClass};
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    use super::*;

    fn octets(bytes: Vec<u8>) -> StructureTag {
        StructureTag {
            class: TagClass::Universal,
            id: 4,
            payload: PL::P(bytes),
        }
    }

    fn constructed(class: TagClass, id: u64, inner: Vec<StructureTag>) -> StructureTag {
        StructureTag {
            class,
            id,
            payload: PL::C(inner),
        }
    }

    /// A SearchResultEntry (RFC 4511 §4.5.2) as the wire carries it.
    fn result(dn: Vec<u8>, attributes: Vec<(Vec<u8>, Vec<Vec<u8>>)>) -> ResultEntry {
        let attributes = attributes
            .into_iter()
            .map(|(name, values)| {
                let values = values.into_iter().map(octets).collect();
                let set = constructed(TagClass::Universal, 17, values);
                constructed(TagClass::Universal, 16, vec![octets(name), set])
            })
            .collect();
        let list = constructed(TagClass::Universal, 16, attributes);
        ResultEntry::new(constructed(
            TagClass::Application,
            4,
            vec![octets(dn), list],
        ))
    }

    /// Any BER tree: primitives and constructions of any tag, nested.
    fn any_tag() -> impl Strategy<Value = StructureTag> {
        let leaf = (0u64..32, proptest::collection::vec(any::<u8>(), 0..24))
            .prop_map(|(id, b)| StructureTag { id, ..octets(b) });
        leaf.prop_recursive(4, 48, 6, |inner| {
            (0u64..32, proptest::collection::vec(inner, 0..6))
                .prop_map(|(id, children)| constructed(TagClass::Universal, id, children))
        })
    }

    fn hostile_value() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            ".{0,30}".prop_map(String::into_bytes),
            "(\\{COMPTE\\}|\\{MAIL\\})?[AISX]?:[A-Za-z]{0,10}:[0-9]{0,9}:[0-9]{0,9}"
                .prop_map(String::into_bytes),
            "[0-9]{9,10}[A-Za-z]{1,2}|[0-9]{4}-[0-9]{2}-[0-9]{2}|[0-9]{8}|[a-z.]{1,9}@[a-z]{1,9}\\.fr"
                .prop_map(String::into_bytes),
            proptest::collection::vec(any::<u8>(), 0..40),
        ]
    }

    fn attribute_name() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::sample::select(ATTRIBUTES).prop_map(|name| {
                // Servers spell names as the schema or the request does.
                name.chars().enumerate().map(|(i, c)| if i % 3 == 0 { c.to_ascii_uppercase() } else { c }).collect()
            }),
            4 => proptest::sample::select(ATTRIBUTES).prop_map(str::to_owned),
            1 => "[a-zA-Z;-]{1,12}",
        ]
    }

    fn attributes() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<Vec<u8>>)>> {
        let values = proptest::collection::vec(hostile_value(), 0..4);
        proptest::collection::vec(
            (attribute_name().prop_map(String::into_bytes), values),
            0..12,
        )
    }

    fn sorted<V: Ord + Clone>(map: &HashMap<String, Vec<V>>) -> Vec<(String, Vec<V>)> {
        let mut pairs: Vec<(String, Vec<V>)> = map
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                v.sort();
                (k.clone(), v)
            })
            .collect();
        pairs.sort();
        pairs
    }

    proptest! {
        #[test]
        fn any_search_result_gives_an_account_or_a_typed_refusal(tag in any_tag(), whole in any::<bool>()) {
            // As sent, or inside an entry's envelope, so that the walk gets past it.
            let tag = if whole { constructed(TagClass::Application, 4, vec![tag]) } else { tag };
            let outcome = Account::from_result(ResultEntry::new(tag));
            let typed = matches!(outcome, Ok(_) | Err(UnusableEntry::Malformed | UnusableEntry::NoUid { .. }));
            prop_assert!(typed);
        }

        #[test]
        fn a_well_formed_result_reads_as_ldap3_reads_it(dn in ".{0,40}", attributes in attributes()) {
            let mut seen = HashSet::new();
            let unique: Vec<_> = attributes.into_iter().filter(|(name, _)| seen.insert(name.clone())).collect();
            let ours = search_entry(result(dn.clone().into_bytes(), unique.clone()));
            let theirs = SearchEntry::construct(result(dn.into_bytes(), unique));
            let ours = ours.map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&ours.dn, &theirs.dn);
            prop_assert_eq!(sorted(&ours.attrs), sorted(&theirs.attrs));
            prop_assert_eq!(sorted(&ours.bin_attrs), sorted(&theirs.bin_attrs));
        }

        #[test]
        fn a_hostile_entry_is_an_account_of_valid_values_or_skipped(dn in proptest::collection::vec(any::<u8>(), 0..30), attributes in attributes()) {
            let uids: Vec<Login> = attributes
                .iter()
                .filter(|(name, _)| name.eq_ignore_ascii_case(b"uid"))
                .flat_map(|(_, values)| values.iter().filter_map(|v| std::str::from_utf8(v).ok()?.parse().ok()))
                .collect();
            match Account::from_result(result(dn, attributes.clone())) {
                Ok(account) => {
                    prop_assert!(uids.contains(&account.login), "{:?} not among {uids:?}", account.login);
                    if let Some(state) = &account.state {
                        prop_assert_eq!(&state.to_string().parse::<AccountState>(), &Ok(state.clone()));
                    }
                    if let Some(ine) = &account.ine {
                        prop_assert_eq!(&ine.as_str().parse::<Ine>(), &Ok(ine.clone()));
                    }
                    if let Some(email) = &account.personal_email {
                        prop_assert_eq!(&email.as_str().parse::<Email>(), &Ok(email.clone()));
                    }
                    if let Some(born) = &account.date_of_birth {
                        prop_assert_eq!(born.iso().parse::<DateOfBirth>(), Ok(*born));
                    }
                }
                Err(UnusableEntry::NoUid { .. }) => {
                    let sent: usize = attributes.iter().filter(|(n, _)| n.eq_ignore_ascii_case(b"uid")).map(|(_, v)| v.len()).sum();
                    prop_assert!(sent == 0 || uids.len() < sent, "every uid was a login: {uids:?}");
                }
                Err(UnusableEntry::Malformed) => {}
            }
        }
    }

    #[test]
    fn a_search_result_with_a_dn_that_is_not_utf8_is_skipped_not_a_panic() {
        let uid = (b"uid".to_vec(), vec![b"ldurand".to_vec()]);
        let outcome = Account::from_result(result(b"uid=l\xe9a,ou=people".to_vec(), vec![uid]));
        assert!(
            matches!(outcome, Err(UnusableEntry::Malformed)),
            "{outcome:?}"
        );
        let truncated = ResultEntry::new(constructed(TagClass::Application, 4, vec![]));
        assert!(matches!(
            Account::from_result(truncated),
            Err(UnusableEntry::Malformed)
        ));
    }

    #[test]
    fn an_attribute_sent_under_two_spellings_keeps_all_its_values() {
        let account = Account::from_result(result(
            b"uid=ldurand,ou=people".to_vec(),
            vec![
                (b"uid".to_vec(), vec![b"ldurand".to_vec()]),
                (b"eduPersonAffiliation".to_vec(), vec![b"student".to_vec()]),
                (b"edupersonaffiliation".to_vec(), vec![b"member".to_vec()]),
            ],
        ))
        .unwrap();
        let mut affiliations = account.affiliations.clone();
        affiliations.sort();
        assert_eq!(affiliations, ["member", "student"]);
    }

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
