//! The OpenID Connect provider: signing keys, registered clients, claims, the
//! protocol's requests, answers and errors, and the provider's decisions
//! (`provider`). Its HTTP side is `web::oidc`; its pages (login) are
//! Guichet's own, and it shares Guichet's session.

pub(crate) mod backchannel;
pub mod claims;
pub mod clients;
mod error;
pub mod keyring;
pub mod keys;
pub(crate) mod login_asked;
pub mod protocol;
pub mod provider;
pub mod responses;

pub use error::{OAuthCode, OAuthError};
pub use provider::sid;

use crate::app::App;

/// The issuer: the public URL without its trailing slash.
pub fn issuer(app: &App) -> String {
    app.public_url().as_str().trim_end_matches('/').to_owned()
}
