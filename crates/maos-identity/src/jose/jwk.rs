//! JSON Web Keys (RFC 7517) for verification, and key sets.
//!
//! A key set is what a token is checked against. The key a token's `kid` names decides which
//! algorithms fit; the token's own `alg` never chooses the kind of key.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ED25519, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256,
    RSA_PSS_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use aws_lc_rs::{constant_time, hmac};
use serde_json::{Map, Value, json};

use super::{Algorithm, TokenError, b64_decode, b64_encode};
use crate::secret::SecretBytes;

/// The smallest RSA modulus accepted, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// The largest RSA modulus accepted, in bits (aws-lc's verification limit).
pub const MAX_RSA_BITS: usize = 8192;
/// The smallest HMAC-SHA-256 key accepted, in bytes (the hash output size, RFC 7518 3.2).
pub const MIN_HS256_KEY_LEN: usize = 32;

/// The order n of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

/// Why a JWK or a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwkError {
    #[error("the key set is not valid JSON: {0}")]
    Json(String),
    #[error("the key set has no `keys` array")]
    NotAKeySet,
    #[error("a JWK is not a JSON object")]
    NotAnObject,
    #[error("the JWK member `{0}` is missing or not a string")]
    Missing(&'static str),
    #[error("the JWK member `{0}` is not valid base64url")]
    Base64(&'static str),
    #[error("key type `{0}` is not supported")]
    UnsupportedKeyType(String),
    #[error("curve `{0}` is not supported")]
    UnsupportedCurve(String),
    #[error("key algorithm `{0}` is not supported")]
    UnsupportedAlgorithm(String),
    #[error("key algorithm `{alg}` does not fit key type `{kty}`")]
    AlgorithmMismatch { alg: String, kty: String },
    #[error("key use `{0}` is not `sig`")]
    WrongUse(String),
    #[error("key operations do not include `verify`")]
    WrongKeyOps,
    #[error("the public key is not a valid point or encoding")]
    InvalidPublicKey,
    #[error("RSA modulus of {0} bits is outside 2048..=8192")]
    RsaKeySize(usize),
    #[error("RSA public exponent is not an odd number of at least 3")]
    RsaExponent,
    #[error("RSA modulus has the ROCA (CVE-2017-15361) fingerprint")]
    RocaVulnerable,
    #[error("HMAC key of {0} bytes is shorter than 32")]
    HmacKeyTooShort(usize),
    #[error("a verification key must not carry private material")]
    PrivateMaterial,
    #[error("symmetric keys are not allowed in this key set")]
    SymmetricNotAllowed,
    #[error("the key id `{0}` appears more than once")]
    DuplicateKid(String),
    #[error("the key set mixes symmetric and asymmetric keys")]
    MixedKeySet,
    #[error("the key set has no usable key")]
    Empty,
}

/// Public key material, or a secret for the one symmetric algorithm.
#[derive(Clone)]
pub enum KeyMaterial {
    Ed25519 { public: [u8; 32] },
    P256 { x: [u8; 32], y: [u8; 32] },
    Rsa { n: Vec<u8>, e: Vec<u8> },
    Hmac(SecretBytes),
}

impl std::fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ed25519 { .. } => f.write_str("Ed25519"),
            Self::P256 { .. } => f.write_str("P-256"),
            Self::Rsa { n, .. } => write!(f, "RSA-{}", bit_len(n)),
            Self::Hmac(_) => f.write_str("HMAC [redacted]"),
        }
    }
}

impl KeyMaterial {
    pub fn is_symmetric(&self) -> bool {
        matches!(self, Self::Hmac(_))
    }
}

/// A key that verifies tokens, named by its key id.
#[derive(Debug, Clone)]
pub struct VerificationKey {
    pub kid: String,
    pub material: KeyMaterial,
    /// The JWK's `alg` member: when present, the only algorithm this key verifies.
    pub alg: Option<Algorithm>,
}

/// Options for reading keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct KeySetOptions {
    /// Accept `oct` keys (HS256). Off for everything MAOS signs and for federation.
    pub allow_symmetric: bool,
    /// Leave out keys MAOS cannot use (other algorithms, curves, encryption keys) instead of
    /// refusing the whole set. Useful for external issuers' JWKS documents.
    pub skip_unusable: bool,
}

/// A JWK object, kept as its JSON members.
pub type Jwk = Map<String, Value>;

impl VerificationKey {
    pub fn ed25519(kid: impl Into<String>, public: [u8; 32]) -> Result<Self, JwkError> {
        ParsedPublicKey::new(&ED25519, public).map_err(|_| JwkError::InvalidPublicKey)?;
        Ok(Self {
            kid: kid.into(),
            material: KeyMaterial::Ed25519 { public },
            alg: None,
        })
    }

    pub fn p256(kid: impl Into<String>, x: [u8; 32], y: [u8; 32]) -> Result<Self, JwkError> {
        ParsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, uncompressed_point(&x, &y))
            .map_err(|_| JwkError::InvalidPublicKey)?;
        Ok(Self {
            kid: kid.into(),
            material: KeyMaterial::P256 { x, y },
            alg: None,
        })
    }

    pub fn rsa(kid: impl Into<String>, n: &[u8], e: &[u8]) -> Result<Self, JwkError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        let bits = bit_len(n);
        if !(MIN_RSA_BITS..=MAX_RSA_BITS).contains(&bits) {
            return Err(JwkError::RsaKeySize(bits));
        }
        let e_is_odd = e.last().is_some_and(|b| b & 1 == 1);
        if !e_is_odd || (e.len() == 1 && e.first().is_some_and(|b| *b < 3)) {
            return Err(JwkError::RsaExponent);
        }
        if has_roca_fingerprint(n) {
            return Err(JwkError::RocaVulnerable);
        }
        RsaPublicKeyComponents { n, e }
            .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            .map_err(|_| JwkError::InvalidPublicKey)?;
        Ok(Self {
            kid: kid.into(),
            material: KeyMaterial::Rsa {
                n: n.to_vec(),
                e: e.to_vec(),
            },
            alg: None,
        })
    }

    pub fn hmac(kid: impl Into<String>, secret: SecretBytes) -> Result<Self, JwkError> {
        if secret.len() < MIN_HS256_KEY_LEN {
            return Err(JwkError::HmacKeyTooShort(secret.len()));
        }
        Ok(Self {
            kid: kid.into(),
            material: KeyMaterial::Hmac(secret),
            alg: Some(Algorithm::Hs256),
        })
    }

    /// Reads one JWK. `kid` is required unless `default_kid` is given.
    pub fn from_jwk(jwk: &Jwk, options: KeySetOptions) -> Result<Self, JwkError> {
        if let Some(usage) = jwk.get("use") {
            match usage.as_str() {
                Some("sig") => {}
                Some(other) => return Err(JwkError::WrongUse(other.to_owned())),
                None => return Err(JwkError::Missing("use")),
            }
        }
        if let Some(ops) = jwk.get("key_ops") {
            let has_verify = ops
                .as_array()
                .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("verify")));
            if !has_verify {
                return Err(JwkError::WrongKeyOps);
            }
        }

        let kty = string_member(jwk, "kty")?;
        let kid = match jwk.get("kid") {
            None => String::new(),
            Some(Value::String(kid)) => kid.clone(),
            Some(_) => return Err(JwkError::Missing("kid")),
        };
        let alg = match jwk.get("alg") {
            None => None,
            Some(Value::String(name)) => Some(
                Algorithm::from_name(name)
                    .ok_or_else(|| JwkError::UnsupportedAlgorithm(name.clone()))?,
            ),
            Some(_) => return Err(JwkError::Missing("alg")),
        };

        let mut key = match kty {
            "OKP" => {
                refuse_private(jwk, &["d"])?;
                let crv = string_member(jwk, "crv")?;
                if crv != "Ed25519" {
                    return Err(JwkError::UnsupportedCurve(crv.to_owned()));
                }
                let x = fixed_member::<32>(jwk, "x")?;
                Self::ed25519(kid, x)?
            }
            "EC" => {
                refuse_private(jwk, &["d"])?;
                let crv = string_member(jwk, "crv")?;
                if crv != "P-256" {
                    return Err(JwkError::UnsupportedCurve(crv.to_owned()));
                }
                let x = fixed_member::<32>(jwk, "x")?;
                let y = fixed_member::<32>(jwk, "y")?;
                Self::p256(kid, x, y)?
            }
            "RSA" => {
                refuse_private(jwk, &["d", "p", "q", "dp", "dq", "qi", "oth"])?;
                let n = bytes_member(jwk, "n")?;
                let e = bytes_member(jwk, "e")?;
                Self::rsa(kid, &n, &e)?
            }
            "oct" => {
                if !options.allow_symmetric {
                    return Err(JwkError::SymmetricNotAllowed);
                }
                let k = bytes_member(jwk, "k")?;
                Self::hmac(kid, SecretBytes::new(k))?
            }
            other => return Err(JwkError::UnsupportedKeyType(other.to_owned())),
        };

        if let Some(alg) = alg {
            if !key.material_fits(alg) {
                return Err(JwkError::AlgorithmMismatch {
                    alg: alg.as_str().to_owned(),
                    kty: kty.to_owned(),
                });
            }
            key.alg = Some(alg);
        }
        Ok(key)
    }

    /// Whether the key's kind admits the algorithm, ignoring the JWK's `alg` member.
    fn material_fits(&self, alg: Algorithm) -> bool {
        match (&self.material, alg) {
            (KeyMaterial::Ed25519 { .. }, Algorithm::EdDsa)
            | (KeyMaterial::P256 { .. }, Algorithm::Es256)
            | (KeyMaterial::Rsa { .. }, Algorithm::Rs256 | Algorithm::Ps256)
            | (KeyMaterial::Hmac(_), Algorithm::Hs256) => true,
            (
                KeyMaterial::Ed25519 { .. }
                | KeyMaterial::P256 { .. }
                | KeyMaterial::Rsa { .. }
                | KeyMaterial::Hmac(_),
                _,
            ) => false,
        }
    }

    /// Whether this key verifies `alg`: the kind of key decides, and a JWK `alg` narrows it.
    pub fn fits(&self, alg: Algorithm) -> bool {
        self.material_fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// Verifies `signature` over `message` with `alg`, which the caller has checked fits.
    pub(crate) fn verify(
        &self,
        alg: Algorithm,
        message: &[u8],
        signature: &[u8],
    ) -> Result<(), TokenError> {
        let verified = match (&self.material, alg) {
            (KeyMaterial::Hmac(secret), Algorithm::Hs256) => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret.expose());
                hmac::verify(&key, message, signature)
            }
            (KeyMaterial::Ed25519 { public }, Algorithm::EdDsa) => {
                UnparsedPublicKey::new(&ED25519, public).verify(message, signature)
            }
            (KeyMaterial::P256 { x, y }, Algorithm::Es256) => {
                check_ecdsa_p256_signature(signature)?;
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, uncompressed_point(x, y))
                    .verify(message, signature)
            }
            (KeyMaterial::Rsa { n, e }, Algorithm::Rs256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature),
            (KeyMaterial::Rsa { n, e }, Algorithm::Ps256) => RsaPublicKeyComponents { n, e }
                .verify(&RSA_PSS_2048_8192_SHA256, message, signature),
            _ => {
                return Err(TokenError::AlgorithmKeyMismatch {
                    alg: alg.as_str().to_owned(),
                    kid: self.kid.clone(),
                });
            }
        };
        verified.map_err(|_| TokenError::BadSignature)
    }

    /// The public JWK for a JWKS document. Symmetric keys have none.
    pub fn to_public_jwk(&self) -> Option<Value> {
        let mut jwk = match &self.material {
            KeyMaterial::Ed25519 { public } => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64_encode(public)})
            }
            KeyMaterial::P256 { x, y } => {
                json!({"kty": "EC", "crv": "P-256", "x": b64_encode(x), "y": b64_encode(y)})
            }
            KeyMaterial::Rsa { n, e } => {
                json!({"kty": "RSA", "n": b64_encode(n), "e": b64_encode(e)})
            }
            KeyMaterial::Hmac(_) => return None,
        };
        if let Some(object) = jwk.as_object_mut() {
            object.insert("kid".into(), Value::String(self.kid.clone()));
            object.insert("use".into(), Value::String("sig".into()));
            let alg = self.alg.or(match self.material {
                KeyMaterial::Ed25519 { .. } => Some(Algorithm::EdDsa),
                KeyMaterial::P256 { .. } => Some(Algorithm::Es256),
                KeyMaterial::Rsa { .. } | KeyMaterial::Hmac(_) => None,
            });
            if let Some(alg) = alg {
                object.insert("alg".into(), Value::String(alg.as_str().into()));
            }
        }
        Some(jwk)
    }
}

/// Keys a validator trusts, with unique key ids and no mixing of symmetric and asymmetric keys.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    keys: Vec<VerificationKey>,
    skipped: Vec<(String, JwkError)>,
}

impl KeySet {
    pub fn new(keys: Vec<VerificationKey>) -> Result<Self, JwkError> {
        let mut seen = std::collections::BTreeSet::new();
        for key in &keys {
            if !seen.insert(key.kid.as_str()) {
                return Err(JwkError::DuplicateKid(key.kid.clone()));
            }
        }
        let symmetric = keys.iter().filter(|k| k.material.is_symmetric()).count();
        if symmetric != 0 && symmetric != keys.len() {
            return Err(JwkError::MixedKeySet);
        }
        Ok(Self {
            keys,
            skipped: Vec::new(),
        })
    }

    /// Reads a JWKS document (`{"keys": [...]}`).
    pub fn from_jwks_json(text: &str, options: KeySetOptions) -> Result<Self, JwkError> {
        let document: Value =
            serde_json::from_str(text).map_err(|e| JwkError::Json(e.to_string()))?;
        let entries = document
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwkError::NotAKeySet)?;
        let jwks: Vec<&Jwk> = entries
            .iter()
            .map(|entry| entry.as_object().ok_or(JwkError::NotAnObject))
            .collect::<Result<_, _>>()?;
        Self::from_jwks(&jwks, options)
    }

    /// Reads a list of JWKs. Ambiguity (a repeated `kid`, symmetric next to asymmetric keys)
    /// refuses the whole set, even for keys that would be skipped.
    pub fn from_jwks(jwks: &[&Jwk], options: KeySetOptions) -> Result<Self, JwkError> {
        let mut seen = std::collections::BTreeSet::new();
        for jwk in jwks {
            if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                && !seen.insert(kid)
            {
                return Err(JwkError::DuplicateKid(kid.to_owned()));
            }
        }
        let octets = jwks
            .iter()
            .filter(|j| j.get("kty").and_then(Value::as_str) == Some("oct"));
        let octets = octets.count();
        if octets != 0 && octets != jwks.len() {
            return Err(JwkError::MixedKeySet);
        }

        let mut keys = Vec::new();
        let mut skipped = Vec::new();
        for jwk in jwks {
            match VerificationKey::from_jwk(jwk, options) {
                Ok(key) => keys.push(key),
                Err(e) if options.skip_unusable => {
                    let kid = jwk.get("kid").and_then(Value::as_str).unwrap_or_default();
                    skipped.push((kid.to_owned(), e));
                }
                Err(e) => return Err(e),
            }
        }
        if keys.is_empty() {
            return Err(skipped
                .into_iter()
                .next()
                .map_or(JwkError::Empty, |(_, e)| e));
        }
        let mut set = Self::new(keys)?;
        set.skipped = skipped;
        Ok(set)
    }

    /// The key a token names. Without a `kid`, only a set of exactly one key answers.
    pub fn find(&self, kid: Option<&str>) -> Result<&VerificationKey, TokenError> {
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .find(|key| key.kid == kid)
                .ok_or_else(|| TokenError::UnknownKey(kid.to_owned())),
            None => match self.keys.as_slice() {
                [only] => Ok(only),
                _ => Err(TokenError::MissingKeyId),
            },
        }
    }

    pub fn keys(&self) -> &[VerificationKey] {
        &self.keys
    }

    /// Keys left out because MAOS cannot use them, with the reason.
    pub fn skipped(&self) -> &[(String, JwkError)] {
        &self.skipped
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The public JWKS document for these keys.
    pub fn to_jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .filter_map(VerificationKey::to_public_jwk)
            .collect();
        json!({ "keys": keys })
    }
}

/// Refuses ES256 signatures that are not raw 64-byte r||s with 0 < r, s < n.
fn check_ecdsa_p256_signature(signature: &[u8]) -> Result<(), TokenError> {
    if signature.len() != 64 {
        // A DER ECDSA-Sig-Value is a SEQUENCE (0x30) of 8 to 72 bytes for P-256.
        let looks_der = signature.first() == Some(&0x30) && (8..=72).contains(&signature.len());
        return Err(if looks_der {
            TokenError::EcdsaDerSignature
        } else {
            TokenError::EcdsaSignatureLength(signature.len())
        });
    }
    let (r, s) = signature.split_at(32);
    for scalar in [r, s] {
        let is_zero = scalar.iter().all(|b| *b == 0);
        // Big-endian arrays of equal length compare like the numbers they encode.
        let below_order = scalar < P256_ORDER.as_slice();
        if is_zero || !below_order {
            return Err(TokenError::EcdsaScalarOutOfRange);
        }
    }
    Ok(())
}

fn uncompressed_point(x: &[u8; 32], y: &[u8; 32]) -> [u8; 65] {
    let mut point = [0u8; 65];
    let (tag, rest) = point.split_at_mut(1);
    let (px, py) = rest.split_at_mut(32);
    tag.copy_from_slice(&[4]);
    px.copy_from_slice(x);
    py.copy_from_slice(y);
    point
}

fn string_member<'a>(jwk: &'a Jwk, name: &'static str) -> Result<&'a str, JwkError> {
    jwk.get(name)
        .and_then(Value::as_str)
        .ok_or(JwkError::Missing(name))
}

fn bytes_member(jwk: &Jwk, name: &'static str) -> Result<Vec<u8>, JwkError> {
    b64_decode(string_member(jwk, name)?).ok_or(JwkError::Base64(name))
}

fn fixed_member<const N: usize>(jwk: &Jwk, name: &'static str) -> Result<[u8; N], JwkError> {
    let bytes = bytes_member(jwk, name)?;
    bytes.try_into().map_err(|_| JwkError::InvalidPublicKey)
}

fn refuse_private(jwk: &Jwk, members: &[&str]) -> Result<(), JwkError> {
    if members.iter().any(|m| jwk.contains_key(*m)) {
        return Err(JwkError::PrivateMaterial);
    }
    Ok(())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

fn bit_len(big_endian: &[u8]) -> usize {
    let trimmed = strip_leading_zeros(big_endian);
    match trimmed.first() {
        None => 0,
        Some(top) => trimmed.len() * 8 - top.leading_zeros() as usize,
    }
}

/// The ROCA fingerprint (CVE-2017-15361): Infineon's generator made moduli that are powers of
/// 65537 modulo every small prime. A random modulus passes all these residue tests with
/// negligible probability.
fn has_roca_fingerprint(n: &[u8]) -> bool {
    const PRIMES: [u32; 38] = [
        3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89,
        97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167,
    ];
    PRIMES.iter().all(|&p| {
        let residue = n
            .iter()
            .fold(0u32, |acc, b| (acc * 256 + u32::from(*b)) % p);
        let generator = 65537 % p;
        let mut power = 1u32;
        loop {
            if power == residue {
                return true;
            }
            power = power * generator % p;
            if power == 1 {
                return false;
            }
        }
    })
}

/// Constant-time equality for secrets of possibly different lengths.
pub(crate) fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdsa_signature_checks() {
        let mut good = [0x11u8; 64];
        assert!(check_ecdsa_p256_signature(&good).is_ok());
        good[..32].copy_from_slice(&P256_ORDER);
        assert_eq!(
            check_ecdsa_p256_signature(&good),
            Err(TokenError::EcdsaScalarOutOfRange)
        );
        let zero_s = [[0x11u8; 32], [0u8; 32]].concat();
        assert_eq!(
            check_ecdsa_p256_signature(&zero_s),
            Err(TokenError::EcdsaScalarOutOfRange)
        );
        assert_eq!(
            check_ecdsa_p256_signature(&[0x30; 70]),
            Err(TokenError::EcdsaDerSignature)
        );
        assert_eq!(
            check_ecdsa_p256_signature(&[1; 65]),
            Err(TokenError::EcdsaSignatureLength(65))
        );
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_len(&[0, 0, 1]), 1);
        assert_eq!(bit_len(&[0x80, 0]), 16);
        assert_eq!(bit_len(&[]), 0);
    }

    #[test]
    fn short_hmac_keys_are_refused() {
        let err = VerificationKey::hmac("k", SecretBytes::new(vec![1; 31])).unwrap_err();
        assert_eq!(err, JwkError::HmacKeyTooShort(31));
    }
}
