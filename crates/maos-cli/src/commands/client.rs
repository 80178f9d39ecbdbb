//! A small client of the server's HTTP API for the commands that talk to a running server
//! (`maos keys`, `maos secrets`).

#![expect(
    clippy::indexing_slicing,
    reason = "indexing a serde_json::Value by key gives Null when absent; it never panics"
)]

use std::process::ExitCode;

use clap::Args;
use serde_json::Value;

use super::{EXIT_BAD_INPUT, EXIT_FAILED, Failure};

/// Where the server is and how to authenticate to it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Base URL of the MAOS server.
    #[arg(
        long,
        env = "MAOS_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// API token (bearer); prefer the environment variable.
    #[arg(long, env = "MAOS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
}

/// Why a call did not give an answer to print.
#[derive(Debug)]
pub enum CallError {
    /// The server refused the request (4xx): bad input, exit 2.
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    /// The server failed, or could not be reached: exit 1.
    Failed(String),
}

impl CallError {
    /// Prints the error and gives the exit status.
    pub fn report(self) -> Result<ExitCode, Failure> {
        match self {
            CallError::Refused {
                status,
                code,
                message,
            } => {
                eprintln!("error: {status} {code}: {message}");
                Ok(ExitCode::from(EXIT_BAD_INPUT))
            }
            CallError::Failed(message) => {
                eprintln!("error: {message}");
                Ok(ExitCode::from(EXIT_FAILED))
            }
        }
    }
}

/// A connection to one server.
#[derive(Debug)]
pub struct ApiClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl ApiClient {
    pub fn new(args: &ServerArgs) -> Result<ApiClient, Failure> {
        let base = args.server.trim_end_matches('/').to_owned();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Failure::bad_input(format!(
                "--server: `{base}` is not an http:// or https:// URL"
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Failure::bad_input(format!("cannot start the client runtime: {e}")))?;
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| Failure::bad_input(format!("cannot build the HTTP client: {e}")))?;
        Ok(ApiClient {
            base,
            token: args.token.clone().filter(|t| !t.is_empty()),
            http,
            runtime,
        })
    }

    /// Sends one request and returns the JSON answer of a 2xx response.
    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CallError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.http.request(method, &url);
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.runtime.block_on(async {
            let response = request
                .send()
                .await
                .map_err(|e| CallError::Failed(format!("cannot reach {url}: {e}")))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| CallError::Failed(format!("{url}: cannot read the answer: {e}")))?;
            let value: Value = if text.trim().is_empty() {
                Value::Null
            } else {
                serde_json::from_str(&text).map_err(|_| {
                    CallError::Failed(format!("{url}: {status}: the answer is not JSON"))
                })?
            };
            if status.is_success() {
                return Ok(value);
            }
            let code = value["error"]["code"]
                .as_str()
                .unwrap_or("error")
                .to_owned();
            let message = value["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            if status.is_client_error() {
                Err(CallError::Refused {
                    status: status.as_u16(),
                    code,
                    message,
                })
            } else {
                Err(CallError::Failed(format!("{status} {code}: {message}")))
            }
        })
    }

    pub fn get(&self, path: &str) -> Result<Value, CallError> {
        self.call(reqwest::Method::GET, path, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        self.call(reqwest::Method::POST, path, Some(body))
    }

    pub fn put(&self, path: &str, body: &Value) -> Result<Value, CallError> {
        self.call(reqwest::Method::PUT, path, Some(body))
    }

    pub fn delete(&self, path: &str) -> Result<Value, CallError> {
        self.call(reqwest::Method::DELETE, path, None)
    }
}

/// Prints a JSON answer, pretty.
pub fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    super::out(&text);
}

/// Percent-encodes one path segment (names and versions are plain, but be safe).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
