//! `guichet import FILE.csv`: entries from the registration office's export.

use std::path::Path;

use super::CliError;
use crate::config::{ConfigError, Settings};
use crate::directory::Directory;
use crate::flows::import;
use crate::hashing::Hasher;
use crate::server;

/// Imports the good rows and reports the bad ones, each with its line number.
pub async fn run(settings: Settings, file: &Path) -> Result<(), CliError> {
    let bytes = std::fs::read(file)
        .map_err(|e| CliError::Failed(format!("cannot read {}: {e}", file.display())))?;
    let parsed =
        import::parse(&bytes).map_err(|e| CliError::Failed(format!("{}: {e}", file.display())))?;
    if settings.directory.import.is_none() {
        return Err(CliError::Config(ConfigError::new(
            "directory.import",
            "expected bind_dn and bind_password of the account allowed to create entries",
        )));
    }
    server::install_crypto_provider();
    let directory = Hasher::new(&settings.hashing)
        .map_err(|e| e.to_string())
        .and_then(|h| Directory::new(&settings.directory, h).map_err(|e| e.to_string()))
        .map_err(|e| CliError::Failed(format!("directory: {e}")))?;
    directory
        .ping()
        .await
        .map_err(|e| CliError::Failed(format!("directory: {e}")))?;
    let report = import::apply(&directory, &settings.profile, parsed)
        .await
        .map_err(CliError::failed)?;
    for (line, problem) in &report.rejected {
        println!("line {line}: {problem}");
    }
    println!(
        "{} created, {} updated, {} unchanged, {} rejected",
        report.created,
        report.updated,
        report.unchanged,
        report.rejected.len()
    );
    if report.rejected.is_empty() {
        Ok(())
    } else {
        Err(CliError::RowsRejected(report.rejected.len()))
    }
}
