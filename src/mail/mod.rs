//! Outgoing mail, only through the outbox: the worker claims rows, renders them and
//! sends them, with retries. The transport is SMTP (TLS or STARTTLS through rustls, with
//! authentication) or, for development, a folder of `.eml` files.

pub mod mailbox;
mod message;
mod transport;
mod worker;

pub use transport::{MailError, Mailer};
pub use worker::OutboxWorker;
