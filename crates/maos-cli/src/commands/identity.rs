//! `maos user|agent|apikey|mfa|login`: the identity provider of a running server, over HTTP.
//!
//! The server is `--url` (or `MAOS_URL`, default `http://127.0.0.1:8080`); the credential is
//! `--token` (or `MAOS_TOKEN`), else the token `maos login` saved in the user's config
//! directory (`$XDG_CONFIG_HOME/maos/token` or `~/.config/maos/token`, mode 0600).

use std::io::BufRead;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::{EXIT_FAILED, Failure};

/// Where the server is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// The server's base URL.
    #[arg(
        long,
        env = "MAOS_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    url: String,
    /// A bearer credential (admin token, access token or API key); default: the saved login.
    #[arg(long, env = "MAOS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: UserCommand,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a person (`user:<name>`). The password is read from `MAOS_PASSWORD` or the first
    /// line of stdin when `--password` is given.
    Add(AddUserArgs),
    /// Disable a person or agent: its tokens and API keys stop working at once.
    Disable(PrincipalArg),
    /// Enable a disabled person or agent.
    Enable(PrincipalArg),
    /// List the stored principals.
    List,
}

#[derive(Debug, Args)]
struct AddUserArgs {
    /// The user name (`alice`) or id (`user:alice`).
    name: String,
    /// Set a password (from `MAOS_PASSWORD` or stdin).
    #[arg(long)]
    password: bool,
    /// A stored role binding (repeatable).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    #[arg(long)]
    department: Option<String>,
    #[arg(long)]
    clearance: Option<String>,
}

#[derive(Debug, Args)]
struct PrincipalArg {
    /// `user:<name>`, `agent:<name>`, or a bare user name.
    principal: String,
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// Create an agent (`agent:<name>`).
    Add(AddAgentArgs),
}

#[derive(Debug, Args)]
struct AddAgentArgs {
    /// The agent name (`etl`) or id (`agent:etl`).
    name: String,
    /// A stored role binding (repeatable).
    #[arg(long = "role", value_name = "ROLE")]
    roles: Vec<String>,
    /// The principal responsible for the agent (`user:alice`).
    #[arg(long)]
    owner: Option<String>,
    #[arg(long)]
    purpose: Option<String>,
}

#[derive(Debug, Args)]
pub struct ApiKeyArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: ApiKeyCommand,
}

#[derive(Debug, Subcommand)]
enum ApiKeyCommand {
    /// Create an API key; it is printed once.
    Create(CreateKeyArgs),
    /// Revoke an API key at once.
    Revoke(RevokeKeyArgs),
}

#[derive(Debug, Args)]
struct CreateKeyArgs {
    /// The principal owning the key (`agent:etl`).
    principal: String,
    /// A scope: one of the principal's roles (repeatable).
    #[arg(long = "scope", value_name = "ROLE")]
    scopes: Vec<String>,
    /// Lifetime in seconds; default: no expiry.
    #[arg(long, value_name = "SECONDS")]
    ttl: Option<u64>,
}

#[derive(Debug, Args)]
struct RevokeKeyArgs {
    principal: String,
    /// The key id (the 16 hex digits after `maos_`).
    key_id: String,
}

#[derive(Debug, Args)]
pub struct MfaArgs {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: MfaCommand,
}

#[derive(Debug, Subcommand)]
enum MfaCommand {
    /// Enrol TOTP: prints the `otpauth://` URI, reads the first code from stdin to confirm, and
    /// prints the recovery codes once.
    Enroll(PrincipalArg),
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The user name.
    #[arg(long)]
    user: String,
    /// The current TOTP code, when MFA is enrolled.
    #[arg(long, value_name = "CODE")]
    totp: Option<String>,
}

/// The saved login token's path.
pub fn token_path() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".config"),
    };
    Some(base.join("maos").join("token"))
}

fn principal_id(text: &str, default_kind: &str) -> Result<String, Failure> {
    let id = if text.starts_with("user:") || text.starts_with("agent:") {
        text.to_owned()
    } else if text.contains(':') {
        return Err(Failure::bad_input(format!(
            "`{text}`: a principal is `user:<name>` or `agent:<name>`"
        )));
    } else {
        format!("{default_kind}:{text}")
    };
    if id.ends_with(':') || id.chars().any(char::is_whitespace) {
        return Err(Failure::bad_input(format!(
            "`{text}`: not a valid principal name"
        )));
    }
    Ok(id)
}

fn read_secret_line(what: &str) -> Result<String, Failure> {
    if let Ok(value) = std::env::var("MAOS_PASSWORD")
        && !value.is_empty()
    {
        return Ok(value);
    }
    eprint!("{what}: ");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Failure::bad_input(format!("stdin: {e}")))?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        return Err(Failure::bad_input(format!("{what}: nothing on stdin")));
    }
    Ok(line)
}

/// One HTTP call to the server.
struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

/// A call's failure: printed, exit 1 (the server refused) or 2 (bad input).
enum CallError {
    Unreachable(String),
    Refused(u16, Value),
}

impl Client {
    fn new(args: &ServerArgs, needs_token: bool) -> Result<Client, Failure> {
        let token = match &args.token {
            Some(token) => Some(token.clone()),
            None => token_path()
                .and_then(|path| std::fs::read_to_string(path).ok())
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty()),
        };
        if needs_token && token.is_none() {
            return Err(Failure::bad_input(
                "no credential: pass --token, set MAOS_TOKEN, or run `maos login` first",
            ));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::bad_input(format!("cannot start the runtime: {e}")))?;
        Ok(Client {
            base: args.url.trim_end_matches('/').to_owned(),
            token,
            http: reqwest::Client::new(),
            runtime,
        })
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| CallError::Unreachable(format!("{}: {e}", self.base)))?;
            let status = response.status().as_u16();
            let text = response.text().await.unwrap_or_default();
            let value = if text.is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            };
            if (200..300).contains(&status) {
                Ok(value)
            } else {
                Err(CallError::Refused(status, value))
            }
        })
    }
}

/// Prints a failed call and gives the exit code.
fn report(error: CallError) -> ExitCode {
    match error {
        CallError::Unreachable(message) => {
            eprintln!("cannot reach the server: {message}");
            ExitCode::from(EXIT_FAILED)
        }
        CallError::Refused(status, body) => {
            let code = at(&body, "/error/code")
                .as_str()
                .or_else(|| at(&body, "/error").as_str())
                .unwrap_or("error");
            let message = at(&body, "/error/message")
                .as_str()
                .or_else(|| at(&body, "/error_description").as_str())
                .unwrap_or("");
            eprintln!("the server refused ({status} {code}): {message}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// The value at a JSON pointer, or `null`.
fn at<'a>(value: &'a Value, pointer: &str) -> &'a Value {
    value.pointer(pointer).unwrap_or(&Value::Null)
}

fn insert_field(body: &mut Value, name: &str, value: Value) {
    if let Some(map) = body.as_object_mut() {
        map.insert(name.to_owned(), value);
    }
}

fn print_json(value: &Value) {
    outln!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

fn done(result: Result<Value, CallError>, show: impl FnOnce(&Value)) -> ExitCode {
    match result {
        Ok(value) => {
            show(&value);
            ExitCode::SUCCESS
        }
        Err(error) => report(error),
    }
}

pub fn run_user(args: UserArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server, true)?;
    Ok(match args.command {
        UserCommand::Add(add) => {
            let id = principal_id(&add.name, "user")?;
            let mut attributes = serde_json::Map::new();
            if let Some(department) = add.department {
                attributes.insert("department".into(), Value::from(department));
            }
            if let Some(clearance) = add.clearance {
                attributes.insert("clearance".into(), Value::from(clearance));
            }
            let mut body = json!({"id": id, "roles": add.roles, "attributes": attributes});
            if add.password {
                insert_field(
                    &mut body,
                    "password",
                    Value::from(read_secret_line("password")?),
                );
            }
            done(
                client.call(reqwest::Method::POST, "/v1/principals", Some(body)),
                print_json,
            )
        }
        UserCommand::Disable(target) => {
            let id = principal_id(&target.principal, "user")?;
            done(
                client.call(
                    reqwest::Method::POST,
                    &format!("/v1/principals/{id}/disable"),
                    None,
                ),
                |_| outln!("{id} disabled"),
            )
        }
        UserCommand::Enable(target) => {
            let id = principal_id(&target.principal, "user")?;
            done(
                client.call(
                    reqwest::Method::POST,
                    &format!("/v1/principals/{id}/enable"),
                    None,
                ),
                |_| outln!("{id} enabled"),
            )
        }
        UserCommand::List => done(
            client.call(reqwest::Method::GET, "/v1/principals", None),
            |value| {
                for principal in at(value, "/principals").as_array().into_iter().flatten() {
                    let roles: Vec<&str> = at(principal, "/roles")
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .collect();
                    outln!(
                        "{}\t{}\t{}",
                        at(principal, "/id").as_str().unwrap_or(""),
                        at(principal, "/status").as_str().unwrap_or(""),
                        roles.join(",")
                    );
                }
            },
        ),
    })
}

pub fn run_agent(args: AgentArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server, true)?;
    let AgentCommand::Add(add) = args.command;
    let id = principal_id(&add.name, "agent")?;
    if !id.starts_with("agent:") {
        return Err(Failure::bad_input(format!(
            "`{}`: an agent is `agent:<name>`",
            add.name
        )));
    }
    let mut attributes = serde_json::Map::new();
    if let Some(owner) = add.owner {
        attributes.insert("owner".into(), Value::from(principal_id(&owner, "user")?));
    }
    if let Some(purpose) = add.purpose {
        attributes.insert("purpose".into(), Value::from(purpose));
    }
    let body = json!({"id": id, "roles": add.roles, "attributes": attributes});
    Ok(done(
        client.call(reqwest::Method::POST, "/v1/principals", Some(body)),
        print_json,
    ))
}

pub fn run_apikey(args: ApiKeyArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server, true)?;
    Ok(match args.command {
        ApiKeyCommand::Create(create) => {
            let id = principal_id(&create.principal, "agent")?;
            let body = json!({"scopes": create.scopes, "ttl_seconds": create.ttl});
            done(
                client.call(
                    reqwest::Method::POST,
                    &format!("/v1/principals/{id}/apikeys"),
                    Some(body),
                ),
                |value| {
                    outln!("{}", at(value, "/key").as_str().unwrap_or(""));
                    eprintln!(
                        "API key `{}` for {id}: shown once, store it now",
                        at(value, "/id").as_str().unwrap_or("")
                    );
                },
            )
        }
        ApiKeyCommand::Revoke(revoke) => {
            let id = principal_id(&revoke.principal, "agent")?;
            if revoke.key_id.len() != 16 || !revoke.key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Failure::bad_input(format!(
                    "`{}`: a key id is 16 hex digits",
                    revoke.key_id
                )));
            }
            done(
                client.call(
                    reqwest::Method::DELETE,
                    &format!("/v1/principals/{id}/apikeys/{}", revoke.key_id),
                    None,
                ),
                |_| outln!("API key {} revoked", revoke.key_id),
            )
        }
    })
}

pub fn run_mfa(args: MfaArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server, true)?;
    let MfaCommand::Enroll(target) = args.command;
    let id = principal_id(&target.principal, "user")?;
    let enrolment = match client.call(
        reqwest::Method::POST,
        &format!("/v1/principals/{id}/mfa"),
        None,
    ) {
        Ok(value) => value,
        Err(error) => return Ok(report(error)),
    };
    outln!("{}", at(&enrolment, "/otpauth_uri").as_str().unwrap_or(""));
    eprintln!(
        "add this URI (or the secret {}) to an authenticator app",
        at(&enrolment, "/secret").as_str().unwrap_or("")
    );
    eprint!("first code: ");
    let mut code = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut code)
        .map_err(|e| Failure::bad_input(format!("stdin: {e}")))?;
    let body = json!({"code": code.trim()});
    Ok(done(
        client.call(
            reqwest::Method::POST,
            &format!("/v1/principals/{id}/mfa/confirm"),
            Some(body),
        ),
        |value| {
            eprintln!("MFA confirmed; recovery codes (each works once, shown once):");
            for code in at(value, "/recovery_codes")
                .as_array()
                .into_iter()
                .flatten()
            {
                outln!("{}", code.as_str().unwrap_or(""));
            }
        },
    ))
}

pub fn run_login(args: LoginArgs) -> Result<ExitCode, Failure> {
    let client = Client::new(&args.server, false)?;
    let password = read_secret_line("password")?;
    let mut body = json!({"username": args.user, "password": password});
    if let Some(code) = args.totp {
        insert_field(&mut body, "totp", Value::from(code));
    }
    let tokens = match client.call(reqwest::Method::POST, "/v1/login", Some(body)) {
        Ok(tokens) => tokens,
        Err(error) => return Ok(report(error)),
    };
    let Some(token) = at(&tokens, "/access_token").as_str() else {
        eprintln!("the server answered no access token");
        return Ok(ExitCode::from(EXIT_FAILED));
    };
    let path = token_path().ok_or_else(|| Failure::bad_input("no HOME or XDG_CONFIG_HOME"))?;
    save_token(&path, token).map_err(|e| Failure::bad_input(format!("{}: {e}", path.display())))?;
    eprintln!(
        "logged in as user:{}; token saved to {}",
        args.user,
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the token readable by the user only (created with mode 0600, never widened).
fn save_token(path: &std::path::Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        options.mode(0o600);
        let mut file = options.open(path)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(token.as_bytes())
    }
    #[cfg(not(unix))]
    {
        let mut file = options.open(path)?;
        file.write_all(token.as_bytes())
    }
}
