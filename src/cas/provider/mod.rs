//! The CAS server's decisions, one per endpoint: login (issue a service ticket
//! on the SSO session), validation (spend it once, with its service, `renew`,
//! the credential epoch, and a proxy callback), `/proxy`, and logout. Like the
//! OIDC provider they take the application core and return typed outcomes; the
//! web layer parses nothing itself and maps each outcome once. Nothing here
//! knows HTTP but the proxy callback, which is Guichet calling out.

mod login;
mod logout;
mod proxy;
mod validate;

pub use login::CasLogin;
pub use logout::CasLogout;
pub use proxy::Proxied;
pub use validate::Validation;

use super::protocol::ServiceUrl;
use super::services::{self, CasService};
use crate::app::App;
use crate::config::CasSettings;
use crate::directory::DirectoryError;
use crate::flows::FlowError;
use crate::oidc::keys::KeyError;
use crate::store::{AuditEvent, Origin, StoreError};

/// The CAS server for one request: the core, and who asks (for the audit log).
pub struct CasProvider<'a> {
    pub app: &'a App,
    pub origin: Origin,
}

/// Something Guichet depends on failed: the client may retry (`INTERNAL_ERROR`,
/// or a 503 page); the detail is for the log.
#[derive(Debug, thiserror::Error)]
pub enum CasFailure {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
    #[error(transparent)]
    Flow(#[from] FlowError),
    #[error(transparent)]
    Keys(#[from] KeyError),
}

/// The client that hands PGTs over: https only (§2.5.4), no redirect followed
/// (the callback named is the one that must answer), the system's roots and
/// the institution's CA if the settings name one.
pub fn callback_client(settings: &CasSettings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = &settings.proxy_callback_ca_file {
        let pem = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        for root in roots {
            builder = builder.add_root_certificate(root);
        }
    }
    builder.build().map_err(|e| e.to_string())
}

impl CasProvider<'_> {
    pub fn new(app: &App, origin: Origin) -> CasProvider<'_> {
        CasProvider { app, origin }
    }

    /// The registration `service` belongs to, if any.
    async fn registered(&self, service: &ServiceUrl) -> Result<Option<CasService>, StoreError> {
        let all = self.app.store.cas_services().await?;
        Ok(services::find(&all, service).cloned())
    }

    /// A session unused this long has ended, and its tickets with it.
    fn idle_secs(&self) -> i64 {
        self.app.settings.sessions.idle.as_secs() as i64
    }

    async fn audit(&self, event: AuditEvent) -> Result<(), StoreError> {
        self.app.store.audit(&self.origin, event).await
    }
}
