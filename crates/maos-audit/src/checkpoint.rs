//! Signed checkpoints: the Merkle tree head over every record so far, chained to the previous
//! checkpoint and signed with Ed25519.

use std::fmt;

use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

use crate::digest::Digest;
use crate::time::Timestamp;

/// Version tag that opens the signed bytes of every checkpoint.
const CHECKPOINT_TAG: &[u8] = b"maos.audit.checkpoint.v1";

/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Length of an Ed25519 public key.
pub const PUBLIC_KEY_LEN: usize = 32;

/// A signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// 0 for the first checkpoint, then one more each time.
    pub index: u64,
    pub time: Timestamp,
    /// Number of records covered: those with sequence numbers `0..tree_size`.
    pub tree_size: u64,
    /// RFC 6962 Merkle tree hash over the leaves `SHA-256(0x00 || record.hash)` of those records.
    pub root: Digest,
    /// [`Checkpoint::digest`] of the checkpoint with `index - 1`; all zeros for the first.
    pub prev_checkpoint: Digest,
    pub signature: CheckpointSignature,
}

impl Checkpoint {
    /// Builds and signs a checkpoint.
    pub fn sign(
        key: &CheckpointSigningKey,
        index: u64,
        time: Timestamp,
        tree_size: u64,
        root: Digest,
        prev_checkpoint: Digest,
    ) -> Result<Checkpoint, KeyError> {
        let payload = signed_bytes(index, time, tree_size, &root, &prev_checkpoint);
        let signature = key.sign(&payload)?;
        Ok(Checkpoint {
            index,
            time,
            tree_size,
            root,
            prev_checkpoint,
            signature,
        })
    }

    /// The bytes the signature covers (every field but the signature), as in docs/audit.md.
    pub fn signed_bytes(&self) -> Vec<u8> {
        signed_bytes(
            self.index,
            self.time,
            self.tree_size,
            &self.root,
            &self.prev_checkpoint,
        )
    }

    /// SHA-256 of the signed bytes; the next checkpoint links to it.
    pub fn digest(&self) -> Digest {
        Digest::of(&self.signed_bytes())
    }

    /// Whether `key` signed exactly this content.
    pub fn signature_is_valid(&self, key: &VerifyingKey) -> bool {
        key.verify(&self.signed_bytes(), &self.signature)
    }
}

fn signed_bytes(
    index: u64,
    time: Timestamp,
    tree_size: u64,
    root: &Digest,
    prev_checkpoint: &Digest,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + CHECKPOINT_TAG.len() + 24 + 64);
    out.extend_from_slice(&(CHECKPOINT_TAG.len() as u64).to_be_bytes());
    out.extend_from_slice(CHECKPOINT_TAG);
    out.extend_from_slice(&index.to_be_bytes());
    out.extend_from_slice(&time.unix_millis().to_be_bytes());
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(root.as_bytes());
    out.extend_from_slice(prev_checkpoint.as_bytes());
    out
}

/// An Ed25519 signature, written as 128 lowercase hexadecimal characters.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CheckpointSignature([u8; SIGNATURE_LEN]);

impl CheckpointSignature {
    pub const fn from_bytes(bytes: [u8; SIGNATURE_LEN]) -> Self {
        CheckpointSignature(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; SIGNATURE_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; SIGNATURE_LEN];
        decode_lower_hex(text, &mut bytes).map_err(|()| KeyError::SignatureText)?;
        Ok(CheckpointSignature(bytes))
    }
}

impl fmt::Debug for CheckpointSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CheckpointSignature({})", self.to_hex())
    }
}

impl Serialize for CheckpointSignature {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for CheckpointSignature {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        CheckpointSignature::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

/// Decodes exactly `out.len() * 2` lowercase hexadecimal characters.
fn decode_lower_hex(text: &str, out: &mut [u8]) -> Result<(), ()> {
    let well_formed = text.len() == out.len() * 2
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(());
    }
    hex::decode_to_slice(text, out).map_err(|_| ())
}

/// Problems with checkpoint keys and signatures.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    #[error("the system random generator failed to make an Ed25519 key")]
    Generate,
    #[error("not an Ed25519 private key in PKCS#8 form: {0}")]
    Pkcs8(String),
    #[error("Ed25519 signing failed")]
    Sign,
    #[error("the Ed25519 key could not be written as PKCS#8")]
    Export,
    #[error("an Ed25519 public key is 64 lowercase hexadecimal characters")]
    PublicKeyText,
    #[error("an Ed25519 signature is 128 lowercase hexadecimal characters")]
    SignatureText,
}

/// The Ed25519 private key that signs checkpoints.
///
/// The key lives inside AWS-LC, which wipes it when the key is dropped (`OPENSSL_free`
/// cleanses); the PKCS#8 bytes handed out are [`Zeroizing`]. `Debug` prints `[redacted]`.
pub struct CheckpointSigningKey {
    pair: Ed25519KeyPair,
}

impl CheckpointSigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::generate().map_err(|_| KeyError::Generate)?;
        Ok(CheckpointSigningKey { pair })
    }

    /// Loads a PKCS#8 (v1 or v2) Ed25519 private key, DER-encoded.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|rejected| KeyError::Pkcs8(rejected.to_string()))?;
        Ok(CheckpointSigningKey { pair })
    }

    /// The key as a DER-encoded PKCS#8 v2 document, to be stored wrapped by the key service.
    pub fn to_pkcs8(&self) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let document = self.pair.to_pkcs8().map_err(|_| KeyError::Export)?;
        Ok(Zeroizing::new(document.as_ref().to_vec()))
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        for (out, byte) in bytes.iter_mut().zip(self.pair.public_key().as_ref()) {
            *out = *byte;
        }
        VerifyingKey(bytes)
    }

    pub fn sign(&self, message: &[u8]) -> Result<CheckpointSignature, KeyError> {
        let signature = self.pair.try_sign(message).map_err(|_| KeyError::Sign)?;
        let mut bytes = [0u8; SIGNATURE_LEN];
        for (out, byte) in bytes.iter_mut().zip(signature.as_ref()) {
            *out = *byte;
        }
        Ok(CheckpointSignature(bytes))
    }
}

impl fmt::Debug for CheckpointSigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The Ed25519 public key that verifies checkpoints; written as 64 lowercase hexadecimal
/// characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct VerifyingKey([u8; PUBLIC_KEY_LEN]);

impl VerifyingKey {
    pub const fn from_bytes(bytes: [u8; PUBLIC_KEY_LEN]) -> Self {
        VerifyingKey(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; PUBLIC_KEY_LEN] {
        &self.0
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let mut bytes = [0u8; PUBLIC_KEY_LEN];
        decode_lower_hex(text.trim(), &mut bytes).map_err(|()| KeyError::PublicKeyText)?;
        Ok(VerifyingKey(bytes))
    }

    /// A short name for the key: the first 8 bytes of SHA-256 of the public key, in hex.
    pub fn key_id(&self) -> String {
        let digest = Digest::of(&self.0);
        hex::encode(digest.as_bytes().get(..8).unwrap_or_default())
    }

    pub fn verify(&self, message: &[u8], signature: &CheckpointSignature) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, &signature.0)
            .is_ok()
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({})", self.to_hex())
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for VerifyingKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for VerifyingKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        VerifyingKey::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(key: &CheckpointSigningKey) -> Checkpoint {
        Checkpoint::sign(
            key,
            3,
            Timestamp::parse("2026-12-03T17:00:00.000Z").unwrap(),
            1000,
            Digest::of(b"root"),
            Digest::of(b"previous"),
        )
        .unwrap()
    }

    #[test]
    fn signatures_verify_and_cover_every_field() {
        let key = CheckpointSigningKey::generate().unwrap();
        let public = key.verifying_key();
        let signed = checkpoint(&key);
        assert!(signed.signature_is_valid(&public));

        type Edit = Box<dyn Fn(&mut Checkpoint)>;
        let edits: Vec<Edit> = vec![
            Box::new(|c| c.index += 1),
            Box::new(|c| c.time = Timestamp::EPOCH),
            Box::new(|c| c.tree_size -= 1),
            Box::new(|c| c.root = Digest::ZERO),
            Box::new(|c| c.prev_checkpoint = Digest::ZERO),
            Box::new(|c| {
                let mut bytes = *c.signature.as_bytes();
                bytes[5] ^= 1;
                c.signature = CheckpointSignature::from_bytes(bytes);
            }),
        ];
        for (at, edit) in edits.iter().enumerate() {
            let mut changed = signed.clone();
            edit(&mut changed);
            assert!(
                !changed.signature_is_valid(&public),
                "edit {at} kept the signature valid"
            );
        }

        let other = CheckpointSigningKey::generate().unwrap().verifying_key();
        assert!(!signed.signature_is_valid(&other));
    }

    #[test]
    fn pkcs8_round_trips() {
        let key = CheckpointSigningKey::generate().unwrap();
        let der = key.to_pkcs8().unwrap();
        let loaded = CheckpointSigningKey::from_pkcs8(&der).unwrap();
        assert_eq!(loaded.verifying_key(), key.verifying_key());
        assert!(checkpoint(&loaded).signature_is_valid(&key.verifying_key()));
        assert!(matches!(
            CheckpointSigningKey::from_pkcs8(b"not a key"),
            Err(KeyError::Pkcs8(_))
        ));
        assert!(CheckpointSigningKey::from_pkcs8(&der[..der.len() - 1]).is_err());
    }

    #[test]
    fn debug_hides_the_private_key() {
        let key = CheckpointSigningKey::generate().unwrap();
        assert_eq!(format!("{key:?}"), "[redacted]");
        assert_eq!(format!("{:?}", Some(&key)), "Some([redacted])");
    }

    /// The signed bytes of docs/audit.md, hashed independently (Python) for these values.
    #[test]
    fn checkpoint_digest_matches_the_documented_layout() {
        let key = CheckpointSigningKey::generate().unwrap();
        let checkpoint = Checkpoint::sign(
            &key,
            2,
            Timestamp::parse("2026-12-03T16:51:05.123Z").unwrap(),
            3000,
            Digest::from_bytes([0x22; 32]),
            Digest::from_bytes([0x33; 32]),
        )
        .unwrap();
        assert_eq!(
            checkpoint.digest().to_hex(),
            "9561112a5e22a77eb0f5ce22383c385fadc78f70bf5472e91060a2d8a6c9f794"
        );
    }

    #[test]
    fn text_forms_round_trip() {
        let key = CheckpointSigningKey::generate().unwrap();
        let public = key.verifying_key();
        assert_eq!(VerifyingKey::from_hex(&public.to_hex()), Ok(public));
        assert!(VerifyingKey::from_hex(&public.to_hex().to_uppercase()).is_err());
        assert_eq!(public.key_id().len(), 16);
        let signed = checkpoint(&key);
        let json = serde_json::to_string(&signed).unwrap();
        let back: Checkpoint = serde_json::from_str(&json).unwrap();
        assert_eq!(back, signed);
        assert!(CheckpointSignature::from_hex("ab").is_err());
    }
}
