//! The `guichet` command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use guichet::cas::services::NewService;
use guichet::cli::{self, CliError};
use guichet::config::Settings;
use guichet::dev::DevOptions;
use guichet::oidc::clients::NewClient;

/// jemalloc gives an argon2 block (19 MiB by default) back to the system as soon as
/// its hash is done: allocations of 8 MiB and more live in an arena it purges at
/// once (smaller `hashing.memory_kib` blocks go back within about 10 s). glibc's
/// malloc keeps freed blocks of that size in its per-thread arenas: 40 password
/// resets took the server from 23 to 396 MiB, for good; mimalloc kept the idle
/// hashing threads' blocks (54 MiB at start). Figures: `cargo bench --bench load`.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
    /// CAS services (the ENT and other CAS-only applications).
    CasServices {
        #[command(subcommand)]
        action: CasServicesAction,
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
enum CasServicesAction {
    /// Register a service: by its exact URL, or by a pattern whose host is written out.
    Add {
        /// The name admins and the audit log call it (`ent`, `moodle`).
        name: String,
        /// The name students see.
        #[arg(long)]
        display_name: String,
        /// The service URL, matched exactly once normalised (query included).
        #[arg(long, conflicts_with = "pattern", required_unless_present = "pattern")]
        url: Option<String>,
        /// A regular expression the whole service URL must match:
        /// `https://ent\.univ\.fr/.*` (the host written out, dots as `\.`).
        #[arg(long)]
        pattern: Option<String>,
        /// A claim of `[oidc.claims]` released as a CAS attribute. Repeatable.
        #[arg(long = "attribute")]
        attributes: Vec<String>,
        /// Allow proxying: the pattern the service's pgtUrl must match.
        #[arg(long)]
        proxy_callbacks: Option<String>,
        /// Where single logout is posted: `service` (the URL the ticket was for) or a URL.
        #[arg(long)]
        single_logout: Option<String>,
    },
    /// The registered services, one per line.
    List,
    /// One service's registration.
    Show { name: String },
    /// Remove a service; its outstanding tickets die with it.
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// Create new signing keys, published now and signing after --publish-ahead
    /// (clients that cached the JWKS have fetched them by then); the old ones sign
    /// until then and stay published for --overlap, so tokens they signed still
    /// verify.
    Rotate {
        #[arg(long, default_value = "2days")]
        overlap: humantime_serde::re::humantime::Duration,
        /// At least 5min30s: the JWKS cache lifetime and an instance's reread.
        #[arg(long, default_value = "10min", conflicts_with = "immediately")]
        publish_ahead: humantime_serde::re::humantime::Duration,
        /// The new keys sign now (a key is compromised): clients that cached the
        /// JWKS refuse new ID tokens until they fetch it again.
        #[arg(long)]
        immediately: bool,
    },
    /// The published keys: kid, algorithm, created, when each signs (never the
    /// private part).
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(run(cli)),
        Err(e) => Err(CliError::Failed(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    cli::finish(outcome)
}

async fn run(cli: Cli) -> Result<(), CliError> {
    let settings = || Settings::load(&cli.config);
    match cli.command {
        Command::CheckConfig { files } => {
            let files = if files.is_empty() {
                &cli.config
            } else {
                &files
            };
            cli::serve::check_config(files)
        }
        Command::Serve => cli::serve::serve(settings()?).await,
        Command::Migrate => cli::serve::migrate(settings()?).await,
        Command::Import { file } => cli::import::run(settings()?, &file).await,
        Command::Audit {
            account,
            kind,
            since,
            until,
            failures,
            limit,
            json,
        } => {
            let query = cli::audit::Query {
                account,
                kind,
                since,
                until,
                failures_only: failures,
                limit,
            };
            cli::audit::run(settings()?, query, json).await
        }
        Command::Accounts { action } => accounts(settings()?, action).await,
        Command::Clients { action } => clients(settings()?, action).await,
        Command::CasServices { action } => cas_services(settings()?, action).await,
        Command::Keys { action } => keys(settings()?, action).await,
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
            cli::dev::run(options).await
        }
    }
}

async fn accounts(settings: Settings, action: AccountsAction) -> Result<(), CliError> {
    match action {
        AccountsAction::Invite { resend } => {
            cli::accounts::resend_invitation(settings, &resend).await
        }
        AccountsAction::Show { account, json } => {
            cli::accounts::show(settings, &account, json).await
        }
    }
}

async fn clients(settings: Settings, action: ClientsAction) -> Result<(), CliError> {
    match action {
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
                client_id,
                name,
                public,
                redirect_uris,
                post_logout_redirect_uris,
                backchannel_logout_uri,
                first_party: !third_party,
                introspection,
                id_token_alg,
            };
            cli::clients::add(settings, new).await
        }
        ClientsAction::List => cli::clients::list(settings).await,
        ClientsAction::Show { client_id } => cli::clients::show(settings, &client_id).await,
        ClientsAction::Remove { client_id } => cli::clients::remove(settings, &client_id).await,
    }
}

async fn cas_services(settings: Settings, action: CasServicesAction) -> Result<(), CliError> {
    match action {
        CasServicesAction::Add {
            name,
            display_name,
            url,
            pattern,
            attributes,
            proxy_callbacks,
            single_logout,
        } => {
            let new = NewService {
                name,
                display_name,
                url,
                pattern,
                attributes,
                proxy_callbacks,
                single_logout,
            };
            cli::cas_services::add(settings, new).await
        }
        CasServicesAction::List => cli::cas_services::list(settings).await,
        CasServicesAction::Show { name } => cli::cas_services::show(settings, &name).await,
        CasServicesAction::Remove { name } => cli::cas_services::remove(settings, &name).await,
    }
}

async fn keys(settings: Settings, action: KeysAction) -> Result<(), CliError> {
    match action {
        KeysAction::Rotate {
            overlap,
            publish_ahead,
            immediately,
        } => {
            let ahead = match immediately {
                true => cli::keys::Handover::Immediately,
                false => cli::keys::Handover::Ahead(publish_ahead.into()),
            };
            cli::keys::rotate(settings, ahead, overlap.into()).await
        }
        KeysAction::List => cli::keys::list(settings).await,
    }
}
