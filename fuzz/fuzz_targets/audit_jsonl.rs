//! Audit log exports (JSON lines) handed to `maos audit verify`: the line reader, the line
//! parser and the verifier never panic on any bytes; a line that parses writes back to a line
//! that parses to the same item.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use maos_audit::jsonl::{LogReader, parse_line, read_log, verify_export, write_line};
use maos_audit::{CheckpointSigningKey, VerifyingKey, verify};
use maos_fuzz::fixtures::ED25519_PKCS8;

/// The key that signed the checkpoints of the seed export.
fn verifying_key() -> &'static VerifyingKey {
    static KEY: OnceLock<VerifyingKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = CheckpointSigningKey::from_pkcs8(ED25519_PKCS8)
            .expect("the fixture key loads")
            .verifying_key();
        // The seed export verifies, so that the corpus starts on the accepting path.
        let seed = include_bytes!("../corpus/audit_jsonl/export.jsonl").as_slice();
        let report = verify_export(seed, seed, &key, |_| {}).expect("the seed export verifies");
        assert_eq!((report.records, report.unsigned_tail()), (3, 0));
        key
    })
}

fuzz_target!(|data: &[u8]| {
    for line in data.split(|b| *b == b'\n') {
        let Ok(text) = std::str::from_utf8(line) else {
            continue;
        };
        let Ok(item) = parse_line(text, 1) else {
            continue;
        };
        let mut written = Vec::new();
        if write_line(&mut written, &item).is_err() {
            continue;
        }
        let written = String::from_utf8_lossy(&written);
        match parse_line(written.trim_end_matches('\n'), 1) {
            Ok(again) => assert_eq!(again, item, "an item changed on its way through its line"),
            Err(e) => panic!("a written line does not parse: {e}\n{written}"),
        }
    }

    // The reader goes on after bad lines; it must end, and never yield more than one item a line.
    let lines = data.split(|b| *b == b'\n').count();
    assert!(LogReader::new(data).count() <= lines);

    let key = verifying_key();
    let _ = verify_export(data, data, key, |_| {});
    if let Ok((records, checkpoints)) = read_log(data) {
        let records = records.into_iter().map(Ok::<_, std::convert::Infallible>);
        let _ = verify(records, &checkpoints, key, |_| {});
    }
});
