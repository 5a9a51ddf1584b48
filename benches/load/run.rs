//! Running a scenario: many operations, some at once, each ending in one outcome;
//! the tally of their statuses and latencies, printed on one line.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::percentile;

/// How one operation ended: the status that decided it, or a transport error.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Status(u16),
    Error,
}

impl Outcome {
    pub fn of(response: &reqwest::Response) -> Outcome {
        Outcome::Status(response.status().as_u16())
    }
}

/// The outcomes and latencies of one scenario.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub latencies: Vec<Duration>,
    pub ok2: usize,
    pub ok3: usize,
    pub c4: usize,
    pub c429: usize,
    pub c503: usize,
    pub c5: usize,
    pub errors: usize,
    pub elapsed: Duration,
}

impl Tally {
    pub fn add(&mut self, outcome: Outcome, latency: Duration) {
        self.latencies.push(latency);
        match outcome {
            Outcome::Status(429) => self.c429 += 1,
            Outcome::Status(503) => self.c503 += 1,
            Outcome::Status(s) if s < 300 => self.ok2 += 1,
            Outcome::Status(s) if s < 400 => self.ok3 += 1,
            Outcome::Status(s) if s < 500 => self.c4 += 1,
            Outcome::Status(_) => self.c5 += 1,
            Outcome::Error => self.errors += 1,
        }
    }

    pub fn merge(&mut self, other: Tally) {
        self.latencies.extend(other.latencies);
        self.ok2 += other.ok2;
        self.ok3 += other.ok3;
        self.c4 += other.c4;
        self.c429 += other.c429;
        self.c503 += other.c503;
        self.c5 += other.c5;
        self.errors += other.errors;
    }

    /// `ops/s  p50  p99  statuses`, the figures every scenario prints.
    pub fn line(&mut self) -> String {
        self.latencies.sort();
        let n = self.latencies.len();
        let (p50, p99) = if n == 0 {
            (Duration::ZERO, Duration::ZERO)
        } else {
            (
                percentile(&self.latencies, 0.5),
                percentile(&self.latencies, 0.99),
            )
        };
        format!(
            "{n} ops {:.1}/s p50 {:.1} ms p99 {:.1} ms | 2xx {} 3xx {} 4xx {} 429 {} 503 {} 5xx {} err {}",
            n as f64 / self.elapsed.as_secs_f64().max(1e-9),
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            self.ok2,
            self.ok3,
            self.c4,
            self.c429,
            self.c503,
            self.c5,
            self.errors,
        )
    }
}

/// The loopback address of virtual client `client` in address block `block`
/// (127.block.x.y): every scenario has a block of its own, so the failures one
/// scenario counts against its addresses do not refuse the next one.
pub fn address(block: u8, client: usize) -> IpAddr {
    let client = client % (250 * 250);
    IpAddr::V4(Ipv4Addr::new(
        127,
        block,
        (client / 250) as u8,
        (2 + client % 250) as u8,
    ))
}

/// Runs `total` calls of `op` (given the call's number), `concurrency` at a time.
pub async fn run<F, Fut>(total: usize, concurrency: usize, op: F) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency.max(1))
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return tally;
                    }
                    let t = Instant::now();
                    let outcome = op(i).await;
                    tally.add(outcome, t.elapsed());
                }
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.expect("worker"));
    }
    tally.elapsed = started.elapsed();
    tally
}

/// Runs `op` over and over with `concurrency` workers until `stop` is set, each
/// worker pausing `pause` between calls (a person, not a machine gun).
pub async fn run_until<F, Fut>(
    concurrency: usize,
    pause: Duration,
    stop: Arc<std::sync::atomic::AtomicBool>,
    op: F,
) -> Tally
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Outcome> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (op, stop) = (op.clone(), stop.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let outcome = op(w).await;
                    tally.add(outcome, t.elapsed());
                    tokio::time::sleep(pause).await;
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.expect("worker"));
    }
    tally.elapsed = started.elapsed();
    tally
}
