//! Why a token was refused. One variant per class of refusal.

use std::fmt;

/// The part of a compact JWS a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    Header,
    Payload,
    Signature,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        })
    }
}

/// A token refusal. Messages never include the token itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    #[error("token is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("token is not a compact JWS of three dot-separated parts")]
    NotCompact,
    #[error("the {0} is not valid unpadded base64url")]
    Base64(Segment),
    #[error("the {segment} is not a JSON object: {reason}")]
    Json { segment: Segment, reason: String },
    #[error("the {segment} has the member `{name}` more than once")]
    DuplicateMember { segment: Segment, name: String },
    #[error("the header has no string `alg`")]
    MissingAlgorithm,
    #[error("`alg: none` is never accepted")]
    AlgNone,
    #[error("algorithm `{0}` is not supported")]
    UnsupportedAlgorithm(String),
    #[error("algorithm `{0}` is not allowed by this validator")]
    AlgorithmNotAllowed(String),
    #[error("symmetric algorithm `{alg}` refused for the asymmetric key `{kid}`")]
    SymmetricAlgorithmForAsymmetricKey { alg: String, kid: String },
    #[error("algorithm `{alg}` does not fit the key `{kid}`")]
    AlgorithmKeyMismatch { alg: String, kid: String },
    #[error("the header names its own key in `{0}`, which is never trusted")]
    EmbeddedKey(&'static str),
    #[error("critical header extensions are not understood: {0:?}")]
    UnknownCritical(Vec<String>),
    #[error("the header member `{0}` is malformed")]
    MalformedHeader(&'static str),
    #[error("the token type `{found}` is not the expected `{expected}`")]
    WrongType { expected: String, found: String },
    #[error("the header has no `kid` and the key set has more than one key")]
    MissingKeyId,
    #[error("no key with id `{0}`")]
    UnknownKey(String),
    #[error("ECDSA signature is DER-encoded; JWS needs the raw r||s form")]
    EcdsaDerSignature,
    #[error("ECDSA signature is {0} bytes; ES256 needs 64")]
    EcdsaSignatureLength(usize),
    #[error("ECDSA signature has r or s equal to zero or not below the group order")]
    EcdsaScalarOutOfRange,
    #[error("the signature does not verify")]
    BadSignature,
    #[error("the claim `{0}` is not a JSON number")]
    ClaimNotNumeric(&'static str),
    #[error("the claim `{0}` is missing")]
    MissingClaim(&'static str),
    #[error("the claim `{0}` has the wrong type")]
    ClaimType(&'static str),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token was issued in the future")]
    IssuedInFuture,
    #[error("the token is older than the allowed maximum age")]
    TooOld,
    #[error("the issuer `{0}` is not the expected one")]
    WrongIssuer(String),
    #[error("the audience does not include `{0}`")]
    WrongAudience(String),
    #[error("the token has been revoked")]
    Revoked,
}

impl TokenError {
    /// A stable, lower-case name of the refusal class, for security events, audit records and
    /// metrics labels. Never includes input.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::NotCompact => "not_compact",
            Self::Base64(_) => "base64",
            Self::Json { .. } => "json",
            Self::DuplicateMember { .. } => "duplicate_member",
            Self::MissingAlgorithm => "missing_alg",
            Self::AlgNone => "alg_none",
            Self::UnsupportedAlgorithm(_) => "unsupported_alg",
            Self::AlgorithmNotAllowed(_) => "alg_not_allowed",
            Self::SymmetricAlgorithmForAsymmetricKey { .. } => "alg_confusion",
            Self::AlgorithmKeyMismatch { .. } => "alg_key_mismatch",
            Self::EmbeddedKey(_) => "embedded_key",
            Self::UnknownCritical(_) => "unknown_crit",
            Self::MalformedHeader(_) => "malformed_header",
            Self::WrongType { .. } => "wrong_type",
            Self::MissingKeyId => "missing_kid",
            Self::UnknownKey(_) => "unknown_kid",
            Self::EcdsaDerSignature => "ecdsa_der",
            Self::EcdsaSignatureLength(_) => "ecdsa_length",
            Self::EcdsaScalarOutOfRange => "ecdsa_scalar_range",
            Self::BadSignature => "bad_signature",
            Self::ClaimNotNumeric(_) => "claim_not_numeric",
            Self::MissingClaim(_) => "missing_claim",
            Self::ClaimType(_) => "claim_type",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "issued_in_future",
            Self::TooOld => "too_old",
            Self::WrongIssuer(_) => "wrong_issuer",
            Self::WrongAudience(_) => "wrong_audience",
            Self::Revoked => "revoked",
        }
    }
}
