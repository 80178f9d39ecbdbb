//! Wycheproof JWS and JWK vectors through MAOS's own validation path.
//!
//! Every `invalid` case must be refused. Every `valid` case must be accepted when its
//! algorithm and key are ones MAOS supports; the others are listed with counts in the output
//! (run with `--nocapture` to see it), never skipped silently.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use maos_identity::jose::{
    Algorithm, JwsPolicy, KeySet, KeySetOptions, b64_decode, verify_compact,
};
use serde_json::Value;

/// Cases Wycheproof calls valid that MAOS refuses on purpose, with the reason.
const STRICTER_THAN_WYCHEPROOF: [(u64, &str); 2] = [
    (
        372,
        "a `?` inside the base64url header: MAOS never drops invalid characters",
    ),
    (
        373,
        "a `?` inside the base64url payload: MAOS never drops invalid characters",
    ),
];

fn vectors_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/vectors/wycheproof");
    assert!(
        dir.is_dir(),
        "Wycheproof vectors not found at {}; they are expected in shared/vectors/wycheproof next to the project",
        dir.display()
    );
    dir
}

fn valid_tokens(doc: &Value) -> std::collections::BTreeSet<String> {
    doc["testGroups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["tests"].as_array().unwrap())
        .filter(|t| t["result"].as_str() == Some("valid"))
        .map(|t| t["jws"].as_str().unwrap().to_owned())
        .collect()
}

fn load(name: &str) -> Value {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn policy() -> JwsPolicy {
    JwsPolicy {
        max_token_len: 16 * 1024,
        allowed_algorithms: vec![
            Algorithm::EdDsa,
            Algorithm::Es256,
            Algorithm::Rs256,
            Algorithm::Ps256,
            Algorithm::Hs256,
        ],
        expected_type: None,
    }
}

/// Why a case is outside what MAOS supports, if it is: the token's `alg` or the key's.
fn unsupported_reason(jws: &str, jwks: &[&serde_json::Map<String, Value>]) -> Option<String> {
    let header = jws
        .split('.')
        .next()
        .and_then(b64_decode)
        .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok());
    let token_alg = header
        .as_ref()
        .and_then(|h| h.get("alg"))
        .and_then(Value::as_str);
    if let Some(alg) = token_alg
        && Algorithm::from_name(alg).is_none()
        && !alg.eq_ignore_ascii_case("none")
    {
        return Some(format!("token alg {alg}"));
    }
    for jwk in jwks {
        if let Some(alg) = jwk.get("alg").and_then(Value::as_str)
            && Algorithm::from_name(alg).is_none()
        {
            return Some(format!("key alg {alg}"));
        }
        if let Some(crv) = jwk.get("crv").and_then(Value::as_str)
            && crv != "P-256"
            && crv != "Ed25519"
        {
            return Some(format!("curve {crv}"));
        }
    }
    None
}

#[derive(Default)]
struct Tally {
    valid_accepted: usize,
    invalid_rejected: usize,
    unsupported: BTreeMap<String, Vec<u64>>,
    stricter: Vec<u64>,
    contradictory: Vec<u64>,
    failures: Vec<String>,
    /// Tokens some case of the file calls valid.
    valid_tokens: std::collections::BTreeSet<String>,
}

impl Tally {
    fn check(&mut self, file: &str, test: &Value, jwks: &[&serde_json::Map<String, Value>]) {
        let id = test["tcId"].as_u64().unwrap();
        let jws = test["jws"].as_str().unwrap();
        let expected_valid = test["result"].as_str() == Some("valid");
        let outcome = KeySet::from_jwks(
            jwks,
            KeySetOptions {
                allow_symmetric: true,
                skip_unusable: false,
            },
        )
        .map_err(|e| e.to_string())
        .and_then(|keys| verify_compact(jws, &keys, &policy()).map_err(|e| e.to_string()));
        let comment = test["comment"].as_str().unwrap_or_default();

        match (expected_valid, outcome) {
            (false, Err(_)) => self.invalid_rejected += 1,
            // The same token is listed as valid elsewhere in the file (the vector lost the
            // character that made it invalid): no verifier can satisfy both, so it is reported.
            (false, Ok(_)) if self.valid_tokens.contains(jws) => self.contradictory.push(id),
            (false, Ok(_)) => self
                .failures
                .push(format!("{file} #{id} ({comment}): invalid case accepted")),
            (true, Ok(_)) => self.valid_accepted += 1,
            (true, Err(error)) => {
                if STRICTER_THAN_WYCHEPROOF.iter().any(|(case, _)| *case == id)
                    && file.contains("signature")
                {
                    self.stricter.push(id);
                } else if let Some(reason) = unsupported_reason(jws, jwks) {
                    self.unsupported.entry(reason).or_default().push(id);
                } else {
                    self.failures.push(format!(
                        "{file} #{id} ({comment}): valid case refused: {error}"
                    ));
                }
            }
        }
    }

    fn report(&self, file: &str) {
        println!("wycheproof {file}:");
        println!("  valid accepted:   {}", self.valid_accepted);
        println!("  invalid rejected: {}", self.invalid_rejected);
        for (reason, ids) in &self.unsupported {
            println!(
                "  unsupported ({reason}): {} valid case(s) not accepted: {ids:?}",
                ids.len()
            );
        }
        for id in &self.stricter {
            let why = STRICTER_THAN_WYCHEPROOF
                .iter()
                .find(|(c, _)| c == id)
                .map_or("", |(_, w)| *w);
            println!("  refused on purpose, Wycheproof says valid: #{id}: {why}");
        }
        for id in &self.contradictory {
            println!(
                "  contradictory vector #{id}: marked invalid, but the identical token is marked valid elsewhere"
            );
        }
        for failure in &self.failures {
            println!("  FAILURE {failure}");
        }
    }
}

#[test]
fn json_web_signature_vectors() {
    let file = "json_web_signature_test.json";
    let doc = load(file);
    let mut tally = Tally {
        valid_tokens: valid_tokens(&doc),
        ..Tally::default()
    };
    let mut count = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        // The verification key: the public JWK, or the secret for HMAC groups.
        let jwk = group
            .get("public")
            .or_else(|| group.get("private"))
            .and_then(Value::as_object)
            .unwrap();
        for test in group["tests"].as_array().unwrap() {
            tally.check(file, test, &[jwk]);
            count += 1;
        }
    }
    tally.report(file);
    assert_eq!(count, doc["numberOfTests"].as_u64().unwrap() as usize);
    assert!(
        tally.failures.is_empty(),
        "{} failures: {:#?}",
        tally.failures.len(),
        tally.failures
    );
    assert!(
        tally.valid_accepted >= 20,
        "too few valid cases ran: {}",
        tally.valid_accepted
    );
    assert!(
        tally.contradictory.len() <= 2,
        "unexpected contradictions: {:?}",
        tally.contradictory
    );
}

#[test]
fn json_web_key_vectors() {
    let file = "json_web_key_test.json";
    let doc = load(file);
    let mut tally = Tally {
        valid_tokens: valid_tokens(&doc),
        ..Tally::default()
    };
    for group in doc["testGroups"].as_array().unwrap() {
        let set = group
            .get("public")
            .or_else(|| group.get("private"))
            .unwrap();
        let jwks: Vec<&serde_json::Map<String, Value>> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_object().unwrap())
            .collect();
        for test in group["tests"].as_array().unwrap() {
            tally.check(file, test, &jwks);
        }
    }
    tally.report(file);
    assert!(
        tally.failures.is_empty(),
        "{} failures: {:#?}",
        tally.failures.len(),
        tally.failures
    );
}

/// The key-level refusals happen for the stated reason, not by accident of verification.
#[test]
fn json_web_key_refusals_name_their_reason() {
    use maos_identity::jose::JwkError;
    let doc = load("json_web_key_test.json");
    let mut checked = 0;
    for group in doc["testGroups"].as_array().unwrap() {
        let set = group
            .get("public")
            .or_else(|| group.get("private"))
            .unwrap();
        let jwks: Vec<&serde_json::Map<String, Value>> = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_object().unwrap())
            .collect();
        let options = KeySetOptions {
            allow_symmetric: true,
            skip_unusable: false,
        };
        let outcome = KeySet::from_jwks(&jwks, options).err();
        let comment = group["comment"].as_str().unwrap();
        let first_test = group["tests"][0]["comment"].as_str().unwrap();
        let expected = match (comment, first_test) {
            ("jws_mixedSymmetryKeyset", _) => Some(JwkError::MixedKeySet),
            ("jws_duplicate_kid", _) => Some(JwkError::DuplicateKid("kid-aes-sign".into())),
            ("jws_rsa_roca_key", _) => Some(JwkError::RocaVulnerable),
            ("keysize_too_small", _) => Some(JwkError::RsaKeySize(1024)),
            ("exponentOne", _) => Some(JwkError::RsaExponent),
            ("HS256", "key_too_short") => Some(JwkError::HmacKeyTooShort(31)),
            ("HS256", "empty_key") => Some(JwkError::HmacKeyTooShort(0)),
            ("invalid_use", _) => Some(JwkError::WrongUse("enc".into())),
            ("invalid_point", _) => Some(JwkError::InvalidPublicKey),
            ("wrong_curve", _) => Some(JwkError::UnsupportedCurve("P-384".into())),
            _ => continue,
        };
        assert_eq!(outcome, expected, "{comment} / {first_test}");
        checked += 1;
    }
    assert_eq!(checked, 10);
}
