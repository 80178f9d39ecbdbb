//! JSON event lines: decoding as a `SecurityEvent` or as a foreign document, and detection over
//! them with the shipped rules. A decoded event survives its own JSON form.
#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use maos_core::{SecurityEvent, Timestamp};
use maos_siem::ingest::{Decoded, InputFormat, LineDecoder};
use maos_siem::parse::sshd::SshdMode;
use maos_siem::parse::syslog::TimeContext;
use maos_siem::{Detector, DetectorConfig};

const RULES: [&str; 7] = [
    include_str!("../../rules/maos/admin_denied.yml"),
    include_str!("../../rules/maos/auth_events.yml"),
    include_str!("../../rules/maos/brute_force.yml"),
    include_str!("../../rules/maos/credential_stuffing.yml"),
    include_str!("../../rules/maos/intrusion.yml"),
    include_str!("../../rules/maos/password_spraying.yml"),
    include_str!("../../rules/maos/secret_enumeration.yml"),
];

fn detector() -> &'static Mutex<Detector> {
    static DETECTOR: OnceLock<Mutex<Detector>> = OnceLock::new();
    DETECTOR.get_or_init(|| {
        let mut detector = Detector::new(&DetectorConfig {
            max_groups: 1024,
            max_events_per_group: 16,
            ..DetectorConfig::default()
        });
        for (index, yaml) in RULES.iter().enumerate() {
            let errors = detector.add_yaml(&format!("rule-{index}.yml"), yaml);
            assert!(
                errors.is_empty(),
                "a shipped rule does not load: {errors:?}"
            );
        }
        Mutex::new(detector)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(event) = serde_json::from_str::<SecurityEvent>(line) {
        let json = serde_json::to_string(&event).unwrap_or_default();
        let again: Result<SecurityEvent, _> = serde_json::from_str(&json);
        assert!(
            again.is_ok(),
            "an event's JSON form does not decode: {json}"
        );
    }

    let ctx = TimeContext::new(Timestamp::from_unix_seconds(1_767_225_600));
    let mut decoder = LineDecoder::new(InputFormat::Json, ctx, SshdMode::Normal);
    let Ok(Some(decoded)) = decoder.decode(line) else {
        return;
    };
    let Ok(mut detector) = detector().lock() else {
        return;
    };
    match decoded {
        Decoded::Event(event) => {
            let _ = detector.process(&event);
        }
        Decoded::Document(document) => {
            let _ = detector.evaluate_json(&document);
            let _ = detector.process_json(&document);
        }
    }
    detector.evict_expired(1_767_225_600);
});
