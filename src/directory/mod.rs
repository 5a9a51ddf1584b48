//! The directory (OpenLDAP), system of record for accounts: lookups, writes of the
//! password and account state, and password checks by binding as the user. Every value
//! placed in a filter or DN is escaped here, and nowhere else.

mod account;
mod pool;

use std::time::Duration;

use deadpool::Runtime;
use deadpool::managed::{PoolError, Timeouts};
use ldap3::exop::PasswordModify;
use ldap3::{Ldap, LdapError, Mod, Scope, dn_escape, ldap_escape};
use secrecy::SecretString;

pub use account::{Account, AccountChange, generalized_time};

use crate::config::{DirectorySettings, PasswordWrite};
use std::collections::HashSet;

use crate::domain::{AccountState, Email, Ine, Login, Password, StudentId};
use crate::gate::{Gate, Pass};
use crate::hashing::{HashError, Hasher};

/// At most this many entries are read for a lookup that should find one: enough to see
/// a duplicate, never a whole subtree.
const LOOKUP_LIMIT: i32 = 5;
/// Entries per page when listing many accounts (below slapd's default size limit).
const PAGE_SIZE: i32 = 200;

/// A new password ready for the directory (see [`Directory::prepare_password`]).
/// Never printed.
#[derive(Clone)]
pub enum NewSecret {
    Hashed(String),
    Clear(Password),
}

impl std::fmt::Debug for NewSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewSecret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// A write was sent but its answer never came (the connection died, or the
    /// directory took longer than `timeout`): it may have been applied.
    #[error("directory did not confirm a write: {0}")]
    Unconfirmed(String),
    #[error("the service account could not bind (rc={0})")]
    ServiceBind(u32),
    #[error("directory refused the operation (rc={rc}): {message}")]
    Refused { rc: u32, message: String },
    /// Every bind connection is in use and the queue for them is full, or the wait
    /// for one ran out: nothing was asked of the directory.
    #[error("too many password checks at once; try again shortly")]
    Busy,
    #[error(transparent)]
    Hashing(#[from] HashError),
}

impl DirectoryError {
    /// Whether trying again later may succeed (outage, timeout, overload).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DirectoryError::Unavailable(_)
                | DirectoryError::Unconfirmed(_)
                | DirectoryError::Busy
                | DirectoryError::Hashing(HashError::Busy)
        )
    }
}

impl From<LdapError> for DirectoryError {
    fn from(error: LdapError) -> Self {
        match error {
            LdapError::LdapResult { result } => DirectoryError::Refused {
                rc: result.rc,
                message: result.text,
            },
            other => DirectoryError::Unavailable(other.to_string()),
        }
    }
}

impl From<PoolError<DirectoryError>> for DirectoryError {
    fn from(error: PoolError<DirectoryError>) -> Self {
        match error {
            PoolError::Backend(inner) => inner,
            other => DirectoryError::Unavailable(other.to_string()),
        }
    }
}

/// The outcome of checking a password by binding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindOutcome {
    Accepted,
    /// Wrong password, or no password set (rc 49, invalidCredentials).
    Rejected,
}

/// A student entry as the registration office's export describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewStudent {
    pub login: Login,
    pub student_id: StudentId,
    pub ine: Ine,
    pub given_name: String,
    pub surname: String,
    pub personal_email: Email,
}

#[derive(Clone)]
pub struct Directory {
    service: pool::Pool,
    auth: pool::Pool,
    /// Bounds the binds on `auth`: the pool's own wait would queue them without bound.
    binds: Gate,
    /// Bounds the password checks in progress, from their first step (the rate
    /// limits' SQL) to the bind, to what `binds` can hold: one past that is refused
    /// before it does any work, instead of queueing on the database first.
    checks: Gate,
    /// Bound as the import account, when one is configured.
    import: Option<pool::Pool>,
    people_dn: String,
    timeout: Duration,
    password_write: PasswordWrite,
    hasher: Hasher,
    /// Bound to when a login is unknown (see [`Directory::bind_decoy`]).
    decoy_dn: Option<String>,
    /// What account searches ask for: [`account::ATTRIBUTES`] and those the
    /// claims mapping reads.
    attributes: Vec<String>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("people_dn", &self.people_dn)
            .field("password_write", &self.password_write)
            .finish()
    }
}

impl Directory {
    /// Reads `extra` attributes too (those the OIDC claims mapping needs).
    pub fn read_also(mut self, extra: &[String]) -> Directory {
        for name in extra {
            if !self.attributes.iter().any(|a| a.eq_ignore_ascii_case(name)) {
                self.attributes.push(name.clone());
            }
        }
        self
    }

    /// Builds the pools; no connection is opened until `ping` or the first operation.
    pub fn new(settings: &DirectorySettings, hasher: Hasher) -> Result<Directory, DirectoryError> {
        let tls = settings
            .ca_path
            .as_deref()
            .map(pool::tls_with_ca)
            .transpose()
            .map_err(DirectoryError::Unavailable)?;
        let manager = |bind: Option<(String, SecretString)>| pool::Manager {
            url: settings.url.clone(),
            starttls: settings.starttls,
            tls: tls.clone(),
            timeout: settings.timeout,
            bind,
        };
        let build = |manager: pool::Manager| {
            pool::Pool::builder(manager)
                .max_size(settings.pool_size)
                .runtime(Runtime::Tokio1)
                .timeouts(Timeouts {
                    wait: Some(settings.timeout),
                    create: Some(settings.timeout),
                    recycle: Some(settings.timeout),
                })
                .build()
                .map_err(|e| DirectoryError::Unavailable(e.to_string()))
        };
        Ok(Directory {
            service: build(manager(Some((
                settings.bind_dn.clone(),
                settings.bind_password.clone(),
            ))))?,
            auth: build(manager(None))?,
            binds: Gate::new(
                settings.pool_size,
                settings.bind_queue,
                Some(settings.bind_wait),
            ),
            checks: Gate::new(settings.pool_size + settings.bind_queue, 0, None),
            import: settings
                .import
                .as_ref()
                .map(|account| {
                    build(manager(Some((
                        account.bind_dn.clone(),
                        account.bind_password.clone(),
                    ))))
                })
                .transpose()?,
            people_dn: settings.people_dn.clone(),
            timeout: settings.timeout,
            password_write: settings.password_write,
            hasher,
            decoy_dn: settings.decoy_dn.clone(),
            attributes: account::ATTRIBUTES
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
        })
    }

    /// Checks that the service account can read the people branch.
    pub async fn ping(&self) -> Result<(), DirectoryError> {
        let mut ldap = self.service.get().await?;
        ldap.with_timeout(self.timeout)
            .search(&self.people_dn, Scope::Base, "(objectClass=*)", vec!["1.1"])
            .await?
            .success()?;
        Ok(())
    }

    /// The accounts whose personal e-mail is `email` (matching ignores case). More
    /// than one means the directory holds a duplicate that a human must resolve.
    pub async fn find_by_personal_email(
        &self,
        email: &Email,
    ) -> Result<Vec<Account>, DirectoryError> {
        let filter = format!("(supannMailPerso={})", ldap_escape(email.as_str()));
        self.find(&filter).await
    }

    /// The accounts with this student number and INE (both must match).
    pub async fn find_by_student_and_ine(
        &self,
        student: &StudentId,
        ine: &Ine,
    ) -> Result<Vec<Account>, DirectoryError> {
        let filter = format!(
            "(&(supannEtuId={})(supannCodeINE={}))",
            ldap_escape(student.as_str()),
            ldap_escape(ine.as_str())
        );
        self.find(&filter).await
    }

    pub async fn find_by_student_id(
        &self,
        student: &StudentId,
    ) -> Result<Vec<Account>, DirectoryError> {
        self.find(&format!("(supannEtuId={})", ldap_escape(student.as_str())))
            .await
    }

    pub async fn find_by_login(&self, login: &Login) -> Result<Option<Account>, DirectoryError> {
        let mut found = self
            .find(&format!("(uid={})", ldap_escape(login.as_str())))
            .await?;
        Ok(if found.len() == 1 { found.pop() } else { None })
    }

    /// The account at `dn`, if it is still there (an admin may have removed it).
    pub async fn read(&self, dn: &str) -> Result<Option<Account>, DirectoryError> {
        let mut ldap = self.service.get().await?;
        let result = ldap
            .with_timeout(self.timeout)
            .search(
                dn,
                Scope::Base,
                "(objectClass=inetOrgPerson)",
                self.attributes.clone(),
            )
            .await?;
        // noSuchObject (32): the entry is gone.
        if result.1.rc == 32 {
            return Ok(None);
        }
        let (entries, _) = result.success()?;
        Ok(entries
            .into_iter()
            .next()
            .and_then(|entry| Account::from_result(entry).ok()))
    }

    /// Every account in one of `states` (short forms such as `I:SupannCree`) that has
    /// a personal e-mail, read in pages so a directory of any size is covered.
    pub async fn find_in_states(&self, states: &[String]) -> Result<Vec<Account>, DirectoryError> {
        let wanted: String = states
            .iter()
            .map(|s| {
                format!(
                    "(supannRessourceEtat={{COMPTE}}{})",
                    ldap_escape(s.as_str())
                )
            })
            .collect();
        let filter = format!("(&(objectClass=inetOrgPerson)(supannMailPerso=*)(|{wanted}))");
        let mut ldap = self.service.get().await?;
        let adapters: Vec<Box<dyn ldap3::adapters::Adapter<_, _>>> = vec![
            Box::new(ldap3::adapters::EntriesOnly::new()),
            Box::new(ldap3::adapters::PagedResults::new(PAGE_SIZE)),
        ];
        let mut stream = ldap
            .with_timeout(self.timeout)
            .streaming_search_with(
                adapters,
                &self.people_dn,
                Scope::Subtree,
                &filter,
                self.attributes.clone(),
            )
            .await?;
        let mut accounts = Vec::new();
        while let Some(entry) = stream.next().await? {
            if let Ok(account) = Account::from_result(entry) {
                accounts.push(account);
            }
        }
        stream.finish().await.success()?;
        Ok(accounts)
    }

    /// Creates a student entry awaiting activation, as the import account.
    pub async fn add_student(
        &self,
        student: &NewStudent,
        state: &AccountState,
    ) -> Result<(), DirectoryError> {
        let pool = self.import.as_ref().ok_or_else(no_import_account)?;
        let full_name = format!("{} {}", student.given_name, student.surname);
        let one = |name: &str, value: &str| (name.to_owned(), HashSet::from([value.to_owned()]));
        let attributes = vec![
            (
                "objectClass".to_owned(),
                HashSet::from(["inetOrgPerson", "eduPerson", "supannPerson"].map(str::to_owned)),
            ),
            one("uid", student.login.as_str()),
            one("cn", &full_name),
            one("displayName", &full_name),
            one("sn", &student.surname),
            one("givenName", &student.given_name),
            one("supannEtuId", student.student_id.as_str()),
            one("supannCodeINE", student.ine.as_str()),
            one("supannMailPerso", student.personal_email.as_str()),
            (
                "eduPersonAffiliation".to_owned(),
                HashSet::from(["student", "member"].map(str::to_owned)),
            ),
            one("eduPersonPrimaryAffiliation", "student"),
            one("supannRessourceEtat", &state.etat_value()),
            one("supannRessourceEtatDate", &state.to_string()),
        ];
        let mut ldap = pool.get().await?;
        ldap.with_timeout(self.timeout)
            .add(&self.dn_of(&student.login), attributes)
            .await?
            .success()?;
        Ok(())
    }

    /// Brings an existing entry's identity in line with the export, as the import
    /// account. The personal e-mail is replaced only while the account awaits
    /// activation: afterwards it is the student's to change. Returns whether anything
    /// changed.
    pub async fn update_student(
        &self,
        account: &Account,
        student: &NewStudent,
        replace_email: bool,
    ) -> Result<bool, DirectoryError> {
        let pool = self.import.as_ref().ok_or_else(no_import_account)?;
        let mut mods = Vec::new();
        let mut differs = |name: &str, current: Option<&str>, wanted: &str| {
            if current != Some(wanted) {
                mods.push(Mod::Replace(
                    name.to_owned(),
                    HashSet::from([wanted.to_owned()]),
                ));
            }
        };
        differs(
            "givenName",
            account.given_name.as_deref(),
            &student.given_name,
        );
        differs("sn", account.surname.as_deref(), &student.surname);
        differs(
            "supannCodeINE",
            account.ine.as_ref().map(|i| i.as_str()),
            student.ine.as_str(),
        );
        if replace_email {
            let current = account.personal_email.as_ref().map(|e| e.as_str());
            differs("supannMailPerso", current, student.personal_email.as_str());
        }
        if mods.is_empty() {
            return Ok(false);
        }
        let mut ldap = pool.get().await?;
        modify(&mut ldap, self.timeout, &account.dn, mods).await?;
        Ok(true)
    }

    /// The DN an account with this login has under the people branch.
    pub fn dn_of(&self, login: &Login) -> String {
        format!("uid={},{}", dn_escape(login.as_str()), self.people_dn)
    }

    async fn find(&self, filter: &str) -> Result<Vec<Account>, DirectoryError> {
        let filter = format!("(&(objectClass=inetOrgPerson){filter})");
        let mut ldap = self.service.get().await?;
        let ldap3::SearchResult(entries, result) = ldap
            .with_timeout(self.timeout)
            .with_search_options(ldap3::SearchOptions::new().sizelimit(LOOKUP_LIMIT))
            .search(
                &self.people_dn,
                Scope::Subtree,
                &filter,
                self.attributes.clone(),
            )
            .await?;
        // sizeLimitExceeded (4) still returns the entries read so far: enough to see
        // that the lookup is ambiguous.
        if result.rc != 0 && result.rc != 4 {
            return Err(DirectoryError::Refused {
                rc: result.rc,
                message: result.text,
            });
        }
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                Account::from_result(entry)
                    .inspect_err(|e| tracing::warn!(error = %e, "skipping directory entry"))
                    .ok()
            })
            .collect())
    }

    /// Applies `change` in one modify operation, atomically.
    pub async fn apply(&self, dn: &str, change: AccountChange) -> Result<(), DirectoryError> {
        if change.is_empty() {
            return Ok(());
        }
        let mut ldap = self.service.get().await?;
        modify(&mut ldap, self.timeout, dn, change.mods).await
    }

    /// Sets a fresh random password on the decoy (at every start), written as a
    /// student's is: its hash then has the parameters students' hashes have, and
    /// nobody knows the password. Without a decoy, says what an unknown login costs.
    pub async fn reset_decoy(&self) -> Result<(), DirectoryError> {
        let Some(dn) = &self.decoy_dn else {
            tracing::warn!(
                "directory.decoy_dn is not set: an unknown login costs a local hash, not a bind"
            );
            return Ok(());
        };
        let password = Password::new(crate::domain::Token::generate().expose().to_owned());
        self.set_password(dn, &password, AccountChange::default())
            .await
    }

    /// What a sign-in with an unknown login (or one that must not be checked)
    /// costs: a bind to the decoy with the password typed, always refused, so the
    /// answer takes what a real bind takes, from the same connections. Without a
    /// decoy, a local hash.
    pub async fn bind_decoy(&self, password: &Password) -> Result<(), DirectoryError> {
        let Some(dn) = &self.decoy_dn else {
            self.hash_password(password).await?;
            return Ok(());
        };
        // An empty password would be an anonymous bind, answered at once.
        let typed = if password.is_empty() {
            Password::new("-".to_owned())
        } else {
            password.clone()
        };
        if self.verify_password(dn, &typed).await? == BindOutcome::Accepted {
            tracing::error!(%dn, "a password typed at sign-in opened the decoy");
        }
        Ok(())
    }

    /// What the directory will be given for a new password, made before any
    /// write begins (DESIGN §7: no hash is computed inside a transaction or a
    /// claimed link). In `hash` mode that is the `{ARGON2}` hash; in
    /// `password_modify` mode slapd hashes, so the cleartext is kept.
    pub async fn prepare_password(&self, password: &Password) -> Result<NewSecret, DirectoryError> {
        match self.password_write {
            PasswordWrite::Hash => Ok(NewSecret::Hashed(self.hash_password(password).await?)),
            PasswordWrite::PasswordModify => Ok(NewSecret::Clear(password.clone())),
        }
    }

    /// Writes a prepared password and applies `change` with it. A hash goes in one
    /// modify operation with the change; a cleartext goes through RFC 3062 first,
    /// then the change is applied (a retry of the whole step is safe).
    pub async fn write_password(
        &self,
        dn: &str,
        secret: &NewSecret,
        change: AccountChange,
    ) -> Result<(), DirectoryError> {
        match secret {
            NewSecret::Hashed(hash) => {
                if !hash.starts_with(crate::hashing::LDAP_SCHEME) {
                    return Err(DirectoryError::Refused {
                        rc: 21,
                        message: "not an {ARGON2} hash".to_owned(),
                    });
                }
                let mut mods = change.mods;
                mods.push(Mod::Replace(
                    "userPassword".to_owned(),
                    std::collections::HashSet::from([hash.clone()]),
                ));
                let mut ldap = self.service.get().await?;
                modify(&mut ldap, self.timeout, dn, mods).await
            }
            NewSecret::Clear(password) => {
                let mut ldap = self.service.get().await?;
                let exop = PasswordModify {
                    user_id: Some(dn),
                    old_pass: None,
                    new_pass: Some(password.expose()),
                };
                ldap.with_timeout(self.timeout)
                    .extended(exop)
                    .await
                    .map_err(unconfirmed)?
                    .success()?;
                drop(ldap);
                self.apply(dn, change).await
            }
        }
    }

    /// Prepares and writes a password in one call (the CLI, tests and benches; flows
    /// prepare first, outside their critical section).
    pub async fn set_password(
        &self,
        dn: &str,
        password: &Password,
        change: AccountChange,
    ) -> Result<(), DirectoryError> {
        let secret = self.prepare_password(password).await?;
        self.write_password(dn, &secret, change).await
    }

    /// The `{ARGON2}` hash of a password, to keep until a later step writes it
    /// (Perpignan's order: the link confirms, then it is written).
    pub async fn hash_password(&self, password: &Password) -> Result<String, DirectoryError> {
        Ok(self.hasher.hash_for_ldap(password).await?)
    }

    /// A place for one password check, held from its first step to its answer;
    /// [`DirectoryError::Busy`] at once when the binds are all taken and queued for.
    pub async fn admit_password_check(&self) -> Result<Pass, DirectoryError> {
        self.checks.enter().await.map_err(|_| DirectoryError::Busy)
    }

    /// Checks a password by binding as the account. An empty password is refused
    /// before any bind: LDAP treats it as an anonymous bind, which always succeeds.
    pub async fn verify_password(
        &self,
        dn: &str,
        password: &Password,
    ) -> Result<BindOutcome, DirectoryError> {
        if password.is_empty() {
            return Ok(BindOutcome::Rejected);
        }
        let _bind = self.binds.enter().await.map_err(|_| DirectoryError::Busy)?;
        let mut ldap = self.auth.get().await?;
        let result = ldap
            .with_timeout(self.timeout)
            .simple_bind(dn, password.expose())
            .await?;
        match result.rc {
            0 => Ok(BindOutcome::Accepted),
            49 => Ok(BindOutcome::Rejected),
            rc => Err(DirectoryError::Refused {
                rc,
                message: result.text,
            }),
        }
    }
}

fn no_import_account() -> DirectoryError {
    DirectoryError::Unavailable(
        "no import account: set [directory.import] bind_dn and bind_password".to_owned(),
    )
}

async fn modify(
    ldap: &mut Ldap,
    timeout: Duration,
    dn: &str,
    mods: Vec<Mod<String>>,
) -> Result<(), DirectoryError> {
    ldap.with_timeout(timeout)
        .modify(dn, mods)
        .await
        .map_err(unconfirmed)?
        .success()?;
    Ok(())
}

/// A write's failure: once the operation was handed to the connection, a lost
/// connection or a timeout leaves its outcome unknown; only an operation that could
/// not be sent at all is known not to have happened.
fn unconfirmed(error: LdapError) -> DirectoryError {
    match error {
        LdapError::ResultRecv { .. } | LdapError::Timeout { .. } => {
            DirectoryError::Unconfirmed(error.to_string())
        }
        other => other.into(),
    }
}
