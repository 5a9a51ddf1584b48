//! Guichet beside the reference provider, panva's `oidc-provider` (npm, OpenID
//! Certified; Node, one process, in-memory store; `benches/compare/peer.mjs`),
//! on this machine, in one run, under the same load from the same generator:
//! discovery, JWKS, UserInfo, refresh (rotation, a new RS256 ID token), the
//! authorization-code exchange, the SSO hop (authorize with a live session →
//! code) and introspection. Each endpoint runs for `--seconds` (10) at
//! `--connections` (32) against the peer, then against Guichet (the release
//! `guichet serve` on the `guichet dev` set-up, SQLite; with `--postgres URL`,
//! on PostgreSQL too). One table: rates, ratios, non-2xx, p50/p99.
//!
//! `cargo bench --bench compare [-- --seconds N --connections N --postgres URL --only a,b]`.
//! It installs the locked `oidc-provider` with `npm ci` in `benches/compare/`.
//! It reports; nothing here is asserted.

// Shared with the load bench, which uses all of them.
#[allow(dead_code)]
#[path = "load/bed.rs"]
mod bed;
#[allow(dead_code)]
#[path = "support/client.rs"]
mod client;
#[path = "compare/op.rs"]
mod op;
#[allow(dead_code)]
#[path = "load/run.rs"]
mod run;
#[allow(dead_code)]
mod support;

use std::sync::Arc;
use std::time::Duration;

use op::{Endpoint, Op};
use run::Tally;

#[derive(Debug, Clone)]
struct Options {
    seconds: u64,
    connections: usize,
    postgres: Option<String>,
    only: Vec<String>,
}

impl Options {
    fn parse() -> Options {
        let mut options = Options {
            seconds: 10,
            connections: 32,
            postgres: None,
            only: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--seconds" => options.seconds = value().parse().expect("seconds"),
                "--connections" => options.connections = value().parse().expect("connections"),
                "--postgres" => options.postgres = Some(value()),
                "--only" => options.only = value().split(',').map(str::to_owned).collect(),
                // cargo bench passes --bench.
                _ => {}
            }
        }
        options
    }

    fn wants(&self, endpoint: Endpoint) -> bool {
        self.only.is_empty() || self.only.iter().any(|o| o == endpoint.key())
    }
}

/// One row: each target's tally for an endpoint.
struct Row {
    endpoint: Endpoint,
    tallies: Vec<Tally>,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = Options::parse();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Guichet beside oidc-provider: {} s per endpoint, {} connections, {cpus} CPUs shared by both servers, slapd and this generator",
        options.seconds, options.connections
    );
    let peer = op::Peer::start().await;
    let guichet = bed::start(None).await;
    let mut targets = vec![
        Arc::new(Op::peer(&peer).await),
        Arc::new(Op::guichet("Guichet (SQLite)", &guichet).await),
    ];
    let postgres = match &options.postgres {
        Some(url) => Some(bed::start(Some(url)).await),
        None => None,
    };
    if let Some(bed) = &postgres {
        targets.push(Arc::new(Op::guichet("Guichet (PostgreSQL)", bed).await));
    }
    let mut rows = Vec::new();
    for endpoint in Endpoint::ALL.into_iter().filter(|e| options.wants(*e)) {
        let mut tallies = Vec::new();
        for target in &targets {
            let load = op::Load {
                seconds: Duration::from_secs(options.seconds),
                connections: options.connections,
            };
            let tally = op::measure(target.clone(), endpoint, load).await;
            println!(
                "  {:<28} {:<22} {}",
                endpoint.label(),
                target.name,
                tally_line(&tally)
            );
            tallies.push(tally);
        }
        rows.push(Row { endpoint, tallies });
    }
    print_table(&targets, &mut rows);
    peer.stop();
    guichet.finish().await;
    if let Some(bed) = postgres {
        bed.finish().await;
    }
}

fn tally_line(tally: &Tally) -> String {
    tally.clone().line()
}

fn rate(tally: &Tally) -> f64 {
    tally.latencies.len() as f64 / tally.elapsed.as_secs_f64().max(1e-9)
}

fn non_2xx(tally: &Tally) -> usize {
    tally.latencies.len() - tally.ok2
}

fn millis(tally: &mut Tally, p: f64) -> f64 {
    tally.latencies.sort();
    if tally.latencies.is_empty() {
        return 0.0;
    }
    support::percentile(&tally.latencies, p).as_secs_f64() * 1e3
}

/// The Markdown table the README copies: the peer first, each Guichet with its
/// ratio to the peer.
fn print_table(targets: &[Arc<Op>], rows: &mut [Row]) {
    let mut header = format!("\n| endpoint | {} |", targets[0].name);
    let mut rule = "|---|---:|".to_owned();
    for target in &targets[1..] {
        header.push_str(&format!(" {} | ÷ peer |", target.name));
        rule.push_str("---:|---:|");
    }
    header.push_str(" non-2xx | p50 / p99 (ms) |");
    rule.push_str("---|---|");
    println!("{header}\n{rule}");
    for row in rows.iter_mut() {
        let peer_rate = rate(&row.tallies[0]);
        let mut line = format!("| {} | {:.0}/s |", row.endpoint.label(), peer_rate);
        for tally in &row.tallies[1..] {
            line.push_str(&format!(
                " {:.0}/s | {:.2} |",
                rate(tally),
                rate(tally) / peer_rate.max(1e-9)
            ));
        }
        let non: Vec<String> = row.tallies.iter().map(|t| non_2xx(t).to_string()).collect();
        let latency: Vec<String> = row
            .tallies
            .iter_mut()
            .map(|t| format!("{:.1} / {:.1}", millis(t, 0.5), millis(t, 0.99)))
            .collect();
        line.push_str(&format!(" {} | {} |", non.join(" · "), latency.join(" · ")));
        println!("{line}");
    }
    println!("\n(non-2xx and latencies: peer · Guichet, in the columns' order)");
}
