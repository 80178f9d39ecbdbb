//! One test per class of token the validator must refuse, each built with a real signing key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::KeyPair;
use common::{AUDIENCE, ISSUER, Keys, NOW, claims_with, signing_input};
use maos_identity::jose::{Segment, b64_encode};
use maos_identity::token::{AccessGrant, RevocationSet};
use maos_identity::{PrincipalId, TokenError};

fn revocations(keys: &Keys) -> RevocationSet {
    RevocationSet::new(Duration::from_secs(30), keys.clock.clone())
}

fn validate(
    keys: &Keys,
    token: &str,
) -> Result<maos_identity::token::AccessTokenClaims, TokenError> {
    keys.signer
        .validator(Duration::from_secs(30))
        .validate(token, &revocations(keys))
}

fn without_claim(name: &str) -> String {
    let mut claims: serde_json::Value = serde_json::from_str(&claims_with("")).unwrap();
    claims.as_object_mut().unwrap().remove(name);
    claims.to_string()
}

#[test]
fn well_formed_tokens_are_accepted() {
    let keys = Keys::new();
    let ed = keys.ed_token(&keys.ed_header(), &claims_with(r#""scope":"read write""#));
    let claims = validate(&keys, &ed).unwrap();
    assert_eq!(claims.subject, PrincipalId::agent("etl").unwrap());
    assert_eq!(claims.kid, keys.ed_kid);
    assert_eq!(claims.scope.len(), 2);
    let ec = keys.ec_token(&keys.ec_header(), &claims_with(""));
    assert_eq!(validate(&keys, &ec).unwrap().kid, keys.ec_kid);
}

#[test]
fn alg_none_in_any_casing() {
    let keys = Keys::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = format!(
            r#"{{"alg":"{alg}","kid":"{}","typ":"at+jwt"}}"#,
            keys.ed_kid
        );
        let unsigned = format!("{}.", signing_input(&header, &claims_with("")));
        assert_eq!(
            validate(&keys, &unsigned),
            Err(TokenError::AlgNone),
            "{alg}"
        );
        // Also with a real signature attached.
        let signed = keys.ed_token(&header, &claims_with(""));
        assert_eq!(validate(&keys, &signed), Err(TokenError::AlgNone), "{alg}");
    }
}

#[test]
fn hs256_keyed_with_the_public_key_is_refused() {
    let keys = Keys::new();
    // The attacker knows the public key and MACs with it, as a confused verifier would.
    let header = format!(
        r#"{{"alg":"HS256","kid":"{}","typ":"at+jwt"}}"#,
        keys.ec_kid
    );
    let input = signing_input(&header, &claims_with(""));
    let public_point = keys.ec().public_key().as_ref().to_vec();
    let jwks = keys.signer.jwks().to_string();
    for secret in [public_point, jwks.into_bytes()] {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
        let tag = hmac::sign(&key, input.as_bytes());
        let token = format!("{input}.{}", b64_encode(tag.as_ref()));
        assert_eq!(
            validate(&keys, &token),
            Err(TokenError::SymmetricAlgorithmForAsymmetricKey {
                alg: "HS256".into(),
                kid: keys.ec_kid.clone()
            })
        );
    }
}

#[test]
fn alg_that_does_not_fit_the_key() {
    let keys = Keys::new();
    // An ES256 header naming the Ed25519 key: the kid's key type decides, not the token.
    let header = format!(
        r#"{{"alg":"ES256","kid":"{}","typ":"at+jwt"}}"#,
        keys.ed_kid
    );
    let token = keys.ec_token(&header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::AlgorithmKeyMismatch {
            alg: "ES256".into(),
            kid: keys.ed_kid.clone()
        })
    );
    let header = format!(
        r#"{{"alg":"RS256","kid":"{}","typ":"at+jwt"}}"#,
        keys.ec_kid
    );
    let token = keys.ec_token(&header, &claims_with(""));
    assert!(matches!(
        validate(&keys, &token),
        Err(TokenError::AlgorithmKeyMismatch { .. })
    ));
    // An algorithm MAOS does not know at all.
    let header = format!(
        r#"{{"alg":"ES384","kid":"{}","typ":"at+jwt"}}"#,
        keys.ec_kid
    );
    let token = keys.ec_token(&header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::UnsupportedAlgorithm("ES384".into()))
    );
}

#[test]
fn keys_named_by_the_token_are_refused() {
    let keys = Keys::new();
    let jwk = keys.signer.jwks()["keys"][0].to_string();
    for (member, value) in [
        ("jwk", jwk),
        ("jku", r#""https://attacker.example/jwks.json""#.to_owned()),
        ("x5u", r#""https://attacker.example/cert.pem""#.to_owned()),
        ("x5c", r#"["MIIB"]"#.to_owned()),
    ] {
        let header = format!(
            r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","{member}":{value}}}"#,
            keys.ed_kid
        );
        let token = keys.ed_token(&header, &claims_with(""));
        let expected: &'static str = match member {
            "jwk" => "jwk",
            "jku" => "jku",
            "x5u" => "x5u",
            _ => "x5c",
        };
        assert_eq!(
            validate(&keys, &token),
            Err(TokenError::EmbeddedKey(expected))
        );
    }
}

#[test]
fn unknown_crit_headers() {
    let keys = Keys::new();
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","crit":["exp-policy"],"exp-policy":1}}"#,
        keys.ed_kid
    );
    let token = keys.ed_token(&header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::UnknownCritical(vec!["exp-policy".into()]))
    );
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","crit":[]}}"#,
        keys.ed_kid
    );
    let token = keys.ed_token(&header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::MalformedHeader("crit"))
    );
}

#[test]
fn dates_given_as_strings() {
    let keys = Keys::new();
    for (name, error) in [("exp", "exp"), ("nbf", "nbf"), ("iat", "iat")] {
        let mut claims: serde_json::Value = serde_json::from_str(&claims_with("")).unwrap();
        let value = claims[name].as_u64().unwrap().to_string();
        claims[name] = serde_json::Value::String(value);
        let token = keys.ed_token(&keys.ed_header(), &claims.to_string());
        assert_eq!(
            validate(&keys, &token),
            Err(TokenError::ClaimNotNumeric(error))
        );
    }
}

#[test]
fn missing_exp() {
    let keys = Keys::new();
    let token = keys.ed_token(&keys.ed_header(), &without_claim("exp"));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::MissingClaim("exp"))
    );
}

#[test]
fn wrong_audience_or_issuer() {
    let keys = Keys::new();
    let claims = claims_with("").replace(AUDIENCE, "another-api");
    let token = keys.ed_token(&keys.ed_header(), &claims);
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::WrongAudience(AUDIENCE.into()))
    );
    let claims = claims_with("").replace(ISSUER, "https://evil.example");
    let token = keys.ed_token(&keys.ed_header(), &claims);
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::WrongIssuer("https://evil.example".into()))
    );
}

#[test]
fn expired_and_not_yet_valid_with_leeway() {
    let keys = Keys::new();
    let token = keys.ed_token(&keys.ed_header(), &claims_with(""));
    // exp is NOW+300; leeway 30 s.
    keys.clock.advance(Duration::from_secs(329));
    assert!(validate(&keys, &token).is_ok());
    keys.clock.advance(Duration::from_secs(1));
    assert_eq!(validate(&keys, &token), Err(TokenError::Expired));

    let keys = Keys::new();
    let future = claims_with("").replace(
        &format!(r#""nbf":{NOW}"#),
        &format!(r#""nbf":{}"#, NOW + 31),
    );
    let token = keys.ed_token(&keys.ed_header(), &future);
    assert_eq!(validate(&keys, &token), Err(TokenError::NotYetValid));
    let future_iat = claims_with("").replace(
        &format!(r#""iat":{NOW}"#),
        &format!(r#""iat":{}"#, NOW + 31),
    );
    let token = keys.ed_token(&keys.ed_header(), &future_iat);
    assert_eq!(validate(&keys, &token), Err(TokenError::IssuedInFuture));
}

/// The P-256 group order n.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

#[test]
fn ecdsa_r_or_s_zero_or_out_of_range() {
    let keys = Keys::new();
    let input = signing_input(&keys.ec_header(), &claims_with(""));
    let good = keys
        .ec()
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    let good = good.as_ref();
    let (r, s) = good.split_at(32);

    let mut r_plus_n = [0u8; 32];
    // r + n would be a valid signature for a verifier that reduces mod n; here r' = n exactly
    // and r' = n + small are both outside [1, n-1].
    r_plus_n.copy_from_slice(&N);
    let cases: Vec<Vec<u8>> = vec![
        [&[0u8; 32][..], s].concat(),
        [r, &[0u8; 32][..]].concat(),
        [&N[..], s].concat(),
        [r, &N[..]].concat(),
        [&[0xffu8; 32][..], s].concat(),
    ];
    for sig in cases {
        let token = format!("{input}.{}", b64_encode(&sig));
        assert_eq!(
            validate(&keys, &token),
            Err(TokenError::EcdsaScalarOutOfRange)
        );
    }
    // The untouched signature is fine, so the refusals above are about the scalars.
    let token = format!("{input}.{}", b64_encode(good));
    assert!(validate(&keys, &token).is_ok());
}

#[test]
fn ecdsa_der_signature_where_raw_is_required() {
    let keys = Keys::new();
    let input = signing_input(&keys.ec_header(), &claims_with(""));
    let der = keys
        .ec_der()
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    assert_eq!(der.as_ref()[0], 0x30);
    let token = format!("{input}.{}", b64_encode(der.as_ref()));
    assert_eq!(validate(&keys, &token), Err(TokenError::EcdsaDerSignature));
    // A raw signature padded to another length is refused by length.
    let raw = keys
        .ec()
        .sign(&SystemRandom::new(), input.as_bytes())
        .unwrap();
    let padded = [raw.as_ref(), &[0u8]].concat();
    let token = format!("{input}.{}", b64_encode(&padded));
    assert!(matches!(
        validate(&keys, &token),
        Err(TokenError::EcdsaSignatureLength(65) | TokenError::EcdsaDerSignature)
    ));
}

#[test]
fn malformed_base64url() {
    let keys = Keys::new();
    let token = keys.ed_token(&keys.ed_header(), &claims_with(""));
    let parts: Vec<&str> = token.split('.').collect();

    // Padding on the header.
    let mut padded_header = parts[0].to_owned();
    while !padded_header.len().is_multiple_of(4) {
        padded_header.push('=');
    }
    if padded_header == parts[0] {
        padded_header.push_str("==");
    }
    let t = format!("{padded_header}.{}.{}", parts[1], parts[2]);
    assert_eq!(
        validate(&keys, &t),
        Err(TokenError::Base64(Segment::Header))
    );

    // Characters outside the URL-safe alphabet.
    let t = format!(
        "{}.{}.{}",
        parts[0],
        parts[1],
        parts[2].replacen(|c: char| c.is_ascii_alphanumeric(), "+", 1)
    );
    assert_eq!(
        validate(&keys, &t),
        Err(TokenError::Base64(Segment::Signature))
    );
    let t = format!("{}.{}$.{}", parts[0], parts[1], parts[2]);
    assert_eq!(
        validate(&keys, &t),
        Err(TokenError::Base64(Segment::Payload))
    );
}

#[test]
fn duplicate_members() {
    let keys = Keys::new();
    let header = format!(
        r#"{{"alg":"EdDSA","kid":"{}","typ":"at+jwt","alg":"EdDSA"}}"#,
        keys.ed_kid
    );
    let token = keys.ed_token(&header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::DuplicateMember {
            segment: Segment::Header,
            name: "alg".into()
        })
    );
    let claims = claims_with(r#""sub":"agent:other""#);
    let token = keys.ed_token(&keys.ed_header(), &claims);
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::DuplicateMember {
            segment: Segment::Payload,
            name: "sub".into()
        })
    );
}

#[test]
fn oversize_tokens() {
    let keys = Keys::new();
    let padding = format!(r#""pad":"{}""#, "x".repeat(9000));
    let token = keys.ed_token(&keys.ed_header(), &claims_with(&padding));
    assert!(matches!(
        validate(&keys, &token),
        Err(TokenError::TooLarge { .. })
    ));
}

#[test]
fn unknown_key_wrong_type_bad_signature_and_revoked() {
    let keys = Keys::new();
    let header = r#"{"alg":"EdDSA","kid":"not-a-key","typ":"at+jwt"}"#;
    let token = keys.ed_token(header, &claims_with(""));
    assert_eq!(
        validate(&keys, &token),
        Err(TokenError::UnknownKey("not-a-key".into()))
    );

    let header = format!(r#"{{"alg":"EdDSA","kid":"{}","typ":"JWT"}}"#, keys.ed_kid);
    let token = keys.ed_token(&header, &claims_with(""));
    assert!(matches!(
        validate(&keys, &token),
        Err(TokenError::WrongType { .. })
    ));

    let token = keys.ed_token(&keys.ed_header(), &claims_with(""));
    let tampered = token.replacen(
        &common::signing_input(&keys.ed_header(), &claims_with("")),
        &common::signing_input(
            &keys.ed_header(),
            &claims_with("").replace("agent:etl", "agent:root"),
        ),
        1,
    );
    assert_eq!(validate(&keys, &tampered), Err(TokenError::BadSignature));

    let mut revoked = revocations(&keys);
    revoked.revoke("j-1", (NOW + 300) as i64);
    let validator = keys.signer.validator(Duration::from_secs(30));
    assert_eq!(
        validator.validate(&token, &revoked),
        Err(TokenError::Revoked)
    );
}

#[test]
fn signed_tokens_rotation_overlap_and_retirement() {
    let mut keys = Keys::new();
    let grant = AccessGrant {
        subject: PrincipalId::user("alice").unwrap(),
        scope: ["read".to_owned()].into(),
        client_id: None,
        amr: vec!["pwd".into(), "otp".into()],
    };
    let first = keys.signer.issue(&grant).unwrap();
    assert_eq!(first.kid, keys.ec_kid);
    let claims = validate(&keys, first.token.expose()).unwrap();
    assert_eq!(claims.subject, grant.subject);
    assert_eq!(claims.amr, grant.amr);

    // Rotate: new tokens use the new key; the old token still validates.
    let (new_kid, _) = keys
        .signer
        .rotate(maos_identity::token::SigningAlgorithm::EdDsa)
        .unwrap();
    let second = keys.signer.issue(&grant).unwrap();
    assert_eq!(second.kid, new_kid);
    assert!(validate(&keys, first.token.expose()).is_ok());
    assert_eq!(keys.signer.jwks()["keys"].as_array().unwrap().len(), 3);

    // After the overlap the replaced keys are retired and their tokens stop validating.
    keys.clock.advance(Duration::from_secs(301));
    let retired = keys.signer.retire_replaced_before(Duration::from_secs(300));
    assert_eq!(retired.len(), 2);
    keys.clock
        .set(std::time::UNIX_EPOCH + Duration::from_secs(NOW + 10));
    assert_eq!(
        validate(&keys, first.token.expose()),
        Err(TokenError::UnknownKey(keys.ec_kid.clone()))
    );
    assert!(validate(&keys, second.token.expose()).is_ok());
    assert!(
        keys.signer.retire(&new_kid).is_err(),
        "the active key cannot be retired"
    );
}
