//! The decisions: what each step of each procedure does, in terms of the directory,
//! the store and the outbox. Nothing here knows HTTP, SQL or LDAP wire details.

pub mod activation;
pub mod activation_by_ine;
mod critical;
pub mod email_change;
pub mod help;
pub mod import;
pub mod invitation;
pub mod password_change;
pub mod reset;
pub mod sign_in;

use crate::directory::DirectoryError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another request holds the same link (a double submission) and did not let
    /// go in time. Nothing was changed by this one.
    #[error("the link is being used by another request")]
    LinkBusy,
    /// A critical section's task panicked or was cancelled at shutdown.
    #[error("the operation was interrupted")]
    Interrupted,
}
