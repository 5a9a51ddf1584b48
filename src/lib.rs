//! Guichet: the self-service desk of a university's identity system.
//!
//! Data flows one way: `web` parses requests into `domain` types, `flows` decide, and
//! `store`, `directory` and `mail` carry the decision out.

pub mod app;
pub mod cli;
pub mod config;
pub mod dev;
pub mod directory;
pub mod domain;
pub mod flows;
pub mod gate;
pub mod hashing;
pub mod mail;
pub mod oidc;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod web;

/// The allocator of every Guichet binary (the server, the tests, the benches): mimalloc
/// gives an argon2 block back to the system when the hash is done. glibc's malloc
/// keeps freed blocks of that size in per-thread arenas: 40 password resets took the
/// server from 23 to 396 MiB, for good (`cargo bench --bench load`, README).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
