//! `guichet keys`: the OpenID Connect signing keys.

use std::time::Duration;

use super::{CliError, admin_store, when};
use crate::config::Settings;
use crate::oidc::keyring::PUBLISH_AHEAD_SECS;
use crate::oidc::keys::{self, Sealer};

/// When the new keys take over from the old ones.
#[derive(Debug, Clone, Copy)]
pub enum Handover {
    /// After this long: clients that cached the JWKS fetch the new keys first.
    Ahead(Duration),
    /// Now: a key is compromised.
    Immediately,
}

impl Handover {
    /// The seconds before the new keys sign; refused below what caches need.
    fn seconds(self) -> Result<i64, CliError> {
        match self {
            Handover::Immediately => Ok(0),
            Handover::Ahead(ahead) if ahead.as_secs() >= PUBLISH_AHEAD_SECS => {
                Ok(ahead.as_secs() as i64)
            }
            Handover::Ahead(_) => Err(CliError::Usage(format!(
                "--publish-ahead must be at least {PUBLISH_AHEAD_SECS}s (clients keep the JWKS \
                 {}s, and each instance reads the keys again every {}s); use --immediately \
                 for a compromised key",
                crate::oidc::keyring::JWKS_MAX_AGE_SECS,
                crate::oidc::keyring::RELOAD_SECS
            ))),
        }
    }
}

/// New signing keys, published now; they sign after `handover`, and the old ones
/// until then, which stay published for `overlap` more so tokens they signed
/// still verify.
pub async fn rotate(
    settings: Settings,
    handover: Handover,
    overlap: Duration,
) -> Result<(), CliError> {
    let ahead = handover.seconds()?;
    let store = admin_store(&settings).await?;
    let now = crate::store::unix_now();
    let overlap = overlap.as_secs() as i64;
    let rotated = match Sealer::new(settings.oidc.key_encryption_key.as_ref()) {
        Ok(sealer) => keys::rotate(&store, &sealer, now, ahead, overlap).await,
        Err(e) => Err(e),
    };
    store.close().await;
    for key in rotated.map_err(CliError::failed)? {
        let from = match key.signs_from {
            at if at <= now => "now".to_owned(),
            at => format!("from {}", when(at)),
        };
        println!(
            "ok: new {} key {} signs {from}; the one it replaces stays published until {}",
            key.alg.name(),
            key.kid,
            when(key.signs_from + overlap)
        );
    }
    Ok(())
}

/// The published keys, never their private part.
pub async fn list(settings: Settings) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let now = crate::store::unix_now();
    let published = store.published_keys(now).await;
    store.close().await;
    for key in published.map_err(CliError::failed)? {
        // Retired first: a key retired before its time came never signs.
        let state = match (key.retired_at, key.published_until) {
            (Some(retired), until) if retired <= now || retired <= key.signs_from => {
                let until =
                    until.map_or_else(String::new, |at| format!(", published until {}", when(at)));
                format!("retired {}{until}", when(retired))
            }
            _ if key.signs_from > now => format!("published, signs from {}", when(key.signs_from)),
            (Some(retired), _) => format!("active until {}", when(retired)),
            (None, _) => "active".to_owned(),
        };
        println!(
            "{}  {:<6} created {}  {state}",
            key.kid,
            key.alg,
            when(key.created_at)
        );
    }
    Ok(())
}
