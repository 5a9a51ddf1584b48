//! A conformance runner for Guichet's OpenID provider. It plays the modules of the
//! OpenID Foundation's four OP test plans that Guichet is held to (Basic OP,
//! Config OP, RP-Initiated Logout OP, Back-Channel Logout OP) against a running
//! server, as the Foundation's suite would: a relying party of its own, a
//! headless browser that fills in the login form, and a receiver for the
//! back-channel logout tokens.
//!
//! The Foundation's suite needs a public HTTPS address, MongoDB and a Java
//! server; this runner needs only the provider's address, two registered clients
//! and a student account, so it runs in CI on every change.

mod agent;
mod checks;
mod flow;
mod plans;
pub mod receiver;

use std::fmt;
use std::time::{Duration, Instant};

pub use receiver::Receiver;

/// A confidential client registered with the receiver's addresses
/// ([`Receiver::redirect_uri`], [`Receiver::post_logout_redirect_uri`],
/// [`Receiver::backchannel_logout_uri`]).
#[derive(Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What the runner plays against.
#[derive(Clone)]
pub struct Target {
    /// The issuer, exactly as the provider publishes it (no trailing slash for
    /// Guichet: `http://localhost:8080`).
    pub issuer: String,
    /// The client every module signs in with (client_secret_basic, or
    /// client_secret_post where the module says so).
    pub client: Client,
    /// A second client, which must never be able to use the first one's codes
    /// or refresh tokens.
    pub client2: Client,
    /// An activated student account.
    pub login: String,
    pub password: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Target")
            .field("issuer", &self.issuer)
            .field("client", &self.client)
            .field("client2", &self.client2)
            .field("login", &self.login)
            .finish_non_exhaustive()
    }
}

/// The OpenID Foundation's OP test plans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    Basic,
    Config,
    RpInitiatedLogout,
    BackChannelLogout,
}

impl Plan {
    pub const ALL: [Plan; 4] = [
        Plan::Basic,
        Plan::Config,
        Plan::RpInitiatedLogout,
        Plan::BackChannelLogout,
    ];

    /// The plan's name in the Foundation's suite.
    pub fn name(self) -> &'static str {
        match self {
            Plan::Basic => "oidcc-basic-certification-test-plan",
            Plan::Config => "oidcc-config-certification-test-plan",
            Plan::RpInitiatedLogout => "oidcc-rp-initiated-logout-certification-test-plan",
            Plan::BackChannelLogout => {
                "oidcc-backchannel-rp-initiated-logout-certification-test-plan"
            }
        }
    }

    /// The short name used on the command line.
    pub fn short(self) -> &'static str {
        match self {
            Plan::Basic => "basic",
            Plan::Config => "config",
            Plan::RpInitiatedLogout => "rp-logout",
            Plan::BackChannelLogout => "backchannel",
        }
    }

    pub fn from_short(name: &str) -> Option<Plan> {
        Plan::ALL.into_iter().find(|p| p.short() == name)
    }

    /// The plan's modules, in the suite's order.
    pub fn modules(self) -> &'static [&'static str] {
        plans::modules(self)
    }
}

/// A module's result. A skip names why the module does not apply (a feature
/// the provider does not offer, as its discovery document says).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail(String),
    Skip(String),
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub plan: Plan,
    pub module: &'static str,
    pub verdict: Verdict,
    pub elapsed: Duration,
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.elapsed.as_millis();
        match &self.verdict {
            Verdict::Pass => write!(f, "pass  {:<72} {ms:>6} ms", self.module),
            Verdict::Fail(why) => write!(f, "FAIL  {:<72} {ms:>6} ms  {why}", self.module),
            Verdict::Skip(why) => write!(f, "skip  {:<72} {ms:>6} ms  {why}", self.module),
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
}

impl Report {
    fn count(&self, wanted: fn(&Verdict) -> bool) -> usize {
        self.outcomes.iter().filter(|o| wanted(&o.verdict)).count()
    }

    pub fn passed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Pass))
    }

    pub fn failed(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Fail(_)))
    }

    pub fn skipped(&self) -> usize {
        self.count(|v| matches!(v, Verdict::Skip(_)))
    }

    /// One line: how many modules passed, failed and were skipped.
    pub fn summary(&self) -> String {
        format!(
            "{} modules: {} passed, {} failed, {} skipped",
            self.outcomes.len(),
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// Plays every module of `plans`, in order, each with a fresh browser; calls
/// `each` as soon as a module ends, so a person watching sees progress.
pub async fn run(
    target: &Target,
    receiver: &Receiver,
    plans: &[Plan],
    mut each: impl FnMut(&Outcome),
) -> Report {
    let mut report = Report::default();
    let context = flow::Context::new(target, receiver).await;
    for &plan in plans {
        for &module in plan.modules() {
            let started = Instant::now();
            let verdict = match &context {
                Ok(context) => match plans::play(context, module).await {
                    Ok(verdict) => verdict,
                    Err(error) => Verdict::Fail(format!("{error:#}")),
                },
                Err(error) => Verdict::Fail(format!("no discovery document: {error:#}")),
            };
            let outcome = Outcome {
                plan,
                module,
                verdict,
                elapsed: started.elapsed(),
            };
            each(&outcome);
            report.outcomes.push(outcome);
        }
    }
    report
}
