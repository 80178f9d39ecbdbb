#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Wycheproof vectors through the crate's own primitive layer (`maos_crypto::primitives`).
//!
//! Every `valid` case must be accepted and every `invalid` one rejected; `acceptable` cases are
//! counted and printed. Cases the primitive layer deliberately does not support (non-96-bit
//! nonces, tags other than 128 bits, truncated HMAC tags, AES-192 key wrap) are counted as
//! unsupported, printed, and checked to be refused by the API rather than skipped.

use std::path::PathBuf;

use maos_crypto::CryptoError;
use maos_crypto::primitives::{self, AeadAlgorithm, SignatureScheme};
use serde_json::Value;

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof")
}

fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "wycheproof vectors missing at {} ({error}); the tests expect the shared/ folder \
             beside the repository clone",
            path.display()
        )
    });
    serde_json::from_str(&text).unwrap()
}

fn hex(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}

#[derive(Default, Debug)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    unsupported: usize,
    failures: Vec<String>,
}

impl Counts {
    /// Records one case: `accepted` is what the primitive layer did.
    fn record(&mut self, file: &str, test: &Value, accepted: bool) {
        let id = test["tcId"].as_u64().unwrap();
        match (test["result"].as_str().unwrap(), accepted) {
            ("valid", true) => self.valid += 1,
            ("invalid", false) => self.invalid += 1,
            ("acceptable", true) => self.acceptable_accepted += 1,
            ("acceptable", false) => self.acceptable_rejected += 1,
            (result, accepted) => self.failures.push(format!(
                "{file} tcId {id} ({result}, {}): {}",
                if accepted { "accepted" } else { "rejected" },
                test["comment"]
            )),
        }
    }

    /// A case outside what the API supports; `refused` says whether the API refused it.
    fn unsupported(&mut self, file: &str, test: &Value, refused: bool) {
        self.unsupported += 1;
        if !refused {
            self.failures.push(format!(
                "{file} tcId {}: unsupported parameters were not refused",
                test["tcId"]
            ));
        }
    }

    fn finish(self, file: &str, total: u64) {
        let seen = self.valid
            + self.invalid
            + self.acceptable_accepted
            + self.acceptable_rejected
            + self.unsupported
            + self.failures.len();
        println!(
            "{file}: {seen}/{total} cases: {} valid accepted, {} invalid rejected, acceptable \
             {} accepted / {} rejected, {} unsupported (refused by the api), {} failures",
            self.valid,
            self.invalid,
            self.acceptable_accepted,
            self.acceptable_rejected,
            self.unsupported,
            self.failures.len()
        );
        assert_eq!(seen as u64, total, "{file}: not every case was run");
        assert!(
            self.failures.is_empty(),
            "{file}:\n{}",
            self.failures.join("\n")
        );
    }
}

fn groups(doc: &Value) -> impl Iterator<Item = &Value> {
    doc["testGroups"].as_array().unwrap().iter()
}

fn tests(group: &Value) -> impl Iterator<Item = &Value> {
    group["tests"].as_array().unwrap().iter()
}

fn run_aead(file: &str, algorithm_for: impl Fn(u64) -> Option<AeadAlgorithm>) {
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        let iv_bits = group["ivSize"].as_u64().unwrap();
        let tag_bits = group["tagSize"].as_u64().unwrap();
        let algorithm = algorithm_for(group["keySize"].as_u64().unwrap()).unwrap();
        for test in tests(group) {
            let (key, iv, aad) = (hex(&test["key"]), hex(&test["iv"]), hex(&test["aad"]));
            let (msg, ct, tag) = (hex(&test["msg"]), hex(&test["ct"]), hex(&test["tag"]));
            if iv_bits != 96 {
                let open = primitives::aead_open_detached(algorithm, &key, &iv, &aad, &ct, &tag);
                let seal = primitives::aead_seal(algorithm, &key, &iv, &aad, &msg);
                // Some of these cases also carry an empty tag, refused first.
                let refused = matches!(
                    open,
                    Err(CryptoError::UnsupportedNonceLength(_)
                        | CryptoError::UnsupportedTagLength(_))
                ) && matches!(seal, Err(CryptoError::UnsupportedNonceLength(_)));
                counts.unsupported(file, test, refused);
                continue;
            }
            if tag_bits != 128 {
                let open = primitives::aead_open_detached(algorithm, &key, &iv, &aad, &ct, &tag);
                counts.unsupported(
                    file,
                    test,
                    matches!(open, Err(CryptoError::UnsupportedTagLength(_))),
                );
                continue;
            }
            let opened = primitives::aead_open_detached(algorithm, &key, &iv, &aad, &ct, &tag);
            let mut accepted = matches!(&opened, Ok(pt) if pt.expose() == msg.as_slice());
            if test["result"] == "valid" {
                // Encryption must reproduce the vector too.
                let sealed = primitives::aead_seal(algorithm, &key, &iv, &aad, &msg).unwrap();
                accepted &= sealed == [ct.as_slice(), tag.as_slice()].concat();
            }
            counts.record(file, test, accepted);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn aes_gcm() {
    run_aead("aes_gcm_test.json", |bits| match bits {
        128 => Some(AeadAlgorithm::Aes128Gcm),
        192 => Some(AeadAlgorithm::Aes192Gcm),
        256 => Some(AeadAlgorithm::Aes256Gcm),
        _ => None,
    });
}

#[test]
fn chacha20_poly1305() {
    run_aead("chacha20_poly1305_test.json", |bits| {
        (bits == 256).then_some(AeadAlgorithm::ChaCha20Poly1305)
    });
}

fn run_signatures(file: &str, scheme: SignatureScheme, public_key: impl Fn(&Value) -> Vec<u8>) {
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        let key = public_key(group);
        for test in tests(group) {
            let accepted =
                primitives::verify_signature(scheme, &key, &hex(&test["msg"]), &hex(&test["sig"]));
            counts.record(file, test, accepted);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn ed25519() {
    run_signatures("ed25519_test.json", SignatureScheme::Ed25519, |g| {
        hex(&g["publicKey"]["pk"])
    });
}

#[test]
fn ecdsa_p256_sha256_der() {
    run_signatures(
        "ecdsa_secp256r1_sha256_test.json",
        SignatureScheme::EcdsaP256Sha256Der,
        |g| hex(&g["publicKey"]["uncompressed"]),
    );
}

#[test]
fn ecdsa_p256_sha256_p1363() {
    run_signatures(
        "ecdsa_secp256r1_sha256_p1363_test.json",
        SignatureScheme::EcdsaP256Sha256P1363,
        |g| hex(&g["publicKey"]["uncompressed"]),
    );
}

#[test]
fn rsa_pss_2048_sha256_mgf1_32() {
    let doc = load("rsa_pss_2048_sha256_mgf1_32_test.json");
    for group in groups(&doc) {
        assert_eq!(group["sLen"], 32);
        assert_eq!(group["mgfSha"], "SHA-256");
    }
    run_signatures(
        "rsa_pss_2048_sha256_mgf1_32_test.json",
        SignatureScheme::RsaPssSha256,
        |g| hex(&g["publicKeyDer"]),
    );
}

#[test]
fn rsa_pkcs1_2048_sha256() {
    run_signatures(
        "rsa_signature_2048_sha256_test.json",
        SignatureScheme::RsaPkcs1Sha256,
        |g| hex(&g["publicKeyAsn"]),
    );
}

#[test]
fn rsa_oaep_2048_sha256() {
    let file = "rsa_oaep_2048_sha256_mgf1sha256_test.json";
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        let pkcs8 = hex(&group["privateKeyPkcs8"]);
        for test in tests(group) {
            let decrypted = primitives::rsa_oaep_sha256_decrypt(
                &pkcs8,
                &hex(&test["ct"]),
                &hex(&test["label"]),
            );
            let accepted =
                matches!(&decrypted, Ok(pt) if pt.expose() == hex(&test["msg"]).as_slice());
            counts.record(file, test, accepted);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn hkdf_sha256() {
    let file = "hkdf_sha256_test.json";
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        for test in tests(group) {
            let okm = primitives::hkdf_sha256(
                &hex(&test["ikm"]),
                &hex(&test["salt"]),
                &hex(&test["info"]),
                test["size"].as_u64().unwrap() as usize,
            );
            let accepted = matches!(&okm, Ok(okm) if okm.expose() == hex(&test["okm"]).as_slice());
            counts.record(file, test, accepted);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn hmac_sha256() {
    let file = "hmac_sha256_test.json";
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        let tag_bits = group["tagSize"].as_u64().unwrap();
        for test in tests(group) {
            let (key, msg, tag) = (hex(&test["key"]), hex(&test["msg"]), hex(&test["tag"]));
            let verified = primitives::hmac_sha256_verify(&key, &msg, &tag);
            if tag_bits != 256 {
                // Truncated tags: the API refuses them whatever their bytes.
                counts.unsupported(file, test, !verified);
                continue;
            }
            let computed_matches = primitives::hmac_sha256(&key, &msg).as_slice() == tag.as_slice();
            counts.record(file, test, verified && computed_matches);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}

#[test]
fn aes_kwp() {
    let file = "aes_kwp_test.json";
    let doc = load(file);
    let mut counts = Counts::default();
    for group in groups(&doc) {
        let key_bits = group["keySize"].as_u64().unwrap();
        for test in tests(group) {
            let (key, msg, ct) = (hex(&test["key"]), hex(&test["msg"]), hex(&test["ct"]));
            if key_bits == 192 {
                // aws-lc-rs offers AES-128 and AES-256 key wrap only.
                let refused = matches!(
                    primitives::aes_kwp_unwrap(&key, &ct),
                    Err(CryptoError::InvalidLength { .. })
                ) && primitives::aes_kwp_wrap(&key, &msg).is_err();
                counts.unsupported(file, test, refused);
                continue;
            }
            let unwrapped = primitives::aes_kwp_unwrap(&key, &ct);
            let mut accepted = matches!(&unwrapped, Ok(pt) if pt.expose() == msg.as_slice());
            if test["result"] == "valid" {
                accepted &= primitives::aes_kwp_wrap(&key, &msg).unwrap() == ct;
            }
            counts.record(file, test, accepted);
        }
    }
    counts.finish(file, doc["numberOfTests"].as_u64().unwrap());
}
