//! argon2id password hashing, off the async runtime and bounded: at most
//! `max_concurrent` hashes run at once and at most `max_waiting` requests queue for a
//! slot. Past that the caller gets `Busy` at once, so load turns into 503 pages instead
//! of an ever-growing queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use argon2::password_hash::{PasswordHasher as _, SaltString, rand_core::OsRng};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::config::HashingSettings;
use crate::domain::Password;

/// The scheme prefix slapd's argon2 module recognises in `userPassword`.
pub const LDAP_SCHEME: &str = "{ARGON2}";

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("too many passwords are being hashed; try again shortly")]
    Busy,
    #[error("password hashing failed: {0}")]
    Failed(String),
}

#[derive(Clone)]
pub struct Hasher {
    params: Params,
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher")
            .field("params", &self.params)
            .field("free_slots", &self.slots.available_permits())
            .finish()
    }
}

/// Decrements the waiting count however the wait ends (slot, error or cancellation).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Hasher {
    pub fn new(settings: &HashingSettings) -> Result<Self, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(|e| HashError::Failed(e.to_string()))?;
        Ok(Hasher {
            params,
            slots: Arc::new(Semaphore::new(settings.max_concurrent)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting: settings.max_waiting,
        })
    }

    /// `{ARGON2}$argon2id$v=19$m=…,t=…,p=…$salt$hash`, ready for `userPassword`.
    pub async fn hash_for_ldap(&self, password: &Password) -> Result<String, HashError> {
        let phc = self.hash(password).await?;
        Ok(format!("{LDAP_SCHEME}{phc}"))
    }

    /// The PHC string of an argon2id hash with a fresh 128-bit salt.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let _permit = self.wait_for_slot().await?;
        let params = self.params.clone();
        let password = password.clone();
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|e| HashError::Failed(e.to_string()))
        })
        .await
        .map_err(|e| HashError::Failed(e.to_string()))?
    }

    async fn wait_for_slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, HashError> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        let _waiting = Waiting(&self.waiting);
        self.slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed("hashing pool closed".to_owned()))
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
}
