//! Federated ID tokens from an external issuer, signed with real RSA, P-256 and Ed25519 keys.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use maos_identity::PrincipalId;
use maos_identity::TokenError;
use maos_identity::federation::{
    ClaimRoleRule, FederationError, FederationValidator, TrustedIssuer,
};
use maos_identity::jose::{JwkError, b64_encode};
use maos_identity::principal::PrincipalKind;
use serde_json::json;

const IDP: &str = "https://login.corp.example";
const CLIENT: &str = "maos-console";
const NOW: u64 = 1_800_000_000;

struct Idp {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
    ed: Ed25519KeyPair,
}

impl Idp {
    fn new() -> Self {
        Self {
            rsa: RsaKeyPair::generate(KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
            ed: Ed25519KeyPair::generate().unwrap(),
        }
    }

    fn jwks(&self) -> String {
        let rsa = self.rsa.public_key();
        let point = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64_encode(rsa.modulus().big_endian_without_leading_zero()),
             "e": b64_encode(rsa.exponent().big_endian_without_leading_zero())},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256",
             "x": b64_encode(&point[1..33]), "y": b64_encode(&point[33..65])},
            {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": b64_encode(self.ed.public_key().as_ref())},
            // Keys MAOS cannot use are skipped, not fatal: an encryption key and a P-384 key.
            {"kty": "RSA", "kid": "enc-1", "use": "enc",
             "n": b64_encode(rsa.modulus().big_endian_without_leading_zero()), "e": "AQAB"},
            {"kty": "EC", "kid": "p384", "crv": "P-384", "x": "AA", "y": "AA"},
        ]})
        .to_string()
    }

    fn sign(&self, kid: &str, claims: &serde_json::Value) -> String {
        let alg = match kid {
            "rsa-1" => "RS256",
            "ec-1" => "ES256",
            _ => "EdDSA",
        };
        let header = json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64_encode(header.to_string().as_bytes()),
            b64_encode(claims.to_string().as_bytes())
        );
        let sig = match kid {
            "rsa-1" => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        input.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
            "ec-1" => self
                .ec
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            _ => self.ed.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64_encode(&sig))
    }
}

fn config() -> TrustedIssuer {
    TrustedIssuer {
        issuer: IDP.into(),
        audience: CLIENT.into(),
        allowed_algorithms: vec![
            maos_identity::Algorithm::Rs256,
            maos_identity::Algorithm::Es256,
            maos_identity::Algorithm::EdDsa,
        ],
        subject_claim: "email".into(),
        principal_kind: PrincipalKind::User,
        principal_prefix: "corp/".into(),
        role_rules: vec![
            ClaimRoleRule {
                claim: "groups".into(),
                value: "sec-ops".into(),
                roles: vec!["analyst".into()],
            },
            ClaimRoleRule {
                claim: "department".into(),
                value: "finance".into(),
                roles: vec!["billing-reader".into()],
            },
        ],
        leeway_seconds: 60,
        max_age_seconds: None,
    }
}

fn claims() -> serde_json::Value {
    json!({
        "iss": IDP, "aud": CLIENT, "sub": "00u1", "email": "alice@corp.example",
        "groups": ["staff", "sec-ops"], "department": "finance", "nonce": "n-0S6",
        "iat": NOW, "exp": NOW + 600,
    })
}

fn now() -> std::time::SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW + 5)
}

#[test]
fn id_tokens_from_each_key_type_map_to_a_principal_and_roles() {
    let idp = Idp::new();
    let validator = FederationValidator::new(config(), &idp.jwks()).unwrap();
    assert_eq!(validator.keys().len(), 3);
    assert_eq!(validator.keys().skipped().len(), 2);
    for kid in ["rsa-1", "ec-1", "ed-1"] {
        let token = idp.sign(kid, &claims());
        let identity = validator.validate(&token, now(), Some("n-0S6")).unwrap();
        assert_eq!(
            identity.principal,
            PrincipalId::user("corp/alice@corp.example").unwrap()
        );
        let roles: Vec<&str> = identity.roles.iter().map(String::as_str).collect();
        assert_eq!(roles, ["analyst", "billing-reader"], "{kid}");
    }
}

#[test]
fn federated_tokens_are_checked_like_our_own() {
    let idp = Idp::new();
    let validator = FederationValidator::new(config(), &idp.jwks()).unwrap();

    let mut wrong_aud = claims();
    wrong_aud["aud"] = json!("another-client");
    let err = validator
        .validate(&idp.sign("ec-1", &wrong_aud), now(), None)
        .unwrap_err();
    assert_eq!(
        err,
        FederationError::Token(TokenError::WrongAudience(CLIENT.into()))
    );

    let mut several = claims();
    several["aud"] = json!([CLIENT, "other"]);
    let err = validator
        .validate(&idp.sign("ec-1", &several), now(), None)
        .unwrap_err();
    assert_eq!(err, FederationError::AuthorizedParty);
    several["azp"] = json!(CLIENT);
    assert!(
        validator
            .validate(&idp.sign("ec-1", &several), now(), None)
            .is_ok()
    );

    let err = validator
        .validate(&idp.sign("ed-1", &claims()), now(), Some("other"))
        .unwrap_err();
    assert_eq!(err, FederationError::NonceMismatch);

    let mut no_email = claims();
    no_email.as_object_mut().unwrap().remove("email");
    let err = validator
        .validate(&idp.sign("rsa-1", &no_email), now(), None)
        .unwrap_err();
    assert_eq!(err, FederationError::MissingSubject("email".into()));

    let late = UNIX_EPOCH + Duration::from_secs(NOW + 600 + 61);
    let err = validator
        .validate(&idp.sign("rsa-1", &claims()), late, None)
        .unwrap_err();
    assert_eq!(err, FederationError::Token(TokenError::Expired));

    // The RSA key's JWK says RS256, so a PS256 header naming it is refused.
    let token = idp.sign("rsa-1", &claims());
    let header = b64_encode(
        json!({"alg": "PS256", "kid": "rsa-1"})
            .to_string()
            .as_bytes(),
    );
    let swapped = format!("{header}.{}", token.split_once('.').unwrap().1);
    let err = validator.validate(&swapped, now(), None).unwrap_err();
    assert!(matches!(
        err,
        FederationError::Token(TokenError::AlgorithmKeyMismatch { .. })
    ));
}

#[test]
fn symmetric_configuration_and_key_sets_are_refused() {
    let idp = Idp::new();
    let mut config = config();
    config
        .allowed_algorithms
        .push(maos_identity::Algorithm::Hs256);
    assert!(matches!(
        FederationValidator::new(config, &idp.jwks()),
        Err(FederationError::Config(_))
    ));

    let oct = json!({"keys": [{"kty": "oct", "kid": "s", "k": b64_encode(&[7; 32])}]}).to_string();
    let err = FederationValidator::new(self::config(), &oct).unwrap_err();
    assert_eq!(err, FederationError::Jwks(JwkError::SymmetricNotAllowed));

    let duplicate = json!({"keys": [
        {"kty": "OKP", "kid": "a", "crv": "Ed25519", "x": b64_encode(idp.ed.public_key().as_ref())},
        {"kty": "OKP", "kid": "a", "crv": "Ed25519", "x": b64_encode(idp.ed.public_key().as_ref())},
    ]})
    .to_string();
    let err = FederationValidator::new(self::config(), &duplicate).unwrap_err();
    assert_eq!(
        err,
        FederationError::Jwks(JwkError::DuplicateKid("a".into()))
    );
}

#[test]
fn issuer_config_reads_from_toml_like_json() {
    let text = r#"{"issuer": "https://idp.example", "audience": "maos",
                   "role_rules": [{"claim": "groups", "value": "admins", "roles": ["admin"]}]}"#;
    let config: TrustedIssuer = serde_json::from_str(text).unwrap();
    assert_eq!(config.subject_claim, "sub");
    assert_eq!(config.leeway_seconds, 60);
    assert_eq!(config.principal_kind, PrincipalKind::User);
    assert!(
        serde_json::from_str::<TrustedIssuer>(r#"{"issuer":"x","audience":"y","typo":1}"#).is_err()
    );
}
