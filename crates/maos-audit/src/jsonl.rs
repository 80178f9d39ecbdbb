//! Export and import as JSON lines.
//!
//! One JSON object per line: `{"type":"record",...}` for a record (the fields of
//! [`AuditRecord`]) and `{"type":"checkpoint",...}` for a checkpoint (the fields of
//! [`Checkpoint`]). An export writes each checkpoint right after the record that completes its
//! tree; readers do not rely on that placement. Blank lines are skipped. Reading never panics:
//! every bad line is an error that names its line number.

use std::io::{self, BufRead, Read, Write};

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::record::AuditRecord;
use crate::verify::{VerifyError, VerifyReport, verify};

/// Longest line accepted, in bytes (without the line break).
pub const MAX_LINE_LEN: usize = 1 << 20;

/// How record lines start as this crate writes them.
const RECORD_PREFIX: &str = r#"{"type":"record","#;
/// How checkpoint lines start as this crate writes them.
const CHECKPOINT_PREFIX: &str = r#"{"type":"checkpoint","#;

/// One line of an export.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogLine {
    Record(AuditRecord),
    Checkpoint(Checkpoint),
}

/// A line that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {problem}")]
pub struct LineError {
    /// Counted from 1.
    pub line: u64,
    pub problem: LineProblem,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LineProblem {
    #[error("reading failed: {0}")]
    Io(#[source] io::Error),
    #[error("line is longer than {MAX_LINE_LEN} bytes")]
    TooLong,
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("not a record or checkpoint: {0}")]
    Json(#[source] serde_json::Error),
}

/// Parses one line (without its line break); `line` is its number, for the error.
pub fn parse_line(text: &str, line: u64) -> Result<LogLine, LineError> {
    let error = |error| LineError {
        line,
        problem: LineProblem::Json(error),
    };

    // Lines as this crate writes them start with their type. Parsing the rest straight into the
    // record or checkpoint skips the buffering that a tagged enum needs. Both paths accept the
    // same lines: the type member is simply gone, and a second one is an unknown field.
    if let Some(rest) = text.strip_prefix(RECORD_PREFIX) {
        return serde_json::from_str(&format!("{{{rest}"))
            .map(LogLine::Record)
            .map_err(error);
    }
    if let Some(rest) = text.strip_prefix(CHECKPOINT_PREFIX) {
        return serde_json::from_str(&format!("{{{rest}"))
            .map(LogLine::Checkpoint)
            .map_err(error);
    }
    serde_json::from_str(text).map_err(error)
}

/// Writes one line, with its line break.
pub fn write_line(out: &mut impl Write, item: &LogLine) -> io::Result<()> {
    serde_json::to_writer(&mut *out, item).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Writes a whole log: the records in order, each checkpoint after the record that completes its
/// tree (checkpoints beyond the last record at the end).
pub fn write_log<'a>(
    out: &mut impl Write,
    records: impl IntoIterator<Item = &'a AuditRecord>,
    checkpoints: &[Checkpoint],
) -> io::Result<()> {
    let mut pending = checkpoints.iter().peekable();
    for (record, written) in records.into_iter().zip(1u64..) {
        write_line(out, &LogLine::Record(record.clone()))?;
        while let Some(checkpoint) = pending.next_if(|c| c.tree_size <= written) {
            write_line(out, &LogLine::Checkpoint(checkpoint.clone()))?;
        }
    }
    for checkpoint in pending {
        write_line(out, &LogLine::Checkpoint(checkpoint.clone()))?;
    }
    Ok(())
}

/// Reads lines one by one. After an I/O error it stops; after any other bad line it goes on
/// with the next one.
#[derive(Debug)]
pub struct LogReader<R> {
    reader: R,
    line: u64,
    buffer: Vec<u8>,
    failed: bool,
}

impl<R: BufRead> LogReader<R> {
    pub fn new(reader: R) -> Self {
        LogReader {
            reader,
            line: 0,
            buffer: Vec::with_capacity(1024),
            failed: false,
        }
    }

    /// Reads the rest of an over-long line and drops it.
    fn skip_rest_of_line(&mut self) -> io::Result<()> {
        let mut scratch = Vec::with_capacity(8192);
        loop {
            scratch.clear();
            let read = (&mut self.reader)
                .take(64 * 1024)
                .read_until(b'\n', &mut scratch)?;
            if read == 0 || scratch.last() == Some(&b'\n') {
                return Ok(());
            }
        }
    }
}

impl<R: BufRead> LogReader<R> {
    /// The next non-blank line and its number, without parsing it.
    fn next_text(&mut self) -> Option<Result<(u64, &str), LineError>> {
        loop {
            if self.failed {
                return None;
            }
            self.buffer.clear();
            let limit = MAX_LINE_LEN as u64 + 1;
            let read = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer);
            let line = self.line + 1;
            match read {
                Err(error) => {
                    self.failed = true;
                    return Some(Err(LineError {
                        line,
                        problem: LineProblem::Io(error),
                    }));
                }
                Ok(0) => return None,
                Ok(_) => self.line = line,
            }

            let ended = self.buffer.last() == Some(&b'\n');
            if ended {
                self.buffer.pop();
            }
            if self.buffer.last() == Some(&b'\r') {
                self.buffer.pop();
            }
            if self.buffer.len() > MAX_LINE_LEN {
                if let Err(error) = self.skip_rest_of_line() {
                    self.failed = true;
                    return Some(Err(LineError {
                        line,
                        problem: LineProblem::Io(error),
                    }));
                }
                return Some(Err(LineError {
                    line,
                    problem: LineProblem::TooLong,
                }));
            }

            if !self.buffer.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let line = self.line;
        let Ok(text) = std::str::from_utf8(&self.buffer) else {
            return Some(Err(LineError {
                line,
                problem: LineProblem::NotUtf8,
            }));
        };
        Some(Ok((line, text)))
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<LogLine, LineError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(match self.next_text()? {
            Ok((line, text)) => parse_line(text, line),
            Err(error) => Err(error),
        })
    }
}

/// The records of an export, in file order, skipping checkpoint lines.
pub fn records<R: BufRead>(reader: R) -> impl Iterator<Item = Result<AuditRecord, LineError>> {
    LogReader::new(reader).filter_map(|item| match item {
        Ok(LogLine::Record(record)) => Some(Ok(record)),
        Ok(LogLine::Checkpoint(_)) => None,
        Err(error) => Some(Err(error)),
    })
}

/// The checkpoints of an export, in file order. Lines that start as this crate writes records
/// (`{"type":"record",`) are skipped unparsed, since [`parse_line`] reads them as records or
/// not at all; every other line must parse, and the first that does not is the error.
pub fn checkpoints<R: BufRead>(reader: R) -> Result<Vec<Checkpoint>, LineError> {
    let mut reader = LogReader::new(reader);
    let mut found = Vec::new();
    while let Some(item) = reader.next_text() {
        let (line, text) = item?;
        if text.starts_with(RECORD_PREFIX) {
            continue;
        }
        if let LogLine::Checkpoint(checkpoint) = parse_line(text, line)? {
            found.push(checkpoint);
        }
    }
    Ok(found)
}

/// Reads a whole export into memory.
pub fn read_log<R: BufRead>(reader: R) -> Result<(Vec<AuditRecord>, Vec<Checkpoint>), LineError> {
    let mut records = Vec::new();
    let mut checkpoints = Vec::new();
    for item in LogReader::new(reader) {
        match item? {
            LogLine::Record(record) => records.push(record),
            LogLine::Checkpoint(checkpoint) => checkpoints.push(checkpoint),
        }
    }
    Ok((records, checkpoints))
}

/// Verifies an export in two passes over the same bytes, without holding it in memory: the first
/// reader supplies the checkpoints, the second the records.
pub fn verify_export<R1: BufRead, R2: BufRead>(
    first_pass: R1,
    second_pass: R2,
    key: &VerifyingKey,
    progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError<LineError>> {
    let checkpoints = checkpoints(first_pass).map_err(|error| VerifyError::Source {
        position: error.line,
        error,
    })?;
    verify(records(second_pass), &checkpoints, key, progress)
}
