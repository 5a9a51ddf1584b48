//! Guichet: the self-service desk of a university's identity system.
//!
//! Data flows one way: `web` parses requests into `domain` types, `flows` decide, and
//! `store`, `directory` and `mail` carry the decision out.

pub mod config;
pub mod domain;
