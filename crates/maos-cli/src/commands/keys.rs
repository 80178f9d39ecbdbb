//! `maos keys ...`: the key service of a running server (`/v1/keys`).
//!
//! Plaintexts, associated data and messages are given as text (UTF-8) or, with `--base64`, as
//! standard base64; decrypted plaintext is printed as text when it is UTF-8 and with
//! `--base64` always as base64.

#![expect(
    clippy::indexing_slicing,
    reason = "indexing a serde_json::Value by key gives Null when absent; it never panics"
)]

use std::process::ExitCode;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use super::Failure;
use super::client::{ApiClient, CallError, ServerArgs, print_json, segment};

#[derive(Debug, Args)]
pub struct KeysArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key (version 1).
    Create(CreateArgs),
    /// List every key's metadata.
    List,
    /// Show one key's metadata (never its material).
    Show(NameArg),
    /// Encrypt with the latest version; prints `maos:v<n>:...`.
    Encrypt(EncryptArgs),
    /// Decrypt a ciphertext of any readable version; prints the plaintext.
    Decrypt(DecryptArgs),
    /// Re-encrypt a ciphertext under the latest version (the plaintext is never shown).
    Rewrap(DecryptArgs),
    /// A fresh data key encrypted under the key, with or without its plaintext.
    Datakey(DatakeyArgs),
    /// Derive a key with HKDF-SHA256 over a context.
    Derive(DeriveArgs),
    /// Sign a message with the latest version.
    Sign(MessageArgs),
    /// Verify a signature; exit 1 when it is not valid.
    Verify(VerifyArgs),
    /// HMAC-SHA256 of a message with the latest version.
    Hmac(MessageArgs),
    /// Verify an HMAC tag; exit 1 when it is not valid.
    VerifyHmac(VerifyArgs),
    /// Add a version: it encrypts and signs from now on, older ones still decrypt and verify.
    Rotate(NameArg),
    /// Change the rotation period or the minimum decryption version, or make a key exportable.
    Config(ConfigArgs),
    /// Refuse every operation until enabled again.
    Disable(NameArg),
    /// Enable a disabled key.
    Enable(NameArg),
    /// Schedule the key's deletion after 7 to 30 days (default 30).
    ScheduleDeletion(ScheduleArgs),
    /// Cancel a scheduled deletion.
    CancelDeletion(NameArg),
    /// Revoke a key, or one version of it, for good.
    Revoke(RevokeArgs),
}

#[derive(Debug, Args)]
struct NameArg {
    /// The key's name.
    name: String,
}

#[derive(Debug, Args)]
struct CreateArgs {
    name: String,
    /// aes256-gcm (default), chacha20-poly1305, ed25519, ecdsa-p256, rsa-2048, rsa-3072,
    /// rsa-4096, hmac.
    #[arg(long = "type", value_name = "TYPE")]
    key_type: Option<String>,
    /// An allowed usage (repeatable): encrypt, decrypt, wrap, sign, verify, hmac, derive.
    /// Default: the type's usual set. Fixed at creation.
    #[arg(long = "usage", value_name = "USAGE")]
    usages: Vec<String>,
    /// Allow export of the material. Cannot be turned off later.
    #[arg(long)]
    exportable: bool,
    /// Rotate automatically every this many seconds (at least 3600).
    #[arg(long, value_name = "SECONDS")]
    rotation_period: Option<u64>,
}

#[derive(Debug, Args)]
struct DataArgs {
    /// Inputs are standard base64 rather than text; plaintext output is base64 too.
    #[arg(long)]
    base64: bool,
}

#[derive(Debug, Args)]
struct EncryptArgs {
    name: String,
    /// The plaintext.
    plaintext: String,
    /// Associated data bound into the ciphertext; decryption must give the same.
    #[arg(long, value_name = "DATA")]
    aad: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct DecryptArgs {
    name: String,
    /// `maos:v<n>:<base64>`.
    ciphertext: String,
    #[arg(long, value_name = "DATA")]
    aad: Option<String>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct DatakeyArgs {
    name: String,
    /// Length in bytes (16 to 64).
    #[arg(long, default_value_t = 32)]
    bytes: usize,
    #[arg(long, value_name = "DATA")]
    aad: Option<String>,
    /// Return only the wrapped key.
    #[arg(long)]
    wrapped_only: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct DeriveArgs {
    name: String,
    /// The caller's context.
    context: String,
    #[arg(long, default_value_t = 32)]
    bytes: usize,
    /// A version other than the latest.
    #[arg(long)]
    version: Option<u32>,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct MessageArgs {
    name: String,
    message: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct VerifyArgs {
    name: String,
    message: String,
    /// The signature or tag, `maos:v<n>:<base64>`.
    signature: String,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Debug, Args)]
struct ConfigArgs {
    name: String,
    /// Seconds between automatic rotations (at least 3600), or 0 for none.
    #[arg(long, value_name = "SECONDS")]
    rotation_period: Option<u64>,
    /// Refuse decryption with versions below this one.
    #[arg(long, value_name = "VERSION")]
    min_decryption_version: Option<u32>,
    /// Make the key exportable, for good.
    #[arg(long)]
    exportable: bool,
}

#[derive(Debug, Args)]
struct ScheduleArgs {
    name: String,
    /// Days until deletion, 7 to 30.
    #[arg(long)]
    days: Option<u32>,
}

#[derive(Debug, Args)]
struct RevokeArgs {
    name: String,
    /// Revoke only this version (not the latest).
    #[arg(long)]
    version: Option<u32>,
}

/// The base64 of an input given as text, or checked base64.
fn input(value: &str, data: &DataArgs, what: &str) -> Result<String, Failure> {
    if data.base64 {
        STANDARD
            .decode(value)
            .map_err(|_| Failure::bad_input(format!("{what}: not standard base64")))?;
        Ok(value.to_owned())
    } else {
        Ok(STANDARD.encode(value.as_bytes()))
    }
}

fn optional_input(
    value: Option<&str>,
    data: &DataArgs,
    what: &str,
) -> Result<Option<String>, Failure> {
    value.map(|v| input(v, data, what)).transpose()
}

/// Prints a base64 answer as text when it is UTF-8 and `--base64` was not given.
fn print_bytes(encoded: &Value, data: &DataArgs) {
    let encoded = encoded.as_str().unwrap_or_default();
    if !data.base64
        && let Ok(bytes) = STANDARD.decode(encoded)
        && let Ok(text) = String::from_utf8(bytes)
    {
        super::out(&text);
        return;
    }
    super::out(encoded);
}

fn key_path(name: &str, tail: &str) -> String {
    format!("/v1/keys/{}{tail}", segment(name))
}

pub fn run(args: KeysArgs) -> Result<ExitCode, Failure> {
    let client = ApiClient::new(&args.server)?;
    match execute(&client, args.command) {
        Ok(code) => Ok(code),
        Err(Outcome::Input(failure)) => Err(failure),
        Err(Outcome::Call(error)) => error.report(),
    }
}

enum Outcome {
    Input(Failure),
    Call(CallError),
}

impl From<Failure> for Outcome {
    fn from(failure: Failure) -> Self {
        Outcome::Input(failure)
    }
}

impl From<CallError> for Outcome {
    fn from(error: CallError) -> Self {
        Outcome::Call(error)
    }
}

fn execute(client: &ApiClient, command: KeysCommand) -> Result<ExitCode, Outcome> {
    use KeysCommand as C;
    match command {
        C::Create(args) => {
            let mut body = Map::new();
            body.insert("name".into(), json!(args.name));
            if let Some(key_type) = args.key_type {
                body.insert("type".into(), json!(key_type));
            }
            if !args.usages.is_empty() {
                body.insert("usages".into(), json!(args.usages));
            }
            if args.exportable {
                body.insert("exportable".into(), json!(true));
            }
            if let Some(period) = args.rotation_period {
                body.insert("rotation_period_secs".into(), json!(period));
            }
            print_json(&client.post("/v1/keys", &Value::Object(body))?);
        }
        C::List => {
            let answer = client.get("/v1/keys")?;
            for key in answer["keys"].as_array().into_iter().flatten() {
                super::out(&format!(
                    "{}\t{}\tv{}\t{}",
                    key["name"].as_str().unwrap_or_default(),
                    key["key_type"].as_str().unwrap_or_default(),
                    key["latest_version"],
                    key["status"].as_str().unwrap_or_default(),
                ));
            }
        }
        C::Show(args) => print_json(&client.get(&key_path(&args.name, ""))?),
        C::Encrypt(args) => {
            let body = json!({
                "plaintext": input(&args.plaintext, &args.data, "plaintext")?,
                "aad": optional_input(args.aad.as_deref(), &args.data, "--aad")?,
            });
            let answer = client.post(&key_path(&args.name, "/encrypt"), &body)?;
            super::out(answer["ciphertext"].as_str().unwrap_or_default());
        }
        C::Decrypt(args) => {
            let body = json!({
                "ciphertext": args.ciphertext,
                "aad": optional_input(args.aad.as_deref(), &args.data, "--aad")?,
            });
            let answer = client.post(&key_path(&args.name, "/decrypt"), &body)?;
            print_bytes(&answer["plaintext"], &args.data);
        }
        C::Rewrap(args) => {
            let body = json!({
                "ciphertext": args.ciphertext,
                "aad": optional_input(args.aad.as_deref(), &args.data, "--aad")?,
            });
            let answer = client.post(&key_path(&args.name, "/rewrap"), &body)?;
            super::out(answer["ciphertext"].as_str().unwrap_or_default());
        }
        C::Datakey(args) => {
            let body = json!({
                "bytes": args.bytes,
                "aad": optional_input(args.aad.as_deref(), &args.data, "--aad")?,
                "plaintext": !args.wrapped_only,
            });
            print_json(&client.post(&key_path(&args.name, "/datakey"), &body)?);
        }
        C::Derive(args) => {
            let body = json!({
                "context": input(&args.context, &args.data, "context")?,
                "bytes": args.bytes,
                "version": args.version,
            });
            print_json(&client.post(&key_path(&args.name, "/derive"), &body)?);
        }
        C::Sign(args) => {
            let body = json!({"message": input(&args.message, &args.data, "message")?});
            let answer = client.post(&key_path(&args.name, "/sign"), &body)?;
            super::out(answer["signature"].as_str().unwrap_or_default());
        }
        C::Hmac(args) => {
            let body = json!({"message": input(&args.message, &args.data, "message")?});
            let answer = client.post(&key_path(&args.name, "/hmac"), &body)?;
            super::out(answer["hmac"].as_str().unwrap_or_default());
        }
        C::Verify(args) => {
            let body = json!({
                "message": input(&args.message, &args.data, "message")?,
                "signature": args.signature,
            });
            let answer = client.post(&key_path(&args.name, "/verify"), &body)?;
            return Ok(valid(&answer));
        }
        C::VerifyHmac(args) => {
            let body = json!({
                "message": input(&args.message, &args.data, "message")?,
                "hmac": args.signature,
            });
            let answer = client.post(&key_path(&args.name, "/verify-hmac"), &body)?;
            return Ok(valid(&answer));
        }
        C::Rotate(args) => print_json(&client.post(&key_path(&args.name, "/rotate"), &json!({}))?),
        C::Config(args) => {
            let mut body = Map::new();
            if let Some(period) = args.rotation_period {
                body.insert("rotation_period_secs".into(), json!(period));
            }
            if let Some(version) = args.min_decryption_version {
                body.insert("min_decryption_version".into(), json!(version));
            }
            if args.exportable {
                body.insert("exportable".into(), json!(true));
            }
            if body.is_empty() {
                return Err(Failure::bad_input(
                    "keys config: give --rotation-period, --min-decryption-version or --exportable",
                )
                .into());
            }
            let path = key_path(&args.name, "/config");
            print_json(&client.post(&path, &Value::Object(body))?);
        }
        C::Disable(args) => {
            print_json(&client.post(&key_path(&args.name, "/disable"), &json!({}))?);
        }
        C::Enable(args) => {
            print_json(&client.post(&key_path(&args.name, "/enable"), &json!({}))?);
        }
        C::ScheduleDeletion(args) => {
            let path = key_path(&args.name, "/schedule-deletion");
            print_json(&client.post(&path, &json!({"days": args.days}))?);
        }
        C::CancelDeletion(args) => {
            let path = key_path(&args.name, "/cancel-deletion");
            print_json(&client.post(&path, &json!({}))?);
        }
        C::Revoke(args) => {
            let path = match args.version {
                Some(version) => key_path(&args.name, &format!("/versions/{version}/revoke")),
                None => key_path(&args.name, "/revoke"),
            };
            print_json(&client.post(&path, &json!({}))?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints `valid` or `invalid`; exit 1 for invalid.
fn valid(answer: &Value) -> ExitCode {
    if answer["valid"] == json!(true) {
        super::out("valid");
        ExitCode::SUCCESS
    } else {
        super::out("invalid");
        ExitCode::from(super::EXIT_FAILED)
    }
}
