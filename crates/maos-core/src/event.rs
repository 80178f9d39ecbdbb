//! The security event every part of MAOS emits and the SIEM evaluates.
//!
//! A [`SecurityEvent`] has two shapes. Its serde form uses short field names (`id`, `time`,
//! `type`, `source_ip`...) and is what `POST /v1/events` and JSON-lines files carry. Its
//! [`SecurityEvent::to_ecs`] form is a nested document with Elastic Common Schema names
//! (`@timestamp`, `event.category`, `source.ip`, `user.name`...), which is what detection rules
//! query. [`SecurityEvent::flatten`] gives the same document as dotted keys.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// What happened, in the seed's eight categories plus a successful authentication (needed to
/// see "failures, then a success" and to let a success end a run of failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SecurityEventType {
    AuthenticationFailure,
    AuthenticationSuccess,
    AuthorizationFailure,
    SuspiciousActivity,
    IntrusionAttempt,
    DataAccess,
    PrivilegeEscalation,
    MalwareDetection,
    PolicyViolation,
}

impl SecurityEventType {
    /// The snake_case name used in JSON and in `event.action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthenticationFailure => "authentication_failure",
            Self::AuthenticationSuccess => "authentication_success",
            Self::AuthorizationFailure => "authorization_failure",
            Self::SuspiciousActivity => "suspicious_activity",
            Self::IntrusionAttempt => "intrusion_attempt",
            Self::DataAccess => "data_access",
            Self::PrivilegeEscalation => "privilege_escalation",
            Self::MalwareDetection => "malware_detection",
            Self::PolicyViolation => "policy_violation",
        }
    }

    /// The ECS `event.category` value this type falls under.
    pub fn ecs_category(self) -> &'static str {
        match self {
            Self::AuthenticationFailure | Self::AuthenticationSuccess => "authentication",
            Self::AuthorizationFailure | Self::PrivilegeEscalation => "iam",
            Self::SuspiciousActivity | Self::IntrusionAttempt => "intrusion_detection",
            Self::DataAccess => "file",
            Self::MalwareDetection => "malware",
            Self::PolicyViolation => "configuration",
        }
    }

    /// The ECS `event.outcome` value: `success`, `failure` or `unknown`.
    pub fn ecs_outcome(self) -> &'static str {
        match self {
            Self::AuthenticationFailure | Self::AuthorizationFailure => "failure",
            Self::AuthenticationSuccess | Self::DataAccess => "success",
            Self::SuspiciousActivity
            | Self::IntrusionAttempt
            | Self::PrivilegeEscalation
            | Self::MalwareDetection
            | Self::PolicyViolation => "unknown",
        }
    }
}

impl fmt::Display for SecurityEventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How bad an event is, ordered from least to most severe.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// The ECS numeric `event.severity` (0 informational .. 4 critical).
    pub fn number(self) -> u8 {
        match self {
            Self::Info => 0,
            Self::Low => 1,
            Self::Medium => 2,
            Self::High => 3,
            Self::Critical => 4,
        }
    }
}

/// A point in time with microsecond precision, serialized as RFC 3339 in UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    micros: i64,
}

/// Why a timestamp string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid RFC 3339 timestamp `{input}`")]
pub struct TimestampError {
    pub input: String,
}

impl Timestamp {
    pub const UNIX_EPOCH: Timestamp = Timestamp { micros: 0 };

    pub fn from_unix_micros(micros: i64) -> Self {
        Self { micros }
    }

    pub fn from_unix_seconds(secs: i64) -> Self {
        Self {
            micros: secs.saturating_mul(1_000_000),
        }
    }

    pub fn unix_micros(self) -> i64 {
        self.micros
    }

    pub fn unix_seconds(self) -> i64 {
        self.micros.div_euclid(1_000_000)
    }

    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// Build from calendar parts in UTC; `None` when a part is out of range.
    pub fn from_utc(
        year: i64,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        micros: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || day == 0
            || day > days_in_month(year, month)
            || hour > 23
            || minute > 59
            || second > 60
            || micros >= 1_000_000
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs = days
            .checked_mul(86_400)?
            .checked_add(i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second))?;
        Some(Self {
            micros: secs
                .checked_mul(1_000_000)?
                .checked_add(i64::from(micros))?,
        })
    }

    /// Calendar parts in UTC: (year, month, day, hour, minute, second, microsecond).
    pub fn to_utc_parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.micros.div_euclid(1_000_000);
        let micros = self.micros.rem_euclid(1_000_000) as u32;
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        (y, m, d, rem / 3600, rem % 3600 / 60, rem % 60, micros)
    }

    /// Shift by a signed number of seconds, saturating.
    pub fn add_seconds(self, secs: i64) -> Self {
        Self {
            micros: self.micros.saturating_add(secs.saturating_mul(1_000_000)),
        }
    }

    /// Parse RFC 3339 (`2024-05-01T10:00:00Z`, `...T10:00:00.123+02:00`); a space may stand for
    /// the `T`, and a missing zone means UTC.
    pub fn parse_rfc3339(input: &str) -> Result<Self, TimestampError> {
        parse_rfc3339(input).ok_or_else(|| TimestampError {
            input: input.to_owned(),
        })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, mo, d, h, mi, s, us) = self.to_utc_parts();
        write!(f, "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")?;
        if us != 0 {
            if us % 1000 == 0 {
                write!(f, ".{:03}", us / 1000)?;
            } else {
                write!(f, ".{us:06}")?;
            }
        }
        f.write_str("Z")
    }
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_rfc3339(s)
    }
}

impl From<SystemTime> for Timestamp {
    fn from(t: SystemTime) -> Self {
        let micros = match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
            Err(e) => i64::try_from(e.duration().as_micros()).map_or(i64::MIN, |m| -m),
        };
        Self { micros }
    }
}

impl From<Timestamp> for SystemTime {
    fn from(t: Timestamp) -> Self {
        let abs = Duration::from_micros(t.micros.unsigned_abs());
        if t.micros >= 0 {
            UNIX_EPOCH + abs
        } else {
            UNIX_EPOCH - abs
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse_rfc3339(&text).map_err(serde::de::Error::custom)
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in `month` of `year` (0 for an invalid month).
pub fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

// Howard Hinnant's civil calendar algorithms, proleptic Gregorian.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn digits(s: &[u8]) -> Option<u32> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    s.iter().try_fold(0u32, |acc, b| {
        acc.checked_mul(10)?.checked_add(u32::from(b - b'0'))
    })
}

fn parse_rfc3339(input: &str) -> Option<Timestamp> {
    let b = input.trim().as_bytes();
    let year = i64::from(digits(b.get(0..4)?)?);
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let month = digits(b.get(5..7)?)?;
    let day = digits(b.get(8..10)?)?;
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) {
        return None;
    }
    let hour = digits(b.get(11..13)?)?;
    let minute = digits(b.get(14..16)?)?;
    let second = digits(b.get(17..19)?)?;
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    let mut rest = b.get(19..)?;

    let mut micros = 0u32;
    if rest.first() == Some(&b'.') {
        let frac_len = rest
            .iter()
            .skip(1)
            .take_while(|c| c.is_ascii_digit())
            .count();
        if frac_len == 0 {
            return None;
        }
        let frac = rest.get(1..=frac_len)?;
        for (i, c) in frac.iter().take(6).enumerate() {
            micros += u32::from(c - b'0') * 10u32.pow(5 - i as u32);
        }
        rest = rest.get(frac_len + 1..)?;
    }

    let offset_secs: i64 = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::from(digits(&[*h1, *h2])?);
            let m = i64::from(digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let total = h * 3600 + m * 60;
            if *sign == b'+' { total } else { -total }
        }
        _ => return None,
    };
    let local = Timestamp::from_utc(year, month, day, hour, minute, second, micros)?;
    Some(local.add_seconds(-offset_secs))
}

/// One security-relevant occurrence, from a MAOS component or an ingested log line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecurityEvent {
    /// Unique id (a UUID for emitted events, a content hash for parsed lines).
    pub id: String,
    /// When it happened.
    pub time: Timestamp,
    /// Who reported it: a MAOS component (`gateway`, `identity`) or a log (`sshd`, `nginx`).
    pub source: String,
    #[serde(rename = "type")]
    pub event_type: SecurityEventType,
    pub severity: Severity,
    /// The user, agent or service the event is about, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// The source host when the log named it by host name instead of an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_host: Option<String>,
    /// The object acted on (a URL path, a secret name, a policy id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Further fields, keyed by their ECS name where one exists (`source.port`,
    /// `process.name`, `http.response.status_code`...).
    #[serde(default)]
    pub details: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
}

impl SecurityEvent {
    /// A new event with the required fields; the rest start empty.
    pub fn new(
        id: impl Into<String>,
        time: Timestamp,
        source: impl Into<String>,
        event_type: SecurityEventType,
        severity: Severity,
    ) -> Self {
        Self {
            id: id.into(),
            time,
            source: source.into(),
            event_type,
            severity,
            principal: None,
            source_ip: None,
            source_host: None,
            resource: None,
            details: Map::new(),
            tags: Vec::new(),
            correlation_id: None,
        }
    }

    /// The address or host name the event came from, as text.
    pub fn source_address(&self) -> Option<String> {
        match (&self.source_ip, &self.source_host) {
            (Some(ip), _) => Some(ip.to_string()),
            (None, Some(host)) => Some(host.clone()),
            (None, None) => None,
        }
    }

    /// The event as dotted ECS field names, the form detection rules query.
    ///
    /// | SecurityEvent  | field                                  |
    /// |----------------|----------------------------------------|
    /// | id             | `event.id`                             |
    /// | time           | `@timestamp`                           |
    /// | source         | `event.provider`                       |
    /// | type           | `event.action`, `event.category`, `event.outcome` |
    /// | severity       | `event.severity` (0-4), `event.severity_name` |
    /// | principal      | `user.name`                            |
    /// | source_ip      | `source.ip` (and `source.address`)     |
    /// | source_host    | `source.domain` (and `source.address`) |
    /// | resource       | `resource.name`                        |
    /// | tags           | `tags`                                 |
    /// | correlation_id | `event.correlation_id`                 |
    /// | details        | each key as given, nested objects joined with `.` |
    ///
    /// Core fields win over a details key of the same name.
    pub fn flatten(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        flatten_into(&mut out, "", &self.details, 0);

        out.insert("@timestamp".into(), Value::String(self.time.to_string()));
        out.insert("event.id".into(), Value::String(self.id.clone()));
        out.insert("event.provider".into(), Value::String(self.source.clone()));
        out.insert(
            "event.action".into(),
            Value::String(self.event_type.as_str().into()),
        );
        out.insert(
            "event.category".into(),
            Value::String(self.event_type.ecs_category().into()),
        );
        out.insert(
            "event.outcome".into(),
            Value::String(self.event_type.ecs_outcome().into()),
        );
        out.insert("event.severity".into(), Value::from(self.severity.number()));
        out.insert(
            "event.severity_name".into(),
            Value::String(self.severity.as_str().into()),
        );
        if let Some(p) = &self.principal {
            out.insert("user.name".into(), Value::String(p.clone()));
        }
        if let Some(ip) = &self.source_ip {
            out.insert("source.ip".into(), Value::String(ip.to_string()));
        }
        if let Some(host) = &self.source_host {
            out.insert("source.domain".into(), Value::String(host.clone()));
        }
        if let Some(addr) = self.source_address() {
            out.insert("source.address".into(), Value::String(addr));
        }
        if let Some(r) = &self.resource {
            out.insert("resource.name".into(), Value::String(r.clone()));
        }
        if !self.tags.is_empty() {
            out.insert(
                "tags".into(),
                Value::Array(self.tags.iter().cloned().map(Value::String).collect()),
            );
        }
        if let Some(c) = &self.correlation_id {
            out.insert("event.correlation_id".into(), Value::String(c.clone()));
        }
        out
    }

    /// The flattened fields as one JSON object with dotted keys.
    pub fn to_ecs(&self) -> Value {
        Value::Object(self.flatten().into_iter().collect())
    }
}

// Deeper nesting than this in `details` is kept as one JSON value.
const MAX_FLATTEN_DEPTH: usize = 16;

fn flatten_into(
    out: &mut BTreeMap<String, Value>,
    prefix: &str,
    map: &Map<String, Value>,
    depth: usize,
) {
    for (key, value) in map {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Object(inner) if depth < MAX_FLATTEN_DEPTH => {
                flatten_into(out, &name, inner, depth + 1);
            }
            other => {
                out.insert(name, other.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_round_trips_through_rfc3339() {
        let t = Timestamp::from_utc(2024, 2, 29, 23, 59, 58, 123_000).unwrap();
        assert_eq!(t.to_string(), "2024-02-29T23:59:58.123Z");
        assert_eq!(
            Timestamp::parse_rfc3339("2024-02-29T23:59:58.123Z").unwrap(),
            t
        );
        let shifted = Timestamp::parse_rfc3339("2019-07-08T17:40:16.954167-04:00").unwrap();
        assert_eq!(shifted.to_string(), "2019-07-08T21:40:16.954167Z");
        assert_eq!(
            Timestamp::from_unix_seconds(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert!(Timestamp::parse_rfc3339("2023-02-29T00:00:00Z").is_err());
        assert!(Timestamp::parse_rfc3339("2023-02-2").is_err());
        assert!(Timestamp::parse_rfc3339("").is_err());
    }

    #[test]
    fn negative_times_format_correctly() {
        let t = Timestamp::from_utc(1969, 12, 31, 23, 59, 59, 500_000).unwrap();
        assert_eq!(t.unix_micros(), -500_000);
        assert_eq!(t.to_string(), "1969-12-31T23:59:59.500Z");
    }

    #[test]
    fn event_serializes_with_short_names_and_flattens_to_ecs() {
        let mut e = SecurityEvent::new(
            "e1",
            Timestamp::from_unix_seconds(1_700_000_000),
            "sshd",
            SecurityEventType::AuthenticationFailure,
            Severity::Medium,
        );
        e.principal = Some("root".into());
        e.source_ip = Some("2001:db8::1".parse().unwrap());
        e.details.insert("source.port".into(), Value::from(22));
        e.details.insert(
            "process".into(),
            serde_json::json!({"name": "sshd", "pid": 7}),
        );

        let json = serde_json::to_value(&e).unwrap();
        assert_eq!(json["type"], "authentication_failure");
        assert_eq!(json["source_ip"], "2001:db8::1");
        let back: SecurityEvent = serde_json::from_value(json).unwrap();
        assert_eq!(back, e);

        let flat = e.flatten();
        assert_eq!(flat["user.name"], "root");
        assert_eq!(flat["source.ip"], "2001:db8::1");
        assert_eq!(flat["event.category"], "authentication");
        assert_eq!(flat["event.outcome"], "failure");
        assert_eq!(flat["process.name"], "sshd");
        assert_eq!(flat["source.port"], 22);
    }
}
