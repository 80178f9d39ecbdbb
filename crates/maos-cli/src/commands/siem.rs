//! `maos siem scan | rules check`: offline detection over log files with Sigma rules.

use std::io::{BufRead, BufReader, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use maos_core::Timestamp;
use maos_siem::ingest::{Decoded, InputFormat, LineDecoder};
use maos_siem::parse::sshd::SshdMode;
use maos_siem::parse::syslog::TimeContext;
use maos_siem::{Detector, DetectorConfig, RuleDirError, RuleFiles};

use super::{EXIT_FAILED, Failure};

#[derive(Debug, Args)]
pub struct SiemArgs {
    #[command(subcommand)]
    command: SiemCommand,
}

#[derive(Debug, Subcommand)]
enum SiemCommand {
    /// Run Sigma rules over event files; print each match as a JSON line.
    Scan {
        /// Directory of Sigma rules (searched recursively).
        #[arg(long, value_name = "DIR")]
        rules: PathBuf,
        /// A file, or a directory whose files are all read, in path order.
        #[arg(long, value_name = "FILE|DIR")]
        events: PathBuf,
        /// auto, json, syslog, sshd, cef, access, nginx-error, apache-error.
        #[arg(long, default_value = "auto")]
        format: InputFormat,
        /// fail2ban's sshd mode: normal, ddos, extra, aggressive.
        #[arg(long, default_value = "normal", value_parser = parse_mode)]
        sshd_mode: SshdMode,
        /// Reference time for completing syslog stamps without a year (RFC 3339).
        #[arg(long, value_parser = parse_time)]
        now: Option<Timestamp>,
    },
    /// Rule directories.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum RulesCommand {
    /// Load every rule under DIR; print each failure, then `N loaded, M failed`.
    /// Exit 0 when all load, 1 when any failed, 2 when DIR is missing.
    Check {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

fn parse_mode(s: &str) -> Result<SshdMode, String> {
    match s {
        "normal" => Ok(SshdMode::Normal),
        "ddos" => Ok(SshdMode::Ddos),
        "extra" => Ok(SshdMode::Extra),
        "aggressive" => Ok(SshdMode::Aggressive),
        other => Err(format!("unknown sshd mode `{other}`")),
    }
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    Timestamp::parse_rfc3339(s).map_err(|e| e.to_string())
}

pub fn run(args: SiemArgs) -> Result<ExitCode, Failure> {
    match args.command {
        SiemCommand::Rules {
            command: RulesCommand::Check { dir },
        } => check(&dir),
        SiemCommand::Scan {
            rules,
            events,
            format,
            sshd_mode,
            now,
        } => scan(
            &rules,
            &events,
            format,
            sshd_mode,
            now.unwrap_or_else(Timestamp::now),
        ),
    }
}

fn dir_failure(e: RuleDirError) -> Failure {
    Failure::bad_input(e.to_string())
}

fn check(dir: &Path) -> Result<ExitCode, Failure> {
    let files = RuleFiles::load_dir(dir).map_err(dir_failure)?;
    let total = files.files.len() + files.errors.len();
    let mut detector = Detector::new(&DetectorConfig::default());
    let mut errors = files.errors.clone();
    errors.extend(detector.add_files(&files));
    errors.sort_by(|a, b| a.path.cmp(&b.path));

    let mut failed_paths: Vec<&PathBuf> = errors.iter().map(|e| &e.path).collect();
    failed_paths.dedup();
    for e in &errors {
        outln!("{e}");
    }
    let failed = failed_paths.len();
    outln!("{} loaded, {failed} failed", total - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_FAILED)
    })
}

fn input_files(path: &Path) -> Result<Vec<PathBuf>, Failure> {
    if path.is_file() {
        return Ok(vec![path.to_owned()]);
    }
    if !path.is_dir() {
        return Err(Failure::bad_input(format!(
            "{}: no such file or directory",
            path.display()
        )));
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir)
            .map_err(|e| Failure::bad_input(format!("{}: cannot read: {e}", dir.display())))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

fn scan(
    rules: &Path,
    events: &Path,
    format: InputFormat,
    sshd_mode: SshdMode,
    now: Timestamp,
) -> Result<ExitCode, Failure> {
    let (mut detector, errors) =
        Detector::from_dir(rules, &DetectorConfig::default()).map_err(dir_failure)?;
    for e in &errors {
        eprintln!("warning: rule not loaded: {e}");
    }
    let files = input_files(events)?;
    let total: u64 = files
        .iter()
        .filter_map(|f| f.metadata().ok())
        .map(|m| m.len())
        .sum();

    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };

    let (mut lines, mut matches, mut bad) = (0u64, 0u64, 0u64);
    for file in &files {
        let handle = std::fs::File::open(file)
            .map_err(|e| Failure::bad_input(format!("{}: cannot read: {e}", file.display())))?;
        let mut reader = BufReader::new(handle);
        let mut decoder = LineDecoder::new(format, TimeContext::new(now), sshd_mode);
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let n = match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err(Failure::bad_input(format!(
                        "{}: read error: {e}",
                        file.display()
                    )));
                }
            };
            line_no += 1;
            lines += 1;
            progress.inc(n as u64);
            let text = String::from_utf8_lossy(&buf);
            let hits = match decoder.decode(&text) {
                Ok(Some(Decoded::Event(event))) => detector.process(&event),
                Ok(Some(Decoded::Document(doc))) => detector.process_json(&doc),
                Ok(None) => continue,
                Err(_) => {
                    bad += 1;
                    continue;
                }
            };
            for hit in hits {
                matches += 1;
                let mut record = serde_json::to_value(&hit).unwrap_or_default();
                if let Some(obj) = record.as_object_mut() {
                    obj.insert("file".into(), file.display().to_string().into());
                    obj.insert("line".into(), line_no.into());
                }
                progress.suspend(|| outln!("{record}"));
            }
        }
    }
    progress.finish_and_clear();
    eprintln!("{lines} lines, {matches} matches, {bad} lines not understood");
    Ok(ExitCode::SUCCESS)
}
