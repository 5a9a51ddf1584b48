//! A real browser for tests: Debian's Chromium, headless, driven through its own
//! `chromedriver` with the `fantoccini` WebDriver client. Each `Browser` has its own
//! chromedriver on a free port and its own throw-away profile; dropping it kills the
//! chromedriver process group (and so the Chromium it started), even after a panic.
//!
//! `./scripts/install-deps` installs both (`chromium`, `chromium-driver`). When they are
//! missing the test fails and says so: a browser test never skips.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tempfile::TempDir;

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// How long a page may take to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A headless Chromium session. `client` is the WebDriver client.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: TempDir,
}

impl Browser {
    /// Chromium with JavaScript on, as most students use it.
    pub async fn start() -> Browser {
        Self::launch(true).await
    }

    /// Chromium with JavaScript turned off in its settings (every page must still work).
    pub async fn start_without_javascript() -> Browser {
        Self::launch(false).await
    }

    async fn launch(javascript: bool) -> Browser {
        for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            assert!(
                Path::new(binary).exists(),
                "{binary} is missing: the browser tests need Debian's `{package}` package \
                 (run ./scripts/install-deps, or apt-get install chromium chromium-driver)"
            );
        }
        // rustls 0.23 here has two crypto providers compiled in (the app's ring, and the
        // WebDriver client's default); the app's choice must be the process default.
        guichet::server::install_crypto_provider();
        let profile = tempfile::Builder::new()
            .prefix("guichet-chromium-")
            .tempdir()
            .unwrap();
        let port = super::free_port();
        let driver = {
            use std::os::unix::process::CommandExt;
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group: Drop kills chromedriver and the browser together.
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {CHROMEDRIVER}: {e}"))
        };
        // From here on, a panic still kills the driver (Drop of the half-built guard).
        let guard = DriverGuard(Some(driver));
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "chromedriver did not listen on port {port} within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        let mut chrome_options = json!({
            "binary": CHROMIUM,
            "args": [
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-extensions",
                "--disable-sync",
                "--no-first-run",
                "--no-default-browser-check",
                "--password-store=basic",
                "--window-size=1280,1024",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        });
        if !javascript {
            chrome_options["prefs"] = json!({
                "profile.managed_default_content_settings.javascript": 2
            });
        }
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".into(), chrome_options);
        // Keeps the console messages, read back by `console`.
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::rustls()
            .unwrap()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .unwrap_or_else(|e| panic!("no Chromium session through chromedriver: {e}"));
        let mut guard = guard;
        Browser {
            client,
            driver: guard.0.take().unwrap(),
            _profile: profile,
        }
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The element matching `css`, waiting for it to appear.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!(
                "no `{css}` on {}: {e}\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    /// Every element matching `css`, right now.
    pub async fn find_all(&self, css: &str) -> Vec<fantoccini::elements::Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Whether something matches `css`, right now.
    pub async fn has(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// Types `text` into the field matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.unwrap();
    }

    /// Clicks the element matching `css`.
    pub async fn click(&self, css: &str) {
        self.find(css).await.click().await.unwrap();
    }

    /// The current address.
    pub async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_default()
    }

    /// The page's HTML as the browser holds it (for failure messages).
    pub async fn source(&self) -> String {
        self.client.source().await.unwrap_or_default()
    }

    /// The page's text as a reader sees it.
    pub async fn text(&self) -> String {
        self.find("body").await.text().await.unwrap()
    }

    /// The `lang` of the page's root element.
    pub async fn lang(&self) -> String {
        self.find("html")
            .await
            .attr("lang")
            .await
            .unwrap()
            .unwrap_or_default()
    }

    /// Waits until the `h1` reads `title` (after a click that loads another page).
    pub async fn wait_for_title(&self, title: &str) {
        let started = Instant::now();
        loop {
            let heading = match self.client.find(Locator::Css("h1")).await {
                Ok(h1) => h1.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if heading.trim() == title {
                return;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "expected the page titled {title:?}, still on {heading:?} at {}:\n{}",
                self.url().await,
                self.text().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until `condition` holds, polling; panics with `what` after `PATIENCE`.
    pub async fn wait_until<F, Fut>(&self, what: &str, mut condition: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let started = Instant::now();
        while !condition().await {
            assert!(started.elapsed() < PATIENCE, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The browser console since the last call (messages, load failures, CSP
    /// violations), through chromedriver's log endpoint. Each entry has `level`
    /// (`SEVERE`, `WARNING`, `INFO`...), `message` and `source`.
    pub async fn console(&self) -> Vec<Value> {
        match self.client.issue_cmd(BrowserLog).await.unwrap() {
            Value::Array(entries) => entries,
            other => panic!("unexpected browser log answer: {other}"),
        }
    }

    /// The accessible name the browser computes for `element` (WebDriver's Get
    /// Computed Label: what a screen reader announces).
    pub async fn computed_label(&self, element: &fantoccini::elements::Element) -> String {
        let id = element.element_id().to_string();
        match self.client.issue_cmd(ComputedLabel(id)).await.unwrap() {
            Value::String(label) => label,
            other => panic!("unexpected computed label: {other}"),
        }
    }

    /// Ends the WebDriver session (Chromium quits); chromedriver is killed on drop.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills chromedriver's process group if `Browser` is never built.
struct DriverGuard(Option<Child>);

impl Drop for DriverGuard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            kill_group(child);
        }
    }
}

/// Kills the process group led by `child` (chromedriver and the Chromium it started),
/// then reaps `child`.
fn kill_group(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

/// `POST /session/{id}/se/log {"type": "browser"}`: chromedriver's console log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// `GET /session/{id}/element/{element}/computedlabel` (WebDriver, accessibility).
#[derive(Debug)]
struct ComputedLabel(String);

impl WebDriverCompatibleCommand for ComputedLabel {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/element/{}/computedlabel",
            session_id.unwrap_or_default(),
            self.0
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (reqwest::Method, Option<String>) {
        (reqwest::Method::GET, None)
    }
}
