//! `maos policy validate | analyze | test`: work on bundle files.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use maos_policy::{Finding, analyze_source};

use std::path::Path;

use maos_policy::DecisionPoint;

use super::{EXIT_BAD_INPUT, EXIT_FAILED, Failure, error_lines, read_file};

/// Reads and loads a bundle; an unreadable file stops the command, an invalid bundle gives
/// its error lines so that the other files are still checked.
fn load_checked(file: &Path) -> Result<Result<DecisionPoint, Vec<String>>, Failure> {
    let source = read_file(file)?;
    Ok(DecisionPoint::load(&source, &file.display().to_string()).map_err(|e| error_lines(&e)))
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check bundles; exit 0 when all are valid, else print the errors and exit 2.
    Validate {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Report conflicts and rules that can never matter, as warnings with their locations.
    Analyze {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the bundles' tests: one line per test, then `N passed, M failed`.
    Test {
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

pub fn run(args: PolicyArgs) -> Result<ExitCode, Failure> {
    match args.command {
        PolicyCommand::Validate { files } => validate(&files),
        PolicyCommand::Analyze { files, json } => analyze(&files, json),
        PolicyCommand::Test { files } => test(&files),
    }
}

fn validate(files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let mut errors = Vec::new();
    for file in files {
        match load_checked(file)? {
            Ok(point) => {
                let b = point.bundle();
                let entries: usize = b.acls.iter().map(|a| a.entries.len()).sum();
                outln!(
                    "{}: valid ({} roles, {} bindings, {} ACL entries, {} policies, {} tests, {})",
                    file.display(),
                    b.roles.len(),
                    b.bindings.len(),
                    entries,
                    b.policies.len(),
                    b.tests.len(),
                    b.combining.as_str()
                );
            }
            Err(lines) => errors.extend(lines),
        }
    }
    if errors.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::BadInput(errors))
    }
}

fn analyze(files: &[PathBuf], json: bool) -> Result<ExitCode, Failure> {
    let mut all: Vec<(String, Finding)> = Vec::new();
    for file in files {
        // Analysis is for valid bundles: report load errors as such.
        if let Err(lines) = load_checked(file)? {
            return Err(Failure::BadInput(lines));
        }
        let origin = file.display().to_string();
        let source = read_file(file)?;
        let findings = analyze_source(&source, &origin)
            .map_err(|errors| Failure::BadInput(error_lines(&errors)))?;
        all.extend(findings.into_iter().map(|f| (origin.clone(), f)));
    }
    if json {
        let list: Vec<serde_json::Value> = all
            .iter()
            .map(|(file, f)| serde_json::json!({"file": file, "finding": f}))
            .collect();
        outln!("{}", serde_json::Value::Array(list));
    } else {
        for (file, f) in &all {
            let at = match f.location.line {
                Some(line) => format!("{file}:{line}"),
                None => file.clone(),
            };
            let kind = serde_json::to_value(f.kind).ok();
            let kind = kind.as_ref().and_then(|k| k.as_str()).unwrap_or("finding");
            outln!("{at}: warning[{kind}]: {}: {}", f.location.path, f.message);
        }
        outln!("{} warnings", all.len());
    }
    Ok(ExitCode::SUCCESS)
}

fn test(files: &[PathBuf]) -> Result<ExitCode, Failure> {
    let (mut passed, mut failed, mut broken) = (0usize, 0usize, false);
    for file in files {
        let point = match load_checked(file)? {
            Ok(point) => point,
            Err(lines) => {
                for line in lines {
                    eprintln!("{line}");
                }
                broken = true;
                continue;
            }
        };
        for outcome in point.run_tests() {
            let word = |b: bool| if b { "allow" } else { "deny" };
            if outcome.passed {
                passed += 1;
                outln!("ok   {}: {}", file.display(), outcome.name);
            } else {
                failed += 1;
                outln!(
                    "FAIL {}: {}: expected {}, got {} ({})",
                    file.display(),
                    outcome.name,
                    word(outcome.expected),
                    word(outcome.actual.decision),
                    outcome.actual.reasons.join("; ")
                );
            }
        }
    }
    outln!("{passed} passed, {failed} failed");
    Ok(if broken {
        ExitCode::from(EXIT_BAD_INPUT)
    } else if failed > 0 {
        ExitCode::from(EXIT_FAILED)
    } else {
        ExitCode::SUCCESS
    })
}
