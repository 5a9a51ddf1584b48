//! argon2id password hashing on a fixed pool of OS threads, bounded: at most
//! `max_concurrent` hashes run at once (one per thread) and at most `max_waiting`
//! requests queue for a thread. Past that the caller gets `Busy` at once, so load turns
//! into 503 pages instead of an ever-growing queue.
//!
//! Each hash allocates its argon2 memory block, wipes it and gives it back when done,
//! so between hashes the process holds none of it. Hashing on `spawn_blocking` threads
//! instead let each of those threads keep a malloc arena holding its last 19 MiB
//! block: a flood of sign-ins left the process at 457 MiB. Here at most
//! `max_concurrent` blocks exist, and only while a hash runs. That the allocator
//! really returns them to the system between hashes is the global allocator's doing
//! (see `main.rs`, jemalloc): glibc's malloc keeps a freed block of this size in
//! its arena.

use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, Salt, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::oneshot;
use zeroize::Zeroizing;

use crate::config::HashingSettings;
use crate::domain::Password;
use crate::gate::{Gate, Pass};

/// The scheme prefix slapd's argon2 module recognises in `userPassword`.
pub const LDAP_SCHEME: &str = "{ARGON2}";
/// Threads are named `guichet-hash-N` (shown by `top -H` and in /proc).
const THREAD_NAME: &str = "guichet-hash";

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many passwords are being hashed; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

/// A handle on the hashing threads. Clones share them; when the last clone is
/// dropped the queue closes and the threads end.
#[derive(Clone)]
pub struct Hasher {
    params: Params,
    gate: Gate,
    jobs: SyncSender<Job>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field("gate", &self.gate)
            .finish()
    }
}

/// One password to hash. The gate's pass travels with it and is given back by the
/// thread when the hash is done, so "running" means running on a thread.
struct Job {
    password: Password,
    pass: Pass,
    reply: oneshot::Sender<Result<String, HashError>>,
}

impl Hasher {
    pub fn new(settings: &HashingSettings) -> Result<Self, HashError> {
        Self::start(settings, THREAD_NAME)
    }

    /// Starts `max_concurrent` threads named `{name}-N`.
    fn start(settings: &HashingSettings, name: &str) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        // A job is sent only with a pass, so the queue never holds more than one per
        // thread; the waiting happens at the gate, where it is bounded.
        let (jobs, queue) = mpsc::sync_channel(settings.max_concurrent);
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..settings.max_concurrent {
            let (queue, worker) = (queue.clone(), Worker::new(params.clone()));
            std::thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || worker.serve(&queue))
                .map_err(|e| HashError::Failed(format!("cannot start a hashing thread: {e}")))?;
        }
        Ok(Hasher {
            params,
            gate: Gate::new(settings.max_concurrent, settings.max_waiting, None),
            jobs,
        })
    }

    /// `{ARGON2}$argon2id$v=19$m=…,t=…,p=…$salt$hash`, ready for `userPassword`.
    pub async fn hash_for_ldap(&self, password: &Password) -> Result<String, HashError> {
        let phc = self.hash(password).await?;
        Ok(format!("{LDAP_SCHEME}{phc}"))
    }

    /// The PHC string of an argon2id hash with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let pass = self.gate.enter().await.map_err(|_| HashError::Busy)?;
        let (reply, answer) = oneshot::channel();
        let job = Job {
            password: password.clone(),
            pass,
            reply,
        };
        match self.jobs.try_send(job) {
            Ok(()) => {}
            // Cannot happen while every job carries a pass; refusing is the safe answer.
            Err(TrySendError::Full(_)) => return Err(HashError::Busy),
            Err(TrySendError::Disconnected(_)) => {
                return Err(HashError::Failed(
                    "the hashing threads have ended".to_owned(),
                ));
            }
        }
        answer
            .await
            .map_err(|_| HashError::Failed("a hashing thread ended mid-hash".to_owned()))?
    }
}

/// What one thread owns: the hasher; its memory exists only during a hash.
struct Worker {
    argon2: Argon2<'static>,
}

impl Worker {
    fn new(params: Params) -> Worker {
        Worker {
            argon2: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        }
    }

    /// Hashes jobs until every `Hasher` is gone (the queue then reports disconnection).
    fn serve(self, queue: &Mutex<Receiver<Job>>) {
        loop {
            // Only the wait for a job holds the lock; a poisoned lock means another
            // thread panicked while waiting, and this one ends too.
            let next = match queue.lock() {
                Ok(queue) => queue.recv(),
                Err(_) => return,
            };
            let Ok(Job {
                password,
                pass,
                reply,
            }) = next
            else {
                return;
            };
            // The caller gave up (its request timed out or the client left).
            if reply.is_closed() {
                continue;
            }
            let result = self.hash(password.expose().as_bytes());
            drop(pass);
            let _ = reply.send(result);
        }
    }

    fn hash(&self, password: &[u8]) -> Result<String, HashError> {
        let failed = |e: argon2::password_hash::Error| HashError::Failed(e.to_string());
        let params = self.argon2.params();
        // Wiped when dropped, whatever happens (an error, a panic): freed memory is
        // not, and what the blocks hold of this password must not linger for the
        // allocator's next user, a core dump or swap (it would let guesses skip the
        // memory-hard part). argon2's `zeroize` feature wipes its own temporaries.
        let mut memory = Zeroizing::new(vec![Block::default(); params.block_count()]);
        let mut salt = [0u8; Salt::RECOMMENDED_LENGTH];
        OsRng.fill_bytes(&mut salt);
        let output_len = params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
        let argon2 = &self.argon2;
        let hash = Output::init_with(output_len, |out| {
            Ok(argon2.hash_password_into_with_memory(password, &salt, out, &mut memory[..])?)
        });
        drop(memory);
        let hash = hash.map_err(failed)?;
        let salt = SaltString::encode_b64(&salt).map_err(failed)?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(failed)?,
            salt: Some(salt.as_salt()),
            hash: Some(hash),
        };
        Ok(phc.to_string())
    }
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHash, PasswordVerifier};

    use super::*;

    fn settings(max_concurrent: usize, max_waiting: usize) -> HashingSettings {
        HashingSettings {
            memory_kib: 8 * 1024,
            iterations: 1,
            parallelism: 1,
            max_concurrent,
            max_waiting,
        }
    }

    #[tokio::test]
    async fn hashes_verify_and_carry_the_configured_parameters() {
        let _alone = HASHING.lock().await;
        let hasher = Hasher::new(&settings(2, 4)).unwrap();
        let password = Password::new("Tr0ub4dor&3");
        let stored = hasher.hash_for_ldap(&password).await.unwrap();
        let phc = stored.strip_prefix("{ARGON2}").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(phc).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"Tr0ub4dor&3", &parsed)
                .is_ok()
        );
        assert!(
            Argon2::default()
                .verify_password(b"wrong", &parsed)
                .is_err()
        );
        let again = hasher.hash(&password).await.unwrap();
        assert_ne!(phc, again, "every hash has its own salt");
    }

    #[tokio::test]
    async fn the_excess_is_refused_rather_than_queued() {
        let _alone = HASHING.lock().await;
        let hasher = Hasher::new(&settings(1, 1)).unwrap();
        let password = Password::new("correct horse battery staple");
        let results = futures_util::future::join_all((0..6).map(|_| hasher.hash(&password))).await;
        let busy = results
            .iter()
            .filter(|r| matches!(r, Err(HashError::Busy)))
            .count();
        let done = results.iter().filter(|r| r.is_ok()).count();
        assert_eq!(done, 2, "one running and one waiting get through");
        assert_eq!(busy, 4);
        // Once the queue drains, new requests are served again.
        assert!(hasher.hash(&password).await.is_ok());
    }

    /// This process's resident memory, in KiB.
    /// Held by every test here that hashes: the memory test measures the whole
    /// process, and `cargo test` (unlike nextest) runs tests side by side in one.
    static HASHING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

    fn resident_kib() -> u64 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn a_hash_gives_its_memory_back_when_done() {
        let _alone = HASHING.blocking_lock();
        // The default block (19 MiB): the size glibc's malloc keeps in its arena once
        // one has been freed; a larger one it would always give back.
        let params = Params::new(19 * 1024, 1, 1, None).unwrap();
        let worker = Worker::new(params);
        let before = resident_kib();
        for round in 0..5 {
            let phc = worker.hash(format!("password {round}").as_bytes()).unwrap();
            let parsed = PasswordHash::new(&phc).unwrap();
            assert!(
                Argon2::default()
                    .verify_password(format!("password {round}").as_bytes(), &parsed)
                    .is_ok()
            );
            let grown = resident_kib().saturating_sub(before);
            assert!(
                grown < 8 * 1024,
                "after hash {round} the process kept {grown} KiB of a 19,456 KiB block"
            );
        }
    }

    /// The threads of this process whose name starts with `prefix`.
    fn threads_named(prefix: &str) -> usize {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with(prefix))
            .count()
    }

    #[tokio::test]
    async fn a_fixed_set_of_threads_hashes_and_ends_with_the_last_handle() {
        let _alone = HASHING.lock().await;
        let hasher = Hasher::start(&settings(2, 8), "hpool").unwrap();
        let password = Password::new("correct horse battery staple");
        for _ in 0..3 {
            let burst = (0..8).map(|_| hasher.hash(&password));
            let results = futures_util::future::join_all(burst).await;
            assert!(results.iter().all(Result::is_ok));
            assert_eq!(threads_named("hpool-"), 2, "no thread is added");
        }
        let clone = hasher.clone();
        drop(hasher);
        assert!(clone.hash(&password).await.is_ok(), "a clone keeps them");
        drop(clone);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while threads_named("hpool-") > 0 {
            assert!(std::time::Instant::now() < deadline, "the threads end");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
