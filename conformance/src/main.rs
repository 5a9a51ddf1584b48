//! `guichet-conformance`: plays the OpenID Foundation's OP test plans against a
//! running Guichet and prints one line per module, then a summary. Exit code 1
//! when a module fails.
//!
//! The two clients must be registered beforehand with the receiver's addresses,
//! which `--print-uris` shows (`conformance/run` does all of it against
//! `guichet dev`).

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use guichet_conformance::{Client, Plan, Receiver, Target, run};

#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The provider's issuer, as its discovery document says it.
    #[arg(long, env = "CONFORMANCE_ISSUER")]
    issuer: String,
    /// Where the relying party listens (redirect, post-logout and back-channel URIs).
    #[arg(long, default_value = "127.0.0.1:9177")]
    listen: SocketAddr,
    /// Print the URIs to register the clients with, and exit.
    #[arg(long)]
    print_uris: bool,
    #[arg(
        long,
        env = "CONFORMANCE_CLIENT_ID",
        required_unless_present = "print_uris"
    )]
    client_id: Option<String>,
    #[arg(
        long,
        env = "CONFORMANCE_CLIENT_SECRET",
        hide_env_values = true,
        required_unless_present = "print_uris"
    )]
    client_secret: Option<String>,
    #[arg(
        long,
        env = "CONFORMANCE_CLIENT2_ID",
        required_unless_present = "print_uris"
    )]
    client2_id: Option<String>,
    #[arg(
        long,
        env = "CONFORMANCE_CLIENT2_SECRET",
        hide_env_values = true,
        required_unless_present = "print_uris"
    )]
    client2_secret: Option<String>,
    /// An activated student's login.
    #[arg(
        long,
        env = "CONFORMANCE_LOGIN",
        required_unless_present = "print_uris"
    )]
    login: Option<String>,
    #[arg(
        long,
        env = "CONFORMANCE_PASSWORD",
        hide_env_values = true,
        required_unless_present = "print_uris"
    )]
    password: Option<String>,
    /// Plans to play (basic, config, rp-logout, backchannel); all by default.
    #[arg(long = "plan")]
    plans: Vec<String>,
}

fn client(id: Option<String>, secret: Option<String>) -> Client {
    Client {
        id: id.unwrap_or_default(),
        secret: secret.unwrap_or_default(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let receiver = match Receiver::bind(cli.listen).await {
        Ok(receiver) => receiver,
        Err(error) => {
            eprintln!("cannot listen on {}: {error}", cli.listen);
            return ExitCode::from(2);
        }
    };
    if cli.print_uris {
        println!("redirect_uri             {}", receiver.redirect_uri());
        println!(
            "post_logout_redirect_uri {}",
            receiver.post_logout_redirect_uri()
        );
        println!(
            "backchannel_logout_uri   {}",
            receiver.backchannel_logout_uri()
        );
        return ExitCode::SUCCESS;
    }
    let mut plans = Vec::new();
    for name in &cli.plans {
        match Plan::from_short(name) {
            Some(plan) => plans.push(plan),
            None => {
                eprintln!("unknown plan {name}: basic, config, rp-logout or backchannel");
                return ExitCode::from(2);
            }
        }
    }
    if plans.is_empty() {
        plans = Plan::ALL.to_vec();
    }
    let target = Target {
        issuer: cli.issuer,
        client: client(cli.client_id, cli.client_secret),
        client2: client(cli.client2_id, cli.client2_secret),
        login: cli.login.unwrap_or_default(),
        password: cli.password.unwrap_or_default(),
    };
    println!(
        "Conformance of {} (OpenID Foundation OP plans)",
        target.issuer
    );
    let mut current = None;
    let report = run(&target, &receiver, &plans, |outcome| {
        if current != Some(outcome.plan) {
            current = Some(outcome.plan);
            println!("\n{}", outcome.plan.name());
        }
        println!("  {outcome}");
    })
    .await;
    println!("\n{}", report.summary());
    if report.failed() == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
