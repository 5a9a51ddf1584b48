//! The authorization endpoint's decision (code flow). Until the client and its
//! redirect URI are known to be registered, a refusal is shown as a page; after
//! that it goes back to the client (RFC 6749 §4.1.2.1), with `iss` (RFC 9207).

use time::OffsetDateTime;
use url::Url;

use super::{Provider, ProviderError};
use crate::domain::{Token, TokenHash};
use crate::flows::FlowError;
use crate::flows::sign_in::SignIn;
use crate::oidc::login_asked;
use crate::oidc::protocol::{AuthorizeParams, AuthorizeRequest, LOGIN_ASKED, Params, Repeated};
use crate::oidc::{OAuthCode, OAuthError, claims};
use crate::store::{
    AuditEvent, ClientRecord, CodeRecord, Origin, SessionRecord, StoreError, unix_now,
};

/// A code is exchanged at once by the client's back end; a minute is plenty.
const CODE_SECS: i64 = 60;

/// What the authorization endpoint does with a request.
pub enum Authorization {
    /// The student must sign in first, then come back to the request.
    Login(ToLogin),
    /// A third-party client: the student is asked to agree.
    Consent(ConsentAsked),
    /// The code, at the client's redirect URI.
    Code(Url),
    Refused(Refusal),
}

/// Where a refusal goes.
pub enum Refusal {
    /// Client and redirect URI check out: the error goes back there, with the state.
    ToClient { location: Url, error: OAuthError },
    /// No redirect can be trusted: the student gets a page.
    Page(OAuthError),
}

/// The login page's parameters.
pub struct ToLogin {
    /// Where the login page sends the student back (this request, adjusted).
    pub next: String,
    pub login_hint: Option<String>,
    /// The first of the student's preferred languages that the pages speak.
    pub lang: Option<&'static str>,
}

/// What the consent page shows, and the request its form carries back.
pub struct ConsentAsked {
    pub client_name: String,
    pub scopes: Vec<String>,
    pub params: Params,
}

/// The student's answer on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentAnswer {
    pub allowed: bool,
}

/// Where codes and errors go once the client and its redirect URI check out.
struct Reply {
    redirect_uri: Url,
    /// The URI exactly as registered (and sent): what the token request must repeat.
    registered_uri: String,
    state: Option<String>,
    issuer: String,
}

impl Reply {
    fn location(&self, pairs: &[(&str, &str)]) -> Url {
        let mut url = self.redirect_uri.clone();
        {
            let mut query = url.query_pairs_mut();
            for (key, value) in pairs {
                query.append_pair(key, value);
            }
            if let Some(state) = &self.state {
                query.append_pair("state", state);
            }
            query.append_pair("iss", &self.issuer);
        }
        url
    }

    fn refuse(&self, code: OAuthCode, description: &str) -> Authorization {
        let error = OAuthError::new(code, description);
        let location =
            self.location(&[("error", code.as_str()), ("error_description", description)]);
        Authorization::Refused(Refusal::ToClient { location, error })
    }

    fn invalid(&self, description: &str) -> Authorization {
        self.refuse(OAuthCode::InvalidRequest, description)
    }
}

/// The client and where its answers go, or the page that says why not.
enum Checked {
    // Boxed: a client record is large beside a refusal.
    Client(Box<ClientRecord>, Reply),
    Refused(Authorization),
}

fn page(code: OAuthCode, description: &str) -> Authorization {
    Authorization::Refused(Refusal::Page(OAuthError::new(code, description)))
}

impl Provider<'_> {
    /// Decides an authorization request. `session` is the secret of the browser's
    /// session cookie, `consent` the student's answer when the request comes back
    /// from the consent page.
    pub async fn authorize(
        &self,
        request: Result<AuthorizeRequest, Repeated>,
        session: Option<&Token>,
        consent: Option<ConsentAnswer>,
    ) -> Result<Authorization, ProviderError> {
        let Ok(request) = request else {
            return Ok(page(
                OAuthCode::InvalidRequest,
                "repeated client_id, redirect_uri or state",
            ));
        };
        let (client, reply) = match self.checked_client(&request).await? {
            Checked::Client(client, reply) => (*client, reply),
            Checked::Refused(refused) => return Ok(refused),
        };
        // First of all: the redirect URI and state may come from the (unverified)
        // request object, and serve only to send this refusal, never anything else.
        if request.carries_object() {
            let refused = "request objects are not supported";
            return Ok(reply.refuse(OAuthCode::RequestNotSupported, refused));
        }
        let Ok(params) = &request.rest else {
            return Ok(reply.invalid("a parameter is repeated"));
        };
        let step = Step {
            request: &request,
            params,
            client: &client,
            reply: &reply,
        };
        self.grant(&step, session, consent).await
    }

    /// The client and the exact redirect URI, or a page (never a redirect to an
    /// unregistered address).
    async fn checked_client(&self, request: &AuthorizeRequest) -> Result<Checked, StoreError> {
        let Some(client_id) = &request.client_id else {
            return Ok(Checked::Refused(page(
                OAuthCode::InvalidRequest,
                "no client_id",
            )));
        };
        let Some(client) = self.app.store.client(client_id).await? else {
            return Ok(Checked::Refused(page(
                OAuthCode::InvalidClient,
                "unknown client",
            )));
        };
        let Some(redirect_uri) = request
            .redirect_uri
            .as_ref()
            .filter(|uri| client.redirect_uris.contains(uri))
        else {
            let refused = page(
                OAuthCode::InvalidRequest,
                "redirect_uri not registered for this client",
            );
            return Ok(Checked::Refused(refused));
        };
        let Ok(parsed) = Url::parse(redirect_uri) else {
            let refused = page(OAuthCode::InvalidRequest, "redirect_uri unreadable");
            return Ok(Checked::Refused(refused));
        };
        let reply = Reply {
            redirect_uri: parsed,
            registered_uri: redirect_uri.clone(),
            state: request.state.clone(),
            issuer: self.issuer(),
        };
        Ok(Checked::Client(Box::new(client), reply))
    }
}

/// One request on its way: what was sent, and the client it is for.
struct Step<'a> {
    request: &'a AuthorizeRequest,
    params: &'a AuthorizeParams,
    client: &'a ClientRecord,
    reply: &'a Reply,
}

/// What a request asks, once its shape checks out.
struct Asked<'a> {
    /// The known scopes asked for, `openid` among them.
    scope: String,
    prompts: Vec<&'a str>,
    max_age: Option<i64>,
}

impl Asked<'_> {
    fn prompt(&self, value: &str) -> bool {
        self.prompts.contains(&value)
    }
}

impl Provider<'_> {
    /// The request checked; then the student's session, then the code.
    async fn grant(
        &self,
        step: &Step<'_>,
        session: Option<&Token>,
        consent: Option<ConsentAnswer>,
    ) -> Result<Authorization, ProviderError> {
        let asked = match self.asked(step) {
            Ok(asked) => asked,
            Err(refused) => return Ok(refused),
        };
        let (reply, client_id) = (step.reply, step.client.client_id.as_str());
        let now = unix_now();
        let session = self.session(session).await?;
        let login_asked = asked.prompt("login");
        // prompt=login and max_age are met only by a sign-in after Guichet asked for it
        // (a signed statement carried through the login page): opening the login page's
        // return address without signing in meets neither.
        let needs_statement = login_asked || asked.max_age.is_some();
        let asked_at = match &step.params.login_asked {
            Some(raw) if needs_statement => {
                login_asked::asked(self.app, raw, client_id, now).map(|asked| asked.at)
            }
            _ => None,
        };
        let since_asked = |created: i64| asked_at.is_some_and(|t| created >= t);
        let fresh_enough = |created: i64| {
            asked.max_age.is_none_or(|age| now - created <= age) || since_asked(created)
        };
        let signed_in_since = |created: i64| !login_asked || since_asked(created);
        let live = session.filter(|(record, _)| {
            fresh_enough(record.created_at) && signed_in_since(record.created_at)
        });
        let Some((record, session_hash)) = live else {
            if asked.prompt("none") {
                return Ok(reply.refuse(OAuthCode::LoginRequired, "the student must sign in"));
            }
            let statement = match needs_statement {
                true => Some(login_asked::statement(self.app, client_id, now)?),
                false => None,
            };
            return Ok(to_login(step.request, statement.as_deref()));
        };
        if let Some(stop) = self.someone_else(step, &asked, &record).await? {
            return Ok(stop);
        }
        if let Some(stop) = self.agreed(step, &asked, &record, consent, now).await? {
            return Ok(stop);
        }
        self.code(step, asked.scope, &record, &session_hash, now)
            .await
    }

    /// The request's own checks, before any session: the first failure goes back
    /// to the client.
    fn asked<'a>(&self, step: &Step<'a>) -> Result<Asked<'a>, Authorization> {
        let (params, reply) = (step.params, step.reply);
        if params.request_uri {
            let refused = "request_uri is not supported";
            return Err(reply.refuse(OAuthCode::RequestUriNotSupported, refused));
        }
        match params.response_type.as_deref() {
            Some("code") => {}
            None => return Err(reply.invalid("response_type is required")),
            Some(_) => {
                let only = "only the code flow";
                return Err(reply.refuse(OAuthCode::UnsupportedResponseType, only));
            }
        }
        if params
            .response_mode
            .as_deref()
            .is_some_and(|m| m != "query")
        {
            return Err(reply.invalid("only response_mode=query"));
        }
        let scope = claims::granted(
            params.scope.as_deref().unwrap_or_default(),
            &self.app.settings.oidc.claims,
        );
        if !scope.split(' ').any(|s| s == "openid") {
            let required = "the openid scope is required";
            return Err(reply.refuse(OAuthCode::InvalidScope, required));
        }
        checked_challenge(params, step.client).map_err(|refused| reply.invalid(refused))?;
        let prompts = params.prompts();
        if prompts.contains(&"none") && prompts.len() > 1 {
            return Err(reply.invalid("prompt=none cannot be combined"));
        }
        let max_age =
            max_age(params.max_age.as_deref()).map_err(|refused| reply.invalid(refused))?;
        Ok(Asked {
            scope,
            prompts,
            max_age,
        })
    }

    /// The live session behind the browser's cookie, and its hash.
    async fn session(
        &self,
        secret: Option<&Token>,
    ) -> Result<Option<(SessionRecord, TokenHash)>, FlowError> {
        let sign_in = SignIn {
            app: self.app,
            origin: Origin::default(),
        };
        sign_in.session_of(secret, OffsetDateTime::now_utc()).await
    }

    /// The client names whom it expects (`id_token_hint`): another student signed
    /// in here must not be handed to it silently.
    async fn someone_else(
        &self,
        step: &Step<'_>,
        asked: &Asked<'_>,
        record: &SessionRecord,
    ) -> Result<Option<Authorization>, ProviderError> {
        let Some(hint) = &step.params.id_token_hint else {
            return Ok(None);
        };
        let reply = step.reply;
        let Some(claims) = self.hint_claims(hint) else {
            return Ok(Some(
                reply.invalid("id_token_hint is not an ID token of ours"),
            ));
        };
        let current = self.app.directory.read(&record.account_dn).await?;
        let same =
            current.is_some_and(|account| claims["sub"] == claims::subject(&account).as_str());
        if same {
            return Ok(None);
        }
        if asked.prompt("none") {
            let other = "another account is signed in";
            return Ok(Some(reply.refuse(OAuthCode::LoginRequired, other)));
        }
        Ok(Some(to_login(step.request, None)))
    }

    /// A third-party application needs the student's agreement to what it reads:
    /// recorded when given, asked for when missing (or when `prompt=consent`).
    async fn agreed(
        &self,
        step: &Step<'_>,
        asked: &Asked<'_>,
        record: &SessionRecord,
        consent: Option<ConsentAnswer>,
        now: i64,
    ) -> Result<Option<Authorization>, ProviderError> {
        let (client, reply, store) = (step.client, step.reply, &self.app.store);
        if client.first_party {
            return Ok(None);
        }
        let scope = asked.scope.as_str();
        match consent {
            Some(ConsentAnswer { allowed: false }) => {
                let declined = "the student declined";
                Ok(Some(reply.refuse(OAuthCode::AccessDenied, declined)))
            }
            Some(ConsentAnswer { allowed: true }) => {
                store
                    .add_consent(&record.account_dn, &client.client_id, scope, now)
                    .await?;
                let event = AuditEvent::new("oidc.consent", "ok")
                    .account(&record.account_dn)
                    .detail(serde_json::json!({ "client_id": client.client_id, "scope": scope }));
                store.audit(&self.origin, event).await?;
                Ok(None)
            }
            None => {
                let agreed = store
                    .has_consent(&record.account_dn, &client.client_id, scope)
                    .await?;
                if agreed && !asked.prompt("consent") {
                    return Ok(None);
                }
                if asked.prompt("none") {
                    let first = "the student must agree first";
                    return Ok(Some(reply.refuse(OAuthCode::ConsentRequired, first)));
                }
                Ok(Some(Authorization::Consent(ConsentAsked {
                    client_name: client.name.clone(),
                    scopes: scope
                        .split(' ')
                        .filter(|s| *s != "openid")
                        .map(str::to_owned)
                        .collect(),
                    params: step
                        .request
                        .sent
                        .iter()
                        .filter(|(k, _)| !matches!(k.as_str(), "prompt" | "decision" | "csrf"))
                        .cloned()
                        .collect(),
                })))
            }
        }
    }

    /// A code for this session, at the client's redirect URI.
    async fn code(
        &self,
        step: &Step<'_>,
        scope: String,
        record: &SessionRecord,
        session_hash: &TokenHash,
        now: i64,
    ) -> Result<Authorization, ProviderError> {
        let code = Token::generate();
        let stored = CodeRecord {
            client_id: step.client.client_id.clone(),
            account_dn: record.account_dn.clone(),
            session_hash: session_hash.as_str().to_owned(),
            redirect_uri: step.reply.registered_uri.clone(),
            scope,
            nonce: step.params.nonce.clone(),
            code_challenge: step.params.code_challenge.clone(),
            auth_time: record.created_at,
            expires_at: now + CODE_SECS,
            epoch: record.epoch,
        };
        self.app.store.add_code(&code.hash(), &stored, now).await?;
        Ok(Authorization::Code(
            step.reply.location(&[("code", code.expose())]),
        ))
    }
}

/// `max_age`: a number of seconds, 0 or more (OIDC Core §3.1.2.1).
fn max_age(raw: Option<&str>) -> Result<Option<i64>, &'static str> {
    match raw.map(str::parse::<i64>) {
        None => Ok(None),
        Some(Ok(age)) if age >= 0 => Ok(Some(age)),
        Some(_) => Err("max_age must be a number of seconds"),
    }
}

/// PKCE: S256 only, and required of public clients (RFC 7636, RFC 9700 §2.1.1).
fn checked_challenge(params: &AuthorizeParams, client: &ClientRecord) -> Result<(), &'static str> {
    match (
        params.code_challenge.as_deref(),
        params.code_challenge_method.as_deref(),
    ) {
        (Some(c), Some("S256")) if is_s256_challenge(c) => Ok(()),
        (Some(_), Some("S256")) => Err("code_challenge is not a S256 value"),
        (Some(_), _) => Err("code_challenge_method must be S256"),
        (None, Some(_)) => Err("code_challenge is missing"),
        (None, None) if client.secret_hash.is_none() => {
            Err("PKCE (S256) is required for public clients")
        }
        (None, None) => Ok(()),
    }
}

/// 43 to 128 characters of base64url: the shape of a S256 challenge (RFC 7636 §4.2).
fn is_s256_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// To the login page, back here afterwards. `asked` is the signed login request
/// when prompt=login or max_age sent the student there (the sign-in after it meets
/// both); without it, `login` leaves `prompt`, or the student would be asked again
/// and again.
fn to_login(request: &AuthorizeRequest, asked: Option<&str>) -> Authorization {
    let mut back = url::form_urlencoded::Serializer::new(String::new());
    for (key, value) in &request.sent {
        if key == LOGIN_ASKED {
            continue;
        }
        if key == "prompt" && asked.is_none() {
            let kept: Vec<&str> = value.split_whitespace().filter(|p| *p != "login").collect();
            if !kept.is_empty() {
                back.append_pair(key, &kept.join(" "));
            }
        } else {
            back.append_pair(key, value);
        }
    }
    if let Some(asked) = asked {
        back.append_pair(LOGIN_ASKED, asked);
    }
    let lang = request
        .hint("ui_locales")
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|tag| tag.split('-').next())
        .find_map(|lang| match lang {
            "fr" => Some("fr"),
            "en" => Some("en"),
            _ => None,
        });
    Authorization::Login(ToLogin {
        next: format!("/authorize?{}", back.finish()),
        login_hint: request.hint("login_hint").map(str::to_owned),
        lang,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn pairs() -> impl Strategy<Value = Params> {
        let name = prop_oneof![
            proptest::sample::select(
                &["prompt", "ui_locales", "login_hint", LOGIN_ASKED, "scope"][..]
            )
            .prop_map(str::to_owned),
            ".{0,12}",
        ];
        let value = prop_oneof![
            "(login|none|consent| |\\t|\u{a0}){0,5}",
            "((fr|en|de)(-[A-Za-z]{2})?[ _,;]?){0,4}",
            ".{0,40}",
        ];
        proptest::collection::vec((name, value), 0..12)
    }

    /// The login page's return address, read back as pairs.
    fn back(to: &ToLogin) -> Params {
        let query = to.next.strip_prefix("/authorize?").unwrap_or_default();
        url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    proptest! {
        #[test]
        fn the_login_page_comes_back_to_the_request_as_sent(sent in pairs(), asked in proptest::option::of(".{1,30}")) {
            let Ok(request) = AuthorizeRequest::parse(sent.clone()) else { return Ok(()) };
            let Authorization::Login(to) = to_login(&request, asked.as_deref()) else {
                return Err(TestCaseError::fail("not the login page"));
            };
            prop_assert!(to.next.starts_with("/authorize"));
            let expected: Params = sent
                .iter()
                .filter(|(k, _)| k != LOGIN_ASKED)
                .filter_map(|(k, v)| match (k.as_str(), &asked) {
                    ("prompt", None) => {
                        let kept: Vec<&str> = v.split_whitespace().filter(|p| *p != "login").collect();
                        (!kept.is_empty()).then(|| (k.clone(), kept.join(" ")))
                    }
                    _ => Some((k.clone(), v.clone())),
                })
                .chain(asked.iter().map(|a| (LOGIN_ASKED.to_owned(), a.clone())))
                .collect();
            prop_assert_eq!(back(&to), expected);
            prop_assert!(matches!(to.lang, None | Some("fr" | "en")));
            prop_assert_eq!(to.login_hint.as_deref(), request.hint("login_hint"));
        }

        #[test]
        fn max_age_is_a_number_of_seconds_or_refused(raw in prop_oneof![".{0,24}", "-?[0-9]{1,25}", any::<i64>().prop_map(|n| n.to_string())]) {
            match max_age(Some(&raw)) {
                Ok(Some(age)) => prop_assert_eq!(Ok(age), raw.parse::<i64>()),
                Ok(None) => prop_assert!(false, "a value given is never absent"),
                Err(refused) => prop_assert!(raw.parse::<i64>().map_or(true, |n| n < 0), "{refused}"),
            }
        }

        #[test]
        fn a_challenge_of_s256_shape_is_43_to_128_base64url_characters(raw in prop_oneof![".{0,140}", "[A-Za-z0-9_-]{40,130}", "[A-Za-z0-9_+/=-]{43,50}"]) {
            let shaped = (43..=128).contains(&raw.chars().count())
                && raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            prop_assert_eq!(is_s256_challenge(&raw), shaped);
        }
    }

    #[test]
    fn challenges_have_the_s256_shape() {
        assert!(is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!is_s256_challenge("short"));
        assert!(!is_s256_challenge(&"a".repeat(129)));
        assert!(!is_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw+cM"
        ));
    }
}
