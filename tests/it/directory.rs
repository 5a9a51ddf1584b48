//! The directory module against a real slapd built from `directory-schema/`.

use crate::common::{self, DEMO_PASSWORD, TestDirectory, directory_client, people_dn};
use guichet::directory::{AccountChange, BindOutcome, DirectoryError};
use guichet::domain::{AccountState, Email, Ine, Login, Password, StateKind, StudentId};
use time::macros::date;

#[tokio::test]
async fn a_password_written_through_guichet_binds_with_ldapwhoami() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let dn = people_dn(common::PENDING_UID);
    assert_eq!(
        ldap.whoami(&dn, "Nouveau-mot2passe"),
        49,
        "no password before activation"
    );
    directory
        .set_password(
            &dn,
            &Password::new("Nouveau-mot2passe"),
            AccountChange::default(),
        )
        .await
        .unwrap();
    let stored = ldap.read(&dn, "userPassword");
    assert_eq!(stored.len(), 1);
    assert_eq!(ldap.whoami(&dn, "Nouveau-mot2passe"), 0);
    assert_eq!(ldap.whoami(&dn, "wrong-password"), 49);
}

#[tokio::test]
async fn the_hash_is_argon2id_in_the_ldap_scheme() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let dn = people_dn(common::PENDING_UID);
    directory
        .set_password(
            &dn,
            &Password::new("Nouveau-mot2passe"),
            AccountChange::default(),
        )
        .await
        .unwrap();
    let stored = ldap.read(&dn, "userPassword");
    let value = &stored[0];
    assert!(
        value.starts_with("{ARGON2}$argon2id$v=19$m=8192,t=1,p=1$"),
        "{value}"
    );
}

#[tokio::test]
async fn password_modify_mode_lets_slapd_hash() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| {
        s.replace(
            "pool_size = 4",
            "pool_size = 4\npassword_write = \"password_modify\"",
        )
    });
    let dn = people_dn(common::PENDING_UID);
    directory
        .set_password(
            &dn,
            &Password::new("Autre-mot2passe"),
            AccountChange::default(),
        )
        .await
        .unwrap();
    assert_eq!(ldap.whoami(&dn, "Autre-mot2passe"), 0);
    assert_eq!(ldap.whoami(&dn, "wrong-password"), 49);
}

#[tokio::test]
async fn verifying_a_password_binds_as_the_user() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let dn = people_dn(common::ACTIVE_UID);
    assert_eq!(
        directory
            .verify_password(&dn, &Password::new(DEMO_PASSWORD))
            .await
            .unwrap(),
        BindOutcome::Accepted
    );
    assert_eq!(
        directory
            .verify_password(&dn, &Password::new("nope"))
            .await
            .unwrap(),
        BindOutcome::Rejected
    );
    // An empty password would be an anonymous bind, which succeeds: never accepted.
    assert_eq!(
        directory
            .verify_password(&dn, &Password::new(""))
            .await
            .unwrap(),
        BindOutcome::Rejected
    );
    let pending = people_dn(common::PENDING_UID);
    assert_eq!(
        directory
            .verify_password(&pending, &Password::new(DEMO_PASSWORD))
            .await
            .unwrap(),
        BindOutcome::Rejected
    );
}

#[tokio::test]
async fn lookups_by_email_student_number_and_login() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let email: Email = common::PENDING_EMAIL.to_uppercase().parse().unwrap();
    let found = directory.find_by_personal_email(&email).await.unwrap();
    assert_eq!(found.len(), 1, "matching ignores case");
    assert_eq!(found[0].login.as_str(), common::PENDING_UID);
    assert_eq!(found[0].state.as_ref().unwrap().kind, StateKind::Inactive);

    let student: StudentId = common::PERPIGNAN_STUDENT.parse().unwrap();
    let ine: Ine = common::PERPIGNAN_INE.parse().unwrap();
    let found = directory
        .find_by_student_and_ine(&student, &ine)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].login.as_str(), common::PERPIGNAN_UID);
    let wrong_ine: Ine = "9999999999Z".parse().unwrap();
    assert!(
        directory
            .find_by_student_and_ine(&student, &wrong_ine)
            .await
            .unwrap()
            .is_empty()
    );

    let login: Login = common::ACTIVE_UID.parse().unwrap();
    let account = directory.find_by_login(&login).await.unwrap().unwrap();
    assert_eq!(account.dn, people_dn(common::ACTIVE_UID));
    assert_eq!(account.state.unwrap().kind, StateKind::Active);
    let nobody: Login = "nobody".parse().unwrap();
    assert!(directory.find_by_login(&nobody).await.unwrap().is_none());
}

#[tokio::test]
async fn the_shared_email_is_reported_as_ambiguous() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let email: Email = common::SHARED_EMAIL.parse().unwrap();
    assert_eq!(
        directory
            .find_by_personal_email(&email)
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn filter_metacharacters_match_nothing() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    // `*` is legal in an e-mail local part; unescaped it would match every address.
    for hostile in [
        "*@example.org",
        "a*b@example.org",
        "*@*.org",
        "x\\2a@example.org",
    ] {
        if let Ok(email) = hostile.parse::<Email>() {
            let found = directory.find_by_personal_email(&email).await.unwrap();
            assert!(
                found.is_empty(),
                "{hostile} matched {} entries",
                found.len()
            );
        }
    }
    // The entry whose names hold metacharacters is read back intact.
    let login: Login = common::METACHAR_UID.parse().unwrap();
    let account = directory.find_by_login(&login).await.unwrap().unwrap();
    assert!(account.surname.unwrap().contains('*'));
}

#[tokio::test]
async fn a_state_change_keeps_the_other_resources_and_records_terms() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let dn = people_dn(common::PENDING_UID);
    ldap.admin_modify(&format!(
        "dn: {dn}\nchangetype: modify\nadd: supannRessourceEtatDate\nsupannRessourceEtatDate: {{MAIL}}A:SupannActif::\n"
    ));
    let login: Login = common::PENDING_UID.parse().unwrap();
    let account = directory.find_by_login(&login).await.unwrap().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let change = AccountChange::default()
        .set_state(&account, &AccountState::activated(date!(2026 - 11 - 22)))
        .accept_terms(&account, "2025-09", now)
        .activated_at(&account, now);
    directory
        .set_password(&dn, &Password::new("Nouveau-mot2passe"), change)
        .await
        .unwrap();
    let mut dated = ldap.read(&dn, "supannRessourceEtatDate");
    dated.sort();
    assert_eq!(
        dated,
        vec!["{COMPTE}A:SupannActif:20261122:", "{MAIL}A:SupannActif::"]
    );
    assert_eq!(
        ldap.read(&dn, "supannRessourceEtat"),
        vec!["{COMPTE}A:SupannActif"]
    );
    assert_eq!(ldap.read(&dn, "guichetTermsVersion"), vec!["2025-09"]);
    assert_eq!(ldap.whoami(&dn, "Nouveau-mot2passe"), 0);
}

#[tokio::test]
async fn a_concurrent_admin_change_makes_the_write_fail_whole() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let dn = people_dn(common::PENDING_UID);
    let login: Login = common::PENDING_UID.parse().unwrap();
    let account = directory.find_by_login(&login).await.unwrap().unwrap();
    // An admin locks the account between our read and our write.
    ldap.admin_modify(&format!(
        "dn: {dn}\nchangetype: modify\nreplace: supannRessourceEtatDate\nsupannRessourceEtatDate: {{COMPTE}}S:SupannVerrouille::\n-\nreplace: supannRessourceEtat\nsupannRessourceEtat: {{COMPTE}}S:SupannVerrouille\n"
    ));
    let change = AccountChange::default()
        .set_state(&account, &AccountState::activated(date!(2026 - 11 - 22)));
    let error = directory
        .set_password(&dn, &Password::new("Nouveau-mot2passe"), change)
        .await
        .unwrap_err();
    assert!(matches!(error, DirectoryError::Refused { .. }), "{error:?}");
    assert_eq!(
        ldap.whoami(&dn, "Nouveau-mot2passe"),
        49,
        "no password was written"
    );
    assert_eq!(
        ldap.read(&dn, "supannRessourceEtat"),
        vec!["{COMPTE}S:SupannVerrouille"]
    );
}

#[tokio::test]
async fn the_service_account_cannot_write_what_it_does_not_own() {
    let ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    let email: Email = "new.address@example.org".parse().unwrap();
    let dn = people_dn(common::ACTIVE_UID);
    directory
        .apply(&dn, AccountChange::default().set_personal_email(&email))
        .await
        .unwrap();
    assert_eq!(
        ldap.read(&dn, "supannMailPerso"),
        vec!["new.address@example.org"]
    );
    // `mail` (institutional address) belongs to the directory admins.
    let service = (
        guichet::dev::slapd::SERVICE_DN,
        guichet::dev::slapd::SERVICE_PASSWORD,
    );
    let change = |attribute: &str, value: &str| {
        format!("dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n")
    };
    assert_eq!(
        ldap.modify_as(service.0, service.1, &change("mail", "x@univ-demo.fr")),
        50
    );
    assert_eq!(
        ldap.modify_as(service.0, service.1, &change("sn", "Autre")),
        50
    );
    let other_class =
        format!("dn: {dn}\nchangetype: modify\nadd: objectClass\nobjectClass: labeledURIObject\n");
    assert_eq!(ldap.modify_as(service.0, service.1, &other_class), 50);
    let own =
        format!("dn: {dn}\nchangetype: modify\nadd: objectClass\nobjectClass: guichetAccount\n");
    assert_eq!(ldap.modify_as(service.0, service.1, &own), 0);
}

#[tokio::test]
async fn an_outage_gives_a_transient_error_and_recovery_needs_no_restart() {
    let mut ldap = TestDirectory::start();
    let directory = directory_client(&ldap, |s| s);
    directory.ping().await.unwrap();
    ldap.slapd.stop();
    let started = std::time::Instant::now();
    let error = directory.ping().await.unwrap_err();
    assert!(error.is_transient(), "{error:?}");
    let login: Login = common::ACTIVE_UID.parse().unwrap();
    assert!(
        directory
            .find_by_login(&login)
            .await
            .unwrap_err()
            .is_transient()
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "operations are bounded by the timeout"
    );
    ldap.slapd.start().unwrap();
    directory.ping().await.unwrap();
    assert!(directory.find_by_login(&login).await.unwrap().is_some());
}
