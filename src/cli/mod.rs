//! The subcommands of the `guichet` command, once parsed: each returns `Ok(())` or a
//! [`CliError`], and [`finish`] is the one place that turns the outcome into a
//! message and an exit code.

pub mod accounts;
pub mod audit;
pub mod cas_services;
pub mod clients;
pub mod dev;
pub mod import;
pub mod keys;
pub mod serve;

use std::fmt::Display;
use std::process::ExitCode;

use crate::config::{ConfigError, Settings};
use crate::store::Store;

/// Why a subcommand did not succeed. The exit codes are documented in the README
/// (Commands); scripts and tests rely on them.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The settings are wrong: exit 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An argument is not what the command expects (a login, a time, a client
    /// registration): exit 2, as bad settings, since running again as is fails again.
    #[error("{0}")]
    Usage(String),
    /// A service could not be reached or refused, or what was named does not exist:
    /// exit 1.
    #[error("{0}")]
    Failed(String),
    /// Some rows of an import were rejected (the others were imported); every
    /// rejected row was already reported on standard output: exit 3.
    #[error("{0} row(s) rejected")]
    RowsRejected(usize),
}

impl CliError {
    /// A failure, with the message of whatever failed.
    pub fn failed(error: impl Display) -> CliError {
        CliError::Failed(error.to_string())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Config(_) | CliError::Usage(_) => 2,
            CliError::RowsRejected(_) => 3,
        }
    }

    /// What standard error gets, if anything beyond what the command printed.
    fn message(&self) -> Option<String> {
        match self {
            CliError::RowsRejected(_) => None,
            other => Some(format!("error: {other}")),
        }
    }
}

/// The end of every subcommand: one line on standard error for a failure, and the
/// exit code.
pub fn finish(outcome: Result<(), CliError>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            if let Some(message) = error.message() {
                eprintln!("{message}");
            }
            ExitCode::from(error.exit_code())
        }
    }
}

/// The store, migrated: admin commands may run before the first `serve`.
async fn admin_store(settings: &Settings) -> Result<Store, CliError> {
    let store = Store::connect(&settings.database)
        .await
        .map_err(CliError::failed)?;
    if let Err(e) = store.migrate().await {
        store.close().await;
        return Err(CliError::failed(e));
    }
    Ok(store)
}

/// A time for people: RFC 3339, or the raw seconds if they are out of range.
fn when(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| seconds.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_exit_code() {
        let config = CliError::Config(ConfigError::new("server.listen", "expected host:port"));
        assert_eq!(config.exit_code(), 2);
        assert_eq!(CliError::Usage("bad login".into()).exit_code(), 2);
        assert_eq!(CliError::failed("directory: down").exit_code(), 1);
        assert_eq!(CliError::RowsRejected(2).exit_code(), 3);
    }

    #[test]
    fn rejected_rows_add_no_error_line() {
        assert_eq!(CliError::RowsRejected(2).message(), None);
        assert_eq!(
            CliError::failed("no client moodle").message().as_deref(),
            Some("error: no client moodle")
        );
    }
}
