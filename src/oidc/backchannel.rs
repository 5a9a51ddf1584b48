//! Back-channel logout delivery (OpenID Connect Back-Channel Logout 1.0 §2.5,
//! and CAS single logout): a durable queue in the database, so an application
//! that is down, or a Guichet that restarts, loses no logout. Each OIDC attempt
//! signs a fresh logout token (they live two minutes); failures are retried
//! with exponential backoff for over two hours (12 attempts). The end of each
//! delivery (made, or given up) goes to the audit log.

use std::time::Duration;

use reqwest::header::CONTENT_TYPE;
use serde_json::json;
use tokio::sync::watch;

use super::keys::Alg;
use crate::app::App;
use crate::cas::protocol::ServiceUrl;
use crate::cas::responses::SingleLogoutMessage;
use crate::cas::tickets::PresentedTicket;
use crate::store::{AuditEvent, LogoutDelivery, LogoutProtocol, Origin, StoreError, unix_now};

/// How long a client has to accept a logout token.
const POST_TIMEOUT: Duration = Duration::from_secs(5);
/// A claimed delivery is ours for this long: more than the POST timeout.
const LEASE_SECS: i64 = 30;
const FIRST_RETRY_SECS: i64 = 5;
const MAX_BACKOFF_SECS: i64 = 3600;
const MAX_ATTEMPTS: i64 = 12;
/// Deliveries also wait for this poll when no one rings.
const POLL: Duration = Duration::from_secs(5);

/// Runs until `stop` turns true: delivers what is due, then waits for a wake or
/// the poll interval.
pub async fn run(app: App, mut stop: watch::Receiver<bool>) {
    let http = match reqwest::Client::builder()
        .timeout(POST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!(%error, "no HTTP client for back-channel logout");
            return;
        }
    };
    while !*stop.borrow() {
        loop {
            if *stop.borrow() {
                break;
            }
            match app.store.claim_logout(unix_now(), LEASE_SECS).await {
                Ok(Some(delivery)) => {
                    if let Err(error) = deliver(&app, &http, &delivery).await {
                        tracing::warn!(%error, "back-channel logout: database unavailable");
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "back-channel logout: database unavailable, will retry");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            () = app.backchannel.notified() => {}
            _ = stop.changed() => {}
        }
    }
}

/// One attempt, in the delivery's protocol.
async fn deliver(
    app: &App,
    http: &reqwest::Client,
    delivery: &LogoutDelivery,
) -> Result<(), StoreError> {
    match &delivery.protocol {
        LogoutProtocol::Oidc => deliver_oidc(app, http, delivery).await,
        LogoutProtocol::Cas {
            ticket,
            service_url,
        } => deliver_cas(app, http, delivery, ticket, service_url).await,
    }
}

/// A CAS single logout (CAS 3.0.3 Appendix C): the SAML `LogoutRequest` naming
/// the ticket the service validated, posted as `logoutRequest`.
async fn deliver_cas(
    app: &App,
    http: &reqwest::Client,
    delivery: &LogoutDelivery,
    ticket: &str,
    service_url: &str,
) -> Result<(), StoreError> {
    let now = unix_now();
    let service = app.store.cas_service(&delivery.client_id).await?;
    let target = service.as_ref().and_then(|service| {
        let logout = service.single_logout.as_ref()?;
        let url = ServiceUrl::parse(service_url).ok()?;
        Some(logout.target(&url).as_str().to_owned())
    });
    let (Some(target), Ok(ticket)) = (target, PresentedTicket::parse(ticket)) else {
        let reason = "the service or its single logout is gone";
        return given_up(app, delivery, reason, now).await;
    };
    let at = time::OffsetDateTime::now_utc();
    let message = SingleLogoutMessage::new(delivery.subject.clone(), ticket, at);
    let sent = http
        .post(&target)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(message.form_body())
        .send()
        .await;
    // mod_auth_cas handles the message, then answers the POST like any request
    // without its cookie: with a redirect to the login. Any answer but an
    // error is the application having taken it.
    outcome(app, delivery, sent, now, |status| {
        status.is_success() || status.is_redirection()
    })
    .await
}

/// Records a delivery that will never be made.
async fn given_up(
    app: &App,
    delivery: &LogoutDelivery,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    audit(app, delivery, "failed").await?;
    app.store.logout_failed(delivery, reason, None, now).await
}

/// The audit row of a delivery's end: delivered, or given up.
async fn audit(
    app: &App,
    delivery: &LogoutDelivery,
    outcome: &'static str,
) -> Result<(), StoreError> {
    let protocol = match delivery.protocol {
        LogoutProtocol::Oidc => "oidc",
        LogoutProtocol::Cas { .. } => "cas",
    };
    let event = AuditEvent::new("logout.delivery", outcome).detail(json!({
        "protocol": protocol,
        "client": delivery.client_id,
        "attempts": delivery.attempts,
    }));
    app.store.audit(&Origin::default(), event).await
}

/// What the application answered: delivered when `taken` says so, else
/// retried later or given up after the last attempt.
async fn outcome(
    app: &App,
    delivery: &LogoutDelivery,
    sent: Result<reqwest::Response, reqwest::Error>,
    now: i64,
    taken: impl Fn(reqwest::StatusCode) -> bool,
) -> Result<(), StoreError> {
    let error = match sent {
        Ok(response) if taken(response.status()) => {
            tracing::info!(client = %delivery.client_id, "back-channel logout delivered");
            audit(app, delivery, "ok").await?;
            return app.store.logout_delivered(delivery, unix_now()).await;
        }
        Ok(response) => format!("the application answered {}", response.status()),
        // Without the URL: it is the application's, but the error is enough.
        Err(error) => format!("not delivered: {}", error.without_url()),
    };
    let retry = retry_at(delivery, now);
    tracing::warn!(client = %delivery.client_id, attempt = delivery.attempts, %error, given_up = retry.is_none(), "back-channel logout failed");
    if retry.is_none() {
        audit(app, delivery, "failed").await?;
    }
    app.store.logout_failed(delivery, &error, retry, now).await
}

/// An OIDC back-channel logout: sign a logout token, post it.
async fn deliver_oidc(
    app: &App,
    http: &reqwest::Client,
    delivery: &LogoutDelivery,
) -> Result<(), StoreError> {
    let now = unix_now();
    let client = app.store.client(&delivery.client_id).await?;
    let Some((client, uri)) =
        client.and_then(|c| c.backchannel_logout_uri.clone().map(|uri| (c, uri)))
    else {
        // Removed since, or no longer listening for logouts: nothing to tell.
        let reason = "the client or its back-channel URI is gone";
        return given_up(app, delivery, reason, now).await;
    };
    let mut claims = json!({
        "iss": super::issuer(app),
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": uuid::Uuid::new_v4().to_string(),
        "sub": delivery.subject,
        "sid": super::sid(&delivery.session_hash),
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    });
    // Sessions opened before Guichet kept the subject with them: `sid` alone names
    // the session, which Back-Channel Logout §2.4 allows.
    if delivery.subject.is_empty() {
        if let Some(fields) = claims.as_object_mut() {
            fields.remove("sub");
        }
    }
    let alg = Alg::of_client(&client);
    let token = match app.keys.current().sign(alg, "logout+jwt", &claims, now) {
        Ok(token) => token,
        Err(error) => {
            tracing::error!(%error, client = %client.client_id, "logout token not signed");
            let retry = retry_at(delivery, now);
            return app
                .store
                .logout_failed(delivery, "signing failed", retry, now)
                .await;
        }
    };
    let sent = http
        .post(&uri)
        .form(&[("logout_token", token.as_str())])
        .send()
        .await;
    // Back-Channel Logout §2.8: 200 when the logout succeeded.
    outcome(app, delivery, sent, now, |status| status.is_success()).await
}

/// 5 s, 10 s, 20 s… up to an hour; none after the last attempt.
fn retry_at(delivery: &LogoutDelivery, now: i64) -> Option<i64> {
    (delivery.attempts < MAX_ATTEMPTS).then(|| {
        let exponent = u32::try_from(delivery.attempts.saturating_sub(1)).unwrap_or(u32::MAX);
        let backoff = FIRST_RETRY_SECS.saturating_mul(2i64.saturating_pow(exponent));
        now + backoff.min(MAX_BACKOFF_SECS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn after(attempts: i64) -> Option<i64> {
        let delivery = LogoutDelivery {
            id: String::new(),
            protocol: LogoutProtocol::Oidc,
            client_id: String::new(),
            session_hash: String::new(),
            subject: String::new(),
            attempts,
            lease: 0,
        };
        retry_at(&delivery, 0)
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(after(1), Some(5));
        assert_eq!(after(2), Some(10));
        assert_eq!(after(5), Some(80));
        assert_eq!(after(11), Some(3600));
        assert_eq!(after(12), None);
    }
}
