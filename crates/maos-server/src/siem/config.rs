//! `[siem]`: event storage, detection, ingestion listeners, tailed files and webhooks.

use std::net::SocketAddr;
use std::path::PathBuf;

use maos_core::Severity;
use maos_siem::ingest::InputFormat;
use maos_siem::parse::sshd::SshdMode;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiemConfig {
    /// Further Sigma rules, loaded beside the bundled ones (`rules/maos`); empty: none.
    pub rules_dir: PathBuf,
    /// Events and alerts are deleted this many days after they arrived (alerts: after their
    /// last update).
    pub retention_days: u64,
    /// How often retention runs.
    pub retention_check_seconds: u64,
    /// A rule firing again for the same group within this many seconds of the alert's last
    /// event counts into that alert instead of raising a new one.
    pub suppression_seconds: u64,
    /// Most events in one `POST /v1/events`.
    pub max_batch: usize,
    /// Batches of events waiting for the SIEM task; beyond it `POST /v1/events` answers 503,
    /// UDP syslog drops and TCP syslog and tailed files wait.
    pub queue: usize,
    /// Events sharing a source address or principal within this window share a correlation id.
    pub correlation_window_seconds: u64,
    /// The fail2ban mode of the sshd parser: `normal`, `ddos`, `extra` or `aggressive`.
    pub sshd_mode: SshdMode,
    /// Zone of RFC 3164 stamps (which carry none), in seconds east of UTC.
    pub utc_offset_seconds: i32,
    /// Longest accepted log line or syslog frame, in bytes.
    pub max_line_bytes: usize,
    /// How often tailed files are checked for new lines, rotation and truncation.
    pub file_poll_milliseconds: u64,
    pub syslog: SyslogConfig,
    pub files: Vec<FileConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

impl Default for SiemConfig {
    fn default() -> Self {
        Self {
            rules_dir: PathBuf::new(),
            retention_days: 90,
            retention_check_seconds: 3600,
            suppression_seconds: 600,
            max_batch: 1000,
            queue: 1024,
            correlation_window_seconds: 900,
            sshd_mode: SshdMode::Normal,
            utc_offset_seconds: 0,
            max_line_bytes: 64 * 1024,
            file_poll_milliseconds: 250,
            syslog: SyslogConfig::default(),
            files: Vec::new(),
            webhooks: Vec::new(),
        }
    }
}

/// `[siem.syslog]`: listeners for RFC 5424/3164 (and CEF) messages; absent: not started.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyslogConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub udp: Option<SocketAddr>,
    /// Octet-counted (RFC 6587) or newline-delimited frames, detected per frame.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tcp: Option<SocketAddr>,
    /// Most TCP connections at once.
    pub max_connections: usize,
}

impl Default for SyslogConfig {
    fn default() -> Self {
        Self {
            udp: None,
            tcp: None,
            max_connections: 256,
        }
    }
}

/// The formats of tailed files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Sshd,
    NginxAccess,
    NginxError,
    ApacheAccess,
    ApacheError,
    Syslog,
    Json,
}

impl FileFormat {
    pub fn input_format(self) -> InputFormat {
        match self {
            Self::Sshd => InputFormat::Sshd,
            Self::NginxAccess | Self::ApacheAccess => InputFormat::Access,
            Self::NginxError => InputFormat::NginxError,
            Self::ApacheError => InputFormat::ApacheError,
            Self::Syslog => InputFormat::Syslog,
            Self::Json => InputFormat::Json,
        }
    }
}

/// Where reading a file that exists at start begins.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StartAt {
    /// Only lines written from now on.
    #[default]
    End,
    /// The whole file.
    Beginning,
}

/// `[[siem.files]]`: a log file tailed through rotation and truncation.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub path: PathBuf,
    pub format: FileFormat,
    #[serde(default)]
    pub start_at: StartAt,
}

/// `[[siem.webhooks]]`: alerts POSTed as JSON, signed with HMAC-SHA256.
#[derive(Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// The HMAC key as text (better: `secret_file`).
    #[serde(default, skip_serializing)]
    pub secret: String,
    /// A file holding the HMAC key (surrounding whitespace ignored).
    #[serde(default)]
    pub secret_file: PathBuf,
    /// Only alerts at least this severe.
    #[serde(default = "default_min_severity")]
    pub min_severity: Severity,
    /// Attempts per alert, the first included.
    #[serde(default = "default_attempts")]
    pub max_attempts: u32,
    /// Time limit of one attempt.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_min_severity() -> Severity {
    Severity::Low
}

fn default_attempts() -> u32 {
    5
}

fn default_timeout() -> u64 {
    10
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url)
            .field("secret", &"[redacted]")
            .field("secret_file", &self.secret_file)
            .field("min_severity", &self.min_severity)
            .field("max_attempts", &self.max_attempts)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl SiemConfig {
    /// Checks what types cannot.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("siem.retention_days", self.retention_days),
            ("siem.retention_check_seconds", self.retention_check_seconds),
            ("siem.file_poll_milliseconds", self.file_poll_milliseconds),
            (
                "siem.correlation_window_seconds",
                self.correlation_window_seconds,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("{name}: must be positive"));
            }
        }
        if self.max_batch == 0 || self.queue == 0 || self.max_line_bytes == 0 {
            return Err(
                "siem.max_batch, siem.queue and siem.max_line_bytes: must be positive".into(),
            );
        }
        if self.syslog.max_connections == 0 {
            return Err("siem.syslog.max_connections: must be positive".into());
        }
        if !(-86_400..=86_400).contains(&self.utc_offset_seconds) {
            return Err("siem.utc_offset_seconds: must be within a day".into());
        }
        for (i, file) in self.files.iter().enumerate() {
            if file.path.as_os_str().is_empty() {
                return Err(format!("siem.files[{i}]: empty path"));
            }
        }
        for (i, hook) in self.webhooks.iter().enumerate() {
            let scheme_ok = hook.url.starts_with("https://") || hook.url.starts_with("http://");
            if !scheme_ok || hook.url.parse::<reqwest::Url>().is_err() {
                return Err(format!(
                    "siem.webhooks[{i}].url: `{}` is not an http(s) URL",
                    hook.url
                ));
            }
            match (
                hook.secret.is_empty(),
                hook.secret_file.as_os_str().is_empty(),
            ) {
                (false, true) | (true, false) => {}
                _ => {
                    return Err(format!(
                        "siem.webhooks[{i}]: give exactly one of `secret` and `secret_file`"
                    ));
                }
            }
            if hook.max_attempts == 0 || hook.timeout_seconds == 0 {
                return Err(format!(
                    "siem.webhooks[{i}]: max_attempts and timeout_seconds must be positive"
                ));
            }
        }
        Ok(())
    }
}
