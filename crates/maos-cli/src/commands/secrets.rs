//! `maos secrets ...`: the secrets store of a running server (`/v1/secrets/<path>`) and its
//! re-encryption job, followed with a progress bar.

#![expect(
    clippy::indexing_slicing,
    reason = "indexing a serde_json::Value by key gives Null when absent; it never panics"
)]

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;

use super::Failure;
use super::client::{ApiClient, CallError, ServerArgs, print_json, segment};

#[derive(Debug, Args)]
pub struct SecretsArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, Subcommand)]
enum SecretsCommand {
    /// Store a new version of a secret.
    Put(PutArgs),
    /// Print a secret's value (latest version, or `--version`).
    Get(GetArgs),
    /// Delete a secret (every version, or `--version`).
    Delete(GetArgs),
    /// Re-encrypt every secret to the latest version of the secrets key and show the
    /// progress; exit 1 when an item failed.
    Rewrap(RewrapArgs),
}

#[derive(Debug, Args)]
struct PutArgs {
    /// `/`-separated path, such as `app/db/password`.
    path: String,
    /// The value (text).
    value: String,
}

#[derive(Debug, Args)]
struct GetArgs {
    path: String,
    #[arg(long)]
    version: Option<i64>,
    /// Print the whole answer as JSON (get).
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RewrapArgs {
    /// Start the job and return without waiting.
    #[arg(long)]
    no_wait: bool,
    /// List the items that failed.
    #[arg(long)]
    show_failures: bool,
}

fn secret_path(path: &str, version: Option<i64>) -> String {
    let encoded: Vec<String> = path.split('/').map(segment).collect();
    let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
    format!("/v1/secrets/{}{query}", encoded.join("/"))
}

pub fn run(args: SecretsArgs) -> Result<ExitCode, Failure> {
    let client = ApiClient::new(&args.server)?;
    let result =
        match args.command {
            SecretsCommand::Put(args) => client
                .put(
                    &secret_path(&args.path, None),
                    &json!({"value": args.value}),
                )
                .map(|answer| {
                    print_json(&answer);
                    ExitCode::SUCCESS
                }),
            SecretsCommand::Get(args) => {
                client
                    .get(&secret_path(&args.path, args.version))
                    .map(|answer| {
                        if args.json {
                            print_json(&answer);
                        } else {
                            super::out(answer["value"].as_str().unwrap_or_default());
                        }
                        ExitCode::SUCCESS
                    })
            }
            SecretsCommand::Delete(args) => client
                .delete(&secret_path(&args.path, args.version))
                .map(|answer| {
                    print_json(&answer);
                    ExitCode::SUCCESS
                }),
            SecretsCommand::Rewrap(args) => rewrap(&client, &args),
        };
    result.or_else(CallError::report)
}

fn rewrap(client: &ApiClient, args: &RewrapArgs) -> Result<ExitCode, CallError> {
    // A job already running (started by a rotation) is followed rather than refused.
    let started = match client.post("/v1/secrets-rewrap", &json!({})) {
        Ok(answer) => answer["job"]["id"].as_i64(),
        Err(CallError::Refused { status: 409, .. }) => None,
        Err(error) => return Err(error),
    };
    if args.no_wait {
        print_json(&client.get("/v1/secrets-rewrap")?);
        return Ok(ExitCode::SUCCESS);
    }

    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} re-encrypting [{bar:40}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let job = loop {
        let progress = client.get("/v1/secrets-rewrap")?;
        let job = progress["job"].clone();
        if let Some(id) = started
            && job["id"].as_i64() != Some(id)
        {
            return Err(CallError::Failed(format!(
                "the job {id} is no longer the latest; another one started"
            )));
        }
        let total = job["total"].as_u64().unwrap_or(0);
        let done = job["done"].as_u64().unwrap_or(0);
        bar.set_length(total);
        bar.set_position(done.min(total));
        bar.set_message(format!("{} failed", job["failed"].as_u64().unwrap_or(0)));
        if job["state"] != "running" {
            break job;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    bar.finish();

    let failed = job["failed"].as_u64().unwrap_or(0);
    super::out(&format!(
        "job {}: {} of {} secrets handled, {failed} failed (key {} version {})",
        job["id"],
        job["done"],
        job["total"],
        job["key_name"].as_str().unwrap_or_default(),
        job["target_version"],
    ));
    if failed > 0 && args.show_failures {
        let items = client.get("/v1/secrets-rewrap?items=true")?;
        for item in items["items"].as_array().into_iter().flatten() {
            if item["result"] == "failed" {
                super::out(&format!(
                    "{} v{}: {}",
                    item["path"].as_str().unwrap_or_default(),
                    item["version"],
                    item["reason"].as_str().unwrap_or_default()
                ));
            }
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(super::EXIT_FAILED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_paths_are_encoded_per_segment() {
        assert_eq!(secret_path("app/db", None), "/v1/secrets/app/db");
        assert_eq!(
            secret_path("a b/c", Some(2)),
            "/v1/secrets/a%20b/c?version=2"
        );
    }
}
