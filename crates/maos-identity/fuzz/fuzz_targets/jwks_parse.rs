//! Arbitrary text through the JWKS reader, with and without symmetric keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_identity::jose::{KeySet, KeySetOptions};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = KeySet::from_jwks_json(text, KeySetOptions::default());
        let _ = KeySet::from_jwks_json(
            text,
            KeySetOptions {
                allow_symmetric: true,
                skip_unusable: true,
            },
        );
    }
});
