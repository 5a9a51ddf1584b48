//! A private slapd built from `directory-schema/`, for `guichet dev` and the tests: the
//! same schema, cn=config snippets and sample tree that admins apply.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo tree's suffix and administrator, as in `directory-schema/sample/tree.ldif`.
pub const SUFFIX: &str = "dc=univ-demo,dc=fr";
pub const ADMIN_DN: &str = "cn=admin,dc=univ-demo,dc=fr";
pub const PEOPLE_DN: &str = "ou=people,dc=univ-demo,dc=fr";
pub const SERVICE_DN: &str = "cn=guichet,ou=services,dc=univ-demo,dc=fr";
pub const SERVICE_PASSWORD: &str = "guichet-dev-secret";
pub const DECOY_DN: &str = "cn=guichet-decoy,ou=services,dc=univ-demo,dc=fr";

const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";
const START_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SlapdError {
    #[error("slapd is not installed; install it with: sudo apt-get install -y slapd ldap-utils")]
    NotInstalled,
    #[error("{step} failed: {detail}")]
    Step { step: String, detail: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

fn step_error(step: &str, detail: impl Into<String>) -> SlapdError {
    SlapdError::Step {
        step: step.to_owned(),
        detail: detail.into(),
    }
}

/// A running slapd in its own folder. Dropping it stops the process.
#[derive(Debug)]
pub struct PrivateSlapd {
    root: PathBuf,
    schema: PathBuf,
    child: Option<Child>,
    tcp_port: Option<u16>,
    admin_password: String,
}

impl PrivateSlapd {
    /// Where `directory-schema/` is: `GUICHET_SCHEMA_DIR`, else `./directory-schema`,
    /// else the copy in the source tree this binary was built from.
    pub fn schema_dir() -> PathBuf {
        if let Some(dir) = std::env::var_os("GUICHET_SCHEMA_DIR") {
            return PathBuf::from(dir);
        }
        let local = PathBuf::from("directory-schema");
        if local.is_dir() {
            return local;
        }
        Path::new(env!("CARGO_MANIFEST_DIR")).join("directory-schema")
    }

    /// Whether `root` already holds a directory made by `create`.
    pub fn exists(root: &Path) -> bool {
        root.join("config").join("cn=config.ldif").is_file()
    }

    /// Builds a new directory in `root` (which must be empty or absent), loads the
    /// sample tree, starts slapd and applies the cn=config snippets.
    pub fn create(
        root: &Path,
        schema: &Path,
        admin_password: &str,
        tcp_port: Option<u16>,
    ) -> Result<PrivateSlapd, SlapdError> {
        ensure_installed()?;
        let root = std::path::absolute(root)?;
        let schema = std::path::absolute(schema)?;
        for sub in ["config", "db", "run"] {
            std::fs::create_dir_all(root.join(sub))?;
        }
        let init = render_init(&root, &schema, admin_password)?;
        let init_path = root.join("init.ldif");
        std::fs::write(&init_path, init)?;
        run(
            "slapadd of cn=config",
            Command::new(SLAPADD)
                .arg("-n0")
                .arg("-F")
                .arg(root.join("config"))
                .arg("-l")
                .arg(&init_path),
        )?;
        run(
            "slapadd of the sample tree",
            Command::new(SLAPADD)
                .args(["-q", "-b", SUFFIX, "-F"])
                .arg(root.join("config"))
                .arg("-l")
                .arg(schema.join("sample").join("tree.ldif")),
        )?;
        let mut slapd = PrivateSlapd {
            root,
            schema,
            child: None,
            tcp_port,
            admin_password: admin_password.to_owned(),
        };
        slapd.start()?;
        slapd.apply_config_snippets()?;
        Ok(slapd)
    }

    /// Starts slapd again on a directory made earlier by `create`.
    pub fn reopen(
        root: &Path,
        admin_password: &str,
        tcp_port: Option<u16>,
    ) -> Result<PrivateSlapd, SlapdError> {
        ensure_installed()?;
        let mut slapd = PrivateSlapd {
            root: std::path::absolute(root)?,
            schema: Self::schema_dir(),
            child: None,
            tcp_port,
            admin_password: admin_password.to_owned(),
        };
        slapd.start()?;
        Ok(slapd)
    }

    /// Starts the process and waits until it accepts connections.
    pub fn start(&mut self) -> Result<(), SlapdError> {
        if self.child.is_some() {
            return Ok(());
        }
        let socket = self.socket_path();
        let _ = std::fs::remove_file(&socket);
        let mut urls = self.ldapi_url();
        if let Some(port) = self.tcp_port {
            urls.push_str(&format!(" ldap://127.0.0.1:{port}/"));
        }
        // `-d 0` keeps slapd in the foreground, so it is our child and dies with us.
        let mut child = Command::new(SLAPD)
            .args(["-d", "0", "-h", &urls, "-F"])
            .arg(self.root.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let started = Instant::now();
        loop {
            if UnixStream::connect(&socket).is_ok() {
                break;
            }
            if let Some(status) = child.try_wait()? {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(step_error(
                    "starting slapd",
                    format!("{status}: {}", last_lines(&stderr)),
                ));
            }
            if started.elapsed() > START_TIMEOUT {
                let _ = child.kill();
                let _ = child.wait();
                return Err(step_error("starting slapd", "no answer within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        // slapd logs nothing at `-d 0` once started; drop the pipe so it never blocks.
        drop(child.stderr.take());
        self.child = Some(child);
        Ok(())
    }

    /// Kills slapd, as an outage would; `start` brings it back with the same data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn socket_path(&self) -> PathBuf {
        self.root.join("run").join("ldapi")
    }

    /// `ldapi://%2F…%2Fldapi`, the URL Guichet and the LDAP tools use.
    pub fn ldapi_url(&self) -> String {
        let path = self.socket_path().to_string_lossy().into_owned();
        let encoded: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
        format!("ldapi://{encoded}")
    }

    pub fn tcp_port(&self) -> Option<u16> {
        self.tcp_port
    }

    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    fn apply_config_snippets(&self) -> Result<(), SlapdError> {
        let mut snippets: Vec<PathBuf> = std::fs::read_dir(self.schema.join("config"))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|path| path.extension().is_some_and(|ext| ext == "ldif"))
            .collect();
        snippets.sort();
        for snippet in snippets {
            run(
                &format!("ldapmodify of {}", snippet.display()),
                Command::new("ldapmodify")
                    .args(["-Y", "EXTERNAL", "-Q", "-H", &self.ldapi_url(), "-f"])
                    .arg(&snippet),
            )?;
        }
        Ok(())
    }
}

impl Drop for PrivateSlapd {
    fn drop(&mut self) {
        self.stop();
    }
}

fn ensure_installed() -> Result<(), SlapdError> {
    let found = Path::new(SLAPD).is_file()
        && Path::new(SLAPADD).is_file()
        && Command::new("ldapmodify")
            .arg("-VV")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
    if found {
        Ok(())
    } else {
        Err(SlapdError::NotInstalled)
    }
}

fn render_init(root: &Path, schema: &Path, admin_password: &str) -> Result<String, SlapdError> {
    let template = std::fs::read_to_string(schema.join("dev").join("slapd-init.ldif.in"))?;
    let uid = process_id("-u")?;
    let gid = process_id("-g")?;
    Ok(template
        .replace("@DB_DIR@", &root.join("db").to_string_lossy())
        .replace("@RUN_DIR@", &root.join("run").to_string_lossy())
        .replace("@MODULE_DIR@", "/usr/lib/ldap")
        .replace("@SYSTEM_SCHEMA_DIR@", "/etc/ldap/schema")
        .replace("@SCHEMA_DIR@", &schema.join("schema").to_string_lossy())
        .replace("@ADMIN_PASSWORD@", admin_password)
        .replace("@PEERCRED_UID@", &uid)
        .replace("@PEERCRED_GID@", &gid))
}

/// The numeric uid or gid of this process (from `id`: std has no safe call for it).
fn process_id(flag: &str) -> Result<String, SlapdError> {
    let output = Command::new("id").arg(flag).output()?;
    let id = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && id.chars().all(|c| c.is_ascii_digit()) && !id.is_empty() {
        Ok(id)
    } else {
        Err(step_error("reading the process uid", "`id` gave no number"))
    }
}

fn run(step: &str, command: &mut Command) -> Result<(), SlapdError> {
    let output = command.stdin(Stdio::null()).output()?;
    if output.status.success() {
        Ok(())
    } else {
        let mut text = String::from_utf8_lossy(&output.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stdout));
        Err(step_error(step, last_lines(&text)))
    }
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}
