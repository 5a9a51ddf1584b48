use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
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

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
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
            Transport::Smtp(_) => "smtp",
            Transport::File(_) => "file",
        };
        f.debug_struct("Mailer").field("transport", &kind).finish()
    }
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
                timeout,
            } => {
                let tls_parameters = || {
                    TlsParameters::new(host.clone()).map_err(|e| MailError::Settings(e.to_string()))
                };
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
                Transport::Smtp(builder.build())
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
            Transport::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    MailError::Permanent(e.to_string())
                } else {
                    MailError::Transient(e.to_string())
                }
            }),
        }
    }
}
