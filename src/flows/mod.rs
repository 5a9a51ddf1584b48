//! The decisions: what each step of each procedure does, in terms of the directory,
//! the store and the outbox. Nothing here knows HTTP, SQL or LDAP wire details.

pub mod activation;
pub mod activation_by_ine;
pub mod email_change;
pub mod help;
pub mod import;
pub mod invitation;
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
}
