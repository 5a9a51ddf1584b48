//! CAS helpers shared by the CAS tests: registering services, the browser's
//! part of a login, and reading the server's answers.

use guichet::cas::services::NewService;

use super::TestApp;
use super::oidc::{location, login_next, query_of, signs_in_and_returns};

/// The ENT's service URL, as uPortal sends it.
pub const ENT: &str = "https://ent.univ-demo.fr/uPortal/Login";

/// A service matched by its exact URL, releasing `attributes`; a test sets the
/// other fields with `..exact(…)`.
pub fn exact(name: &str, url: &str, attributes: &[&str]) -> NewService {
    NewService {
        name: name.to_owned(),
        display_name: name.to_owned(),
        url: Some(url.to_owned()),
        attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
        ..NewService::default()
    }
}

/// Registers `service` as `guichet cas-services add` does.
pub async fn register(app: &TestApp, service: NewService) {
    let claims = app.state.settings.oidc.claims.claim_names();
    let service = service
        .checked(&claims, guichet::store::unix_now())
        .unwrap();
    assert!(app.state.store.add_cas_service(&service).await.unwrap());
}

/// `/cas/login?service=…` with extra parameters.
pub fn login_url(service: &str, extra: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("service", service);
    for (k, v) in extra {
        query.append_pair(k, v);
    }
    format!("/cas/login?{}", query.finish())
}

/// The ticket in the address the browser is sent to, which must be `service`'s.
pub fn ticket_in(to_service: &str, service: &str) -> String {
    assert!(to_service.starts_with(service), "{to_service}");
    let pairs = query_of(to_service);
    pairs
        .iter()
        .find(|(k, _)| k == "ticket")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no ticket in {to_service}"))
}

/// The student opens the service with no session: the login page, then back
/// through `/cas/login` to the service with a ticket.
pub async fn signs_in_for_ticket(app: &TestApp, service: &str, extra: &[(&str, &str)]) -> String {
    let first = app.get(&login_url(service, extra)).await;
    assert_eq!(
        first.status(),
        reqwest::StatusCode::SEE_OTHER,
        "to the login page"
    );
    let to_service = signs_in_and_returns(app, &login_next(&location(&first))).await;
    ticket_in(&to_service, service)
}

/// A ticket from the live session, without the login page.
pub async fn sso_ticket(app: &TestApp, service: &str) -> String {
    let response = app.get(&login_url(service, &[])).await;
    assert_eq!(
        response.status(),
        reqwest::StatusCode::FOUND,
        "straight to the service"
    );
    ticket_in(&location(&response), service)
}

/// A validation endpoint's answer (`/cas/p3/serviceValidate` …) to `pairs`.
pub async fn validation(app: &TestApp, path: &str, pairs: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        query.append_pair(k, v);
    }
    let response = app.get(&format!("/cas{path}?{}", query.finish())).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.text().await.unwrap()
}

/// The text of the first `<cas:{tag}>` element of an answer.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<cas:{tag}");
    let start = xml.find(&open)?;
    let body = &xml[start + open.len()..];
    let body = &body[body.find('>')? + 1..];
    let end = body.find(&format!("</cas:{tag}>"))?;
    Some(body[..end].trim().to_owned())
}

/// The failure code of an answer, if it is a failure.
pub fn failure_code(xml: &str) -> Option<String> {
    let start = xml.find("code=\"")? + "code=\"".len();
    let end = xml[start..].find('"')?;
    Some(xml[start..start + end].to_owned())
}

/// A proxy callback (`pgtUrl`): a real HTTPS server process on 127.0.0.1, with
/// a certificate from a CA of its own; stopped when dropped.
pub struct ProxyCallback {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl ProxyCallback {
    pub fn start() -> ProxyCallback {
        let dir = tempfile::Builder::new()
            .prefix("guichet-pgt-")
            .tempdir()
            .unwrap();
        super::write_certificates(dir.path());
        let port = super::free_port();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support/https_callback.py");
        let child = std::process::Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path().join("cert.pem"))
            .arg(dir.path().join("key.pem"))
            .arg(dir.path().join("calls.log"))
            .spawn()
            .unwrap();
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 20,
                "the proxy callback did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        ProxyCallback { port, dir, child }
    }

    /// The settings that make Guichet trust this server's CA.
    pub fn settings(&self) -> String {
        format!(
            "\n[cas]\nproxy_callback_ca_file = \"{}\"\n",
            self.dir.path().join("ca.pem").display()
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.port)
    }

    /// The query pairs of every call received, in order.
    pub fn calls(&self) -> Vec<Vec<(String, String)>> {
        let log = std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default();
        log.lines()
            .map(|line| {
                let query = line.split_once('?').map_or("", |(_, q)| q);
                url::form_urlencoded::parse(query.as_bytes())
                    .into_owned()
                    .collect()
            })
            .collect()
    }
}

impl Drop for ProxyCallback {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Apache with Debian's mod_auth_cas protecting `/secret/` (a page that shows
/// `REMOTE_USER`), validating at Guichet's `/cas/p3/serviceValidate` and taking
/// single logout (`CASSSOEnabled`): a real CAS client, stopped when dropped.
pub struct Apache {
    pub port: u16,
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Apache {
    pub fn start(guichet: &str) -> Apache {
        let dir = tempfile::Builder::new()
            .prefix("guichet-apache-")
            .tempdir()
            .unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("htdocs/secret")).unwrap();
        std::fs::create_dir_all(root.join("cas-cookies")).unwrap();
        std::fs::write(
            root.join("htdocs/secret/page.shtml"),
            "<p>Signed in as <!--#echo var=\"REMOTE_USER\" --></p>\n",
        )
        .unwrap();
        let port = super::free_port();
        let modules = "/usr/lib/apache2/modules";
        let config = format!(
            "ServerRoot \"{root}\"\nServerName 127.0.0.1:{port}\nListen 127.0.0.1:{port}\n\
             PidFile \"{root}/httpd.pid\"\nErrorLog \"{root}/error.log\"\nLogLevel warn auth_cas:debug\n\
             User www-data\nGroup www-data\n\
             LoadModule mpm_event_module {modules}/mod_mpm_event.so\n\
             LoadModule authn_core_module {modules}/mod_authn_core.so\n\
             LoadModule authz_core_module {modules}/mod_authz_core.so\n\
             LoadModule authz_user_module {modules}/mod_authz_user.so\n\
             LoadModule mime_module {modules}/mod_mime.so\n\
             LoadModule include_module {modules}/mod_include.so\n\
             LoadModule auth_cas_module {modules}/mod_auth_cas.so\n\
             TypesConfig /dev/null\nDocumentRoot \"{root}/htdocs\"\n\
             AddOutputFilter INCLUDES .shtml\nAddType text/html .shtml\n\
             <Directory \"{root}/htdocs\">\n  Options +Includes\n  Require all granted\n</Directory>\n\
             CASVersion 2\nCASLoginURL {guichet}/cas/login\nCASValidateURL {guichet}/cas/p3/serviceValidate\n\
             CASCookiePath \"{root}/cas-cookies/\"\nCASSSOEnabled On\nCASDebug On\n\
             <Location /secret>\n  AuthType CAS\n  Require valid-user\n</Location>\n",
            root = root.display(),
        );
        std::fs::write(root.join("httpd.conf"), config).unwrap();
        // The children run as www-data: they read the pages and keep the cookies.
        std::process::Command::new("chown")
            .args(["-R", "www-data:www-data"])
            .arg(root)
            .status()
            .unwrap();
        let child = std::process::Command::new("/usr/sbin/apache2")
            .arg("-f")
            .arg(root.join("httpd.conf"))
            .arg("-DFOREGROUND")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("apache2 with mod_auth_cas (scripts/install-deps installs them)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed().as_secs() < 20,
                "Apache did not start: {}",
                Self::log_of(root)
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Apache { port, dir, child }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Apache's error log (mod_auth_cas writes its debug lines there).
    pub fn log(&self) -> String {
        Self::log_of(self.dir.path())
    }

    fn log_of(root: &std::path::Path) -> String {
        std::fs::read_to_string(root.join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache {
    /// SIGTERM: the parent stops its www-data children before it exits.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
