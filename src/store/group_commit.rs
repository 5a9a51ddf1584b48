//! Group commit for SQLite's `synchronous = full`: transactions commit on
//! connections that do not flush (SQLite's NORMAL: the commit is written to the
//! WAL file), then wait for one flush of the WAL file that every commit made before
//! it started shares. A transaction is on the disk before its request is answered,
//! as with FULL, but concurrent transactions pay for one flush between them instead
//! of holding SQLite's single write lock through one flush each.
//!
//! Writers also take their turn here, in arrival order, before they begin: SQLite
//! has one write lock, and a writer that finds it taken sleeps in SQLite's busy
//! handler (up to 100 ms at a time) instead of starting the moment it is free.
//!
//! Why this is FULL's guarantee: in WAL mode, FULL only adds a flush of the WAL file
//! after the commit's frames are written, and NORMAL still flushes the WAL before a
//! checkpoint copies it into the database, and the database after. The flush here
//! is `fdatasync` of the same file (Linux flushes a file's data whichever descriptor
//! asks), made after the commit returned, so the commit's frames are in it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, OwnedMutexGuard};

use super::StoreError;

#[derive(Debug)]
pub(super) struct GroupCommit {
    wal: PathBuf,
    /// Commits that returned, counted as they return.
    committed: AtomicU64,
    /// How many of them the last flush covers; held while a flush runs.
    flushed: Mutex<u64>,
    /// Held by the transaction that may write, from its start to its commit.
    turn: Arc<Mutex<()>>,
}

/// A transaction's turn to write; the next one's starts when it is dropped.
pub(super) type Turn = OwnedMutexGuard<()>;

/// How long a transaction waits for its turn before it begins anyway and leaves
/// the wait to SQLite's busy timeout: a turn held for longer is a transaction
/// waiting on something else, and must not stop every other one.
const TURN_WAIT: Duration = Duration::from_secs(5);

impl GroupCommit {
    /// For the database file `database` (its WAL file is beside it).
    pub(super) fn new(database: &Path) -> GroupCommit {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        GroupCommit {
            wal: PathBuf::from(wal),
            committed: AtomicU64::new(0),
            flushed: Mutex::new(0),
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

    /// Waits until a commit that just returned is on the disk.
    pub(super) async fn durable(&self) -> Result<(), StoreError> {
        let mine = self.committed.fetch_add(1, Ordering::SeqCst) + 1;
        let mut flushed = self.flushed.lock().await;
        if *flushed >= mine {
            // A flush that started after this commit returned covered it.
            return Ok(());
        }
        // Every commit counted so far has returned: this flush covers them all.
        let covers = self.committed.load(Ordering::SeqCst);
        let wal = self.wal.clone();
        tokio::task::spawn_blocking(move || flush(&wal))
            .await
            .map_err(|e| StoreError::Unavailable(format!("WAL flush stopped: {e}")))?
            .map_err(|e| {
                tracing::error!(error = %e, "the SQLite WAL file could not be flushed");
                StoreError::Unavailable(format!("WAL flush failed: {e}"))
            })?;
        *flushed = covers;
        Ok(())
    }
}

#[cfg(test)]
impl GroupCommit {
    /// How many commits the flushes made so far cover.
    pub(super) fn flushes_covering(&self) -> u64 {
        self.flushed.try_lock().map_or(0, |flushed| *flushed)
    }
}

fn flush(wal: &Path) -> io::Result<()> {
    match std::fs::File::open(wal) {
        Ok(file) => file.sync_data(),
        // SQLite removes the WAL file only when its last connection closes, after
        // copying it into the database and flushing that: nothing is left to flush.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
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
}
