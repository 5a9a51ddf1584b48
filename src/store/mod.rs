//! The SQL store: flow state only (links, outbox, rate limits, audit, later OIDC).
//! One schema and one set of queries for SQLite and PostgreSQL through sqlx's `Any`
//! driver; queries use `$1` placeholders, which both backends accept.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::config::{DatabaseSettings, SqliteSynchronous};

mod audit;
mod cas;
mod group_commit;
mod help;
mod invitations;
mod logout_deliveries;
mod oidc;
mod outbox;
mod rate_limits;
mod retention;
mod session_end;
mod sessions;
mod tokens;
mod transaction;

pub use audit::{AuditEvent, AuditFilter, AuditRecord, Origin};
pub use cas::{CasTicketRecord, NewCasTicket, Spent};
pub use help::MailSummary;
pub use invitations::Invitation;
pub use logout_deliveries::{LogoutDelivery, LogoutProtocol};
pub use oidc::{ClientRecord, CodeRecord, NewToken, Redemption, StoredKey, TokenKind, TokenRecord};
pub use outbox::{Claimed, Outgoing};
pub use rate_limits::Count;
pub use retention::Retention;
pub use session_end::{AccountClaim, Ended, EndedSession};
pub use sessions::{NewSession, SessionRecord};
pub use tokens::{LinkRecord, LinkState, Purpose};
pub use transaction::StoreTx;

use group_commit::GroupCommit;

/// Seconds since the Unix epoch: how the store keeps time.
pub fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("database query failed: {0}")]
    Query(String),
    /// Lost to a concurrent transaction (SQLite busy or locked past its timeout, a
    /// PostgreSQL serialization failure or deadlock, a read-only server after a
    /// failover): trying again is right.
    #[error("database busy: {0}")]
    Busy(String),
}

impl StoreError {
    /// Whether the same work may succeed if tried again shortly.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Busy(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            // A protocol error is the server's bytes not following the wire
            // protocol: in practice a connection closed or cut during the
            // handshake (PostgreSQL's SSLRequest answered by a closing socket) or
            // a peer that is not the database. Either way the database is not
            // reachable right now, and the request gets a 503, not a 500.
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_)
            | sqlx::Error::Tls(_) => StoreError::Unavailable(error.to_string()),
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_outage_code(&c)) => {
                StoreError::Unavailable(error.to_string())
            }
            sqlx::Error::Database(ref db) if db.code().is_some_and(|c| is_busy_code(&c)) => {
                StoreError::Busy(error.to_string())
            }
            other => StoreError::Query(other.to_string()),
        }
    }
}

/// PostgreSQL SQLSTATEs that mean "the database is not there right now": connection
/// exceptions (08…), shutdown or termination (57…), database dropped (3D000).
fn is_outage_code(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("57") || code == "3D000"
}

/// SQLite's SQLITE_BUSY (5, 517 and the other extended forms end in 5 or 6 below
/// 256) and SQLITE_LOCKED (6); PostgreSQL's serialization failure (40001),
/// deadlock (40P01) and read-only transaction (25006, a standby after failover).
fn is_busy_code(code: &str) -> bool {
    let sqlite = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    sqlite || matches!(code, "40001" | "40P01" | "25006")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite with `synchronous = full`: where transactions and single writes
    /// (`write`) run, and their shared flush (see `group_commit`). Reads, and the
    /// writes that return rows, stay on `pool`, flushed each.
    grouped: Option<Grouped>,
}

#[derive(Clone, Debug)]
struct Grouped {
    pool: AnyPool,
    commit: Arc<GroupCommit>,
}

impl Store {
    /// Opens the pool (creating a SQLite file if needed) and checks the connection.
    pub async fn connect(settings: &DatabaseSettings) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let url = settings.url.expose_secret();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let synchronous = settings.sqlite_synchronous;
        let options = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Unavailable(redact(&e.to_string())))?
            .disable_statement_logging();
        let pool = pool_options(settings, backend, synchronous)
            .connect_with(options.clone())
            .await
            .map_err(|e| StoreError::Unavailable(redact(&e.to_string())))?;
        let file = match (backend, synchronous) {
            (Backend::Sqlite, SqliteSynchronous::Full) => sqlite_file(&pool).await?,
            _ => None,
        };
        let grouped = file.map(|file| Grouped {
            pool: pool_options(settings, backend, SqliteSynchronous::Normal)
                .connect_lazy_with(options),
            commit: Arc::new(GroupCommit::new(&file)),
        });
        Ok(Store {
            pool,
            backend,
            grouped,
        })
    }

    /// Brings the schema up to date. Safe to run from several instances at once: sqlx
    /// takes an advisory lock on PostgreSQL, and SQLite runs are retried (see below).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match MIGRATOR.run(&self.pool).await {
                Ok(()) => return Ok(()),
                // sqlx takes no lock on SQLite: when two instances start together, the
                // loser's migration transaction rolls back ("already exists" or
                // "locked"). Running again then finds the winner's work recorded.
                Err(_) if self.backend == Backend::Sqlite && attempt < 5 => {
                    tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                }
                Err(e) => return Err(StoreError::Migration(e.to_string())),
            }
        }
    }

    /// Runs one write statement. Where transactions share their flushes (SQLite,
    /// `synchronous = full`) it runs as a transaction of its own, so that it shares
    /// them too instead of holding the write lock through a flush of its own.
    async fn write<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> Result<sqlx::any::AnyQueryResult, StoreError> {
        if self.grouped.is_none() {
            return Ok(query.execute(&self.pool).await?);
        }
        let mut tx = self.begin().await?;
        let done = query.execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(done)
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        if let Some(grouped) = &self.grouped {
            grouped.commit.check()?;
        }
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub async fn close(&self) {
        if let Some(grouped) = &self.grouped {
            grouped.pool.close().await;
        }
        self.pool.close().await;
    }
}

fn pool_options(
    settings: &DatabaseSettings,
    backend: Backend,
    synchronous: SqliteSynchronous,
) -> AnyPoolOptions {
    let synchronous = synchronous.pragma();
    AnyPoolOptions::new()
        .max_connections(settings.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .after_connect(move |conn, _| {
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    // WAL lets readers work during a write; the busy timeout makes
                    // concurrent writers wait instead of failing at once.
                    let pragmas = format!(
                        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                         PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON;"
                    );
                    conn.execute(pragmas.as_str()).await?;
                }
                Ok(())
            })
        })
}

/// The database file as SQLite names it (links resolved, `file:` URLs read);
/// `None` for an in-memory database, which a second pool would not share.
async fn sqlite_file(pool: &AnyPool) -> Result<Option<PathBuf>, StoreError> {
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(pool)
            .await?;
    Ok((!file.is_empty()).then(|| PathBuf::from(file)))
}

/// Connection errors may quote the URL; drop any `user:password@` from the text.
fn redact(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for word in message.split_inclusive(char::is_whitespace) {
        match (word.find("://"), word.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                out.push_str(&word[..scheme + 3]);
                out.push_str("***");
                out.push_str(&word[at..]);
            }
            _ => out.push_str(word),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lost_races_are_told_from_broken_queries() {
        for busy in ["5", "517", "6", "262", "40001", "40P01", "25006"] {
            assert!(super::is_busy_code(busy), "{busy}");
        }
        for other in ["1", "19", "2067", "23505", "42P01"] {
            assert!(!super::is_busy_code(other), "{other}");
        }
    }

    #[test]
    fn a_connection_cut_during_the_handshake_is_an_outage() {
        let cut = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert!(matches!(
            super::StoreError::from(cut),
            super::StoreError::Unavailable(_)
        ));
        let closed = sqlx::Error::PoolClosed;
        assert!(matches!(
            super::StoreError::from(closed),
            super::StoreError::Unavailable(_)
        ));
        let bug = sqlx::Error::ColumnNotFound("nope".into());
        assert!(matches!(
            super::StoreError::from(bug),
            super::StoreError::Query(_)
        ));
    }

    /// With `full`, single statements run on FULL connections; a transaction runs on
    /// a NORMAL one and its commit returns only after the shared WAL flush covers it.
    #[tokio::test]
    async fn with_full_a_transaction_waits_for_the_shared_wal_flush() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("guichet.db").display());
        let settings: super::DatabaseSettings =
            toml::from_str(&format!("url = \"{url}\"")).unwrap();
        let store = super::Store::connect(&settings).await.unwrap();
        let pragma = "PRAGMA synchronous";
        let alone: i64 = sqlx::query_scalar(pragma)
            .fetch_one(store.pool())
            .await
            .unwrap();
        assert_eq!(alone, 2, "FULL");
        let mut tx = store.begin().await.unwrap();
        let within: i64 = sqlx::query_scalar(pragma)
            .fetch_one(tx.conn())
            .await
            .unwrap();
        assert_eq!(within, 1, "NORMAL");
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let group = &store.grouped.as_ref().unwrap().commit;
        assert!(dir.path().join("guichet.db-wal").exists());
        assert_eq!(group.flushes_covering(), 1, "the commit was flushed");
        store.close().await;
    }

    /// A database reached through a symbolic link has its WAL beside the real file:
    /// that is the file flushed.
    #[tokio::test]
    async fn the_flushed_wal_is_the_one_sqlite_writes_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = (dir.path().join("real"), dir.path().join("link"));
        std::fs::create_dir_all(&real).unwrap();
        std::fs::create_dir_all(&link).unwrap();
        std::fs::write(real.join("guichet.db"), b"").unwrap();
        std::os::unix::fs::symlink(real.join("guichet.db"), link.join("guichet.db")).unwrap();
        let url = format!("sqlite://{}", link.join("guichet.db").display());
        let settings: super::DatabaseSettings =
            toml::from_str(&format!("url = \"{url}\"")).unwrap();
        let store = super::Store::connect(&settings).await.unwrap();
        let mut tx = store.begin().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)")
            .execute(tx.conn())
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let wal = store.grouped.as_ref().unwrap().commit.wal().to_owned();
        assert_eq!(wal, real.canonicalize().unwrap().join("guichet.db-wal"));
        assert!(wal.exists());
        store.close().await;
    }

    #[test]
    fn redacts_credentials_in_urls() {
        let text = super::redact("cannot reach postgres://guichet:hunter2@db:5432/guichet now");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("postgres://***@db:5432/guichet"), "{text}");
    }
}
