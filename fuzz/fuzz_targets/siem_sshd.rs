//! sshd logs, fed line by line through the stateful parser in every fail2ban mode and through
//! the auto-detecting line decoder: never a panic, and the per-connection state stays bounded
//! by the number of lines seen.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_core::Timestamp;
use maos_siem::ingest::{InputFormat, LineDecoder};
use maos_siem::parse::sshd::{SshdMode, SshdParser};
use maos_siem::parse::syslog::TimeContext;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let ctx = TimeContext::new(Timestamp::from_unix_seconds(1_767_225_600));

    for mode in [
        SshdMode::Normal,
        SshdMode::Ddos,
        SshdMode::Extra,
        SshdMode::Aggressive,
    ] {
        let mut parser = SshdParser::new(mode, ctx);
        let mut lines = 0usize;
        for line in text.lines() {
            lines += 1;
            let _ = parser.feed(line);
            assert!(
                parser.tracked_connections() <= lines,
                "more connections than lines"
            );
        }
        parser.set_now(Timestamp::from_unix_seconds(1_767_312_000));
        let _ = parser.feed("");
    }

    for format in [InputFormat::Auto, InputFormat::Sshd, InputFormat::Syslog] {
        let mut decoder = LineDecoder::new(format, ctx, SshdMode::Aggressive);
        for line in text.lines() {
            let _ = decoder.decode(line);
        }
    }
});
