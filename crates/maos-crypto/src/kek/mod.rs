//! Root key-encryption keys (KEKs). Every key version's material is wrapped by a KEK before it
//! leaves memory; the key ring never stores or returns unwrapped material except through an
//! explicit export of an exportable key.
//!
//! A wrapped blob starts with one byte naming the mechanism, so a deployment can change the
//! mechanism for new wraps and still read old ones:
//!
//! | tag | mechanism | rest of the blob |
//! |---|---|---|
//! | 1 | AES-256-GCM | 12-byte nonce, ciphertext, 16-byte tag; the context is the AAD |
//! | 2 | AES-KWP (RFC 5649) | the wrap of `SHA-256(context) || u32 length || material` |
//!
//! KWP has no associated data, so the context's digest travels inside the wrapped bytes and is
//! compared on unwrap: either way a blob moved to another key, version or usage set fails.

mod file;
mod pkcs11;

use std::fmt;

use serde::{Deserialize, Serialize};

pub use file::FileKek;
pub use pkcs11::{Pkcs11Config, Pkcs11Kek};

use crate::error::KekError;
use crate::primitives;
use crate::secret::SecretBytes;

/// Which wrapping mechanism a provider uses for new wraps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KekMechanism {
    /// AES-256-GCM with a fresh random 96-bit nonce and the context as AAD.
    #[default]
    AesGcm,
    /// AES key wrap with padding (RFC 5649, `CKM_AES_KEY_WRAP_PAD`).
    AesKeyWrapPad,
}

impl KekMechanism {
    pub(crate) const GCM_TAG: u8 = 1;
    pub(crate) const KWP_TAG: u8 = 2;

    pub(crate) fn tag(self) -> u8 {
        match self {
            Self::AesGcm => Self::GCM_TAG,
            Self::AesKeyWrapPad => Self::KWP_TAG,
        }
    }

    pub(crate) fn from_tag(tag: u8) -> Result<Self, KekError> {
        match tag {
            Self::GCM_TAG => Ok(Self::AesGcm),
            Self::KWP_TAG => Ok(Self::AesKeyWrapPad),
            other => Err(KekError::UnknownMechanism(other)),
        }
    }
}

/// Something that holds the root key and wraps key material with it.
///
/// `context` names what is wrapped (key name, version, type, usages); unwrapping with another
/// context fails. Implementations must be safe to call from several threads.
pub trait KekProvider: Send + Sync + fmt::Debug {
    /// A short description of where the KEK lives, for metadata and logs (no secrets).
    fn describe(&self) -> String;

    /// Wraps `material`, binding `context`.
    fn wrap(&self, material: &[u8], context: &[u8]) -> Result<Vec<u8>, KekError>;

    /// Unwraps a blob produced by [`KekProvider::wrap`] with the same `context`.
    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretBytes, KekError>;
}

/// Splits a wrapped blob into its mechanism and body.
pub(crate) fn split_blob(wrapped: &[u8]) -> Result<(KekMechanism, &[u8]), KekError> {
    let (tag, body) = wrapped.split_first().ok_or(KekError::Malformed)?;
    Ok((KekMechanism::from_tag(*tag)?, body))
}

/// `SHA-256(context) || len(material) as u32 BE || material`, the plaintext of a KWP wrap.
///
/// The explicit length makes the plaintext self-delimiting: SoftHSM2 2.6 returns KWP-unwrapped
/// generic secrets with their padding still attached, so the padding is stripped here.
pub(crate) fn kwp_plaintext(material: &[u8], context: &[u8]) -> Result<SecretBytes, KekError> {
    let digest = primitives::sha256(context);
    let len = u32::try_from(material.len()).map_err(|_| KekError::WrapFailed)?;
    let mut joined = SecretBytes::zeroed(digest.len() + 4 + material.len());
    let (head, rest) = joined.expose_mut().split_at_mut(digest.len());
    head.copy_from_slice(&digest);
    let (len_bytes, tail) = rest.split_at_mut(4);
    len_bytes.copy_from_slice(&len.to_be_bytes());
    tail.copy_from_slice(material);
    Ok(joined)
}

/// Checks the context digest of an unwrapped KWP plaintext and returns the material. Up to 7
/// trailing zero bytes (KWP padding a token left in place) are tolerated, nothing else.
pub(crate) fn kwp_strip(unwrapped: &SecretBytes, context: &[u8]) -> Result<SecretBytes, KekError> {
    let digest = primitives::sha256(context);
    let bytes = unwrapped.expose();
    if bytes.len() < digest.len() + 4 {
        return Err(KekError::UnwrapFailed);
    }
    let (head, rest) = bytes.split_at(digest.len());
    if !primitives::constant_time_eq(head, &digest) {
        return Err(KekError::UnwrapFailed);
    }
    let (len_bytes, tail) = rest.split_at(4);
    let mut len = [0u8; 4];
    len.copy_from_slice(len_bytes);
    let len = usize::try_from(u32::from_be_bytes(len)).map_err(|_| KekError::Malformed)?;
    let (material, padding) = tail.split_at_checked(len).ok_or(KekError::Malformed)?;
    if padding.len() >= 8 || padding.iter().any(|b| *b != 0) {
        return Err(KekError::Malformed);
    }
    Ok(SecretBytes::copy_from(material))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwp_plaintext_is_self_delimiting() {
        let plaintext = kwp_plaintext(b"abcde", b"ctx").unwrap();
        assert_eq!(kwp_strip(&plaintext, b"ctx").unwrap().expose(), b"abcde");
        assert!(matches!(
            kwp_strip(&plaintext, b"other"),
            Err(KekError::UnwrapFailed)
        ));

        // Padding a token left in place is tolerated; anything else is not.
        let mut padded = plaintext.expose().to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            kwp_strip(&SecretBytes::new(padded.clone()), b"ctx")
                .unwrap()
                .expose(),
            b"abcde"
        );
        padded.push(1);
        assert!(kwp_strip(&SecretBytes::new(padded), b"ctx").is_err());
        let mut long = plaintext.expose().to_vec();
        long.extend_from_slice(&[0; 8]);
        assert!(kwp_strip(&SecretBytes::new(long), b"ctx").is_err());
        let short = &plaintext.expose()[..plaintext.len() - 1];
        assert!(kwp_strip(&SecretBytes::copy_from(short), b"ctx").is_err());
    }
}
