//! Which directory attributes become which OpenID Connect claims, per scope
//! (`[oidc.claims.<scope>]`). A university maps its own attributes (a local
//! `supannEntiteAffectation`, a `eduPersonPrincipalName`) without code; a scope of
//! the settings replaces the default scope of the same name, and an empty table
//! removes it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

/// Claims Guichet sets itself; a mapping may not override them.
const RESERVED_CLAIMS: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "sid",
    "at_hash",
    "c_hash",
    "email_verified",
    "events",
];

/// Scopes with a meaning of their own in OpenID Connect.
const RESERVED_SCOPES: &[&str] = &["openid", "offline_access"];

/// Attributes no claim may expose: password hashes and keys of every common
/// schema (OpenLDAP, Samba, Active Directory, Kerberos, ppolicy, PKCS#12).
const SECRET_ATTRIBUTES: &[&str] = &[
    "userpassword",
    "authpassword",
    "sambantpassword",
    "sambalmpassword",
    "sambapasswordhistory",
    "unicodepwd",
    "ntpwdhistory",
    "lmpwdhistory",
    "pwdhistory",
    "krbprincipalkey",
    "krbextradata",
    "userpkcs12",
];

/// Where a claim's value comes from: the first of the listed attributes that has a
/// value (`displayName|cn`), one value, or every value as an array when the text
/// ends in `[]` (`eduPersonAffiliation[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeSource {
    attributes: Vec<String>,
    many: bool,
}

impl AttributeSource {
    /// The attribute names, in order of preference.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }

    /// Whether the claim is an array of every value.
    pub fn many(&self) -> bool {
        self.many
    }
}

impl FromStr for AttributeSource {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (names, many) = match text.trim().strip_suffix("[]") {
            Some(names) => (names, true),
            None => (text.trim(), false),
        };
        let attributes: Vec<String> = names.split('|').map(|n| n.trim().to_owned()).collect();
        for name in &attributes {
            // RFC 4512 §1.4: a descriptor is a letter, then letters, digits, hyphens.
            let mut chars = name.chars();
            let descriptor = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !descriptor {
                return Err(format!(
                    "`{text}` is not an attribute name (e.g. displayName, or displayName|cn, or eduPersonAffiliation[])"
                ));
            }
            if SECRET_ATTRIBUTES.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(format!("{name} holds a password and is never read"));
            }
        }
        Ok(AttributeSource { attributes, many })
    }
}

impl fmt::Display for AttributeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.attributes.join("|"),
            if self.many { "[]" } else { "" }
        )
    }
}

/// Claims by scope, checked: scope and claim names are tokens, reserved claims are
/// Guichet's own, attributes are LDAP descriptors.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "BTreeMap<String, BTreeMap<String, String>>")]
pub struct ClaimMapping {
    scopes: BTreeMap<String, BTreeMap<String, AttributeSource>>,
}

impl Default for ClaimMapping {
    /// The standard claims from SUPANN / eduPerson attributes, plus the student
    /// number and affiliations that the ENT and Moodle use.
    fn default() -> Self {
        let scope = |pairs: &[(&str, &[&str], bool)]| {
            pairs
                .iter()
                .map(|(claim, names, many)| {
                    let source = AttributeSource {
                        attributes: names.iter().map(|n| (*n).to_owned()).collect(),
                        many: *many,
                    };
                    ((*claim).to_owned(), source)
                })
                .collect()
        };
        let profile = scope(&[
            ("name", &["displayName", "cn"], false),
            ("given_name", &["givenName"], false),
            ("family_name", &["sn"], false),
            ("preferred_username", &["uid"], false),
            ("student_number", &["supannEtuId"], false),
            ("eduperson_affiliation", &["eduPersonAffiliation"], true),
        ]);
        let email = scope(&[("email", &["mail"], false)]);
        ClaimMapping {
            scopes: BTreeMap::from([("profile".to_owned(), profile), ("email".to_owned(), email)]),
        }
    }
}

fn is_token(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

impl TryFrom<BTreeMap<String, BTreeMap<String, String>>> for ClaimMapping {
    type Error = String;

    fn try_from(given: BTreeMap<String, BTreeMap<String, String>>) -> Result<Self, Self::Error> {
        let mut mapping = ClaimMapping::default();
        for (scope, claims) in given {
            if !is_token(&scope) || RESERVED_SCOPES.contains(&scope.as_str()) {
                return Err(format!("`{scope}` cannot be a scope of claims"));
            }
            if claims.is_empty() {
                mapping.scopes.remove(&scope);
                continue;
            }
            let mut parsed = BTreeMap::new();
            for (claim, source) in claims {
                if !is_token(&claim) || RESERVED_CLAIMS.contains(&claim.as_str()) {
                    return Err(format!(
                        "`{claim}` cannot be a mapped claim (scope {scope})"
                    ));
                }
                let source = source
                    .parse()
                    .map_err(|e| format!("{scope}.{claim}: {e}"))?;
                parsed.insert(claim, source);
            }
            mapping.scopes.insert(scope, parsed);
        }
        Ok(mapping)
    }
}

impl ClaimMapping {
    /// The scopes that carry claims, in a stable order.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scopes.keys().map(String::as_str)
    }

    /// The claims of `scope` and where each comes from.
    pub fn claims(&self, scope: &str) -> impl Iterator<Item = (&str, &AttributeSource)> {
        self.scopes
            .get(scope)
            .into_iter()
            .flatten()
            .map(|(claim, source)| (claim.as_str(), source))
    }

    /// Where a claim comes from, whichever scope carries it.
    pub fn source(&self, claim: &str) -> Option<&AttributeSource> {
        self.scopes.values().find_map(|claims| claims.get(claim))
    }

    /// Every claim name of every scope.
    pub fn claim_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .scopes
            .values()
            .flat_map(|claims| claims.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Every attribute the mapping reads, for the directory's searches.
    pub fn attributes(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .scopes
            .values()
            .flat_map(|claims| claims.values())
            .flat_map(|source| source.attributes.iter().cloned())
            .collect();
        names.sort_unstable_by_key(|n| n.to_ascii_lowercase());
        names.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &[(&str, &str)])]) -> BTreeMap<String, BTreeMap<String, String>> {
        pairs
            .iter()
            .map(|(scope, claims)| {
                let claims = claims
                    .iter()
                    .map(|(c, a)| ((*c).to_owned(), (*a).to_owned()))
                    .collect();
                ((*scope).to_owned(), claims)
            })
            .collect()
    }

    #[test]
    fn sources_read_alternatives_and_arrays() {
        let one: AttributeSource = "displayName|cn".parse().unwrap();
        assert_eq!(one.attributes(), ["displayName", "cn"]);
        assert!(!one.many());
        let all: AttributeSource = "eduPersonAffiliation[]".parse().unwrap();
        assert!(all.many());
        assert_eq!(all.to_string(), "eduPersonAffiliation[]");
        for bad in [
            "",
            "1abc",
            "display name",
            "a|",
            "mail)(uid=*",
            "userPassword",
            "UserPassword|cn",
            "sambaLMPassword",
            "cn|unicodePwd",
        ] {
            assert!(bad.parse::<AttributeSource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_scope_of_the_settings_replaces_the_default_and_an_empty_one_removes_it() {
        let mapping = ClaimMapping::try_from(table(&[
            ("profile", &[("name", "cn")]),
            ("email", &[]),
            (
                "supann",
                &[("supann_etablissement", "supannEtablissement[]")],
            ),
        ]))
        .unwrap();
        assert_eq!(mapping.scopes().collect::<Vec<_>>(), ["profile", "supann"]);
        assert_eq!(mapping.claims("profile").count(), 1);
        assert_eq!(mapping.attributes(), ["cn", "supannEtablissement"]);
    }

    #[test]
    fn reserved_names_are_refused() {
        for (scope, claim) in [
            ("profile", "sub"),
            ("profile", "email_verified"),
            ("openid", "x"),
            ("offline_access", "x"),
            ("pro file", "x"),
            ("profile", "a b"),
        ] {
            let given = table(&[(scope, &[(claim, "cn")])]);
            assert!(ClaimMapping::try_from(given).is_err(), "{scope}.{claim}");
        }
    }

    #[test]
    fn the_default_reads_supann_attributes() {
        for claims in ClaimMapping::default().scopes.values() {
            for source in claims.values() {
                assert_eq!(
                    source.to_string().parse::<AttributeSource>().as_ref(),
                    Ok(source)
                );
            }
        }
        let mapping = ClaimMapping::default();
        assert!(mapping.attributes().contains(&"supannEtuId".to_owned()));
        assert_eq!(mapping.claim_names().len(), 7);
    }
}
