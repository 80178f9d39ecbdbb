//! Property tests: the parsers of untrusted input never panic, and no mutation of a valid
//! token validates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::{Keys, claims_with};
use maos_identity::apikey::ParsedApiKey;
use maos_identity::jose::{JwsPolicy, KeySet, KeySetOptions, b64_encode, verify_compact};
use maos_identity::token::RevocationSet;
use proptest::prelude::*;

fn keys_once() -> &'static Keys {
    static KEYS: std::sync::OnceLock<Keys> = std::sync::OnceLock::new();
    KEYS.get_or_init(Keys::new)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn jws_parser_never_panics_on_text(token in ".{0,300}") {
        let keys = keys_once();
        let _ = verify_compact(&token, &keys.signer.key_set(), &JwsPolicy::default());
    }

    #[test]
    fn jws_parser_never_panics_on_encoded_parts(
        header in proptest::collection::vec(any::<u8>(), 0..120),
        payload in proptest::collection::vec(any::<u8>(), 0..120),
        signature in proptest::collection::vec(any::<u8>(), 0..90),
    ) {
        let keys = keys_once();
        let token = format!("{}.{}.{}", b64_encode(&header), b64_encode(&payload), b64_encode(&signature));
        let _ = verify_compact(&token, &keys.signer.key_set(), &JwsPolicy::default());
    }

    #[test]
    fn jws_parser_never_panics_on_json_headers(alg in "[A-Za-z0-9]{0,8}", kid in ".{0,20}", extra in "[a-z]{0,4}") {
        let keys = keys_once();
        let header = serde_json::json!({"alg": alg, "kid": kid, extra: [1, "x"]}).to_string();
        let token = format!("{}.{}.{}", b64_encode(header.as_bytes()), b64_encode(b"{}"), b64_encode(&[0; 64]));
        prop_assert!(verify_compact(&token, &keys.signer.key_set(), &JwsPolicy::default()).is_err());
    }

    #[test]
    fn no_single_character_change_validates(position in any::<prop::sample::Index>(), replacement in "[A-Za-z0-9_.=+/-]") {
        let keys = keys_once();
        let token = keys.ed_token(&keys.ed_header(), &claims_with(""));
        let index = position.index(token.len());
        let original = &token[index..=index];
        prop_assume!(original != replacement);
        let mutated = format!("{}{}{}", &token[..index], replacement, &token[index + 1..]);
        let validator = keys.signer.validator(Duration::from_secs(30));
        let revoked = RevocationSet::new(Duration::from_secs(30), keys.clock.clone());
        prop_assert!(validator.validate(&mutated, &revoked).is_err(), "{mutated}");
    }

    #[test]
    fn api_key_parser_never_panics(text in ".{0,120}") {
        let _ = ParsedApiKey::parse(&text);
    }

    #[test]
    fn api_key_parser_on_near_formats(id in "[0-9a-fA-F_é]{0,18}", secret in "[0-9a-f_]{60,66}") {
        let _ = ParsedApiKey::parse(&format!("maos_{id}_{secret}"));
    }

    #[test]
    fn jwks_parser_never_panics(text in ".{0,200}", x in proptest::collection::vec(any::<u8>(), 0..40)) {
        let _ = KeySet::from_jwks_json(&text, KeySetOptions::default());
        let doc = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "x": b64_encode(&x), "y": b64_encode(&x)},
            {"kty": "OKP", "crv": "Ed25519", "x": b64_encode(&x)},
            {"kty": "RSA", "n": b64_encode(&x), "e": b64_encode(&x)},
        ]});
        let _ = KeySet::from_jwks_json(&doc.to_string(), KeySetOptions { allow_symmetric: false, skip_unusable: true });
    }
}
