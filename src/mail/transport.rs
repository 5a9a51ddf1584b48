use lettre::transport::smtp::authentication::Credentials;
use std::path::Path;

use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use crate::config::{MailSettings, MailTransport, SmtpSecurity};

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("mail settings refused: {0}")]
    Settings(String),
    /// The relay could not be reached or refused for now: the outbox retries.
    #[error("mail not sent: {0}")]
    Transient(String),
    /// The message could not be built from its template: a bug or a bad override.
    #[error("mail not rendered: {0}")]
    Render(String),
    /// The relay refused this message for good (e.g. 5xx on the recipient).
    #[error("mail refused: {0}")]
    Permanent(String),
}

/// A message's SMTP conversation (connect, greeting, TLS, login, envelope, data,
/// quit) may take this many `timeout`s in all.
const SEND_STEPS: u32 = 6;

#[derive(Clone)]
enum Transport {
    /// With how long one message's whole conversation may take.
    Smtp(AsyncSmtpTransport<Tokio1Executor>, std::time::Duration),
    File(AsyncFileTransport<Tokio1Executor>),
}

/// Sends finished messages. Only the outbox worker calls `send`.
#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    from: lettre::message::Mailbox,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.transport {
            Transport::Smtp(..) => "smtp",
            Transport::File(_) => "file",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
}

/// Verifies the relay's certificate against the public roots, plus a private CA if given.
fn tls_parameters(host: &str, ca_file: Option<&Path>) -> Result<TlsParameters, MailError> {
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            MailError::Settings(format!("mail.transport.ca_file {}: {e}", path.display()))
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|e| {
            MailError::Settings(format!("mail.transport.ca_file {}: {e}", path.display()))
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .map_err(|e| MailError::Settings(e.to_string()))
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Mailer, MailError> {
        let from = settings
            .from
            .parse()
            .map_err(|e| MailError::Settings(format!("mail.from: {e}")))?;
        let transport = match &settings.transport {
            MailTransport::File { dir } => {
                std::fs::create_dir_all(dir).map_err(|e| {
                    MailError::Settings(format!("cannot create {}: {e}", dir.display()))
                })?;
                Transport::File(AsyncFileTransport::new(dir))
            }
            MailTransport::Smtp {
                host,
                port,
                security,
                username,
                password,
                ca_file,
                timeout,
            } => {
                let tls_parameters = || tls_parameters(host, ca_file.as_deref());
                let tls = match security {
                    SmtpSecurity::Tls => Tls::Wrapper(tls_parameters()?),
                    SmtpSecurity::Starttls => Tls::Required(tls_parameters()?),
                    SmtpSecurity::None => Tls::None,
                };
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
                    .port(*port)
                    .tls(tls)
                    .timeout(Some(*timeout));
                if let (Some(user), Some(password)) = (username, password) {
                    builder = builder.credentials(Credentials::new(
                        user.clone(),
                        password.expose_secret().to_owned(),
                    ));
                }
                // One connection per message, not lettre's pool: a send cut off
                // half-way (its time ran out, its lease was lost) must not leave a
                // half-written message on a connection the next one reuses.
                Transport::Smtp(builder.build(), *timeout * SEND_STEPS)
            }
        };
        Ok(Mailer { transport, from })
    }

    /// The configured sender, for building messages.
    pub fn from(&self) -> &lettre::message::Mailbox {
        &self.from
    }

    pub async fn send(&self, message: Message) -> Result<(), MailError> {
        match &self.transport {
            Transport::File(file) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| MailError::Transient(e.to_string())),
            // lettre's timeout bounds the connection; this bounds the whole
            // conversation, so a relay that stalls mid-way cannot hold the outbox.
            Transport::Smtp(smtp, budget) => tokio::time::timeout(*budget, smtp.send(message))
                .await
                .map_err(|_| MailError::Transient(format!("the relay took more than {budget:?}")))?
                .map(|_| ())
                .map_err(classify),
        }
    }
}

/// A 5xx refusal of this message gives it up; anything else is retried. A refused
/// login (530, 534, 535, 538) is a 5xx too, but it is the settings' fault, not the
/// message's: the mail waits, and goes out once the password is fixed.
fn classify(error: lettre::transport::smtp::Error) -> MailError {
    let credentials_refused = error
        .status()
        .is_some_and(|code| matches!(code.to_string().as_str(), "530" | "534" | "535" | "538"));
    if error.is_permanent() && !credentials_refused {
        MailError::Permanent(error.to_string())
    } else {
        MailError::Transient(error.to_string())
    }
}
