//! Web server logs: the combined access format (nginx and Apache), nginx error logs and
//! Apache error logs (2.2 and 2.4 layouts).

use maos_core::Timestamp;

use super::host::{Host, parse_host, parse_host_port};
use super::syslog::{TimeContext, month_number};

/// Why a line is not a web log line of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebLogError {
    #[error("not a combined access log line: `{0}`")]
    Access(String),
    #[error("not an nginx error log line: `{0}`")]
    NginxError(String),
    #[error("not an Apache error log line: `{0}`")]
    ApacheError(String),
}

/// One request from an access log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct AccessRecord {
    pub client: Host,
    pub user: Option<String>,
    pub time: Timestamp,
    /// The raw request line (may be empty or binary junk from scanners).
    pub request: String,
    pub method: Option<String>,
    pub path: Option<String>,
    pub protocol: Option<String>,
    pub status: u16,
    pub bytes: Option<u64>,
    pub referrer: Option<String>,
    pub user_agent: Option<String>,
}

/// What an error log line says happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WebErrorKind {
    /// Unknown user or wrong password for HTTP authentication.
    AuthenticationFailure,
    /// Access refused by configuration or an authorization module.
    AuthorizationFailure,
    /// Requests limited by a rate limit zone.
    RateLimited,
    /// Anything else.
    Other,
}

/// One line of an nginx or Apache error log.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ErrorRecord {
    pub time: Timestamp,
    pub level: String,
    pub client: Option<Host>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub kind: WebErrorKind,
    pub message: String,
}

fn two(s: &str) -> Option<u32> {
    (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `20/Jan/2015:19:53:28 +0100`.
fn parse_clf_time(s: &str) -> Option<Timestamp> {
    let (stamp, zone) = s.split_once(' ')?;
    let mut parts = stamp.splitn(3, '/');
    let day = two(parts.next()?)?;
    let month = month_number(parts.next()?)?;
    let rest = parts.next()?;
    let (year, clock) = rest.split_once(':')?;
    let year: i64 = year.parse().ok()?;
    let mut hms = clock.split(':');
    let (h, m, sec) = (two(hms.next()?)?, two(hms.next()?)?, two(hms.next()?)?);
    let local = Timestamp::from_utc(year, month, day, h, m, sec, 0)?;
    let sign = match zone.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let zh = i64::from(two(zone.get(1..3)?)?);
    let zm = i64::from(two(zone.get(3..5)?)?);
    if zone.len() != 5 {
        return None;
    }
    Some(local.add_seconds(-sign * (zh * 3600 + zm * 60)))
}

/// Read a double-quoted field with backslash escapes; returns the text and the rest.
fn quoted(s: &str) -> Option<(String, &str)> {
    let body = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e)) => {
                    if e != '"' && e != '\\' {
                        out.push('\\');
                    }
                    out.push(e);
                }
                None => return None,
            },
            '"' => return Some((out, body.get(i + 1..)?)),
            other => out.push(other),
        }
    }
    None
}

/// Parse a combined (or common) access log line.
pub fn parse_access(line: &str) -> Result<AccessRecord, WebLogError> {
    parse_access_inner(line.trim_end()).ok_or_else(|| WebLogError::Access(line.to_owned()))
}

fn parse_access_inner(line: &str) -> Option<AccessRecord> {
    let (client, rest) = line.split_once(' ')?;
    let (client, _) = parse_host_port(client)?;
    let (_ident, rest) = rest.split_once(' ')?;
    let (user, rest) = rest.split_once(' ')?;
    let rest = rest.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] ")?;
    let time = parse_clf_time(stamp)?;
    let (request, rest) = quoted(rest)?;
    let rest = rest.trim_start();
    let (status, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = status.parse().ok()?;
    let (bytes, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let bytes = bytes.parse().ok();
    let (referrer, rest) = match quoted(rest.trim_start()) {
        Some((r, rest)) => (Some(r), rest),
        None => (None, rest),
    };
    let user_agent = quoted(rest.trim_start()).map(|(u, _)| u);

    let mut parts = request.splitn(3, ' ');
    let (method, path, protocol) = match (parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(p), proto) if !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase()) => {
            (
                Some(m.to_owned()),
                Some(p.to_owned()),
                proto.map(str::to_owned),
            )
        }
        _ => (None, None, None),
    };
    let dash = |s: Option<String>| s.filter(|v| v != "-");
    Some(AccessRecord {
        client,
        user: dash(Some(user.to_owned())),
        time,
        request,
        method,
        path,
        protocol,
        status,
        bytes,
        referrer: dash(referrer),
        user_agent: dash(user_agent),
    })
}

fn classify_message(message: &str) -> (WebErrorKind, Option<String>) {
    let m = message.trim_start();
    // Apache 2.4 prefixes an error code, `AH01618: `; Digest module lines start `Digest: `.
    let m = match m.split_once(": ") {
        Some((code, rest)) if code.starts_with("AH") && code.len() == 7 => rest,
        _ => m,
    };
    let m = m.strip_prefix("Digest: ").unwrap_or(m);

    if let Some(r) = m.strip_prefix("user ") {
        // nginx: user "x" was not found / user "x": password mismatch; Apache: user x not
        // found, user x: authentication failure, user `x' in realm ... not found.
        let user = if let Some(q) = r.strip_prefix('"') {
            q.split_once('"').map(|(u, _)| u.to_owned())
        } else if let Some(q) = r.strip_prefix('`') {
            q.split_once('\'').map(|(u, _)| u.to_owned())
        } else {
            r.split_once([' ', ':']).map(|(u, _)| u.to_owned())
        };
        if r.contains("authorization failure") {
            return (WebErrorKind::AuthorizationFailure, user);
        }
        if r.contains("not found")
            || r.contains("password mismatch")
            || r.contains("Password Mismatch")
            || r.contains("authentication failure")
        {
            return (WebErrorKind::AuthenticationFailure, user);
        }
    }
    if let Some(r) = m.strip_prefix("PAM: user '")
        && let Some((user, rest)) = r.split_once('\'')
        && rest.contains("not authenticated")
    {
        return (WebErrorKind::AuthenticationFailure, Some(user.to_owned()));
    }
    if m.starts_with("client denied by server configuration")
        || m.starts_with("Authorization of user ")
        || m.starts_with("access forbidden by rule")
    {
        let user = m
            .strip_prefix("Authorization of user ")
            .and_then(|r| r.split_once(' '))
            .map(|(u, _)| u.to_owned());
        return (WebErrorKind::AuthorizationFailure, user);
    }
    if m.starts_with("client used wrong authentication scheme")
        || m.starts_with("invalid nonce")
        || m.starts_with("realm mismatch")
        || m.starts_with("unknown algorithm")
        || m.starts_with("invalid qop")
    {
        return (WebErrorKind::AuthenticationFailure, None);
    }
    if m.starts_with("limiting requests")
        || m.starts_with("limiting connections")
        || m.starts_with("delaying request")
    {
        return (WebErrorKind::RateLimited, None);
    }
    (WebErrorKind::Other, None)
}

/// Parse an nginx error log line:
/// `2012/04/09 11:53:29 [error] 2865#0: *66647 MESSAGE, client: ADDR, server: ...`.
/// The stamp has no zone; it is read in the context's offset.
pub fn parse_nginx_error(line: &str, ctx: &TimeContext) -> Result<ErrorRecord, WebLogError> {
    parse_nginx_error_inner(line.trim_end(), ctx)
        .ok_or_else(|| WebLogError::NginxError(line.to_owned()))
}

fn parse_nginx_error_inner(line: &str, ctx: &TimeContext) -> Option<ErrorRecord> {
    let date = line.get(..10)?;
    let clock = line.get(11..19)?;
    let mut d = date.split('/');
    let year: i64 = d.next()?.parse().ok()?;
    let month = two(d.next()?)?;
    let day = two(d.next()?)?;
    let mut c = clock.split(':');
    let (h, m, s) = (two(c.next()?)?, two(c.next()?)?, two(c.next()?)?);
    let local = Timestamp::from_utc(year, month, day, h, m, s, 0)?;
    let time = local.add_seconds(-i64::from(ctx.utc_offset_secs));

    let rest = line.get(19..)?.strip_prefix(" [")?;
    let (level, rest) = rest.split_once("] ")?;
    // `PID#TID: *CONN ` precede the message.
    let (_, rest) = rest.split_once(": ")?;
    let rest = match rest.strip_prefix('*') {
        Some(r) => r.split_once(' ').map_or("", |(_, m)| m),
        None => rest,
    };
    // The last `, client: ` is nginx's own; earlier ones may come from a user name.
    let (message, client) = match rest.rfind(", client: ") {
        Some(i) => {
            let after = rest.get(i + 10..)?;
            let addr = after.split(',').next()?.trim();
            (rest.get(..i)?, parse_host(addr))
        }
        None => (rest, None),
    };
    let (kind, user) = classify_message(message);
    Some(ErrorRecord {
        time,
        level: level.to_owned(),
        client,
        port: None,
        user,
        kind,
        message: message.to_owned(),
    })
}

/// Parse an Apache error log line, 2.2 (`[Thu Jul 11 01:21:41 2013] [error] [client ADDR]`)
/// or 2.4 (`[... .123456 2013] [module:level] [pid N:tid M] [client ADDR:PORT] AH01618: ...`).
pub fn parse_apache_error(line: &str, ctx: &TimeContext) -> Result<ErrorRecord, WebLogError> {
    parse_apache_error_inner(line.trim_end(), ctx)
        .ok_or_else(|| WebLogError::ApacheError(line.to_owned()))
}

fn parse_apache_error_inner(line: &str, ctx: &TimeContext) -> Option<ErrorRecord> {
    let rest = line.strip_prefix('[')?;
    let (stamp, mut rest) = rest.split_once("] ")?;
    let mut f = stamp.split_whitespace();
    let _weekday = f.next()?;
    let month = month_number(f.next()?)?;
    let day: u32 = f.next()?.parse().ok()?;
    let clock = f.next()?;
    let year: i64 = f.next()?.parse().ok()?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut c = hms.split(':');
    let (h, m, s) = (two(c.next()?)?, two(c.next()?)?, two(c.next()?)?);
    let micros = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}").get(..6)?.parse().ok()?
    };
    let local = Timestamp::from_utc(year, month, day, h, m, s, micros)?;
    let time = local.add_seconds(-i64::from(ctx.utc_offset_secs));

    let mut level = String::new();
    let mut client = None;
    let mut port = None;
    // Bracketed fields up to the message; only the leading ones are Apache's.
    while let Some(r) = rest.strip_prefix('[') {
        // A bracketed IPv6 client (`[client [2001:db8::1]:80]`) closes after its port.
        let close = if r.starts_with("client [") || r.starts_with("remote [") {
            let inner = r.find(']')?;
            inner + 1 + r.get(inner + 1..)?.find(']')?
        } else {
            r.find(']')?
        };
        let field = r.get(..close)?;
        rest = r.get(close + 1..)?.trim_start();
        if let Some(addr) = field
            .strip_prefix("client ")
            .or_else(|| field.strip_prefix("remote "))
        {
            let (host, p) = parse_host_port(addr)?;
            client = Some(host);
            port = p;
            break;
        } else if !field.starts_with("pid ") {
            level = field.rsplit(':').next().unwrap_or(field).to_owned();
        }
    }
    let (kind, user) = classify_message(rest);
    Some(ErrorRecord {
        time,
        level,
        client,
        port,
        user,
        kind,
        message: rest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_line_with_escapes_and_ipv6() {
        let r = parse_access(
            "2001:db8::1 - bob [20/Jan/2015:19:53:28 +0100] \"GET /a\\\"b HTTP/1.1\" 401 47 \"-\" \"curl/8\"",
        )
        .unwrap();
        assert_eq!(r.client.to_string(), "2001:db8::1");
        assert_eq!(r.time.to_string(), "2015-01-20T18:53:28Z");
        assert_eq!(r.path.as_deref(), Some("/a\"b"));
        assert_eq!(r.status, 401);
        assert_eq!(r.user.as_deref(), Some("bob"));
        assert_eq!(r.user_agent.as_deref(), Some("curl/8"));
        assert_eq!(r.referrer, None);
        assert!(parse_access("garbage").is_err());
        assert!(parse_access("1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] \"GET").is_err());
    }
}
