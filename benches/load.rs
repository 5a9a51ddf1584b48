//! A load generator against a release Guichet: complete OIDC logins, single sign-on
//! hops, refreshes, UserInfo, reset and activation flows, sign-in floods, a password
//! spray and slow clients, each virtual client on its own loopback address so that
//! Guichet sees distinct client addresses. Guichet runs as its own process (the
//! release `guichet serve` binary on the `guichet dev` set-up), so the memory and
//! open files printed are its own.
//!
//! `cargo bench --bench load` runs everything in a few minutes; options after `--`:
//! `--only login,sso,refresh,userinfo,reset,activation,hall,unknown,unknown-500,spray,slow`,
//! `--concurrency N`, `--count N` (complete logins; SSO hops and UserInfo calls are
//! 10 N, refreshes 4 N), `--flows N` (resets, activations),
//! `--spread N` (addresses), `--slow N`, `--slow-secs S`, `--postgres URL`.

#[path = "load/bed.rs"]
mod bed;
#[path = "support/client.rs"]
mod client;
#[path = "load/flows.rs"]
mod flows;
#[path = "load/run.rs"]
mod run;
#[path = "load/scenarios.rs"]
mod scenarios;
#[path = "load/slow.rs"]
mod slow;
mod support;

use std::sync::Arc;

/// The command line after `--`.
#[derive(Debug, Clone)]
pub struct Options {
    pub only: Vec<String>,
    pub concurrency: usize,
    pub count: usize,
    pub flows: usize,
    pub spread: usize,
    pub slow: usize,
    pub slow_secs: u64,
    pub postgres: Option<String>,
}

impl Options {
    fn parse() -> Options {
        let mut options = Options {
            only: Vec::new(),
            concurrency: 8,
            count: 200,
            flows: 40,
            spread: 64,
            slow: 1000,
            slow_secs: 30,
            postgres: None,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            let number = |v: String| {
                v.parse::<usize>()
                    .unwrap_or_else(|_| panic!("a number, not {v}"))
            };
            match arg.as_str() {
                "--only" => options.only = value().split(',').map(str::to_owned).collect(),
                "--concurrency" => options.concurrency = number(value()),
                "--count" => options.count = number(value()),
                "--flows" => options.flows = number(value()),
                "--spread" => options.spread = number(value()).max(1),
                "--slow" => options.slow = number(value()),
                "--slow-secs" => options.slow_secs = number(value()) as u64,
                "--postgres" => options.postgres = Some(value()),
                // cargo passes `--bench`; anything else is a mistake worth saying.
                "--bench" => {}
                other => panic!("unknown option {other}"),
            }
        }
        options
    }

    pub fn wants(&self, scenario: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == scenario)
    }
}

/// One line naming the machine: CPU, cores, memory, system.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let ram_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let os = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "unknown OS".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "machine: {model}, {cores} cores, {:.1} GiB RAM, {os} (Linux {})",
        ram_kib as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let options = Options::parse();
    println!("{}", machine());
    let backend = options
        .postgres
        .as_deref()
        .map_or("SQLite", |_| "PostgreSQL");
    println!(
        "guichet load bench: release `guichet serve`, {backend}, private slapd; \
         server, slapd and generator share the machine"
    );
    let bed = Arc::new(bed::start(options.postgres.as_deref()).await);
    let idle = bed::usage(bed.pid);
    println!(
        "guichet pid {} started: RSS {:.1} MiB, {} open files",
        bed.pid,
        idle.rss_kib as f64 / 1024.0,
        idle.fds
    );
    scenarios::all(&bed, &options).await;
    if let Some(bed) = Arc::into_inner(bed) {
        bed.finish().await;
    }
}
