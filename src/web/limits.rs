//! Rate limits on the steps that match an identity or check a password, counted in
//! SQL so all instances share them (DESIGN §7, "limits are fair"):
//! - per client network (an IPv4 address, an IPv6 /64);
//! - per identifier from that network: the lockout a guesser can only inflict on
//!   the network he uses, never on the student elsewhere;
//! - per identifier from anywhere, a throttle: past a few attempts each further one
//!   waits a doubling delay, so a guesser spread over many networks is slowed
//!   without the student being locked out;
//! - a browser that signed in to the account before (a device cookie, see
//!   [`super::devices`]) is counted for itself only, so strangers' guesses never slow
//!   it down.
//!
//! An attempt is counted before it is checked (parallel guesses are all counted),
//! and given back if it must not count: at sign-in and on links only failures
//! count, so the students of a lecture hall behind one address who type the right
//! password are never refused. A refused attempt adds nothing. The service-wide
//! bound is not a counter strangers could spend: it is the bound on concurrent
//! directory work (`directory.bind_queue`).
//! Identifiers are hashed before they become bucket names: the table holds no e-mail.

use std::net::IpAddr;

use axum::http::StatusCode;
use axum::response::Response;
use sha2::{Digest, Sha256};

use super::AppState;
use super::devices::Trust;
use super::error::WebError;
use super::flood::InFlight;
use crate::config::{Limit, Throttle};
use crate::gate::Pass;
use crate::store::{AuditEvent, Origin, unix_now};

/// What counts against the limits at a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// Only failures (a wrong password, an unknown login, a dead link): a correct
    /// answer is given back.
    Failures,
    /// Every attempt: the page answers a match and a miss alike (a link asked for
    /// by e-mail), and giving a match back would tell it through the limit. These
    /// steps also send mail, which must not be sent at will to one address.
    Every,
}

/// A step whose attempts are limited; its name prefixes its buckets.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    name: &'static str,
    counts: Counts,
    /// The step binds to the directory: it is admitted before it is counted.
    binds: bool,
}

impl Step {
    const fn failures(name: &'static str) -> Step {
        Step {
            name,
            counts: Counts::Failures,
            binds: false,
        }
    }

    const fn every(name: &'static str) -> Step {
        Step {
            name,
            counts: Counts::Every,
            binds: false,
        }
    }

    /// A password checked: sign-in, or the current password on the account pages.
    pub const SIGN_IN: Step = Step {
        binds: true,
        ..Step::failures("login")
    };
    /// A link's form (activation, reset, choice, confirmation).
    pub const LINK: Step = Step::failures("link");
    pub const ACTIVATION_REQUEST: Step = Step::every("activation");
    pub const RESET_REQUEST: Step = Step::every("reset");
    pub const EMAIL_CHANGE: Step = Step::every("email-change");
    pub const HELP: Step = Step::every("help");
}

/// How an attempt turned out, for the limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A wrong answer: it keeps its count.
    Failed,
    /// A right answer: given back where only failures count.
    Succeeded,
    /// Nothing was checked (the directory or the database did not answer): given back.
    Unchecked,
}

impl Verdict {
    /// The verdict of a flow's result: an error checked nothing.
    pub fn of<T, E>(result: &Result<T, E>, failed: impl FnOnce(&T) -> bool) -> Verdict {
        match result {
            Ok(outcome) if failed(outcome) => Verdict::Failed,
            Ok(_) => Verdict::Succeeded,
            Err(_) => Verdict::Unchecked,
        }
    }
}

/// Which of an attempt's limits a bucket is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bucket {
    Network,
    IdentifierOnNetwork,
    Identifier,
    Throttle,
    /// A trusted browser's own, for one login.
    Device,
}

/// One counted bucket of an attempt in progress.
#[derive(Debug)]
struct Taken {
    kind: Bucket,
    bucket: String,
    window_start: i64,
}

/// An attempt that passed the limits; [`Attempt::settle`] says how it ended.
#[must_use = "an attempt must be settled"]
#[derive(Debug)]
pub struct Attempt {
    counts: Counts,
    taken: Vec<Taken>,
    /// The places of a password check, held until its answer is known.
    admitted: Option<Admitted>,
}

/// A password check's place at the directory, and its network's count of checks in
/// progress (strangers only: a trusted browser is bounded by its own bucket).
#[derive(Debug)]
struct Admitted {
    _place: Pass,
    _network: Option<InFlight>,
}

/// Admits a password check past what the directory can bind and what one network
/// may hold of it, or answers 503 at once, before the check costs the database
/// anything.
async fn admit(state: &AppState, trust: &Trust, net: &str) -> Result<Admitted, WebError> {
    let network = match trust {
        Trust::Stranger => Some(state.flood.enter(net).ok_or(WebError::Busy)?),
        Trust::Device(_) => None,
    };
    let place = state.directory.admit_password_check().await?;
    Ok(Admitted {
        _place: place,
        _network: network,
    })
}

/// The hashed form of an identifier, as bucket names and trusted devices hold it.
pub fn digest(identifier: &str) -> String {
    hex::encode(&Sha256::digest(identifier.trim().to_lowercase().as_bytes())[..16])
}

/// Counts an attempt of `step` by `client` on `identifier`, or refuses it (429,
/// `Retry-After`) if a limit is reached.
pub async fn begin(
    state: &AppState,
    step: Step,
    client: IpAddr,
    identifier: &str,
    trust: &Trust,
) -> Result<Attempt, WebError> {
    let now = unix_now();
    let limits = &state.settings.limits;
    let net = network(client);
    // Networks many students share (a campus NAT) are not one client; each login
    // from them still is.
    let network_bucket = (*trust == Trust::Stranger
        && !limits.shared_networks.iter().any(|n| n.contains(client)))
    .then(|| format!("{}:ip:{net}", step.name));
    // A network its bucket refused is refused again from memory until the window
    // ends: hammering costs neither SQL nor one of the directory's places.
    if let Some(retry_after) = network_bucket
        .as_deref()
        .and_then(|bucket| state.flood.refused_for(bucket, now))
    {
        return Err(WebError::TooManyAttempts {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        });
    }
    let admitted = match step.binds {
        true => Some(admit(state, trust, &net).await?),
        false => None,
    };
    let id = digest(identifier);
    let mut attempt = Attempt {
        counts: step.counts,
        taken: Vec::new(),
        admitted,
    };
    let mut fixed = Vec::new();
    match trust {
        Trust::Device(device) => fixed.push((
            Bucket::Device,
            format!("{}:dev:{device}:{id}", step.name),
            limits.per_identifier,
        )),
        Trust::Stranger => {
            if let Some(bucket) = network_bucket {
                fixed.push((Bucket::Network, bucket, limits.per_address));
            }
            fixed.push((
                Bucket::IdentifierOnNetwork,
                format!("{}:id:{id}@{net}", step.name),
                limits.per_identifier,
            ));
            // A step that sends mail caps what one address receives, from anywhere:
            // the mails reach the student, so this locks nobody out.
            if step.counts == Counts::Every {
                fixed.push((
                    Bucket::Identifier,
                    format!("{}:id:{id}", step.name),
                    limits.per_identifier,
                ));
            }
        }
    }
    for (kind, bucket, limit) in fixed {
        let window_start = window_start(now, limit.window.as_secs());
        if !state
            .store
            .take_hit(&bucket, window_start, limit.max, now)
            .await?
        {
            if let (Bucket::Device, Trust::Device(device)) = (kind, trust) {
                super::devices::forget(state, device).await;
            }
            if kind == Bucket::Network {
                state
                    .flood
                    .remember_refusal(&bucket, window_start + secs(limit), now);
            }
            let retry_after = (window_start + secs(limit) - now).max(1);
            return attempt
                .refuse(state, step, client, &bucket, window_start, retry_after)
                .await;
        }
        attempt.taken.push(Taken {
            kind,
            bucket,
            window_start,
        });
    }
    if *trust == Trust::Stranger && step.counts == Counts::Failures {
        let bucket = format!("{}:acct:{id}", step.name);
        match throttle(state, &bucket, limits.per_account, now).await? {
            Ok(taken) => attempt.taken.push(taken),
            Err((window_start, retry_after)) => {
                // Asking again while throttled costs the asker's own budget for
                // this login on his network: polling for the moment the delay
                // ends is not free.
                attempt
                    .taken
                    .retain(|taken| taken.kind != Bucket::IdentifierOnNetwork);
                return attempt
                    .refuse(state, step, client, &bucket, window_start, retry_after)
                    .await;
            }
        }
    }
    Ok(attempt)
}

/// Runs a step's `work` under its limits, for a stranger, judged by its answer: a
/// link found dead (410) is a failure; an error checked nothing.
pub async fn guard(
    state: &AppState,
    step: Step,
    client: IpAddr,
    identifier: &str,
    work: impl Future<Output = Result<Response, WebError>>,
) -> Result<Response, WebError> {
    let attempt = begin(state, step, client, identifier, &Trust::Stranger).await?;
    let answer = work.await;
    let verdict = Verdict::of(&answer, |r| r.status() == StatusCode::GONE);
    attempt.settle(state, verdict).await;
    answer
}

/// Takes a count on the account-wide throttle if its delay has passed; else says
/// which window refused and how long to wait. The first `free` attempts are taken
/// like a limit's (parallel ones all pass); past them, one at a time: an attempt
/// taken by another at the same moment makes this one wait for the next delay.
async fn throttle(
    state: &AppState,
    bucket: &str,
    throttle: Throttle,
    now: i64,
) -> Result<Result<Taken, (i64, i64)>, WebError> {
    let window_start = window_start(now, throttle.window.as_secs());
    let count = state.store.count_hits(bucket, window_start).await?;
    let ready = count.last_at.saturating_add(delay(count.hits, throttle));
    let taken = if count.hits < throttle.free {
        state
            .store
            .take_hit(bucket, window_start, throttle.free, now)
            .await?
    } else {
        now >= ready
            && state
                .store
                .take_hit_after(bucket, window_start, count.hits, now)
                .await?
    };
    if taken {
        return Ok(Ok(Taken {
            kind: Bucket::Throttle,
            bucket: bucket.to_owned(),
            window_start,
        }));
    }
    let retry_after = if now < ready {
        ready - now
    } else {
        // Another attempt was counted at this very moment: the next delay applies.
        delay(count.hits + 1, throttle)
    };
    let retry_after = retry_after.max(1);
    Ok(Err((window_start, retry_after)))
}

/// How long after the last counted attempt the next one may come: nothing for the
/// first `free`, then `first_delay`, twice that, four times … up to `max_delay`.
fn delay(hits: i64, throttle: Throttle) -> i64 {
    let max = i64::try_from(throttle.max_delay.as_secs()).unwrap_or(i64::MAX);
    let first = i64::try_from(throttle.first_delay.as_secs())
        .unwrap_or(max)
        .max(1);
    if hits < throttle.free {
        return 0;
    }
    let past = u32::try_from(hits - throttle.free).unwrap_or(u32::MAX);
    1i64.checked_shl(past)
        .filter(|factor| *factor > 0)
        .and_then(|factor| factor.checked_mul(first))
        .unwrap_or(max)
        .min(max)
}

fn window_start(now: i64, window_secs: u64) -> i64 {
    let window = i64::try_from(window_secs).unwrap_or(i64::MAX).max(1);
    now - now.rem_euclid(window)
}

fn secs(limit: Limit) -> i64 {
    i64::try_from(limit.window.as_secs()).unwrap_or(i64::MAX)
}

impl Attempt {
    /// Ends the attempt: a failure keeps its counts; a success gives them back where
    /// only failures count; an attempt that checked nothing gives them back. A
    /// give-back that fails only leaves the limits stricter: it is logged, not
    /// shown.
    pub async fn settle(mut self, state: &AppState, verdict: Verdict) {
        // The check is over: its places go to the next one before any SQL here.
        drop(self.admitted.take());
        let give_back = match verdict {
            Verdict::Failed => false,
            Verdict::Succeeded => self.counts == Counts::Failures,
            Verdict::Unchecked => true,
        };
        if give_back {
            self.give_back(state).await;
        }
    }

    async fn give_back(self, state: &AppState) {
        for taken in self.taken {
            if let Err(error) = state
                .store
                .give_back_hit(&taken.bucket, taken.window_start)
                .await
            {
                tracing::warn!(%error, "a rate-limit count could not be given back");
            }
        }
    }

    /// Gives back what this attempt took, notes the refusal (the first of a window
    /// is audited: a flood must not flood the audit log too) and refuses.
    async fn refuse(
        mut self,
        state: &AppState,
        step: Step,
        client: IpAddr,
        bucket: &str,
        window_start: i64,
        retry_after: i64,
    ) -> Result<Attempt, WebError> {
        drop(self.admitted.take());
        self.give_back(state).await;
        let kind = bucket.split(':').nth(1).unwrap_or_default();
        tracing::warn!(step = step.name, kind, "rate limit reached");
        if state.store.note_refusal(bucket, window_start).await? <= 1 {
            let origin = Origin {
                client_ip: Some(client),
                request_id: None,
            };
            let event = AuditEvent::new("rate_limit", "refused")
                .detail(serde_json::json!({ "step": step.name, "limit": kind }));
            state.store.audit(&origin, event).await?;
        }
        Err(WebError::TooManyAttempts {
            retry_after: u64::try_from(retry_after).unwrap_or(1),
        })
    }
}

/// The network a client address counts for. An IPv6 host usually holds a whole
/// /64 and can rotate addresses in it at will, so its bucket is the /64; an
/// IPv4-mapped address counts as the IPv4 one.
fn network(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn an_ipv6_host_counts_for_its_64_and_ipv4_for_itself() {
        let a = network("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = network("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b, "addresses rotated inside one /64 share a bucket");
        assert_ne!(a, network("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(network("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(network("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }

    #[test]
    fn the_throttle_is_free_then_doubles_up_to_its_cap() {
        let throttle = Throttle {
            free: 10,
            window: Duration::from_secs(3600),
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(300),
        };
        let delays: Vec<i64> = [0, 9, 10, 11, 12, 18, 19, 100, i64::MAX]
            .into_iter()
            .map(|hits| delay(hits, throttle))
            .collect();
        assert_eq!(delays, [0, 0, 1, 2, 4, 256, 300, 300, 300]);
        let slower = Throttle {
            first_delay: Duration::from_secs(60),
            ..throttle
        };
        assert_eq!(delay(10, slower), 60);
        assert_eq!(delay(12, slower), 240);
        assert_eq!(delay(13, slower), 300);
    }
}
