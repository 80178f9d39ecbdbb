//! Helpers shared by the integration tests: real keys, tokens forged byte by byte.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
};
use maos_identity::ManualClock;
use maos_identity::jose::b64_encode;
use maos_identity::token::{SignerConfig, SigningAlgorithm, TokenSigner};

pub const ISSUER: &str = "https://maos.example";
pub const AUDIENCE: &str = "maos-api";
pub const NOW: u64 = 1_800_000_000;

/// A signer with one Ed25519 and one P-256 key (the P-256 key active), and the raw key pairs
/// so tests can sign arbitrary bytes with the same keys.
pub struct Keys {
    pub clock: Arc<ManualClock>,
    pub signer: TokenSigner,
    pub ed_kid: String,
    pub ed: Ed25519KeyPair,
    pub ec_kid: String,
    pub ec_pkcs8: Vec<u8>,
}

impl Keys {
    pub fn new() -> Self {
        let clock = ManualClock::at(NOW);
        let mut signer = TokenSigner::new(
            SignerConfig {
                issuer: ISSUER.into(),
                audience: AUDIENCE.into(),
                access_token_ttl: Duration::from_secs(300),
            },
            clock.clone(),
        );
        let (ed_kid, ed_pkcs8) = signer.rotate(SigningAlgorithm::EdDsa).unwrap();
        let (ec_kid, ec_pkcs8) = signer.rotate(SigningAlgorithm::Es256).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8_maybe_unchecked(ed_pkcs8.expose()).unwrap();
        Self {
            clock,
            signer,
            ed_kid,
            ed,
            ec_kid,
            ec_pkcs8: ec_pkcs8.expose().to_vec(),
        }
    }

    pub fn ec(&self) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.ec_pkcs8).unwrap()
    }

    pub fn ec_der(&self) -> EcdsaKeyPair {
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &self.ec_pkcs8).unwrap()
    }

    /// Signs `header.claims` (both given as JSON text) with the Ed25519 key.
    pub fn ed_token(&self, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        let sig = self.ed.sign(input.as_bytes());
        format!("{input}.{}", b64_encode(sig.as_ref()))
    }

    /// Signs with the P-256 key, raw r||s.
    pub fn ec_token(&self, header: &str, claims: &str) -> String {
        let input = signing_input(header, claims);
        let sig = self
            .ec()
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64_encode(sig.as_ref()))
    }

    pub fn ed_header(&self) -> String {
        format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt"}}"#,
            self.ed_kid
        )
    }

    pub fn ec_header(&self) -> String {
        format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"at+jwt"}}"#,
            self.ec_kid
        )
    }
}

pub fn signing_input(header: &str, claims: &str) -> String {
    format!(
        "{}.{}",
        b64_encode(header.as_bytes()),
        b64_encode(claims.as_bytes())
    )
}

/// Claims valid at NOW, with `extra` members spliced in (JSON object members text).
pub fn claims_with(extra: &str) -> String {
    let base = format!(
        r#""iss":"{ISSUER}","aud":"{AUDIENCE}","sub":"agent:etl","jti":"j-1","iat":{now},"nbf":{now},"exp":{exp}"#,
        now = NOW,
        exp = NOW + 300
    );
    if extra.is_empty() {
        format!("{{{base}}}")
    } else {
        format!("{{{base},{extra}}}")
    }
}
