//! The application core that flows, background workers, the web layer and the CLI
//! share: settings, store, directory (with its hasher), outbox, signing keys. Cheap
//! to clone, so a critical section can own one and run to its end in its own task
//! (see [`App::finish`]).

use std::future::Future;
use std::sync::{Arc, OnceLock};

use tokio::sync::Notify;

use url::Url;

use crate::config::{Profile, Settings};
use crate::directory::Directory;
use crate::flows::FlowError;
use crate::mail::OutboxWorker;
use crate::oidc::keyring::KeyRing;
use crate::store::Store;

#[derive(Clone, Debug)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub directory: Directory,
    /// Sends what flows put in the outbox; `server::run` runs it.
    pub outbox: OutboxWorker,
    /// Rung when a back-channel logout is queued (`oidc::backchannel`).
    pub backchannel: Arc<Notify>,
    /// The signing keys, opened and read again in the background.
    pub keys: Arc<KeyRing>,
    /// Calls CAS proxy callbacks; built at first use, with the settings' CA.
    cas_http: Arc<OnceLock<Result<reqwest::Client, String>>>,
}

impl App {
    pub fn new(
        settings: Arc<Settings>,
        store: Store,
        directory: Directory,
        outbox: OutboxWorker,
        keys: Arc<KeyRing>,
    ) -> App {
        App {
            settings,
            store,
            directory,
            outbox,
            backchannel: Arc::new(Notify::new()),
            keys,
            cas_http: Arc::new(OnceLock::new()),
        }
    }

    /// The HTTP client for CAS proxy callbacks: https only, no redirect followed,
    /// the system's roots and `cas.proxy_callback_ca_file`'s.
    pub fn cas_http(&self) -> Result<&reqwest::Client, &str> {
        self.cas_http
            .get_or_init(|| crate::cas::provider::callback_client(&self.settings.cas))
            .as_ref()
            .map_err(String::as_str)
    }

    pub fn profile(&self) -> &Profile {
        &self.settings.profile
    }

    /// The address students reach Guichet at, for links in mails.
    pub fn public_url(&self) -> &Url {
        &self.settings.server.public_url
    }

    /// Runs a critical section (a directory write and the records that must follow
    /// it) in a task of its own and waits for it. The client hanging up, or the
    /// request timing out, drops the waiting request, not the section: it runs to
    /// its end, and the records follow the write whatever happens to the request.
    pub async fn finish<T, F>(&self, section: F) -> Result<T, FlowError>
    where
        F: Future<Output = Result<T, FlowError>> + Send + 'static,
        T: Send + 'static,
    {
        tokio::spawn(section).await.map_err(|error| {
            tracing::error!(%error, "a critical section did not finish");
            FlowError::Interrupted
        })?
    }

    /// Wakes the workers after a commit that queued mail or logouts.
    pub fn wake_workers(&self) {
        self.outbox.waker().notify_one();
        self.backchannel.notify_one();
    }
}
