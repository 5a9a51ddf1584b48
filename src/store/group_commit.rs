//! Group commit for SQLite's `synchronous = full`: transactions commit on
//! connections that do not flush (SQLite's NORMAL: the commit is written to the
//! WAL file), then wait for one flush of the WAL file that every commit made before
//! it started shares. A transaction is on the disk before its request is answered,
//! as with FULL, but concurrent transactions pay for one flush between them instead
//! of holding SQLite's single write lock through one flush each. (Unlike FULL, other
//! connections may read a commit during its flush: nothing is sent out on such a
//! read, since the outbox and back-channel workers claim their rows with a write.)
//!
//! Writers also take their turn here, in arrival order, after their (deferred)
//! BEGIN: SQLite has one write lock, and a writer that finds it taken sleeps in
//! SQLite's busy handler (up to 100 ms at a time) instead of starting the moment it
//! is free. A commit that runs SQLite's automatic checkpoint holds the turn through
//! it (about every 1,000 pages written).
//!
//! Why this is FULL's guarantee: in WAL mode, FULL only adds a flush of the WAL file
//! after the commit's frames are written, and NORMAL still flushes the WAL before a
//! checkpoint copies it into the database, and the database after. The flush here
//! is `fdatasync` of the same file (Linux flushes a file's data whichever descriptor
//! asks), made after the commit returned, so the commit's frames are in it. The
//! file is the one SQLite names (`PRAGMA database_list`), so a symbolic link or a
//! `file:` URL cannot send the flush elsewhere. Only the WAL file is opened here:
//! SQLite's locks are on the database and `-shm` files, which closing a descriptor
//! of ours would release.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::StoreError;

#[derive(Debug)]
pub(super) struct GroupCommit {
    wal: PathBuf,
    /// Commits that returned, counted as they return.
    committed: AtomicU64,
    /// What the flushes did so far; held while a flush runs.
    flushed: Mutex<Flushed>,
    /// A flush failed: the disk may have lost written pages, so no later commit
    /// is called durable (PostgreSQL stops in that case too).
    failed: AtomicBool,
    /// Held by the transaction that may write, from its start to its commit.
    turn: Arc<Mutex<()>>,
}

#[derive(Debug, Default)]
struct Flushed {
    /// How many commits the flushes so far cover.
    covers: u64,
    /// The WAL file, kept open from the first flush so that a write error the
    /// kernel reports once is reported to this descriptor too; opened again when
    /// SQLite replaces the file.
    file: Option<File>,
}

/// A transaction's turn to write; the next one's starts when it is dropped.
pub(super) type Turn = OwnedMutexGuard<()>;

/// How long a transaction waits for its turn before it begins anyway and leaves
/// the wait to SQLite's busy timeout: a turn held for longer is a transaction
/// waiting on something else, and must not stop every other one.
const TURN_WAIT: Duration = Duration::from_secs(5);

impl GroupCommit {
    /// For the database file `database`, as SQLite names it (its WAL is beside it).
    pub(super) fn new(database: &Path) -> GroupCommit {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        GroupCommit {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            flushed: Mutex::new(Flushed::default()),
            failed: AtomicBool::new(false),
            turn: Arc::new(Mutex::new(())),
        }
    }

    /// Waits for this transaction's turn to write (see [`TURN_WAIT`]).
    pub(super) async fn turn(&self) -> Option<Turn> {
        let turn = self.turn.clone().lock_owned();
        let turn = tokio::time::timeout(TURN_WAIT, turn).await.ok();
        if turn.is_none() {
            tracing::warn!("a SQLite transaction waited 5 s for its turn to write");
        }
        turn
    }

    /// Waits until a commit that just returned is on the disk. An error is not
    /// worth retrying: the commit was made, only its durability is in doubt.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flushed.lock().await;
        self.check()?;
        if flushed.covers >= mine {
            // A flush that started after this commit returned covered it.
            return Ok(());
        }
        // Every commit counted so far has returned: this flush covers them all.
        let covers = self.committed.load(Ordering::SeqCst);
        let (wal, file) = (self.wal.clone(), flushed.file.take());
        let outcome = tokio::task::spawn_blocking(move || flush(&wal, file))
            .await
            .map_err(|e| io::Error::other(e.to_string()))
            .and_then(|flushed| flushed);
        match outcome {
            Ok(file) => {
                *flushed = Flushed { covers, file };
                Ok(())
            }
            Err(error) => {
                self.failed.store(true, Ordering::SeqCst);
                tracing::error!(%error, "the SQLite WAL file could not be flushed: commits may be lost");
                self.check()
            }
        }
    }

    /// An error once a flush failed (readiness reports it too).
    pub(super) fn check(&self) -> Result<(), StoreError> {
        match self.failed.load(Ordering::SeqCst) {
            true => Err(StoreError::Query(
                "a flush of the SQLite WAL failed earlier; restart Guichet once the disk is checked"
                    .into(),
            )),
            false => Ok(()),
        }
    }
}

/// Flushes the WAL file, on `open` if it is still the file SQLite writes; returns
/// the descriptor to keep.
fn flush(wal: &Path, open: Option<File>) -> io::Result<Option<File>> {
    let current = match std::fs::metadata(wal) {
        Ok(metadata) => metadata,
        // SQLite removes the WAL file only when its last connection closes, after
        // copying it into the database and flushing that: nothing is left to flush.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::warn!(wal = %wal.display(), "no SQLite WAL file to flush");
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let same = |file: &File| {
        file.metadata()
            .is_ok_and(|m| m.ino() == current.ino() && m.dev() == current.dev())
    };
    let file = match open {
        Some(file) if same(&file) => file,
        _ => File::open(wal)?,
    };
    file.sync_data()?;
    Ok(Some(file))
}

#[cfg(test)]
impl GroupCommit {
    /// How many commits the flushes made so far cover.
    pub(super) fn flushes_covering(&self) -> u64 {
        self.flushed.try_lock().map_or(0, |flushed| flushed.covers)
    }

    /// The WAL file it flushes.
    pub(super) fn wal(&self) -> &Path {
        &self.wal
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_commits_share_flushes_and_a_missing_wal_is_nothing_to_flush() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("guichet.db");
        let group = std::sync::Arc::new(GroupCommit::new(&database));
        group.durable().await.unwrap();
        std::fs::write(dir.path().join("guichet.db-wal"), b"frames").unwrap();
        let waits: Vec<_> = (0..16)
            .map(|_| {
                let group = group.clone();
                tokio::spawn(async move { group.durable().await })
            })
            .collect();
        for wait in waits {
            wait.await.unwrap().unwrap();
        }
        assert_eq!(group.flushes_covering(), 17);
    }

    #[tokio::test]
    async fn after_a_failed_flush_no_commit_is_called_durable() {
        let dir = tempfile::tempdir().unwrap();
        // A WAL path whose parent is a file: the flush cannot even look at it.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, b"").unwrap();
        let group = GroupCommit::new(&blocker.join("guichet.db"));
        let error = group.durable().await.unwrap_err();
        assert!(!error.is_transient(), "{error:?}");
        assert!(group.check().is_err());
        std::fs::remove_file(&blocker).unwrap();
        assert!(group.durable().await.is_err(), "still failed");
    }
}
