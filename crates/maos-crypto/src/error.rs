//! The errors of the crate. Messages are lowercase and quote the offending input; none of
//! them carries key material or plaintext.

use crate::keyring::{KeyType, KeyUsage};

/// Everything that can go wrong in the primitive layer, the key ring and the KEK providers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("key `{0}` not found")]
    KeyNotFound(String),

    #[error("key `{0}` already exists")]
    KeyExists(String),

    #[error("invalid key name `{0}`: use 1 to 128 characters from a-z, A-Z, 0-9, `-`, `_`, `.`")]
    InvalidKeyName(String),

    #[error("key `{name}` does not allow `{usage}`")]
    UsageNotAllowed { name: String, usage: KeyUsage },

    #[error("usage `{usage}` is not possible with key type `{key_type}`")]
    UsageNotSupported { key_type: KeyType, usage: KeyUsage },

    #[error("an rsa key is either for encryption or for signatures, not both")]
    ConflictingUsages,

    #[error("a key needs at least one usage")]
    NoUsages,

    #[error("key `{0}` is disabled")]
    KeyDisabled(String),

    #[error("key `{name}` is scheduled for deletion at {delete_at} (unix seconds)")]
    KeyPendingDeletion { name: String, delete_at: u64 },

    #[error("key `{0}` is not scheduled for deletion")]
    KeyNotPendingDeletion(String),

    #[error("key `{0}` has been destroyed")]
    KeyDestroyed(String),

    #[error("key `{0}` has been revoked")]
    KeyRevoked(String),

    #[error("key `{name}` has no version {version}")]
    VersionNotFound { name: String, version: u32 },

    #[error("version {version} of key `{name}` has been revoked")]
    VersionRevoked { name: String, version: u32 },

    #[error("version {version} of key `{name}` is below its minimum decryption version {minimum}")]
    VersionBelowMinimum {
        name: String,
        version: u32,
        minimum: u32,
    },

    #[error("version {version} is the latest of key `{name}`: rotate before revoking it")]
    CannotRevokeLatestVersion { name: String, version: u32 },

    #[error("minimum decryption version {requested} of key `{name}` is outside 1..={latest}")]
    InvalidMinDecryptionVersion {
        name: String,
        requested: u32,
        latest: u32,
    },

    #[error("deletion window of {days} days is outside 7..=30")]
    InvalidDeletionWindow { days: u32 },

    #[error("rotation period of {seconds} seconds is shorter than one hour")]
    InvalidRotationPeriod { seconds: u64 },

    #[error("key `{0}` is not exportable")]
    NotExportable(String),

    #[error("malformed ciphertext: {0}")]
    MalformedCiphertext(&'static str),

    #[error("decryption failed")]
    DecryptionFailed,

    #[error("{what} of {len} bytes is not allowed: {expected}")]
    InvalidLength {
        what: &'static str,
        len: usize,
        expected: &'static str,
    },

    #[error("unsupported nonce length {0} (only 12-byte nonces)")]
    UnsupportedNonceLength(usize),

    #[error("unsupported tag length {0} (only 16-byte tags)")]
    UnsupportedTagLength(usize),

    #[error("invalid key material")]
    InvalidKeyMaterial,

    #[error("invalid public key")]
    InvalidPublicKey,

    #[error("key type `{0}` is not supported here")]
    UnsupportedKeyType(String),

    #[error("unknown key usage `{0}`")]
    UnknownUsage(String),

    #[error("the random number generator failed")]
    Random,

    #[error("cryptographic operation failed")]
    OperationFailed,

    #[error("stored record of key `{name}` is inconsistent: {reason}")]
    CorruptRecord { name: String, reason: &'static str },

    #[error("key encryption key: {0}")]
    Kek(#[from] KekError),
}

/// Failures of a [`crate::KekProvider`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KekError {
    #[error("kek file `{path}`: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },

    #[error(
        "kek file `{path}` has mode {mode:o}; group and others must have no access (chmod 600)"
    )]
    InsecurePermissions { path: String, mode: u32 },

    #[error("kek file `{path}` must hold exactly 32 bytes, found {len}")]
    BadKeyFile { path: String, len: usize },

    #[error("pkcs#11 module `{path}` not found")]
    ModuleMissing { path: String },

    #[error("pkcs#11: {0}")]
    Pkcs11(String),

    #[error("no initialised pkcs#11 token labelled `{0}`")]
    TokenNotFound(String),

    #[error("several kek objects labelled `{0}` in the token")]
    AmbiguousKek(String),

    #[error("the kek object `{0}` in the token is extractable or not sensitive")]
    WeakKek(String),

    #[error("wrapped key uses unknown mechanism tag {0}")]
    UnknownMechanism(u8),

    #[error("wrapped key is malformed")]
    Malformed,

    #[error("unwrapping failed: wrong kek, or the wrapped key or its context was altered")]
    UnwrapFailed,

    #[error("wrapping failed")]
    WrapFailed,
}

impl From<cryptoki::error::Error> for KekError {
    fn from(error: cryptoki::error::Error) -> Self {
        Self::Pkcs11(error.to_string())
    }
}

impl From<aws_lc_rs::error::Unspecified> for CryptoError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        Self::OperationFailed
    }
}
