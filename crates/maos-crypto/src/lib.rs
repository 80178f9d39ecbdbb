//! maos-crypto (docs filled in below)

pub mod error;
pub mod format;
pub mod kek;
pub mod keyring;
pub mod primitives;
pub mod secret;

pub use error::{CryptoError, KekError};
pub use format::{Ciphertext, Signature};
pub use kek::{FileKek, KekMechanism, KekProvider, Pkcs11Config, Pkcs11Kek};
pub use keyring::{
    CreateKeyOptions, DataKey, DecryptItem, DerivedKey, EncryptItem, ExportedKey, KeyMetadata,
    KeyRecord, KeyRing, KeyStatus, KeyType, KeyUsage, RotationOutcome, VerifyItem, VersionMetadata,
    VersionRecord,
};
pub use secret::SecretBytes;
