//! `guichet cas-services`: the CAS services (the ENT, older campus applications).

use super::{CliError, admin_store};
use crate::cas::services::{CasService, NewService};
use crate::config::Settings;

/// Registers a service, checked against the claim mapping of the settings.
pub async fn add(settings: Settings, new: NewService) -> Result<(), CliError> {
    let claims = settings.oidc.claims.claim_names();
    let service = new
        .checked(&claims, crate::store::unix_now())
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let store = admin_store(&settings).await?;
    let added = store.add_cas_service(&service).await;
    store.close().await;
    if !added.map_err(CliError::failed)? {
        let taken = format!("a CAS service named {} exists already", service.name);
        return Err(CliError::Usage(taken));
    }
    println!(
        "ok: CAS service {} registered ({})",
        service.name,
        describe(&service)
    );
    Ok(())
}

/// The registered services, one per line.
pub async fn list(settings: Settings) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let services = store.cas_services().await;
    store.close().await;
    for service in services.map_err(CliError::failed)? {
        println!(
            "{}  {}  {}",
            service.name,
            service.display_name,
            describe(&service)
        );
    }
    Ok(())
}

/// One service's registration.
pub async fn show(settings: Settings, name: &str) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let service = store.cas_service(name).await;
    store.close().await;
    let Some(service) = service.map_err(CliError::failed)? else {
        return Err(no_service(name));
    };
    let shown = serde_json::json!({
        "name": service.name,
        "display_name": service.display_name,
        "match": service.matching.kind(),
        "url": service.matching.as_str(),
        "attributes": service.attributes.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "proxy_callbacks": service.proxy_callbacks.as_ref().map(|p| p.as_str()),
        "single_logout": service.single_logout.as_ref().map(|s| s.as_str()),
        "created_at": service.created_at,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&shown).unwrap_or_default()
    );
    Ok(())
}

/// Removes a service; its outstanding tickets die with it.
pub async fn remove(settings: Settings, name: &str) -> Result<(), CliError> {
    let store = admin_store(&settings).await?;
    let removed = store
        .remove_cas_service(name, crate::store::unix_now())
        .await;
    store.close().await;
    if !removed.map_err(CliError::failed)? {
        return Err(no_service(name));
    }
    println!("ok: CAS service {name} removed, its outstanding tickets void");
    Ok(())
}

fn describe(service: &CasService) -> String {
    let mut parts = vec![format!(
        "{} {}",
        service.matching.kind(),
        service.matching.as_str()
    )];
    if !service.attributes.is_empty() {
        let names: Vec<&str> = service.attributes.iter().map(|a| a.as_str()).collect();
        parts.push(format!("attributes {}", names.join(",")));
    }
    if service.proxy_callbacks.is_some() {
        parts.push("proxy".into());
    }
    if let Some(logout) = &service.single_logout {
        parts.push(format!("single logout {}", logout.as_str()));
    }
    parts.join(", ")
}

fn no_service(name: &str) -> CliError {
    CliError::Failed(format!("no CAS service {name}"))
}
