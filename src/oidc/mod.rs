//! The OpenID Connect provider: signing keys, registered clients, and (in `web`) the
//! endpoints the ENT, Moodle and webmail use.

pub mod clients;
pub mod keys;
