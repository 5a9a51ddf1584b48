//! Claims about a student, from directory attributes, by scope. `sub` is the entry's
//! `entryUUID`: stable across renames and never reassigned with a login.

use serde_json::{Map, Value, json};

use crate::directory::Account;

/// The scopes Guichet knows; others are ignored (OIDC Core §3.1.2.1).
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// The subject identifier of an account.
pub fn subject(account: &Account) -> String {
    account.uuid.clone().unwrap_or_else(|| account.dn.clone())
}

/// The known scopes of a request, in a stable order, space-separated.
pub fn granted(requested: &str) -> String {
    let asked: Vec<&str> = requested.split_whitespace().collect();
    SCOPES
        .iter()
        .filter(|scope| asked.contains(scope))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

/// UserInfo claims for `scope`.
pub fn userinfo(account: &Account, scope: &str) -> Value {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(subject(account)));
    let mut put = |name: &str, value: Option<Value>| {
        if let Some(value) = value {
            claims.insert(name.into(), value);
        }
    };
    if scopes.contains(&"profile") {
        put("name", account.display_name.clone().map(Value::from));
        put("given_name", account.given_name.clone().map(Value::from));
        put("family_name", account.surname.clone().map(Value::from));
        put("preferred_username", Some(json!(account.login.as_str())));
        put(
            "student_number",
            account.student_id.as_ref().map(|s| json!(s.as_str())),
        );
        put(
            "eduperson_affiliation",
            (!account.affiliations.is_empty()).then(|| json!(account.affiliations)),
        );
    }
    if scopes.contains(&"email") {
        // The institutional address is the one the university vouches for.
        put(
            "email",
            account.institutional_email.clone().map(Value::from),
        );
        put(
            "email_verified",
            account.institutional_email.as_ref().map(|_| json!(true)),
        );
    }
    Value::Object(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_scopes_are_dropped_and_order_is_stable() {
        assert_eq!(
            granted("email openid admin profile"),
            "openid profile email"
        );
        assert_eq!(granted("profile"), "profile");
    }
}
