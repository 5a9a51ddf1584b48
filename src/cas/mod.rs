//! The CAS server (Apereo CAS Protocol 3.0.3), on the same SSO session as OIDC.
//! Its protocol layer is pure (no HTTP, no store, no directory): the requests
//! of its endpoints parsed into types (`protocol`), its tickets (`tickets`), its
//! error codes (`CasError`) and the answers it writes (`responses`). The
//! registry of services is `services`; the decisions are `provider`'s, as the
//! OIDC provider's are; the handlers are `web::cas`.
//!
//! How a validation goes through it, for whoever writes the layers above:
//! `ValidateRequest::parse(endpoint, &pairs)` gives a well-formed request or a
//! `Refused` (error, format, and the one-time ticket the attempt spends); the
//! provider looks the ticket up by `PresentedTicket::hash`, spends it, checks
//! its service (`ServiceUrl` equality), `renew`, the proxy callback, and returns
//! a `ValidationSuccess` or a `CasError`; `responses::validation_success` or
//! `responses::validation_failure` writes the body in `request.format`, served
//! with `Format::media_type`.

mod error;
pub mod protocol;
pub mod provider;
pub mod responses;
pub mod services;
#[cfg(test)]
mod test_xml;
pub mod tickets;

pub use error::{CasCode, CasError};
