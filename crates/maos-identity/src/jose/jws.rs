//! Compact JWS verification (RFC 7515), strict.

use serde_json::{Map, Value};

use super::{Algorithm, KeySet, ObjectError, Segment, TokenError, b64_decode, parse_unique_object};

/// Header members that name or carry a key. MAOS never fetches or trusts them, and refuses
/// tokens that carry them so that no later component can be tempted to.
pub const KEY_REFERENCE_MEMBERS: [&str; 4] = ["jwk", "jku", "x5u", "x5c"];

/// The default limit on a token's length, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;

/// What a JWS must satisfy besides a good signature.
#[derive(Debug, Clone)]
pub struct JwsPolicy {
    pub max_token_len: usize,
    /// Algorithms this validator accepts at all; the key still has to fit.
    pub allowed_algorithms: Vec<Algorithm>,
    /// The `typ` the token must carry (compared without case and without an `application/`
    /// prefix), or `None` to accept any or none.
    pub expected_type: Option<String>,
}

impl Default for JwsPolicy {
    fn default() -> Self {
        Self {
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            allowed_algorithms: vec![Algorithm::EdDsa, Algorithm::Es256],
            expected_type: None,
        }
    }
}

/// The protected header of a verified token.
#[derive(Debug, Clone, PartialEq)]
pub struct JwsHeader {
    pub alg: Algorithm,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub members: Map<String, Value>,
}

/// A token whose signature verified with a trusted key.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedJws {
    pub header: JwsHeader,
    /// The id of the key that verified the signature.
    pub kid: String,
    pub payload: Vec<u8>,
}

/// Verifies a compact JWS against a key set. Nothing about the key comes from the token
/// except the `kid` used to look it up.
pub fn verify_compact(
    token: &str,
    keys: &KeySet,
    policy: &JwsPolicy,
) -> Result<VerifiedJws, TokenError> {
    let (header_b64, payload_b64, signature_b64) = split_compact(token, policy.max_token_len)?;

    let header = parse_header(header_b64)?;

    // The key named by `kid` decides what may verify; the token's `alg` has to fit it.
    let key = keys.find(header.kid.as_deref())?;
    if header.alg.is_symmetric() && !key.material.is_symmetric() {
        return Err(TokenError::SymmetricAlgorithmForAsymmetricKey {
            alg: header.alg.as_str().to_owned(),
            kid: key.kid.clone(),
        });
    }
    if !key.fits(header.alg) {
        return Err(TokenError::AlgorithmKeyMismatch {
            alg: header.alg.as_str().to_owned(),
            kid: key.kid.clone(),
        });
    }
    if !policy.allowed_algorithms.contains(&header.alg) {
        return Err(TokenError::AlgorithmNotAllowed(
            header.alg.as_str().to_owned(),
        ));
    }

    if let Some(expected) = &policy.expected_type {
        let found = header.typ.clone().unwrap_or_default();
        if !media_type_matches(&found, expected) {
            return Err(TokenError::WrongType {
                expected: expected.clone(),
                found,
            });
        }
    }

    let payload = b64_decode(payload_b64).ok_or(TokenError::Base64(Segment::Payload))?;
    let signature = b64_decode(signature_b64).ok_or(TokenError::Base64(Segment::Signature))?;

    // The signing input is the ASCII text as received, never a re-encoding.
    let signing_input_len = header_b64.len() + 1 + payload_b64.len();
    let signing_input = token
        .get(..signing_input_len)
        .ok_or(TokenError::NotCompact)?;
    key.verify(header.alg, signing_input.as_bytes(), &signature)?;

    Ok(VerifiedJws {
        kid: key.kid.clone(),
        header,
        payload,
    })
}

/// Reads the protected header without verifying anything, for routing a token to the right
/// validator (for example by `iss` in the payload or by `kid`). Never trust what it returns.
pub fn peek_header(token: &str, max_token_len: usize) -> Result<JwsHeader, TokenError> {
    let (header_b64, _, _) = split_compact(token, max_token_len)?;
    parse_header(header_b64)
}

fn split_compact(token: &str, max_len: usize) -> Result<(&str, &str, &str), TokenError> {
    if token.len() > max_len {
        return Err(TokenError::TooLarge {
            len: token.len(),
            max: max_len,
        });
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(header), Some(payload), Some(signature), None) => Ok((header, payload, signature)),
        _ => Err(TokenError::NotCompact),
    }
}

fn parse_header(header_b64: &str) -> Result<JwsHeader, TokenError> {
    let bytes = b64_decode(header_b64).ok_or(TokenError::Base64(Segment::Header))?;
    let members = parse_unique_object(&bytes).map_err(|e| match e {
        ObjectError::Syntax(reason) => TokenError::Json {
            segment: Segment::Header,
            reason,
        },
        ObjectError::Duplicate(name) => TokenError::DuplicateMember {
            segment: Segment::Header,
            name,
        },
    })?;

    let alg_name = members
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(TokenError::MissingAlgorithm)?;
    if alg_name.eq_ignore_ascii_case("none") {
        return Err(TokenError::AlgNone);
    }
    let alg = Algorithm::from_name(alg_name)
        .ok_or_else(|| TokenError::UnsupportedAlgorithm(alg_name.to_owned()))?;

    if let Some(name) = KEY_REFERENCE_MEMBERS
        .iter()
        .find(|m| members.contains_key(**m))
    {
        return Err(TokenError::EmbeddedKey(name));
    }

    // MAOS understands no JWS extensions, so any `crit` list names something unknown.
    if let Some(crit) = members.get("crit") {
        let names: Option<Vec<String>> = crit
            .as_array()
            .map(|list| list.iter().map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or(None);
        return Err(match names {
            Some(names) if !names.is_empty() => TokenError::UnknownCritical(names),
            _ => TokenError::MalformedHeader("crit"),
        });
    }
    // An unencoded payload (RFC 7797) changes the signing input; it is never accepted.
    if members.contains_key("b64") {
        return Err(TokenError::MalformedHeader("b64"));
    }

    let kid = optional_string(&members, "kid")?;
    let typ = optional_string(&members, "typ")?;
    Ok(JwsHeader {
        alg,
        kid,
        typ,
        members,
    })
}

fn optional_string(
    members: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, TokenError> {
    match members.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(TokenError::MalformedHeader(name)),
    }
}

/// `typ` comparison per RFC 7515 4.1.9: case-insensitive, `application/` may be left out.
fn media_type_matches(found: &str, expected: &str) -> bool {
    let strip = |t: &str| {
        let lower = t.to_ascii_lowercase();
        lower
            .strip_prefix("application/")
            .map(str::to_owned)
            .unwrap_or(lower)
    };
    strip(found) == strip(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types() {
        assert!(media_type_matches("at+jwt", "at+jwt"));
        assert!(media_type_matches("application/AT+JWT", "at+jwt"));
        assert!(!media_type_matches("JWT", "at+jwt"));
    }

    #[test]
    fn structure_is_checked_first() {
        let keys = KeySet::default();
        let policy = JwsPolicy::default();
        assert_eq!(
            verify_compact("a.b", &keys, &policy),
            Err(TokenError::NotCompact)
        );
        assert_eq!(
            verify_compact("a.b.c.d", &keys, &policy),
            Err(TokenError::NotCompact)
        );
        let long = "a".repeat(DEFAULT_MAX_TOKEN_LEN + 1);
        assert!(matches!(
            verify_compact(&long, &keys, &policy),
            Err(TokenError::TooLarge { .. })
        ));
    }
}
