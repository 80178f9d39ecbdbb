//! The `maos:v<version>:<base64>` text of ciphertexts and signatures, as clients send it back:
//! the parser is strict (one spelling per value, so a parsed value writes back to the same
//! text), and decryption and verification with real keys refuse what they cannot use.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_crypto::{Ciphertext, Signature};
use maos_fuzz::fixtures::key_ring;

/// The seed ciphertext decrypts and the seed signature verifies, so that the corpus starts on
/// the accepting paths.
fn seeds_are_real() {
    static CHECKED: std::sync::Once = std::sync::Once::new();
    CHECKED.call_once(|| {
        let ring = key_ring();
        let text = include_str!("../corpus/crypto_ciphertext/ciphertext-v2");
        let ciphertext = Ciphertext::parse(text).expect("the seed ciphertext parses");
        let plaintext = ring
            .decrypt("fuzz", &ciphertext, b"")
            .expect("the seed decrypts");
        assert_eq!(plaintext.expose(), b"4111 1111 1111 1111");
        let text = include_str!("../corpus/crypto_ciphertext/signature-v1");
        let signature = Signature::parse(text).expect("the seed signature parses");
        assert!(matches!(
            ring.verify("fuzz-sign", b"message", &signature),
            Ok(true)
        ));
    });
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let ciphertext = Ciphertext::parse(text);
    let signature = Signature::parse(text);
    assert_eq!(
        ciphertext.is_ok(),
        signature.is_ok(),
        "the two forms disagree"
    );
    let (Ok(ciphertext), Ok(signature)) = (ciphertext, signature) else {
        return;
    };
    assert_eq!(
        ciphertext.to_string(),
        text,
        "a parsed ciphertext has another spelling"
    );
    assert_eq!(
        signature.to_string(),
        text,
        "a parsed signature has another spelling"
    );
    assert!(ciphertext.version() >= 1);

    let ring = key_ring();
    seeds_are_real();
    // Both seed values are real: only the untouched ones may decrypt or verify.
    if let Ok(plaintext) = ring.decrypt("fuzz", &ciphertext, b"") {
        assert_eq!(plaintext.expose(), b"4111 1111 1111 1111");
    }
    let _ = ring.decrypt("fuzz-sign", &ciphertext, b"");
    let _ = ring.verify("fuzz-sign", b"message", &signature);
    let _ = ring.verify_hmac("fuzz", b"message", &signature);
    let _ = ring.rewrap("fuzz", &ciphertext, b"");
});
