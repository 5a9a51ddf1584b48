//! The CAS service registry: which applications may ask for tickets, what each
//! is told about the student, whether it may proxy, and where its single logout
//! goes. A service is named by an exact URL or by an anchored pattern whose host
//! is written out, so `https://ent.univ.fr/…` can never match
//! `https://ent.univ.fr.evil.example/`. As for OIDC redirect URIs, services are
//! https, plain http only on the loopback (development, a proxy on the host).

use std::fmt;
use std::str::FromStr;

use regex::{Regex, RegexBuilder};

use super::protocol::ServiceUrl;
use super::responses::{AttributeName, AttributeNameError};

/// A compiled pattern may take this much memory: an admin's pattern cannot
/// make matching slow or large.
const PATTERN_SIZE_LIMIT: usize = 1 << 16;

/// Why a registration was refused; said to the admin as is.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("`{0}` is not a service name: 1 to 64 letters, digits, '.', '-' or '_'")]
    Name(String),
    #[error(
        "`{0}` is not a service URL: an absolute https URL (http only on localhost), no fragment"
    )]
    Url(String),
    #[error(
        "`{0}` is not a service pattern: it starts with https:// (http:// only for localhost), \
         then the host written out (dots as \\.) and a /"
    )]
    PatternShape(String),
    #[error("`{0}` is not a regular expression Guichet takes: {1}")]
    Pattern(String, String),
    #[error("`{0}` is not a single-logout target: `service` or an https URL")]
    Logout(String),
    #[error("`{0}`: {1}")]
    Attribute(String, AttributeNameError),
    #[error("`{0}` is not a claim of the claim mapping")]
    UnknownAttribute(String),
}

/// Whether an http(s) URL may receive tickets: https, or http on the loopback.
fn allowed_origin(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]")),
        _ => false,
    }
}

/// How a registered service is matched against a `service` parameter (always
/// its normalised form).
#[derive(Clone)]
pub enum ServiceMatch {
    /// This URL exactly, query included.
    Exact(ServiceUrl),
    /// The whole normalised URL matches (anchored at both ends).
    Pattern { source: String, regex: Regex },
}

impl ServiceMatch {
    pub fn exact(raw: &str) -> Result<ServiceMatch, ServiceError> {
        let url = ServiceUrl::parse(raw).map_err(|_| ServiceError::Url(raw.to_owned()))?;
        if !allowed_origin(url.as_url()) {
            return Err(ServiceError::Url(raw.to_owned()));
        }
        Ok(ServiceMatch::Exact(url))
    }

    /// A pattern: `https://`, the host written out (letters, digits, `-`, `\.`,
    /// a port), then `/` and any regular expression.
    pub fn pattern(source: &str) -> Result<ServiceMatch, ServiceError> {
        let shape = || ServiceError::PatternShape(source.to_owned());
        let rest = ["https://", "http://localhost", "http://127\\.0\\.0\\.1"]
            .iter()
            .find_map(|prefix| source.strip_prefix(prefix).map(|rest| (*prefix, rest)));
        let Some((prefix, rest)) = rest else {
            return Err(shape());
        };
        let (host, path) = rest.split_once('/').ok_or_else(shape)?;
        if !literal_host(host, prefix == "https://") {
            return Err(shape());
        }
        // The path is a regular expression of its own, in a group of its own: an
        // alternation in it (`/a|.*`) stays in the path, and an unbalanced one
        // (`/a)|(.*`) is refused before it could close the group early.
        let invalid = |e: regex::Error| ServiceError::Pattern(source.to_owned(), e.to_string());
        RegexBuilder::new(path)
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(invalid)?;
        let regex = RegexBuilder::new(&format!("^{prefix}{host}/(?:{path})$"))
            .size_limit(PATTERN_SIZE_LIMIT)
            .build()
            .map_err(invalid)?;
        Ok(ServiceMatch::Pattern {
            source: source.to_owned(),
            regex,
        })
    }

    /// Whether `service` is this registration's.
    pub fn matches(&self, service: &ServiceUrl) -> bool {
        if !allowed_origin(service.as_url()) {
            return false;
        }
        match self {
            ServiceMatch::Exact(url) => url == service,
            ServiceMatch::Pattern { regex, .. } => regex.is_match(service.as_str()),
        }
    }

    /// `exact` or `pattern`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            ServiceMatch::Exact(_) => "exact",
            ServiceMatch::Pattern { .. } => "pattern",
        }
    }

    /// The URL or the pattern's source, as stored.
    pub fn as_str(&self) -> &str {
        match self {
            ServiceMatch::Exact(url) => url.as_str(),
            ServiceMatch::Pattern { source, .. } => source,
        }
    }

    /// Reads a stored registration back.
    pub fn stored(kind: &str, value: &str) -> Result<ServiceMatch, ServiceError> {
        match kind {
            "exact" => ServiceMatch::exact(value),
            _ => ServiceMatch::pattern(value),
        }
    }
}

impl fmt::Debug for ServiceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.as_str())
    }
}

/// A host written out: labels of letters, digits and `-` joined by `\.`, then
/// an optional `:port`. After the scheme prefix for https; for the loopback
/// prefixes, only an optional `:port` may follow.
fn literal_host(host: &str, https: bool) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((name, port)) => (name, Some(port)),
        None => (host, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    // A service URL is normalised before it is matched (lowercase host, the
    // default port dropped): a pattern with either could never match.
    let default_port = if https { "443" } else { "80" };
    if port == Some(default_port) {
        return false;
    }
    if !https {
        return name.is_empty();
    }
    !name.is_empty()
        && name.split("\\.").all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

/// Where a service's single logout is posted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SingleLogout {
    /// To the URL its ticket was issued for (the Java client, mod_auth_cas:
    /// any protected URL takes the message).
    ToService,
    /// To this URL.
    To(ServiceUrl),
}

impl FromStr for SingleLogout {
    type Err = ServiceError;

    fn from_str(raw: &str) -> Result<SingleLogout, ServiceError> {
        if raw == "service" {
            return Ok(SingleLogout::ToService);
        }
        match ServiceMatch::exact(raw) {
            Ok(ServiceMatch::Exact(url)) => Ok(SingleLogout::To(url)),
            _ => Err(ServiceError::Logout(raw.to_owned())),
        }
    }
}

impl SingleLogout {
    pub fn as_str(&self) -> &str {
        match self {
            SingleLogout::ToService => "service",
            SingleLogout::To(url) => url.as_str(),
        }
    }

    /// Where the message for a ticket issued to `service` goes.
    pub fn target<'a>(&'a self, service: &'a ServiceUrl) -> &'a ServiceUrl {
        match self {
            SingleLogout::ToService => service,
            SingleLogout::To(url) => url,
        }
    }
}

/// A valid service name: what admins and the audit log call it.
fn checked_name(raw: &str) -> Result<String, ServiceError> {
    let ok = (1..=64).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    ok.then(|| raw.to_owned())
        .ok_or_else(|| ServiceError::Name(raw.to_owned()))
}

/// A registered service.
#[derive(Debug, Clone)]
pub struct CasService {
    pub name: String,
    /// The name students see.
    pub display_name: String,
    pub matching: ServiceMatch,
    /// The claims (of the OIDC claim mapping) released as CAS attributes.
    pub attributes: Vec<AttributeName>,
    /// The pattern a `pgtUrl` must match; `None`: no proxying.
    pub proxy_callbacks: Option<ServiceMatch>,
    pub single_logout: Option<SingleLogout>,
    pub created_at: i64,
}

/// What an admin registers, as typed.
#[derive(Debug, Clone, Default)]
pub struct NewService {
    pub name: String,
    pub display_name: String,
    /// An exact URL; or `pattern`.
    pub url: Option<String>,
    pub pattern: Option<String>,
    pub attributes: Vec<String>,
    pub proxy_callbacks: Option<String>,
    pub single_logout: Option<String>,
}

impl NewService {
    /// The registration checked; `claims` are the names the claim mapping knows.
    pub fn checked(self, claims: &[&str], now: i64) -> Result<CasService, ServiceError> {
        let matching = match (self.url, self.pattern) {
            (Some(url), None) => ServiceMatch::exact(&url)?,
            (None, Some(pattern)) => ServiceMatch::pattern(&pattern)?,
            (url, pattern) => {
                let given = url.or(pattern).unwrap_or_default();
                return Err(ServiceError::Url(given));
            }
        };
        let attributes = self
            .attributes
            .iter()
            .map(|raw| {
                let name = AttributeName::parse(raw)
                    .map_err(|e| ServiceError::Attribute(raw.clone(), e))?;
                match claims.contains(&raw.as_str()) {
                    true => Ok(name),
                    false => Err(ServiceError::UnknownAttribute(raw.clone())),
                }
            })
            .collect::<Result<_, _>>()?;
        Ok(CasService {
            name: checked_name(&self.name)?,
            display_name: self.display_name,
            matching,
            attributes,
            proxy_callbacks: self
                .proxy_callbacks
                .as_deref()
                .map(ServiceMatch::pattern)
                .transpose()?,
            single_logout: self.single_logout.as_deref().map(str::parse).transpose()?,
            created_at: now,
        })
    }
}

/// The registration `service` belongs to: exact URLs first, then patterns in
/// the order of their names.
pub fn find<'a>(services: &'a [CasService], service: &ServiceUrl) -> Option<&'a CasService> {
    let exact = services
        .iter()
        .filter(|s| matches!(s.matching, ServiceMatch::Exact(_)));
    let patterns = services
        .iter()
        .filter(|s| matches!(s.matching, ServiceMatch::Pattern { .. }));
    exact.chain(patterns).find(|s| s.matching.matches(service))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_pattern_never_matches_another_host(
            path in prop_oneof![".{0,40}", "[a-z/.*|()?+\\\\-]{0,30}"],
            host in "[a-z]{1,8}",
            other in "[a-z]{1,8}",
        ) {
            let source = format!("https://{host}\\.fr/{path}");
            if let (Ok(pattern), true) = (ServiceMatch::pattern(&source), other != host) {
                for url in [format!("https://{other}.fr/x"), format!("https://{other}.fr/{path}"), format!("https://{host}.fr.{other}.fr/x")] {
                    if let Ok(url) = ServiceUrl::parse(&url) {
                        prop_assert!(!pattern.matches(&url), "{} matched {}", source, url.as_str());
                    }
                }
            }
        }

        #[test]
        fn any_registration_text_is_taken_or_refused_without_panic(raw in ".{0,120}") {
            let _ = ServiceMatch::pattern(&raw);
            let _ = ServiceMatch::exact(&raw);
            let _ = raw.parse::<SingleLogout>();
        }
    }

    fn service(raw: &str) -> ServiceUrl {
        ServiceUrl::parse(raw).unwrap()
    }

    #[test]
    fn an_exact_url_matches_itself_normalised_and_nothing_that_shares_its_prefix() {
        let ent = ServiceMatch::exact("https://ENT.univ.fr:443/uPortal/Login").unwrap();
        assert!(ent.matches(&service("https://ent.univ.fr/uPortal/Login")));
        for other in [
            "https://ent.univ.fr/uPortal/Login/",
            "https://ent.univ.fr/uPortal/LoginX",
            "https://ent.univ.fr/uPortal/Login?x=1",
            "https://ent.univ.fr.evil.example/uPortal/Login",
            "http://ent.univ.fr/uPortal/Login",
        ] {
            assert!(!ent.matches(&service(other)), "{other}");
        }
    }

    #[test]
    fn a_pattern_is_anchored_and_its_host_written_out() {
        let moodle = ServiceMatch::pattern(r"https://moodle\.univ\.fr/.*").unwrap();
        assert!(moodle.matches(&service("https://moodle.univ.fr/login/index.php?x=1")));
        for other in [
            "https://moodle.univ.fr.evil.example/",
            "https://evil.example/https://moodle.univ.fr/",
            "https://moodleXuniv.fr/",
            "http://moodle.univ.fr/",
        ] {
            assert!(!moodle.matches(&service(other)), "{other}");
        }
        for loose in [
            r"https://.*",
            r"https://moodle.univ.fr/.*",
            r"https://moodle\.univ\.fr.*",
            r"https://(moodle|evil)\.fr/",
            r"http://moodle\.univ\.fr/.*",
            r"ftp://moodle\.univ\.fr/",
            r"https://:443/",
            r"http://localhost.evil\.example/",
            r"https://moodle\.univ\.fr)|(.*",
            r"https://moodle\.univ\.fr/a)|(.*",
            r"https://Moodle\.univ\.fr/.*",
            r"https://moodle\.univ\.fr:443/.*",
        ] {
            assert!(ServiceMatch::pattern(loose).is_err(), "{loose}");
        }
        let alternation = ServiceMatch::pattern(r"https://moodle\.univ\.fr/a|.*").unwrap();
        assert!(alternation.matches(&service("https://moodle.univ.fr/anything")));
        assert!(!alternation.matches(&service("https://evil.example/")));
        assert!(ServiceMatch::pattern(r"http://localhost:8080/.*").is_ok());
        assert!(ServiceMatch::pattern(r"http://127\.0\.0\.1:8080/app/.*").is_ok());
    }

    #[test]
    fn a_pattern_holds_against_the_ways_a_url_can_be_written() {
        let ent = ServiceMatch::pattern(r"https://ent\.univ\.fr/app/.*").unwrap();
        for same in [
            "https://ENT.univ.fr/app/x",
            "https://ent.univ.fr:443/app/x?a=b",
        ] {
            assert!(ent.matches(&service(same)), "{same}");
        }
        for other in [
            "https://ent.univ.fr:8443/app/x",
            "https://ent.univ.fr./app/x",
            "https://xn--nt-bma.univ.fr/app/x",
            "https://\u{0435}nt.univ.fr/app/x",
            "https://ent.univ.fr%2F.evil.example/app/x",
            "https://evil.example/app/x?https://ent.univ.fr/app/",
        ] {
            let parsed = ServiceUrl::parse(other);
            assert!(parsed.is_err() || !ent.matches(&parsed.unwrap()), "{other}");
        }
        // Credentials in a service URL are refused before any matching.
        assert!(ServiceUrl::parse("https://ent.univ.fr@evil.example/app/x").is_err());
        assert!(ServiceUrl::parse("https://user@ent.univ.fr/app/x").is_err());
    }

    #[test]
    fn http_is_taken_only_on_the_loopback() {
        assert!(ServiceMatch::exact("http://127.0.0.1:8080/").is_ok());
        assert!(ServiceMatch::exact("http://ent.univ.fr/").is_err());
        assert!(ServiceMatch::exact("https://ent.univ.fr/#top").is_err());
        assert!("http://ent.univ.fr/logout".parse::<SingleLogout>().is_err());
        assert_eq!(
            "service".parse::<SingleLogout>().unwrap(),
            SingleLogout::ToService
        );
    }

    #[test]
    fn exact_registrations_win_over_patterns() {
        let mut wide = NewService {
            name: "a-wide".into(),
            display_name: "Tout".into(),
            pattern: Some(r"https://ent\.univ\.fr/.*".into()),
            ..NewService::default()
        }
        .checked(&[], 0)
        .unwrap();
        wide.attributes.clear();
        let exact = NewService {
            name: "z-exact".into(),
            display_name: "ENT".into(),
            url: Some("https://ent.univ.fr/uPortal/Login".into()),
            ..NewService::default()
        }
        .checked(&[], 0)
        .unwrap();
        let all = [wide, exact];
        let found = find(&all, &service("https://ent.univ.fr/uPortal/Login")).unwrap();
        assert_eq!(found.name, "z-exact");
        let found = find(&all, &service("https://ent.univ.fr/other")).unwrap();
        assert_eq!(found.name, "a-wide");
        assert!(find(&all, &service("https://ent2.univ.fr/")).is_none());
    }

    #[test]
    fn released_attributes_are_claims_of_the_mapping() {
        let new = |attributes: &[&str]| NewService {
            name: "ent".into(),
            display_name: "ENT".into(),
            url: Some("https://ent.univ.fr/".into()),
            attributes: attributes.iter().map(|a| (*a).to_owned()).collect(),
            ..NewService::default()
        };
        assert!(
            new(&["email", "name"])
                .checked(&["email", "name"], 0)
                .is_ok()
        );
        assert!(matches!(
            new(&["uid"]).checked(&["email"], 0),
            Err(ServiceError::UnknownAttribute(_))
        ));
        assert!(matches!(
            new(&["isFromNewLogin"]).checked(&["isFromNewLogin"], 0),
            Err(ServiceError::Attribute(..))
        ));
    }
}
