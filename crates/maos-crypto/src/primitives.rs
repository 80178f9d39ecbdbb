//! Thin, typed functions over aws-lc-rs: the only place in MAOS that calls the cryptographic
//! library. The key ring and the KEK providers use these functions, and the Wycheproof tests run
//! against them, so the code under test is the code in use.
//!
//! Parameters aws-lc-rs cannot express, or that MAOS does not want, are refused with a typed
//! error: AEAD nonces other than 96 bits, AEAD tags other than 128 bits, truncated HMAC tags.

use std::fmt;

use aws_lc_rs::aead::{self, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::key_wrap::{AES_128, AES_256, AesKek, KeyWrapPadded};
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};
use aws_lc_rs::{constant_time, digest, hkdf, hmac, rand};

use crate::error::CryptoError;
use crate::secret::SecretBytes;

/// Length of every AEAD nonce MAOS uses (96 bits).
pub const AEAD_NONCE_LEN: usize = aead::NONCE_LEN;

/// Length of every AEAD tag MAOS uses (128 bits).
pub const AEAD_TAG_LEN: usize = 16;

/// Length of an HMAC-SHA256 tag; shorter (truncated) tags are refused.
pub const HMAC_SHA256_LEN: usize = 32;

/// Largest HKDF-SHA256 output (255 blocks of 32 bytes).
pub const HKDF_SHA256_MAX_LEN: usize = 255 * 32;

// ---------------------------------------------------------------------------------------------
// Randomness

/// Fills `out` from the operating system's generator (through aws-lc).
pub fn fill_random(out: &mut [u8]) -> Result<(), CryptoError> {
    rand::fill(out).map_err(|_| CryptoError::Random)
}

/// `len` fresh random bytes in a zeroizing buffer.
pub fn random_secret(len: usize) -> Result<SecretBytes, CryptoError> {
    let mut secret = SecretBytes::zeroed(len);
    fill_random(secret.expose_mut())?;
    Ok(secret)
}

// ---------------------------------------------------------------------------------------------
// AEAD

/// The AEAD ciphers of the primitive layer. The key ring uses only the 256-bit ones; the others
/// are here so that the test vectors for them run through the same code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AeadAlgorithm {
    Aes128Gcm,
    Aes192Gcm,
    Aes256Gcm,
    ChaCha20Poly1305,
}

impl AeadAlgorithm {
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Gcm => 16,
            Self::Aes192Gcm => 24,
            Self::Aes256Gcm | Self::ChaCha20Poly1305 => 32,
        }
    }

    fn algorithm(self) -> &'static aead::Algorithm {
        match self {
            Self::Aes128Gcm => &aead::AES_128_GCM,
            Self::Aes192Gcm => &aead::AES_192_GCM,
            Self::Aes256Gcm => &aead::AES_256_GCM,
            Self::ChaCha20Poly1305 => &aead::CHACHA20_POLY1305,
        }
    }
}

/// An AEAD key ready for use. Holding one avoids re-running the key schedule per message.
pub struct AeadKey {
    algorithm: AeadAlgorithm,
    key: LessSafeKey,
}

impl fmt::Debug for AeadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AeadKey")
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

fn nonce_from(nonce: &[u8]) -> Result<Nonce, CryptoError> {
    Nonce::try_assume_unique_for_key(nonce)
        .map_err(|_| CryptoError::UnsupportedNonceLength(nonce.len()))
}

impl AeadKey {
    pub fn new(algorithm: AeadAlgorithm, key: &[u8]) -> Result<Self, CryptoError> {
        if key.len() != algorithm.key_len() {
            return Err(CryptoError::InvalidLength {
                what: "aead key",
                len: key.len(),
                expected: "the cipher's key length",
            });
        }
        let unbound = UnboundKey::new(algorithm.algorithm(), key)
            .map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Ok(Self {
            algorithm,
            key: LessSafeKey::new(unbound),
        })
    }

    pub fn algorithm(&self) -> AeadAlgorithm {
        self.algorithm
    }

    /// Encrypts `buffer[start..]` in place and appends the tag.
    pub fn seal_in_place_append_tag(
        &self,
        nonce: &[u8],
        aad: &[u8],
        buffer: &mut Vec<u8>,
        start: usize,
    ) -> Result<(), CryptoError> {
        let nonce = nonce_from(nonce)?;
        let in_out = buffer
            .get_mut(start..)
            .ok_or(CryptoError::OperationFailed)?;
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), in_out)?;
        buffer.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Encrypts `plaintext`; returns ciphertext followed by the 16-byte tag.
    pub fn seal(&self, nonce: &[u8], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut buffer = Vec::with_capacity(plaintext.len() + AEAD_TAG_LEN);
        buffer.extend_from_slice(plaintext);
        self.seal_in_place_append_tag(nonce, aad, &mut buffer, 0)?;
        Ok(buffer)
    }

    /// Decrypts ciphertext followed by its 16-byte tag.
    pub fn open(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext_and_tag: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        let nonce = nonce_from(nonce)?;
        if ciphertext_and_tag.len() < AEAD_TAG_LEN {
            return Err(CryptoError::DecryptionFailed);
        }
        let mut buffer = SecretBytes::copy_from(ciphertext_and_tag);
        let plaintext_len = self
            .key
            .open_in_place(nonce, Aad::from(aad), buffer.expose_mut())
            .map_err(|_| CryptoError::DecryptionFailed)?
            .len();
        buffer.truncate(plaintext_len);
        Ok(buffer)
    }

    /// Decrypts with the tag given apart; refuses tags that are not 16 bytes.
    pub fn open_detached(
        &self,
        nonce: &[u8],
        aad: &[u8],
        ciphertext: &[u8],
        tag: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        if tag.len() != AEAD_TAG_LEN {
            return Err(CryptoError::UnsupportedTagLength(tag.len()));
        }
        let mut joined = Vec::with_capacity(ciphertext.len() + tag.len());
        joined.extend_from_slice(ciphertext);
        joined.extend_from_slice(tag);
        self.open(nonce, aad, &joined)
    }
}

/// One-shot AEAD encryption: ciphertext followed by the tag.
pub fn aead_seal(
    algorithm: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    AeadKey::new(algorithm, key)?.seal(nonce, aad, plaintext)
}

/// One-shot AEAD decryption of ciphertext followed by the tag.
pub fn aead_open(
    algorithm: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext_and_tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    AeadKey::new(algorithm, key)?.open(nonce, aad, ciphertext_and_tag)
}

/// One-shot AEAD decryption with a separate tag (which must be 16 bytes).
pub fn aead_open_detached(
    algorithm: AeadAlgorithm,
    key: &[u8],
    nonce: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
    tag: &[u8],
) -> Result<SecretBytes, CryptoError> {
    AeadKey::new(algorithm, key)?.open_detached(nonce, aad, ciphertext, tag)
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// Signature schemes the primitive layer verifies. The key ring signs with Ed25519,
/// ECDSA P-256 (DER encoding) and RSA-PSS; PKCS#1 v1.5 is verification only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignatureScheme {
    Ed25519,
    /// ECDSA P-256 with SHA-256, ASN.1 DER signature; public key as an uncompressed point.
    EcdsaP256Sha256Der,
    /// ECDSA P-256 with SHA-256, IEEE P1363 (r || s) signature.
    EcdsaP256Sha256P1363,
    /// RSASSA-PSS, SHA-256, MGF1-SHA-256, 32-byte salt; public key as PKCS#1 or SPKI DER.
    RsaPssSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (verification only).
    RsaPkcs1Sha256,
}

impl SignatureScheme {
    fn algorithm(self) -> &'static dyn signature::VerificationAlgorithm {
        match self {
            Self::Ed25519 => &signature::ED25519,
            Self::EcdsaP256Sha256Der => &signature::ECDSA_P256_SHA256_ASN1,
            Self::EcdsaP256Sha256P1363 => &signature::ECDSA_P256_SHA256_FIXED,
            Self::RsaPssSha256 => &signature::RSA_PSS_2048_8192_SHA256,
            Self::RsaPkcs1Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
        }
    }
}

/// Whether `signature` is a valid signature of `message` under `public_key`. Malformed keys and
/// signatures are simply invalid.
#[must_use]
pub fn verify_signature(
    scheme: SignatureScheme,
    public_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> bool {
    UnparsedPublicKey::new(scheme.algorithm(), public_key)
        .verify(message, signature)
        .is_ok()
}

/// RSA modulus sizes the key ring generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RsaBits {
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl RsaBits {
    fn key_size(self) -> KeySize {
        match self {
            Self::Rsa2048 => KeySize::Rsa2048,
            Self::Rsa3072 => KeySize::Rsa3072,
            Self::Rsa4096 => KeySize::Rsa4096,
        }
    }

    pub fn bits(self) -> usize {
        match self {
            Self::Rsa2048 => 2048,
            Self::Rsa3072 => 3072,
            Self::Rsa4096 => 4096,
        }
    }
}

/// Which kind of signing key to generate or load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningKind {
    Ed25519,
    EcdsaP256,
    RsaPss(RsaBits),
}

/// A private signing key, loaded once and reused.
pub enum SigningKeyPair {
    Ed25519(Ed25519KeyPair),
    EcdsaP256(EcdsaKeyPair),
    RsaPss(aws_lc_rs::rsa::KeyPair),
}

impl fmt::Debug for SigningKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self {
            Self::Ed25519(_) => "ed25519",
            Self::EcdsaP256(_) => "ecdsa-p256",
            Self::RsaPss(_) => "rsa-pss",
        };
        f.debug_struct("SigningKeyPair")
            .field("kind", &kind)
            .finish_non_exhaustive()
    }
}

impl SigningKeyPair {
    /// A new key pair and its PKCS#8 encoding (to be wrapped for storage).
    pub fn generate(kind: SigningKind) -> Result<(Self, SecretBytes), CryptoError> {
        let pkcs8 = match kind {
            SigningKind::Ed25519 => {
                let pair = Ed25519KeyPair::generate()?;
                SecretBytes::copy_from(pair.to_pkcs8v1()?.as_ref())
            }
            SigningKind::EcdsaP256 => {
                let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?;
                SecretBytes::copy_from(pair.to_pkcs8v1()?.as_ref())
            }
            SigningKind::RsaPss(bits) => {
                let pair = aws_lc_rs::rsa::KeyPair::generate(bits.key_size())?;
                SecretBytes::copy_from(pair.as_der()?.as_ref())
            }
        };
        let pair = Self::from_pkcs8(kind, pkcs8.expose())?;
        Ok((pair, pkcs8))
    }

    /// Loads a PKCS#8 private key of the given kind.
    pub fn from_pkcs8(kind: SigningKind, pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let rejected = |_| CryptoError::InvalidKeyMaterial;
        Ok(match kind {
            SigningKind::Ed25519 => {
                Self::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8).map_err(rejected)?)
            }
            SigningKind::EcdsaP256 => Self::EcdsaP256(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8)
                    .map_err(rejected)?,
            ),
            SigningKind::RsaPss(bits) => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(pkcs8).map_err(rejected)?;
                if pair.public_modulus_len() * 8 != bits.bits() {
                    return Err(CryptoError::InvalidKeyMaterial);
                }
                Self::RsaPss(pair)
            }
        })
    }

    /// The scheme [`verify_signature`] needs for this key's signatures.
    pub fn scheme(&self) -> SignatureScheme {
        match self {
            Self::Ed25519(_) => SignatureScheme::Ed25519,
            Self::EcdsaP256(_) => SignatureScheme::EcdsaP256Sha256Der,
            Self::RsaPss(_) => SignatureScheme::RsaPssSha256,
        }
    }

    /// The public key in an encoding [`verify_signature`] takes: 32 raw bytes (Ed25519), an
    /// uncompressed SEC1 point (P-256), SubjectPublicKeyInfo DER (RSA).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            Self::Ed25519(pair) => pair.public_key().as_ref().to_vec(),
            Self::EcdsaP256(pair) => pair.public_key().as_ref().to_vec(),
            Self::RsaPss(pair) => match pair.public_key().as_der() {
                Ok(der) => der.as_ref().to_vec(),
                // Encoding a key aws-lc just loaded does not fail; fall back to PKCS#1.
                Err(_) => pair.public_key().as_ref().to_vec(),
            },
        }
    }

    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            Self::Ed25519(pair) => Ok(pair.try_sign(message)?.as_ref().to_vec()),
            Self::EcdsaP256(pair) => Ok(pair
                .sign(&rand::SystemRandom::new(), message)?
                .as_ref()
                .to_vec()),
            Self::RsaPss(pair) => {
                let mut signature = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PSS_SHA256,
                    &rand::SystemRandom::new(),
                    message,
                    &mut signature,
                )?;
                Ok(signature)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RSA-OAEP (SHA-256, MGF1-SHA-256)

/// An RSA private key for OAEP-SHA256 decryption, with its public half for encryption.
pub struct RsaOaepKey {
    private: OaepPrivateDecryptingKey,
    public: OaepPublicEncryptingKey,
    public_der: Vec<u8>,
}

impl fmt::Debug for RsaOaepKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaOaepKey")
            .field("bits", &self.private.key_size_bits())
            .finish_non_exhaustive()
    }
}

impl RsaOaepKey {
    /// A new key and its PKCS#8 encoding.
    pub fn generate(bits: RsaBits) -> Result<(Self, SecretBytes), CryptoError> {
        let private = PrivateDecryptingKey::generate(bits.key_size())?;
        let pkcs8 = SecretBytes::copy_from(private.as_der()?.as_ref());
        Ok((Self::from_private(private)?, pkcs8))
    }

    /// Loads a PKCS#8 RSA private key.
    pub fn from_pkcs8(pkcs8: &[u8]) -> Result<Self, CryptoError> {
        let private =
            PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| CryptoError::InvalidKeyMaterial)?;
        Self::from_private(private)
    }

    fn from_private(private: PrivateDecryptingKey) -> Result<Self, CryptoError> {
        let public_key = private.public_key();
        let public_der = public_key.as_der()?.as_ref().to_vec();
        Ok(Self {
            public: OaepPublicEncryptingKey::new(public_key)?,
            private: OaepPrivateDecryptingKey::new(private)?,
            public_der,
        })
    }

    pub fn bits(&self) -> usize {
        self.private.key_size_bits()
    }

    /// The public key as SubjectPublicKeyInfo DER.
    pub fn public_key_der(&self) -> &[u8] {
        &self.public_der
    }

    /// Largest plaintext one OAEP-SHA256 block holds with this key.
    pub fn max_plaintext_len(&self) -> usize {
        self.public.max_plaintext_size(&OAEP_SHA256_MGF1SHA256)
    }

    pub fn encrypt(&self, plaintext: &[u8], label: &[u8]) -> Result<Vec<u8>, CryptoError> {
        oaep_encrypt(&self.public, plaintext, label)
    }

    pub fn decrypt(&self, ciphertext: &[u8], label: &[u8]) -> Result<SecretBytes, CryptoError> {
        let mut out = SecretBytes::zeroed(self.private.min_output_size());
        let len = self
            .private
            .decrypt(
                &OAEP_SHA256_MGF1SHA256,
                ciphertext,
                out.expose_mut(),
                label_option(label),
            )
            .map_err(|_| CryptoError::DecryptionFailed)?
            .len();
        out.truncate(len);
        Ok(out)
    }
}

fn label_option(label: &[u8]) -> Option<&[u8]> {
    // An empty OAEP label and no label hash the same; aws-lc wants `None` for it.
    if label.is_empty() { None } else { Some(label) }
}

fn oaep_encrypt(
    public: &OaepPublicEncryptingKey,
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let max = public.max_plaintext_size(&OAEP_SHA256_MGF1SHA256);
    if plaintext.len() > max {
        return Err(CryptoError::InvalidLength {
            what: "rsa-oaep plaintext",
            len: plaintext.len(),
            expected: "at most the key's oaep block capacity",
        });
    }
    let mut out = vec![0; public.ciphertext_size()];
    let len = public
        .encrypt(
            &OAEP_SHA256_MGF1SHA256,
            plaintext,
            &mut out,
            label_option(label),
        )?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSA-OAEP-SHA256 encryption to a public key given as PKCS#1 or SPKI DER.
pub fn rsa_oaep_sha256_encrypt(
    public_key_der: &[u8],
    plaintext: &[u8],
    label: &[u8],
) -> Result<Vec<u8>, CryptoError> {
    let public =
        PublicEncryptingKey::from_der(public_key_der).map_err(|_| CryptoError::InvalidPublicKey)?;
    oaep_encrypt(&OaepPublicEncryptingKey::new(public)?, plaintext, label)
}

/// RSA-OAEP-SHA256 decryption with a PKCS#8 private key.
pub fn rsa_oaep_sha256_decrypt(
    private_pkcs8: &[u8],
    ciphertext: &[u8],
    label: &[u8],
) -> Result<SecretBytes, CryptoError> {
    RsaOaepKey::from_pkcs8(private_pkcs8)?.decrypt(ciphertext, label)
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 and HKDF-SHA256

/// An HMAC-SHA256 key ready for use.
pub struct HmacKey(hmac::Key);

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey([redacted])")
    }
}

impl HmacKey {
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    pub fn sign(&self, message: &[u8]) -> [u8; HMAC_SHA256_LEN] {
        let mut out = [0; HMAC_SHA256_LEN];
        out.copy_from_slice(hmac::sign(&self.0, message).as_ref());
        out
    }

    /// Constant-time check of a full 32-byte tag; truncated tags are refused.
    #[must_use]
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        tag.len() == HMAC_SHA256_LEN && hmac::verify(&self.0, message, tag).is_ok()
    }
}

pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; HMAC_SHA256_LEN] {
    HmacKey::new(key).sign(message)
}

#[must_use]
pub fn hmac_sha256_verify(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    HmacKey::new(key).verify(message, tag)
}

struct OutputLen(usize);

impl hkdf::KeyType for OutputLen {
    fn len(&self) -> usize {
        self.0
    }
}

/// HKDF-SHA256 (RFC 5869): `len` bytes, 1..=8160.
pub fn hkdf_sha256(
    ikm: &[u8],
    salt: &[u8],
    info: &[u8],
    len: usize,
) -> Result<SecretBytes, CryptoError> {
    if len == 0 || len > HKDF_SHA256_MAX_LEN {
        return Err(CryptoError::InvalidLength {
            what: "hkdf output",
            len,
            expected: "1..=8160",
        });
    }
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(ikm);
    let info = [info];
    let okm = prk.expand(&info, OutputLen(len))?;
    let mut out = SecretBytes::zeroed(len);
    okm.fill(out.expose_mut())?;
    Ok(out)
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Compares two byte strings in constant time (for their common length).
#[must_use]
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    constant_time::verify_slices_are_equal(a, b).is_ok()
}

// ---------------------------------------------------------------------------------------------
// AES key wrap with padding (RFC 5649)

fn kwp_kek(kek: &[u8]) -> Result<AesKek, CryptoError> {
    let cipher = match kek.len() {
        16 => &AES_128,
        32 => &AES_256,
        len => {
            return Err(CryptoError::InvalidLength {
                what: "aes-kwp key",
                len,
                expected: "16 or 32 bytes",
            });
        }
    };
    AesKek::new(cipher, kek).map_err(|_| CryptoError::InvalidKeyMaterial)
}

/// AES-KWP wrap of `plaintext` (1 byte or more) under a 128- or 256-bit key.
pub fn aes_kwp_wrap(kek: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let kek = kwp_kek(kek)?;
    let mut out = vec![0; plaintext.len() + 16];
    let len = kek.wrap_with_padding(plaintext, &mut out)?.len();
    out.truncate(len);
    Ok(out)
}

/// AES-KWP unwrap; fails on any integrity or padding error.
pub fn aes_kwp_unwrap(kek: &[u8], wrapped: &[u8]) -> Result<SecretBytes, CryptoError> {
    let kek = kwp_kek(kek)?;
    let mut out = SecretBytes::zeroed(wrapped.len());
    let len = kek
        .unwrap_with_padding(wrapped, out.expose_mut())
        .map_err(|_| CryptoError::DecryptionFailed)?
        .len();
    out.truncate(len);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aead_round_trip_and_refuses_other_nonce_lengths() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        for algorithm in [AeadAlgorithm::Aes256Gcm, AeadAlgorithm::ChaCha20Poly1305] {
            let sealed = aead_seal(algorithm, &key, &nonce, b"aad", b"hello").unwrap();
            assert_eq!(sealed.len(), 5 + AEAD_TAG_LEN);
            let opened = aead_open(algorithm, &key, &nonce, b"aad", &sealed).unwrap();
            assert_eq!(opened.expose(), b"hello");
            assert!(matches!(
                aead_open(algorithm, &key, &nonce, b"other", &sealed),
                Err(CryptoError::DecryptionFailed)
            ));
            assert!(matches!(
                aead_open(algorithm, &key, &[1u8; 16], b"aad", &sealed),
                Err(CryptoError::UnsupportedNonceLength(16))
            ));
            let (ct, tag) = sealed.split_at(5);
            assert!(matches!(
                aead_open_detached(algorithm, &key, &nonce, b"aad", ct, &tag[..12]),
                Err(CryptoError::UnsupportedTagLength(12))
            ));
        }
    }

    #[test]
    fn signing_kinds_round_trip() {
        for kind in [
            SigningKind::Ed25519,
            SigningKind::EcdsaP256,
            SigningKind::RsaPss(RsaBits::Rsa2048),
        ] {
            let (pair, pkcs8) = SigningKeyPair::generate(kind).unwrap();
            let signature = pair.sign(b"message").unwrap();
            assert!(verify_signature(
                pair.scheme(),
                &pair.public_key(),
                b"message",
                &signature
            ));
            assert!(!verify_signature(
                pair.scheme(),
                &pair.public_key(),
                b"messagf",
                &signature
            ));
            let again = SigningKeyPair::from_pkcs8(kind, pkcs8.expose()).unwrap();
            assert_eq!(again.public_key(), pair.public_key());
        }
    }

    #[test]
    fn oaep_round_trip_with_label() {
        let (key, pkcs8) = RsaOaepKey::generate(RsaBits::Rsa2048).unwrap();
        let ct = rsa_oaep_sha256_encrypt(key.public_key_der(), b"secret", b"label").unwrap();
        let pt = rsa_oaep_sha256_decrypt(pkcs8.expose(), &ct, b"label").unwrap();
        assert_eq!(pt.expose(), b"secret");
        assert!(key.decrypt(&ct, b"other").is_err());
        let too_long = vec![0u8; key.max_plaintext_len() + 1];
        assert!(key.encrypt(&too_long, b"").is_err());
    }

    #[test]
    fn hmac_refuses_truncated_tags() {
        let tag = hmac_sha256(b"k", b"m");
        assert!(hmac_sha256_verify(b"k", b"m", &tag));
        assert!(!hmac_sha256_verify(b"k", b"m", &tag[..16]));
    }

    #[test]
    fn kwp_round_trip() {
        let wrapped = aes_kwp_wrap(&[9u8; 32], b"abc").unwrap();
        assert_eq!(
            aes_kwp_unwrap(&[9u8; 32], &wrapped).unwrap().expose(),
            b"abc"
        );
        assert!(aes_kwp_unwrap(&[8u8; 32], &wrapped).is_err());
    }
}
