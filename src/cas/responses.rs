//! What the CAS endpoints answer (CAS 3.0.3 §2.4.2, §2.5.2, §2.5.7, §2.7.2,
//! Appendix A) and the single-logout message Guichet posts to services
//! (Appendix C), as strings ready to send.
//!
//! XML is written by quick-xml, which escapes every value; what XML 1.0 cannot
//! hold at all (most C0 controls, U+FFFE, U+FFFF) is removed first, and a
//! carriage return is written `&#xD;` so a parser does not turn it into a line
//! feed. The output is compact: no XML declaration, no indentation, and above
//! all no white space inside a text element (python-cas and mod_auth_cas take
//! `cas:user` and attribute values verbatim). Element names made from attribute
//! names are safe because an `AttributeName` can only hold an XML name.
//!
//! JSON (`format=JSON`) is written by serde_json: an attribute with one value is
//! a string, one with several an array (as the spec's example, §2.5.7); the
//! standard attributes are a string (the date) and booleans. An attribute with
//! no value is left out, in XML and JSON alike.

use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

use quick_xml::Writer;
use quick_xml::escape::escape;
use quick_xml::events::BytesText;
use serde_json::{Map, Value, json};
use time::{OffsetDateTime, UtcOffset};

use super::CasError;
use super::protocol::{Format, ProxyCallbackUrl};
use super::tickets::{LogoutRequestId, PgtIou, PresentedTicket, ProxyTicket};

const CAS_NS: &str = "http://www.yale.edu/tp/cas";
const SAMLP_NS: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
const SAML_NS: &str = "urn:oasis:names:tc:SAML:2.0:assertion";

/// Long enough for any LDAP attribute or configured name.
const MAX_ATTRIBUTE_NAME_CHARS: usize = 128;

/// The attributes every success carries first (Appendix A's sequence); a
/// released attribute may not take their names.
const STANDARD_ATTRIBUTES: [&str; 3] = [
    "authenticationDate",
    "longTermAuthenticationRequestTokenUsed",
    "isFromNewLogin",
];

/// The name of a released attribute, which becomes an element name
/// (`cas:<name>`): `^[A-Za-z_][A-Za-z0-9._-]*$`, at most 128 characters, none of
/// the three standard attributes. LDAP options (`cn;lang-fr`) and OIDs
/// (`2.5.4.3`) are not XML names: they are refused when the configuration is
/// loaded, never escaped at answer time.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeName(String);

/// Why a configured attribute name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AttributeNameError {
    #[error("a CAS attribute name is a letter or _ then letters, digits, . _ or - (at most 128)")]
    NotAnXmlName,
    #[error(
        "authenticationDate, longTermAuthenticationRequestTokenUsed and isFromNewLogin are sent already"
    )]
    Standard,
}

impl AttributeName {
    pub fn parse(raw: &str) -> Result<AttributeName, AttributeNameError> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
        if !(first_ok && rest_ok && raw.len() <= MAX_ATTRIBUTE_NAME_CHARS) {
            return Err(AttributeNameError::NotAnXmlName);
        }
        if STANDARD_ATTRIBUTES.contains(&raw) {
            return Err(AttributeNameError::Standard);
        }
        Ok(AttributeName(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AttributeName {
    type Err = AttributeNameError;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        AttributeName::parse(raw)
    }
}

impl fmt::Display for AttributeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A successful validation: who, with what, and how they signed in.
#[derive(Debug, Clone)]
pub struct ValidationSuccess {
    pub user: String,
    /// Released attributes in the order to write them; a value list of several
    /// is a multi-valued attribute.
    pub attributes: Vec<(AttributeName, Vec<String>)>,
    /// When the user last typed credentials (written in UTC, to the second).
    pub authentication_date: OffsetDateTime,
    /// The ticket came from typing credentials, not from the SSO session.
    pub is_from_new_login: bool,
    /// The session is a "remember me" one (§4.1.3 wants it said).
    pub long_term: bool,
    /// The IOU of the PGT handed to the `pgtUrl`, if one was.
    pub pgt_iou: Option<PgtIou>,
    /// The proxy callbacks a proxy ticket went through, the most recent first.
    pub proxies: Vec<ProxyCallbackUrl>,
}

/// The answer to a successful validation, in the request's format: CAS 1.0
/// `yes\n<user>\n` (line breaks and other controls removed from the user), or
/// `cas:authenticationSuccess` with attributes, the PGT IOU and the proxies.
pub fn validation_success(success: &ValidationSuccess, format: Format) -> String {
    match format {
        Format::Text => format!("yes\n{}\n", one_line(&success.user)),
        Format::Xml => success_xml(success),
        Format::Json => success_json(success).to_string(),
    }
}

/// The answer to a failed validation: CAS 1.0 `no\n\n` (Apereo's; a 1.0 client
/// reads only the first line), or `cas:authenticationFailure` with the code.
pub fn validation_failure(error: &CasError, format: Format) -> String {
    match format {
        Format::Text => "no\n\n".to_owned(),
        Format::Xml => failure_xml("cas:authenticationFailure", error),
        Format::Json => failure_json("authenticationFailure", error).to_string(),
    }
}

/// The answer of `/proxy` with a new proxy ticket. `/proxy` has no CAS 1.0
/// form: `Format::Text` (which `ProxyRequest` never yields) is written as XML.
pub fn proxy_success(ticket: &ProxyTicket, format: Format) -> String {
    match format {
        Format::Json => json!({
            "serviceResponse": { "proxySuccess": { "proxyTicket": ticket.expose() } }
        })
        .to_string(),
        Format::Text | Format::Xml => service_response(|w| {
            w.create_element("cas:proxySuccess")
                .write_inner_content(|w| text_element(w, "cas:proxyTicket", ticket.expose()))?;
            Ok(())
        }),
    }
}

/// The refusal of `/proxy`: `cas:proxyFailure` (§2.7.2; the spec's JSON
/// example says `authenticationFailure`, taken as a slip: `proxyFailure` in
/// both). `Format::Text` is written as XML.
pub fn proxy_failure(error: &CasError, format: Format) -> String {
    match format {
        Format::Json => failure_json("proxyFailure", error).to_string(),
        Format::Text | Format::Xml => failure_xml("cas:proxyFailure", error),
    }
}

/// The SAML single-logout message Guichet posts to a service when the session
/// its ticket came from ends (Appendix C), in Apereo's exact one-line shape:
/// the `samlp:` prefix is what phpCAS looks for, and `SessionIndex` is exactly
/// the service ticket the service validated (mod_auth_cas and python-cas
/// compare it verbatim). `NameID` is the user, as Apereo 6+ sends.
#[derive(Debug, Clone)]
pub struct SingleLogoutMessage {
    pub id: LogoutRequestId,
    pub issue_instant: OffsetDateTime,
    pub user: String,
    pub session_index: PresentedTicket,
}

impl SingleLogoutMessage {
    /// A message with a fresh `LR-` id.
    pub fn new(user: String, session_index: PresentedTicket, now: OffsetDateTime) -> Self {
        SingleLogoutMessage {
            id: LogoutRequestId::generate(),
            issue_instant: now,
            user,
            session_index,
        }
    }

    pub fn xml(&self) -> String {
        let instant = utc_seconds(self.issue_instant);
        document(|w| {
            w.create_element("samlp:LogoutRequest")
                .with_attribute(("xmlns:samlp", SAMLP_NS))
                .with_attribute(("ID", self.id.expose()))
                .with_attribute(("Version", "2.0"))
                .with_attribute(("IssueInstant", instant.as_str()))
                .write_inner_content(|w| {
                    w.create_element("saml:NameID")
                        .with_attribute(("xmlns:saml", SAML_NS))
                        .write_text_content(text(&self.user))?;
                    text_element(w, "samlp:SessionIndex", self.session_index.expose())
                })?;
            Ok(())
        })
    }

    /// The body of the POST (`application/x-www-form-urlencoded`):
    /// `logoutRequest=<the message>`, what every client reads. Kept short:
    /// mod_auth_cas reads at most 1,023 bytes of it.
    pub fn form_body(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("logoutRequest", &self.xml())
            .finish()
    }
}

// XML writing.

/// Writes a document in memory. A `Vec<u8>` never refuses bytes, so quick-xml's
/// `io::Result` is always `Ok`; were it ever not, the answer would be empty
/// (which every client reads as a failure) rather than a panic.
fn document(build: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>) -> String {
    let mut writer = Writer::new(Vec::new());
    match build(&mut writer) {
        Ok(()) => String::from_utf8(writer.into_inner()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn service_response(body: impl FnOnce(&mut Writer<Vec<u8>>) -> io::Result<()>) -> String {
    document(|w| {
        w.create_element("cas:serviceResponse")
            .with_attribute(("xmlns:cas", CAS_NS))
            .write_inner_content(body)?;
        Ok(())
    })
}

/// Text content: characters XML 1.0 forbids removed, the rest escaped by
/// quick-xml, a carriage return kept as a character reference.
fn text(value: &str) -> BytesText<'static> {
    let allowed: String = value.chars().filter(|c| xml_allows(*c)).collect();
    BytesText::from_escaped(escape(allowed.as_str()).replace('\r', "&#xD;"))
}

/// XML 1.0 §2.2 `Char`, for what a Rust `char` can be.
fn xml_allows(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{B}' | '\u{C}' | '\u{E}'..='\u{1F}' | '\u{FFFE}' | '\u{FFFF}')
}

fn text_element<W: Write>(w: &mut Writer<W>, name: &str, value: &str) -> io::Result<()> {
    w.create_element(name).write_text_content(text(value))?;
    Ok(())
}

fn success_xml(success: &ValidationSuccess) -> String {
    service_response(|w| {
        w.create_element("cas:authenticationSuccess")
            .write_inner_content(|w| {
                text_element(w, "cas:user", &success.user)?;
                w.create_element("cas:attributes")
                    .write_inner_content(|w| attributes_xml(w, success))?;
                if let Some(iou) = &success.pgt_iou {
                    text_element(w, "cas:proxyGrantingTicket", iou.expose())?;
                }
                if !success.proxies.is_empty() {
                    w.create_element("cas:proxies").write_inner_content(|w| {
                        for proxy in &success.proxies {
                            text_element(w, "cas:proxy", proxy.as_str())?;
                        }
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        Ok(())
    })
}

/// The standard attributes first, in Appendix A's order, then each released
/// value as its own element (a multi-valued attribute repeats its element).
fn attributes_xml<W: Write>(w: &mut Writer<W>, success: &ValidationSuccess) -> io::Result<()> {
    let date = utc_seconds(success.authentication_date);
    let [date_name, long_term_name, new_login_name] = STANDARD_ATTRIBUTES;
    text_element(w, &format!("cas:{date_name}"), &date)?;
    text_element(
        w,
        &format!("cas:{long_term_name}"),
        xml_bool(success.long_term),
    )?;
    text_element(
        w,
        &format!("cas:{new_login_name}"),
        xml_bool(success.is_from_new_login),
    )?;
    for (name, values) in &success.attributes {
        let element = format!("cas:{name}");
        for value in values {
            text_element(w, &element, value)?;
        }
    }
    Ok(())
}

fn xml_bool(value: bool) -> &'static str {
    if value { "true" } else { "false" }
}

fn failure_xml(element: &str, error: &CasError) -> String {
    service_response(|w| {
        w.create_element(element)
            .with_attribute(("code", error.code.as_str()))
            .write_text_content(text(error.description))?;
        Ok(())
    })
}

// JSON writing.

fn success_json(success: &ValidationSuccess) -> Value {
    let [date_name, long_term_name, new_login_name] = STANDARD_ATTRIBUTES;
    let mut attributes = Map::new();
    attributes.insert(
        date_name.to_owned(),
        utc_seconds(success.authentication_date).into(),
    );
    attributes.insert(long_term_name.to_owned(), success.long_term.into());
    attributes.insert(new_login_name.to_owned(), success.is_from_new_login.into());
    for (name, values) in &success.attributes {
        if let Some(value) = json_values(values) {
            attributes.insert(name.as_str().to_owned(), value);
        }
    }
    let mut body = Map::new();
    body.insert("user".to_owned(), success.user.clone().into());
    body.insert("attributes".to_owned(), attributes.into());
    if let Some(iou) = &success.pgt_iou {
        body.insert("proxyGrantingTicket".to_owned(), iou.expose().into());
    }
    if !success.proxies.is_empty() {
        let proxies = success.proxies.iter().map(|p| Value::from(p.as_str()));
        body.insert("proxies".to_owned(), Value::Array(proxies.collect()));
    }
    json!({ "serviceResponse": { "authenticationSuccess": body } })
}

/// One value is a string, several an array, none nothing.
fn json_values(values: &[String]) -> Option<Value> {
    match values {
        [] => None,
        [one] => Some(one.clone().into()),
        several => Some(several.to_vec().into()),
    }
}

fn failure_json(key: &str, error: &CasError) -> Value {
    let failure = json!({ "code": error.code.as_str(), "description": error.description });
    let mut response = Map::new();
    response.insert(key.to_owned(), failure);
    json!({ "serviceResponse": response })
}

// Shared.

/// `yyyy-MM-ddTHH:mm:ssZ`, in UTC: Appendix A's `xs:dateTime` and Apereo's
/// `IssueInstant`. Written by hand so that it cannot fail.
fn utc_seconds(instant: OffsetDateTime) -> String {
    let utc = instant.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        utc.year(),
        u8::from(utc.month()),
        utc.day(),
        utc.hour(),
        utc.minute(),
        utc.second()
    )
}

/// A CAS 1.0 answer is lines: a user with a line break would forge one.
fn one_line(user: &str) -> String {
    user.chars().filter(|c| !c.is_control()).collect()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use time::macros::datetime;

    use super::*;
    use crate::cas::test_xml::{Element, parse};
    use crate::cas::tickets::ServiceTicket;

    fn name(raw: &str) -> AttributeName {
        AttributeName::parse(raw).unwrap()
    }

    fn proxy(raw: &str) -> ProxyCallbackUrl {
        ProxyCallbackUrl::parse(raw).unwrap()
    }

    fn alice() -> ValidationSuccess {
        ValidationSuccess {
            user: "alice".to_owned(),
            attributes: vec![
                (name("mail"), vec!["alice@example.org".to_owned()]),
                (
                    name("eduPersonAffiliation"),
                    vec!["student".to_owned(), "member".to_owned()],
                ),
                (name("nickname"), vec![]),
            ],
            authentication_date: datetime!(2015-11-12 10:30:10.5 +01:00),
            is_from_new_login: true,
            long_term: false,
            pgt_iou: None,
            proxies: vec![],
        }
    }

    fn success_element(xml: &str) -> Element {
        let root = parse(xml);
        assert_eq!(root.name, "cas:serviceResponse");
        assert_eq!(root.attribute("xmlns:cas"), Some(CAS_NS));
        root.assert_compact();
        assert_eq!(root.child_names(), ["cas:authenticationSuccess"]);
        root.children.into_iter().next().unwrap()
    }

    fn texts<'a>(element: &'a Element, name: &str) -> Vec<&'a str> {
        element.all(name).iter().map(|e| e.text.as_str()).collect()
    }

    // Successful validation, XML (§2.5.2, §2.5.7, §2.6.2, Appendix A).

    #[test]
    fn a_success_names_the_user_then_the_attributes_standard_ones_first() {
        let success = success_element(&validation_success(&alice(), Format::Xml));
        assert_eq!(success.child_names(), ["cas:user", "cas:attributes"]);
        assert_eq!(success.child("cas:user").text, "alice");
        let attributes = success.child("cas:attributes");
        assert_eq!(
            attributes.child_names(),
            [
                "cas:authenticationDate",
                "cas:longTermAuthenticationRequestTokenUsed",
                "cas:isFromNewLogin",
                "cas:mail",
                "cas:eduPersonAffiliation",
                "cas:eduPersonAffiliation",
            ],
            "a multi-valued attribute repeats its element; one with no value is left out"
        );
        assert_eq!(
            attributes.child("cas:authenticationDate").text,
            "2015-11-12T09:30:10Z"
        );
        assert_eq!(
            attributes
                .child("cas:longTermAuthenticationRequestTokenUsed")
                .text,
            "false"
        );
        assert_eq!(attributes.child("cas:isFromNewLogin").text, "true");
        assert_eq!(texts(attributes, "cas:mail"), ["alice@example.org"]);
        assert_eq!(
            texts(attributes, "cas:eduPersonAffiliation"),
            ["student", "member"]
        );
    }

    #[test]
    fn a_success_with_a_pgt_and_proxies_lists_them_after_the_attributes() {
        let iou = PgtIou::generate();
        let success = ValidationSuccess {
            pgt_iou: Some(iou.clone()),
            proxies: vec![
                proxy("https://proxy2/pgtUrl"),
                proxy("https://proxy1/pgtUrl"),
            ],
            ..alice()
        };
        let xml = validation_success(&success, Format::Xml);
        let element = success_element(&xml);
        assert_eq!(
            element.child_names(),
            [
                "cas:user",
                "cas:attributes",
                "cas:proxyGrantingTicket",
                "cas:proxies"
            ]
        );
        assert_eq!(element.child("cas:proxyGrantingTicket").text, iou.expose());
        assert_eq!(
            texts(element.child("cas:proxies"), "cas:proxy"),
            ["https://proxy2/pgtUrl", "https://proxy1/pgtUrl"],
            "most recent proxy first, as given"
        );
        assert!(!xml.starts_with("<?xml"), "no declaration");
        assert!(!xml.contains('\n'), "compact");
    }

    #[test]
    fn hostile_values_are_escaped_and_what_xml_forbids_is_removed() {
        let hostile = "a<b>&c\"d'e</cas:user><x/>]]>&amp;\u{0}\u{1}\u{8}\u{B}\u{C}\u{1F}\u{FFFE}\u{FFFF}\t\n\r\u{1F600}z";
        let kept = "a<b>&c\"d'e</cas:user><x/>]]>&amp;\t\n\r\u{1F600}z";
        let success = ValidationSuccess {
            user: hostile.to_owned(),
            attributes: vec![(name("cn"), vec![hostile.to_owned(), " padded ".to_owned()])],
            ..alice()
        };
        let xml = validation_success(&success, Format::Xml);
        assert!(!xml.chars().any(|c| !xml_allows(c)), "{xml:?}");
        let element = success_element(&xml);
        assert_eq!(element.child("cas:user").text, kept);
        assert_eq!(
            texts(element.child("cas:attributes"), "cas:cn"),
            [kept, " padded "]
        );
    }

    // Successful validation, JSON (§2.5.2, §2.5.7) and CAS 1.0 (§2.4.2).

    #[test]
    fn a_json_success_has_scalars_for_one_value_and_arrays_for_several() {
        let success = ValidationSuccess {
            pgt_iou: Some(PgtIou::generate()),
            proxies: vec![proxy("https://proxy1/pgtUrl")],
            ..alice()
        };
        let json: Value =
            serde_json::from_str(&validation_success(&success, Format::Json)).unwrap();
        let body = &json["serviceResponse"]["authenticationSuccess"];
        assert_eq!(body["user"], "alice");
        let attributes = &body["attributes"];
        assert_eq!(attributes["mail"], "alice@example.org");
        assert_eq!(
            attributes["eduPersonAffiliation"],
            json!(["student", "member"])
        );
        assert_eq!(attributes.get("nickname"), None);
        assert_eq!(attributes["authenticationDate"], "2015-11-12T09:30:10Z");
        assert_eq!(attributes["isFromNewLogin"], true);
        assert_eq!(attributes["longTermAuthenticationRequestTokenUsed"], false);
        assert_eq!(
            body["proxyGrantingTicket"],
            success.pgt_iou.as_ref().unwrap().expose()
        );
        assert_eq!(body["proxies"], json!(["https://proxy1/pgtUrl"]));
        let plain: Value =
            serde_json::from_str(&validation_success(&alice(), Format::Json)).unwrap();
        let plain = &plain["serviceResponse"]["authenticationSuccess"];
        assert_eq!(plain.get("proxyGrantingTicket"), None);
        assert_eq!(plain.get("proxies"), None);
    }

    #[test]
    fn cas_1_answers_yes_and_the_user_or_no() {
        assert_eq!(validation_success(&alice(), Format::Text), "yes\nalice\n");
        let forged = ValidationSuccess {
            user: "eve\nyes\r\nroot".to_owned(),
            ..alice()
        };
        assert_eq!(
            validation_success(&forged, Format::Text),
            "yes\neveyesroot\n"
        );
        assert_eq!(
            validation_failure(&CasError::ticket_not_recognized(), Format::Text),
            "no\n\n"
        );
    }

    // Failures (§2.5.2, §2.7.2).

    #[test]
    fn a_failure_carries_its_code_and_description() {
        let error = CasError::ticket_not_recognized();
        let root = parse(&validation_failure(&error, Format::Xml));
        assert_eq!(root.name, "cas:serviceResponse");
        assert_eq!(root.attribute("xmlns:cas"), Some(CAS_NS));
        let failure = root.child("cas:authenticationFailure");
        assert_eq!(failure.attribute("code"), Some("INVALID_TICKET"));
        assert_eq!(failure.text, "ticket not recognized");
        let json: Value = serde_json::from_str(&validation_failure(
            &CasError::service_mismatch(),
            Format::Json,
        ))
        .unwrap();
        assert_eq!(
            json,
            json!({ "serviceResponse": { "authenticationFailure": {
                "code": "INVALID_SERVICE",
                "description": "the ticket was not issued to this service"
            } } })
        );
    }

    #[test]
    fn the_proxy_endpoint_answers_a_proxy_ticket_or_a_proxy_failure() {
        let pt = ProxyTicket::generate();
        for format in [Format::Xml, Format::Text] {
            let root = parse(&proxy_success(&pt, format));
            assert_eq!(root.name, "cas:serviceResponse");
            root.assert_compact();
            let ticket = root.child("cas:proxySuccess").child("cas:proxyTicket");
            assert_eq!(ticket.text, pt.expose());
        }
        let json: Value = serde_json::from_str(&proxy_success(&pt, Format::Json)).unwrap();
        assert_eq!(
            json["serviceResponse"]["proxySuccess"]["proxyTicket"],
            pt.expose()
        );

        let error = CasError::proxy_parameters_missing();
        let root = parse(&proxy_failure(&error, Format::Xml));
        let failure = root.child("cas:proxyFailure");
        assert_eq!(failure.attribute("code"), Some("INVALID_REQUEST"));
        assert_eq!(
            failure.text,
            "'pgt' and 'targetService' parameters are both required"
        );
        let json: Value = serde_json::from_str(&proxy_failure(&error, Format::Json)).unwrap();
        assert_eq!(
            json["serviceResponse"]["proxyFailure"]["code"],
            "INVALID_REQUEST"
        );
    }

    // Attribute names.

    #[test]
    fn attribute_names_are_xml_names() {
        for good in [
            "uid",
            "eduPersonAffiliation",
            "_x",
            "supann.etu-id",
            "mail2",
        ] {
            assert_eq!(name(good).as_str(), good);
            assert_eq!(good.parse::<AttributeName>().unwrap().to_string(), good);
        }
        let long = "a".repeat(129);
        for bad in [
            "",
            "2.5.4.3",
            "cn;lang-fr",
            "a b",
            "cas:x",
            "é",
            "-a",
            ".a",
            long.as_str(),
        ] {
            assert_eq!(
                AttributeName::parse(bad),
                Err(AttributeNameError::NotAnXmlName),
                "{bad:?}"
            );
        }
        assert!(AttributeName::parse(&"a".repeat(128)).is_ok());
        for standard in STANDARD_ATTRIBUTES {
            assert_eq!(
                AttributeName::parse(standard),
                Err(AttributeNameError::Standard)
            );
        }
    }

    // Single logout (Appendix C).

    fn logout(user: &str, ticket: &str) -> SingleLogoutMessage {
        SingleLogoutMessage::new(
            user.to_owned(),
            PresentedTicket::parse(ticket).unwrap(),
            datetime!(2026-12-03 11:15:42.123 +01:00),
        )
    }

    #[test]
    fn the_logout_message_has_apereos_exact_shape() {
        let st = ServiceTicket::generate();
        let message = logout("alice", st.expose());
        assert!(message.id.expose().starts_with("LR-"));
        let expected = format!(
            "<samlp:LogoutRequest xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\" \
             ID=\"{}\" Version=\"2.0\" IssueInstant=\"2026-12-03T10:15:42Z\">\
             <saml:NameID xmlns:saml=\"urn:oasis:names:tc:SAML:2.0:assertion\">alice</saml:NameID>\
             <samlp:SessionIndex>{}</samlp:SessionIndex></samlp:LogoutRequest>",
            message.id.expose(),
            st.expose()
        );
        assert_eq!(message.xml(), expected);
        let root = parse(&message.xml());
        assert_eq!(root.child("samlp:SessionIndex").text, st.expose());
        assert_eq!(root.child("saml:NameID").text, "alice");
        assert_eq!(root.attribute("ID"), Some(message.id.expose()));
    }

    #[test]
    fn the_logout_body_is_the_form_encoded_message_under_1024_bytes() {
        let login = "a".repeat(64);
        let st = ServiceTicket::generate();
        let longest = format!("ST-{}", "9".repeat(256));
        for ticket in [st.expose(), longest.as_str()] {
            let message = logout(&login, ticket);
            let body = message.form_body();
            assert!(body.len() < 1024, "{} bytes", body.len());
            let fields: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            assert_eq!(fields, [("logoutRequest".to_owned(), message.xml())]);
        }
    }

    #[test]
    fn a_hostile_user_cannot_break_the_logout_message() {
        let message = logout("<x>&\u{1}", "ST-abc");
        let root = parse(&message.xml());
        assert_eq!(root.child("saml:NameID").text, "<x>&");
        assert_eq!(root.child("samlp:SessionIndex").text, "ST-abc");
    }

    proptest! {
        #[test]
        fn any_value_reads_back_as_written_less_what_xml_forbids(
            user in any::<String>(),
            values in proptest::collection::vec(any::<String>(), 1..4),
        ) {
            let success = ValidationSuccess {
                user: user.clone(),
                attributes: vec![(name("v"), values.clone())],
                ..alice()
            };
            let cleaned = |s: &String| s.chars().filter(|c| xml_allows(*c)).collect::<String>();
            let element = success_element(&validation_success(&success, Format::Xml));
            prop_assert_eq!(&element.child("cas:user").text, &cleaned(&user));
            let written: Vec<String> = element.child("cas:attributes").all("cas:v")
                .iter().map(|e| e.text.clone()).collect();
            prop_assert_eq!(written, values.iter().map(cleaned).collect::<Vec<_>>());

            let json: Value = serde_json::from_str(&validation_success(&success, Format::Json)).unwrap();
            prop_assert_eq!(&json["serviceResponse"]["authenticationSuccess"]["user"], &Value::from(user));
        }
    }
}
