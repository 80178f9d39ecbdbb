//! CEF lines (ArcSight Common Event Format), alone or behind a syslog header: never a panic,
//! and a parsed record maps onto an event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_core::Timestamp;
use maos_siem::ingest::cef_event;
use maos_siem::parse::cef::parse_cef;

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(record) = parse_cef(line) {
        if let Some(severity) = record.severity_number() {
            assert!(severity <= 10, "CEF severity {severity} out of range");
        }
        let _ = cef_event(&record, "fuzz".to_owned(), Timestamp::from_unix_seconds(0));
    }
});
