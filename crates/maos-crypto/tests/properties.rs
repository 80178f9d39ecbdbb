#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests of the key ring's encryption and of the ciphertext parser.

use std::sync::Arc;

use maos_core::SystemClock;
use maos_crypto::{
    Ciphertext, CreateKeyOptions, FileKek, KekMechanism, KeyRing, KeyType, Signature,
};
use proptest::prelude::*;

fn ring() -> (tempfile::TempDir, KeyRing) {
    let dir = tempfile::tempdir().unwrap();
    let kek =
        Arc::new(FileKek::open_or_create(dir.path().join("kek"), KekMechanism::AesGcm).unwrap());
    let ring = KeyRing::new(kek, Arc::new(SystemClock));
    ring.create("aes", CreateKeyOptions::of_type(KeyType::Aes256Gcm))
        .unwrap();
    ring.create(
        "chacha",
        CreateKeyOptions::of_type(KeyType::ChaCha20Poly1305),
    )
    .unwrap();
    // Three versions, so that a flipped version digit can land on a version that exists.
    for _ in 0..2 {
        ring.rotate("aes").unwrap();
        ring.rotate("chacha").unwrap();
    }
    (dir, ring)
}

#[test]
fn round_trip_with_random_associated_data() {
    let (_dir, ring) = ring();
    proptest!(ProptestConfig::with_cases(256), |(
        plaintext in proptest::collection::vec(any::<u8>(), 0..2048),
        aad in proptest::collection::vec(any::<u8>(), 0..128),
        other_aad in proptest::collection::vec(any::<u8>(), 0..128),
        chacha in any::<bool>(),
    )| {
        let name = if chacha { "chacha" } else { "aes" };
        let text = ring.encrypt(name, &plaintext, &aad).unwrap().to_string();
        let parsed = Ciphertext::parse(&text).unwrap();
        let decrypted = ring.decrypt(name, &parsed, &aad).unwrap();
        prop_assert_eq!(decrypted.expose(), plaintext.as_slice());
        if other_aad != aad {
            prop_assert!(ring.decrypt(name, &parsed, &other_aad).is_err());
        }
    });
}

#[test]
fn any_single_bit_flip_in_the_text_fails() {
    let (_dir, ring) = ring();
    proptest!(ProptestConfig::with_cases(512), |(
        plaintext in proptest::collection::vec(any::<u8>(), 0..256),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
        chacha in any::<bool>(),
    )| {
        let name = if chacha { "chacha" } else { "aes" };
        let text = ring.encrypt(name, &plaintext, b"aad").unwrap().to_string();
        let mut bytes = text.into_bytes();
        let index = position.index(bytes.len());
        bytes[index] ^= 1 << bit;
        // A flip that leaves UTF-8 cannot even reach the API, which takes `&str`.
        if let Ok(flipped) = String::from_utf8(bytes) {
            let result =
                Ciphertext::parse(&flipped).and_then(|ct| ring.decrypt(name, &ct, b"aad"));
            prop_assert!(result.is_err(), "flipped bit {} of byte {}: {}", bit, index, flipped);
        }
    });
}

#[test]
fn the_parser_never_panics() {
    let suffixes = "[0-9A-Za-z+/=:v-]{0,40}";
    proptest!(ProptestConfig::with_cases(2048), |(text in any::<String>(), suffix in suffixes)| {
        let _ = Ciphertext::parse(&text);
        let _ = Signature::parse(&text);
        let prefixed = format!("maos:v{suffix}");
        if let Ok(ct) = Ciphertext::parse(&prefixed) {
            // Whatever parses prints back to the same text.
            prop_assert_eq!(ct.to_string(), prefixed);
        }
    });
}
