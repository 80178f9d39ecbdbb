//! Syslog lines from the network: both header parsers, the BSD time stamp and the dispatch
//! between them must never panic, and what they return must point into the line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_core::Timestamp;
use maos_siem::parse::syslog::{
    SyslogFormat, TimeContext, parse_bsd_stamp, parse_rfc3164, parse_rfc5424, parse_syslog,
};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    // 2026-01-01T00:00:00Z, so that stamps on either side of a year change are inferred.
    let ctx = TimeContext::new(Timestamp::from_unix_seconds(1_767_225_600));

    let _ = parse_rfc5424(line);
    let _ = parse_rfc3164(line, &ctx);
    let _ = parse_bsd_stamp(line, &ctx);

    if let Ok(message) = parse_syslog(line, &ctx) {
        assert!(
            line.contains(message.message),
            "the message is not part of the line"
        );
        for part in [
            message.hostname,
            message.app_name,
            message.proc_id,
            message.msg_id,
        ] {
            if let Some(part) = part {
                assert!(
                    line.contains(part),
                    "a header field is not part of the line"
                );
            }
        }
        if message.format == SyslogFormat::Rfc5424 {
            assert!(line.starts_with('<'));
        }
        if let Some(severity) = message.severity {
            assert!(severity <= 7, "severity {severity} out of range");
        }
        if let Some(facility) = message.facility {
            assert!(facility <= 23, "facility {facility} out of range");
        }
    }
});
