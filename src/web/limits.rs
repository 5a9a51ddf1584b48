//! Rate limits on identity matching and password steps: per client address, per
//! identifier and for the whole service, counted in SQL so all instances share them.
//! Identifiers are hashed before they become bucket names: the table holds no e-mail.

use std::net::IpAddr;

use sha2::{Digest, Sha256};

use super::AppState;
use super::error::WebError;
use crate::config::Limit;
use crate::store::{AuditEvent, Origin, unix_now};

/// Counts one attempt of `step` and refuses it if any limit is exceeded.
pub async fn check(
    state: &AppState,
    step: &str,
    client: IpAddr,
    identifier: &str,
) -> Result<(), WebError> {
    let now = unix_now();
    for (bucket, limit) in buckets(state, step, client, identifier) {
        let hits = state
            .store
            .hit(&bucket, limit.window.as_secs() as i64, now)
            .await?;
        if hits > limit.max {
            return refuse(state, step, client, &bucket, hits, limit).await;
        }
    }
    Ok(())
}

/// Gives back the hit [`check`] counted for an attempt that must not use up the
/// limits: sign-in counts every attempt before the password is checked (so that
/// parallel guesses are all counted), then gives a successful one back, so that
/// students behind one campus address, or one student signing in on several
/// devices, are never stopped by successful sign-ins.
pub async fn refund(
    state: &AppState,
    step: &str,
    client: IpAddr,
    identifier: &str,
) -> Result<(), WebError> {
    let now = unix_now();
    for (bucket, limit) in buckets(state, step, client, identifier) {
        state
            .store
            .unhit(&bucket, limit.window.as_secs() as i64, now)
            .await?;
    }
    Ok(())
}

fn buckets(state: &AppState, step: &str, client: IpAddr, identifier: &str) -> [(String, Limit); 3] {
    let limits = &state.settings.limits;
    let digest = hex::encode(&Sha256::digest(identifier.trim().to_lowercase().as_bytes())[..16]);
    [
        (format!("{step}:ip:{}", network(client)), limits.per_address),
        (format!("{step}:id:{digest}"), limits.per_identifier),
        (format!("{step}:all"), limits.global),
    ]
}

/// The network a client address counts for. An IPv6 host usually holds a whole
/// /64 and can rotate addresses in it at will, so its bucket is the /64; an
/// IPv4-mapped address counts as the IPv4 one.
fn network(client: IpAddr) -> String {
    match client {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                format!("{}/64", std::net::Ipv6Addr::from(prefix))
            }
        },
    }
}

async fn refuse(
    state: &AppState,
    step: &str,
    client: IpAddr,
    bucket: &str,
    hits: i64,
    limit: Limit,
) -> Result<(), WebError> {
    let kind = bucket.split(':').nth(1).unwrap_or_default();
    tracing::warn!(step, kind, "rate limit reached");
    // Only the first refusal of a window is recorded: a flood must not flood
    // the audit log too.
    if hits == limit.max + 1 {
        let origin = Origin {
            client_ip: Some(client),
            request_id: None,
        };
        let event = AuditEvent::new("rate_limit", "refused")
            .detail(serde_json::json!({ "step": step, "limit": kind }));
        state.store.audit(&origin, event).await?;
    }
    Err(WebError::TooManyAttempts)
}

#[cfg(test)]
mod tests {
    use super::network;

    #[test]
    fn an_ipv6_host_counts_for_its_64_and_ipv4_for_itself() {
        let a = network("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = network("2001:db8:1:2:ffff:1:2:3".parse().unwrap());
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_eq!(a, b, "addresses rotated inside one /64 share a bucket");
        assert_ne!(a, network("2001:db8:1:3::1".parse().unwrap()));
        assert_eq!(network("192.0.2.7".parse().unwrap()), "192.0.2.7");
        assert_eq!(network("::ffff:192.0.2.7".parse().unwrap()), "192.0.2.7");
    }
}
