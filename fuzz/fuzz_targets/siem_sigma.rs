//! Sigma rule files (YAML text): loading and compiling rules and correlations must never
//! panic, and whatever loaded must evaluate a few events.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_siem::{Detector, DetectorConfig};
use serde_json::json;

fuzz_target!(|data: &[u8]| {
    let Ok(yaml) = std::str::from_utf8(data) else {
        return;
    };
    let mut detector = Detector::new(&DetectorConfig {
        max_groups: 64,
        max_events_per_group: 8,
        ..DetectorConfig::default()
    });
    let _ = detector.add_yaml("fuzz.yml", yaml);
    if detector.rule_count() == 0 && detector.correlation_count() == 0 {
        return;
    }
    let events = [
        json!({"@timestamp": "2026-01-01T00:00:00Z", "event": {"action": "login", "outcome": "failure"},
               "source": {"ip": "203.0.113.9"}, "user": {"name": "root"}}),
        json!({"EventID": 4625, "TargetUserName": "admin", "IpAddress": "198.51.100.7"}),
        json!({"message": "Failed password for root from 203.0.113.9 port 22 ssh2"}),
    ];
    for event in &events {
        let _ = detector.evaluate_json(event);
        let _ = detector.process_json(event);
    }
});
