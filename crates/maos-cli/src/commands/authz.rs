//! `maos authz check`: decisions offline, against a bundle file.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use maos_core::Request;
use maos_policy::{DecisionOptions, DecisionPoint};

use super::{EXIT_BAD_INPUT, Failure, load_bundle, read_file};

#[derive(Debug, Args)]
pub struct AuthzArgs {
    #[command(subcommand)]
    command: AuthzCommand,
}

#[derive(Debug, Subcommand)]
enum AuthzCommand {
    /// Decide one request (`--request`) or one request per line (`--requests`); prints the
    /// response JSON. Exit 0 when evaluated (allow or deny), 2 on bad input.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The policy bundle (YAML or JSON).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The request as AuthZEN JSON, or `@FILE` to read it from a file.
    #[arg(long, value_name = "JSON|@FILE", required_unless_present = "requests")]
    request: Option<String>,
    /// A JSON Lines file with one request per line; prints one response per line.
    #[arg(long, value_name = "FILE.jsonl", conflicts_with = "request")]
    requests: Option<PathBuf>,
    /// Add a trace of every role, rule and condition considered.
    #[arg(long)]
    explain: bool,
    /// Give the subject this role in addition to the bundle's bindings (repeatable), as the
    /// server does with its stored bindings.
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
}

pub fn run(args: AuthzArgs) -> Result<ExitCode, Failure> {
    match args.command {
        AuthzCommand::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> Result<ExitCode, Failure> {
    let point = load_bundle(&args.policy)?;
    let options = DecisionOptions {
        extra_roles: args.roles,
        explain: args.explain,
    };

    if let Some(path) = &args.requests {
        return check_lines(&point, &options, path);
    }
    let (text, origin) = match args.request.as_deref() {
        Some(arg) => match arg.strip_prefix('@') {
            Some(file) => (read_file(file.as_ref())?, file.to_string()),
            None => (arg.to_string(), "--request".to_string()),
        },
        None => {
            return Err(Failure::bad_input(
                "either --request or --requests is needed",
            ));
        }
    };
    let request: Request = serde_json::from_str(&text)
        .map_err(|e| Failure::bad_input(format!("{origin}:{}: invalid request: {e}", e.line())))?;
    let response = point.decide_with(&request, &options);
    outln!("{}", to_json(&response, true));
    Ok(ExitCode::SUCCESS)
}

/// One response per line; a bad line gets an error on stderr, the others are still answered.
fn check_lines(
    point: &DecisionPoint,
    options: &DecisionOptions,
    path: &std::path::Path,
) -> Result<ExitCode, Failure> {
    let text = read_file(path)?;
    let mut bad = 0usize;
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Request>(line) {
            Ok(request) => outln!("{}", to_json(&point.decide_with(&request, options), false)),
            Err(e) => {
                bad += 1;
                eprintln!("{}:{}: invalid request: {e}", path.display(), n + 1);
            }
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_BAD_INPUT)
    })
}

fn to_json(value: &impl serde::Serialize, pretty: bool) -> String {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
