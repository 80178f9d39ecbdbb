//! JWKS documents from federated issuers: reading with every option never panics, and a set
//! that reads writes back to a document that reads to the same keys.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_identity::jose::{KeySet, KeySetOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for allow_symmetric in [false, true] {
        for skip_unusable in [false, true] {
            let options = KeySetOptions {
                allow_symmetric,
                skip_unusable,
            };
            let Ok(set) = KeySet::from_jwks_json(text, options) else {
                continue;
            };
            if !allow_symmetric {
                assert!(set.keys().iter().all(|k| !k.material.is_symmetric()));
            }
            // Public keys write back; symmetric keys are never published.
            if set.keys().iter().any(|k| k.material.is_symmetric()) {
                continue;
            }
            let written = set.to_jwks().to_string();
            let again = KeySet::from_jwks_json(&written, options);
            match again {
                Ok(again) => {
                    let kids =
                        |s: &KeySet| s.keys().iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
                    assert_eq!(
                        kids(&set),
                        kids(&again),
                        "the key ids changed on the way back"
                    );
                }
                Err(e) => panic!("a key set's own JWKS does not read: {e}\n{written}"),
            }
        }
    }
});
