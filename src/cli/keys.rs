//! `guichet keys`: the OpenID Connect signing keys.

use std::time::Duration;

use super::{CliError, admin_store, when};
use crate::config::Settings;
use crate::oidc::keys::{self, Sealer};

/// New signing keys; the old ones stop signing at once and stay published for
/// `overlap`, so tokens they signed still verify.
pub async fn rotate(settings: Settings, overlap: Duration) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let now = crate::store::unix_now();
    let overlap = overlap.as_secs() as i64;
    let rotated = match Sealer::new(settings.oidc.key_encryption_key.as_ref()) {
        Ok(sealer) => keys::rotate(&store, &sealer, now, overlap).await,
        Err(e) => Err(e),
    };
    store.close().await;
    let kids = rotated.map_err(CliError::failed)?;
    println!(
        "ok: new signing keys {}; the previous ones stay published until {}",
        kids.join(", "),
        when(now + overlap)
    );
    Ok(())
}

/// The published keys, never their private part.
pub async fn list(settings: Settings) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let now = crate::store::unix_now();
    let published = store.published_keys(now).await;
    store.close().await;
    for key in published.map_err(CliError::failed)? {
        let state = key
            .retired_at
            .map_or_else(|| "active".to_owned(), |at| format!("retired {}", when(at)));
        println!(
            "{}  {:<6} created {}  {state}",
            key.kid,
            key.alg,
            when(key.created_at)
        );
    }
    Ok(())
}
