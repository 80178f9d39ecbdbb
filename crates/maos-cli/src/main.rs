//! The `maos` command. Each subcommand lives in its own module under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;

/// MAOS Security: the zero-trust security server for fleets of people and AI agents.
#[derive(Debug, Parser)]
#[command(name = "maos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask authorization questions offline, against a policy bundle.
    Authz(commands::authz::AuthzArgs),
    /// Check, analyze and test policy bundles.
    Policy(commands::policy::PolicyArgs),
    /// Scan logs with Sigma rules offline; check rule directories.
    Siem(commands::siem::SiemArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Authz(args) => commands::authz::run(args),
        Command::Policy(args) => commands::policy::run(args),
        Command::Siem(args) => commands::siem::run(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
