//! Stored key records (JSON from the database, which an attacker with write access to it may
//! edit): decoding and loading never panic, a record edited to widen its usages or swap its
//! material is refused, and a loaded record is stored back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_crypto::KeyRecord;
use maos_fuzz::fixtures::fresh_key_ring;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<KeyRecord>(data) else {
        return;
    };
    let ring = fresh_key_ring();
    let name = record.name.clone();
    if ring.load_record(record.clone()).is_err() {
        return;
    }
    let stored = ring.record(&name);
    assert_eq!(
        stored.ok().as_ref(),
        Some(&record),
        "a loaded record reads back changed"
    );
    let _ = ring.metadata(&name);
    let _ = ring.encrypt(&name, b"x", b"");
    let _ = ring.sign(&name, b"x");
});
