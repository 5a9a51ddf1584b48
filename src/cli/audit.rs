//! `guichet audit`: the audit log, newest first.

use super::{CliError, when};
use crate::config::Settings;
use crate::domain::Login;
use crate::store::{AuditFilter, Store};

/// The filters as typed on the command line.
#[derive(Debug)]
pub struct Query {
    pub account: Option<String>,
    pub kind: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub failures_only: bool,
    pub limit: i64,
}

pub async fn run(settings: Settings, query: Query, json: bool) -> Result<(), CliError> {
    let filter = AuditFilter {
        account: query.account.map(|a| account_key(&settings, &a)),
        kind: query.kind,
        since: parse_when(query.since.as_deref())?,
        until: parse_when(query.until.as_deref())?,
        failures_only: query.failures_only,
        limit: query.limit,
    };
    let store = Store::connect(&settings.database)
        .await
        .map_err(CliError::failed)?;
    let records = store.audit_log(&filter).await;
    store.close().await;
    let records = records.map_err(CliError::failed)?;
    for record in &records {
        if json {
            println!("{}", serde_json::to_string(record).unwrap_or_default());
        } else {
            println!(
                "{}  {:<24} {:<16} {}  {}  {}",
                when(record.at),
                record.kind,
                record.outcome,
                record.account.as_deref().unwrap_or("-"),
                record.client_ip.as_deref().unwrap_or("-"),
                record.detail
            );
        }
    }
    if !json {
        eprintln!("{} event(s)", records.len());
    }
    Ok(())
}

/// A time filter: a date, an RFC 3339 time, or an age back from now.
fn parse_when(raw: Option<&str>) -> Result<Option<i64>, CliError> {
    use time::format_description::well_known::Rfc3339;
    let Some(raw) = raw else { return Ok(None) };
    if let Ok(at) = time::OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(Some(at.unix_timestamp()));
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(date) = time::Date::parse(raw, &date_format) {
        return Ok(Some(date.midnight().assume_utc().unix_timestamp()));
    }
    let age = humantime_serde::re::humantime::parse_duration(raw).map_err(|_| {
        CliError::Usage(format!(
            "`{raw}` is not a date (2026-11-20), a time (2026-11-20T08:00:00Z) or an age (24h)"
        ))
    })?;
    // An age of billions of years overflows the clock's arithmetic: refused, not a panic.
    i64::try_from(age.as_secs())
        .ok()
        .and_then(|secs| crate::store::unix_now().checked_sub(secs))
        .map(Some)
        .ok_or_else(|| CliError::Usage(format!("`{raw}` goes back further than any record")))
}

/// Events name an account by its DN; admins type its login.
fn account_key(settings: &Settings, typed: &str) -> String {
    match typed.parse::<Login>() {
        Ok(login) if !typed.contains('@') && !typed.contains('=') => {
            format!("uid={},{}", login.as_str(), settings.directory.people_dn)
        }
        _ => typed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn an_age_past_the_clock_range_is_refused_not_a_panic() {
        for raw in [
            "9223372036854775808s",
            "18446744073709551615s",
            "500000000000y",
        ] {
            assert!(
                matches!(parse_when(Some(raw)), Err(CliError::Usage(_))),
                "{raw}"
            );
        }
        assert!(parse_when(Some("24h")).unwrap().is_some());
    }

    proptest! {
        #[test]
        fn a_time_filter_is_a_time_or_a_usage_error(raw in prop_oneof![
            ".{0,30}",
            "[0-9]{1,22}(ns|us|ms|s|m|h|d|w|M|y)( [0-9]{1,20}[smhdy])?",
            "-?[0-9]{1,6}-[0-9]{1,2}-[0-9]{1,2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}([+-][0-9]{2}:[0-9]{2}|Z))?",
        ]) {
            let parsed = parse_when(Some(&raw));
            prop_assert!(matches!(parsed, Ok(Some(_)) | Err(CliError::Usage(_))));
        }
    }
}
