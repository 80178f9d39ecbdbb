//! Tailing log files, rotation-safe, by polling (every `siem.file_poll_milliseconds`, 250 ms by
//! default) rather than file-system notifications: polling behaves the same on every file
//! system (network mounts, containers' overlay file systems) and needs no extra dependency.
//!
//! Each poll compares the file at the configured path with the one held open (device and
//! inode): when they differ the file was rotated (renamed or removed and created anew), so the
//! rest of the old file is read to its end and the new one from its start. A file shorter than
//! the offset read so far was truncated (`copytruncate`) and is read again from its start. The
//! offset lives in memory only: after a restart a file is read again from where `start_at`
//! says.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;

use super::config::{FileConfig, SiemConfig, StartAt};

/// Most bytes read from a file per poll, so that a large file is read in steps.
const READ_PER_POLL: usize = 8 * 1024 * 1024;

/// How a file is tailed.
#[derive(Clone, Debug)]
pub struct TailOptions {
    pub poll: Duration,
    pub max_line: usize,
    pub siem: SiemConfig,
}

impl TailOptions {
    pub fn from_config(config: &SiemConfig) -> Self {
        Self {
            poll: Duration::from_millis(config.file_poll_milliseconds.max(1)),
            max_line: config.max_line_bytes,
            siem: SiemConfig {
                files: Vec::new(),
                webhooks: Vec::new(),
                ..config.clone()
            },
        }
    }
}

/// Tails one file until the server stops.
pub async fn tail_file(file: FileConfig, options: TailOptions, queue: mpsc::Sender<super::Batch>) {
    let mut decoder = super::listen::decoder(&options.siem, file.format.input_format());
    let mut tailer = Some(Tailer::new(
        file.path.clone(),
        file.start_at,
        options.max_line,
    ));
    let mut tick = tokio::time::interval(options.poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tracing::info!(path = %file.path.display(), format = ?file.format, "siem.file.tailing");
    loop {
        tick.tick().await;
        let Some(mut current) = tailer.take() else {
            return;
        };
        let polled = tokio::task::spawn_blocking(move || {
            let lines = current.poll();
            (current, lines)
        })
        .await;
        let lines = match polled {
            Ok((current, lines)) => {
                tailer = Some(current);
                lines
            }
            Err(error) => {
                tracing::error!(%error, path = %file.path.display(), "siem.file.poll_failed");
                return;
            }
        };
        let mut batch = Vec::new();
        for line in &lines {
            super::listen::decode_into(&mut decoder, line, &mut batch, "file");
        }
        super::submit_to(&queue, batch, "file").await;
    }
}

/// The identity of a file: device and inode.
#[cfg(unix)]
fn file_id(meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    Some((meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn file_id(_meta: &std::fs::Metadata) -> Option<(u64, u64)> {
    None
}

/// One tailed file: the open handle, how far it was read, and an unfinished last line.
#[derive(Debug)]
pub struct Tailer {
    path: PathBuf,
    max_line: usize,
    start_at: StartAt,
    open: Option<(File, Option<(u64, u64)>)>,
    offset: u64,
    partial: Vec<u8>,
    /// Skipping the rest of a line that grew over `max_line`.
    skipping: bool,
    first_open: bool,
}

impl Tailer {
    pub fn new(path: PathBuf, start_at: StartAt, max_line: usize) -> Self {
        Self {
            path,
            max_line,
            start_at,
            open: None,
            offset: 0,
            partial: Vec::new(),
            skipping: false,
            first_open: true,
        }
    }

    /// The complete lines written since the last poll.
    pub fn poll(&mut self) -> Vec<String> {
        let mut lines = Vec::new();
        let at_path = std::fs::metadata(&self.path).ok();
        let held = self.open.as_ref().map(|(_, id)| *id);
        match (held, at_path) {
            (None, Some(_)) => self.open_current(),
            (None, None) => {}
            (Some(held_id), Some(meta)) if held_id.is_some() && file_id(&meta) != held_id => {
                // Rotated: finish the old file, then start the new one from its beginning.
                self.read_available(&mut lines, None);
                self.end_of_file(&mut lines);
                tracing::info!(path = %self.path.display(), "siem.file.rotated");
                metrics::counter!("maos_siem_file_rotations_total").increment(1);
                self.open_current();
            }
            (Some(_), None) => {
                // Moved away and not yet replaced: keep reading what was written to it.
            }
            (Some(_), Some(_)) => {
                let length = self
                    .open
                    .as_ref()
                    .and_then(|(file, _)| file.metadata().ok())
                    .map(|m| m.len());
                if length.is_some_and(|length| length < self.offset) {
                    tracing::info!(path = %self.path.display(), "siem.file.truncated");
                    metrics::counter!("maos_siem_file_truncations_total").increment(1);
                    self.offset = 0;
                    self.partial.clear();
                    self.skipping = false;
                }
            }
        }
        self.read_available(&mut lines, Some(READ_PER_POLL));
        lines
    }

    fn open_current(&mut self) {
        let Ok(file) = File::open(&self.path) else {
            return;
        };
        let Ok(meta) = file.metadata() else {
            return;
        };
        self.offset = if self.first_open && self.start_at == StartAt::End {
            meta.len()
        } else {
            0
        };
        self.first_open = false;
        self.partial.clear();
        self.skipping = false;
        self.open = Some((file, file_id(&meta)));
    }

    /// Reads from the offset to the end of the held file (at most `limit` bytes).
    fn read_available(&mut self, lines: &mut Vec<String>, limit: Option<usize>) {
        let Some((mut file, id)) = self.open.take() else {
            return;
        };
        if file.seek(SeekFrom::Start(self.offset)).is_ok() {
            let mut buffer = vec![0u8; 64 * 1024];
            let mut total = 0usize;
            while limit.is_none_or(|limit| total < limit) {
                let read = match file.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                total += read;
                self.offset += read as u64;
                self.split(buffer.get(..read).unwrap_or_default(), lines);
            }
        }
        self.open = Some((file, id));
    }

    fn split(&mut self, mut chunk: &[u8], lines: &mut Vec<String>) {
        while let Some(end) = chunk.iter().position(|b| *b == b'\n') {
            let (head, rest) = chunk.split_at(end);
            if self.skipping {
                self.skipping = false;
            } else {
                self.partial.extend_from_slice(head);
                self.emit(lines);
            }
            self.partial.clear();
            chunk = rest.get(1..).unwrap_or_default();
        }
        if !self.skipping {
            self.partial.extend_from_slice(chunk);
            if self.partial.len() > self.max_line {
                metrics::counter!("maos_siem_lines_invalid_total", "input" => "file", "reason" => "too_long")
                    .increment(1);
                self.partial.clear();
                self.skipping = true;
            }
        }
    }

    /// A last line without newline in a file that will not grow again.
    fn end_of_file(&mut self, lines: &mut Vec<String>) {
        if !self.skipping && !self.partial.is_empty() {
            self.emit(lines);
        }
        self.partial.clear();
        self.skipping = false;
    }

    fn emit(&self, lines: &mut Vec<String>) {
        if self.partial.len() > self.max_line {
            metrics::counter!("maos_siem_lines_invalid_total", "input" => "file", "reason" => "too_long")
                .increment(1);
            return;
        }
        let text = String::from_utf8_lossy(&self.partial);
        let text = text.trim_end_matches('\r');
        if !text.trim().is_empty() {
            lines.push(text.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn append(path: &std::path::Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_survive_rotation_truncation_and_partial_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("auth.log");
        append(&path, "old line\n");
        let mut tailer = Tailer::new(path.clone(), StartAt::End, 1024);
        assert!(tailer.poll().is_empty());

        append(&path, "one\ntw");
        assert_eq!(tailer.poll(), ["one"]);
        append(&path, "o\nthree\n");
        assert_eq!(tailer.poll(), ["two", "three"]);

        // Rotation: written before the rename, then a new file.
        append(&path, "last of old\n");
        std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
        append(&dir.path().join("auth.log.1"), "late write\n");
        assert_eq!(tailer.poll(), ["last of old", "late write"]);
        append(&path, "first of new\n");
        assert_eq!(tailer.poll(), ["first of new"]);

        // Truncation.
        std::fs::write(&path, "").unwrap();
        assert!(tailer.poll().is_empty());
        append(&path, "after truncate\n");
        assert_eq!(tailer.poll(), ["after truncate"]);

        // Over-long lines are skipped whole.
        let long = "x".repeat(3000);
        append(&path, &format!("{long}\nshort\n"));
        assert_eq!(tailer.poll(), ["short"]);
    }
}
