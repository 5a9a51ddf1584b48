//! The Guichet under load: the `guichet dev` set-up (a private slapd from
//! `directory-schema/`, SQLite or a fresh PostgreSQL database, a mail folder), students
//! added for the scenarios, one OIDC client, and the release `guichet serve` binary as
//! a child process, so that its memory and open files are its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use guichet::dev::{self, DevEnvironment, DevOptions, slapd};
use sqlx::Connection;

pub const PASSWORD: &str = "Demo-Passw0rd!";
/// [`PASSWORD`] as the sample tree holds it (slapd's argon2 module checks it).
const PASSWORD_HASH: &str = "{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$8dWyD84KehFSGdQBWGx0Vg$vK30lR/+duPdiqV2LJ4fQhFg2wuHXUEQjjPjk5Plygk";

/// The groups of students the scenarios use, each `{prefix}1` … `{prefix}{count}`.
pub const ACTIVE: &[(&str, usize)] = &[("bench", 200), ("hall", 60), ("spray", 6), ("reset", 400)];
pub const PENDING: (&str, usize) = ("act", 400);

pub struct Bed {
    pub base: String,
    pub secret: String,
    pub mail_dir: PathBuf,
    pub pid: u32,
    /// The PostgreSQL server and the database made for this run, dropped at the end.
    database: Option<(String, String)>,
    child: Child,
    _environment: DevEnvironment,
    _data: tempfile::TempDir,
}

impl Drop for Bed {
    fn drop(&mut self) {
        // The child is ours: stop it so that slapd and the folder can go too.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sets everything up and starts `guichet serve`; `postgres` is a server URL.
pub async fn start(postgres: Option<&str>) -> Bed {
    let data = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let options = DevOptions {
        data_dir: data.path().join("dev"),
        reset: true,
        port,
        profile: "paris-cite".to_owned(),
    };
    let (environment, _) = dev::prepare(&options).expect("dev set-up");
    add_students(&environment);
    let dir = data.path().join("dev");
    let text = std::fs::read_to_string(dir.join("guichet.toml")).expect("dev settings");
    let database = match postgres {
        Some(server) => Some((server.to_owned(), fresh_database(server).await)),
        None => None,
    };
    let text = adjust(&text, database.as_ref());
    let config = dir.join("load.toml");
    std::fs::write(&config, &text).expect("write settings");
    let secret = register_client(&text).await;
    let child = spawn(&config, &dir.join("guichet.log"));
    let base = format!("http://127.0.0.1:{port}");
    wait_until_up(&base).await;
    Bed {
        base,
        secret,
        mail_dir: dir.join("mail"),
        pid: child.id(),
        database,
        child,
        _environment: environment,
        _data: data,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The settings `guichet dev` wrote, with what the bench changes (printed): logs at
/// `warn` (dev logs every request at debug, which would be measured too), the
/// public URL on 127.0.0.1 (the address the bench reaches, so the issuer's
/// endpoints and the login form share one cookie host) and, on PostgreSQL, a
/// fresh database instead of the SQLite file.
fn adjust(text: &str, database: Option<&(String, String)>) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    for line in &mut lines {
        if line.starts_with("public_url = \"http://localhost:") {
            *line = line.replace("localhost", "127.0.0.1");
            println!("setting changed: server.{line}");
        }
        if line.starts_with("level = ") {
            *line = "level = \"warn\"".to_owned();
            println!("setting changed: log.level = \"warn\" (dev has info,guichet=debug)");
        }
        match database {
            Some((server, name)) if line.starts_with("url = \"sqlite://") => {
                let mut url = url::Url::parse(server).expect("postgres URL");
                url.set_path(&format!("/{name}"));
                println!("setting changed: database.url = {url}");
                *line = format!("url = \"{url}\"");
            }
            _ => {}
        }
    }
    lines.join("\n")
}

/// Creates an empty database on the PostgreSQL server at `server`; its name.
async fn fresh_database(server: &str) -> String {
    let name = format!("guichet_load_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("create database");
    name
}

impl Bed {
    /// Stops Guichet, then drops the run's PostgreSQL database if there is one.
    pub async fn finish(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((server, name)) = self.database.take() {
            let mut admin = sqlx::PgConnection::connect(&server)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&mut admin)
                .await
                .expect("drop database");
        }
    }
}

/// The students the scenarios sign in, reset and activate, added as the admin.
fn add_students(environment: &DevEnvironment) {
    let mut ldif = String::new();
    for (prefix, count) in ACTIVE {
        for i in 1..=*count {
            ldif.push_str(&entry(&format!("{prefix}{i}"), true));
        }
    }
    for i in 1..=PENDING.1 {
        ldif.push_str(&entry(&format!("{}{i}", PENDING.0), false));
    }
    let mut child = Command::new("ldapmodify")
        .args(["-x", "-H", &environment.slapd.ldapi_url()])
        .args([
            "-D",
            slapd::ADMIN_DN,
            "-w",
            environment.slapd.admin_password(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("ldapmodify");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(ldif.as_bytes())
        .expect("write ldif");
    assert!(child.wait().expect("ldapmodify").success(), "ldapmodify");
}

/// One student: active with [`PASSWORD`], or awaiting activation without one.
fn entry(uid: &str, active: bool) -> String {
    let state = if active {
        format!(
            "supannRessourceEtat: {{COMPTE}}A:SupannActif\n\
             supannRessourceEtatDate: {{COMPTE}}A:SupannActif:20250901:\n\
             userPassword: {PASSWORD_HASH}\n"
        )
    } else {
        "supannRessourceEtat: {COMPTE}I:SupannCree\n\
         supannRessourceEtatDate: {COMPTE}I:SupannCree::\n"
            .to_owned()
    };
    format!(
        "dn: uid={uid},{people}\nchangetype: add\nobjectClass: inetOrgPerson\n\
         objectClass: eduPerson\nobjectClass: supannPerson\nuid: {uid}\ncn: {uid}\n\
         sn: {uid}\nmail: {uid}@univ-demo.fr\nsupannMailPerso: {uid}@example.org\n\
         eduPersonAffiliation: student\neduPersonPrimaryAffiliation: student\n{state}\n",
        people = slapd::PEOPLE_DN,
    )
}

/// Registers the confidential, first-party client `bench`; its secret.
async fn register_client(text: &str) -> String {
    let settings = guichet::config::Settings::from_toml(text).expect("settings");
    let store = guichet::store::Store::connect(&settings.database)
        .await
        .expect("database");
    store.migrate().await.expect("migrate");
    let secret = crate::client::register_bench(&store).await;
    store.close().await;
    secret
}

/// `guichet serve` from the same (release) build as this bench.
fn spawn(config: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_guichet"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start guichet serve")
}

async fn wait_until_up(base: &str) {
    let http = reqwest::Client::new();
    for _ in 0..300 {
        let up = http.get(format!("{base}/readyz")).send().await;
        if up.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("guichet serve did not become ready in 30 s");
}

/// What /proc says about Guichet's process: resident memory and open files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub rss_kib: u64,
    pub peak_kib: u64,
    pub fds: usize,
}

pub fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    };
    Usage {
        rss_kib: field("VmRSS:"),
        peak_kib: field("VmHWM:"),
        fds: fd_count(pid),
    }
}

pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

/// Resets the process's peak RSS (VmHWM) to its current RSS, so that the next
/// reading is the peak of the next scenario alone (Linux `clear_refs`, value 5).
pub fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}
