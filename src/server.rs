//! Start-up and serving: connect and migrate the store, reach the directory, then
//! serve HTTP (or HTTPS through rustls, see `http`) and run the outbox worker until a
//! shutdown signal, finishing the requests and mail in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

mod http;

use crate::app::App;
use crate::config::Settings;
use crate::directory::Directory;
use crate::flows::invitation::Invitations;
use crate::hashing::Hasher;
use crate::mail::{Mailer, OutboxWorker};
use crate::oidc::keyring::Published;
use crate::store::Store;
use crate::templates::{Catalog, Templates};
use crate::web::{self, AppState};

/// How long requests in flight may take to finish after a shutdown signal.
const GRACE: Duration = Duration::from_secs(20);

/// Why Guichet could not start, as one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("database: {0}")]
    Database(String),
    #[error("directory: {0}")]
    Directory(String),
    #[error("mail: {0}")]
    Mail(String),
    #[error("{0}")]
    Other(String),
}

/// Connects everything Guichet needs and checks that each part answers.
pub async fn prepare(settings: Settings) -> Result<AppState, StartError> {
    install_crypto_provider();
    let store = Store::connect(&settings.database)
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    store
        .migrate()
        .await
        .map_err(|e| StartError::Database(e.to_string()))?;
    // Several instances starting together may each create a key; both are valid and
    // published, and the newest signs.
    let sealer = crate::oidc::keys::Sealer::new(settings.oidc.key_encryption_key.as_ref())
        .map_err(|e| StartError::Other(format!("signing keys: {e}")))?;
    crate::oidc::keys::ensure(&store, &sealer, crate::store::unix_now())
        .await
        .map_err(|e| StartError::Other(format!("signing keys: {e}")))?;
    let keys = crate::oidc::keyring::KeyRing::load(store.clone(), sealer)
        .await
        .map_err(|e| StartError::Other(format!("signing keys: {e}")))?;
    let hasher = Hasher::new(&settings.hashing).map_err(|e| StartError::Other(e.to_string()))?;
    let directory = Directory::new(&settings.directory, hasher)
        .map_err(|e| StartError::Directory(e.to_string()))?
        .read_also(&settings.oidc.claims.attributes());
    directory.ping().await.map_err(|e| {
        StartError::Directory(format!(
            "{e} (url {}, bind {})",
            settings.directory.url, settings.directory.bind_dn
        ))
    })?;
    let mailer = Mailer::new(&settings.mail).map_err(|e| StartError::Mail(e.to_string()))?;
    let catalog = Catalog::builtin().map_err(|e| StartError::Other(format!("texts: {e}")))?;
    let templates = Templates::new(Arc::new(catalog), settings.server.templates_dir.clone());
    let (settings, templates) = (Arc::new(settings), Arc::new(templates));
    let outbox = OutboxWorker::new(store.clone(), mailer, templates.clone(), settings.clone());
    let app = App::new(settings, store, directory, outbox, Arc::new(keys));
    let discovery = crate::oidc::provider::Provider::new(&app, Default::default()).discovery();
    let discovery = Published::of(&discovery)
        .map_err(|e| StartError::Other(format!("the provider metadata: {e}")))?;
    Ok(AppState::new(app, templates, discovery))
}

/// [`prepare`], then what only a serving instance does: the decoy's password is
/// replaced (admin commands such as `guichet accounts show` need not write to the
/// directory).
pub async fn prepare_to_serve(settings: Settings) -> Result<AppState, StartError> {
    let decoy = settings.directory.decoy_dn.clone().unwrap_or_default();
    let state = prepare(settings).await?;
    state
        .directory
        .reset_decoy()
        .await
        .map_err(|e| StartError::Directory(format!("decoy {decoy}: {e}")))?;
    Ok(state)
}

/// Binds the configured address (port 0 picks a free one).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Other(format!("cannot listen on {addr}: {e}")))
}

/// Serves until `shutdown` completes, then lets requests in flight finish.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), StartError> {
    let server = &state.settings.server;
    let tls = server
        .tls
        .as_ref()
        .map(|tls| http::tls_acceptor(&tls.cert_path, &tls.key_path))
        .transpose()
        .map_err(|e| StartError::Other(format!("TLS certificate or key: {e}")))?;
    let limits = http::Limits {
        header_read: server.header_read_timeout,
        idle: server.idle_timeout,
        stall: server.request_timeout + server.header_read_timeout,
        max_connections: fit_open_files(&state.settings),
    };
    let router = web::router(state.clone());
    let (stop_jobs, stopped) = tokio::sync::watch::channel(false);
    // A JoinSet aborts its tasks when dropped: if this future is dropped (the process
    // is going away), the jobs go with it instead of running on detached.
    let mut jobs = tokio::task::JoinSet::new();
    jobs.spawn(state.outbox.clone().run(stopped.clone()));
    jobs.spawn(invite_periodically(state.clone(), stopped.clone()));
    jobs.spawn(crate::oidc::backchannel::run(
        state.app.clone(),
        stopped.clone(),
    ));
    jobs.spawn(purge_periodically(state.clone(), stopped));
    http::serve(listener, router, tls, limits, shutdown, GRACE).await;
    // Mail in flight finishes; what is left stays in the outbox for the next start.
    let _ = stop_jobs.send(true);
    while jobs.join_next().await.is_some() {}
    state.store.close().await;
    Ok(())
}

/// Raises the soft open-files limit to the hard one (many systems start services
/// at 1,024), and returns `server.max_connections` lowered to what it leaves once
/// the database, directory and mail connections have theirs.
fn fit_open_files(settings: &Settings) -> usize {
    let wanted = settings.server.max_connections;
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft);
    let (before, raised) = match (before, rlimit::increase_nofile_limit(u64::MAX)) {
        (Ok(before), Ok(raised)) => (before, raised),
        (_, Err(error)) | (Err(error), _) => {
            tracing::warn!(%error, "cannot read or raise the open-files limit; serving as configured");
            return wanted;
        }
    };
    let reserve = reserved_files(settings);
    let cap = connection_cap(wanted, raised, reserve);
    if raised <= reserve {
        tracing::warn!(
            open_files = raised,
            reserved = reserve,
            "the open-files limit barely covers the database, directory and mail: one client at a time"
        );
    }
    tracing::info!(
        open_files_before = before,
        open_files = raised,
        reserved = reserve,
        max_connections = cap,
        configured = wanted,
        "open-files limit raised; connections capped below it"
    );
    cap
}

/// Files kept for everything but clients: the pools of the database, the directory
/// (service, binds, import) and SMTP, plus a margin for the listener, logs, the
/// runtime and back-channel logout calls.
fn reserved_files(settings: &Settings) -> u64 {
    const MARGIN: u64 = 64;
    // The outbox sends one message at a time, on a connection of its own.
    const SMTP: u64 = 1;
    // SQLite may hold two pools (see `store::group_commit`), each connection with
    // its database and WAL files open, and one WAL descriptor of Guichet's own.
    let database = 4 * u64::from(settings.database.max_connections) + 1;
    let directory = 3 * settings.directory.pool_size as u64;
    MARGIN + SMTP + database + directory
}

/// The connections to serve at once: as configured, but never so many that the
/// reserved files would be lacking; at least one.
fn connection_cap(wanted: usize, open_files: u64, reserve: u64) -> usize {
    let room = usize::try_from(open_files.saturating_sub(reserve)).unwrap_or(usize::MAX);
    wanted.min(room).max(1)
}

/// The invitation flow on the application's parts.
pub fn invitations<'a>(state: &'a AppState, reminders: &'a [Duration]) -> Invitations<'a> {
    Invitations {
        store: &state.store,
        directory: &state.directory,
        profile: &state.settings.profile,
        public_url: &state.settings.server.public_url,
        reminders,
    }
}

/// Runs `job` at start, then every `interval`, until the server stops.
async fn periodically<F: Future<Output = ()>>(
    interval: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
    job: impl Fn() -> F,
) {
    while !*stop.borrow() {
        job().await;
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
}

/// The invitation job: scans at start, then every `invitations.interval`.
async fn invite_periodically(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    let settings = &state.settings.invitations;
    if !settings.enabled {
        return;
    }
    let reminders: Vec<Duration> = settings.reminders.iter().map(|d| **d).collect();
    periodically(settings.interval, stop, || async {
        match invitations(&state, &reminders)
            .scan(crate::store::unix_now())
            .await
        {
            Ok(report) if report.invited + report.reminded > 0 => state.outbox.waker().notify_one(),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "invitation scan failed, will retry"),
        }
    })
    .await;
}

/// Forgets expired flow state and old records, hourly (see `store::retention`).
async fn purge_periodically(state: AppState, stop: tokio::sync::watch::Receiver<bool>) {
    let settings = &state.settings.retention;
    let retention = crate::store::Retention {
        audit_secs: settings.audit.as_secs() as i64,
        support_secs: settings.support.as_secs() as i64,
    };
    periodically(Duration::from_secs(3600), stop, || async {
        match state.store.purge(crate::store::unix_now(), retention).await {
            Ok(deleted) => tracing::debug!(deleted, "old records purged"),
            Err(error) => tracing::warn!(%error, "purge failed, will retry"),
        }
    })
    .await;
}

/// Ctrl-C or SIGTERM (what systemd, Docker and Kubernetes send). The handlers are
/// installed when this is called, not when the future is first polled, so a signal
/// that arrives right after start-up is not lost.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        let wait = |stream: std::io::Result<tokio::signal::unix::Signal>| async move {
            match stream {
                Ok(mut stream) => {
                    stream.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
        tracing::info!("shutting down: finishing requests in flight");
    }
}

/// rustls 0.23 needs one process-wide crypto provider; ring is the one built in.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::connection_cap;

    #[test]
    fn connections_are_capped_below_the_open_files_limit() {
        // The usual soft limit of 1,024 with 110 files reserved.
        assert_eq!(connection_cap(4096, 1024, 110), 914);
        // A raised limit leaves the configured figure alone.
        assert_eq!(connection_cap(4096, 1_048_576, 110), 4096);
        assert_eq!(connection_cap(50, 1024, 110), 50);
        // A limit below the reserve still serves one client at a time.
        assert_eq!(connection_cap(4096, 64, 110), 1);
        assert_eq!(connection_cap(4096, u64::MAX, 110), 4096);
    }
}
