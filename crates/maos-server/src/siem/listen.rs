//! Syslog listeners: RFC 5424 and RFC 3164 messages (and CEF after a syslog header, or alone)
//! over UDP (one message per datagram, or several separated by newlines) and TCP (RFC 6587:
//! octet counting `LEN SP MSG` or newline-delimited frames, decided per frame by whether it
//! starts with a digit).
//!
//! The listeners hand raw lines to one decoder task, which keeps the sshd parser's state for
//! all of them (sshd's per-process state is keyed by host and pid, so senders do not mix).
//! UDP drops what does not fit the line queue (counted); TCP waits, so a fast sender is slowed
//! down instead of losing lines.

use std::net::SocketAddr;
use std::sync::Arc;

use maos_core::{SecurityEvent, Timestamp};
use maos_siem::ingest::{Decoded, InputFormat, LineDecoder};
use maos_siem::parse::syslog::TimeContext;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::SiemStartError;
use super::config::SiemConfig;
use crate::state::AppState;

/// Lines waiting for the decoder.
const LINE_QUEUE: usize = 8192;

/// Events handed to the SIEM task per batch.
const DECODE_BATCH: usize = 256;

/// Starts the configured listeners and their decoder.
pub async fn start(
    state: &Arc<AppState>,
    queue: mpsc::Sender<super::Batch>,
) -> Result<Vec<JoinHandle<()>>, SiemStartError> {
    let config = &state.config.siem;
    let mut tasks = Vec::new();
    if config.syslog.udp.is_none() && config.syslog.tcp.is_none() {
        return Ok(tasks);
    }
    let (lines, rx) = mpsc::channel::<String>(LINE_QUEUE);
    tasks.push(tokio::spawn(decode_lines(
        rx,
        decoder(config, InputFormat::Auto),
        queue,
        "syslog",
    )));

    if let Some(addr) = config.syslog.udp {
        let socket = UdpSocket::bind(addr)
            .await
            .map_err(|source| SiemStartError::Listen {
                addr,
                what: "siem.syslog.udp",
                source,
            })?;
        let bound = socket.local_addr().unwrap_or(addr);
        let _ = state.siem.addrs.udp.set(bound);
        tracing::info!(addr = %bound, "siem.syslog.udp.listening");
        tasks.push(tokio::spawn(serve_udp(
            socket,
            lines.clone(),
            config.max_line_bytes,
        )));
    }
    if let Some(addr) = config.syslog.tcp {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| SiemStartError::Listen {
                addr,
                what: "siem.syslog.tcp",
                source,
            })?;
        let bound = listener.local_addr().unwrap_or(addr);
        let _ = state.siem.addrs.tcp.set(bound);
        tracing::info!(addr = %bound, "siem.syslog.tcp.listening");
        tasks.push(tokio::spawn(serve_tcp(
            listener,
            lines,
            config.max_line_bytes,
            config.syslog.max_connections,
        )));
    }
    Ok(tasks)
}

/// A line decoder for the configured zone and sshd mode.
pub fn decoder(config: &SiemConfig, format: InputFormat) -> LineDecoder {
    let mut time = TimeContext::new(Timestamp::now());
    time.utc_offset_secs = config.utc_offset_seconds;
    LineDecoder::new(format, time, config.sshd_mode)
}

/// Decodes lines into events and queues them in batches; lines that carry no security event
/// (generic syslog messages, sshd helper lines) are counted and dropped.
pub async fn decode_lines(
    mut lines: mpsc::Receiver<String>,
    mut decoder: LineDecoder,
    queue: mpsc::Sender<super::Batch>,
    input: &'static str,
) {
    let mut batch = Vec::new();
    while let Some(line) = lines.recv().await {
        decode_into(&mut decoder, &line, &mut batch, input);
        // Take whatever else is already waiting before handing the batch on.
        while batch.len() < DECODE_BATCH {
            match lines.try_recv() {
                Ok(line) => decode_into(&mut decoder, &line, &mut batch, input),
                Err(_) => break,
            }
        }
        super::submit_to(&queue, std::mem::take(&mut batch), input).await;
    }
}

/// Decodes one line into `batch`.
pub fn decode_into(
    decoder: &mut LineDecoder,
    line: &str,
    batch: &mut Vec<SecurityEvent>,
    input: &'static str,
) {
    decoder.set_now(Timestamp::now());
    match decoder.decode(line) {
        Ok(Some(Decoded::Event(event))) => batch.push(event),
        Ok(Some(Decoded::Document(_))) | Ok(None) => {
            metrics::counter!("maos_siem_lines_ignored_total", "input" => input).increment(1);
        }
        Err(error) => {
            tracing::debug!(%error, input, "siem.line.undecodable");
            metrics::counter!("maos_siem_lines_invalid_total", "input" => input).increment(1);
        }
    }
}

async fn serve_udp(socket: UdpSocket, lines: mpsc::Sender<String>, max_line: usize) {
    let mut buffer = vec![0u8; 65_536];
    loop {
        let (len, _peer) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "siem.syslog.udp.receive_failed");
                continue;
            }
        };
        let datagram = buffer.get(..len).unwrap_or_default();
        for line in datagram.split(|b| *b == b'\n') {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            if line.len() > max_line {
                metrics::counter!("maos_siem_lines_invalid_total", "input" => "syslog_udp", "reason" => "too_long")
                    .increment(1);
                continue;
            }
            let text = String::from_utf8_lossy(line).into_owned();
            if lines.try_send(text).is_err() {
                metrics::counter!("maos_siem_events_dropped_total", "input" => "syslog_udp", "reason" => "queue_full")
                    .increment(1);
            }
        }
    }
}

async fn serve_tcp(
    listener: TcpListener,
    lines: mpsc::Sender<String>,
    max_line: usize,
    max_connections: usize,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "siem.syslog.tcp.accept_failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("maos_siem_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let lines = lines.clone();
        tokio::spawn(async move {
            if let Err(error) = read_frames(stream, &lines, max_line).await {
                tracing::debug!(%error, peer = %peer, "siem.syslog.tcp.closed");
            }
            drop(permit);
        });
    }
}

/// Why a TCP syslog connection was closed.
#[derive(Debug, thiserror::Error)]
enum FrameError {
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("malformed octet count")]
    BadCount,
    #[error("the decoder stopped")]
    Closed,
}

/// Reads frames until the peer closes: octet-counted when a frame starts with a digit,
/// otherwise up to the next newline.
async fn read_frames<R: AsyncRead + Unpin>(
    stream: R,
    lines: &mpsc::Sender<String>,
    max_line: usize,
) -> Result<(), FrameError> {
    let mut reader = BufReader::new(stream);
    loop {
        let first = {
            let available = reader.fill_buf().await?;
            match available.first() {
                None => return Ok(()),
                Some(b) => *b,
            }
        };
        let frame = if first.is_ascii_digit() {
            read_counted(&mut reader, max_line).await?
        } else {
            match read_line(&mut reader, max_line).await? {
                Some(frame) => frame,
                None => return Ok(()),
            }
        };
        let text = String::from_utf8_lossy(&frame);
        let text = text.trim_end_matches(['\r', '\n']);
        if text.trim().is_empty() {
            continue;
        }
        if lines.send(text.to_owned()).await.is_err() {
            return Err(FrameError::Closed);
        }
    }
}

async fn read_counted<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max_line: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut count: usize = 0;
    let mut digits = 0;
    loop {
        let byte = reader.read_u8().await?;
        match byte {
            b'0'..=b'9' if digits < 10 => {
                count = count * 10 + usize::from(byte - b'0');
                digits += 1;
            }
            b' ' if digits > 0 => break,
            _ => return Err(FrameError::BadCount),
        }
    }
    if count > max_line {
        return Err(FrameError::TooLong(count));
    }
    let mut frame = vec![0u8; count];
    reader.read_exact(&mut frame).await?;
    Ok(frame)
}

/// One newline-terminated frame (the last one may end at the close); `None` at the end.
async fn read_line<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    max_line: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut frame = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok((!frame.is_empty()).then_some(frame));
        }
        match available.iter().position(|b| *b == b'\n') {
            Some(end) => {
                frame.extend_from_slice(available.get(..end).unwrap_or_default());
                reader.consume(end + 1);
                if frame.len() > max_line {
                    return Err(FrameError::TooLong(frame.len()));
                }
                return Ok(Some(frame));
            }
            None => {
                let len = available.len();
                frame.extend_from_slice(available);
                reader.consume(len);
                if frame.len() > max_line {
                    return Err(FrameError::TooLong(frame.len()));
                }
            }
        }
    }
}

/// The bound addresses of the syslog listeners (for tests and logs, where the configured port
/// is 0).
#[derive(Debug, Default)]
pub struct ListenerAddrs {
    pub udp: std::sync::OnceLock<SocketAddr>,
    pub tcp: std::sync::OnceLock<SocketAddr>,
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(wire: &[u8], max_line: usize) -> (Vec<String>, Result<(), FrameError>) {
        let (tx, mut rx) = mpsc::channel(64);
        let result = read_frames(wire, &tx, max_line).await;
        drop(tx);
        let mut got = Vec::new();
        while let Some(line) = rx.recv().await {
            got.push(line);
        }
        (got, result)
    }

    #[tokio::test]
    async fn both_framings_mix_on_one_connection() {
        let (got, result) = frames(b"5 <1>ab<2>cd\n8 <3>x\ny\nz\r\n<4>last", 100).await;
        assert!(result.is_ok());
        assert_eq!(got, ["<1>ab", "<2>cd", "<3>x\ny\nz", "<4>last"]);
    }

    #[tokio::test]
    async fn malformed_or_oversized_frames_close_the_connection() {
        let (got, result) = frames(b"3 <1>\n12345678901 x", 100).await;
        assert_eq!(got, ["<1>"]);
        assert!(matches!(result, Err(FrameError::BadCount)));

        let (got, result) = frames(b"7x <1>abc", 100).await;
        assert!(got.is_empty());
        assert!(matches!(result, Err(FrameError::BadCount)));

        let (_, result) = frames(b"500 <1>", 100).await;
        assert!(matches!(result, Err(FrameError::TooLong(500))));

        let long = [b'a'; 300];
        let (_, result) = frames(&long, 100).await;
        assert!(matches!(result, Err(FrameError::TooLong(_))));

        // A count promising more than arrives: the connection ends with an error, nothing
        // half-read is passed on.
        let (got, result) = frames(b"20 <1>short", 100).await;
        assert!(got.is_empty());
        assert!(matches!(result, Err(FrameError::Io(_))));
    }
}
