//! `maos audit`: verify the stored audit log offline, find records about a known secret, export
//! the log as JSON lines.

use std::collections::VecDeque;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use maos_audit::jsonl::{LogLine, write_line};
use maos_audit::{AuditRecord, AuditRedactor, Checkpoint, RedactionKey, VerifyError, VerifyingKey};
use maos_server::Config;
use maos_server::audit_log::{VERIFYING_KEY_FILE, read_key_file};
use maos_store::{Store, StoreError, StoreOptions};
use tokio::runtime::Runtime;

use crate::commands::{EXIT_FAILED, Failure};

/// Rows read from the database per query.
const PAGE: u32 = 5000;

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

/// Where the server keeps its data: the same flags as `maos serve`.
#[derive(Debug, Args)]
struct Source {
    /// The server's TOML configuration (storage URL, data directory, key files).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The server's data directory (default ./maos-data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum AuditCommand {
    /// Check the whole hash chain and every signed checkpoint; exit 1 and name the first bad
    /// record when the log was tampered with.
    Verify {
        #[command(flatten)]
        source: Source,
        /// The checkpoint public key (64 hex characters) or a file holding it; default
        /// audit-signing.pub beside the signing key.
        #[arg(long, value_name = "HEX|FILE")]
        public_key: Option<String>,
    },
    /// Print the `hmac:` form under which VALUE (a token or secret) appears in records.
    Hash {
        value: String,
        #[command(flatten)]
        source: Source,
    },
    /// Write every record and checkpoint as JSON lines.
    Export {
        #[command(flatten)]
        source: Source,
        /// Write here instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub fn run(args: AuditArgs) -> Result<ExitCode, Failure> {
    match args.command {
        AuditCommand::Verify { source, public_key } => verify(&source, public_key.as_deref()),
        AuditCommand::Hash { value, source } => hash(&source, &value),
        AuditCommand::Export { source, output } => export(&source, output.as_deref()),
    }
}

fn load_config(source: &Source) -> Result<Config, Failure> {
    let mut config = Config::load(source.config.as_deref(), |name| std::env::var(name).ok())
        .map_err(|e| Failure::bad_input(e.to_string()))?;
    if let Some(dir) = &source.data_dir {
        config.server.data_dir = dir.clone();
    }
    Ok(config)
}

fn runtime() -> Result<Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::bad_input(format!("cannot start the async runtime: {e}")))
}

/// Opens the server's database; an embedded database must exist already.
fn open_store(runtime: &Runtime, config: &Config) -> Result<Store, Failure> {
    if config.storage.url.is_empty() {
        let file = config.server.data_dir.join("maos.db");
        if !file.is_file() {
            return Err(Failure::bad_input(format!(
                "{}: no database here (give the server's --data-dir or --config)",
                file.display()
            )));
        }
    }
    let url = config.storage_url();
    runtime
        .block_on(Store::open(&url, &StoreOptions::default()))
        .map_err(|e| {
            Failure::bad_input(format!(
                "cannot open storage {}: {e}",
                maos_store::redact_url(&url)
            ))
        })
}

fn verifying_key(config: &Config, given: Option<&str>) -> Result<VerifyingKey, Failure> {
    let (text, origin) = match given {
        Some(text) if VerifyingKey::from_hex(text).is_ok() => (text.to_owned(), "--public-key"),
        Some(path) => (read_text(Path::new(path))?, path),
        None => {
            let path = config
                .audit
                .signing_key_path(&config.server.data_dir)
                .with_file_name(VERIFYING_KEY_FILE);
            let text = read_text(&path)?;
            return VerifyingKey::from_hex(&text)
                .map_err(|e| Failure::bad_input(format!("{}:1: {e}", path.display())));
        }
    };
    VerifyingKey::from_hex(&text).map_err(|e| Failure::bad_input(format!("{origin}:1: {e}")))
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path)
        .map_err(|e| Failure::bad_input(format!("{}: cannot read: {e}", path.display())))
}

/// A stored row that is not a record.
#[derive(Debug, thiserror::Error)]
enum RowError {
    #[error("the row stored under sequence number {seq} is not a readable record: {detail}")]
    Unreadable { seq: i64, detail: String },
    #[error("reading the database failed: {0}")]
    Database(#[from] StoreError),
}

/// The stored records in `seq` order, read page by page.
struct StoredRecords<'a> {
    runtime: &'a Runtime,
    store: &'a Store,
    after: Option<i64>,
    page: VecDeque<(i64, String)>,
    done: bool,
}

impl<'a> StoredRecords<'a> {
    fn new(runtime: &'a Runtime, store: &'a Store) -> Self {
        StoredRecords {
            runtime,
            store,
            after: None,
            page: VecDeque::new(),
            done: false,
        }
    }
}

impl Iterator for StoredRecords<'_> {
    type Item = Result<AuditRecord, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.page.is_empty() && !self.done {
            let fetched = self
                .runtime
                .block_on(self.store.audit_log().raw_records(self.after, PAGE));
            match fetched {
                Ok(rows) => {
                    self.done = rows.len() < PAGE as usize;
                    self.after = rows.last().map(|(seq, _)| *seq).or(self.after);
                    self.page = rows.into();
                }
                Err(error) => {
                    self.done = true;
                    return Some(Err(error.into()));
                }
            }
        }
        let (seq, text) = self.page.pop_front()?;
        Some(
            serde_json::from_str(&text).map_err(|e| RowError::Unreadable {
                seq,
                detail: e.to_string(),
            }),
        )
    }
}

fn progress_bar(total: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} records ({per_sec}) {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}

fn verify(source: &Source, public_key: Option<&str>) -> Result<ExitCode, Failure> {
    let config = load_config(source)?;
    let key = verifying_key(&config, public_key)?;
    let runtime = runtime()?;
    let store = open_store(&runtime, &config)?;
    let log = store.audit_log();

    let checkpoints = match runtime.block_on(log.checkpoints()) {
        Ok(checkpoints) => checkpoints,
        Err(error @ StoreError::Corrupt { .. }) => {
            return Ok(tampered(&format!(
                "a stored checkpoint is damaged: {error}"
            )));
        }
        Err(error) => {
            return Err(Failure::bad_input(format!(
                "cannot read checkpoints: {error}"
            )));
        }
    };
    let total = runtime
        .block_on(log.count())
        .map_err(|e| Failure::bad_input(format!("cannot count records: {e}")))?;
    // Read before the records: a server still running may append after it, never remove.
    let state = match runtime.block_on(log.state()) {
        Ok(state) => state,
        Err(error) => return Ok(tampered(&format!("the chain state is damaged: {error}"))),
    };

    // The hash of the record the state names as the last one, seen while streaming.
    let last_seq = state.head.next_seq.checked_sub(1);
    let last_hash = std::cell::Cell::new(None);
    let records = StoredRecords::new(&runtime, &store).inspect(|record| {
        if let Ok(record) = record
            && Some(record.seq) == last_seq
        {
            last_hash.set(Some(record.hash));
        }
    });
    let bar = progress_bar(total);
    let report = maos_audit::verify(records, &checkpoints, &key, |done| bar.set_position(done));
    bar.finish_and_clear();
    runtime.block_on(store.close());

    let report = match report {
        Ok(report) => report,
        Err(VerifyError::Tampered(tamper)) => return Ok(tampered(&tamper.to_string())),
        Err(VerifyError::Source { error, .. }) => match error {
            RowError::Unreadable { .. } => return Ok(tampered(&error.to_string())),
            RowError::Database(error) => {
                return Err(Failure::bad_input(format!("cannot read records: {error}")));
            }
        },
    };

    // The chain state row names the head the server had committed when verification began: a
    // log that ends earlier lost its tail, even where no checkpoint covers that tail yet, and
    // the record it names must be the one the chain holds (records appended by a running server
    // since then come after it).
    if state.head.next_seq > report.records {
        return Ok(tampered(&format!(
            "the log was truncated: it ends before record {}, but the chain state says {} \
             records were written",
            report.records, state.head.next_seq
        )));
    }
    if last_seq.is_some() && last_hash.get() != Some(state.head.last_hash) {
        return Ok(tampered(&format!(
            "the chain state does not match record {}: records were changed outside the server",
            state.head.next_seq.saturating_sub(1)
        )));
    }

    outln!(
        "audit log intact: {} records, {} checkpoints, key {}",
        report.records,
        report.checkpoints,
        key.key_id()
    );
    if report.unsigned_tail() > 0 {
        outln!(
            "note: the last {} records are not covered by a signed checkpoint yet (one is made \
             within audit.checkpoint_every_seconds while the server runs)",
            report.unsigned_tail()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn tampered(finding: &str) -> ExitCode {
    outln!("audit log TAMPERED: {finding}");
    ExitCode::from(EXIT_FAILED)
}

fn hash(source: &Source, value: &str) -> Result<ExitCode, Failure> {
    let config = load_config(source)?;
    let path = config.audit.redaction_key_path(&config.server.data_dir);
    let bytes = read_key_file(&path).map_err(|e| Failure::bad_input(format!("{e:#}")))?;
    let key = RedactionKey::from_bytes(&bytes)
        .map_err(|e| Failure::bad_input(format!("{}: {e}", path.display())))?;
    outln!("{}", AuditRedactor::new(&key).redact(value));
    Ok(ExitCode::SUCCESS)
}

fn export(source: &Source, output: Option<&Path>) -> Result<ExitCode, Failure> {
    let config = load_config(source)?;
    let runtime = runtime()?;
    let store = open_store(&runtime, &config)?;
    let checkpoints: Vec<Checkpoint> = runtime
        .block_on(store.audit_log().checkpoints())
        .map_err(|e| Failure::bad_input(format!("cannot read checkpoints: {e}")))?;

    let sink: Box<dyn Write> =
        match output {
            Some(path) => Box::new(std::fs::File::create(path).map_err(|e| {
                Failure::bad_input(format!("{}: cannot create: {e}", path.display()))
            })?),
            None => Box::new(std::io::stdout().lock()),
        };
    let mut out = BufWriter::new(sink);
    let write_failed = |e: std::io::Error| Failure::bad_input(format!("cannot write: {e}"));

    // Each checkpoint follows the record that completes its tree, as `maos_audit::jsonl`
    // writes logs.
    let mut pending = checkpoints.into_iter().peekable();
    for (record, written) in StoredRecords::new(&runtime, &store).zip(1u64..) {
        let record = record.map_err(|e| Failure::bad_input(e.to_string()))?;
        write_line(&mut out, &LogLine::Record(record)).map_err(write_failed)?;
        while let Some(checkpoint) = pending.next_if(|c| c.tree_size <= written) {
            write_line(&mut out, &LogLine::Checkpoint(checkpoint)).map_err(write_failed)?;
        }
    }
    for checkpoint in pending {
        write_line(&mut out, &LogLine::Checkpoint(checkpoint)).map_err(write_failed)?;
    }
    out.flush().map_err(write_failed)?;
    runtime.block_on(store.close());
    Ok(ExitCode::SUCCESS)
}
