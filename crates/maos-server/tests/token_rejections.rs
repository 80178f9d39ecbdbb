//! One test per token class that issue #4 says validation must reject, each built with a real
//! signing key the server trusts and sent over HTTP to the server's authenticator. Each test
//! also sends a well-formed token signed the same way and sees it accepted, so the refusal is
//! due to the defect alone; and it checks the security event names the refusal class.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_ASN1_SIGNING, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair,
    KeyPair,
};
use common::TestServer;
use maos_core::event::SecurityEvent;
use maos_crypto::{FileKek, KekMechanism, KekProvider};
use maos_identity::ManualClock;
use maos_identity::jose::b64_encode;
use maos_identity::token::{SignerConfig, SigningAlgorithm, TokenSigner};
use maos_store::SigningKeyRow;
use serde_json::json;
use tokio::sync::broadcast;

/// P-256 group order n, big-endian.
const P256_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

struct Forge {
    server: TestServer,
    events: broadcast::Receiver<Arc<SecurityEvent>>,
    issuer: String,
    ed_kid: String,
    ed: Ed25519KeyPair,
    ec_kid: String,
    ec_pkcs8: Vec<u8>,
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn input(header: &str, claims: &str) -> String {
    format!(
        "{}.{}",
        b64_encode(header.as_bytes()),
        b64_encode(claims.as_bytes())
    )
}

impl Forge {
    /// A server that trusts one more Ed25519 key and one P-256 key (active), both stored the
    /// way the server stores its own: wrapped by the data directory's KEK.
    async fn start() -> Forge {
        let server = TestServer::start().await;
        let state = server.server.as_ref().unwrap().state.clone();
        let created = server
            .post("/v1/principals")
            .json(&json!({"id": "user:tok", "roles": ["maos-pep"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);

        let kek =
            FileKek::open_or_create(server.dir.path().join("kek"), KekMechanism::AesGcm).unwrap();
        let mut signer = TokenSigner::new(
            SignerConfig {
                issuer: "unused".into(),
                audience: "unused".into(),
                access_token_ttl: Duration::from_secs(60),
            },
            ManualClock::at(now() as u64),
        );
        let mut store_key = async |algorithm: SigningAlgorithm, name: &str| {
            let (kid, pkcs8) = signer.rotate(algorithm).unwrap();
            let context = format!("maos-identity:signing-key:{kid}");
            let sealed = kek.wrap(pkcs8.expose(), context.as_bytes()).unwrap();
            state
                .store
                .identities()
                .add_signing_key(&SigningKeyRow {
                    kid: kid.clone(),
                    algorithm: name.into(),
                    sealed_private: b64_encode(&sealed),
                    created_at: now() * 1000,
                    replaced_at: None,
                })
                .await
                .unwrap();
            (kid, pkcs8.expose().to_vec())
        };
        let (ed_kid, ed_pkcs8) = store_key(SigningAlgorithm::EdDsa, "EdDSA").await;
        let (ec_kid, ec_pkcs8) = store_key(SigningAlgorithm::Es256, "ES256").await;
        state.identity.reload_signing_keys().await.unwrap();

        Forge {
            events: state.events.subscribe(),
            issuer: state.identity.issuer.clone(),
            ed: Ed25519KeyPair::from_pkcs8_maybe_unchecked(&ed_pkcs8).unwrap(),
            ed_kid,
            ec_kid,
            ec_pkcs8,
            server,
        }
    }

    fn claims_with(&self, extra: &str) -> String {
        let now = now();
        let base = format!(
            r#""iss":"{}","aud":"maos","sub":"user:tok","jti":"j-{now}-{}","iat":{now},"nbf":{now},"exp":{}"#,
            self.issuer,
            extra.len(),
            now + 60
        );
        if extra.is_empty() {
            format!("{{{base}}}")
        } else {
            format!("{{{base},{extra}}}")
        }
    }

    fn claims(&self) -> String {
        self.claims_with("")
    }

    fn ed_header(&self) -> String {
        format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt"}}"#,
            self.ed_kid
        )
    }

    fn ec_header(&self) -> String {
        format!(
            r#"{{"alg":"ES256","kid":"{}","typ":"at+jwt"}}"#,
            self.ec_kid
        )
    }

    fn ed_token(&self, header: &str, claims: &str) -> String {
        let input = input(header, claims);
        format!(
            "{input}.{}",
            b64_encode(self.ed.sign(input.as_bytes()).as_ref())
        )
    }

    fn ec_signature(&self, input: &str) -> Vec<u8> {
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &self.ec_pkcs8).unwrap();
        pair.sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    }

    fn ec_token(&self, header: &str, claims: &str) -> String {
        let input = input(header, claims);
        format!("{input}.{}", b64_encode(&self.ec_signature(&input)))
    }

    /// The status of `/v1/authorize` called with this token.
    async fn status(&self, token: &str) -> u16 {
        self.server
            .client
            .post(self.server.url("/v1/authorize"))
            .bearer_auth(token)
            .json(&common::request("user:tok", "document:a", "read"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// Refused with 401, and the security event names `reason`.
    async fn refused(&mut self, token: &str, reason: &str) {
        while self.events.try_recv().is_ok() {}
        assert_eq!(self.status(token).await, 401, "accepted: {token}");
        let mut reasons = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            if let Some(r) = event.details.get("reason").and_then(|r| r.as_str()) {
                reasons.push(r.to_owned());
            }
        }
        assert!(
            reasons.iter().any(|r| r == reason),
            "wanted {reason}, events said {reasons:?}"
        );
    }

    async fn accepted(&self, token: &str) {
        assert_eq!(self.status(token).await, 200, "refused: {token}");
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

#[tokio::test]
async fn alg_none_in_any_casing() {
    let mut forge = Forge::start().await;
    forge
        .accepted(&forge.ed_token(&forge.ed_header(), &forge.claims()))
        .await;
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(
            r#"{{"alg":"{alg}","kid":"{}","typ":"at+jwt"}}"#,
            forge.ed_kid
        );
        let claims = forge.claims();
        forge
            .refused(&format!("{}.", input(&header, &claims)), "alg_none")
            .await;
        // With a real signature appended it is refused all the same.
        let signed = forge.ed_token(&header, &claims);
        forge.refused(&signed, "alg_none").await;
    }
    forge.stop().await;
}

#[tokio::test]
async fn hs256_keyed_with_the_public_key() {
    let mut forge = Forge::start().await;
    let header = format!(
        r#"{{"alg":"HS256","kid":"{}","typ":"at+jwt"}}"#,
        forge.ed_kid
    );
    let input = input(&header, &forge.claims());
    // The public key, as raw bytes and as its JWKS text, used as the HMAC secret.
    let jwks = forge
        .server
        .client
        .get(forge.server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [forge.ed.public_key().as_ref().to_vec(), jwks.into_bytes()] {
        let tag = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &secret),
            input.as_bytes(),
        );
        forge
            .refused(
                &format!("{input}.{}", b64_encode(tag.as_ref())),
                "alg_confusion",
            )
            .await;
    }
    forge.stop().await;
}

#[tokio::test]
async fn alg_that_does_not_fit_the_key() {
    let mut forge = Forge::start().await;
    // ES256 named for the Ed25519 key, signed by the P-256 key; EdDSA named for the P-256 key.
    let header = format!(
        r#"{{"alg":"ES256","kid":"{}","typ":"at+jwt"}}"#,
        forge.ed_kid
    );
    forge
        .refused(
            &forge.ec_token(&header, &forge.claims()),
            "alg_key_mismatch",
        )
        .await;
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt"}}"#,
        forge.ec_kid
    );
    forge
        .refused(
            &forge.ed_token(&header, &forge.claims()),
            "alg_key_mismatch",
        )
        .await;
    forge.stop().await;
}

#[tokio::test]
async fn keys_named_by_the_token_itself() {
    let mut forge = Forge::start().await;
    let x = b64_encode(forge.ed.public_key().as_ref());
    for member in [
        format!(r#""jwk":{{"kty":"OKP","crv":"Ed25519","x":"{x}"}}"#),
        r#""jku":"https://attacker.example/jwks.json""#.to_owned(),
        r#""x5u":"https://attacker.example/cert.pem""#.to_owned(),
        r#""x5c":["MIIB"]"#.to_owned(),
    ] {
        // Signed by a key the server trusts: the member alone refuses it.
        let header = format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt",{member}}}"#,
            forge.ed_kid
        );
        forge
            .refused(&forge.ed_token(&header, &forge.claims()), "embedded_key")
            .await;
    }
    forge.stop().await;
}

#[tokio::test]
async fn unknown_crit_headers() {
    let mut forge = Forge::start().await;
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","crit":["maos-ext"],"maos-ext":1}}"#,
        forge.ed_kid
    );
    forge
        .refused(&forge.ed_token(&header, &forge.claims()), "unknown_crit")
        .await;
    forge.stop().await;
}

#[tokio::test]
async fn exp_and_nbf_given_as_strings() {
    let mut forge = Forge::start().await;
    let now = now();
    for claims in [
        format!(
            r#"{{"iss":"{}","aud":"maos","sub":"user:tok","jti":"s1","iat":{now},"nbf":{now},"exp":"{}"}}"#,
            forge.issuer,
            now + 60
        ),
        format!(
            r#"{{"iss":"{}","aud":"maos","sub":"user:tok","jti":"s2","iat":{now},"nbf":"{now}","exp":{}}}"#,
            forge.issuer,
            now + 60
        ),
    ] {
        forge
            .refused(
                &forge.ed_token(&forge.ed_header(), &claims),
                "claim_not_numeric",
            )
            .await;
    }
    forge.stop().await;
}

#[tokio::test]
async fn a_missing_exp() {
    let mut forge = Forge::start().await;
    let now = now();
    let claims = format!(
        r#"{{"iss":"{}","aud":"maos","sub":"user:tok","jti":"m1","iat":{now},"nbf":{now}}}"#,
        forge.issuer
    );
    forge
        .refused(
            &forge.ed_token(&forge.ed_header(), &claims),
            "missing_claim",
        )
        .await;
    forge.stop().await;
}

#[tokio::test]
async fn wrong_aud_or_iss() {
    let mut forge = Forge::start().await;
    let now = now();
    let token = |iss: &str, aud: &str| {
        let claims = format!(
            r#"{{"iss":"{iss}","aud":"{aud}","sub":"user:tok","jti":"w-{aud}","iat":{now},"nbf":{now},"exp":{}}}"#,
            now + 60
        );
        forge.ed_token(&forge.ed_header(), &claims)
    };
    let good = token(&forge.issuer.clone(), "maos");
    let wrong_aud = token(&forge.issuer.clone(), "another-api");
    let wrong_iss = token("https://attacker.example", "maos");
    forge.accepted(&good).await;
    forge.refused(&wrong_aud, "wrong_audience").await;
    forge.refused(&wrong_iss, "wrong_issuer").await;
    forge.stop().await;
}

#[tokio::test]
async fn ecdsa_r_or_s_zero_or_out_of_range() {
    let mut forge = Forge::start().await;
    let header = forge.ec_header();
    let claims = forge.claims();
    forge.accepted(&forge.ec_token(&header, &claims)).await;
    let input = input(&header, &claims);
    let real = forge.ec_signature(&input);
    let (r, s) = real.split_at(32);
    let zero = [0u8; 32];
    let mut n_plus = P256_N;
    n_plus[31] = n_plus[31].wrapping_add(1);
    for (r, s) in [
        (&zero[..], s),
        (r, &zero[..]),
        (&P256_N[..], s),
        (r, &P256_N[..]),
        (&n_plus[..], s),
        (&[0xffu8; 32][..], s),
    ] {
        let signature = [r, s].concat();
        forge
            .refused(
                &format!("{input}.{}", b64_encode(&signature)),
                "ecdsa_scalar_range",
            )
            .await;
    }
    forge.stop().await;
}

#[tokio::test]
async fn ecdsa_der_signature_where_raw_is_required() {
    let mut forge = Forge::start().await;
    let header = forge.ec_header();
    let input = input(&header, &forge.claims());
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &forge.ec_pkcs8).unwrap();
    let der = pair.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
    forge
        .refused(
            &format!("{input}.{}", b64_encode(der.as_ref())),
            "ecdsa_der",
        )
        .await;
    forge.stop().await;
}

#[tokio::test]
async fn a_revoked_or_disabled_principals_token() {
    let mut forge = Forge::start().await;
    let token = forge.ed_token(&forge.ed_header(), &forge.claims());
    forge.accepted(&token).await;
    let disabled = forge
        .server
        .post("/v1/principals/user:tok/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    forge.refused(&token, "principal_disabled").await;
    forge.stop().await;
}
