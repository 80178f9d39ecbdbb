//! JOSE building blocks: strict base64url, JSON objects without duplicate members, algorithms,
//! JWKs and compact JWS verification.
//!
//! This is MAOS's own validation logic on top of aws-lc primitives. Every refusal is a
//! [`TokenError`] variant of its own, so that callers and tests can tell the classes apart.

pub mod error;
pub mod jwk;
pub mod jws;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

pub use error::{Segment, TokenError};
pub use jwk::{Jwk, JwkError, KeyMaterial, KeySet, KeySetOptions, VerificationKey};
pub use jws::{JwsHeader, JwsPolicy, VerifiedJws, verify_compact};

/// The JWS algorithms MAOS knows. Anything else is refused as unsupported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Algorithm {
    #[serde(rename = "EdDSA")]
    EdDsa,
    #[serde(rename = "ES256")]
    Es256,
    #[serde(rename = "RS256")]
    Rs256,
    #[serde(rename = "PS256")]
    Ps256,
    /// HMAC-SHA-256: only ever accepted with a key configured as symmetric.
    #[serde(rename = "HS256")]
    Hs256,
}

impl Algorithm {
    /// The `alg` header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Hs256 => "HS256",
        }
    }

    /// Exact, case-sensitive match of an `alg` value (RFC 7515 names are case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            "PS256" => Some(Self::Ps256),
            "HS256" => Some(Self::Hs256),
            _ => None,
        }
    }

    pub fn is_symmetric(self) -> bool {
        matches!(self, Self::Hs256)
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Encodes bytes as unpadded base64url.
pub fn b64_encode(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes unpadded base64url strictly: padding, characters outside the URL-safe alphabet and
/// non-zero trailing bits are all errors.
pub fn b64_decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text).ok()
}

/// Parses a JSON object and refuses duplicate member names at the top level.
///
/// RFC 7515 section 4 asks parsers to either reject duplicates or use the last one; taking the
/// last one lets two parsers disagree about the same header, so MAOS rejects.
pub(crate) fn parse_unique_object(bytes: &[u8]) -> Result<Map<String, Value>, ObjectError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let object = match de.deserialize_map(UniqueObjectVisitor) {
        Ok(object) => object,
        Err(e) => {
            let text = e.to_string();
            return Err(match text.strip_prefix(DUPLICATE_MARKER) {
                Some(rest) => {
                    ObjectError::Duplicate(rest.split(" at line").next().unwrap_or(rest).to_owned())
                }
                None => ObjectError::Syntax(text),
            });
        }
    };
    de.end().map_err(|e| ObjectError::Syntax(e.to_string()))?;
    Ok(object)
}

const DUPLICATE_MARKER: &str = "duplicate member: ";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ObjectError {
    Syntax(String),
    Duplicate(String),
}

struct UniqueObjectVisitor;

impl<'de> Visitor<'de> for UniqueObjectVisitor {
    type Value = Map<String, Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(format_args!("{DUPLICATE_MARKER}{key}")));
            }
            let value: Value = access.next_value()?;
            map.insert(key, value);
        }
        Ok(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64_decode("Zm9v").unwrap(), b"foo");
        assert!(b64_decode("Zm9vYg==").is_none(), "padding refused");
        assert!(b64_decode("Zm9v+/").is_none(), "standard alphabet refused");
        assert!(b64_decode("Zm 9v").is_none(), "spaces refused");
        assert!(b64_decode("AB").is_none(), "non-zero trailing bits refused");
        assert_eq!(b64_decode("AA").unwrap(), vec![0]);
    }

    #[test]
    fn duplicate_members_are_refused() {
        let err = parse_unique_object(br#"{"alg":"ES256","alg":"none"}"#).unwrap_err();
        assert_eq!(err, ObjectError::Duplicate("alg".into()));
        assert!(parse_unique_object(br#"{"a":1,"b":{"a":2}}"#).is_ok());
        assert!(matches!(
            parse_unique_object(b"[1]"),
            Err(ObjectError::Syntax(_))
        ));
        assert!(matches!(
            parse_unique_object(br#"{"a":1} x"#),
            Err(ObjectError::Syntax(_))
        ));
    }

    #[test]
    fn algorithm_names_are_case_sensitive() {
        assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::Es256));
        assert_eq!(Algorithm::from_name("es256"), None);
        assert_eq!(Algorithm::from_name("none"), None);
    }
}
