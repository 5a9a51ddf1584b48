//! Claims about a student, from directory attributes, by scope. `sub` is the entry's
//! `entryUUID`: stable across renames and never reassigned with a login.

use serde_json::{Map, Value, json};

use crate::cas::responses::AttributeName;
use crate::config::{AttributeSource, ClaimMapping};
use crate::directory::Account;

/// The subject identifier of an account.
pub fn subject(account: &Account) -> String {
    account.uuid.clone().unwrap_or_else(|| account.dn.clone())
}

/// Every scope Guichet knows, in a stable order: `openid`, the mapping's scopes,
/// `offline_access`. Others are ignored (OIDC Core §3.1.2.1).
pub fn scopes(mapping: &ClaimMapping) -> Vec<&str> {
    let mut all = vec!["openid"];
    all.extend(mapping.scopes());
    all.push("offline_access");
    all
}

/// The claims discovery lists: the ID token's and the mapping's.
pub fn supported(mapping: &ClaimMapping) -> Vec<&str> {
    let mut all = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "sid",
        "at_hash",
        "azp",
    ];
    all.extend(mapping.claim_names());
    if mapping.claim_names().contains(&"email") {
        all.push("email_verified");
    }
    all
}

/// The known scopes of a request, in a stable order, space-separated.
pub fn granted(requested: &str, mapping: &ClaimMapping) -> String {
    let asked: Vec<&str> = requested.split_whitespace().collect();
    scopes(mapping)
        .into_iter()
        .filter(|scope| asked.contains(scope))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Addresses Guichet can vouch for: the institutional one is the university's
/// own, and every personal one was confirmed by a link.
const VERIFIED_EMAIL_ATTRIBUTES: [&str; 2] = ["mail", "supannMailPerso"];

/// UserInfo claims for `scope`, through the mapping. `email_verified` comes with
/// an `email` read from an attribute Guichet vouches for.
pub fn userinfo(account: &Account, scope: &str, mapping: &ClaimMapping) -> Value {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(subject(account)));
    for scope in scope.split_whitespace() {
        for (claim, source) in mapping.claims(scope) {
            if let Some(value) = value_of(account, source) {
                claims.insert(claim.into(), value);
                if claim == "email" && vouched_for(source) {
                    claims.insert("email_verified".into(), json!(true));
                }
            }
        }
    }
    Value::Object(claims)
}

/// CAS attributes (§2.5.2 `cas:attributes`): each released claim with every
/// value of the first of its attributes that has any, in the order released.
/// A claim without a value is left out, as for OIDC.
pub fn cas_attributes(
    account: &Account,
    released: &[AttributeName],
    mapping: &ClaimMapping,
) -> Vec<(AttributeName, Vec<String>)> {
    released
        .iter()
        .filter_map(|name| {
            let values = first_values(account, mapping.source(name.as_str())?)?;
            Some((name.clone(), values.to_vec()))
        })
        .collect()
}

fn vouched_for(source: &AttributeSource) -> bool {
    source.attributes().iter().all(|name| {
        VERIFIED_EMAIL_ATTRIBUTES
            .iter()
            .any(|verified| verified.eq_ignore_ascii_case(name))
    })
}

/// The values of the first of the source's attributes that has any.
fn first_values<'a>(account: &'a Account, source: &AttributeSource) -> Option<&'a [String]> {
    source
        .attributes()
        .iter()
        .map(|name| account.values(name))
        .find(|values| !values.is_empty())
}

fn value_of(account: &Account, source: &AttributeSource) -> Option<Value> {
    let values = first_values(account, source)?;
    Some(if source.many() {
        json!(values)
    } else {
        json!(values[0])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_addresses_guichet_vouches_for_are_verified() {
        for (source, verified) in [
            ("mail", true),
            ("supannMailPerso", true),
            ("SUPANNMAILPERSO|mail", true),
            ("mailForwardingAddress", false),
            ("mail|mailAlternateAddress", false),
        ] {
            let source: AttributeSource = source.parse().unwrap();
            assert_eq!(vouched_for(&source), verified, "{source}");
        }
    }

    #[test]
    fn unknown_scopes_are_dropped_and_order_is_stable() {
        let mapping = ClaimMapping::default();
        assert_eq!(
            granted("email openid admin offline_access profile", &mapping),
            "openid email profile offline_access"
        );
        assert_eq!(granted("profile", &mapping), "profile");
    }
}
