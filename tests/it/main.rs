//! Guichet's integration tests, in one test binary (one link instead of one per area):
//! a module per area, all on the harness in `common/`. One area runs with
//! `cargo nextest run --test it -E 'test(/^oidc::/)'`.

mod common;

mod account;
mod activation;
mod browser;
mod cas;
mod cli;
mod conformance;
mod directory;
mod faults;
mod help;
mod hostile;
mod import;
mod interop;
mod invitation;
mod limits;
mod mail;
mod oidc;
mod reset;
mod server;
mod store;
mod trust;
