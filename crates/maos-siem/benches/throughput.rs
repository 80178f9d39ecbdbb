//! SIEM throughput, one thread: lines (or events) per second through parsing and detection.
//!
//! `cargo bench -p maos-siem --bench throughput` prints:
//! 1. MAOS with its own rules (rules/maos) on a 200,000-line sshd log built from fail2ban's
//!    sample lines with varied addresses;
//! 2. Debian's fail2ban on the same file (`fail2ban-regex --usedns=no LOG sshd`), if
//!    installed, and the ratio;
//! 3. MAOS with the full SigmaHQ rule set on JSON events (SigmaHQ's regression events) and on
//!    the same log read as plain syslog.
//!
//! Not a test: nothing is asserted.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use maos_core::Timestamp;
use maos_siem::ingest::{Decoded, InputFormat, LineDecoder};
use maos_siem::parse::sshd::SshdMode;
use maos_siem::parse::syslog::TimeContext;
use maos_siem::{Detector, DetectorConfig};
use serde_json::Value;

const LINES: usize = 200_000;

fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel);
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// fail2ban's sshd sample lines (BSD stamps only), repeated with the IPv4 addresses
/// rewritten so that the log has many sources.
fn build_sshd_log(path: &Path) {
    let sample = std::fs::read_to_string(shared("logs/fail2ban/sshd")).unwrap();
    let lines: Vec<&str> = sample
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| l.as_bytes().first().is_some_and(u8::is_ascii_uppercase))
        .collect();
    let ip = regex::Regex::new(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b").unwrap();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut n = 0usize;
    'outer: for round in 0.. {
        for (i, l) in lines.iter().enumerate() {
            let k = round * lines.len() + i;
            let replaced = ip.replace_all(l, |_: &regex::Captures<'_>| {
                format!("10.{}.{}.{}", (k >> 16) & 255, (k >> 8) & 255, k & 255)
            });
            writeln!(out, "{replaced}").unwrap();
            n += 1;
            if n == LINES {
                break 'outer;
            }
        }
    }
}

fn report(name: &str, count: usize, secs: f64, hits: usize) -> f64 {
    let rate = count as f64 / secs;
    println!("{name}: {count} in {secs:.3} s = {rate:.0}/s on one core, {hits} hits");
    rate
}

fn main() {
    let dir = PathBuf::from(std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into()))
        .join("siem-bench");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("sshd-200k.log");
    build_sshd_log(&log);
    let text = std::fs::read_to_string(&log).unwrap();
    let now = Timestamp::parse_rfc3339("2005-08-14T10:00:00Z").unwrap();
    println!("log: {} ({} lines)", log.display(), text.lines().count());

    // 1. Own rules.
    let own = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/maos");
    let (mut detector, errors) = Detector::from_dir(&own, &DetectorConfig::default()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    let start = Instant::now();
    let mut decoder = LineDecoder::new(InputFormat::Sshd, TimeContext::new(now), SshdMode::Normal);
    let (mut events, mut hits) = (0, 0);
    for line in text.lines() {
        if let Ok(Some(Decoded::Event(e))) = decoder.decode(line) {
            events += 1;
            hits += detector.process(&e).len();
        }
    }
    let own_rate = report(
        "MAOS, own rules, sshd log lines",
        LINES,
        start.elapsed().as_secs_f64(),
        hits,
    );
    println!("  ({events} security events)");

    // 2. fail2ban.
    let start = Instant::now();
    match std::process::Command::new("fail2ban-regex")
        .args(["--usedns=no", log.to_str().unwrap(), "sshd"])
        .output()
    {
        Ok(out) if out.status.success() => {
            let secs = start.elapsed().as_secs_f64();
            let summary = String::from_utf8_lossy(&out.stdout);
            let matched = summary
                .lines()
                .find(|l| l.starts_with("Lines:"))
                .unwrap_or("")
                .to_owned();
            let f2b = report("fail2ban-regex --usedns=no LOG sshd", LINES, secs, 0);
            println!("  fail2ban: {matched}");
            println!("  ratio MAOS/fail2ban: {:.1}x", own_rate / f2b);
        }
        Ok(out) => println!(
            "fail2ban-regex failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => println!("fail2ban-regex not run: {e}"),
    }

    // 3. Full SigmaHQ rules.
    let start = Instant::now();
    let (sigma, errors) =
        Detector::from_dir(&shared("sigma/sigmahq/rules"), &DetectorConfig::default()).unwrap();
    println!(
        "SigmaHQ: {} rules loaded ({} failed) in {:.2} s",
        sigma.rule_count(),
        errors.len(),
        start.elapsed().as_secs_f64()
    );

    let mut samples = Vec::new();
    collect_json(&shared("sigma/sigmahq/regression_data"), &mut samples);
    let json_lines: Vec<String> = samples.iter().cycle().take(LINES).cloned().collect();
    let start = Instant::now();
    let mut hits = 0;
    for l in &json_lines {
        let v: Value = serde_json::from_str(l).unwrap();
        hits += sigma.evaluate_json(&v).len();
    }
    report(
        "MAOS, full SigmaHQ, JSON events (parse + detect)",
        LINES,
        start.elapsed().as_secs_f64(),
        hits,
    );

    let start = Instant::now();
    let mut decoder =
        LineDecoder::new(InputFormat::Syslog, TimeContext::new(now), SshdMode::Normal);
    let mut hits = 0;
    for line in text.lines() {
        match decoder.decode(line) {
            Ok(Some(Decoded::Event(e))) => hits += sigma.evaluate_json(&e.to_ecs()).len(),
            Ok(Some(Decoded::Document(d))) => hits += sigma.evaluate_json(&d).len(),
            _ => {}
        }
    }
    report(
        "MAOS, full SigmaHQ, sshd log as syslog",
        LINES,
        start.elapsed().as_secs_f64(),
        hits,
    );
}

/// SigmaHQ regression events, flattened to the field names Windows rules use, one JSON line
/// each.
fn collect_json(dir: &Path, out: &mut Vec<String>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_json(&p, out);
        } else if p.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            for v in serde_json::Deserializer::from_str(&text)
                .into_iter::<Value>()
                .flatten()
            {
                out.push(flatten_windows(&v).to_string());
            }
        }
    }
}

fn flatten_windows(event: &Value) -> Value {
    let mut out = serde_json::Map::new();
    let root = event.get("Event").unwrap_or(event);
    if let Some(Value::Object(system)) = root.get("System") {
        for (k, v) in system {
            if let Value::Object(o) = v {
                if let Some(Value::Object(attrs)) = o.get("#attributes") {
                    for (a, av) in attrs {
                        out.insert(format!("{k}_{a}"), av.clone());
                    }
                }
            } else {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    for section in ["EventData", "UserData"] {
        if let Some(Value::Object(o)) = root.get(section) {
            for (k, v) in o {
                if !v.is_object() {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Value::Object(out)
}
