#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Every line of fail2ban's sshd sample preceded by a `# failJSON:` comment: the parser must
//! agree on match or no match, and on host and time when it matches.
//!
//! The sample is split into blocks by `# filterOptions:` lines; each block is run once per
//! option set listed there (normal, ddos, extra, aggressive), with fresh state. A `constraint`
//! on a line restricts the mode its expectation applies to; `name == 'sshd'` always holds.
//! fail2ban's test suite runs in Europe/Zurich, so for stamps that carry a zone the expected
//! wall time is UTC+2 (both such lines fall in summer time); stamps without a zone are taken
//! as given, and the reference "now" for the year is 2005-08-14 as in fail2ban's suite.

mod common;

use maos_core::Timestamp;
use maos_siem::parse::sshd::{SshdMode, SshdParser};
use maos_siem::parse::syslog::TimeContext;
use serde_json::Value;

struct Block {
    modes: Vec<SshdMode>,
    lines: Vec<(Option<Value>, String, usize)>,
}

fn mode_of(opts: &Value) -> SshdMode {
    match opts.get("mode").and_then(Value::as_str) {
        None | Some("normal") => SshdMode::Normal,
        Some("ddos") => SshdMode::Ddos,
        Some("extra") => SshdMode::Extra,
        Some("aggressive") => SshdMode::Aggressive,
        Some(other) => panic!("unknown mode {other}"),
    }
}

fn blocks(text: &str) -> Vec<Block> {
    let mut out = vec![Block {
        modes: vec![SshdMode::Normal],
        lines: vec![],
    }];
    let mut pending: Option<Value> = None;
    for (n, line) in text.lines().enumerate() {
        if let Some(opts) = line.strip_prefix("# filterOptions:") {
            let v: Value = serde_json::from_str(opts.trim()).unwrap();
            let list = match v {
                Value::Array(a) => a,
                other => vec![other],
            };
            out.push(Block {
                modes: list.iter().map(mode_of).collect(),
                lines: vec![],
            });
        } else if let Some(j) = line.strip_prefix("# failJSON:") {
            pending = Some(serde_json::from_str(j.trim()).unwrap());
        } else if line.starts_with('#') || line.trim().is_empty() {
            continue;
        } else {
            out.last_mut()
                .unwrap()
                .lines
                .push((pending.take(), line.to_owned(), n + 1));
        }
    }
    out
}

fn applies(expect: &Value, mode: SshdMode) -> bool {
    let Some(c) = expect.get("constraint").and_then(Value::as_str) else {
        return true;
    };
    let aggressive = mode == SshdMode::Aggressive;
    match c {
        "name == 'sshd'" => true,
        "opts.get('mode') != 'aggressive'" => !aggressive,
        "opts.get('mode') == 'aggressive'" => aggressive,
        other => panic!("unknown constraint {other}"),
    }
}

#[test]
fn sshd_parser_agrees_with_fail2ban_samples() {
    let text = std::fs::read_to_string(common::shared("logs/fail2ban/sshd")).unwrap();
    let now = Timestamp::parse_rfc3339("2005-08-14T10:00:00Z").unwrap();
    let (mut checked, mut matches, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();

    for block in blocks(&text) {
        for &mode in &block.modes {
            let mut parser = SshdParser::new(mode, TimeContext::new(now));
            for (expect, line, n) in &block.lines {
                let got = parser.feed(line);
                let Some(expect) = expect else { continue };
                if !applies(expect, mode) {
                    skipped += 1;
                    continue;
                }
                checked += 1;
                let want = expect["match"].as_bool().unwrap();
                let found = got.as_ref().filter(|e| e.failure);
                match (want, found) {
                    (false, None) => {}
                    (false, Some(e)) => {
                        failures.push(format!("line {n} ({mode:?}): unexpected {e:?}"))
                    }
                    (true, None) => {
                        failures.push(format!("line {n} ({mode:?}): no match, got {got:?}"))
                    }
                    (true, Some(e)) => {
                        matches += 1;
                        if let Some(host) = expect.get("host").and_then(Value::as_str)
                            && e.remote.to_string() != host
                        {
                            failures
                                .push(format!("line {n} ({mode:?}): host {} != {host}", e.remote));
                        }
                        if let Some(time) = expect.get("time").and_then(Value::as_str) {
                            let zoned = line.starts_with(|c: char| c.is_ascii_digit() || c == '<');
                            let shown = if zoned {
                                e.time.add_seconds(7200)
                            } else {
                                e.time
                            };
                            let shown = shown.to_string();
                            if !shown.starts_with(time) {
                                failures
                                    .push(format!("line {n} ({mode:?}): time {shown} != {time}"));
                            }
                        }
                        if let Some(user) = expect.get("user").and_then(Value::as_str)
                            && e.user.as_deref() != Some(user)
                        {
                            failures
                                .push(format!("line {n} ({mode:?}): user {:?} != {user}", e.user));
                        }
                        if let Some(attempts) = expect.get("attempts").and_then(Value::as_u64)
                            && u64::from(e.attempts) != attempts
                        {
                            failures.push(format!(
                                "line {n} ({mode:?}): attempts {} != {attempts}",
                                e.attempts
                            ));
                        }
                    }
                }
            }
        }
    }

    println!(
        "checked {checked} (line, mode) pairs, {matches} matches, {skipped} skipped by constraint"
    );
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(checked > 250, "only {checked} checks ran");
}
