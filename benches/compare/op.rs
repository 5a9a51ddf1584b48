//! The providers under test, named by their discovery documents so the same
//! code drives both, and the load each endpoint gets. Only signing in differs:
//! Guichet's login form, and the peer's interaction that finishes by itself.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::header::LOCATION;
use serde_json::Value;

use crate::bed::Bed;
use crate::client::REDIRECT;
use crate::run::{Outcome, Tally};

/// The student both providers sign in (`cbernard` is in the `guichet dev` tree).
const LOGIN: &str = "cbernard";
const PASSWORD: &str = "Demo-Passw0rd!";
/// The peer's client secret (peer.mjs reads it from PEER_SECRET).
const PEER_SECRET: &str = "compare-bench-secret-of-32-bytes-or-more";
/// Codes are minted, then exchanged, in batches this large: oidc-provider's
/// in-memory store keeps a bounded number of entries (an LRU), and a code it
/// has dropped would be refused. Only the exchanges are timed.
const CODE_BATCH: usize = 400;

/// `oidc-provider` from `benches/compare/` (locked with `npm ci`), as a child.
pub struct Peer {
    pub base: String,
    child: Child,
}

impl Peer {
    pub async fn start() -> Peer {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/compare");
        let installed = Command::new("npm")
            .args(["ci", "--silent", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .status()
            .expect("npm (Node.js 20 or later)");
        assert!(installed.success(), "npm ci in {}", dir.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("node")
            .arg("peer.mjs")
            .arg(port.to_string())
            .env("PEER_SECRET", PEER_SECRET)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("node peer.mjs");
        // Owned at once: a failed start still stops the process (Drop).
        let peer = Peer {
            base: format!("http://127.0.0.1:{port}"),
            child,
        };
        let http = reqwest::Client::new();
        for _ in 0..300 {
            let up = http
                .get(format!("{}/.well-known/openid-configuration", peer.base))
                .send()
                .await;
            if up.is_ok_and(|r| r.status().is_success()) {
                return peer;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("oidc-provider did not start in 30 s");
    }

    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Guichet,
    Peer,
}

/// A provider under test: its endpoints (from discovery) and the bench client.
pub struct Op {
    pub name: String,
    kind: Kind,
    base: String,
    secret: String,
    discovery: String,
    authorization: String,
    token: String,
    userinfo: String,
    jwks: String,
    introspection: String,
}

impl Op {
    pub async fn peer(peer: &Peer) -> Op {
        Op::discover("oidc-provider", Kind::Peer, &peer.base, PEER_SECRET).await
    }

    pub async fn guichet(name: &str, bed: &Bed) -> Op {
        Op::discover(name, Kind::Guichet, &bed.base, &bed.secret).await
    }

    async fn discover(name: &str, kind: Kind, base: &str, secret: &str) -> Op {
        let discovery = format!("{base}/.well-known/openid-configuration");
        let document: Value = reqwest::get(&discovery)
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
        let field = |name: &str| {
            document[name]
                .as_str()
                .unwrap_or_else(|| panic!("{name} in discovery"))
                .to_owned()
        };
        Op {
            name: name.to_owned(),
            kind,
            base: base.to_owned(),
            secret: secret.to_owned(),
            authorization: field("authorization_endpoint"),
            token: field("token_endpoint"),
            userinfo: field("userinfo_endpoint"),
            jwks: field("jwks_uri"),
            introspection: field("introspection_endpoint"),
            discovery,
        }
    }

    fn authorize_url(&self, scope: &str) -> String {
        crate::client::authorize_at(&self.authorization, scope)
    }

    /// A browser with a live session: Guichet's login form, or the peer's
    /// interaction (login and consent to every scope, once).
    async fn signed_in(&self) -> reqwest::Client {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("browser");
        match self.kind {
            Kind::Guichet => self.login_form(&browser).await,
            Kind::Peer => {
                let first = format!(
                    "{}&prompt=consent",
                    self.authorize_url("openid offline_access profile email")
                );
                self.walk(&browser, first).await.expect("peer sign-in");
            }
        }
        browser
    }

    async fn login_form(&self, browser: &reqwest::Client) {
        let page = browser
            .get(format!("{}/login", self.base))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("page");
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .expect("csrf field")
            .to_owned();
        let form = [
            ("csrf", csrf.as_str()),
            ("login", LOGIN),
            ("password", PASSWORD),
            ("next", "/account"),
        ];
        let signed = browser
            .post(format!("{}/login", self.base))
            .form(&form)
            .send()
            .await
            .expect("login");
        assert_eq!(signed.status(), reqwest::StatusCode::SEE_OTHER, "signed in");
    }

    /// Follows redirects from `url` until the client's redirect URI; the code.
    async fn walk(&self, browser: &reqwest::Client, mut url: String) -> Result<String, Outcome> {
        for _ in 0..8 {
            if url.starts_with(REDIRECT) {
                let back = url::Url::parse(&url).map_err(|_| Outcome::Error)?;
                return back
                    .query_pairs()
                    .find(|(k, _)| k == "code")
                    .map(|(_, v)| v.into_owned())
                    .ok_or(Outcome::Status(400));
            }
            let response = browser.get(&url).send().await.map_err(|_| Outcome::Error)?;
            if !response.status().is_redirection() {
                return Err(Outcome::of(&response));
            }
            let next = response.headers()[LOCATION]
                .to_str()
                .map_err(|_| Outcome::Error)?;
            url = match next.starts_with('/') {
                true => format!("{}{next}", self.base),
                false => next.to_owned(),
            };
        }
        Err(Outcome::Error)
    }

    async fn tokens(
        &self,
        http: &reqwest::Client,
        form: &[(&str, &str)],
    ) -> Result<Value, Outcome> {
        let response = http
            .post(&self.token)
            .basic_auth("bench", Some(&self.secret))
            .form(form)
            .send()
            .await
            .map_err(|_| Outcome::Error)?;
        if !response.status().is_success() {
            return Err(Outcome::of(&response));
        }
        response.json().await.map_err(|_| Outcome::Error)
    }

    async fn redeem(&self, http: &reqwest::Client, code: &str) -> Result<Value, Outcome> {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ];
        self.tokens(http, &form).await
    }

    /// Tokens from a fresh code of `browser`'s session.
    async fn fresh_tokens(
        &self,
        browser: &reqwest::Client,
        http: &reqwest::Client,
        scope: &str,
    ) -> Value {
        let mut url = self.authorize_url(scope);
        // oidc-provider grants offline_access only on a consent prompt (OIDC
        // Core §11); its interaction answers it at once.
        if self.kind == Kind::Peer && scope.contains("offline_access") {
            url.push_str("&prompt=consent");
        }
        let code = self
            .walk(browser, url)
            .await
            .unwrap_or_else(|o| panic!("{}: code: {o:?}", self.name));
        self.redeem(http, &code)
            .await
            .unwrap_or_else(|o| panic!("{}: tokens: {o:?}", self.name))
    }
}

/// The endpoints compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Discovery,
    Jwks,
    UserInfo,
    Refresh,
    CodeExchange,
    SsoHop,
    Introspection,
}

impl Endpoint {
    pub const ALL: [Endpoint; 7] = [
        Endpoint::Discovery,
        Endpoint::Jwks,
        Endpoint::UserInfo,
        Endpoint::Refresh,
        Endpoint::CodeExchange,
        Endpoint::SsoHop,
        Endpoint::Introspection,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "jwks",
            Endpoint::UserInfo => "userinfo",
            Endpoint::Refresh => "refresh",
            Endpoint::CodeExchange => "code",
            Endpoint::SsoHop => "sso",
            Endpoint::Introspection => "introspection",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Discovery => "discovery",
            Endpoint::Jwks => "JWKS",
            Endpoint::UserInfo => "UserInfo",
            Endpoint::Refresh => "refresh (rotation, ID token)",
            Endpoint::CodeExchange => "code exchange",
            Endpoint::SsoHop => "SSO hop (authorize → code)",
            Endpoint::Introspection => "introspection",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub seconds: Duration,
    pub connections: usize,
}

/// What one connection holds across its calls.
enum Held {
    Nothing,
    Browser(reqwest::Client),
    Refresh(String),
}

/// Prepares what `endpoint` needs (tokens, sessions, codes), then runs it on
/// `load.connections` connections for `load.seconds`.
pub async fn measure(op: Arc<Op>, endpoint: Endpoint, load: Load) -> Tally {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(load.connections)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let student = op.signed_in().await;
    let access = match endpoint {
        Endpoint::UserInfo | Endpoint::Introspection => {
            let tokens = op
                .fresh_tokens(&student, &http, "openid profile email")
                .await;
            tokens["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
        _ => String::new(),
    };
    let mut held = Vec::new();
    for _ in 0..load.connections {
        held.push(match endpoint {
            Endpoint::SsoHop => Held::Browser(op.signed_in().await),
            Endpoint::Refresh => {
                let tokens = op
                    .fresh_tokens(&student, &http, "openid offline_access profile email")
                    .await;
                Held::Refresh(
                    tokens["refresh_token"]
                        .as_str()
                        .expect("refresh token")
                        .to_owned(),
                )
            }
            _ => Held::Nothing,
        });
    }
    if endpoint == Endpoint::CodeExchange {
        return measure_exchange(op, http, &student, load).await;
    }
    let shared = Arc::new(Shared {
        op,
        http,
        access,
        codes: Vec::new(),
        next_code: AtomicUsize::new(0),
    });
    run_for(shared, endpoint, held, load).await
}

/// The code exchange: batches of fresh codes from one session, each batch
/// exchanged on `load.connections` connections, until the exchanges alone
/// have taken `load.seconds`.
async fn measure_exchange(
    op: Arc<Op>,
    http: reqwest::Client,
    student: &reqwest::Client,
    load: Load,
) -> Tally {
    let mut total = Tally::default();
    let mut exchanging = Duration::ZERO;
    while exchanging < load.seconds {
        let codes = mint_codes(&op, student, load.connections).await;
        let shared = Arc::new(Shared {
            op: op.clone(),
            http: http.clone(),
            access: String::new(),
            codes,
            next_code: AtomicUsize::new(0),
        });
        let held = (0..load.connections).map(|_| Held::Nothing).collect();
        let batch = run_for(shared, Endpoint::CodeExchange, held, load).await;
        exchanging += batch.elapsed;
        total.merge(batch);
    }
    total.elapsed = exchanging;
    total
}

/// Runs `endpoint` on one connection per `held` until `load.seconds` have
/// passed or there is nothing left to call with.
async fn run_for(shared: Arc<Shared>, endpoint: Endpoint, held: Vec<Held>, load: Load) -> Tally {
    let started = Instant::now();
    let deadline = started + load.seconds;
    let workers: Vec<_> = held
        .into_iter()
        .map(|mut held| {
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let Some(outcome) = shared.call(endpoint, &mut held).await else {
                        break;
                    };
                    tally.add(outcome, t.elapsed());
                }
                tally
            })
        })
        .collect();
    let mut tally = Tally::default();
    for worker in workers {
        tally.merge(worker.await.expect("worker"));
    }
    tally.elapsed = started.elapsed();
    tally
}

/// `CODE_BATCH` fresh codes from `student`'s session.
async fn mint_codes(op: &Arc<Op>, student: &reqwest::Client, connections: usize) -> Vec<String> {
    let minted = Arc::new(AtomicUsize::new(0));
    let minters: Vec<_> = (0..connections)
        .map(|_| {
            let (op, student, minted) = (op.clone(), student.clone(), minted.clone());
            tokio::spawn(async move {
                let mut codes = Vec::new();
                while minted.fetch_add(1, Ordering::Relaxed) < CODE_BATCH {
                    if let Ok(code) = op
                        .walk(&student, op.authorize_url("openid profile email"))
                        .await
                    {
                        codes.push(code);
                    }
                }
                codes
            })
        })
        .collect();
    let mut codes = Vec::new();
    for minter in minters {
        codes.extend(minter.await.expect("minter"));
    }
    codes
}

struct Shared {
    op: Arc<Op>,
    http: reqwest::Client,
    access: String,
    codes: Vec<String>,
    next_code: AtomicUsize,
}

impl Shared {
    /// One call; `None` when there is nothing left to call with (codes used up).
    async fn call(&self, endpoint: Endpoint, held: &mut Held) -> Option<Outcome> {
        let op = &self.op;
        let get = |url: &str| self.http.get(url).send();
        let outcome = match (endpoint, held) {
            (Endpoint::Discovery, _) => status(get(&op.discovery).await),
            (Endpoint::Jwks, _) => status(get(&op.jwks).await),
            (Endpoint::UserInfo, _) => status(
                self.http
                    .get(&op.userinfo)
                    .bearer_auth(&self.access)
                    .send()
                    .await,
            ),
            (Endpoint::Introspection, _) => status(
                self.http
                    .post(&op.introspection)
                    .basic_auth("bench", Some(&op.secret))
                    .form(&[("token", self.access.as_str())])
                    .send()
                    .await,
            ),
            (Endpoint::Refresh, Held::Refresh(token)) => {
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ];
                match op.tokens(&self.http, &form).await {
                    Ok(tokens) => {
                        // Rotation: the next call presents the new token.
                        *token = tokens["refresh_token"]
                            .as_str()
                            .unwrap_or_default()
                            .to_owned();
                        Outcome::Status(200)
                    }
                    Err(outcome) => outcome,
                }
            }
            (Endpoint::CodeExchange, _) => {
                let i = self.next_code.fetch_add(1, Ordering::Relaxed);
                let code = self.codes.get(i)?;
                match op.redeem(&self.http, code).await {
                    Ok(_) => Outcome::Status(200),
                    Err(outcome) => outcome,
                }
            }
            (Endpoint::SsoHop, Held::Browser(browser)) => {
                match op
                    .walk(browser, op.authorize_url("openid profile email"))
                    .await
                {
                    Ok(_) => Outcome::Status(200),
                    Err(outcome) => outcome,
                }
            }
            _ => Outcome::Error,
        };
        Some(outcome)
    }
}

fn status(sent: Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match sent {
        Ok(response) => Outcome::of(&response),
        Err(_) => Outcome::Error,
    }
}
