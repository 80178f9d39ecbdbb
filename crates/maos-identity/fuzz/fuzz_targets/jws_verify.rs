//! Arbitrary text through the access-token validator and the federation path.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use maos_identity::ManualClock;
use maos_identity::token::{
    AccessTokenValidator, RevocationSet, SignerConfig, SigningAlgorithm, TokenSigner,
};

fn validator() -> &'static (AccessTokenValidator, RevocationSet) {
    static STATE: OnceLock<(AccessTokenValidator, RevocationSet)> = OnceLock::new();
    STATE.get_or_init(|| {
        let clock = ManualClock::at(1_800_000_000);
        let mut signer = TokenSigner::new(
            SignerConfig {
                issuer: "https://maos.example".into(),
                audience: "maos".into(),
                access_token_ttl: Duration::from_secs(300),
            },
            clock.clone(),
        );
        let _ = signer.rotate(SigningAlgorithm::EdDsa);
        let _ = signer.rotate(SigningAlgorithm::Es256);
        let revoked = RevocationSet::new(Duration::from_secs(30), Arc::clone(&clock) as _);
        (signer.validator(Duration::from_secs(30)), revoked)
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let (validator, revoked) = validator();
        let _ = validator.validate(text, revoked);
        let _ = maos_identity::jose::jws::peek_header(text, 8192);
    }
});
