//! Reused LDAP connections. Each pooled connection is used by one operation at a time,
//! so a user bind on an auth connection never changes the identity of another request.

use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{self, Metrics, RecycleError, RecycleResult};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::DirectoryError;

pub type Pool = managed::Pool<Manager>;

/// Opens connections to one directory, bound as `bind` when given (the service
/// account) or left anonymous (for verifying user passwords by binding).
pub struct Manager {
    pub url: Url,
    pub starttls: bool,
    pub tls: Option<Arc<rustls_ldap::ClientConfig>>,
    pub timeout: Duration,
    pub bind: Option<(String, SecretString)>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("url", &self.url.as_str())
            .field("bind_dn", &self.bind.as_ref().map(|(dn, _)| dn))
            .finish()
    }
}

impl managed::Manager for Manager {
    type Type = Ldap;
    type Error = DirectoryError;

    async fn create(&self) -> Result<Ldap, DirectoryError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(tls) = &self.tls {
            settings = settings.set_config(tls.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::from_url_with_settings(settings, &self.url)
            .await
            .map_err(|e| DirectoryError::Unavailable(format!("connect to {}: {e}", self.url)))?;
        ldap3::drive!(conn);
        if let Some((dn, password)) = &self.bind {
            let result = ldap
                .with_timeout(self.timeout)
                .simple_bind(dn, password.expose_secret())
                .await
                .map_err(DirectoryError::from)?;
            if result.rc != 0 {
                return Err(DirectoryError::ServiceBind(result.rc));
            }
        }
        Ok(ldap)
    }

    async fn recycle(&self, ldap: &mut Ldap, _: &Metrics) -> RecycleResult<DirectoryError> {
        if ldap.is_closed() {
            return Err(RecycleError::message("connection closed by the server"));
        }
        Ok(())
    }
}

/// Trust only the CAs in a PEM file, for a directory signed by an internal CA.
pub fn tls_with_ca(path: &std::path::Path) -> Result<Arc<rustls_ldap::ClientConfig>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = rustls_pemfile_ldap::certs(&mut pem.as_slice())
        .map_err(|e| format!("{} is not PEM: {e}", path.display()))?;
    let mut roots = rustls_ldap::RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(&certs);
    if added == 0 {
        return Err(format!("{} holds no usable certificate", path.display()));
    }
    let config = rustls_ldap::ClientConfig::builder()
        .with_safe_defaults()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
