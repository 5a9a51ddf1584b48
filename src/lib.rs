//! Guichet: the self-service desk of a university's identity system.
//!
//! Data flows one way: `web` parses requests into `domain` types, `flows` decide, and
//! `store`, `directory` and `mail` carry the decision out.

pub mod app;
pub mod cas;
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

/// The unit tests run on the server's allocator (`main.rs`), so that what they
/// measure of memory is what the server does.
#[cfg(test)]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
