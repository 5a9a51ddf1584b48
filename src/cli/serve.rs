//! `guichet serve`, `guichet migrate` and `guichet check-config`.

use std::path::PathBuf;

use super::CliError;
use crate::config::Settings;
use crate::store::Store;
use crate::{server, telemetry};

/// Loads the files as `serve` would and says whether they hold.
pub fn check_config(files: &[PathBuf]) -> Result<(), CliError> {
    let settings = Settings::load(files)?;
    println!("ok: profile {} is valid", settings.profile.id);
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings) -> Result<(), CliError> {
    telemetry::init(&settings.log);
    let listen = settings.server.listen;
    let state = server::prepare_to_serve(settings)
        .await
        .map_err(CliError::failed)?;
    let listener = server::bind(listen).await.map_err(CliError::failed)?;
    let shutdown = server::shutdown_signal();
    tracing::info!(%listen, "guichet is listening");
    server::run(listener, state, shutdown)
        .await
        .map_err(CliError::failed)
}

pub async fn migrate(settings: Settings) -> Result<(), CliError> {
    let store = Store::connect(&settings.database)
        .await
        .map_err(CliError::failed)?;
    let result = store.migrate().await;
    store.close().await;
    result.map_err(CliError::failed)?;
    println!("ok: database schema is up to date");
    Ok(())
}
