//! A bound on concurrent work with a short wait queue: at most `slots` holders at
//! once, at most `max_waiting` waiting for a slot, and a waiter gives up after
//! `patience`. Past that the caller is refused at once, so overload becomes a fast
//! 503 instead of a queue that grows with the load. Password hashing and directory
//! binds each have one.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The gate refused: every slot is taken and the queue is full, or the wait for a
/// slot ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("all slots are taken and the queue is full")]
pub struct Full;

#[derive(Clone)]
pub struct Gate {
    slots: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
    patience: Option<Duration>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate")
            .field("free_slots", &self.slots.available_permits())
            .field("waiting", &self.waiting.load(Ordering::Relaxed))
            .finish()
    }
}

/// A slot, held until dropped (it may travel to the thread that does the work).
#[derive(Debug)]
pub struct Pass {
    _slot: OwnedSemaphorePermit,
}

/// Takes a waiter off the count however its wait ends (slot, timeout or the caller
/// giving up), so a cancelled request never keeps a place in the queue.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Gate {
    /// `patience: None` waits as long as the caller does (its request timeout).
    pub fn new(slots: usize, max_waiting: usize, patience: Option<Duration>) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(slots)),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
            patience,
        }
    }

    /// A slot now, or after a wait in the queue; [`Full`] past the queue or the wait.
    pub async fn enter(&self) -> Result<Pass, Full> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Pass { _slot: permit });
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Full);
        }
        let _waiting = Waiting(&self.waiting);
        let slot = self.slots.clone().acquire_owned();
        // The semaphore is never closed, so an error cannot happen; it would mean no slot.
        let permit = match self.patience {
            Some(patience) => tokio::time::timeout(patience, slot)
                .await
                .map_err(|_| Full)?,
            None => slot.await,
        };
        permit.map(|slot| Pass { _slot: slot }).map_err(|_| Full)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holders_then_waiters_then_refusals() {
        let gate = Gate::new(1, 1, None);
        let held = gate.enter().await.unwrap();
        let waiter = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(drop) }
        });
        // The waiter is queued once the count says so.
        while gate.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.enter().await.unwrap_err(), Full, "the queue is full");
        drop(held);
        assert_eq!(waiter.await.unwrap(), Ok(()), "the waiter gets the slot");
        assert!(gate.enter().await.is_ok(), "free again");
    }

    #[tokio::test]
    async fn a_waiter_gives_up_after_its_patience() {
        let gate = Gate::new(1, 4, Some(Duration::from_millis(20)));
        let _held = gate.enter().await.unwrap();
        assert_eq!(gate.enter().await.unwrap_err(), Full);
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0, "left the queue");
    }

    #[tokio::test]
    async fn a_cancelled_waiter_frees_its_place() {
        let gate = Gate::new(1, 1, None);
        let _held = gate.enter().await.unwrap();
        let wait = tokio::time::timeout(Duration::from_millis(10), gate.enter()).await;
        assert!(wait.is_err(), "still waiting when the caller gave up");
        assert_eq!(gate.waiting.load(Ordering::SeqCst), 0);
    }
}
