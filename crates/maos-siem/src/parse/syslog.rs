//! Syslog framing: RFC 5424, and RFC 3164 (BSD) with the year and zone it leaves out.
//!
//! RFC 3164 stamps carry neither year nor zone. The zone is the collector's configured offset
//! ([`TimeContext::utc_offset_secs`], UTC by default). The year is the one that puts the stamp
//! at or before `now` (plus [`TimeContext::future_skew_secs`] of clock skew) and less than one
//! year before it: the current year, or the previous one when the current year would place the
//! event in the future. A 29 February that does not exist in the chosen year is refused.

use std::collections::BTreeMap;

use maos_core::Timestamp;

/// Why a line is not syslog of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyslogError {
    #[error("missing or invalid priority in `{0}`")]
    Priority(String),
    #[error("unsupported syslog version in `{0}`")]
    Version(String),
    #[error("invalid timestamp in `{0}`")]
    Timestamp(String),
    #[error("truncated header in `{0}`")]
    Truncated(String),
    #[error("invalid structured data in `{0}`")]
    StructuredData(String),
}

/// The reference point for completing RFC 3164 stamps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeContext {
    /// The collector's current time.
    pub now: Timestamp,
    /// Offset of the zone the sender writes stamps in, in seconds east of UTC.
    pub utc_offset_secs: i32,
    /// How far ahead of `now` a stamp may be before it is taken as last year's.
    pub future_skew_secs: i64,
}

impl TimeContext {
    pub fn new(now: Timestamp) -> Self {
        Self {
            now,
            utc_offset_secs: 0,
            future_skew_secs: 60,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogFormat {
    Rfc5424,
    Rfc3164,
}

/// One syslog message with its header taken apart.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SyslogMessage<'a> {
    pub format: SyslogFormat,
    pub facility: Option<u8>,
    pub severity: Option<u8>,
    pub time: Timestamp,
    pub hostname: Option<&'a str>,
    pub app_name: Option<&'a str>,
    pub proc_id: Option<&'a str>,
    pub msg_id: Option<&'a str>,
    /// RFC 5424 structured data: element id -> parameters.
    pub structured_data: BTreeMap<String, BTreeMap<String, String>>,
    pub message: &'a str,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Month number (1-12) of an English three-letter abbreviation.
pub fn month_number(abbr: &str) -> Option<u32> {
    MONTHS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(abbr))
        .map(|i| i as u32 + 1)
}

/// Complete a stamp without a year: the latest year in which it is not in the future (with
/// the skew allowance) and not a year or more in the past; `None` when no such date exists.
pub fn infer_year(
    ctx: &TimeContext,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micros: u32,
) -> Option<Timestamp> {
    let offset = i64::from(ctx.utc_offset_secs);
    let local_now = ctx.now.add_seconds(offset);
    let (year, ..) = local_now.to_utc_parts();
    let limit = ctx.now.add_seconds(ctx.future_skew_secs);
    let year_ago = ctx.now.add_seconds(-366 * 86_400);

    for candidate in [year + 1, year, year - 1] {
        let Some(local) = Timestamp::from_utc(candidate, month, day, hour, minute, second, micros)
        else {
            continue;
        };
        let t = local.add_seconds(-offset);
        if t <= limit {
            // A year back at most: 366 days covers the longest year.
            return (t > year_ago).then_some(t);
        }
    }
    None
}

fn split_token(s: &str) -> (&str, &str) {
    match s.split_once(' ') {
        Some((a, b)) => (a, b),
        None => (s, ""),
    }
}

fn nil(s: &str) -> Option<&str> {
    (s != "-").then_some(s)
}

fn parse_priority(line: &str) -> Result<(Option<u8>, &str), SyslogError> {
    let Some(rest) = line.strip_prefix('<') else {
        return Ok((None, line));
    };
    let (digits, rest) = rest
        .split_once('>')
        .ok_or_else(|| SyslogError::Priority(line.to_owned()))?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SyslogError::Priority(line.to_owned()));
    }
    let pri: u16 = digits
        .parse()
        .map_err(|_| SyslogError::Priority(line.to_owned()))?;
    let pri = u8::try_from(pri).ok().filter(|p| *p <= 191);
    let pri = pri.ok_or_else(|| SyslogError::Priority(line.to_owned()))?;
    Ok((Some(pri), rest))
}

/// Parse an RFC 5424 line: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`.
pub fn parse_rfc5424(line: &str) -> Result<SyslogMessage<'_>, SyslogError> {
    let (pri, rest) = parse_priority(line)?;
    let pri = pri.ok_or_else(|| SyslogError::Priority(line.to_owned()))?;
    let (version, rest) = split_token(rest);
    if version != "1" {
        return Err(SyslogError::Version(line.to_owned()));
    }
    let (stamp, rest) = split_token(rest);
    let time = Timestamp::parse_rfc3339(stamp).map_err(|_| SyslogError::Timestamp(line.into()))?;
    let (host, rest) = split_token(rest);
    let (app, rest) = split_token(rest);
    let (proc_id, rest) = split_token(rest);
    let (msg_id, rest) = split_token(rest);
    if msg_id.is_empty() {
        return Err(SyslogError::Truncated(line.to_owned()));
    }

    let (structured_data, rest) =
        parse_structured_data(rest).ok_or_else(|| SyslogError::StructuredData(line.to_owned()))?;
    let message = rest.strip_prefix(' ').unwrap_or(rest);
    let message = message.strip_prefix('\u{feff}').unwrap_or(message);

    Ok(SyslogMessage {
        format: SyslogFormat::Rfc5424,
        facility: Some(pri / 8),
        severity: Some(pri % 8),
        time,
        hostname: nil(host),
        app_name: nil(app),
        proc_id: nil(proc_id),
        msg_id: nil(msg_id),
        structured_data,
        message,
    })
}

type StructuredData = BTreeMap<String, BTreeMap<String, String>>;

fn parse_structured_data(s: &str) -> Option<(StructuredData, &str)> {
    let mut out = BTreeMap::new();
    if let Some(rest) = s.strip_prefix('-') {
        return Some((out, rest));
    }
    let mut rest = s;
    if !rest.starts_with('[') {
        return None;
    }
    while let Some(after) = rest.strip_prefix('[') {
        let id_end = after.find([' ', ']'])?;
        let id = after.get(..id_end)?;
        let mut cur = after.get(id_end..)?;
        let mut params = BTreeMap::new();
        loop {
            if let Some(r) = cur.strip_prefix(']') {
                cur = r;
                break;
            }
            let r = cur.strip_prefix(' ')?;
            let (name, r) = r.split_once("=\"")?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, e @ ('"' | '\\' | ']'))) => value.push(e),
                        Some((_, e)) => {
                            value.push('\\');
                            value.push(e);
                        }
                        None => return None,
                    },
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    other => value.push(other),
                }
            }
            cur = r.get(end?..)?;
            params.insert(name.to_owned(), value);
        }
        out.insert(id.to_owned(), params);
        rest = cur;
    }
    Some((out, rest))
}

fn two_digits(s: &str) -> Option<u32> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// Parse a BSD stamp at the start of `s`: `Mmm dd hh:mm:ss` (day padded with a space or
/// not, optional fraction) or an RFC 3339 stamp. Returns the time and the rest after it.
pub fn parse_bsd_stamp<'a>(s: &'a str, ctx: &TimeContext) -> Option<(Timestamp, &'a str)> {
    // RFC 3339 stamps, as rsyslog writes with its high-precision template.
    if s.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (stamp, rest) = split_token(s);
        return Timestamp::parse_rfc3339(stamp).ok().map(|t| (t, rest));
    }

    let month = month_number(s.get(..3)?)?;
    let rest = s.get(3..)?.strip_prefix(' ')?;
    let rest = rest.trim_start_matches(' ');
    let day_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    if !(1..=2).contains(&day_len) {
        return None;
    }
    let day: u32 = rest.get(..day_len)?.parse().ok()?;
    let rest = rest.get(day_len..)?.strip_prefix(' ')?;
    let (clock, rest) = split_token(rest);
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let hour = two_digits(parts.next()?)?;
    let minute = two_digits(parts.next()?)?;
    let second = two_digits(parts.next()?)?;
    if parts.next().is_some() {
        return None;
    }
    let micros = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<6}");
            padded.get(..6)?.parse().ok()?
        }
        Some(_) => return None,
    };
    let t = infer_year(ctx, month, day, hour, minute, second, micros)?;
    Some((t, rest))
}

/// Whether a token is a syslog tag (`sshd[12]:`, `sshd:`, `[sshd]`, `[sshd]:`).
fn tag_parts(token: &str) -> Option<(&str, Option<&str>)> {
    if let Some(inner) = token.strip_prefix('[') {
        let inner = inner.strip_suffix(':').unwrap_or(inner);
        let name = inner.strip_suffix(']')?;
        return (!name.is_empty() && !name.contains(['[', ']'])).then_some((name, None));
    }
    let body = token.strip_suffix(':')?;
    if let Some((name, pid)) = body.split_once('[') {
        let pid = pid.strip_suffix(']')?;
        return (!name.is_empty() && !pid.is_empty()).then_some((name, Some(pid)));
    }
    (!body.is_empty() && !body.contains([']', '='])).then_some((body, None))
}

/// Parse an RFC 3164 line: `[<PRI>]STAMP [HOST] TAG[PID]: MSG`.
pub fn parse_rfc3164<'a>(
    line: &'a str,
    ctx: &TimeContext,
) -> Result<SyslogMessage<'a>, SyslogError> {
    let (pri, rest) = parse_priority(line)?;
    let (time, rest) =
        parse_bsd_stamp(rest, ctx).ok_or_else(|| SyslogError::Timestamp(line.to_owned()))?;

    let (first, after_first) = split_token(rest);
    let (hostname, tag, message) = if let Some(tag) = tag_parts(first) {
        (None, Some(tag), after_first)
    } else {
        let (second, after_second) = split_token(after_first);
        match tag_parts(second) {
            Some(tag) => (Some(first), Some(tag), after_second),
            // A journal-style tag without colon (`[sshd] msg`) after a host name.
            None => (Some(first).filter(|h| !h.is_empty()), None, after_first),
        }
    };
    if hostname.is_none() && tag.is_none() && rest.is_empty() {
        return Err(SyslogError::Truncated(line.to_owned()));
    }

    Ok(SyslogMessage {
        format: SyslogFormat::Rfc3164,
        facility: pri.map(|p| p / 8),
        severity: pri.map(|p| p % 8),
        time,
        hostname,
        app_name: tag.map(|t| t.0),
        proc_id: tag.and_then(|t| t.1),
        msg_id: None,
        structured_data: BTreeMap::new(),
        message,
    })
}

/// Parse either syslog flavour: `<PRI>1 ` selects RFC 5424, anything else RFC 3164.
pub fn parse_syslog<'a>(
    line: &'a str,
    ctx: &TimeContext,
) -> Result<SyslogMessage<'a>, SyslogError> {
    let is_5424 = line.starts_with('<')
        && line
            .split_once('>')
            .is_some_and(|(_, r)| r.starts_with("1 "));
    if is_5424 {
        parse_rfc5424(line)
    } else {
        parse_rfc3164(line, ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(now: &str) -> TimeContext {
        TimeContext::new(Timestamp::parse_rfc3339(now).unwrap())
    }

    #[test]
    fn year_is_never_in_the_future_nor_a_year_back() {
        let c = ctx("2005-08-14T10:00:00Z");
        let t = infer_year(&c, 7, 20, 14, 42, 11, 0).unwrap();
        assert_eq!(t.to_string(), "2005-07-20T14:42:11Z");
        let t = infer_year(&c, 9, 29, 16, 28, 2, 0).unwrap();
        assert_eq!(t.to_string(), "2004-09-29T16:28:02Z");
        // Just within the skew allowance stays this year.
        let t = infer_year(&c, 8, 14, 10, 0, 30, 0).unwrap();
        assert_eq!(t.to_string(), "2005-08-14T10:00:30Z");
        // New year's eve seen just after midnight belongs to last year.
        let c = ctx("2024-01-01T00:00:05Z");
        let t = infer_year(&c, 12, 31, 23, 59, 59, 0).unwrap();
        assert_eq!(t.to_string(), "2023-12-31T23:59:59Z");
        // A stamp a minute into next year with the collector behind keeps this year's skew rule.
        let c = ctx("2023-12-31T23:59:30Z");
        let t = infer_year(&c, 1, 1, 0, 0, 10, 0).unwrap();
        assert_eq!(t.to_string(), "2024-01-01T00:00:10Z");
        // 29 February in a non-leap year is refused rather than moved.
        let c = ctx("2023-06-01T00:00:00Z");
        assert_eq!(infer_year(&c, 2, 29, 0, 0, 0, 0), None);
        let c = ctx("2024-06-01T00:00:00Z");
        assert!(infer_year(&c, 2, 29, 0, 0, 0, 0).is_some());
    }

    #[test]
    fn zone_offset_applies_to_bsd_stamps() {
        let mut c = ctx("2005-08-14T10:00:00Z");
        c.utc_offset_secs = 7200;
        let m = parse_rfc3164("Jul  3 14:59:17 host sshd[1]: x", &c).unwrap();
        assert_eq!(m.time.to_string(), "2005-07-03T12:59:17Z");
    }

    #[test]
    fn rfc3164_variants() {
        let c = ctx("2005-08-14T10:00:00Z");
        let m = parse_rfc3164("Jul  3 14:59:17 host sshd-session[1571]: Failed x", &c).unwrap();
        assert_eq!(m.hostname, Some("host"));
        assert_eq!(m.app_name, Some("sshd-session"));
        assert_eq!(m.proc_id, Some("1571"));
        assert_eq!(m.message, "Failed x");

        let m = parse_rfc3164("Nov 23 21:50:19 sshd[8148]: Disconnecting", &c).unwrap();
        assert_eq!(m.hostname, None);
        assert_eq!(m.app_name, Some("sshd"));

        let m = parse_rfc3164("Jun 25 23:53:34 [sshd] User root", &c).unwrap();
        assert_eq!(m.app_name, Some("sshd"));
        assert_eq!(m.message, "User root");

        let m = parse_rfc3164("<34>Feb 7 16:01:07 linux-m899 su: hello", &c).unwrap();
        assert_eq!(m.facility, Some(4));
        assert_eq!(m.severity, Some(2));
        assert_eq!(m.app_name, Some("su"));

        let m = parse_rfc3164("2015-04-16T18:02:50.321974+00:00 host sshd[2716]: x", &c).unwrap();
        assert_eq!(m.time.to_string(), "2015-04-16T18:02:50.321974Z");

        assert!(parse_rfc3164("Foo 16 18:02:50 host", &c).is_err());
        assert!(parse_rfc3164("<999>Jul  3 14:59:17 host x: y", &c).is_err());
    }

    #[test]
    fn rfc5424_with_structured_data() {
        let line = "<38>1 2019-07-08T17:40:17.954167-04:00 hostname.example.com sshd 55555 - \
                    [timeQuality tzKnown=\"1\" isSynced=\"0\"][xxx@123 test=\"[brackets\\]\"] \
                    Failed unknown";
        let m = parse_rfc5424(line).unwrap();
        assert_eq!(m.time.to_string(), "2019-07-08T21:40:17.954167Z");
        assert_eq!(m.hostname, Some("hostname.example.com"));
        assert_eq!(m.app_name, Some("sshd"));
        assert_eq!(m.proc_id, Some("55555"));
        assert_eq!(m.msg_id, None);
        assert_eq!(m.structured_data["xxx@123"]["test"], "[brackets]");
        assert_eq!(m.structured_data["timeQuality"]["isSynced"], "0");
        assert_eq!(m.message, "Failed unknown");
        assert_eq!(m.facility, Some(4));

        assert!(parse_rfc5424("<38>2 2019-07-08T17:40:17Z h a p m - x").is_err());
        assert!(parse_rfc5424("<38>1 2019-07-08T17:40:17Z h a p m [x y=\"1").is_err());
        assert!(parse_rfc5424("<38>1 2019-07-08T17:40:17Z h").is_err());
    }
}
