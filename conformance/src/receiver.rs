//! The relying party's own web server: the addresses the test clients are
//! registered with. Only the back-channel endpoint does work (it keeps every
//! logout token it is sent); the browser never follows the provider's redirects
//! here, it reads them.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::{get, post};

type Tokens = Arc<Mutex<Vec<String>>>;

#[derive(Debug)]
pub struct Receiver {
    addr: SocketAddr,
    tokens: Tokens,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    /// Listens on `addr` (port 0 for any free port).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Receiver> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let tokens = Tokens::default();
        let app = Router::new()
            .route("/callback", get(|| async { "signed in" }))
            .route("/logged-out", get(|| async { "signed out" }))
            .route("/backchannel", post(backchannel))
            .with_state(tokens.clone());
        let task = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                eprintln!("receiver stopped: {error}");
            }
        });
        Ok(Receiver { addr, tokens, task })
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn redirect_uri(&self) -> String {
        self.url("/callback")
    }

    pub fn post_logout_redirect_uri(&self) -> String {
        self.url("/logged-out")
    }

    pub fn backchannel_logout_uri(&self) -> String {
        self.url("/backchannel")
    }

    /// Waits up to `timeout` for a logout token that `wanted` accepts.
    pub(crate) async fn logout_token(
        &self,
        timeout: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.lock().iter().find(|t| wanted(t)).cloned();
            if found.is_some() || Instant::now() >= deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.tokens
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// OpenID Connect Back-Channel Logout §2.5: a form POST with `logout_token`.
async fn backchannel(
    State(tokens): State<Tokens>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, &'static str) {
    let mut reply = HeaderMap::new();
    reply.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let token = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned());
    match token {
        Some(token) if form => {
            tokens
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(token);
            (StatusCode::OK, reply, "")
        }
        _ => (
            StatusCode::BAD_REQUEST,
            reply,
            "expected a form with logout_token",
        ),
    }
}
