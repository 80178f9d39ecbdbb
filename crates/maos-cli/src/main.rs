//! The `maos` command. Each subcommand lives in its own module under `commands/`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
// The server's subcommands live beside the others but are declared here.
#[path = "commands/config.rs"]
mod config_command;
#[path = "commands/serve.rs"]
mod serve_command;

/// MAOS Security: the zero-trust security server for fleets of people and AI agents.
#[derive(Debug, Parser)]
#[command(name = "maos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the MAOS Security server (decision, AuthZEN, forward-auth and admin APIs).
    Serve(serve_command::ServeArgs),
    /// Check server configuration files.
    Config(config_command::ConfigArgs),
    /// Ask authorization questions offline, against a policy bundle.
    Authz(commands::authz::AuthzArgs),
    /// Check, analyze and test policy bundles.
    Policy(commands::policy::PolicyArgs),
    /// Scan logs with Sigma rules offline; check rule directories.
    Siem(commands::siem::SiemArgs),
    /// Verify the audit log offline, find records about a secret, export the log.
    Audit(commands::audit::AuditArgs),
    /// Manage people on a running server (add, disable, enable, list).
    User(commands::identity::UserArgs),
    /// Manage agents on a running server.
    Agent(commands::identity::AgentArgs),
    /// Create and revoke API keys on a running server.
    Apikey(commands::identity::ApiKeyArgs),
    /// Enrol TOTP multi-factor authentication.
    Mfa(commands::identity::MfaArgs),
    /// Log in and keep the access token for later commands.
    Login(commands::identity::LoginArgs),
    /// Keys of a running server's key service: create, encrypt, decrypt, rotate, ...
    Keys(commands::keys::KeysArgs),
    /// Secrets of a running server: put, get, delete, re-encrypt after a rotation.
    Secrets(commands::secrets::SecretsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve_command::run(args),
        Command::Config(args) => config_command::run(args),
        Command::Authz(args) => commands::authz::run(args),
        Command::Policy(args) => commands::policy::run(args),
        Command::Siem(args) => commands::siem::run(args),
        Command::Audit(args) => commands::audit::run(args),
        Command::User(args) => commands::identity::run_user(args),
        Command::Agent(args) => commands::identity::run_agent(args),
        Command::Apikey(args) => commands::identity::run_apikey(args),
        Command::Mfa(args) => commands::identity::run_mfa(args),
        Command::Login(args) => commands::identity::run_login(args),
        Command::Keys(args) => commands::keys::run(args),
        Command::Secrets(args) => commands::secrets::run(args),
    };
    match result {
        Ok(code) => code,
        Err(failure) => failure.report(),
    }
}
