//! The relying party's steps, shared by the modules: the authorization request,
//! reading the provider's answer at the redirect URI, redeeming a code, calling
//! UserInfo, and checking that a session is over.

use anyhow::{Context as _, Result, bail, ensure};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use rand::Rng;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::agent::{Agent, Journey, Landing};
use crate::checks::{self, IdTokenRules};
use crate::{Client, Receiver, Target};

pub struct Context<'a> {
    pub target: &'a Target,
    pub receiver: &'a Receiver,
    pub discovery: Value,
    /// The relying party's own HTTP client: no cookies, no redirects.
    pub http: reqwest::Client,
}

impl<'a> Context<'a> {
    pub async fn new(target: &'a Target, receiver: &'a Receiver) -> Result<Context<'a>> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            target.issuer.trim_end_matches('/')
        );
        let response = http.get(&url).send().await?;
        ensure!(
            response.status() == StatusCode::OK,
            "{url} answered {}",
            response.status()
        );
        let discovery = response.json().await.context("not JSON")?;
        Ok(Context {
            target,
            receiver,
            discovery,
            http,
        })
    }

    pub fn issuer(&self) -> &str {
        &self.target.issuer
    }

    pub fn endpoint(&self, name: &str) -> Result<Url> {
        let raw = self.discovery[name]
            .as_str()
            .with_context(|| format!("discovery has no {name}"))?;
        Url::parse(raw).with_context(|| format!("{name} is not a URL"))
    }

    /// Whether the discovery array `key` lists `value`.
    pub fn supports(&self, key: &str, value: &str) -> bool {
        self.discovery[key]
            .as_array()
            .is_some_and(|a| a.iter().any(|v| v == value))
    }

    pub async fn jwks(&self) -> Result<JwkSet> {
        let response = self.http.get(self.endpoint("jwks_uri")?).send().await?;
        ensure!(
            response.status() == StatusCode::OK,
            "jwks_uri answered {}",
            response.status()
        );
        response.json().await.context("the JWKS is not a JWK set")
    }

    /// A fresh browser: no cookies, so no session.
    pub fn agent(&self) -> Result<Agent> {
        let issuer = Url::parse(&self.target.issuer)?;
        Agent::new(&issuer, &self.target.login, &self.target.password)
    }
}

pub fn random() -> String {
    let bytes: [u8; 24] = rand::thread_rng().r#gen();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An authorization request, built as a relying party would.
#[derive(Clone)]
pub struct Request {
    pub client: Client,
    pub params: Vec<(String, String)>,
    pub verifier: Option<String>,
}

impl Request {
    /// response_type=code, the client, its redirect URI, scope openid, a state
    /// and a nonce.
    pub fn new(context: &Context<'_>, client: &Client) -> Request {
        let params = [
            ("response_type", "code".to_owned()),
            ("client_id", client.id.clone()),
            ("redirect_uri", context.receiver.redirect_uri()),
            ("scope", "openid".to_owned()),
            ("state", random()),
            ("nonce", random()),
        ];
        Request {
            client: client.clone(),
            params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            verifier: None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Sets `key` (replacing it if present).
    pub fn set(mut self, key: &str, value: &str) -> Request {
        match self.params.iter_mut().find(|(k, _)| k == key) {
            Some(pair) => pair.1 = value.to_owned(),
            None => self.params.push((key.to_owned(), value.to_owned())),
        }
        self
    }

    pub fn without(mut self, key: &str) -> Request {
        self.params.retain(|(k, _)| k != key);
        self
    }

    /// Adds a PKCE S256 challenge (RFC 7636).
    pub fn pkce(self) -> Request {
        let verifier = format!("{}{}", random(), random());
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
        let mut request = self
            .set("code_challenge", &challenge)
            .set("code_challenge_method", "S256");
        request.verifier = Some(verifier);
        request
    }

    pub fn url(&self, context: &Context<'_>) -> Result<Url> {
        let mut url = context.endpoint("authorization_endpoint")?;
        url.query_pairs_mut().extend_pairs(&self.params);
        Ok(url)
    }

    /// Opens the request in `agent`, signing in if asked.
    pub async fn send(&self, context: &Context<'_>, agent: &Agent) -> Result<Journey> {
        agent.visit(self.url(context)?).await
    }
}

/// The query the provider sent to the redirect URI, after checking it went there.
fn reply_at_redirect_uri(
    context: &Context<'_>,
    journey: &Journey,
) -> Result<Vec<(String, String)>> {
    let Landing::Away(url) = &journey.landing else {
        bail!(
            "expected a redirect to the client, got {}",
            journey.landing.describe()
        );
    };
    let expected = context.receiver.redirect_uri();
    let without_query = url.as_str().split('?').next().unwrap_or_default();
    ensure!(
        without_query == expected,
        "redirected to {url}, not to {expected}"
    );
    Ok(url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect())
}

fn param<'p>(pairs: &'p [(String, String)], key: &str) -> Option<&'p str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// RFC 6749 §4.1.2 and RFC 9207: the code, with the request's state and the
/// provider's iss.
pub fn code_of(context: &Context<'_>, request: &Request, journey: &Journey) -> Result<String> {
    let reply = reply_at_redirect_uri(context, journey)?;
    if let Some(error) = param(&reply, "error") {
        bail!("the provider answered error={error}");
    }
    ensure!(
        param(&reply, "state") == request.get("state"),
        "state not returned as sent"
    );
    if let Some(iss) = param(&reply, "iss") {
        ensure!(iss == context.issuer(), "iss {iss} is not the issuer");
    }
    Ok(param(&reply, "code").context("no code")?.to_owned())
}

/// RFC 6749 §4.1.2.1: the error code sent back to the client, with the state.
pub fn error_of(context: &Context<'_>, request: &Request, journey: &Journey) -> Result<String> {
    let reply = reply_at_redirect_uri(context, journey)?;
    ensure!(
        param(&reply, "code").is_none(),
        "a code came with the error"
    );
    ensure!(
        param(&reply, "state") == request.get("state"),
        "state not returned as sent"
    );
    Ok(param(&reply, "error")
        .context("no error in the reply")?
        .to_owned())
}

/// Whether the provider refused to go on with an error page of its own, without
/// redirecting anywhere.
pub fn error_page(journey: &Journey) -> Result<()> {
    match &journey.landing {
        Landing::Page { status, .. } if status.is_client_error() => Ok(()),
        other => bail!(
            "expected an error page at the provider, got {}",
            other.describe()
        ),
    }
}

#[derive(Debug, Clone, Copy)]
pub enum Auth {
    Basic,
    Post,
}

pub struct Tokens {
    pub access: String,
    pub id_token: String,
    pub refresh: Option<String>,
    /// The ID token's claims, verified.
    pub claims: Value,
}

/// Posts to the token endpoint with the client's credentials.
pub async fn token_call(
    context: &Context<'_>,
    client: &Client,
    auth: Auth,
    form: &[(&str, &str)],
) -> Result<(StatusCode, Value)> {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut call = context.http.post(context.endpoint("token_endpoint")?);
    match auth {
        Auth::Basic => call = call.basic_auth(&client.id, Some(&client.secret)),
        Auth::Post => {
            form.push(("client_id", &client.id));
            form.push(("client_secret", &client.secret));
        }
    }
    let response = call.form(&form).send().await?;
    let status = response.status();
    let store = response
        .headers()
        .get("cache-control")
        .and_then(|v| v.to_str().ok());
    ensure!(
        store == Some("no-store"),
        "token response without Cache-Control: no-store"
    );
    Ok((
        status,
        response
            .json()
            .await
            .context("token response is not JSON")?,
    ))
}

/// The error a refused token request names (RFC 6749 §5.2).
pub async fn token_error(
    context: &Context<'_>,
    client: &Client,
    auth: Auth,
    form: &[(&str, &str)],
) -> Result<String> {
    let (status, body) = token_call(context, client, auth, form).await?;
    ensure!(
        status.is_client_error(),
        "expected a refusal, got {status}: {body}"
    );
    Ok(checks::text(&body, "error")?.to_owned())
}

/// Reads and checks a successful token response, the ID token included.
pub async fn tokens_of(
    context: &Context<'_>,
    client: &Client,
    nonce: Option<&str>,
    after_refresh: bool,
    status: StatusCode,
    body: Value,
) -> Result<Tokens> {
    ensure!(
        status == StatusCode::OK,
        "token endpoint answered {status}: {body}"
    );
    ensure!(
        body["token_type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer")),
        "token_type is not Bearer"
    );
    let access = checks::text(&body, "access_token")?.to_owned();
    ensure!(
        access.len() >= 22,
        "the access token is too short to hold 128 bits"
    );
    let id_token = checks::text(&body, "id_token")?.to_owned();
    let rules = IdTokenRules {
        client_id: &client.id,
        nonce,
        nonce_optional: after_refresh,
        access_token: Some(&access),
    };
    let claims = checks::id_token(&context.jwks().await?, &id_token, context.issuer(), &rules)?;
    Ok(Tokens {
        access,
        refresh: body["refresh_token"].as_str().map(str::to_owned),
        id_token,
        claims,
    })
}

/// Redeems `code` for the request's client.
pub async fn redeem(
    context: &Context<'_>,
    request: &Request,
    code: &str,
    auth: Auth,
) -> Result<Tokens> {
    let redirect = context.receiver.redirect_uri();
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect.as_str()),
    ];
    if let Some(verifier) = &request.verifier {
        form.push(("code_verifier", verifier));
    }
    let (status, body) = token_call(context, &request.client, auth, &form).await?;
    tokens_of(
        context,
        &request.client,
        request.get("nonce"),
        false,
        status,
        body,
    )
    .await
}

/// The whole code flow in `agent`: authorize (signing in if asked), redeem.
pub async fn sign_in(
    context: &Context<'_>,
    agent: &Agent,
    request: &Request,
    auth: Auth,
) -> Result<(Tokens, Journey)> {
    let journey = request.send(context, agent).await?;
    let code = code_of(context, request, &journey)?;
    let tokens = redeem(context, request, &code, auth).await?;
    Ok((tokens, journey))
}

#[derive(Debug, Clone, Copy)]
pub enum UserInfoCall {
    Get,
    PostHeader,
    PostBody,
}

/// UserInfo (Core §5.3), with the access token where `how` puts it.
pub async fn userinfo_call(
    context: &Context<'_>,
    access: &str,
    how: UserInfoCall,
) -> Result<(StatusCode, Value)> {
    let url = context.endpoint("userinfo_endpoint")?;
    let call = match how {
        UserInfoCall::Get => context.http.get(url).bearer_auth(access),
        UserInfoCall::PostHeader => context.http.post(url).bearer_auth(access),
        UserInfoCall::PostBody => context.http.post(url).form(&[("access_token", access)]),
    };
    let response = call.send().await?;
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// UserInfo's claims, checked against the ID token's subject.
pub async fn userinfo(context: &Context<'_>, tokens: &Tokens, how: UserInfoCall) -> Result<Value> {
    let (status, body) = userinfo_call(context, &tokens.access, how).await?;
    ensure!(
        status == StatusCode::OK,
        "UserInfo answered {status}: {body}"
    );
    ensure!(
        body["sub"] == tokens.claims["sub"],
        "UserInfo's sub {} is not the ID token's {}",
        body["sub"],
        tokens.claims["sub"]
    );
    Ok(body)
}

/// An authorization request with prompt=none must come back with login_required:
/// the browser's session at the provider is over.
pub async fn session_is_over(context: &Context<'_>, agent: &Agent) -> Result<()> {
    let request = Request::new(context, &context.target.client).set("prompt", "none");
    let journey = request.send(context, agent).await?;
    let error = error_of(context, &request, &journey)
        .context("after logout, prompt=none should give an error")?;
    ensure!(
        error == "login_required",
        "after logout, prompt=none gave {error}"
    );
    Ok(())
}
