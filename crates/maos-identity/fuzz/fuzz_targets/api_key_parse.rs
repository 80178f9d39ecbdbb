//! Arbitrary text through the API-key parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_identity::apikey::ParsedApiKey;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ParsedApiKey::parse(text);
    }
});
