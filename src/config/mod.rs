//! Typed settings: TOML files, then `GUICHET_…` environment variables (`__` separates
//! levels), then `…_FILE` variants for secrets. Everything is checked at start; an error
//! names the key and the expected form.

mod claims;
mod profile;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

pub use claims::{AttributeSource, ClaimMapping};
pub use profile::{
    ActivationOrder, BirthDate, Branding, Color, IdentityMethod, Localized, Profile,
    ResetIdentifier,
};

/// A configuration problem, shown as one line: the key and what was expected.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub directory: DirectorySettings,
    #[serde(default)]
    pub hashing: HashingSettings,
    pub mail: MailSettings,
    #[serde(default)]
    pub log: LogSettings,
    #[serde(default)]
    pub limits: LimitSettings,
    #[serde(default)]
    pub invitations: InvitationSettings,
    #[serde(default)]
    pub sessions: SessionSettings,
    #[serde(default)]
    pub oidc: OidcSettings,
    #[serde(default)]
    pub cas: CasSettings,
    #[serde(default)]
    pub retention: RetentionSettings,
    pub profile: Profile,
}

/// How long records that serve people are kept; flow state (links, codes,
/// tokens, sessions) is forgotten soon after it expires, whatever this says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// The audit log.
    #[serde(default = "default_year", with = "humantime_serde")]
    pub audit: Duration,
    /// Help requests and the log of sent mail.
    #[serde(default = "default_year", with = "humantime_serde")]
    pub support: Duration,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            audit: default_year(),
            support: default_year(),
        }
    }
}

fn default_year() -> Duration {
    Duration::from_secs(365 * 86400)
}

/// The CAS 3.0 server (`/cas/...`), on the same session as OIDC. Its services
/// are registered with `guichet cas-services`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasSettings {
    /// A service ticket not validated this soon after it was issued is refused
    /// (the spec recommends at most 5 minutes; the browser hands it over at once).
    #[serde(default = "default_cas_ticket_lifetime", with = "humantime_serde")]
    pub ticket_lifetime: Duration,
    /// Certificates (PEM) trusted for proxy callbacks besides the system's: an
    /// institution's own certificate authority.
    #[serde(default)]
    pub proxy_callback_ca_file: Option<std::path::PathBuf>,
}

impl Default for CasSettings {
    fn default() -> Self {
        CasSettings {
            ticket_lifetime: default_cas_ticket_lifetime(),
            proxy_callback_ca_file: None,
        }
    }
}

fn default_cas_ticket_lifetime() -> Duration {
    Duration::from_secs(10)
}

/// The OpenID Connect provider.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcSettings {
    /// Claims by scope, from directory attributes (`[oidc.claims.profile]`
    /// `name = "displayName|cn"`).
    #[serde(default)]
    pub claims: ClaimMapping,
    /// Encrypts the private signing keys in the database (AES-256-GCM with a key
    /// derived from this secret: 32 random bytes or more, in base64, as
    /// `openssl rand -base64 32` makes): a leaked database backup then signs
    /// nothing. `key_encryption_key_file` reads it from a file.
    #[serde(default)]
    pub key_encryption_key: Option<SecretString>,
}

/// Guichet's signed-in session, shared by its own pages and (later) every OIDC client.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSettings {
    /// A session unused this long ends.
    #[serde(default = "default_session_idle", with = "humantime_serde")]
    pub idle: Duration,
    /// A session ends this long after sign-in, however busy.
    #[serde(default = "default_session_absolute", with = "humantime_serde")]
    pub absolute: Duration,
}

impl Default for SessionSettings {
    fn default() -> Self {
        SessionSettings {
            idle: default_session_idle(),
            absolute: default_session_absolute(),
        }
    }
}

fn default_session_idle() -> Duration {
    Duration::from_secs(3600)
}
fn default_session_absolute() -> Duration {
    Duration::from_secs(12 * 3600)
}

/// The job that invites pre-provisioned accounts to activate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationSettings {
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// How often the directory is scanned for accounts to invite.
    #[serde(default = "default_scan_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Reminders after the first invitation, each counted from the previous mail.
    #[serde(default = "default_reminders")]
    pub reminders: Vec<humantime_serde::Serde<Duration>>,
}

impl Default for InvitationSettings {
    fn default() -> Self {
        InvitationSettings {
            enabled: true,
            interval: default_scan_interval(),
            reminders: default_reminders(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_scan_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_reminders() -> Vec<humantime_serde::Serde<Duration>> {
    [3, 7]
        .map(|days| Duration::from_secs(days * 86400).into())
        .to_vec()
}

/// One limit: at most `max` counted attempts per `window`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    pub max: i64,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
}

/// A throttle, not a lockout: past `free` counted attempts in `window`, each
/// further attempt waits after the last one, first `first_delay`, then twice as
/// long each time, up to `max_delay`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    pub free: i64,
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    #[serde(default = "default_first_delay", with = "humantime_serde")]
    pub first_delay: Duration,
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
}

fn default_first_delay() -> Duration {
    Duration::from_secs(1)
}

/// Limits on the steps that match an identity or check a password, counted in the
/// database so that every instance shares them. At sign-in and on links only
/// failures count; where the page must not tell a match from a miss (a link asked
/// for by e-mail) every attempt counts, or the limit would tell it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// Per client network (an IPv4 address, an IPv6 /64).
    #[serde(default = "default_per_address")]
    pub per_address: Limit,
    /// Per identifier typed (login, e-mail, student number, link) from one network:
    /// a lockout an attacker can only inflict on the network he uses.
    #[serde(default = "default_per_identifier")]
    pub per_identifier: Limit,
    /// Per identifier from anywhere: slows a guesser who spreads over networks,
    /// without locking the student out (browsers that signed in to the account
    /// before are not slowed).
    #[serde(default = "default_per_account")]
    pub per_account: Throttle,
    /// How long a browser that signed in to an account stays trusted for it.
    #[serde(default = "default_trusted_device", with = "humantime_serde")]
    pub trusted_device: Duration,
    /// Networks many students share one address in (a campus NAT, the library's
    /// proxy): not limited as one client; each login from them still is.
    #[serde(default)]
    pub shared_networks: Vec<Network>,
}

/// The longest window or delay: the hourly purge forgets counts a day old.
const DAY: Duration = Duration::from_secs(86_400);

fn default_per_address() -> Limit {
    Limit {
        max: 100,
        window: Duration::from_secs(600),
    }
}

fn default_per_identifier() -> Limit {
    Limit {
        max: 5,
        window: Duration::from_secs(3600),
    }
}

fn default_per_account() -> Throttle {
    Throttle {
        free: 10,
        window: Duration::from_secs(3600),
        first_delay: default_first_delay(),
        max_delay: Duration::from_secs(300),
    }
}

fn default_trusted_device() -> Duration {
    Duration::from_secs(180 * 86400)
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            per_address: default_per_address(),
            per_identifier: default_per_identifier(),
            per_account: default_per_account(),
            trusted_device: default_trusted_device(),
            shared_networks: Vec::new(),
        }
    }
}

/// An address or a CIDR block, as an operator writes it (`10.0.0.7`, `10.0.0.0/8`,
/// `2001:db8::/32`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        text.parse::<ipnet::IpNet>()
            .or_else(|_| {
                // A mapped address (`::ffff:192.0.2.7`) means the IPv4 one, which is
                // how clients are matched.
                text.parse::<std::net::IpAddr>()
                    .map(|address| ipnet::IpNet::from(address.to_canonical()))
            })
            .map(|net| Network(net.trunc()))
            .map_err(|_| format!("expected an IP address or a CIDR block, got {text:?}"))
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl Network {
    pub fn contains(&self, address: std::net::IpAddr) -> bool {
        self.0.contains(&address)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The address students see, used in links and as the OIDC issuer.
    pub public_url: Url,
    pub tls: Option<TlsSettings>,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A folder whose templates replace the built-in ones of the same name.
    pub templates_dir: Option<PathBuf>,
    /// Serves `/dev/mail`, the dev mailbox. Only `guichet dev` turns it on.
    #[serde(default)]
    pub dev_mailbox: Option<PathBuf>,
    /// Load balancers and reverse proxies (addresses or CIDRs) whose `Forwarded` or
    /// `X-Forwarded-For` header names the client; from anyone else it is ignored.
    #[serde(default)]
    pub trusted_proxies: Vec<Network>,
    /// Which header those proxies write: only that one is read, since a proxy
    /// passes the other on from the client untouched.
    #[serde(default)]
    pub forwarded_header: ForwardedHeader,
    /// A client that has not sent a whole request head this long after connecting,
    /// or after it began the next request on a kept-alive connection, is closed.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// A kept-alive connection with no request in flight is closed after this long.
    #[serde(default = "default_idle_timeout", with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Connections served at once; the next ones wait in the kernel's backlog. Lowered
    /// at start if the open-files limit cannot hold them.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

/// The header a trusted proxy names the client in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For` (nginx `proxy_add_x_forwarded_for`, HAProxy `forwardfor`).
    #[default]
    XForwardedFor,
    /// `Forwarded` (RFC 7239).
    Forwarded,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path/guichet.db` or `postgres://user:password@host/db`. Secret because a
    /// PostgreSQL URL may hold a password.
    pub url: SecretString,
    #[serde(default = "default_db_connections")]
    pub max_connections: u32,
    /// SQLite only: when a commit is on disk (PostgreSQL's own `synchronous_commit`
    /// decides there).
    #[serde(default)]
    pub sqlite_synchronous: SqliteSynchronous,
}

/// How SQLite makes a commit durable (its `synchronous` pragma, in WAL mode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    /// Every commit is flushed to the disk before it is answered: nothing
    /// committed is lost, even to a power cut or a kernel crash.
    #[default]
    Full,
    /// A commit is in the WAL file when it is answered, flushed to the disk at
    /// checkpoints: nothing is lost if Guichet is killed, but a power cut or a
    /// kernel crash may take the last commits back (the database stays sound).
    Normal,
}

impl SqliteSynchronous {
    pub fn pragma(self) -> &'static str {
        match self {
            SqliteSynchronous::Full => "FULL",
            SqliteSynchronous::Normal => "NORMAL",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordWrite {
    /// Guichet hashes with argon2id and writes `{ARGON2}…` to `userPassword`.
    Hash,
    /// Guichet sends the cleartext through the RFC 3062 Password Modify operation so
    /// that slapd hashes it and applies its own ppolicy.
    PasswordModify,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DirectorySettings {
    /// `ldap://host:389`, `ldaps://host:636` or `ldapi://%2Frun%2Fslapd%2Fldapi`.
    pub url: Url,
    #[serde(default)]
    pub starttls: bool,
    /// PEM bundle of CAs to trust for ldaps/StartTLS, instead of the system roots.
    pub ca_path: Option<PathBuf>,
    /// Where student entries live, e.g. `ou=people,dc=univ-demo,dc=fr`.
    pub people_dn: String,
    pub bind_dn: String,
    pub bind_password: SecretString,
    #[serde(default = "default_ldap_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_ldap_pool")]
    pub pool_size: usize,
    #[serde(default = "default_password_write")]
    pub password_write: PasswordWrite,
    /// The account `guichet import` binds as to create and update student entries.
    pub import: Option<ImportAccount>,
    /// An entry no one signs in as (`directory-schema/`: `cn=guichet-decoy,ou=services`)
    /// that Guichet binds to when a login is unknown, so that a stranger's guess costs
    /// a real bind. Guichet sets a random password on it at every start. Without it,
    /// an unknown login costs a local hash instead (a warning says so at start).
    pub decoy_dn: Option<String>,
    /// Password checks (binds) that may wait for one of the `pool_size` bind
    /// connections; past that, sign-in answers 503 at once. The default holds a
    /// lecture hall signing in together.
    #[serde(default = "default_bind_queue")]
    pub bind_queue: usize,
    /// How long a password check waits for a bind connection before a 503.
    #[serde(default = "default_bind_wait", with = "humantime_serde")]
    pub bind_wait: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportAccount {
    pub bind_dn: String,
    pub bind_password: SecretString,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashingSettings {
    /// argon2id memory cost in KiB (OWASP's minimum is 19 MiB with t=2).
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
    /// Hashes computed at once; defaults to the number of CPUs.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a hashing slot before the excess gets "busy".
    pub max_waiting: usize,
}

impl Default for HashingSettings {
    fn default() -> Self {
        HashingSettings {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
            max_concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
            max_waiting: 64,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    /// `Université Exemple <noreply@univ-demo.fr>`
    pub from: String,
    pub transport: MailTransport,
    /// How often the outbox worker looks for mail to send.
    #[serde(default = "default_poll_interval", with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Wait before the first retry of a failed send; doubles each time, up to 1 h.
    #[serde(default = "default_retry_base", with = "humantime_serde")]
    pub retry_base: Duration,
    /// Attempts before a message is given up (and shown as failed to the helpdesk).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// How long a claimed message is a worker's: renewed every third of it while
    /// the send goes on, so a crashed instance's message is sent again this soon
    /// after, and a slow live send is never taken over. Under 3 s counts as 3 s.
    #[serde(default = "MailSettings::default_lease", with = "humantime_serde")]
    pub lease: Duration,
}

impl MailSettings {
    fn default_lease() -> Duration {
        Duration::from_secs(10)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Implicit TLS (port 465).
    Tls,
    /// Plain connection upgraded with STARTTLS, required (port 587).
    Starttls,
    /// No encryption: only for a relay on the same host.
    None,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum MailTransport {
    Smtp {
        host: String,
        port: u16,
        security: SmtpSecurity,
        username: Option<String>,
        password: Option<SecretString>,
        /// PEM certificate(s) of a private CA that signed the relay's certificate, trusted
        /// in addition to the public roots (many universities run their own PKI).
        ca_file: Option<PathBuf>,
        #[serde(default = "default_smtp_timeout", with = "humantime_serde")]
        timeout: Duration,
    },
    /// Writes each message as an `.eml` file: for development.
    File { dir: PathBuf },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Pretty,
    /// One JSON object per line, for log collectors.
    #[default]
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `guichet=debug,info`.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::default(),
            level: default_log_level(),
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    4096
}
fn default_db_connections() -> u32 {
    10
}
fn default_ldap_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_ldap_pool() -> usize {
    8
}
fn default_bind_queue() -> usize {
    128
}
fn default_bind_wait() -> Duration {
    Duration::from_secs(3)
}
fn default_password_write() -> PasswordWrite {
    PasswordWrite::Hash
}
fn default_smtp_timeout() -> Duration {
    Duration::from_secs(20)
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_retry_base() -> Duration {
    Duration::from_secs(30)
}
fn default_max_attempts() -> u32 {
    12
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// Keys whose value may instead be read from a file named by `<key>_file`
/// (or `GUICHET_<KEY>_FILE`), as container secrets are mounted.
const SECRET_KEYS: &[&str] = &[
    "database.url",
    "directory.bind_password",
    "directory.import.bind_password",
    "mail.transport.password",
    "oidc.key_encryption_key",
];

impl Settings {
    /// Reads the files in order (later ones win), then the environment.
    pub fn load(files: &[PathBuf]) -> Result<Settings, ConfigError> {
        let mut figment = Figment::new();
        for file in files {
            if !file.is_file() {
                return Err(ConfigError::new(
                    "--config",
                    format!("{} is not a readable file", file.display()),
                ));
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        Self::from_figment(figment.merge(Env::prefixed("GUICHET_").ignore(&["config"]).split("__")))
    }

    /// Parses one TOML text, without the environment: for `check-config` and tests.
    pub fn from_toml(text: &str) -> Result<Settings, ConfigError> {
        Self::from_figment(Figment::from(Toml::string(text)))
    }

    fn from_figment(figment: Figment) -> Result<Settings, ConfigError> {
        let mut tree: Dict = figment.extract().map_err(from_figment_error)?;
        for key in SECRET_KEYS {
            read_secret_file(&mut tree, key)?;
        }
        let settings: Settings = Figment::from(Serialized::defaults(tree))
            .extract()
            .map_err(from_figment_error)?;
        settings.check()?;
        Ok(settings)
    }

    /// Cross-field and semantic checks that serde cannot express.
    fn check(&self) -> Result<(), ConfigError> {
        let public = &self.server.public_url;
        if !matches!(public.scheme(), "http" | "https") || public.host().is_none() {
            return Err(ConfigError::new(
                "server.public_url",
                "expected an absolute http(s) URL such as https://compte.univ-demo.fr/",
            ));
        }
        let db = self.database.url.expose_secret();
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres:")
            || db.starts_with("postgresql:"))
        {
            return Err(ConfigError::new(
                "database.url",
                "expected sqlite://PATH or postgres://USER@HOST/DB",
            ));
        }
        if self.database.max_connections == 0 {
            return Err(ConfigError::new(
                "database.max_connections",
                "expected at least 1",
            ));
        }
        self.check_directory()?;
        if self.profile.activation.order == ActivationOrder::PasswordFirst
            && self.directory.password_write == PasswordWrite::PasswordModify
        {
            return Err(ConfigError::new(
                "directory.password_write",
                "profile.activation.order = \"password_first\" keeps the password until the link is clicked, which needs password_write = \"hash\"",
            ));
        }
        self.check_hashing()?;
        self.check_limits()?;
        self.check_connections()?;
        if self.mail.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "mail.from",
                "expected a mailbox such as `Université <noreply@univ-demo.fr>`",
            ));
        }
        if self.mail.retry_base < Duration::from_secs(1) || self.mail.max_attempts == 0 {
            return Err(ConfigError::new(
                "mail.retry_base",
                "expected retry_base of at least 1s and max_attempts of at least 1",
            ));
        }
        if let MailTransport::Smtp { host, port, .. } = &self.mail.transport {
            if host.trim().is_empty() || *port == 0 {
                return Err(ConfigError::new(
                    "mail.transport",
                    "expected a host name and a non-zero port",
                ));
            }
        }
        let lifetime = self.cas.ticket_lifetime;
        if lifetime < Duration::from_secs(1) || lifetime > Duration::from_secs(300) {
            return Err(ConfigError::new(
                "cas.ticket_lifetime",
                "expected 1s to 5m (the CAS specification recommends at most 5 minutes)",
            ));
        }
        if self.invitations.interval < Duration::from_secs(1) {
            return Err(ConfigError::new(
                "invitations.interval",
                "expected at least 1s, e.g. \"5m\"",
            ));
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                "expected a filter such as `info` or `guichet=debug,info`",
            ));
        }
        self.profile.check()
    }

    fn check_directory(&self) -> Result<(), ConfigError> {
        let dir = &self.directory;
        if !matches!(dir.url.scheme(), "ldap" | "ldaps" | "ldapi") {
            return Err(ConfigError::new(
                "directory.url",
                "expected an ldap://, ldaps:// or ldapi:// URL",
            ));
        }
        if dir.starttls && dir.url.scheme() != "ldap" {
            return Err(ConfigError::new(
                "directory.starttls",
                "StartTLS only applies to ldap:// URLs",
            ));
        }
        for (key, dn) in [
            ("directory.people_dn", &dir.people_dn),
            ("directory.bind_dn", &dir.bind_dn),
        ] {
            if !looks_like_dn(dn) {
                return Err(ConfigError::new(
                    key,
                    "expected a DN such as ou=people,dc=univ-demo,dc=fr",
                ));
            }
        }
        if dir.pool_size == 0 || dir.timeout.is_zero() {
            return Err(ConfigError::new(
                "directory.pool_size",
                "pool_size and timeout must be greater than zero",
            ));
        }
        if dir.bind_wait.is_zero() {
            return Err(ConfigError::new(
                "directory.bind_wait",
                "expected a wait greater than zero, e.g. \"3s\"",
            ));
        }
        Ok(())
    }

    fn check_limits(&self) -> Result<(), ConfigError> {
        let l = &self.limits;
        for (key, limit) in [
            ("limits.per_address", l.per_address),
            ("limits.per_identifier", l.per_identifier),
        ] {
            if limit.max < 1 || limit.window.is_zero() || limit.window > DAY {
                return Err(ConfigError::new(
                    key,
                    "expected max >= 1 and a window between 1 s and 1 day",
                ));
            }
        }
        let t = l.per_account;
        if t.free < 1
            || t.window.is_zero()
            || t.first_delay.is_zero()
            || t.first_delay > t.max_delay
        {
            return Err(ConfigError::new(
                "limits.per_account",
                "expected free >= 1, a window up to 1 day and 0 < first_delay <= max_delay <= 1 day",
            ));
        }
        Ok(())
    }

    fn check_hashing(&self) -> Result<(), ConfigError> {
        let h = &self.hashing;
        argon2::Params::new(h.memory_kib, h.iterations, h.parallelism, None).map_err(|e| {
            ConfigError::new(
                "hashing",
                format!("argon2 parameters refused ({e}); expected memory_kib >= 8 * parallelism, iterations >= 1"),
            )
        })?;
        if h.max_concurrent == 0 {
            return Err(ConfigError::new(
                "hashing.max_concurrent",
                "expected at least 1",
            ));
        }
        Ok(())
    }

    fn check_connections(&self) -> Result<(), ConfigError> {
        let server = &self.server;
        for (key, timeout) in [
            ("server.header_read_timeout", server.header_read_timeout),
            ("server.idle_timeout", server.idle_timeout),
        ] {
            if timeout.is_zero() {
                return Err(ConfigError::new(
                    key,
                    "expected a duration greater than zero, e.g. \"10s\"",
                ));
            }
        }
        if server.max_connections == 0 {
            return Err(ConfigError::new(
                "server.max_connections",
                "expected at least 1",
            ));
        }
        Ok(())
    }

    /// Cookies get `Secure` when students reach Guichet over https.
    pub fn secure_cookies(&self) -> bool {
        self.server.public_url.scheme() == "https"
    }
}

/// A rough DN shape check: comma-separated `attr=value` pairs. The directory itself is
/// the judge; this only catches a URL or an empty string pasted in the wrong key.
fn looks_like_dn(dn: &str) -> bool {
    !dn.trim().is_empty()
        && dn.split(',').all(|rdn| {
            rdn.split_once('=')
                .is_some_and(|(attr, value)| !attr.trim().is_empty() && !value.is_empty())
        })
}

/// Replaces `<key>_file = "/path"` by `<key> = <file contents>`, trailing newline
/// dropped. Having both is an error: which one wins would be a guess.
fn read_secret_file(tree: &mut Dict, key: &str) -> Result<(), ConfigError> {
    let (parents, leaf) = key.rsplit_once('.').unwrap_or(("", key));
    let mut table = tree;
    for part in parents.split('.').filter(|p| !p.is_empty()) {
        match table.get_mut(part) {
            Some(Value::Dict(_, child)) => table = child,
            _ => return Ok(()),
        }
    }
    let file_key = format!("{leaf}_file");
    let Some(path) = table.remove(&file_key) else {
        return Ok(());
    };
    let path = path
        .as_str()
        .map(Path::new)
        .ok_or_else(|| ConfigError::new(format!("{key}_file"), "expected the path of a file"))?;
    if table.contains_key(leaf) {
        return Err(ConfigError::new(
            key,
            format!("set either {leaf} or {leaf}_file, not both"),
        ));
    }
    let contents = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new(
            format!("{key}_file"),
            format!("cannot read {}: {}", path.display(), e.kind()),
        )
    })?;
    let secret = contents.trim_end_matches(['\r', '\n']).to_owned();
    table.insert(leaf.to_owned(), Value::from(secret));
    Ok(())
}

fn from_figment_error(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let mut key = error.path.join(".");
    let message = match &error.kind {
        Kind::MissingField(field) => {
            key = join_key(&key, field);
            "missing: this key is required".to_owned()
        }
        Kind::UnknownField(field, expected) => {
            key = join_key(&key, field);
            format!("unknown key; expected one of: {}", expected.join(", "))
        }
        Kind::UnknownVariant(found, expected) => {
            format!(
                "`{found}` is not allowed; expected one of: {}",
                expected.join(", ")
            )
        }
        other => other.to_string(),
    };
    let source = error
        .metadata
        .as_ref()
        .and_then(|m| m.source.as_ref())
        .map(|s| format!(" (from {s})"))
        .unwrap_or_default();
    ConfigError::new(
        if key.is_empty() {
            "(top level)".to_owned()
        } else {
            key
        },
        format!("{message}{source}"),
    )
}

/// figment puts the field in the path for some errors and not for others.
fn join_key(parent: &str, field: &str) -> String {
    if parent == field || parent.ends_with(&format!(".{field}")) {
        parent.to_owned()
    } else if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

#[cfg(test)]
mod tests;
