//! What one instance remembers between requests so that a flood is refused before
//! it costs the database or one of the directory's places (see [`super::limits`]):
//! - the networks whose bucket refused them, until the window ends: their next
//!   attempts get 429 from memory, without SQL;
//! - the password checks each network has in progress: no network takes more than
//!   half of the places the directory admits, so one address hammering cannot
//!   leave the others only 503s.
//!
//! Both are caches of what SQL decides, per instance: another instance asks SQL
//! and refuses the same way. Memory is bounded: past [`MAX_REMEMBERED`] refused
//! networks, newer ones are not remembered and SQL refuses them as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Refused networks one instance keeps in memory at most (about 100 bytes each).
pub const MAX_REMEMBERED: usize = 10_000;

#[derive(Debug)]
pub struct Flood {
    /// Bucket name → the Unix time its refusal ends.
    refused: Mutex<HashMap<String, i64>>,
    /// Network → password checks in progress.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    per_network: usize,
}

/// A password check in progress for a network, counted until dropped.
#[derive(Debug)]
pub struct InFlight {
    network: String,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.network) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.network);
            }
        }
    }
}

impl Flood {
    /// `admitted` is how many password checks the directory admits at once.
    pub fn new(admitted: usize) -> Flood {
        Flood {
            refused: Mutex::new(HashMap::new()),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
            per_network: (admitted / 2).max(1),
        }
    }

    /// Seconds left of a refusal remembered for `bucket`, if any.
    pub fn refused_for(&self, bucket: &str, now: i64) -> Option<i64> {
        let refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        let until = *refused.get(bucket)?;
        (until > now).then_some(until - now)
    }

    /// Remembers that `bucket` refuses until `until`.
    pub fn remember_refusal(&self, bucket: &str, until: i64, now: i64) {
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.len() >= MAX_REMEMBERED {
            refused.retain(|_, end| *end > now);
        }
        if refused.len() < MAX_REMEMBERED {
            refused.insert(bucket.to_owned(), until);
        }
    }

    /// Counts a password check for `network`, or `None` when it already has its
    /// share in progress.
    pub fn enter(&self, network: &str) -> Option<InFlight> {
        let mut counts = self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(network.to_owned()).or_insert(0);
        if *count >= self.per_network {
            return None;
        }
        *count += 1;
        Some(InFlight {
            network: network.to_owned(),
            counts: self.in_flight.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_has_half_the_places_and_gets_them_back() {
        let flood = Flood::new(4);
        let (a, b) = (flood.enter("192.0.2.1"), flood.enter("192.0.2.1"));
        assert!(a.is_some() && b.is_some());
        assert!(flood.enter("192.0.2.1").is_none(), "its half is taken");
        assert!(flood.enter("192.0.2.2").is_some(), "another network is not");
        drop(a);
        assert!(flood.enter("192.0.2.1").is_some(), "a place given back");
    }

    #[test]
    fn a_refusal_is_remembered_until_its_window_ends() {
        let flood = Flood::new(4);
        flood.remember_refusal("login:ip:192.0.2.1", 1_000, 400);
        assert_eq!(flood.refused_for("login:ip:192.0.2.1", 400), Some(600));
        assert_eq!(flood.refused_for("login:ip:192.0.2.1", 1_000), None);
        assert_eq!(flood.refused_for("login:ip:192.0.2.2", 400), None);
    }

    #[test]
    fn memory_is_bounded_and_expired_refusals_make_room() {
        let flood = Flood::new(4);
        for n in 0..MAX_REMEMBERED + 10 {
            flood.remember_refusal(&format!("b{n}"), 100, 0);
        }
        assert_eq!(flood.refused.lock().unwrap().len(), MAX_REMEMBERED);
        flood.remember_refusal("late", 300, 200);
        assert_eq!(
            flood.refused_for("late", 200),
            Some(100),
            "the expired made room"
        );
        assert_eq!(flood.refused.lock().unwrap().len(), 1);
    }
}
