//! Turning log lines into events: format detection and the mapping of each parser's records
//! onto [`SecurityEvent`] fields (ECS names in `details`).

use maos_core::{SecurityEvent, SecurityEventType, Severity, Timestamp};
use serde_json::{Map, Value, json};

use crate::parse::cef::{CefRecord, parse_cef};
use crate::parse::sshd::{SshdEvent, SshdKind, SshdMode, SshdParser};
use crate::parse::syslog::{SyslogMessage, TimeContext, parse_syslog};
use crate::parse::web::{
    AccessRecord, ErrorRecord, WebErrorKind, parse_access, parse_apache_error, parse_nginx_error,
};

/// The format of input lines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputFormat {
    /// Decide per line.
    Auto,
    /// JSON lines: a [`SecurityEvent`], or any JSON object evaluated as it is.
    Json,
    /// Syslog (RFC 5424 or 3164); sshd lines go through the sshd parser.
    Syslog,
    Sshd,
    Cef,
    /// Combined or common access log (nginx, Apache).
    Access,
    NginxError,
    ApacheError,
}

impl std::str::FromStr for InputFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "auto" => Self::Auto,
            "json" => Self::Json,
            "syslog" => Self::Syslog,
            "sshd" | "auth" => Self::Sshd,
            "cef" => Self::Cef,
            "access" | "combined" => Self::Access,
            "nginx-error" => Self::NginxError,
            "apache-error" => Self::ApacheError,
            other => return Err(format!("unknown input format `{other}`")),
        })
    }
}

/// One decoded line.
#[derive(Clone, Debug, PartialEq)]
pub enum Decoded {
    /// A security event (evaluated through its ECS fields).
    Event(SecurityEvent),
    /// A JSON document evaluated as it is (foreign JSON events, generic syslog lines).
    Document(Value),
}

/// Why a line could not be decoded in the requested format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    #[error("invalid JSON event: {0}")]
    Json(String),
    #[error("not a JSON object: `{0}`")]
    NotAnObject(String),
    #[error(transparent)]
    Syslog(#[from] crate::parse::syslog::SyslogError),
    #[error(transparent)]
    Cef(#[from] crate::parse::cef::CefError),
    #[error(transparent)]
    Web(#[from] crate::parse::web::WebLogError),
}

/// Decodes a stream of lines; keeps the sshd parser's per-connection state.
#[derive(Debug)]
pub struct LineDecoder {
    format: InputFormat,
    time: TimeContext,
    sshd: SshdParser,
    line_no: u64,
}

fn fnv(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

impl LineDecoder {
    pub fn new(format: InputFormat, time: TimeContext, sshd_mode: SshdMode) -> Self {
        Self {
            format,
            time,
            sshd: SshdParser::new(sshd_mode, time),
            line_no: 0,
        }
    }

    /// Moves the reference time that completes RFC 3164 stamps (a long-running collector calls
    /// this as time passes).
    pub fn set_now(&mut self, now: Timestamp) {
        self.time.now = now;
        self.sshd.set_now(now);
    }

    /// Decode one line. `Ok(None)` for blank lines and lines that report nothing (sshd
    /// helper lines, for example).
    pub fn decode(&mut self, line: &str) -> Result<Option<Decoded>, DecodeError> {
        self.line_no += 1;
        let line = line.trim_end_matches(['\r', '\n']);
        if line.trim().is_empty() {
            return Ok(None);
        }
        let format = match self.format {
            InputFormat::Auto => detect(line),
            f => f,
        };
        let id = format!(
            "line-{:016x}",
            fnv(&[line.as_bytes(), &self.line_no.to_le_bytes()])
        );
        match format {
            InputFormat::Json | InputFormat::Auto => {
                decode_json(line, &id, self.time.now).map(Some)
            }
            InputFormat::Cef => Ok(Some(Decoded::Event(cef_event(
                &parse_cef(line)?,
                id,
                self.time.now,
            )))),
            InputFormat::Access => Ok(Some(Decoded::Event(access_event(&parse_access(line)?, id)))),
            InputFormat::NginxError => Ok(Some(Decoded::Event(error_event(
                &parse_nginx_error(line, &self.time)?,
                "nginx",
                id,
            )))),
            InputFormat::ApacheError => Ok(Some(Decoded::Event(error_event(
                &parse_apache_error(line, &self.time)?,
                "apache",
                id,
            )))),
            InputFormat::Sshd => Ok(self
                .sshd
                .feed(line)
                .map(|e| Decoded::Event(sshd_event(&e, id)))),
            InputFormat::Syslog => {
                let msg = parse_syslog(line, &self.time)?;
                if msg
                    .app_name
                    .is_some_and(|a| a == "sshd" || a.starts_with("sshd-"))
                {
                    return Ok(self
                        .sshd
                        .feed(line)
                        .map(|e| Decoded::Event(sshd_event(&e, id))));
                }
                Ok(Some(Decoded::Document(syslog_document(&msg, &id))))
            }
        }
    }
}

/// Guess a line's format from its shape.
pub fn detect(line: &str) -> InputFormat {
    let t = line.trim_start();
    if t.starts_with('{') {
        return InputFormat::Json;
    }
    if t.contains("CEF:") && t.contains('|') {
        return InputFormat::Cef;
    }
    let b = t.as_bytes();
    if b.len() > 11
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4) == Some(&b'/')
        && b.get(7) == Some(&b'/')
    {
        return InputFormat::NginxError;
    }
    if t.starts_with('[')
        && t.get(1..4)
            .is_some_and(|d| ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"].contains(&d))
    {
        return InputFormat::ApacheError;
    }
    if let Some((_, rest)) = t.split_once(' ')
        && let Some((_, rest)) = rest.split_once(' ')
        && let Some((_, rest)) = rest.split_once(' ')
        && rest.starts_with('[')
        && rest.contains("] \"")
    {
        return InputFormat::Access;
    }
    InputFormat::Syslog
}

/// The `source` of a JSON-lines event that names none.
pub const JSON_SOURCE: &str = "json";

/// A JSON object with a `type` is a security event; like `POST /v1/events`, a missing `id`
/// (here derived from the line and its number, so a file read again gives the same ids),
/// `time` (`now`) or `source` ([`JSON_SOURCE`]) is filled in.
fn decode_json(line: &str, id: &str, now: Timestamp) -> Result<Decoded, DecodeError> {
    let value: Value = serde_json::from_str(line).map_err(|e| DecodeError::Json(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(DecodeError::NotAnObject(line.chars().take(80).collect()));
    };
    if object.contains_key("type") {
        let mut event = object.clone();
        event.entry("id").or_insert_with(|| json!(id));
        event.entry("time").or_insert_with(|| json!(now));
        event.entry("source").or_insert_with(|| json!(JSON_SOURCE));
        if let Ok(event) = serde_json::from_value::<SecurityEvent>(Value::Object(event)) {
            return Ok(Decoded::Event(event));
        }
    }
    Ok(Decoded::Document(Value::Object(object)))
}

fn insert(details: &mut Map<String, Value>, key: &str, value: impl Into<Value>) {
    details.insert(key.to_owned(), value.into());
}

/// Map an sshd finding onto a security event.
pub fn sshd_event(e: &SshdEvent, id: String) -> SecurityEvent {
    let (ty, severity) = match e.kind {
        SshdKind::Accepted => (SecurityEventType::AuthenticationSuccess, Severity::Info),
        SshdKind::ProtocolAbuse | SshdKind::NegotiationFailure | SshdKind::PreauthDisconnect => {
            (SecurityEventType::SuspiciousActivity, Severity::Low)
        }
        _ => (SecurityEventType::AuthenticationFailure, Severity::Medium),
    };
    let mut ev = SecurityEvent::new(id, e.time, "sshd", ty, severity);
    ev.principal = e.user.clone().filter(|u| !u.is_empty());
    match e.remote.ip() {
        Some(ip) => ev.source_ip = Some(ip),
        None => ev.source_host = Some(e.remote.to_string()),
    }
    let d = &mut ev.details;
    insert(d, "process.name", "sshd");
    if let Some(pid) = &e.pid {
        insert(
            d,
            "process.pid",
            pid.parse::<u64>().map_or_else(|_| json!(pid), |p| json!(p)),
        );
    }
    if let Some(h) = &e.logged_by {
        insert(d, "host.hostname", h.clone());
    }
    if let Some(p) = e.port {
        insert(d, "source.port", p);
    }
    insert(
        d,
        "ssh.finding",
        serde_json::to_value(e.kind).unwrap_or(Value::Null),
    );
    insert(d, "ssh.attempts", e.attempts);
    if e.kind == SshdKind::Accepted && e.failure {
        ev.tags.push("ssh.user_switch".to_owned());
    }
    ev
}

/// Map an access log record: 401 is a failed authentication, 403 a denial, other 4xx
/// suspicious, the rest data access.
pub fn access_event(r: &AccessRecord, id: String) -> SecurityEvent {
    let (ty, severity) = match r.status {
        401 => (SecurityEventType::AuthenticationFailure, Severity::Low),
        403 => (SecurityEventType::AuthorizationFailure, Severity::Low),
        400..=499 => (SecurityEventType::SuspiciousActivity, Severity::Info),
        _ => (SecurityEventType::DataAccess, Severity::Info),
    };
    let mut ev = SecurityEvent::new(id, r.time, "http", ty, severity);
    match r.client.ip() {
        Some(ip) => ev.source_ip = Some(ip),
        None => ev.source_host = Some(r.client.to_string()),
    }
    ev.principal = r.user.clone();
    ev.resource = r.path.clone();
    let d = &mut ev.details;
    insert(d, "http.request.line", r.request.clone());
    if let Some(m) = &r.method {
        insert(d, "http.request.method", m.clone());
    }
    if let Some(p) = &r.path {
        insert(d, "url.original", p.clone());
    }
    insert(d, "http.response.status_code", r.status);
    if let Some(b) = r.bytes {
        insert(d, "http.response.body.bytes", b);
    }
    if let Some(v) = &r.referrer {
        insert(d, "http.request.referrer", v.clone());
    }
    if let Some(v) = &r.user_agent {
        insert(d, "user_agent.original", v.clone());
    }
    ev
}

/// Map a web server error log record.
pub fn error_event(r: &ErrorRecord, server: &str, id: String) -> SecurityEvent {
    let (ty, severity) = match r.kind {
        WebErrorKind::AuthenticationFailure => {
            (SecurityEventType::AuthenticationFailure, Severity::Medium)
        }
        WebErrorKind::AuthorizationFailure => {
            (SecurityEventType::AuthorizationFailure, Severity::Low)
        }
        WebErrorKind::RateLimited => (SecurityEventType::SuspiciousActivity, Severity::Low),
        WebErrorKind::Other => (SecurityEventType::SuspiciousActivity, Severity::Info),
    };
    let mut ev = SecurityEvent::new(id, r.time, server, ty, severity);
    if let Some(c) = &r.client {
        match c.ip() {
            Some(ip) => ev.source_ip = Some(ip),
            None => ev.source_host = Some(c.to_string()),
        }
    }
    ev.principal = r.user.clone().filter(|u| !u.is_empty());
    let d = &mut ev.details;
    insert(d, "log.level", r.level.clone());
    insert(d, "message", r.message.clone());
    if let Some(p) = r.port {
        insert(d, "source.port", p);
    }
    ev
}

/// Map a CEF record; `rt` (epoch milliseconds) gives the time when present.
pub fn cef_event(r: &CefRecord, id: String, now: Timestamp) -> SecurityEvent {
    let severity = match r.severity_number() {
        Some(0..=3) => Severity::Low,
        Some(4..=6) => Severity::Medium,
        Some(7..=8) => Severity::High,
        Some(_) => Severity::Critical,
        None => Severity::Info,
    };
    let time = r
        .extensions
        .get("rt")
        .and_then(|v| v.parse::<i64>().ok())
        .map_or(now, |ms| {
            Timestamp::from_unix_micros(ms.saturating_mul(1000))
        });
    let mut ev = SecurityEvent::new(
        id,
        time,
        r.product.clone(),
        SecurityEventType::SuspiciousActivity,
        severity,
    );
    let x = &r.extensions;
    if let Some(src) = x.get("src") {
        match crate::parse::host::parse_ip(src) {
            Some(ip) => ev.source_ip = Some(ip),
            None => ev.source_host = Some(src.clone()),
        }
    }
    ev.principal = x.get("suser").or_else(|| x.get("duser")).cloned();
    ev.resource = x.get("request").or_else(|| x.get("fname")).cloned();
    let d = &mut ev.details;
    insert(d, "observer.vendor", r.vendor.clone());
    insert(d, "observer.product", r.product.clone());
    insert(d, "observer.version", r.device_version.clone());
    insert(d, "rule.id", r.signature_id.clone());
    insert(d, "rule.name", r.name.clone());
    insert(d, "cef.severity", r.severity.clone());
    for (k, v) in x {
        insert(d, &format!("cef.{k}"), v.clone());
    }
    if let Some(v) = x.get("dst") {
        insert(d, "destination.ip", v.clone());
    }
    if let Some(v) = x.get("spt").and_then(|p| p.parse::<u16>().ok()) {
        insert(d, "source.port", v);
    }
    if let Some(v) = x.get("dpt").and_then(|p| p.parse::<u16>().ok()) {
        insert(d, "destination.port", v);
    }
    ev
}

/// A generic syslog line as an ECS-named document, for rules over syslog messages.
pub fn syslog_document(m: &SyslogMessage<'_>, id: &str) -> Value {
    let mut doc = Map::new();
    insert(&mut doc, "@timestamp", m.time.to_string());
    insert(&mut doc, "event.id", id);
    insert(&mut doc, "message", m.message);
    if let Some(h) = m.hostname {
        insert(&mut doc, "host.hostname", h);
    }
    if let Some(a) = m.app_name {
        insert(&mut doc, "process.name", a);
    }
    if let Some(p) = m.proc_id {
        insert(&mut doc, "process.pid", p);
    }
    if let Some(f) = m.facility {
        insert(&mut doc, "log.syslog.facility.code", f);
    }
    if let Some(s) = m.severity {
        insert(&mut doc, "log.syslog.severity.code", s);
    }
    Value::Object(doc)
}
