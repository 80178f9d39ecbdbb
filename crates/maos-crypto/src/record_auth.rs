//! Authentication of stored key records.
//!
//! The KEK wrap of each version binds the name, version, type and usages of a key, but not the
//! fields a lifecycle change edits (enabled, exportable, minimum decryption version, rotation
//! period, deletion time, revocation). A [`RecordAuthenticator`] closes that gap: an
//! HMAC-SHA256 key, random per deployment and stored only wrapped by the KEK, tags every
//! serialised record together with its name and revision. Whoever can write the database but
//! cannot use the KEK can no longer flip a field unnoticed.

use crate::error::CryptoError;
use crate::kek::KekProvider;
use crate::primitives;
use crate::secret::SecretBytes;

/// The KEK wrap context of the record authentication key.
const WRAP_CONTEXT: &[u8] = b"maos/record-mac-key/v1";
/// The domain of the tags.
const TAG_DOMAIN: &[u8] = b"maos/key-record/v1";
const KEY_LEN: usize = 32;

/// Tags and checks stored key records.
pub struct RecordAuthenticator {
    key: SecretBytes,
}

impl std::fmt::Debug for RecordAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecordAuthenticator([redacted])")
    }
}

impl RecordAuthenticator {
    /// A new random key, and its wrap by `kek` for storage.
    pub fn generate(kek: &dyn KekProvider) -> Result<(Self, Vec<u8>), CryptoError> {
        let key = primitives::random_secret(KEY_LEN)?;
        let wrapped = kek.wrap(key.expose(), WRAP_CONTEXT)?;
        Ok((Self { key }, wrapped))
    }

    /// The key from its stored wrap; fails when the wrap was made by another KEK or altered.
    pub fn unwrap(kek: &dyn KekProvider, wrapped: &[u8]) -> Result<Self, CryptoError> {
        let key = kek.unwrap(wrapped, WRAP_CONTEXT)?;
        if key.len() != KEY_LEN {
            return Err(CryptoError::InvalidKeyMaterial);
        }
        Ok(Self { key })
    }

    fn message(name: &str, revision: i64, record: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(TAG_DOMAIN.len() + name.len() + record.len() + 18);
        message.extend_from_slice(TAG_DOMAIN);
        message.extend_from_slice(&u64::try_from(name.len()).unwrap_or(u64::MAX).to_be_bytes());
        message.extend_from_slice(name.as_bytes());
        message.extend_from_slice(&revision.to_be_bytes());
        message.extend_from_slice(record);
        message
    }

    /// The tag of revision `revision` of key `name`'s serialised `record`, in hex.
    pub fn tag(&self, name: &str, revision: i64, record: &[u8]) -> String {
        let tag =
            primitives::hmac_sha256(self.key.expose(), &Self::message(name, revision, record));
        hex::encode(tag)
    }

    /// Whether `tag` (hex) authenticates the record; constant time in the tag's content.
    pub fn verify(&self, name: &str, revision: i64, record: &[u8], tag: &str) -> bool {
        let Ok(tag) = hex::decode(tag) else {
            return false;
        };
        primitives::hmac_sha256_verify(
            self.key.expose(),
            &Self::message(name, revision, record),
            &tag,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{FileKek, KekMechanism};

    fn kek(dir: &tempfile::TempDir, name: &str) -> FileKek {
        FileKek::open_or_create(dir.path().join(name), KekMechanism::AesGcm).unwrap()
    }

    #[test]
    fn tags_bind_name_revision_and_record() {
        let dir = tempfile::tempdir().unwrap();
        let kek = kek(&dir, "kek");
        let (auth, wrapped) = RecordAuthenticator::generate(&kek).unwrap();
        let tag = auth.tag("payments", 3, br#"{"enabled":false}"#);
        assert!(auth.verify("payments", 3, br#"{"enabled":false}"#, &tag));
        assert!(!auth.verify("payments", 3, br#"{"enabled":true}"#, &tag));
        assert!(!auth.verify("payments", 2, br#"{"enabled":false}"#, &tag));
        assert!(!auth.verify("billing", 3, br#"{"enabled":false}"#, &tag));
        assert!(!auth.verify("payments", 3, br#"{"enabled":false}"#, "zz"));
        assert!(!auth.verify("payments", 3, br#"{"enabled":false}"#, &tag[2..]));

        // The stored wrap gives the same key back, and only with the same KEK.
        let again = RecordAuthenticator::unwrap(&kek, &wrapped).unwrap();
        assert!(again.verify("payments", 3, br#"{"enabled":false}"#, &tag));
        let other = self::kek(&dir, "other");
        assert!(RecordAuthenticator::unwrap(&other, &wrapped).is_err());
        assert_eq!(format!("{again:?}"), "RecordAuthenticator([redacted])");
    }
}
