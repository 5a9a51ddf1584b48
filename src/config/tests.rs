use std::io::Write;

use super::*;
use crate::domain::Lang;

const BASE: &str = r#"
[server]
public_url = "http://localhost:8080/"
[database]
url = "sqlite://guichet.db"
[directory]
url = "ldap://127.0.0.1:389"
people_dn = "ou=people,dc=univ-demo,dc=fr"
bind_dn = "cn=guichet,ou=services,dc=univ-demo,dc=fr"
bind_password = "secret"
[mail]
from = "Université <noreply@univ-demo.fr>"
transport = { kind = "file", dir = "mail" }
"#;

fn with_profile(name: &str, extra: &str) -> String {
    let profile = std::fs::read_to_string(format!("profiles/{name}.toml")).unwrap();
    format!("{BASE}\n{extra}\n{profile}")
}

fn error_of(text: &str) -> ConfigError {
    Settings::from_toml(text).expect_err("the configuration was accepted")
}

#[test]
fn the_three_shipped_profiles_load() {
    for name in ["paris-cite", "perpignan", "sorbonne"] {
        let settings = Settings::from_toml(&with_profile(name, "")).unwrap();
        assert_eq!(settings.profile.id, name);
        assert_eq!(settings.profile.languages.default, Lang::Fr);
    }
    let perpignan = Settings::from_toml(&with_profile("perpignan", "")).unwrap();
    assert_eq!(
        perpignan.profile.identity.method,
        IdentityMethod::StudentNumberIne
    );
    assert_eq!(
        perpignan.profile.activation.order,
        ActivationOrder::PasswordFirst
    );
    assert_eq!(perpignan.profile.password.min_classes, 3);
}

#[test]
fn the_example_settings_load_once_secrets_are_given() {
    let example = std::fs::read_to_string("config/guichet.example.toml")
        .unwrap()
        .replace(
            "bind_password_file = \"/run/secrets/guichet-ldap\"",
            "bind_password = \"x\"",
        )
        .replace(
            "password_file = \"/run/secrets/guichet-smtp\"",
            "password = \"y\"",
        )
        .replace(
            "key_encryption_key_file = \"/run/secrets/guichet-oidc-kek\"",
            "key_encryption_key = \"z\"",
        );
    let profile = std::fs::read_to_string("profiles/sorbonne.toml").unwrap();
    let settings = Settings::from_toml(&format!("{example}\n{profile}")).unwrap();
    assert!(settings.secure_cookies());
    assert_eq!(
        settings.oidc.claims,
        super::ClaimMapping::default(),
        "the example shows the default mapping"
    );
    assert_eq!(settings.directory.password_write, PasswordWrite::Hash);
}

#[test]
fn a_bad_value_names_its_key() {
    let bad_port = with_profile("paris-cite", "").replace(
        "public_url = \"http://localhost:8080/\"",
        "public_url = \"http://localhost:8080/\"\nlisten = \"not-an-address\"",
    );
    let error = error_of(&bad_port);
    assert_eq!(error.key, "server.listen");
    let error =
        error_of(&with_profile("paris-cite", "").replace("ldap://127.0.0.1:389", "http://x"));
    assert_eq!(error.key, "directory.url");
    assert!(error.message.contains("ldap://"));
    let error = error_of(&with_profile("paris-cite", "").replace("#1d1d6b", "blue"));
    assert_eq!(error.key, "profile.branding.primary_color");
    assert!(error.message.contains("#rrggbb"), "{}", error.message);
}

#[test]
fn a_missing_or_unknown_key_is_named() {
    let error = error_of(&with_profile("paris-cite", "").replace("bind_dn =", "bind_dn_typo ="));
    assert_eq!(error.key, "directory.bind_dn_typo");
    assert!(error.message.contains("unknown key"), "{}", error.message);
    let error = error_of(BASE);
    assert_eq!(error.key, "profile");
    assert!(error.message.contains("required"));
}

#[test]
fn profile_rules_are_checked() {
    let error =
        error_of(&with_profile("paris-cite", "").replace("min_length = 8", "min_length = 4"));
    assert_eq!(error.key, "profile.password.min_length");
    let error =
        error_of(&with_profile("sorbonne", "").replace("reset = \"12h\"", "reset = \"30days\""));
    assert_eq!(error.key, "profile.links.reset");
    let error = error_of(&with_profile("paris-cite", "").replace(
        "awaiting_states = [\"I:SupannCree\"]",
        "awaiting_states = [\"A:SupannActif\"]",
    ));
    assert_eq!(error.key, "profile.activation.awaiting_states");
    let error = error_of(
        &with_profile("sorbonne", "").replace("support-etudiants@univ-demo.fr", "not mail"),
    );
    assert_eq!(error.key, "profile.support.email");
}

#[test]
fn resource_bounds_have_safe_defaults_and_are_checked() {
    let settings = Settings::from_toml(&with_profile("paris-cite", "")).unwrap();
    assert_eq!(settings.server.header_read_timeout, Duration::from_secs(10));
    assert_eq!(settings.server.idle_timeout, Duration::from_secs(60));
    assert_eq!(settings.server.max_connections, 4096);
    assert!(
        settings.directory.bind_queue >= 60,
        "a lecture hall signing in together waits rather than being refused"
    );
    assert_eq!(settings.directory.bind_wait, Duration::from_secs(3));
    let server = |line: &str| {
        with_profile("paris-cite", "").replace(
            "public_url = \"http://localhost:8080/\"",
            &format!("public_url = \"http://localhost:8080/\"\n{line}"),
        )
    };
    for (line, key) in [
        ("header_read_timeout = \"0s\"", "server.header_read_timeout"),
        ("idle_timeout = \"0s\"", "server.idle_timeout"),
        ("max_connections = 0", "server.max_connections"),
    ] {
        assert_eq!(error_of(&server(line)).key, key);
    }
    let no_wait = with_profile("paris-cite", "").replace(
        "bind_password = \"secret\"",
        "bind_password = \"secret\"\nbind_wait = \"0s\"",
    );
    assert_eq!(error_of(&no_wait).key, "directory.bind_wait");
}

#[test]
fn secrets_can_come_from_files() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "from-a-file").unwrap();
    let text = with_profile("paris-cite", "").replace(
        "bind_password = \"secret\"",
        &format!("bind_password_file = \"{}\"", file.path().display()),
    );
    let settings = Settings::from_toml(&text).unwrap();
    assert_eq!(
        settings.directory.bind_password.expose_secret(),
        "from-a-file"
    );

    let both = with_profile("paris-cite", "").replace(
        "bind_password = \"secret\"",
        &format!(
            "bind_password = \"x\"\nbind_password_file = \"{}\"",
            file.path().display()
        ),
    );
    assert_eq!(error_of(&both).key, "directory.bind_password");
    let missing = with_profile("paris-cite", "").replace(
        "bind_password = \"secret\"",
        "bind_password_file = \"/nonexistent/secret\"",
    );
    assert_eq!(error_of(&missing).key, "directory.bind_password_file");
}

#[test]
fn secrets_never_show_in_debug_output() {
    let settings = Settings::from_toml(&with_profile("paris-cite", "")).unwrap();
    let debug = format!("{settings:?}");
    assert!(!debug.contains("\"secret\""), "{debug}");
    assert!(!debug.contains("sqlite://guichet.db"), "{debug}");
}
