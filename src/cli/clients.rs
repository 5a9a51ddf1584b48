//! `guichet clients`: the OpenID Connect clients.

use super::{CliError, admin_store};
use crate::config::Settings;
use crate::oidc::clients::{ClientError, NewClient, register};

/// Registers a client; its secret is printed once, now.
pub async fn add(settings: Settings, new: NewClient) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let client_id = new.client_id.clone();
    let registered = register(&store, new, crate::store::unix_now()).await;
    store.close().await;
    match registered {
        Ok(Some(secret)) => {
            println!("client_id:     {client_id}");
            println!("client_secret: {secret}");
            println!("(shown once: only its hash is kept)");
            Ok(())
        }
        Ok(None) => {
            println!("client_id: {client_id} (public: PKCE S256 required, no secret)");
            Ok(())
        }
        Err(ClientError::Store(e)) => Err(CliError::failed(e)),
        // The registration itself is wrong (an id taken, a bad URI): fix and run again.
        Err(e) => Err(CliError::Usage(e.to_string())),
    }
}

/// The registered clients, one per line.
pub async fn list(settings: Settings) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let clients = store.clients().await;
    store.close().await;
    for c in clients.map_err(CliError::failed)? {
        let kind = match (c.secret_hash.is_some(), c.introspection) {
            (true, true) => "confidential, introspection",
            (true, false) => "confidential",
            (false, _) => "public",
        };
        println!(
            "{}  {}  {kind}  {}",
            c.client_id,
            c.name,
            c.redirect_uris.join(" ")
        );
    }
    Ok(())
}

/// One client's registration, never its secret.
pub async fn show(settings: Settings, client_id: &str) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let client = store.client(client_id).await;
    store.close().await;
    let Some(client) = client.map_err(CliError::failed)? else {
        return Err(no_client(client_id));
    };
    println!(
        "{}",
        serde_json::to_string_pretty(&client).unwrap_or_default()
    );
    Ok(())
}

/// Removes a client and revokes every token it holds.
pub async fn remove(settings: Settings, client_id: &str) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let removed = store.remove_client(client_id).await;
    store.close().await;
    if !removed.map_err(CliError::failed)? {
        return Err(no_client(client_id));
    }
    println!("ok: client {client_id} removed, its tokens revoked");
    Ok(())
}

fn no_client(client_id: &str) -> CliError {
    CliError::Failed(format!("no client {client_id}"))
}
