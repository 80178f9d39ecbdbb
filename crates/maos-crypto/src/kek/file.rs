//! A KEK kept in a local file: 32 random bytes, created on first use with mode 0600.

use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::error::{CryptoError, KekError};
use crate::kek::{KekMechanism, KekProvider, kwp_plaintext, kwp_strip, split_blob};
use crate::primitives::{self, AEAD_NONCE_LEN, AeadAlgorithm, AeadKey};
use crate::secret::SecretBytes;

const KEK_LEN: usize = 32;

/// The file KEK provider. The file holds exactly 32 bytes; a file that group or others may
/// read or write is refused, so a misconfigured deployment stops instead of running with an
/// exposed root key.
#[derive(Debug)]
pub struct FileKek {
    path: PathBuf,
    mechanism: KekMechanism,
    key: SecretBytes,
    aead: AeadKey,
}

fn io_error(path: &Path, source: std::io::Error) -> KekError {
    KekError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileKek {
    /// Opens the KEK file, creating it with fresh random bytes and mode 0600 if it does not
    /// exist. New wraps use `mechanism`; blobs of either mechanism unwrap.
    pub fn open_or_create(
        path: impl AsRef<Path>,
        mechanism: KekMechanism,
    ) -> Result<Self, KekError> {
        let path = path.as_ref();
        let key = match Self::create(path)? {
            Some(key) => key,
            None => Self::read(path)?,
        };
        let aead = AeadKey::new(AeadAlgorithm::Aes256Gcm, key.expose()).map_err(|_| {
            KekError::BadKeyFile {
                path: path.display().to_string(),
                len: key.len(),
            }
        })?;
        tracing::debug!(kek.path = %path.display(), ?mechanism, "file kek ready");
        Ok(Self {
            path: path.to_path_buf(),
            mechanism,
            key,
            aead,
        })
    }

    /// Creates the file if absent; `None` if it already exists.
    fn create(path: &Path) -> Result<Option<SecretBytes>, KekError> {
        let mut file = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(file) => file,
            Err(error) if error.kind() == ErrorKind::AlreadyExists => return Ok(None),
            Err(error) => return Err(io_error(path, error)),
        };
        let key = primitives::random_secret(KEK_LEN).map_err(|_| KekError::WrapFailed)?;
        file.write_all(key.expose())
            .map_err(|e| io_error(path, e))?;
        file.sync_all().map_err(|e| io_error(path, e))?;
        tracing::info!(kek.path = %path.display(), "created a new file kek");
        Ok(Some(key))
    }

    fn read(path: &Path) -> Result<SecretBytes, KekError> {
        let mut file = OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|e| io_error(path, e))?;
        let metadata = file.metadata().map_err(|e| io_error(path, e))?;
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(KekError::InsecurePermissions {
                path: path.display().to_string(),
                mode,
            });
        }
        if !metadata.is_file() {
            return Err(KekError::BadKeyFile {
                path: path.display().to_string(),
                len: 0,
            });
        }

        // Read one byte more than expected, to tell "too long" from "exactly right".
        let mut key = SecretBytes::zeroed(KEK_LEN + 1);
        let mut filled = 0;
        while let Some(rest) = key.expose_mut().get_mut(filled..) {
            if rest.is_empty() {
                break;
            }
            match file.read(rest) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(error) if error.kind() == ErrorKind::Interrupted => {}
                Err(error) => return Err(io_error(path, error)),
            }
        }
        if filled != KEK_LEN {
            let len = if filled > KEK_LEN {
                fs::metadata(path)
                    .map(|m| m.len() as usize)
                    .unwrap_or(filled)
            } else {
                filled
            };
            return Err(KekError::BadKeyFile {
                path: path.display().to_string(),
                len,
            });
        }
        key.truncate(KEK_LEN);
        Ok(key)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl KekProvider for FileKek {
    fn describe(&self) -> String {
        format!("file:{}", self.path.display())
    }

    fn wrap(&self, material: &[u8], context: &[u8]) -> Result<Vec<u8>, KekError> {
        let mut blob = vec![self.mechanism.tag()];
        match self.mechanism {
            KekMechanism::AesGcm => {
                let mut nonce = [0u8; AEAD_NONCE_LEN];
                primitives::fill_random(&mut nonce).map_err(|_| KekError::WrapFailed)?;
                blob.extend_from_slice(&nonce);
                blob.extend_from_slice(material);
                self.aead
                    .seal_in_place_append_tag(&nonce, context, &mut blob, 1 + AEAD_NONCE_LEN)
                    .map_err(|_| KekError::WrapFailed)?;
            }
            KekMechanism::AesKeyWrapPad => {
                let plaintext = kwp_plaintext(material, context)?;
                let wrapped = primitives::aes_kwp_wrap(self.key.expose(), plaintext.expose())
                    .map_err(|_| KekError::WrapFailed)?;
                blob.extend_from_slice(&wrapped);
            }
        }
        Ok(blob)
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretBytes, KekError> {
        let (mechanism, body) = split_blob(wrapped)?;
        match mechanism {
            KekMechanism::AesGcm => {
                if body.len() < AEAD_NONCE_LEN {
                    return Err(KekError::Malformed);
                }
                let (nonce, sealed) = body.split_at(AEAD_NONCE_LEN);
                self.aead
                    .open(nonce, context, sealed)
                    .map_err(|error| match error {
                        CryptoError::DecryptionFailed => KekError::UnwrapFailed,
                        _ => KekError::Malformed,
                    })
            }
            KekMechanism::AesKeyWrapPad => {
                let unwrapped = primitives::aes_kwp_unwrap(self.key.expose(), body)
                    .map_err(|_| KekError::UnwrapFailed)?;
                kwp_strip(&unwrapped, context)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_file_with_mode_0600_and_reopens_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        let kek = FileKek::open_or_create(&path, KekMechanism::AesGcm).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(&path).unwrap().len(), 32);

        let blob = kek.wrap(b"material", b"ctx").unwrap();
        let again = FileKek::open_or_create(&path, KekMechanism::AesKeyWrapPad).unwrap();
        assert_eq!(again.unwrap(&blob, b"ctx").unwrap().expose(), b"material");
        assert!(matches!(
            again.unwrap(&blob, b"other"),
            Err(KekError::UnwrapFailed)
        ));
    }

    #[test]
    fn both_mechanisms_bind_the_context() {
        let dir = tempfile::tempdir().unwrap();
        for mechanism in [KekMechanism::AesGcm, KekMechanism::AesKeyWrapPad] {
            let kek = FileKek::open_or_create(dir.path().join("k"), mechanism).unwrap();
            let blob = kek.wrap(b"0123456789", b"key a v1").unwrap();
            assert_eq!(blob.first(), Some(&mechanism.tag()));
            assert_eq!(
                kek.unwrap(&blob, b"key a v1").unwrap().expose(),
                b"0123456789"
            );
            assert!(kek.unwrap(&blob, b"key b v1").is_err());
            let mut flipped = blob.clone();
            *flipped.last_mut().unwrap() ^= 1;
            assert!(kek.unwrap(&flipped, b"key a v1").is_err());
        }
    }

    #[test]
    fn refuses_loose_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        FileKek::open_or_create(&path, KekMechanism::AesGcm).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let error = FileKek::open_or_create(&path, KekMechanism::AesGcm).unwrap_err();
        assert!(
            matches!(error, KekError::InsecurePermissions { mode: 0o640, .. }),
            "{error}"
        );
    }

    #[test]
    fn refuses_wrong_length() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kek");
        fs::write(&path, [1u8; 31]).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            FileKek::open_or_create(&path, KekMechanism::AesGcm),
            Err(KekError::BadKeyFile { len: 31, .. })
        ));
        fs::write(&path, [1u8; 40]).unwrap();
        assert!(matches!(
            FileKek::open_or_create(&path, KekMechanism::AesGcm),
            Err(KekError::BadKeyFile { len: 40, .. })
        ));
    }
}
