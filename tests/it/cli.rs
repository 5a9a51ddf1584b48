//! The `guichet` command: help, configuration checks, start-up failures, and the
//! one-command demo.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common;

fn guichet() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guichet"));
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    for (key, _) in std::env::vars() {
        if key.starts_with("GUICHET_") {
            command.env_remove(key);
        }
    }
    command
}

fn write_settings(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("guichet.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn every_command_has_help() {
    for command in [
        &[][..],
        &["serve"],
        &["dev"],
        &["check-config"],
        &["migrate"],
    ] {
        let output = guichet().args(command).arg("--help").output().unwrap();
        assert!(output.status.success(), "{command:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        assert!(text.contains("Usage: guichet"), "{text}");
    }
}

#[test]
fn check_config_accepts_the_shipped_profiles() {
    let dir = tempfile::tempdir().unwrap();
    for profile in ["paris-cite", "perpignan", "sorbonne"] {
        let text =
            common::settings_text("ldap://127.0.0.1:389", "sqlite://x.db", dir.path(), profile);
        let path = write_settings(dir.path(), &text);
        let output = guichet().arg("check-config").arg(&path).output().unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains(profile));
    }
}

#[test]
fn a_bad_setting_exits_2_with_one_line_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::settings_text(
        "ldap://127.0.0.1:389",
        "sqlite://x.db",
        dir.path(),
        "sorbonne",
    )
    .replace("pool_size = 4", "pool_size = \"many\"");
    let path = write_settings(dir.path(), &text);
    let output = guichet().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("directory.pool_size"), "{stderr}");
    // The same check applies to `serve`, and to values from the environment.
    let text = common::settings_text(
        "ldap://127.0.0.1:389",
        "sqlite://x.db",
        dir.path(),
        "sorbonne",
    );
    let path = write_settings(dir.path(), &text);
    let output = guichet()
        .args(["serve", "--config"])
        .arg(&path)
        .env("GUICHET_SERVER__LISTEN", "nowhere")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("server.listen"));
}

#[test]
fn a_secret_can_come_from_a_file_named_by_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let text = common::settings_text(
        "ldap://127.0.0.1:389",
        "sqlite://x.db",
        dir.path(),
        "paris-cite",
    )
    .replace("bind_password = \"guichet-dev-secret\"\n", "");
    let path = write_settings(dir.path(), &text);
    let missing = guichet().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("directory.bind_password"));
    let secret = dir.path().join("ldap-secret");
    std::fs::write(&secret, "from-file\n").unwrap();
    let output = guichet()
        .arg("check-config")
        .arg(&path)
        .env("GUICHET_DIRECTORY__BIND_PASSWORD_FILE", &secret)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `guichet serve` on these settings: its exit code and standard error.
fn serve_failure(dir: &std::path::Path, text: &str) -> (Option<i32>, String) {
    let path = write_settings(dir, text);
    let output = guichet()
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

#[test]
fn serve_exits_1_when_the_directory_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let text = common::settings_text("ldap://127.0.0.1:1", &db, dir.path(), "paris-cite");
    let (code, stderr) = serve_failure(dir.path(), &text);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: directory:"), "{stderr}");
    assert!(
        !stderr.contains("guichet-dev-secret"),
        "no secret in errors"
    );
}

#[test]
fn serve_exits_1_when_the_database_cannot_be_reached() {
    let dir = tempfile::tempdir().unwrap();
    let db = "postgres://guichet:hunter2@127.0.0.1:1/guichet";
    let text = common::settings_text("ldap://127.0.0.1:1", db, dir.path(), "paris-cite");
    let (code, stderr) = serve_failure(dir.path(), &text);
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error: database:"), "{stderr}");
    assert!(
        !stderr.contains("hunter2"),
        "no password in errors: {stderr}"
    );
}

#[test]
fn migrate_brings_a_sqlite_database_up_to_date() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let path = write_settings(
        dir.path(),
        &common::settings_text("ldap://127.0.0.1:1", &db, dir.path(), "paris-cite"),
    );
    for _ in 0..2 {
        let output = guichet()
            .args(["migrate", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// Runs `guichet dev` until its banner, returns the banner and the process.
fn start_dev(data: &std::path::Path, extra: &[&str]) -> (String, std::process::Child) {
    let mut child = guichet()
        .args(["dev", "--port", "0", "--data-dir"])
        .arg(data)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // A thread reads standard output to its end, so the pipe stays open while the
    // demo runs; the banner comes back through a channel.
    let stdout = child.stdout.take().unwrap();
    let (send, receive) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut banner = String::new();
        let mut sent = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            banner.push_str(&line);
            banner.push('\n');
            if line.contains("Stop with Ctrl-C") && !sent {
                let _ = send.send(banner.clone());
                sent = true;
            }
        }
        if !sent {
            let _ = send.send(banner);
        }
    });
    let banner = receive
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_default();
    (banner, child)
}

fn stop(mut child: std::process::Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_a_working_demo_and_keeps_its_data_on_the_second_run() {
    let data = tempfile::Builder::new()
        .prefix("guichet-dev-")
        .tempdir()
        .unwrap();
    let (banner, child) = start_dev(data.path(), &[]);
    assert!(banner.contains("started with fresh data"), "{banner}");
    let base = banner
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Student pages")
                .map(|u| u.trim().trim_end_matches('/').to_owned())
        })
        .unwrap_or_else(|| panic!("no URL in: {banner}"));
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        reqwest::get(format!("{base}/dev/mail"))
            .await
            .unwrap()
            .status(),
        200
    );
    // The demo application signs in through Guichet: its client is registered.
    assert!(banner.contains("/dev/app"), "{banner}");
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let start = browser
        .get(format!("{base}/dev/app/start"))
        .send()
        .await
        .unwrap();
    let authorize = start.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        authorize.starts_with("/authorize?") && authorize.contains("client_id=demo"),
        "{authorize}"
    );
    let to_login = browser
        .get(format!("{base}{authorize}"))
        .send()
        .await
        .unwrap();
    assert_eq!(to_login.status(), 303, "a known client, sent to sign in");
    assert!(
        to_login.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("/login?next=")
    );
    the_cas_demo_signs_in(&base, &banner).await;
    stop(child);

    let (banner, child) = start_dev(data.path(), &[]);
    assert!(banner.contains("kept the data"), "{banner}");
    stop(child);

    let (banner, child) = start_dev(data.path(), &["--reset"]);
    assert!(banner.contains("started with fresh data"), "{banner}");
    stop(child);
}

/// The CAS demo page: a registered service; a student signs in through
/// `/cas/login` and the page shows what the validation gave.
async fn the_cas_demo_signs_in(base: &str, banner: &str) {
    assert!(banner.contains("/dev/cas-app"), "{banner}");
    let browser = common::browser();
    let page = browser
        .get(format!("{base}/dev/cas-app"))
        .send()
        .await
        .unwrap();
    let html = page
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&amp;", "&");
    let login = html
        .split("href=\"")
        .find_map(|rest| rest.strip_prefix("/cas/login?"))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("a CAS sign-in link: {html}"));
    let to_login = browser
        .get(format!("{base}/cas/login?{login}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        to_login.status(),
        303,
        "a registered service, sent to sign in"
    );
    let next_page = to_login.headers()["location"].to_str().unwrap().to_owned();
    let form = browser
        .get(format!("{base}{next_page}"))
        .send()
        .await
        .unwrap();
    let csrf = common::csrf_of(&form.text().await.unwrap());
    let next = common::oidc::login_next(&next_page);
    let signed = browser
        .post(format!("{base}/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", "cbernard"),
            ("password", "Demo-Passw0rd!"),
            ("next", next.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let back = signed.headers()["location"].to_str().unwrap().to_owned();
    let to_page = browser.get(format!("{base}{back}")).send().await.unwrap();
    assert_eq!(to_page.status(), 302);
    let with_ticket = to_page.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        with_ticket.contains("/dev/cas-app?ticket=ST-"),
        "{with_ticket}"
    );
    let shown = browser
        .get(&with_ticket)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(shown.contains("cbernard"), "{shown}");
    assert!(shown.contains("authenticationSuccess"), "{shown}");
}

#[test]
fn dev_refuses_an_unknown_profile() {
    let data = tempfile::tempdir().unwrap();
    let output = guichet()
        .args(["dev", "--profile", "nowhere", "--data-dir"])
        .arg(data.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown profile"));
}

#[test]
fn accounts_invite_resend_queues_an_invitation() {
    let ldap = common::TestDirectory::start();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let text = common::settings_text(&ldap.url(), &db, dir.path(), "paris-cite");
    let path = write_settings(dir.path(), &text);
    let run = |login: &str| {
        guichet()
            .args(["accounts", "invite", "--resend", login, "--config"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let output = run("ldurand");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("queued to lea.durand@example.org"));
    let output = run("cbernard");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("not awaiting activation"));
    let output = run("bad login*");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn clients_and_keys_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let text = common::settings_text("ldapi://%2Ftmp%2Fnone", &db, dir.path(), "paris-cite");
    let path = write_settings(dir.path(), &text);
    let run = |args: &[&str]| {
        let output = guichet()
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "clients",
        "add",
        "moodle",
        "--name",
        "Moodle",
        "--redirect-uri",
        "https://moodle.univ-demo.fr/admin/oauth2callback.php",
    ]);
    assert_eq!(code, Some(0), "{err}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .expect("the secret, once")
        .trim()
        .to_owned();
    assert!(secret.len() >= 43, "256 bits: {secret}");
    let (_, listed, _) = run(&["clients", "list"]);
    assert!(
        listed.contains("moodle") && !listed.contains(&secret),
        "{listed}"
    );
    let (_, shown, _) = run(&["clients", "show", "moodle"]);
    assert!(
        shown.contains("oauth2callback") && !shown.contains(&secret),
        "{shown}"
    );
    // The database and its journal files: the secret itself is nowhere.
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("g.db")
        {
            let stored = std::fs::read(&path).unwrap();
            assert!(
                !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "only the hash is stored ({})",
                path.display()
            );
        }
    }
    let (code, _, err) = run(&[
        "clients",
        "add",
        "moodle",
        "--name",
        "x",
        "--redirect-uri",
        "https://a.example/cb",
    ]);
    assert_eq!(code, Some(2), "an existing id: {err}");
    let (code, _, err) = run(&[
        "clients",
        "add",
        "evil",
        "--name",
        "x",
        "--redirect-uri",
        "http://evil.example/cb",
    ]);
    assert_eq!(code, Some(2));
    assert!(err.contains("https is required"), "{err}");
    // Keys: the first listing creates nothing (no serve yet); the first rotation
    // makes keys that sign at once (no client holds any key yet).
    let count = |listing: &str, state: &str| listing.lines().filter(|l| l.contains(state)).count();
    let (code, out, err) = run(&["keys", "rotate"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(count(&out, " signs now;"), 3, "{out}");
    // The next rotation publishes its keys ahead: the old ones sign until then.
    let (code, out, err) = run(&["keys", "rotate", "--overlap", "1h"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(count(&out, " signs from "), 3, "{out}");
    let (_, keys, _) = run(&["keys", "list"]);
    assert_eq!(count(&keys, "published, signs from"), 3, "{keys}");
    assert_eq!(count(&keys, "active until"), 3, "{keys}");
    // Too short a lead for the caches is refused, and changes nothing.
    let (code, _, err) = run(&["keys", "rotate", "--publish-ahead", "1min"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("--immediately"), "{err}");
    assert_eq!(run(&["keys", "list"]).1, keys);
    // A compromised key: the new keys sign now, every other one is retired now
    // and stays published for the overlap.
    let (code, out, err) = run(&["keys", "rotate", "--immediately"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(count(&out, " signs now;"), 3, "{out}");
    let (_, keys, _) = run(&["keys", "list"]);
    assert_eq!(count(&keys, "  active"), 3, "{keys}");
    assert_eq!(count(&keys, "retired "), 6, "{keys}");
    assert!(
        !keys.contains("BEGIN") && !keys.contains("private"),
        "{keys}"
    );
    let (code, out, _) = run(&["clients", "remove", "moodle"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed"));
    assert_eq!(run(&["clients", "show", "moodle"]).0, Some(1));
}

#[test]
fn cas_services_are_managed_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("g.db").display());
    let text = common::settings_text("ldapi://%2Ftmp%2Fnone", &db, dir.path(), "paris-cite");
    let path = write_settings(dir.path(), &text);
    let run = |args: &[&str]| {
        let output = guichet()
            .arg("cas-services")
            .args(args)
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, out, err) = run(&[
        "add",
        "ent",
        "--display-name",
        "ENT",
        "--url",
        "https://ent.univ-demo.fr/uPortal/Login",
        "--attribute",
        "email",
        "--attribute",
        "eduperson_affiliation",
        "--single-logout",
        "service",
    ]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("CAS service ent registered"), "{out}");
    let (code, _, err) = run(&[
        "add",
        "moodle",
        "--display-name",
        "Moodle",
        "--pattern",
        r"https://moodle\.univ-demo\.fr/.*",
        "--proxy-callbacks",
        r"https://moodle\.univ-demo\.fr/pgt",
    ]);
    assert_eq!(code, Some(0), "{err}");
    // Refused with the reason: a loose pattern, a claim the mapping lacks, a name taken.
    let (code, _, err) = run(&[
        "add",
        "any",
        "--display-name",
        "Tout",
        "--pattern",
        "https://.*",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("the host written out"), "{err}");
    let (code, _, err) = run(&[
        "add",
        "x",
        "--display-name",
        "X",
        "--url",
        "https://x.univ-demo.fr/",
        "--attribute",
        "userPassword",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a claim of the claim mapping"), "{err}");
    let (code, _, err) = run(&[
        "add",
        "ent",
        "--display-name",
        "ENT",
        "--url",
        "https://ent.univ-demo.fr/",
    ]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("exists already"), "{err}");

    let (_, listed, _) = run(&["list"]);
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains("moodle  Moodle  pattern https://moodle"),
        "{listed}"
    );
    let (_, shown, _) = run(&["show", "ent"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["attributes"],
        serde_json::json!(["email", "eduperson_affiliation"])
    );
    assert_eq!(shown["single_logout"], "service");
    let (code, out, _) = run(&["remove", "ent"]);
    assert_eq!(code, Some(0));
    assert!(out.contains("removed"), "{out}");
    assert_eq!(run(&["show", "ent"]).0, Some(1));
}
