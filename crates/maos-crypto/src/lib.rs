//! The cryptographic core of MAOS Security: a key ring of named, versioned keys whose material
//! is wrapped at rest by a root key-encryption key (KEK), and the operations on those keys.
//! All cryptography comes from aws-lc-rs, through the thin functions of [`primitives`].
//!
//! # The pieces
//!
//! | module | what it holds |
//! |---|---|
//! | [`keyring`] | [`KeyRing`]: create, metadata, encrypt/decrypt, rewrap, data keys, derive, sign/verify, HMAC, batches, lifecycle, persistence |
//! | [`format`](mod@format) | [`Ciphertext`] and [`Signature`]: `maos:v<version>:<base64>` |
//! | [`kek`] | the [`KekProvider`] trait, [`FileKek`] and [`Pkcs11Kek`] |
//! | [`primitives`] | AEAD, signatures, RSA-OAEP, HMAC, HKDF, AES-KWP over aws-lc-rs; the Wycheproof tests run here |
//! | [`record_auth`] | [`RecordAuthenticator`]: HMAC tags over stored key records, under a KEK-wrapped key |
//! | [`secret`] | [`SecretBytes`]: zeroized on drop, `[redacted]` in `Debug` and `Display` |
//! | [`error`] | [`CryptoError`] and [`KekError`] |
//!
//! # Using the key ring
//!
//! ```no_run
//! use std::sync::Arc;
//! use maos_core::SystemClock;
//! use maos_crypto::{Ciphertext, CreateKeyOptions, FileKek, KekMechanism, KeyRing, KeyType};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The root key: created on first start with mode 0600, refused if group/others can read it.
//! let kek = Arc::new(FileKek::open_or_create("/var/lib/maos/kek", KekMechanism::AesGcm)?);
//!
//! // Load the stored records (from the database) or start empty.
//! let ring = KeyRing::from_records(kek, Arc::new(SystemClock), Vec::new())?;
//! ring.create("payments", CreateKeyOptions::of_type(KeyType::Aes256Gcm))?;
//!
//! let ciphertext = ring.encrypt("payments", b"4111 1111 1111 1111", b"customer=42")?;
//! let text = ciphertext.to_string(); // "maos:v1:..."
//! let plaintext = ring.decrypt("payments", &Ciphertext::parse(&text)?, b"customer=42")?;
//! assert_eq!(plaintext.expose(), b"4111 1111 1111 1111");
//!
//! ring.rotate("payments")?; // new version encrypts, version 1 still decrypts
//! let moved = ring.rewrap("payments", &ciphertext, b"customer=42")?; // to version 2
//! # let _ = moved;
//!
//! // Persist: after every lifecycle change, store the key's record.
//! let record = ring.record("payments")?; // serde; wrapped material only
//! # let _ = record;
//! # Ok(()) }
//! ```
//!
//! # API at a glance (for the HTTP API, the CLI, the secrets store and the server's jobs)
//!
//! * Keys: [`KeyRing::create`] with [`CreateKeyOptions`] (type, usages, exportable, rotation
//!   period), [`KeyRing::metadata`], [`KeyRing::list`].
//! * Encryption: [`KeyRing::encrypt`] / [`KeyRing::decrypt`] (AEAD keys and RSA-OAEP keys),
//!   [`KeyRing::rewrap`] (never returns plaintext), [`KeyRing::generate_data_key`] (plaintext +
//!   wrapped, or wrapped only), [`KeyRing::derive`] (HKDF-SHA256 over a caller context).
//! * Signatures: [`KeyRing::sign`] / [`KeyRing::verify`]; MACs: [`KeyRing::hmac`] /
//!   [`KeyRing::verify_hmac`]. Verification returns `Ok(false)` for a wrong signature and an
//!   error only when the request itself is refused (unknown version, disabled key, ...).
//! * Batches: `encrypt_batch`, `decrypt_batch`, `rewrap_batch`, `sign_batch`, `verify_batch`,
//!   `hmac_batch`, `verify_hmac_batch`: the outer `Result` refuses the whole batch (key missing,
//!   disabled, usage not allowed), the inner one is per item.
//! * Lifecycle: [`KeyRing::rotate`], [`KeyRing::set_rotation_period`],
//!   [`KeyRing::keys_due_for_rotation`] and [`KeyRing::rotate_due`] (for a periodic job),
//!   [`KeyRing::set_min_decryption_version`], [`KeyRing::disable`] / [`KeyRing::enable`],
//!   [`KeyRing::schedule_deletion`] (7..=30 days, default 30) / [`KeyRing::cancel_deletion`],
//!   [`KeyRing::destroy_due`] (for a periodic job), [`KeyRing::revoke`],
//!   [`KeyRing::revoke_version`], [`KeyRing::make_exportable`], [`KeyRing::export`].
//! * Persistence: [`KeyRing::from_records`], [`KeyRing::load_record`] (apply another node's
//!   change), [`KeyRing::record`], [`KeyRing::records`], [`KeyRing::records_rewrapped_for`]
//!   (move to a new KEK). The ring does not write anything itself: the server stores the
//!   record after each change, and audits it.
//!
//! Time comes from a [`maos_core::Clock`], so tests move it to check rotation periods and
//! deletion windows. Every refusal is a typed [`CryptoError`] variant the HTTP layer can map
//! to a status code; none of them carries key material or plaintext.
//!
//! See `docs/keys.md` for the ciphertext format, the associated-data binding, the lifecycle
//! rules and the SoftHSM2 set-up.

pub mod error;
pub mod format;
pub mod kek;
pub mod keyring;
pub mod primitives;
pub mod record_auth;
pub mod secret;

pub use error::{CryptoError, KekError};
pub use format::{Ciphertext, Signature};
pub use kek::{FileKek, KekMechanism, KekProvider, Pkcs11Config, Pkcs11Kek};
pub use keyring::{
    CreateKeyOptions, DataKey, DecryptItem, DerivedKey, EncryptItem, ExportedKey, KeyMetadata,
    KeyRecord, KeyRing, KeyStatus, KeyType, KeyUsage, RotationOutcome, VerifyItem, VersionMetadata,
    VersionRecord,
};
pub use record_auth::RecordAuthenticator;
pub use secret::SecretBytes;
