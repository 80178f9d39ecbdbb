//! The vocabulary of the key ring: key types, usages, status, options, metadata and the
//! persistent records.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::CryptoError;
use crate::primitives::{AeadAlgorithm, RsaBits, SigningKind};
use crate::secret::SecretBytes;

/// The algorithms a named key can have. The text names (`aes256-gcm`, `rsa-3072`, ...) are the
/// ones in the API, the CLI and the stored records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyType {
    /// AES-256-GCM, 96-bit random nonces, 128-bit tags. The default.
    #[default]
    #[serde(rename = "aes256-gcm")]
    Aes256Gcm,
    /// ChaCha20-Poly1305, 96-bit random nonces.
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
    #[serde(rename = "ed25519")]
    Ed25519,
    /// ECDSA over P-256 with SHA-256, DER-encoded signatures.
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    /// RSA with OAEP-SHA256 encryption or PSS-SHA256 signatures (one or the other per key).
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-3072")]
    Rsa3072,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
    /// HMAC-SHA256 with a 256-bit key.
    #[serde(rename = "hmac")]
    Hmac,
}

impl KeyType {
    pub const ALL: [KeyType; 8] = [
        Self::Aes256Gcm,
        Self::ChaCha20Poly1305,
        Self::Ed25519,
        Self::EcdsaP256,
        Self::Rsa2048,
        Self::Rsa3072,
        Self::Rsa4096,
        Self::Hmac,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes256-gcm",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
            Self::Ed25519 => "ed25519",
            Self::EcdsaP256 => "ecdsa-p256",
            Self::Rsa2048 => "rsa-2048",
            Self::Rsa3072 => "rsa-3072",
            Self::Rsa4096 => "rsa-4096",
            Self::Hmac => "hmac",
        }
    }

    pub(crate) fn aead(self) -> Option<AeadAlgorithm> {
        match self {
            Self::Aes256Gcm => Some(AeadAlgorithm::Aes256Gcm),
            Self::ChaCha20Poly1305 => Some(AeadAlgorithm::ChaCha20Poly1305),
            _ => None,
        }
    }

    pub(crate) fn rsa_bits(self) -> Option<RsaBits> {
        match self {
            Self::Rsa2048 => Some(RsaBits::Rsa2048),
            Self::Rsa3072 => Some(RsaBits::Rsa3072),
            Self::Rsa4096 => Some(RsaBits::Rsa4096),
            _ => None,
        }
    }

    pub(crate) fn signing_kind(self) -> Option<SigningKind> {
        match self {
            Self::Ed25519 => Some(SigningKind::Ed25519),
            Self::EcdsaP256 => Some(SigningKind::EcdsaP256),
            other => other.rsa_bits().map(SigningKind::RsaPss),
        }
    }

    /// Whether the key has a public half that metadata shows.
    pub fn is_asymmetric(self) -> bool {
        self.signing_kind().is_some()
    }

    /// The usages a key of this type may have at all.
    pub fn possible_usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => &[Encrypt, Decrypt, Wrap, Derive],
            Self::Ed25519 | Self::EcdsaP256 => &[Sign, Verify],
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => {
                &[Encrypt, Decrypt, Wrap, Sign, Verify]
            }
            Self::Hmac => &[Hmac, Verify, Derive],
        }
    }

    /// The usages a key gets when the caller names none.
    pub fn default_usages(self) -> &'static [KeyUsage] {
        use KeyUsage::*;
        match self {
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => &[Encrypt, Decrypt, Wrap],
            Self::Ed25519 | Self::EcdsaP256 | Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => {
                &[Sign, Verify]
            }
            Self::Hmac => &[Hmac, Verify],
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyType {
    type Err = CryptoError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| CryptoError::UnsupportedKeyType(text.to_owned()))
    }
}

/// What a key may be used for, fixed when the key is created.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyUsage {
    /// Encrypt caller data.
    Encrypt,
    /// Decrypt ciphertexts (including wrapped data keys).
    Decrypt,
    /// Generate data keys and rewrap ciphertexts to the latest version (never shows plaintext).
    Wrap,
    /// Sign messages.
    Sign,
    /// Verify signatures and HMAC tags.
    Verify,
    /// Compute HMAC tags.
    Hmac,
    /// Derive keys with HKDF over a caller context.
    Derive,
}

impl KeyUsage {
    pub const ALL: [KeyUsage; 7] = [
        Self::Encrypt,
        Self::Decrypt,
        Self::Wrap,
        Self::Sign,
        Self::Verify,
        Self::Hmac,
        Self::Derive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Encrypt => "encrypt",
            Self::Decrypt => "decrypt",
            Self::Wrap => "wrap",
            Self::Sign => "sign",
            Self::Verify => "verify",
            Self::Hmac => "hmac",
            Self::Derive => "derive",
        }
    }
}

impl fmt::Display for KeyUsage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyUsage {
    type Err = CryptoError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|usage| usage.as_str() == text)
            .ok_or_else(|| CryptoError::UnknownUsage(text.to_owned()))
    }
}

/// Where a key is in its lifecycle, as of a given time. The order of precedence is the order of
/// the variants from the bottom up: a destroyed key is destroyed whatever else its record says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyStatus {
    /// Usable within its usages.
    Enabled,
    /// Every cryptographic operation refused until enabled again.
    Disabled,
    /// Scheduled for deletion: every operation refused; the deletion can be cancelled.
    PendingDeletion,
    /// Revoked for good: material destroyed, every operation refused.
    Revoked,
    /// The deletion window passed: material destroyed.
    Destroyed,
}

/// Options for [`crate::KeyRing::create`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateKeyOptions {
    pub key_type: KeyType,
    /// `None` gives the type's [`KeyType::default_usages`].
    pub usages: Option<Vec<KeyUsage>>,
    /// Whether [`crate::KeyRing::export`] may return the material. Can be turned on later,
    /// never off.
    pub exportable: bool,
    /// Rotate automatically when the latest version is this old (at least one hour).
    pub rotation_period: Option<Duration>,
}

impl CreateKeyOptions {
    pub fn of_type(key_type: KeyType) -> Self {
        Self {
            key_type,
            ..Self::default()
        }
    }

    pub fn with_usages(mut self, usages: &[KeyUsage]) -> Self {
        self.usages = Some(usages.to_vec());
        self
    }
}

/// One version of a key as metadata shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMetadata {
    pub version: u32,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub revoked: bool,
    /// Base64 public key of asymmetric keys: raw 32 bytes (Ed25519), an uncompressed SEC1
    /// point (P-256), SubjectPublicKeyInfo DER (RSA).
    pub public_key: Option<String>,
}

/// What anyone allowed to read a key's metadata may see. No material.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyMetadata {
    pub name: String,
    pub key_type: KeyType,
    pub usages: Vec<KeyUsage>,
    pub status: KeyStatus,
    /// Seconds since the Unix epoch.
    pub created_at: u64,
    pub exportable: bool,
    pub latest_version: u32,
    pub min_decryption_version: u32,
    pub rotation_period_secs: Option<u64>,
    /// When the next automatic rotation is due (seconds since the epoch).
    pub next_rotation_at: Option<u64>,
    /// When a scheduled deletion takes effect (seconds since the epoch).
    pub deletion_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub destroyed_at: Option<u64>,
    /// Where the material's KEK lives (from [`crate::KekProvider::describe`]).
    pub kek: String,
    pub versions: Vec<VersionMetadata>,
}

/// The stored form of one key version: the material only as the KEK wrapped it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u32,
    pub created_at: u64,
    pub revoked_at: Option<u64>,
    /// Base64 public key (asymmetric types); see [`VersionMetadata::public_key`].
    pub public_key: Option<String>,
    /// Base64 of the KEK-wrapped material; `None` once revoked or destroyed.
    pub wrapped_material: Option<String>,
}

/// The stored form of a key, for the server's database. It contains no unwrapped material,
/// and the wrapped material is bound to the key's name, version, type and usages, so a record
/// edited to widen its usages or to carry another key's material fails to load.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    pub key_type: KeyType,
    pub usages: Vec<KeyUsage>,
    pub created_at: u64,
    pub exportable: bool,
    pub enabled: bool,
    pub min_decryption_version: u32,
    pub rotation_period_secs: Option<u64>,
    pub deletion_at: Option<u64>,
    pub revoked_at: Option<u64>,
    pub destroyed_at: Option<u64>,
    pub kek: String,
    pub versions: Vec<VersionRecord>,
}

/// A data key for envelope encryption: the plaintext (unless only the wrapped form was asked
/// for) and its ciphertext under the key ring key.
#[derive(Debug)]
pub struct DataKey {
    pub version: u32,
    pub ciphertext: crate::Ciphertext,
    pub plaintext: Option<SecretBytes>,
}

/// A key derived with HKDF from one version of a key ring key.
#[derive(Debug)]
pub struct DerivedKey {
    pub version: u32,
    pub key: SecretBytes,
}

/// Material returned by [`crate::KeyRing::export`]: raw bytes for symmetric keys, PKCS#8 DER
/// for asymmetric ones.
#[derive(Debug)]
pub struct ExportedKey {
    pub name: String,
    pub version: u32,
    pub key_type: KeyType,
    pub material: SecretBytes,
}

/// One item of a batch encryption.
#[derive(Clone, Copy, Debug)]
pub struct EncryptItem<'a> {
    pub plaintext: &'a [u8],
    pub aad: &'a [u8],
}

/// One item of a batch decryption or rewrap.
#[derive(Clone, Copy, Debug)]
pub struct DecryptItem<'a> {
    pub ciphertext: &'a str,
    pub aad: &'a [u8],
}

/// One item of a batch signature or HMAC verification.
#[derive(Clone, Copy, Debug)]
pub struct VerifyItem<'a> {
    pub message: &'a [u8],
    pub signature: &'a str,
}

/// The outcome of one key in [`crate::KeyRing::rotate_due`].
#[derive(Debug)]
pub struct RotationOutcome {
    pub name: String,
    /// The new latest version, or why the rotation failed.
    pub result: Result<u32, CryptoError>,
}
