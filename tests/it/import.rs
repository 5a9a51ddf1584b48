//! `guichet import FILE.csv` against a real slapd with the import account's ACLs.

use std::process::Command;

use crate::common::{self, TestDirectory, people_dn};

const IMPORT: &str = "\n[directory.import]\nbind_dn = \"cn=guichet-import,ou=services,dc=univ-demo,dc=fr\"\nbind_password = \"guichet-import-secret\"\n";

fn run_import(
    ldap: &TestDirectory,
    dir: &std::path::Path,
    csv: &str,
) -> (Option<i32>, String, String) {
    let db = format!("sqlite://{}", dir.join("g.db").display());
    let settings = common::settings_text(&ldap.url(), &db, dir, "sorbonne") + IMPORT;
    std::fs::write(dir.join("guichet.toml"), settings).unwrap();
    std::fs::write(dir.join("students.csv"), csv).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_guichet"))
        .args(["import", "--config"])
        .arg(dir.join("guichet.toml"))
        .arg(dir.join("students.csv"))
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

const CSV: &str = "student_number;ine;given_name;surname;personal_email\n\
                   28900001;1234567890K;Inès;Dupont-Moreau;ines.dm@example.org\n\
                   28900002;12345;Jules;Faure;jules@example.org\n\
                   28900003;223344556AB;Zoé;O'Brien (Dupont*);zoe.ob@example.org\n\
                   28900004;223344557AB;;Vide;pas-une-adresse\n\
                   28700002;556677889IJ;Hugo;Moreau-Nouveau;hugo.moreau@example.org\n";

#[test]
fn imports_good_rows_reports_bad_ones_and_is_idempotent() {
    let ldap = TestDirectory::start();
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = run_import(&ldap, dir.path(), CSV);
    assert_eq!(code, Some(3), "some rows rejected: {stdout}{stderr}");
    assert!(stdout.contains("line 3: ine:"), "{stdout}");
    let line5 = stdout
        .lines()
        .find(|l| l.starts_with("line 5: "))
        .unwrap_or_default();
    assert!(
        line5.contains("given_name") && line5.contains("personal_email"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 created, 1 updated, 0 unchanged, 2 rejected"),
        "{stdout}"
    );

    let created = people_dn("28900001");
    assert_eq!(
        ldap.read(&created, "supannRessourceEtat"),
        vec!["{COMPTE}I:SupannCree"]
    );
    assert_eq!(ldap.read(&created, "supannCodeINE"), vec!["1234567890K"]);
    assert_eq!(ldap.read(&created, "givenName"), vec!["Inès"]);
    assert!(
        ldap.read(&created, "userPassword").is_empty(),
        "no password before activation"
    );
    assert_eq!(
        ldap.read(&people_dn("28900003"), "sn"),
        vec!["O'Brien (Dupont*)"]
    );
    assert_eq!(
        ldap.read(&people_dn("28700002"), "sn"),
        vec!["Moreau-Nouveau"]
    );

    // The same file again changes nothing.
    let (code, stdout, _) = run_import(&ldap, dir.path(), CSV);
    assert_eq!(code, Some(3));
    assert!(
        stdout.contains("0 created, 0 updated, 3 unchanged, 2 rejected"),
        "{stdout}"
    );
}

#[test]
fn an_active_account_keeps_the_e_mail_its_student_chose() {
    let ldap = TestDirectory::start();
    let dir = tempfile::tempdir().unwrap();
    let csv = "student_number;ine;given_name;surname;personal_email\n\
               28700001;5566778899H;Camille;Leroy;old.registration@example.org\n";
    let (code, stdout, _) = run_import(&ldap, dir.path(), csv);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(
        ldap.read(&people_dn("28700001"), "supannMailPerso"),
        vec!["camille.leroy@example.org"]
    );
}

#[test]
fn a_file_without_the_required_columns_is_refused_whole() {
    let ldap = TestDirectory::start();
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run_import(&ldap, dir.path(), "student_number,ine\n1,2\n");
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("missing column(s): given_name, surname, personal_email"),
        "{stderr}"
    );
}
