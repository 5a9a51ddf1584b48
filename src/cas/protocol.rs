//! The requests of the CAS endpoints (CAS 3.0.3 §2), parsed from their
//! parameters without HTTP or storage. Every parser takes the decoded query (or
//! form) pairs as sent, in order, repeats included: `&[(String, String)]`, as
//! `oidc::protocol` does. Parameter names are case-sensitive (§2). A parameter
//! given twice is refused (which value counts would be a guess); an empty or
//! blank one counts as absent.
//!
//! What is decided here: the shape of every parameter, and which tickets an
//! endpoint takes. What is not: whether a ticket exists, matches its service, or
//! came from a new login; whether a service is registered. That is the
//! provider's, with the store.

use url::Url;

use super::CasError;
use super::tickets::{PgtIou, PresentedTicket, ProxyGrantingTicket, ServiceTicket, TicketKind};

/// The longest service or callback URL taken, as sent and once normalised: a
/// bound for the store and the logs, far above any real application's URL.
const MAX_URL_CHARS: usize = 2048;

/// The one value of `name` (OIDC's reading of parameters); blank is absent.
fn single<'a>(params: &'a [(String, String)], name: &str) -> Result<Option<&'a str>, CasError> {
    let value =
        crate::oidc::protocol::single(params, name).map_err(|_| CasError::repeated_parameter())?;
    Ok(value.filter(|v| !v.trim().is_empty()))
}

/// A flag such as `renew` or `gateway`: set by any value but `false` (any case).
/// The spec only says "if this parameter is set" and recommends `true`; Apereo
/// counts any non-empty value. `false` is read as the client surely means it.
fn flag(params: &[(String, String)], name: &str) -> Result<bool, CasError> {
    Ok(single(params, name)?.is_some_and(|v| !v.trim().eq_ignore_ascii_case("false")))
}

/// An absolute URL with one of `schemes`, a host, no user information (no
/// credentials in a service identifier) and no fragment (never sent to a server,
/// so never part of a service), bounded in length.
fn plain_url(raw: &str, schemes: &[&str]) -> Option<Url> {
    if raw.len() > MAX_URL_CHARS {
        return None;
    }
    let url = Url::parse(raw).ok()?;
    let plain = schemes.contains(&url.scheme())
        && url.has_host()
        && url.username().is_empty()
        && url.password().is_none()
        && url.fragment().is_none()
        && url.as_str().len() <= MAX_URL_CHARS;
    plain.then_some(url)
}

/// A service identifier (`service`, `targetService`): an absolute http or https
/// URL. Two are equal when their normalised forms are (WHATWG URL: lowercase
/// scheme and host, default port dropped, empty path made `/`), so
/// `HTTP://Host:80/a` is `http://host/a`. Percent-escapes are kept as sent:
/// clients (mod_auth_cas, the Java client) send the same string at login and at
/// validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceUrl(Url);

impl ServiceUrl {
    /// Refuses anything else with INVALID_SERVICE: no ticket can have been
    /// issued to it.
    pub fn parse(raw: &str) -> Result<ServiceUrl, CasError> {
        plain_url(raw, &["http", "https"])
            .map(ServiceUrl)
            .ok_or(CasError::malformed_service())
    }

    /// The normalised form: what is stored with a ticket and compared.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    /// Where the browser goes after login (§2.2.4): the service with
    /// `ticket=ST-…` added to its query, whose existing parameters are kept as
    /// they are. The result holds a live ticket: never log it.
    pub fn with_ticket(&self, ticket: &ServiceTicket) -> Url {
        let mut url = self.0.clone();
        url.query_pairs_mut().append_pair("ticket", ticket.expose());
        url
    }
}

/// A proxy callback (`pgtUrl`, §2.5.4): an absolute https URL ("This URL MUST be
/// HTTPS"), with no user information and no fragment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyCallbackUrl(Url);

impl ProxyCallbackUrl {
    /// Refuses anything else with INVALID_PROXY_CALLBACK.
    pub fn parse(raw: &str) -> Result<ProxyCallbackUrl, CasError> {
        plain_url(raw, &["https"])
            .map(ProxyCallbackUrl)
            .ok_or(CasError::malformed_proxy_callback())
    }

    /// The URL as given (normalised): what goes in `cas:proxy` of later answers.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The callback Guichet calls (GET) to hand over a PGT (§2.5.4 step 2):
    /// `pgtIou` and `pgtId` added, the URL's own query kept. The result holds
    /// the PGT: never log it.
    pub fn with_tickets(&self, iou: &PgtIou, pgt: &ProxyGrantingTicket) -> Url {
        let mut url = self.0.clone();
        url.query_pairs_mut()
            .append_pair("pgtIou", iou.expose())
            .append_pair("pgtId", pgt.expose());
        url
    }
}

/// How an answer is written. `Text` is CAS 1.0's (`/validate` only); `Xml` and
/// `Json` are what `format` asks for (§2.5.1), XML by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Xml,
    Json,
}

impl Format {
    /// The `format` parameter: `XML` or `JSON`, any case (as Apereo reads it);
    /// absent is XML; anything else is INVALID_REQUEST (§2.5.1 "an error code
    /// MUST be returned").
    fn parse(params: &[(String, String)]) -> Result<Format, CasError> {
        match single(params, "format")? {
            None => Ok(Format::Xml),
            Some(v) if v.eq_ignore_ascii_case("XML") => Ok(Format::Xml),
            Some(v) if v.eq_ignore_ascii_case("JSON") => Ok(Format::Json),
            Some(_) => Err(CasError::unsupported_format()),
        }
    }

    /// The `Content-Type` of an answer in this format.
    pub fn media_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; charset=utf-8",
            Format::Xml => "application/xml; charset=utf-8",
            Format::Json => "application/json",
        }
    }
}

/// The ticket validation endpoints (§2.4–§2.6, §2.8, §2.9). All but `Validate`
/// release attributes, as Apereo 4+ does: uPortal validates at `/serviceValidate`
/// and reads `cas:attributes` there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/validate`, CAS 1.0: plain text, service tickets only.
    Validate,
    /// `/serviceValidate`, CAS 2.0: service tickets only.
    ServiceValidate,
    /// `/proxyValidate`, CAS 2.0: service and proxy tickets.
    ProxyValidate,
    /// `/p3/serviceValidate`, CAS 3.0: service tickets only.
    P3ServiceValidate,
    /// `/p3/proxyValidate`, CAS 3.0: service and proxy tickets.
    P3ProxyValidate,
}

impl Endpoint {
    pub const ALL: [Endpoint; 5] = [
        Endpoint::Validate,
        Endpoint::ServiceValidate,
        Endpoint::ProxyValidate,
        Endpoint::P3ServiceValidate,
        Endpoint::P3ProxyValidate,
    ];

    /// The path under the CAS prefix (`/cas`).
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::Validate => "/validate",
            Endpoint::ServiceValidate => "/serviceValidate",
            Endpoint::ProxyValidate => "/proxyValidate",
            Endpoint::P3ServiceValidate => "/p3/serviceValidate",
            Endpoint::P3ProxyValidate => "/p3/proxyValidate",
        }
    }

    pub fn accepts_proxy_tickets(self) -> bool {
        matches!(self, Endpoint::ProxyValidate | Endpoint::P3ProxyValidate)
    }

    /// CAS 1.0 knows neither `format` nor `pgtUrl`: at `/validate` both are
    /// ignored, and the answer is always text a 1.0 client can read.
    fn format(self, params: &[(String, String)]) -> Result<Format, CasError> {
        match self {
            Endpoint::Validate => Ok(Format::Text),
            _ => Format::parse(params),
        }
    }

    fn proxy_callback(
        self,
        params: &[(String, String)],
    ) -> Result<Option<ProxyCallbackUrl>, CasError> {
        match self {
            Endpoint::Validate => Ok(None),
            _ => single(params, "pgtUrl")?
                .map(ProxyCallbackUrl::parse)
                .transpose(),
        }
    }

    /// A PGT is never validated; a PT only where proxies are (§2.4.1, §2.5).
    fn admit(self, ticket: PresentedTicket) -> Result<PresentedTicket, CasError> {
        match ticket.kind() {
            TicketKind::ProxyGranting => Err(CasError::granting_ticket_presented()),
            TicketKind::Proxy if !self.accepts_proxy_tickets() => {
                Err(CasError::proxy_ticket_not_accepted())
            }
            TicketKind::Service | TicketKind::Proxy => Ok(ticket),
        }
    }
}

/// How `/login` answers with the ticket (`method`, §2.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMethod {
    /// A redirect to the service with `ticket` in its query (the default).
    Get,
    /// An auto-submitting form that posts `ticket` to the service.
    Post,
}

impl ResponseMethod {
    /// `GET` or `POST`, any case; absent is GET. `HEADER` is optional in the
    /// spec and not supported: refused like any other value.
    fn parse(raw: Option<&str>) -> Result<ResponseMethod, CasError> {
        match raw {
            None => Ok(ResponseMethod::Get),
            Some(v) if v.eq_ignore_ascii_case("GET") => Ok(ResponseMethod::Get),
            Some(v) if v.eq_ignore_ascii_case("POST") => Ok(ResponseMethod::Post),
            Some(_) => Err(CasError::unsupported_method()),
        }
    }
}

/// Whether `/login` may use the single sign-on session, for a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    /// Use the session if there is one, else ask for credentials.
    Sso,
    /// `renew`: always ask for credentials, session or not.
    Renew,
    /// `gateway`: never ask. With a session, a ticket as usual; without one,
    /// back to the service with no ticket (§2.1.1).
    Gateway,
}

impl Prompt {
    /// `renew` wins over `gateway` (§2.1.1: "RECOMMENDED ... ignore the gateway
    /// parameter if renew is set").
    fn of(renew: bool, gateway: bool) -> Prompt {
        match (renew, gateway) {
            (true, _) => Prompt::Renew,
            (false, true) => Prompt::Gateway,
            (false, false) => Prompt::Sso,
        }
    }
}

/// A request to `/login` as credential requestor (§2.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRequest {
    /// No service: sign in to Guichet itself, or say the browser is signed in
    /// already; `renew` asks for credentials even then. `gateway` without a
    /// service means nothing (§2.1.1 recommends a plain login) and `method`
    /// has no service to answer: both are dropped.
    Plain { renew: bool },
    /// Sign in to a service, which gets a service ticket.
    Service {
        service: ServiceUrl,
        prompt: Prompt,
        method: ResponseMethod,
    },
}

impl LoginRequest {
    /// A `service` that is not an http(s) URL is INVALID_SERVICE; a repeated
    /// parameter or an unknown `method` is INVALID_REQUEST.
    pub fn parse(params: &[(String, String)]) -> Result<LoginRequest, CasError> {
        let service = single(params, "service")?
            .map(ServiceUrl::parse)
            .transpose()?;
        let renew = flag(params, "renew")?;
        let gateway = flag(params, "gateway")?;
        let method = ResponseMethod::parse(single(params, "method")?)?;
        Ok(match service {
            None => LoginRequest::Plain { renew },
            Some(service) => LoginRequest::Service {
                service,
                prompt: Prompt::of(renew, gateway),
                method,
            },
        })
    }
}

/// A request refused before the provider looked at it, with what the answer
/// needs: the error, the format to write it in (XML when `format` itself was
/// the fault), and the ticket the attempt spends. A service or proxy ticket
/// is spent by any validation attempt, whatever its outcome (§3.1.1, §3.2.1):
/// the provider must invalidate each of `spent` before answering. A PGT is never spent
/// here, and `/proxy` never spends anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub error: CasError,
    pub format: Format,
    pub spent: Vec<PresentedTicket>,
}

/// A ticket validation (§2.4.1, §2.5.1, §2.6.1, §2.8, §2.9), well formed: its
/// ticket is of a kind the endpoint takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidateRequest {
    pub endpoint: Endpoint,
    /// A service ticket, or a proxy ticket at the proxy endpoints.
    pub ticket: PresentedTicket,
    pub service: ServiceUrl,
    /// The ticket must come from a new login (not from the SSO session).
    pub renew: bool,
    /// Where to send a PGT; always `None` at `/validate`.
    pub proxy_callback: Option<ProxyCallbackUrl>,
    /// `Text` at `/validate`, else XML or JSON.
    pub format: Format,
}

impl ValidateRequest {
    /// In order: a repeated parameter, a missing `service` or `ticket`, or an
    /// unsupported `format` is INVALID_REQUEST; a ticket of no known shape is
    /// INVALID_TICKET, a PGT too; a proxy ticket where none is taken is
    /// INVALID_TICKET_SPEC; a service that is no URL is INVALID_SERVICE; a
    /// `pgtUrl` that is not https is INVALID_PROXY_CALLBACK.
    pub fn parse(endpoint: Endpoint, params: &[(String, String)]) -> Result<Self, Refused> {
        Self::checked(endpoint, params).map_err(|error| Refused {
            error,
            format: endpoint.format(params).unwrap_or(Format::Xml),
            spent: one_time_tickets(params),
        })
    }

    fn checked(endpoint: Endpoint, params: &[(String, String)]) -> Result<Self, CasError> {
        let service = single(params, "service")?;
        let ticket = single(params, "ticket")?;
        let (Some(service), Some(ticket)) = (service, ticket) else {
            return Err(CasError::validation_parameters_missing());
        };
        let format = endpoint.format(params)?;
        let ticket = endpoint.admit(PresentedTicket::parse(ticket)?)?;
        Ok(ValidateRequest {
            endpoint,
            ticket,
            service: ServiceUrl::parse(service)?,
            renew: flag(params, "renew")?,
            proxy_callback: endpoint.proxy_callback(params)?,
            format,
        })
    }
}

/// The tickets a refused validation spends: every well-formed, one-time
/// `ticket` value, so repeating a ticket never saves it.
fn one_time_tickets(params: &[(String, String)]) -> Vec<PresentedTicket> {
    params
        .iter()
        .filter(|(name, _)| name == "ticket")
        .filter_map(|(_, raw)| PresentedTicket::parse(raw.trim()).ok())
        .filter(|ticket| ticket.kind().is_one_time())
        .collect()
}

/// A request for a proxy ticket (`/proxy`, §2.7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// A proxy-granting ticket (the only kind taken here).
    pub pgt: PresentedTicket,
    pub target_service: ServiceUrl,
    /// XML or JSON, as `format` asks (the spec shows both answers).
    pub format: Format,
}

impl ProxyRequest {
    /// A repeated or missing `pgt` or `targetService`, or an unsupported
    /// `format`, is INVALID_REQUEST; a `pgt` that is not a PGT is INVALID_TICKET;
    /// a target that is not an http(s) URL is UNAUTHORIZED_SERVICE (it cannot
    /// be a service one may proxy to; §2.7.3 has no INVALID_SERVICE).
    pub fn parse(params: &[(String, String)]) -> Result<Self, Refused> {
        Self::checked(params).map_err(|error| Refused {
            error,
            format: Format::parse(params).unwrap_or(Format::Xml),
            spent: Vec::new(),
        })
    }

    fn checked(params: &[(String, String)]) -> Result<Self, CasError> {
        let pgt = single(params, "pgt")?;
        let target = single(params, "targetService")?;
        let (Some(pgt), Some(target)) = (pgt, target) else {
            return Err(CasError::proxy_parameters_missing());
        };
        let format = Format::parse(params)?;
        let pgt = PresentedTicket::parse(pgt)?;
        if pgt.kind() != TicketKind::ProxyGranting {
            return Err(CasError::ticket_not_recognized());
        }
        let target_service =
            ServiceUrl::parse(target).map_err(|_| CasError::unauthorized_service())?;
        Ok(ProxyRequest {
            pgt,
            target_service,
            format,
        })
    }
}

/// A request to `/logout` (§2.3.1). Logging out never fails on a parameter: a
/// `service` that is repeated or not an http(s) URL is dropped, and the
/// "logged out" page is shown instead of a redirect. The CAS 2.0 `url`
/// parameter is ignored ("CAS Servers MUST ignore given url parameters").
/// Whether `service` may be redirected to (registered) is the provider's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequestParams {
    pub service: Option<ServiceUrl>,
}

impl LogoutRequestParams {
    pub fn parse(params: &[(String, String)]) -> LogoutRequestParams {
        let service = single(params, "service")
            .ok()
            .flatten()
            .and_then(|raw| ServiceUrl::parse(raw).ok());
        LogoutRequestParams { service }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::cas::CasCode;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn service(raw: &str) -> ServiceUrl {
        ServiceUrl::parse(raw).unwrap()
    }

    const APP: &str = "https://app.example.org/login";
    const ST: &str = "ST-1856339-aA5Yuvrxzpv8Tau1cYQ7";
    const PT: &str = "PT-1856392-b98xZrQN4p90ASrw96c8";
    const PGT: &str = "PGT-490649-W81Y9Sa2vTM7hda7xNTkezTbVge4CUsybAr";

    fn validate(endpoint: Endpoint, pairs: &[(&str, &str)]) -> Result<ValidateRequest, Refused> {
        ValidateRequest::parse(endpoint, &params(pairs))
    }

    fn refusal(endpoint: Endpoint, pairs: &[(&str, &str)]) -> Refused {
        validate(endpoint, pairs).unwrap_err()
    }

    // Service identifiers.

    #[test]
    fn a_service_is_compared_in_its_normalised_form() {
        assert_eq!(service("HTTP://Host:80/a"), service("http://host/a"));
        assert_eq!(service("https://host:443"), service("https://host/"));
        assert_eq!(service("http://host/a").as_str(), "http://host/a");
        assert_ne!(service("http://host/a"), service("https://host/a"));
        assert_ne!(service("http://host/a"), service("http://host/a?x=1"));
        assert_eq!(
            service("http://host:8080/a?b=c").as_url().port(),
            Some(8080)
        );
    }

    #[test]
    fn a_service_is_an_absolute_http_url_without_credentials_or_fragment() {
        let long = format!("https://host/{}", "a".repeat(MAX_URL_CHARS));
        for bad in [
            "",
            "/relative",
            "app.example.org",
            "ftp://host/",
            "imap://mail.example.org",
            "javascript:alert(1)",
            "data:text/html,x",
            "https://user:pw@host/",
            "https://user@host/",
            "https://host/#frag",
            "https://host/#",
            "http://",
            long.as_str(),
        ] {
            assert_eq!(
                ServiceUrl::parse(bad),
                Err(CasError::malformed_service()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn the_redirect_keeps_the_service_query_and_adds_the_ticket() {
        let st = ServiceTicket::generate();
        let with = |raw: &str| service(raw).with_ticket(&st).to_string();
        assert_eq!(
            with("https://app/x?a=1&b=%2F"),
            format!("https://app/x?a=1&b=%2F&ticket={}", st.expose())
        );
        assert_eq!(
            with("https://app/x"),
            format!("https://app/x?ticket={}", st.expose())
        );
    }

    #[test]
    fn a_proxy_callback_must_be_https_and_keeps_its_query() {
        assert!(ProxyCallbackUrl::parse("https://proxy/cb?x=1").is_ok());
        for bad in [
            "http://proxy/cb",
            "https://u:p@proxy/cb",
            "https://proxy/#f",
            "cb",
        ] {
            assert_eq!(
                ProxyCallbackUrl::parse(bad),
                Err(CasError::malformed_proxy_callback()),
                "{bad}"
            );
        }
        let iou = PgtIou::generate();
        let pgt = ProxyGrantingTicket::generate();
        let callback = ProxyCallbackUrl::parse("https://proxy/cb?x=1")
            .unwrap()
            .with_tickets(&iou, &pgt);
        let pairs: Vec<(String, String)> = callback
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(
            pairs,
            params(&[
                ("x", "1"),
                ("pgtIou", iou.expose()),
                ("pgtId", pgt.expose())
            ])
        );
    }

    // /login

    #[test]
    fn login_without_service_is_a_plain_login() {
        assert_eq!(
            LoginRequest::parse(&[]),
            Ok(LoginRequest::Plain { renew: false })
        );
        assert_eq!(
            LoginRequest::parse(&params(&[("service", ""), ("gateway", "true")])),
            Ok(LoginRequest::Plain { renew: false }),
            "gateway without service is a plain login"
        );
        assert_eq!(
            LoginRequest::parse(&params(&[("renew", "true")])),
            Ok(LoginRequest::Plain { renew: true })
        );
    }

    #[test]
    fn login_for_a_service_uses_the_session_unless_renew_or_gateway() {
        let prompt = |pairs: &[(&str, &str)]| {
            let mut all = params(&[("service", APP)]);
            all.extend(params(pairs));
            match LoginRequest::parse(&all) {
                Ok(LoginRequest::Service {
                    service: s, prompt, ..
                }) if s == service(APP) => prompt,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(prompt(&[]), Prompt::Sso);
        assert_eq!(prompt(&[("renew", "true")]), Prompt::Renew);
        assert_eq!(prompt(&[("gateway", "true")]), Prompt::Gateway);
        assert_eq!(
            prompt(&[("gateway", "true"), ("renew", "true")]),
            Prompt::Renew,
            "renew wins over gateway"
        );
        assert_eq!(prompt(&[("renew", "false")]), Prompt::Sso);
        assert_eq!(prompt(&[("renew", "")]), Prompt::Sso);
        assert_eq!(prompt(&[("gateway", "1")]), Prompt::Gateway);
    }

    #[test]
    fn login_method_is_get_by_default_post_if_asked_and_nothing_else() {
        let method = |value: Option<&str>| {
            let mut all = params(&[("service", APP)]);
            all.extend(value.map(|v| ("method".to_owned(), v.to_owned())));
            LoginRequest::parse(&all).map(|request| match request {
                LoginRequest::Service { method, .. } => method,
                LoginRequest::Plain { .. } => panic!("a service was given"),
            })
        };
        assert_eq!(method(None), Ok(ResponseMethod::Get));
        assert_eq!(method(Some("GET")), Ok(ResponseMethod::Get));
        assert_eq!(method(Some("POST")), Ok(ResponseMethod::Post));
        assert_eq!(method(Some("post")), Ok(ResponseMethod::Post));
        assert_eq!(method(Some("HEADER")), Err(CasError::unsupported_method()));
        assert_eq!(method(Some("PUT")), Err(CasError::unsupported_method()));
    }

    #[test]
    fn login_refuses_a_bad_service_and_repeated_parameters() {
        assert_eq!(
            LoginRequest::parse(&params(&[("service", "javascript:alert(1)")])),
            Err(CasError::malformed_service())
        );
        assert_eq!(
            LoginRequest::parse(&params(&[("service", APP), ("service", APP)])),
            Err(CasError::repeated_parameter())
        );
        assert_eq!(
            LoginRequest::parse(&params(&[("renew", "true"), ("renew", "true")])),
            Err(CasError::repeated_parameter())
        );
    }

    // Validation endpoints.

    #[test]
    fn a_service_ticket_validates_at_every_endpoint() {
        for endpoint in Endpoint::ALL {
            let request = validate(endpoint, &[("service", APP), ("ticket", ST)]).unwrap();
            assert_eq!(request.endpoint, endpoint);
            assert_eq!(request.ticket.kind(), TicketKind::Service);
            assert_eq!(request.ticket.expose(), ST);
            assert_eq!(request.service, service(APP));
            assert!(!request.renew);
            assert_eq!(request.proxy_callback, None);
            let expected = match endpoint {
                Endpoint::Validate => Format::Text,
                _ => Format::Xml,
            };
            assert_eq!(request.format, expected);
        }
    }

    #[test]
    fn service_and_ticket_are_both_required() {
        for pairs in [
            &[("service", APP)][..],
            &[("ticket", ST)][..],
            &[("service", " "), ("ticket", ST)][..],
            &[("service", APP), ("ticket", "")][..],
            &[][..],
        ] {
            let refused = refusal(Endpoint::P3ServiceValidate, pairs);
            assert_eq!(
                refused.error,
                CasError::validation_parameters_missing(),
                "{pairs:?}"
            );
        }
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", APP), ("ticket", ST), ("ticket", ST)],
        );
        assert_eq!(refused.error, CasError::repeated_parameter());
        assert_eq!(
            refused.spent.iter().map(|t| t.expose()).collect::<Vec<_>>(),
            [ST, ST],
            "a repeated ticket is spent all the same"
        );
    }

    #[test]
    fn a_refused_validation_spends_its_one_time_ticket() {
        let refused = refusal(Endpoint::ServiceValidate, &[("ticket", ST)]);
        assert_eq!(refused.error.code, CasCode::InvalidRequest);
        assert_eq!(
            refused.spent.iter().map(|t| t.expose()).collect::<Vec<_>>(),
            [ST]
        );
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", APP), ("ticket", PT)],
        );
        assert_eq!(
            refused.spent.iter().map(|t| t.kind()).collect::<Vec<_>>(),
            [TicketKind::Proxy]
        );
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", APP), ("ticket", PGT)],
        );
        assert!(refused.spent.is_empty(), "a PGT is multi-use");
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", APP), ("ticket", "x")],
        );
        assert!(refused.spent.is_empty());
    }

    #[test]
    fn each_endpoint_takes_its_kinds_of_ticket() {
        let kind_refused = |endpoint, ticket| {
            validate(endpoint, &[("service", APP), ("ticket", ticket)])
                .err()
                .map(|refused| refused.error)
        };
        for endpoint in [
            Endpoint::Validate,
            Endpoint::ServiceValidate,
            Endpoint::P3ServiceValidate,
        ] {
            assert_eq!(
                kind_refused(endpoint, PT),
                Some(CasError::proxy_ticket_not_accepted())
            );
            assert_eq!(
                kind_refused(endpoint, PT).map(|e| e.code),
                Some(CasCode::InvalidTicketSpec)
            );
            assert!(!endpoint.accepts_proxy_tickets());
        }
        for endpoint in [Endpoint::ProxyValidate, Endpoint::P3ProxyValidate] {
            assert_eq!(kind_refused(endpoint, PT), None);
            assert!(endpoint.accepts_proxy_tickets());
        }
        for endpoint in Endpoint::ALL {
            assert_eq!(
                kind_refused(endpoint, PGT),
                Some(CasError::granting_ticket_presented())
            );
            assert_eq!(
                kind_refused(endpoint, "not-a-ticket"),
                Some(CasError::ticket_not_recognized())
            );
        }
    }

    #[test]
    fn a_validation_with_a_bad_service_is_invalid_service() {
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", "not a url"), ("ticket", ST)],
        );
        assert_eq!(refused.error, CasError::malformed_service());
        assert!(!refused.spent.is_empty());
    }

    #[test]
    fn renew_is_read_at_validation() {
        let request = validate(
            Endpoint::Validate,
            &[("service", APP), ("ticket", ST), ("renew", "true")],
        )
        .unwrap();
        assert!(request.renew);
    }

    #[test]
    fn format_is_xml_by_default_json_if_asked_and_nothing_else() {
        let format = |value: &str| {
            validate(
                Endpoint::P3ServiceValidate,
                &[("service", APP), ("ticket", ST), ("format", value)],
            )
            .map(|request| request.format)
        };
        assert_eq!(format("XML"), Ok(Format::Xml));
        assert_eq!(format(""), Ok(Format::Xml));
        assert_eq!(format("JSON"), Ok(Format::Json));
        assert_eq!(format("json"), Ok(Format::Json));
        let refused = format("YAML").unwrap_err();
        assert_eq!(refused.error, CasError::unsupported_format());
        assert_eq!(refused.format, Format::Xml, "the fault is written in XML");
        assert!(!refused.spent.is_empty());
    }

    #[test]
    fn a_refusal_is_written_in_the_format_asked() {
        let refused = refusal(
            Endpoint::ServiceValidate,
            &[("service", APP), ("ticket", "bad"), ("format", "JSON")],
        );
        assert_eq!(refused.format, Format::Json);
        let refused = refusal(Endpoint::Validate, &[("format", "JSON")]);
        assert_eq!(refused.format, Format::Text);
    }

    #[test]
    fn cas_1_ignores_format_and_pgt_url() {
        let request = validate(
            Endpoint::Validate,
            &[
                ("service", APP),
                ("ticket", ST),
                ("format", "YAML"),
                ("pgtUrl", "http://insecure/cb"),
            ],
        )
        .unwrap();
        assert_eq!(request.format, Format::Text);
        assert_eq!(request.proxy_callback, None);
    }

    #[test]
    fn pgt_url_must_be_https() {
        let with = |url: &str| {
            validate(
                Endpoint::ProxyValidate,
                &[("service", APP), ("ticket", ST), ("pgtUrl", url)],
            )
        };
        let request = with("https://proxy.example.org/cb").unwrap();
        assert_eq!(
            request.proxy_callback.map(|url| url.as_str().to_owned()),
            Some("https://proxy.example.org/cb".to_owned())
        );
        let refused = with("http://proxy.example.org/cb").unwrap_err();
        assert_eq!(refused.error, CasError::malformed_proxy_callback());
        assert_eq!(refused.error.code, CasCode::InvalidProxyCallback);
    }

    #[test]
    fn endpoints_have_the_paths_of_section_2() {
        let paths: Vec<&str> = Endpoint::ALL.iter().map(|e| e.path()).collect();
        assert_eq!(
            paths,
            [
                "/validate",
                "/serviceValidate",
                "/proxyValidate",
                "/p3/serviceValidate",
                "/p3/proxyValidate"
            ]
        );
        assert_eq!(Format::Json.media_type(), "application/json");
        assert!(Format::Text.media_type().starts_with("text/plain"));
        assert!(Format::Xml.media_type().starts_with("application/xml"));
    }

    // /proxy

    #[test]
    fn a_proxy_request_needs_a_pgt_and_a_target_service() {
        let proxy = |pairs: &[(&str, &str)]| ProxyRequest::parse(&params(pairs));
        let request = proxy(&[("pgt", PGT), ("targetService", "http://www.service.com")]).unwrap();
        assert_eq!(request.pgt.kind(), TicketKind::ProxyGranting);
        assert_eq!(request.target_service, service("http://www.service.com/"));
        assert_eq!(request.format, Format::Xml);
        let error = |pairs: &[(&str, &str)]| proxy(pairs).unwrap_err().error;
        assert_eq!(error(&[("pgt", PGT)]), CasError::proxy_parameters_missing());
        assert_eq!(
            error(&[("targetService", APP)]),
            CasError::proxy_parameters_missing()
        );
        assert_eq!(
            error(&[("pgt", ST), ("targetService", APP)]),
            CasError::ticket_not_recognized()
        );
        assert_eq!(
            error(&[("pgt", PGT), ("targetService", "imap://mail")]),
            CasError::unauthorized_service()
        );
        let refused = proxy(&[("pgt", PGT), ("format", "JSON")]).unwrap_err();
        assert_eq!(refused.format, Format::Json);
        assert!(refused.spent.is_empty());
    }

    // /logout

    #[test]
    fn logout_keeps_a_good_service_and_ignores_url() {
        let logout = |pairs: &[(&str, &str)]| LogoutRequestParams::parse(&params(pairs)).service;
        assert_eq!(logout(&[("service", APP)]), Some(service(APP)));
        assert_eq!(logout(&[("url", APP)]), None, "CAS 2.0's url is ignored");
        assert_eq!(logout(&[("service", "javascript:x")]), None);
        assert_eq!(logout(&[("service", APP), ("service", APP)]), None);
        assert_eq!(logout(&[]), None);
    }

    // No input makes a parser panic.

    fn pairs() -> impl Strategy<Value = Vec<(String, String)>> {
        let name = prop_oneof![
            proptest::sample::select(
                &[
                    "service",
                    "ticket",
                    "renew",
                    "gateway",
                    "method",
                    "format",
                    "pgtUrl",
                    "pgt",
                    "targetService",
                    "url"
                ][..]
            )
            .prop_map(str::to_owned),
            ".{0,8}",
        ];
        let value = prop_oneof![
            "(ST|PT|PGT|PGTIOU)-[A-Za-z0-9_.-]{0,20}",
            "(https?|ftp|HTTP)://[a-z@:.]{0,12}(/[a-z%0-9]{0,6})?(\\?[a-z=&]{0,8})?(#x)?",
            "(true|false|TRUE|JSON|XML|POST|GET| )",
            ".{0,40}",
        ];
        proptest::collection::vec((name, value), 0..8)
    }

    proptest! {
        #[test]
        fn parsers_never_panic_and_keep_their_promises(sent in pairs()) {
            let _ = LoginRequest::parse(&sent);
            let _ = LogoutRequestParams::parse(&sent);
            let _ = ProxyRequest::parse(&sent);
            for endpoint in Endpoint::ALL {
                match ValidateRequest::parse(endpoint, &sent) {
                    Ok(request) => {
                        let kind = request.ticket.kind();
                        prop_assert!(kind == TicketKind::Service
                            || (kind == TicketKind::Proxy && endpoint.accepts_proxy_tickets()));
                    }
                    Err(refused) => {
                        prop_assert!(refused.spent.iter().all(|t| t.kind().is_one_time()));
                    }
                }
            }
        }

        #[test]
        fn any_string_is_a_service_or_invalid_service(raw in ".{0,60}") {
            match ServiceUrl::parse(&raw) {
                Ok(url) => prop_assert!(matches!(url.as_url().scheme(), "http" | "https")),
                Err(error) => prop_assert_eq!(error.code, CasCode::InvalidService),
            }
        }
    }
}
