#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! fail2ban's web server samples (apache-auth, nginx-*): every line fail2ban matches is
//! parsed, with the same client address and time. Journal-format blocks (`logtype: journal`,
//! a syslog header before the nginx line) and syslog-forwarded Apache lines are skipped and
//! counted. Whether a line is an authentication failure is reported, not asserted: fail2ban's
//! apache-auth and nginx filters carry policy choices (which digest errors count) that MAOS
//! leaves to rules.

mod common;

use maos_core::Timestamp;
use maos_siem::ingest::{InputFormat, detect};
use maos_siem::parse::syslog::TimeContext;
use maos_siem::parse::web::{WebErrorKind, parse_access, parse_apache_error, parse_nginx_error};
use serde_json::Value;

fn cases(file: &str) -> Vec<(Value, String, bool)> {
    let text = std::fs::read_to_string(common::shared("logs/fail2ban").join(file)).unwrap();
    let mut out = Vec::new();
    let mut pending = None;
    let mut skip_block = false;
    for line in text.lines() {
        if let Some(opts) = line.strip_prefix("# filterOptions:") {
            skip_block = opts.contains("journal") || opts.contains("syslog");
        } else if let Some(j) = line.strip_prefix("# failJSON:") {
            pending = Some(serde_json::from_str(j.trim()).unwrap());
        } else if !line.starts_with('#')
            && !line.trim().is_empty()
            && let Some(expect) = pending.take()
        {
            out.push((expect, line.to_owned(), skip_block));
        }
    }
    out
}

/// The wall time an access log line shows (its own zone applied back).
fn access_wall_time(line: &str, utc: Timestamp) -> Timestamp {
    let zone = line.split_once("] ").unwrap().0.rsplit(' ').next().unwrap();
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let h: i64 = zone[1..3].parse().unwrap();
    let m: i64 = zone[3..5].parse().unwrap();
    utc.add_seconds(sign * (h * 3600 + m * 60))
}

#[test]
fn web_samples_parse_with_fail2ban_hosts_and_times() {
    let ctx = TimeContext::new(Timestamp::parse_rfc3339("2025-12-31T00:00:00Z").unwrap());
    let (mut checked, mut skipped, mut agree, mut disagree) = (0, 0, 0, Vec::new());
    let mut failures = Vec::new();

    for file in [
        "apache-auth",
        "nginx-http-auth",
        "nginx-limit-req",
        "nginx-bad-request",
        "nginx-botsearch",
    ] {
        for (expect, line, skip) in cases(file) {
            if skip {
                skipped += 1;
                continue;
            }
            let want = expect["match"].as_bool().unwrap();
            let (host, time, auth_like) = match detect(&line) {
                InputFormat::Access => {
                    let r = parse_access(&line).unwrap_or_else(|e| panic!("{file}: {e}"));
                    let status_flag = r.status >= 400;
                    (
                        Some(r.client.to_string()),
                        access_wall_time(&line, r.time),
                        status_flag,
                    )
                }
                InputFormat::ApacheError => {
                    let r =
                        parse_apache_error(&line, &ctx).unwrap_or_else(|e| panic!("{file}: {e}"));
                    (
                        r.client.map(|c| c.to_string()),
                        r.time,
                        r.kind != WebErrorKind::Other,
                    )
                }
                InputFormat::NginxError => {
                    let r =
                        parse_nginx_error(&line, &ctx).unwrap_or_else(|e| panic!("{file}: {e}"));
                    (
                        r.client.map(|c| c.to_string()),
                        r.time,
                        r.kind != WebErrorKind::Other,
                    )
                }
                other => panic!("{file}: detected as {other:?}: {line}"),
            };
            if auth_like == want {
                agree += 1;
            } else {
                disagree.push(format!("{file}: fail2ban {want}: {line}"));
            }
            if !want {
                continue;
            }
            checked += 1;
            if let Some(h) = expect.get("host").and_then(Value::as_str)
                && host.as_deref() != Some(h)
            {
                failures.push(format!("{file}: host {host:?} != {h}: {line}"));
            }
            if let Some(t) = expect.get("time").and_then(Value::as_str)
                && !time.to_string().starts_with(t)
            {
                failures.push(format!("{file}: time {time} != {t}: {line}"));
            }
        }
    }
    println!("{checked} matching lines checked, {skipped} skipped (journal/syslog framing)");
    println!(
        "failure classification agrees with fail2ban on {agree} lines, differs on {}:",
        disagree.len()
    );
    for d in &disagree {
        println!("  {d}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 60, "only {checked} lines checked");
}
