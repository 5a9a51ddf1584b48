//! The `guichet` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use guichet::config::Settings;
use guichet::dev::{self, DevOptions};
use guichet::domain::Login;
use guichet::flows::invitation::Resent;
use guichet::server;
use guichet::store::{AuditFilter, Store};
use guichet::telemetry;

/// Guichet: self-service desk for university accounts (activation, password reset,
/// back-up e-mail) and OpenID Connect provider, on top of an OpenLDAP directory.
#[derive(Debug, Parser)]
#[command(name = "guichet", version, about, long_about = None)]
struct Cli {
    /// Settings file (TOML). Repeat to layer files, e.g. the main settings and then a
    /// profile; later files win, and GUICHET_* environment variables win over all.
    #[arg(
        short,
        long = "config",
        global = true,
        env = "GUICHET_CONFIG",
        value_delimiter = ','
    )]
    config: Vec<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server: migrate the database, check the directory, then serve
    /// until SIGTERM or Ctrl-C.
    Serve,
    /// Start the demo: a private slapd with sample students, SQLite and a mail folder
    /// under --data-dir, and the web server on localhost. Keeps its data between runs.
    Dev {
        /// Where the demo keeps its directory, database and mail.
        #[arg(long, default_value = ".guichet-dev")]
        data_dir: PathBuf,
        /// Throw away the previous run's data and start from the sample tree again.
        #[arg(long)]
        reset: bool,
        /// Port of the web server on 127.0.0.1.
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Institution profile: paris-cite, perpignan or sorbonne.
        #[arg(long, default_value = "paris-cite")]
        profile: String,
    },
    /// Validate settings files without starting anything. Prints "ok" or the first
    /// problem, naming the key; exits 2 on a problem.
    CheckConfig {
        /// The files to check, layered in order (default: --config).
        files: Vec<PathBuf>,
    },
    /// Apply database migrations and exit (`serve` also does this at start).
    Migrate,
    /// Create or update student entries from the registration office's CSV export
    /// (columns: student_number, ine, given_name, surname, personal_email, [login]).
    /// Reports every bad row with its line number and imports the good ones. Exit
    /// code 3 when some rows were rejected.
    Import {
        /// The CSV file (`;` or `,`, UTF-8, header row).
        file: PathBuf,
    },
    /// The audit log: security events, newest first.
    Audit {
        /// Only this account: a login, or what was typed (an e-mail) for requests
        /// that matched no account.
        #[arg(long)]
        account: Option<String>,
        /// Only this kind (`reset.request`), or a family ending in `.` (`reset.`).
        #[arg(long)]
        kind: Option<String>,
        /// From this time: a date (2026-11-20), a time (2026-11-20T08:00:00Z) or an
        /// age (24h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// Until this time, in the same forms.
        #[arg(long)]
        until: Option<String>,
        /// Only events whose outcome is not `ok`.
        #[arg(long)]
        failures: bool,
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// One JSON object per line instead of columns.
        #[arg(long)]
        json: bool,
    },
    /// OpenID Connect clients (the ENT, Moodle, webmail).
    Clients {
        #[command(subcommand)]
        action: ClientsAction,
    },
    /// OpenID Connect signing keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Helpdesk and admin actions on student accounts.
    Accounts {
        #[command(subcommand)]
        action: AccountsAction,
    },
}

#[derive(Debug, Subcommand)]
enum ClientsAction {
    /// Register a client. Its secret is printed once, now; only its hash is kept.
    Add {
        /// The client id the application is configured with.
        client_id: String,
        /// The name students see.
        #[arg(long)]
        name: String,
        /// Where codes may be sent; matched exactly. Repeat for several.
        #[arg(long = "redirect-uri", required = true)]
        redirect_uris: Vec<String>,
        /// Where the application may send students after logout. Repeatable.
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Back-channel logout endpoint of the application.
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// A public client (no secret; PKCE S256 required).
        #[arg(long)]
        public: bool,
        /// Ask the student's consent (not for the institution's own applications).
        #[arg(long)]
        third_party: bool,
        /// A resource server (Dovecot behind Roundcube): may introspect the tokens
        /// of other clients. Any other client introspects only its own.
        #[arg(long)]
        introspection: bool,
        /// ID token signing algorithm: RS256, ES256 or EdDSA.
        #[arg(long, default_value = "RS256")]
        id_token_alg: String,
    },
    /// The registered clients, one per line.
    List,
    /// One client's registration (never its secret).
    Show { client_id: String },
    /// Remove a client and revoke every token it holds.
    Remove { client_id: String },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create new signing keys; the old ones stop signing at once and stay published
    /// for --overlap, so tokens they signed still verify.
    Rotate {
        #[arg(long, default_value = "2days")]
        overlap: humantime_serde::re::humantime::Duration,
    },
    /// The published keys: kid, algorithm, created, retired (never the private part).
    List,
}

#[derive(Debug, Subcommand)]
enum AccountsAction {
    /// Invitations to activate.
    Invite {
        /// Queue the invitation again for this login (it must await activation and
        /// have a personal e-mail); a running `guichet serve` sends it.
        #[arg(long, value_name = "LOGIN")]
        resend: String,
    },
    /// The helpdesk diagnostic of an account: state, personal e-mail, last mails
    /// and whether they left, last failed attempts.
    Show {
        /// A login, a student number or a personal e-mail.
        account: String,
        /// One JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Exit codes: 0 success, 1 a service could not be reached or failed, 2 bad settings.
const EXIT_FAILURE: u8 = 1;
const EXIT_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_FAILURE);
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::CheckConfig { files } => {
            let files = if files.is_empty() { cli.config } else { files };
            match Settings::load(&files) {
                Ok(settings) => {
                    println!("ok: profile {} is valid", settings.profile.id);
                    ExitCode::SUCCESS
                }
                Err(e) => config_failure(&e),
            }
        }
        Command::Serve => match Settings::load(&cli.config) {
            Ok(settings) => serve(settings).await,
            Err(e) => config_failure(&e),
        },
        Command::Migrate => match Settings::load(&cli.config) {
            Ok(settings) => migrate(settings).await,
            Err(e) => config_failure(&e),
        },
        Command::Accounts {
            action: AccountsAction::Invite { resend },
        } => match Settings::load(&cli.config) {
            Ok(settings) => resend_invitation(settings, &resend).await,
            Err(e) => config_failure(&e),
        },
        Command::Accounts {
            action: AccountsAction::Show { account, json },
        } => match Settings::load(&cli.config) {
            Ok(settings) => show_account(settings, &account, json).await,
            Err(e) => config_failure(&e),
        },
        Command::Audit {
            account,
            kind,
            since,
            until,
            failures,
            limit,
            json,
        } => {
            let settings = match Settings::load(&cli.config) {
                Ok(settings) => settings,
                Err(e) => return config_failure(&e),
            };
            let (since, until) = match (parse_when(since.as_deref()), parse_when(until.as_deref()))
            {
                (Ok(since), Ok(until)) => (since, until),
                (Err(e), _) | (_, Err(e)) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(EXIT_CONFIG);
                }
            };
            let filter = AuditFilter {
                account: account.map(|a| account_key(&settings, &a)),
                kind,
                since,
                until,
                failures_only: failures,
                limit,
            };
            audit(settings, &filter, json).await
        }
        Command::Clients { action } => match Settings::load(&cli.config) {
            Ok(settings) => clients(settings, action).await,
            Err(e) => config_failure(&e),
        },
        Command::Keys { action } => match Settings::load(&cli.config) {
            Ok(settings) => keys(settings, action).await,
            Err(e) => config_failure(&e),
        },
        Command::Import { file } => match Settings::load(&cli.config) {
            Ok(settings) => import(settings, &file).await,
            Err(e) => config_failure(&e),
        },
        Command::Dev {
            data_dir,
            reset,
            port,
            profile,
        } => {
            let options = DevOptions {
                data_dir,
                reset,
                port,
                profile,
            };
            run_dev(options).await
        }
    }
}

fn config_failure(error: &guichet::config::ConfigError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(EXIT_CONFIG)
}

fn failure(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::from(EXIT_FAILURE)
}

async fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log);
    let listen = settings.server.listen;
    let state = match server::prepare(settings).await {
        Ok(state) => state,
        Err(e) => return failure(e),
    };
    let listener = match server::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => return failure(e),
    };
    let shutdown = server::shutdown_signal();
    tracing::info!(%listen, "guichet is listening");
    match server::run(listener, state, shutdown).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(e),
    }
}

async fn migrate(settings: Settings) -> ExitCode {
    let store = match Store::connect(&settings.database).await {
        Ok(store) => store,
        Err(e) => return failure(e),
    };
    let result = store.migrate().await;
    store.close().await;
    match result {
        Ok(()) => {
            println!("ok: database schema is up to date");
            ExitCode::SUCCESS
        }
        Err(e) => failure(e),
    }
}

async fn run_dev(options: DevOptions) -> ExitCode {
    // slapadd and slapd start-up block; they take well under a second.
    let (env, settings) = match tokio::task::block_in_place(|| dev::prepare(&options)) {
        Ok(prepared) => prepared,
        Err(dev::DevError::Config(e)) => return config_failure(&e),
        Err(e) => return failure(e),
    };
    telemetry::init(&settings.log);
    let listen = settings.server.listen;
    let listener = match server::bind(listen).await {
        Ok(listener) => listener,
        Err(e) => return failure(format!("{e} (choose another with --port)")),
    };
    let addr = listener.local_addr().unwrap_or(listen);
    let state = match server::prepare(settings).await {
        Ok(state) => state,
        Err(e) => return failure(e),
    };
    if let Err(e) = guichet::web::dev_app::register_client(&state).await {
        return failure(format!("demo client: {e}"));
    }
    let shutdown = server::shutdown_signal();
    println!("{}", dev::banner(&env, addr));
    let result = server::run(listener, state, shutdown).await;
    drop(env);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failure(e),
    }
}

async fn resend_invitation(settings: Settings, login: &str) -> ExitCode {
    let Ok(login) = login.parse::<Login>() else {
        eprintln!("error: `{login}` is not a login (letters, digits, dots, dashes)");
        return ExitCode::from(EXIT_CONFIG);
    };
    let state = match server::prepare(settings).await {
        Ok(state) => state,
        Err(e) => return failure(e),
    };
    let outcome = server::invitations(&state, &[])
        .resend(&login, guichet::store::unix_now())
        .await;
    state.store.close().await;
    match outcome {
        Ok(Resent::Sent { email }) => {
            println!("ok: invitation for {login} queued to {email}");
            ExitCode::SUCCESS
        }
        Ok(Resent::UnknownLogin) => failure(format!("no account has the login {login}")),
        Ok(Resent::NotAwaiting) => failure(format!("{login} is not awaiting activation")),
        Ok(Resent::SharedAddress { logins }) => failure(format!(
            "nothing sent: {login}'s personal e-mail is also that of {}; give each account its own",
            logins.join(", ")
        )),
        Ok(Resent::NoPersonalEmail) => {
            failure(format!("{login} has no personal e-mail (supannMailPerso)"))
        }
        Err(e) => failure(e),
    }
}

/// Some rows of an import were rejected (the others were imported).
const EXIT_ROWS_REJECTED: u8 = 3;

async fn import(settings: Settings, file: &std::path::Path) -> ExitCode {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) => return failure(format!("cannot read {}: {e}", file.display())),
    };
    let parsed = match guichet::flows::import::parse(&text) {
        Ok(parsed) => parsed,
        Err(e) => return failure(format!("{}: {e}", file.display())),
    };
    if settings.directory.import.is_none() {
        return config_failure(&guichet::config::ConfigError::new(
            "directory.import",
            "expected bind_dn and bind_password of the account allowed to create entries",
        ));
    }
    server::install_crypto_provider();
    let directory = match guichet::hashing::Hasher::new(&settings.hashing)
        .map_err(|e| e.to_string())
        .and_then(|h| {
            guichet::directory::Directory::new(&settings.directory, h).map_err(|e| e.to_string())
        }) {
        Ok(directory) => directory,
        Err(e) => return failure(format!("directory: {e}")),
    };
    if let Err(e) = directory.ping().await {
        return failure(format!("directory: {e}"));
    }
    match guichet::flows::import::apply(&directory, &settings.profile, parsed).await {
        Ok(report) => {
            for (line, problem) in &report.rejected {
                println!("line {line}: {problem}");
            }
            println!(
                "{} created, {} updated, {} unchanged, {} rejected",
                report.created,
                report.updated,
                report.unchanged,
                report.rejected.len()
            );
            if report.rejected.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(EXIT_ROWS_REJECTED)
            }
        }
        Err(e) => failure(e),
    }
}

/// A time filter: a date, an RFC 3339 time, or an age back from now.
fn parse_when(raw: Option<&str>) -> Result<Option<i64>, String> {
    use time::format_description::well_known::Rfc3339;
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(at) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(Some(at.unix_timestamp()));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(raw, &date_format) {
        return Ok(Some(date.midnight().assume_utc().unix_timestamp()));
    }
    match humantime_serde::re::humantime::parse_duration(raw) {
        Ok(age) => Ok(Some(guichet::store::unix_now() - age.as_secs() as i64)),
        Err(_) => Err(format!(
            "`{raw}` is not a date (2026-11-20), a time (2026-11-20T08:00:00Z) or an age (24h)"
        )),
    }
}

/// Events name an account by its DN; admins type its login.
fn account_key(settings: &Settings, typed: &str) -> String {
    match typed.parse::<Login>() {
        Ok(login) if !typed.contains('@') && !typed.contains('=') => {
            format!("uid={},{}", login.as_str(), settings.directory.people_dn)
        }
        _ => typed.to_owned(),
    }
}

async fn audit(settings: Settings, filter: &AuditFilter, json: bool) -> ExitCode {
    let store = match Store::connect(&settings.database).await {
        Ok(store) => store,
        Err(e) => return failure(e),
    };
    let records = store.audit_log(filter).await;
    store.close().await;
    let records = match records {
        Ok(records) => records,
        Err(e) => return failure(e),
    };
    for record in &records {
        if json {
            println!("{}", serde_json::to_string(record).unwrap_or_default());
        } else {
            println!(
                "{}  {:<24} {:<16} {}  {}  {}",
                when(record.at),
                record.kind,
                record.outcome,
                record.account.as_deref().unwrap_or("-"),
                record.client_ip.as_deref().unwrap_or("-"),
                record.detail
            );
        }
    }
    if !json {
        eprintln!("{} event(s)", records.len());
    }
    ExitCode::SUCCESS
}

fn when(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

async fn show_account(settings: Settings, typed: &str, json: bool) -> ExitCode {
    let state = match server::prepare(settings).await {
        Ok(state) => state,
        Err(e) => return failure(e),
    };
    let help = guichet::flows::help::Help {
        store: &state.store,
        directory: &state.directory,
        profile: &state.settings.profile,
        outbox: state.outbox.waker(),
        origin: Default::default(),
    };
    let diagnostic = help.diagnose(typed).await;
    state.store.close().await;
    let diagnostic = match diagnostic {
        Ok(diagnostic) => diagnostic,
        Err(e) => return failure(e),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnostic).unwrap_or_default()
        );
    } else {
        print_diagnostic(&diagnostic);
    }
    if diagnostic.accounts.is_empty() {
        return failure(format!("no account answers to {typed}"));
    }
    ExitCode::SUCCESS
}

fn print_diagnostic(diagnostic: &guichet::flows::help::Diagnostic) {
    if diagnostic.accounts.len() > 1 {
        println!(
            "warning: {} accounts answer to {}",
            diagnostic.accounts.len(),
            diagnostic.typed
        );
    }
    for account in &diagnostic.accounts {
        println!("login:           {}", account.login);
        println!("dn:              {}", account.dn);
        println!(
            "name:            {}",
            account.display_name.as_deref().unwrap_or("-")
        );
        println!("state:           {}", account.state);
        println!(
            "personal e-mail: {}",
            account.personal_email.as_deref().unwrap_or("-")
        );
        println!(
            "student number:  {}",
            account.student_id.as_deref().unwrap_or("-")
        );
        println!(
            "terms accepted:  {}",
            account.terms_version.as_deref().unwrap_or("-")
        );
        println!("last mails:");
        for mail in &account.mails {
            let outcome = match (mail.sent_at, mail.failed_at) {
                (Some(at), _) => format!("sent {}", when(at)),
                (None, Some(_)) => format!("FAILED: {}", mail.last_error.as_deref().unwrap_or("-")),
                (None, None) => format!(
                    "pending after {} attempt(s){}",
                    mail.attempts,
                    mail.last_error
                        .as_deref()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ),
            };
            println!(
                "  {}  {:<20} to {}  {}",
                when(mail.created_at),
                mail.kind,
                mail.recipient,
                outcome
            );
        }
        if account.mails.is_empty() {
            println!("  none");
        }
        println!("last failures:");
        for failure in &account.failures {
            println!(
                "  {}  {:<24} {}  from {}",
                when(failure.at),
                failure.kind,
                failure.outcome,
                failure.client_ip.as_deref().unwrap_or("-")
            );
        }
        if account.failures.is_empty() {
            println!("  none");
        }
    }
}

/// The store, migrated: admin commands may run before the first `serve`.
async fn admin_store(settings: &Settings) -> Result<Store, ExitCode> {
    let store = Store::connect(&settings.database).await.map_err(failure)?;
    store.migrate().await.map_err(failure)?;
    Ok(store)
}

async fn clients(settings: Settings, action: ClientsAction) -> ExitCode {
    use guichet::oidc::clients::{ClientError, NewClient, register};
    let store = match admin_store(&settings).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let now = guichet::store::unix_now();
    let code = match action {
        ClientsAction::Add {
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            public,
            third_party,
            introspection,
            id_token_alg,
        } => {
            let new = NewClient {
                client_id: client_id.clone(),
                name,
                public,
                redirect_uris,
                post_logout_redirect_uris,
                backchannel_logout_uri,
                first_party: !third_party,
                introspection,
                id_token_alg,
            };
            match register(&store, new, now).await {
                Ok(Some(secret)) => {
                    println!("client_id:     {client_id}");
                    println!("client_secret: {secret}");
                    println!("(shown once: only its hash is kept)");
                    ExitCode::SUCCESS
                }
                Ok(None) => {
                    println!("client_id: {client_id} (public: PKCE S256 required, no secret)");
                    ExitCode::SUCCESS
                }
                Err(ClientError::Store(e)) => failure(e),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_CONFIG)
                }
            }
        }
        ClientsAction::List => match store.clients().await {
            Ok(clients) => {
                for c in clients {
                    let kind = match (c.secret_hash.is_some(), c.introspection) {
                        (true, true) => "confidential, introspection",
                        (true, false) => "confidential",
                        (false, _) => "public",
                    };
                    println!(
                        "{}  {}  {kind}  {}",
                        c.client_id,
                        c.name,
                        c.redirect_uris.join(" ")
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => failure(e),
        },
        ClientsAction::Show { client_id } => match store.client(&client_id).await {
            Ok(Some(client)) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&client).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Ok(None) => failure(format!("no client {client_id}")),
            Err(e) => failure(e),
        },
        ClientsAction::Remove { client_id } => match store.remove_client(&client_id).await {
            Ok(true) => {
                println!("ok: client {client_id} removed, its tokens revoked");
                ExitCode::SUCCESS
            }
            Ok(false) => failure(format!("no client {client_id}")),
            Err(e) => failure(e),
        },
    };
    store.close().await;
    code
}

async fn keys(settings: Settings, action: KeysAction) -> ExitCode {
    let store = match admin_store(&settings).await {
        Ok(store) => store,
        Err(code) => return code,
    };
    let now = guichet::store::unix_now();
    let code = match action {
        KeysAction::Rotate { overlap } => {
            let overlap = overlap.as_secs() as i64;
            let sealer =
                guichet::oidc::keys::Sealer::new(settings.oidc.key_encryption_key.as_ref());
            let rotated = match sealer {
                Ok(sealer) => guichet::oidc::keys::rotate(&store, &sealer, now, overlap).await,
                Err(e) => Err(e),
            };
            match rotated {
                Ok(kids) => {
                    println!(
                        "ok: new signing keys {}; the previous ones stay published until {}",
                        kids.join(", "),
                        when(now + overlap)
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => failure(e),
            }
        }
        KeysAction::List => match store.published_keys(now).await {
            Ok(keys) => {
                for key in keys {
                    let state = key
                        .retired_at
                        .map_or_else(|| "active".to_owned(), |at| format!("retired {}", when(at)));
                    println!(
                        "{}  {:<6} created {}  {state}",
                        key.kid,
                        key.alg,
                        when(key.created_at)
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => failure(e),
        },
    };
    store.close().await;
    code
}
