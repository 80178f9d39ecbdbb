//! Compact JWS tokens against a fixed key set: header parsing, key lookup, algorithm checks
//! and signature verification never panic, and only the signer's own tokens verify. The
//! access-token validator (claims, subject, scope) runs on whatever verifies.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use maos_identity::jose::jws::peek_header;
use maos_identity::jose::{Algorithm, JwsPolicy, KeySet, verify_compact};
use maos_identity::token::revocation::RevocationSet;
use maos_identity::token::{
    AccessTokenValidator, SignerConfig, SigningAlgorithm, SigningKeyState, TokenSigner,
};
use maos_identity::{ManualClock, SecretBytes};

/// The key that signed the seed tokens in fuzz/corpus/identity_jws.
const PKCS8: &[u8] = include_bytes!("../fixtures/ed25519.pk8");

struct Fixture {
    keys: KeySet,
    validator: AccessTokenValidator,
    revoked: RevocationSet,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let clock = ManualClock::at(1_800_000_060);
        let mut signer = TokenSigner::new(
            SignerConfig {
                issuer: "https://maos.example".to_owned(),
                audience: "maos".to_owned(),
                access_token_ttl: Duration::from_secs(300),
            },
            clock.clone(),
        );
        let pkcs8 = SecretBytes::new(PKCS8.to_vec());
        signer
            .add_key(SigningAlgorithm::EdDsa, &pkcs8, SigningKeyState::Active)
            .expect("the fixture signing key loads");
        // A second key of the other algorithm, so that lookups choose between two.
        signer
            .rotate(SigningAlgorithm::Es256)
            .expect("an ES256 key is generated");
        let fixture = Fixture {
            keys: signer.key_set(),
            validator: signer.validator(Duration::from_secs(30)),
            revoked: RevocationSet::new(Duration::from_secs(30), clock),
        };
        // The seed token is real: it passes, so the corpus starts on the accepting path.
        let seed = include_str!("../corpus/identity_jws/access-token");
        if let Err(e) = fixture.validator.validate(seed, &fixture.revoked) {
            panic!("the seed token no longer validates: {e}");
        }
        fixture
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let fixture = fixture();
    let _ = peek_header(token, 8192);

    let policy = JwsPolicy {
        allowed_algorithms: vec![Algorithm::EdDsa, Algorithm::Es256, Algorithm::Hs256],
        ..JwsPolicy::default()
    };
    if let Ok(verified) = verify_compact(token, &fixture.keys, &policy) {
        // A valid signature means the token is the signer's: the key id names one of its keys,
        // and the header's algorithm is that key's.
        let key = fixture.keys.find(Some(&verified.kid));
        assert!(key.is_ok_and(|key| key.fits(verified.header.alg)));
    }
    let _ = fixture.validator.validate(token, &fixture.revoked);
});
