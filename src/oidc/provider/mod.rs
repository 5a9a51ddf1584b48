//! The provider's decisions, one step per endpoint: authorize, exchange and
//! refresh, introspect, revoke, userinfo, end-session. Like the student flows
//! (`crate::flows`), they take the application core and return typed outcomes;
//! the web layer parses requests into `oidc::protocol` types and maps outcomes to
//! responses once. Nothing here knows HTTP.
//!
//! They live under `oidc/` rather than `flows/` because they share the provider's
//! own parts (keys, clients, claims, protocol types) and nothing with the student
//! procedures but the core.

mod authorize;
mod introspect;
mod logout;
mod token;
mod userinfo;

pub use authorize::{Authorization, ConsentAnswer, ConsentAsked, Refusal, ToLogin};
pub use logout::{EndSession, after_logout};
pub use token::sid;

use super::OAuthError;
use super::keys::KeyError;
use crate::app::App;
use crate::directory::DirectoryError;
use crate::flows::FlowError;
use crate::store::{Origin, StoreError};

/// The provider for one request: the core, and who asks (for the audit log).
pub struct Provider<'a> {
    pub app: &'a App,
    pub origin: Origin,
}

/// Why a step gave no outcome: the client's request is refused, or something
/// Guichet depends on failed (the client may retry; the detail is for the log).
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error(transparent)]
    Refused(#[from] OAuthError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

impl Provider<'_> {
    pub fn new(app: &App, origin: Origin) -> Provider<'_> {
        Provider { app, origin }
    }

    fn issuer(&self) -> String {
        super::issuer(self.app)
    }
}
