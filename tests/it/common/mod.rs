//! Test harness: every test gets its own slapd built from `directory-schema/`, its own
//! SQLite file or PostgreSQL database, its own mail folder, and the whole app on a
//! free port. Nothing is shared between tests, so they run in any order, in parallel.

pub mod browser;
pub mod cas;
pub mod hostile;
pub mod ldap_proxy;
pub mod oidc;
pub mod tcp_proxy;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use guichet::config::Settings;
use guichet::dev::slapd::{self, PrivateSlapd};
use guichet::directory::Directory;
use guichet::hashing::Hasher;
use guichet::web::AppState;
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const DEMO_PASSWORD: &str = "Demo-Passw0rd!";
/// [`DEMO_PASSWORD`] as the sample tree holds it.
const DEMO_PASSWORD_HASH: &str = "{ARGON2}$argon2i$v=19$m=4096,t=3,p=1$8dWyD84KehFSGdQBWGx0Vg$vK30lR/+duPdiqV2LJ4fQhFg2wuHXUEQjjPjk5Plygk";

/// Runs one async test body against SQLite and against PostgreSQL.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::common::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::common::Backend::Postgres).await
            }
        }
    )*};
}

pub(crate) use both_backends;

/// A private slapd with the sample tree, removed when dropped.
pub struct TestDirectory {
    pub slapd: PrivateSlapd,
    _dir: TempDir,
}

impl TestDirectory {
    pub fn start() -> TestDirectory {
        let dir = tempfile::Builder::new()
            .prefix("guichet-ldap-")
            .tempdir()
            .unwrap();
        let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("directory-schema");
        let slapd = PrivateSlapd::create(dir.path(), &schema, "admin-secret", None)
            .unwrap_or_else(|e| panic!("private slapd: {e}"));
        TestDirectory { slapd, _dir: dir }
    }

    pub fn url(&self) -> String {
        self.slapd.ldapi_url()
    }

    /// `ldapwhoami -x -D dn -w password`: the exit code (0, or 49 for bad credentials).
    pub fn whoami(&self, dn: &str, password: &str) -> i32 {
        Command::new("ldapwhoami")
            .args(["-x", "-H", &self.url(), "-D", dn, "-w", password])
            .output()
            .unwrap()
            .status
            .code()
            .unwrap_or(-1)
    }

    /// Attribute values of one entry, read as the directory administrator.
    pub fn read(&self, dn: &str, attribute: &str) -> Vec<String> {
        let output = Command::new("ldapsearch")
            .args([
                "-x",
                "-LLL",
                "-o",
                "ldif-wrap=no",
                "-H",
                &self.url(),
                "-D",
                slapd::ADMIN_DN,
                "-w",
                "admin-secret",
                "-b",
                dn,
                "-s",
                "base",
                "(objectClass=*)",
                attribute,
            ])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        // ldapsearch prints non-ASCII or `{`-leading values base64-encoded after `::`.
        let plain = format!("{attribute}: ");
        let encoded = format!("{attribute}:: ");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                if let Some(value) = line.strip_prefix(&plain) {
                    Some(value.to_owned())
                } else {
                    use base64::Engine;
                    let raw = line.strip_prefix(&encoded)?;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
                    String::from_utf8(bytes).ok()
                }
            })
            .collect()
    }

    /// Applies an LDIF change as the directory administrator (what an admin's tools do).
    pub fn admin_modify(&self, ldif: &str) {
        let code = self.modify_as(slapd::ADMIN_DN, "admin-secret", ldif);
        assert_eq!(code, 0, "ldapmodify failed for:\n{ldif}");
    }

    /// Adds `count` active students `{prefix}1` … whose password is [`DEMO_PASSWORD`]
    /// (a lecture hall); returns their logins.
    pub fn add_students(&self, prefix: &str, count: usize) -> Vec<String> {
        let logins: Vec<String> = (1..=count).map(|i| format!("{prefix}{i}")).collect();
        let ldif: String = logins
            .iter()
            .enumerate()
            .map(|(i, uid)| {
                format!(
                    "dn: {dn}\nchangetype: add\nobjectClass: inetOrgPerson\nobjectClass: eduPerson\n\
                     objectClass: supannPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n\
                     mail: {uid}@univ-demo.fr\nsupannMailPerso: {uid}@example.org\n\
                     supannEtuId: {etu}\nsupannCodeINE: 1234567892C\n\
                     eduPersonAffiliation: student\neduPersonPrimaryAffiliation: student\n\
                     supannRessourceEtat: {{COMPTE}}A:SupannActif\n\
                     supannRessourceEtatDate: {{COMPTE}}A:SupannActif:20250901:\n\
                     userPassword: {hash}\n\n",
                    dn = people_dn(uid),
                    etu = 29_000_000 + i,
                    hash = DEMO_PASSWORD_HASH,
                )
            })
            .collect();
        self.admin_modify(&ldif);
        logins
    }

    /// `ldapmodify` bound as `dn`: its exit code (50 for insufficient access).
    pub fn modify_as(&self, dn: &str, password: &str, ldif: &str) -> i32 {
        use std::io::Write;
        let mut child = Command::new("ldapmodify")
            .args(["-x", "-H", &self.url(), "-D", dn, "-w", password])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(ldif.as_bytes())
            .unwrap();
        child.wait().unwrap().code().unwrap_or(-1)
    }
}

pub fn people_dn(uid: &str) -> String {
    format!("uid={uid},{}", slapd::PEOPLE_DN)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of its own: a SQLite file in a temp folder, or a PostgreSQL database
/// created for the test and dropped after it.
pub struct TestDatabase {
    pub url: String,
    postgres_name: Option<String>,
    _dir: Option<TempDir>,
}

/// The PostgreSQL server the tests create their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("GUICHET_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> TestDatabase {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::Builder::new()
                    .prefix("guichet-db-")
                    .tempdir()
                    .unwrap();
                TestDatabase {
                    url: format!("sqlite://{}", dir.path().join("guichet.db").display()),
                    postgres_name: None,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let name = format!("guichet_test_{}", uuid::Uuid::new_v4().simple());
                postgres_admin(&format!("CREATE DATABASE {name}")).await;
                let admin = url::Url::parse(&postgres_admin_url()).unwrap();
                let mut url = admin.clone();
                url.set_path(&format!("/{name}"));
                TestDatabase {
                    url: url.to_string(),
                    postgres_name: Some(name),
                    _dir: None,
                }
            }
        }
    }

    /// Drops the PostgreSQL database now, as an outage would (connections included).
    pub async fn drop_postgres_now(&self) {
        if let Some(name) = &self.postgres_name {
            postgres_admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
        }
    }
}

async fn postgres_admin(sql: &str) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&postgres_admin_url())
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL at {} is needed for this test: {e}",
                postgres_admin_url()
            )
        });
    sqlx::query(sql).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside async; a short-lived runtime on its own thread does it.
            let _ = std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(postgres_admin(&format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
            })
            .join();
        }
    }
}

/// Settings for a test: the given profile, small argon2 parameters so tests are fast.
pub fn settings_text(
    directory_url: &str,
    database_url: &str,
    mail_dir: &Path,
    profile: &str,
) -> String {
    let profile = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{profile}.toml")),
    )
    .unwrap();
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
public_url = "http://localhost/"
dev_mailbox = "{mail}"
[database]
url = "{database_url}"
max_connections = 5
[directory]
url = "{directory_url}"
people_dn = "{people}"
bind_dn = "{service}"
bind_password = "{service_password}"
decoy_dn = "{decoy}"
timeout = "2s"
pool_size = 4
[hashing]
memory_kib = 8192
iterations = 1
parallelism = 1
max_concurrent = 2
max_waiting = 16
[mail]
from = "Guichet <noreply@univ-demo.fr>"
transport = {{ kind = "file", dir = "{mail}" }}
poll_interval = "100ms"
retry_base = "1s"
[invitations]
enabled = false
[log]
format = "pretty"
level = "warn"
{profile}
"#,
        mail = mail_dir.display(),
        people = slapd::PEOPLE_DN,
        service = slapd::SERVICE_DN,
        service_password = slapd::SERVICE_PASSWORD,
        decoy = slapd::DECOY_DN,
    )
}

/// A `Directory` client on the test slapd, with the service account.
pub fn directory_client(
    directory: &TestDirectory,
    tweak: impl FnOnce(String) -> String,
) -> Directory {
    let text = tweak(settings_text(
        &directory.url(),
        "sqlite://unused.db",
        Path::new("/tmp"),
        "paris-cite",
    ));
    let settings = Settings::from_toml(&text).unwrap();
    Directory::new(&settings.directory, Hasher::new(&settings.hashing).unwrap()).unwrap()
}

/// The whole app, serving on a free port, with its own directory and database.
pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub directory: TestDirectory,
    pub database: TestDatabase,
    pub http: reqwest::Client,
    pub settings_text: String,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _mail: TempDir,
}

impl TestApp {
    pub async fn start(backend: Backend) -> TestApp {
        Self::start_with(backend, "paris-cite").await
    }

    pub async fn start_with(backend: Backend, profile: &str) -> TestApp {
        Self::start_tweaked(backend, profile, |text| text).await
    }

    /// Starts with `public_url` being the address it listens on, as OIDC relying
    /// parties need (the issuer must be where discovery found it).
    pub async fn start_published(backend: Backend) -> TestApp {
        let port = free_port();
        Self::start_tweaked(backend, "paris-cite", |text| {
            text.replace(
                "public_url = \"http://localhost/\"",
                &format!("public_url = \"http://127.0.0.1:{port}/\""),
            )
        })
        .await
    }

    /// The Paris Cité app sending its mail to an SMTP server process of its own,
    /// with the settings text changed by `tweak`.
    pub async fn start_with_smtp(
        backend: Backend,
        tweak: impl FnOnce(String) -> String,
    ) -> (TestApp, TestSmtp) {
        let smtp = TestSmtp::start();
        let app = TestApp::start_tweaked(backend, "paris-cite", |t| {
            tweak(with_transport(t, &smtp.transport()))
        })
        .await;
        (app, smtp)
    }

    /// Starts with the settings text changed by `tweak` (e.g. to add TLS).
    pub async fn start_tweaked(
        backend: Backend,
        profile: &str,
        tweak: impl FnOnce(String) -> String,
    ) -> TestApp {
        let directory = TestDirectory::start();
        let database = TestDatabase::create(backend).await;
        let mail = tempfile::Builder::new()
            .prefix("guichet-mail-")
            .tempdir()
            .unwrap();
        let text = tweak(settings_text(
            &directory.url(),
            &database.url,
            mail.path(),
            profile,
        ));
        let (state, addr, stop, server) = launch(&text).await;
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        TestApp {
            addr,
            state,
            directory,
            database,
            http,
            settings_text: text,
            stop: Some(stop),
            server: Some(server),
            _mail: mail,
        }
    }

    /// Stops the service as SIGTERM does (requests and the mail in flight finish),
    /// then starts it again on the same directory, database and settings.
    pub async fn restart(mut self) -> TestApp {
        self.stop_gracefully().await;
        self.relaunch().await
    }

    /// Kills the service as a crash would (everything in flight is dropped, no
    /// clean-up runs), then starts it again on the same directory, database and settings.
    pub async fn crash_and_restart(mut self) -> TestApp {
        if let Some(server) = self.server.take() {
            server.abort();
            let _ = server.await;
        }
        self.relaunch().await
    }

    async fn relaunch(mut self) -> TestApp {
        let (state, addr, stop, server) = launch(&self.settings_text).await;
        self.state = state;
        self.addr = addr;
        self.stop = Some(stop);
        self.server = Some(server);
        self
    }

    async fn stop_gracefully(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    /// Posts a form as a browser does, with the CSRF value of this client's cookie
    /// (every page with a form shows the same one; /activation always has a form).
    pub async fn post_form(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> (reqwest::StatusCode, String) {
        let response = self.post_form_response(path, fields).await;
        (response.status(), response.text().await.unwrap())
    }

    /// `post_form`, keeping the whole response (headers included).
    pub async fn post_form_response(
        &self,
        path: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let page = self.get("/activation").await.text().await.unwrap();
        let csrf = csrf_of(&page);
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend_from_slice(fields);
        self.http
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// Stops the server, waiting for requests in flight.
    pub async fn shutdown(mut self) {
        self.stop_gracefully().await;
    }

    /// A second instance on the same settings, database and directory, as behind a
    /// load balancer: its own port, its own outbox and back-channel workers.
    pub async fn another_instance(&self) -> Instance {
        let (_, addr, stop, server) = launch(&self.settings_text).await;
        Instance { addr, stop, server }
    }
}

/// One more instance of a `TestApp` (see `TestApp::another_instance`).
pub struct Instance {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Instance {
    /// Stops it as SIGTERM does.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        self.server.await.unwrap();
    }
}

/// Prepares the app from settings text and serves it on a free port.
async fn launch(text: &str) -> (AppState, SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let settings = Settings::from_toml(text).unwrap();
    guichet::telemetry::init(&settings.log);
    // An app published at http://127.0.0.1:PORT/ listens there (OIDC clients check
    // that the issuer is where they found it); others take any free port.
    let public = &settings.server.public_url;
    let port = match (public.host_str(), public.port()) {
        (Some("127.0.0.1"), Some(port)) => port,
        _ => 0,
    };
    let state = guichet::server::prepare_to_serve(settings).await.unwrap();
    let listener = guichet::server::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = state.clone();
    let server = tokio::spawn(async move {
        guichet::server::run(listener, serving, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    (state, addr, stop, server)
}

/// The hidden CSRF field of a page.
pub fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"")
        .nth(1)
        .expect("no csrf field")
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// The `t=` value of the link to `path` in a received message's text part.
pub fn link_token(raw: &str, path: &str) -> String {
    let message = mail_parser::MessageParser::default()
        .parse(raw.as_bytes())
        .unwrap();
    let text = message.body_text(0).unwrap().into_owned();
    text.split(&format!("{path}?t="))
        .nth(1)
        .unwrap_or_else(|| panic!("no link to {path} in mail: {text}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

// Accounts of the sample tree (directory-schema/sample/tree.ldif).
pub const ACTIVE_UID: &str = "cbernard";
/// The personal address on record of [`ACTIVE_UID`].
pub const ACTIVE_EMAIL: &str = "chloe.bernard@example.org";
pub const PENDING_UID: &str = "ldurand";
pub const PENDING_EMAIL: &str = "lea.durand@example.org";
pub const PERPIGNAN_UID: &str = "e2401234";
pub const PERPIGNAN_STUDENT: &str = "2401234";
pub const PERPIGNAN_INE: &str = "0987654321D";
pub const SHARED_EMAIL: &str = "famille.jumeau@example.org";
pub const METACHAR_UID: &str = "zobrien";

/// How a `TestSmtp` accepts connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpSecurity {
    #[default]
    Plain,
    /// STARTTLS required before anything else.
    Starttls,
    /// TLS from the first byte (port 465 style).
    Implicit,
}

/// What a `TestSmtp` demands of its clients.
#[derive(Clone, Debug, Default)]
pub struct SmtpOptions {
    pub security: SmtpSecurity,
    /// `(user, password)` the server requires before MAIL FROM.
    pub auth: Option<(String, String)>,
    /// Seconds the server waits before answering RCPT: a slow relay, before it has
    /// the message.
    pub rcpt_delay: f64,
    /// Seconds the server waits before answering DATA: a slow relay that has the
    /// message already.
    pub data_delay: f64,
}

/// A real SMTP server process (Debian's python3-aiosmtpd, through
/// `tests/support/smtp_server.py`) storing what it receives in a Maildir. Its TLS
/// certificate is signed by a CA made for this server only. Killed when dropped.
pub struct TestSmtp {
    pub port: u16,
    options: SmtpOptions,
    maildir: TempDir,
    child: Option<std::process::Child>,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl TestSmtp {
    pub fn start() -> TestSmtp {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> TestSmtp {
        Self::start_with(port, SmtpOptions::default())
    }

    pub fn start_with(port: u16, options: SmtpOptions) -> TestSmtp {
        let maildir = tempfile::Builder::new()
            .prefix("guichet-smtp-")
            .tempdir()
            .unwrap();
        let mut smtp = TestSmtp {
            port,
            options,
            maildir,
            child: None,
        };
        if smtp.options.security != SmtpSecurity::Plain {
            smtp.write_certificates();
        }
        smtp.launch();
        smtp
    }

    /// A CA, and a certificate for 127.0.0.1 it signed, in the Maildir's parent.
    fn write_certificates(&self) {
        write_certificates(self.maildir.path());
    }

    /// The PEM file of the CA that signed this server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.maildir.path().join("ca.pem")
    }

    fn launch(&mut self) {
        let dir = self.maildir.path();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/smtp_server.py");
        let mut command = Command::new("/usr/bin/python3");
        command
            .arg(script)
            .arg(self.port.to_string())
            .arg(dir.join("Maildir"))
            .args(["--rcpt-delay", &self.options.rcpt_delay.to_string()])
            .args(["--data-delay", &self.options.data_delay.to_string()]);
        let tls_flag = match self.options.security {
            SmtpSecurity::Plain => None,
            SmtpSecurity::Starttls => Some("--starttls"),
            SmtpSecurity::Implicit => Some("--smtps"),
        };
        if let Some(flag) = tls_flag {
            command
                .arg(flag)
                .arg(dir.join("cert.pem"))
                .arg(dir.join("key.pem"));
        }
        if let Some((user, password)) = &self.options.auth {
            command.args(["--auth", &format!("{user}:{password}")]);
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is needed (apt-get install python3-aiosmtpd)");
        self.child = Some(child);
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(started.elapsed().as_secs() < 20, "aiosmtpd did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// The settings line that sends mail here, trusting this server's CA and giving
    /// its credentials.
    pub fn transport(&self) -> String {
        let security = match self.options.security {
            SmtpSecurity::Plain => "none",
            SmtpSecurity::Starttls => "starttls",
            SmtpSecurity::Implicit => "tls",
        };
        let mut line = format!(
            "transport = {{ kind = \"smtp\", host = \"127.0.0.1\", port = {}, security = \"{security}\", timeout = \"5s\"",
            self.port
        );
        if security != "none" {
            line += &format!(", ca_file = \"{}\"", self.ca_file().display());
        }
        if let Some((user, password)) = &self.options.auth {
            line += &format!(", username = \"{user}\", password = \"{password}\"");
        }
        line + " }"
    }

    /// The raw messages received so far.
    pub fn received(&self) -> Vec<String> {
        let new = self.maildir.path().join("Maildir").join("new");
        let mut messages: Vec<String> = std::fs::read_dir(new)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .collect()
            })
            .unwrap_or_default();
        messages.sort();
        messages
    }

    /// Waits up to `seconds` for `count` messages.
    pub async fn wait_for(&self, count: usize, seconds: u64) -> Vec<String> {
        let started = std::time::Instant::now();
        loop {
            let received = self.received();
            if received.len() >= count || started.elapsed().as_secs() >= seconds {
                return received;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for TestSmtp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Replaces the file transport of the test settings by `transport`.
pub fn with_transport(text: String, transport: &str) -> String {
    text.lines()
        .map(|line| {
            if line.starts_with("transport = { kind = \"file\"") {
                transport
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A browser of its own (its own cookies), as another student's computer.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser of its own on another computer: its requests come from `address`
/// (any of 127.0.0.0/8 reaches the test server).
pub fn browser_at(address: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(address.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The student asks for a reset link for `email` and sets `new` through it,
/// as the reset pages do; the status of the last page.
pub async fn resets_password(
    app: &TestApp,
    smtp: &TestSmtp,
    email: &str,
    new: &str,
) -> reqwest::StatusCode {
    app.post_form("/password/forgot", &[("identifier", email)])
        .await;
    let mails = smtp.wait_for(1, 20).await;
    let token = link_token(mail_to(&mails, email, "/password/reset"), "/password/reset");
    let fields = [
        ("t", token.as_str()),
        ("password", new),
        ("confirmation", new),
    ];
    app.post_form("/password/reset", &fields).await.0
}

/// Posts the login form with `browser` (fetching the form for its CSRF value first);
/// Guichet's answer.
pub async fn sign_in_with(
    app: &TestApp,
    browser: &reqwest::Client,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let page = browser.get(app.url("/login")).send().await.unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    browser
        .post(app.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("login", login),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
}

/// Signs in on the login page with `browser`; true if Guichet opened a session.
pub async fn signs_in(
    app: &TestApp,
    browser: &reqwest::Client,
    login: &str,
    password: &str,
) -> bool {
    let response = sign_in_with(app, browser, login, password).await;
    response.status() == reqwest::StatusCode::SEE_OTHER
}

/// The mail to `to` that holds a link to `path`.
pub fn mail_to<'a>(mails: &'a [String], to: &str, path: &str) -> &'a str {
    mails
        .iter()
        .find(|m| m.contains(&format!("To: {to}")) && m.contains(path))
        .unwrap_or_else(|| panic!("a mail to {to} with a link to {path}"))
}

/// Opens a mailed link's page (`path?t=token`) in `browser`; its form's CSRF value.
pub async fn open_link(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    token: &str,
) -> String {
    let page = browser
        .get(app.url(&format!("{path}?t={token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK, "{path} opens");
    csrf_of(&page.text().await.unwrap())
}

/// Posts a link page's form (the CSRF field and `t`), as its button does.
pub async fn submit_link(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    token: &str,
    csrf: &str,
) -> (reqwest::StatusCode, String) {
    let done = browser
        .post(app.url(path))
        .form(&[("csrf", csrf), ("t", token)])
        .send()
        .await
        .unwrap();
    (done.status(), done.text().await.unwrap())
}

/// Opens a mailed link's page, then presses its button.
pub async fn follow_and_submit(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    token: &str,
) -> (reqwest::StatusCode, String) {
    let csrf = open_link(app, browser, path, token).await;
    submit_link(app, browser, path, token, &csrf).await
}

pub async fn is_signed_in(app: &TestApp, browser: &reqwest::Client) -> bool {
    let account = browser.get(app.url("/account")).send().await.unwrap();
    account.status() == reqwest::StatusCode::OK
}

/// A CA (`ca.pem`), and a certificate for 127.0.0.1 it signed (`cert.pem`,
/// `key.pem`), in `dir`: what the test servers that speak TLS present.
pub fn write_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// A `guichet serve` process, killed when dropped: a failing assertion must not
/// leave a server running (nextest would wait on its inherited stderr).
pub struct Served(std::process::Child);

impl Served {
    /// SIGKILL, and the exit reaped.
    pub fn kill(&mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `guichet serve` with the settings at `config`, as an operator starts it;
/// its log goes to `stderr`.
pub fn serve(config: &Path, stderr: std::process::Stdio) -> Served {
    let mut command = Command::new(env!("CARGO_BIN_EXE_guichet"));
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(std::process::Stdio::null())
        .stderr(stderr);
    for (key, _) in std::env::vars() {
        if key.starts_with("GUICHET_") {
            command.env_remove(key);
        }
    }
    Served(command.spawn().unwrap())
}
