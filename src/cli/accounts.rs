//! `guichet accounts`: helpdesk and admin actions on student accounts.

use super::{CliError, when};
use crate::config::Settings;
use crate::domain::Login;
use crate::flows::help::{Diagnostic, Help};
use crate::flows::invitation::Resent;
use crate::server;

/// Queues the invitation again; a running `guichet serve` sends it.
pub async fn resend_invitation(settings: Settings, login: &str) -> Result<(), CliError> {
    let Ok(login) = login.parse::<Login>() else {
        return Err(CliError::Usage(format!(
            "`{login}` is not a login (letters, digits, dots, dashes)"
        )));
    };
    let state = server::prepare(settings).await.map_err(CliError::failed)?;
    let outcome = server::invitations(&state, &[])
        .resend(&login, crate::store::unix_now())
        .await;
    state.store.close().await;
    match outcome.map_err(CliError::failed)? {
        Resent::Sent { email } => {
            println!("ok: invitation for {login} queued to {email}");
            Ok(())
        }
        Resent::UnknownLogin => Err(CliError::Failed(format!(
            "no account has the login {login}"
        ))),
        Resent::NotAwaiting => Err(CliError::Failed(format!(
            "{login} is not awaiting activation"
        ))),
        Resent::NoPersonalEmail => Err(CliError::Failed(format!(
            "{login} has no personal e-mail (supannMailPerso)"
        ))),
        Resent::SharedAddress { logins } => Err(CliError::Failed(format!(
            "nothing sent: {login}'s personal e-mail is shared by {}; give each account its own",
            logins.join(", ")
        ))),
    }
}

/// The helpdesk diagnostic of what was typed: a login, a student number or an e-mail.
pub async fn show(settings: Settings, typed: &str, json: bool) -> Result<(), CliError> {
    let state = server::prepare(settings).await.map_err(CliError::failed)?;
    let help = Help {
        store: &state.store,
        directory: &state.directory,
        profile: &state.settings.profile,
        outbox: state.outbox.waker(),
        origin: Default::default(),
    };
    let diagnostic = help.diagnose(typed).await;
    state.store.close().await;
    let diagnostic = diagnostic.map_err(CliError::failed)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&diagnostic).unwrap_or_default()
        );
    } else {
        print_diagnostic(&diagnostic);
    }
    if diagnostic.accounts.is_empty() {
        return Err(CliError::Failed(format!("no account answers to {typed}")));
    }
    Ok(())
}

fn print_diagnostic(diagnostic: &Diagnostic) {
    if diagnostic.accounts.len() > 1 {
        println!(
            "warning: {} accounts answer to {}",
            diagnostic.accounts.len(),
            diagnostic.typed
        );
    }
    for account in &diagnostic.accounts {
        println!("login:           {}", account.login);
        println!("dn:              {}", account.dn);
        println!(
            "name:            {}",
            account.display_name.as_deref().unwrap_or("-")
        );
        println!("state:           {}", account.state);
        println!(
            "personal e-mail: {}",
            account.personal_email.as_deref().unwrap_or("-")
        );
        println!(
            "student number:  {}",
            account.student_id.as_deref().unwrap_or("-")
        );
        println!(
            "terms accepted:  {}",
            account.terms_version.as_deref().unwrap_or("-")
        );
        println!("last mails:");
        for mail in &account.mails {
            let outcome = match (mail.sent_at, mail.failed_at) {
                (Some(at), _) => format!("sent {}", when(at)),
                (None, Some(_)) => format!("FAILED: {}", mail.last_error.as_deref().unwrap_or("-")),
                (None, None) => format!(
                    "pending after {} attempt(s){}",
                    mail.attempts,
                    mail.last_error
                        .as_deref()
                        .map(|e| format!(", last error: {e}"))
                        .unwrap_or_default()
                ),
            };
            println!(
                "  {}  {:<20} to {}  {}",
                when(mail.created_at),
                mail.kind,
                mail.recipient,
                outcome
            );
        }
        if account.mails.is_empty() {
            println!("  none");
        }
        println!("last failures:");
        for failure in &account.failures {
            println!(
                "  {}  {:<24} {}  from {}",
                when(failure.at),
                failure.kind,
                failure.outcome,
                failure.client_ip.as_deref().unwrap_or("-")
            );
        }
        if account.failures.is_empty() {
            println!("  none");
        }
    }
}
