//! `guichet dev`: the one-command demo. A private slapd with the sample tree, SQLite
//! and a mail folder under one data folder, and the web server in front. Running it
//! again keeps the data unless `--reset` is given.

pub mod slapd;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use rand::Rng;
use rand::distributions::Alphanumeric;

use crate::config::{ConfigError, Settings};
use slapd::PrivateSlapd;

/// The shipped profiles, built in so that `guichet dev` works from any folder.
pub const PROFILES: &[(&str, &str)] = &[
    ("paris-cite", include_str!("../../profiles/paris-cite.toml")),
    ("perpignan", include_str!("../../profiles/perpignan.toml")),
    ("sorbonne", include_str!("../../profiles/sorbonne.toml")),
];

#[derive(Debug)]
pub struct DevOptions {
    pub data_dir: PathBuf,
    pub reset: bool,
    pub port: u16,
    pub profile: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Slapd(#[from] slapd::SlapdError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("unknown profile `{0}`; expected one of: paris-cite, perpignan, sorbonne")]
    UnknownProfile(String),
}

/// Everything `guichet dev` set up: the directory process lives as long as this.
#[derive(Debug)]
pub struct DevEnvironment {
    pub slapd: PrivateSlapd,
    /// Whether the previous run's data was reused.
    pub kept: bool,
}

/// Prepares (or reuses) the data folder, starts slapd and returns the settings.
pub fn prepare(options: &DevOptions) -> Result<(DevEnvironment, Settings), DevError> {
    let profile = PROFILES
        .iter()
        .find(|(name, _)| *name == options.profile)
        .map(|(_, text)| *text)
        .ok_or_else(|| DevError::UnknownProfile(options.profile.clone()))?;
    let data = std::path::absolute(&options.data_dir)?;
    if options.reset && data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&data)?;
    let slapd_dir = data.join("slapd");
    let password_file = data.join("ldap-admin-password");
    let ldap_port = free_port(3389);
    let kept = PrivateSlapd::exists(&slapd_dir) && password_file.is_file();
    let slapd = if kept {
        let password = std::fs::read_to_string(&password_file)?;
        PrivateSlapd::reopen(&slapd_dir, password.trim(), Some(ldap_port))?
    } else {
        if slapd_dir.exists() {
            std::fs::remove_dir_all(&slapd_dir)?;
        }
        let password: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(20)
            .map(char::from)
            .collect();
        std::fs::write(&password_file, &password)?;
        PrivateSlapd::create(
            &slapd_dir,
            &PrivateSlapd::schema_dir(),
            &password,
            Some(ldap_port),
        )?
    };
    let mail_dir = data.join("mail");
    // Port 0 is resolved now: the public URL (the OIDC issuer, the demos'
    // registered addresses) must name the port Guichet will listen on.
    let port = match options.port {
        0 => free_port(0),
        chosen => chosen,
    };
    let text = settings_text(&data, &slapd, &mail_dir, port, profile);
    std::fs::write(data.join("guichet.toml"), &text)?;
    let settings = Settings::from_toml(&text)?;
    Ok((DevEnvironment { slapd, kept }, settings))
}

fn settings_text(
    data: &Path,
    slapd: &PrivateSlapd,
    mail_dir: &Path,
    port: u16,
    profile: &str,
) -> String {
    let quoted = |p: &Path| toml::Value::String(p.to_string_lossy().into_owned()).to_string();
    format!(
        r#"# Written by `guichet dev`; changes are overwritten on the next run.
[server]
listen = "127.0.0.1:{port}"
public_url = "http://localhost:{port}/"
dev_mailbox = {mail}

[database]
url = {db}

[directory]
url = "{ldap}"
people_dn = "{people}"
bind_dn = "{service}"
bind_password = "{service_password}"
decoy_dn = "{decoy}"

[hashing]
memory_kib = 19456
iterations = 2
parallelism = 1
max_concurrent = 2
max_waiting = 32

[mail]
from = "Université Démo <noreply@univ-demo.fr>"
transport = {{ kind = "file", dir = {mail} }}

[log]
format = "pretty"
level = "info,guichet=debug"

{profile}"#,
        mail = quoted(mail_dir),
        db = toml::Value::String(format!("sqlite://{}", data.join("guichet.db").display())),
        ldap = slapd.ldapi_url(),
        people = slapd::PEOPLE_DN,
        service = slapd::SERVICE_DN,
        service_password = slapd::SERVICE_PASSWORD,
        decoy = slapd::DECOY_DN,
    )
}

/// `preferred` if it is free, else any free port.
fn free_port(preferred: u16) -> u16 {
    TcpListener::bind(("127.0.0.1", preferred))
        .or_else(|_| TcpListener::bind(("127.0.0.1", 0)))
        .and_then(|l| l.local_addr())
        .map_or(preferred, |a: SocketAddr| a.port())
}

/// The lines `guichet dev` prints once it listens.
pub fn banner(env: &DevEnvironment, addr: SocketAddr) -> String {
    let base = format!("http://localhost:{}", addr.port());
    let data = if env.kept {
        "kept the data of the previous run (use --reset to start afresh)"
    } else {
        "started with fresh data: sample tree loaded"
    };
    let tcp = env
        .slapd
        .tcp_port()
        .map(|p| format!("ldap://127.0.0.1:{p}/"))
        .unwrap_or_default();
    format!(
        "\nGuichet dev is running ({data}).\n\
         \n  Student pages      {base}/\n\
         \x20 Sent mail          {base}/dev/mail\n\
         \x20 Demo application   {base}/dev/app  (signs in through Guichet, shows the claims)\n\
         \x20 CAS demo           {base}/dev/cas-app  (the ENT's way: CAS, same sign-on)\n\
         \x20 Readiness          {base}/readyz\n\
         \x20 Directory          {ldapi}\n\
         \x20                    {tcp}  admin: {admin} / {admin_pw}\n\
         \x20 Demo accounts      see directory-schema/README.md (activated ones use Demo-Passw0rd!)\n\
         \n  Try: ldapwhoami -x -H {tcp} -D uid=cbernard,{people} -w 'Demo-Passw0rd!'\n\
         \n  Stop with Ctrl-C.\n",
        ldapi = env.slapd.ldapi_url(),
        admin = slapd::ADMIN_DN,
        admin_pw = env.slapd.admin_password(),
        people = slapd::PEOPLE_DN,
    )
}
