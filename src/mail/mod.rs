//! Outgoing mail. The transport is SMTP (TLS or STARTTLS through rustls, with
//! authentication) or, for development, a folder of `.eml` files.

pub mod mailbox;
mod transport;

pub use transport::{MailError, Mailer};
