//! The key ring: named keys with versions, their usages and lifecycle, and every operation on
//! them. See the crate documentation for the API at a glance.

mod types;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maos_core::Clock;

pub use types::{
    CreateKeyOptions, DataKey, DecryptItem, DerivedKey, EncryptItem, ExportedKey, KeyMetadata,
    KeyRecord, KeyStatus, KeyType, KeyUsage, RotationOutcome, VerifyItem, VersionMetadata,
    VersionRecord,
};

use crate::error::CryptoError;
use crate::format::{Ciphertext, Signature};
use crate::kek::KekProvider;
use crate::primitives::{
    self, AEAD_NONCE_LEN, AeadKey, HmacKey, RsaOaepKey, SigningKeyPair, verify_signature,
};
use crate::secret::SecretBytes;

/// Shortest scheduled-deletion window, in days.
pub const MIN_DELETION_WINDOW_DAYS: u32 = 7;
/// Longest scheduled-deletion window, in days; also the default.
pub const MAX_DELETION_WINDOW_DAYS: u32 = 30;
/// Shortest automatic rotation period.
pub const MIN_ROTATION_PERIOD: Duration = Duration::from_secs(3600);
/// Data keys and derived keys are 16 to 64 bytes.
pub const KEY_LEN_RANGE: std::ops::RangeInclusive<usize> = 16..=64;

const DAY_SECS: u64 = 24 * 3600;

// Domain separation of the byte strings bound into AEAD, OAEP labels, HKDF and KEK wraps.
const PURPOSE_ENCRYPT: &[u8] = b"maos/encrypt/v1";
const PURPOSE_DERIVE: &[u8] = b"maos/derive/v1";
const PURPOSE_MATERIAL: &[u8] = b"maos/key-material/v1";

/// `purpose || len(name) || name || version || len(type) || type || tail`, with 2-byte and
/// 1-byte big-endian lengths, so that no two (name, version, type) give the same prefix.
fn binding(purpose: &[u8], name: &str, version: u32, key_type: KeyType, tail: &[u8]) -> Vec<u8> {
    let type_name = key_type.as_str().as_bytes();
    let mut out =
        Vec::with_capacity(purpose.len() + 2 + name.len() + 4 + 1 + type_name.len() + tail.len());
    out.extend_from_slice(purpose);
    // Names are at most 128 bytes and type names short, so the casts cannot truncate.
    out.extend_from_slice(&(name.len() as u16).to_be_bytes());
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.push(type_name.len() as u8);
    out.extend_from_slice(type_name);
    out.extend_from_slice(tail);
    out
}

/// What the KEK wrap of one version binds: the version's identity and the key's usages.
fn material_context(record: &KeyRecord, version: u32) -> Vec<u8> {
    let usages: Vec<&str> = record.usages.iter().map(|u| u.as_str()).collect();
    binding(
        PURPOSE_MATERIAL,
        &record.name,
        version,
        record.key_type,
        usages.join(",").as_bytes(),
    )
}

fn validate_name(name: &str) -> Result<(), CryptoError> {
    let valid = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(())
    } else {
        Err(CryptoError::InvalidKeyName(name.to_owned()))
    }
}

fn normalize_usages(key_type: KeyType, usages: &[KeyUsage]) -> Result<Vec<KeyUsage>, CryptoError> {
    let mut usages = usages.to_vec();
    usages.sort();
    usages.dedup();
    if usages.is_empty() {
        return Err(CryptoError::NoUsages);
    }
    if let Some(usage) = usages
        .iter()
        .find(|u| !key_type.possible_usages().contains(u))
    {
        return Err(CryptoError::UsageNotSupported {
            key_type,
            usage: *usage,
        });
    }
    if key_type.rsa_bits().is_some() {
        let signs = usages
            .iter()
            .any(|u| matches!(u, KeyUsage::Sign | KeyUsage::Verify));
        let encrypts = usages
            .iter()
            .any(|u| matches!(u, KeyUsage::Encrypt | KeyUsage::Decrypt | KeyUsage::Wrap));
        if signs && encrypts {
            return Err(CryptoError::ConflictingUsages);
        }
    }
    Ok(usages)
}

fn rotation_secs(period: Option<Duration>) -> Result<Option<u64>, CryptoError> {
    match period {
        Some(period) if period < MIN_ROTATION_PERIOD => Err(CryptoError::InvalidRotationPeriod {
            seconds: period.as_secs(),
        }),
        Some(period) => Ok(Some(period.as_secs())),
        None => Ok(None),
    }
}

/// A version's material in usable form.
enum Operational {
    Aead(AeadKey),
    Signing(SigningKeyPair),
    RsaOaep(RsaOaepKey),
    Hmac(Box<HmacKey>),
}

struct VersionKey {
    material: SecretBytes,
    operational: Operational,
    public_key: Option<Vec<u8>>,
}

impl VersionKey {
    /// Builds the usable form of material of `key_type` for a key with `usages`.
    fn load(
        key_type: KeyType,
        usages: &[KeyUsage],
        material: SecretBytes,
    ) -> Result<Self, CryptoError> {
        let rsa_signs = usages
            .iter()
            .any(|u| matches!(u, KeyUsage::Sign | KeyUsage::Verify));
        let (operational, public_key) = if let Some(algorithm) = key_type.aead() {
            (
                Operational::Aead(AeadKey::new(algorithm, material.expose())?),
                None,
            )
        } else if key_type == KeyType::Hmac {
            if material.len() != 32 {
                return Err(CryptoError::InvalidKeyMaterial);
            }
            (
                Operational::Hmac(Box::new(HmacKey::new(material.expose()))),
                None,
            )
        } else if let (Some(bits), false) = (key_type.rsa_bits(), rsa_signs) {
            let key = RsaOaepKey::from_pkcs8(material.expose())?;
            if key.bits() != bits.bits() {
                return Err(CryptoError::InvalidKeyMaterial);
            }
            let public = key.public_key_der().to_vec();
            (Operational::RsaOaep(key), Some(public))
        } else if let Some(kind) = key_type.signing_kind() {
            let pair = SigningKeyPair::from_pkcs8(kind, material.expose())?;
            let public = pair.public_key();
            (Operational::Signing(pair), Some(public))
        } else {
            return Err(CryptoError::UnsupportedKeyType(key_type.to_string()));
        };
        Ok(Self {
            material,
            operational,
            public_key,
        })
    }

    /// Fresh material for a new version.
    fn generate(key_type: KeyType, usages: &[KeyUsage]) -> Result<Self, CryptoError> {
        let rsa_signs = usages
            .iter()
            .any(|u| matches!(u, KeyUsage::Sign | KeyUsage::Verify));
        let material = if key_type.aead().is_some() || key_type == KeyType::Hmac {
            primitives::random_secret(32)?
        } else if let (Some(bits), false) = (key_type.rsa_bits(), rsa_signs) {
            RsaOaepKey::generate(bits)?.1
        } else if let Some(kind) = key_type.signing_kind() {
            SigningKeyPair::generate(kind)?.1
        } else {
            return Err(CryptoError::UnsupportedKeyType(key_type.to_string()));
        };
        Self::load(key_type, usages, material)
    }
}

/// A key as held in memory: its record and the material of every usable version.
/// Entries are immutable; a change replaces the entry, so readers never lock for long.
#[derive(Clone)]
struct KeyEntry {
    record: KeyRecord,
    versions: BTreeMap<u32, Arc<VersionKey>>,
}

fn status_of(record: &KeyRecord, now: u64) -> KeyStatus {
    if record.destroyed_at.is_some() || record.deletion_at.is_some_and(|at| at <= now) {
        KeyStatus::Destroyed
    } else if record.revoked_at.is_some() {
        KeyStatus::Revoked
    } else if record.deletion_at.is_some() {
        KeyStatus::PendingDeletion
    } else if !record.enabled {
        KeyStatus::Disabled
    } else {
        KeyStatus::Enabled
    }
}

impl KeyEntry {
    fn name(&self) -> &str {
        &self.record.name
    }

    fn latest_version(&self) -> u32 {
        self.record
            .versions
            .iter()
            .map(|v| v.version)
            .max()
            .unwrap_or(0)
    }

    /// Refuses keys that are not enabled, naming why.
    fn ensure_enabled(&self, now: u64) -> Result<(), CryptoError> {
        let name = self.name().to_owned();
        match status_of(&self.record, now) {
            KeyStatus::Enabled => Ok(()),
            KeyStatus::Disabled => Err(CryptoError::KeyDisabled(name)),
            KeyStatus::PendingDeletion => Err(CryptoError::KeyPendingDeletion {
                name,
                delete_at: self.record.deletion_at.unwrap_or_default(),
            }),
            KeyStatus::Revoked => Err(CryptoError::KeyRevoked(name)),
            KeyStatus::Destroyed => Err(CryptoError::KeyDestroyed(name)),
        }
    }

    /// Refuses lifecycle changes to keys that are pending deletion, revoked or destroyed.
    fn ensure_changeable(&self, now: u64) -> Result<(), CryptoError> {
        match self.ensure_enabled(now) {
            Err(CryptoError::KeyDisabled(_)) => Ok(()),
            other => other,
        }
    }

    fn ensure_usage(&self, usage: KeyUsage) -> Result<(), CryptoError> {
        if self.record.usages.contains(&usage) {
            Ok(())
        } else {
            Err(CryptoError::UsageNotAllowed {
                name: self.name().to_owned(),
                usage,
            })
        }
    }

    fn latest(&self) -> Result<(u32, &Arc<VersionKey>), CryptoError> {
        let version = self.latest_version();
        let key = self
            .versions
            .get(&version)
            .ok_or_else(|| CryptoError::VersionRevoked {
                name: self.name().to_owned(),
                version,
            })?;
        Ok((version, key))
    }

    /// A version that may decrypt or verify: it exists, is not below the minimum decryption
    /// version and is not revoked.
    fn readable(&self, version: u32) -> Result<&Arc<VersionKey>, CryptoError> {
        let name = || self.name().to_owned();
        let record = self
            .record
            .versions
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| CryptoError::VersionNotFound {
                name: name(),
                version,
            })?;
        if version < self.record.min_decryption_version {
            return Err(CryptoError::VersionBelowMinimum {
                name: name(),
                version,
                minimum: self.record.min_decryption_version,
            });
        }
        if record.revoked_at.is_some() {
            return Err(CryptoError::VersionRevoked {
                name: name(),
                version,
            });
        }
        self.versions
            .get(&version)
            .ok_or_else(|| CryptoError::VersionRevoked {
                name: name(),
                version,
            })
    }

    fn metadata(&self, now: u64) -> KeyMetadata {
        let record = &self.record;
        let status = status_of(record, now);
        let latest_created = record
            .versions
            .iter()
            .max_by_key(|v| v.version)
            .map(|v| v.created_at);
        let next_rotation_at = match (status, record.rotation_period_secs, latest_created) {
            (KeyStatus::Enabled, Some(period), Some(created)) => {
                Some(created.saturating_add(period))
            }
            _ => None,
        };
        KeyMetadata {
            name: record.name.clone(),
            key_type: record.key_type,
            usages: record.usages.clone(),
            status,
            created_at: record.created_at,
            exportable: record.exportable,
            latest_version: self.latest_version(),
            min_decryption_version: record.min_decryption_version,
            rotation_period_secs: record.rotation_period_secs,
            next_rotation_at,
            deletion_at: record.deletion_at,
            revoked_at: record.revoked_at,
            destroyed_at: record.destroyed_at,
            kek: record.kek.clone(),
            versions: record
                .versions
                .iter()
                .map(|v| VersionMetadata {
                    version: v.version,
                    created_at: v.created_at,
                    revoked: v.revoked_at.is_some(),
                    public_key: v.public_key.clone(),
                })
                .collect(),
        }
    }

    // -- operations on one entry, shared by the single and batch forms --------------------------

    fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Ciphertext, CryptoError> {
        let (version, key) = self.latest()?;
        let context = binding(
            PURPOSE_ENCRYPT,
            self.name(),
            version,
            self.record.key_type,
            aad,
        );
        match &key.operational {
            Operational::Aead(aead) => {
                let mut nonce = [0u8; AEAD_NONCE_LEN];
                primitives::fill_random(&mut nonce)?;
                let mut payload =
                    Vec::with_capacity(AEAD_NONCE_LEN + plaintext.len() + primitives::AEAD_TAG_LEN);
                payload.extend_from_slice(&nonce);
                payload.extend_from_slice(plaintext);
                aead.seal_in_place_append_tag(&nonce, &context, &mut payload, AEAD_NONCE_LEN)?;
                Ok(Ciphertext::new(version, payload))
            }
            Operational::RsaOaep(rsa) => {
                Ok(Ciphertext::new(version, rsa.encrypt(plaintext, &context)?))
            }
            Operational::Signing(_) | Operational::Hmac(_) => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Encrypt,
            }),
        }
    }

    fn decrypt(&self, ciphertext: &Ciphertext, aad: &[u8]) -> Result<SecretBytes, CryptoError> {
        let version = ciphertext.version();
        let key = self.readable(version)?;
        let context = binding(
            PURPOSE_ENCRYPT,
            self.name(),
            version,
            self.record.key_type,
            aad,
        );
        match &key.operational {
            Operational::Aead(aead) => {
                let payload = ciphertext.as_bytes();
                if payload.len() < AEAD_NONCE_LEN + primitives::AEAD_TAG_LEN {
                    return Err(CryptoError::MalformedCiphertext(
                        "payload shorter than nonce and tag",
                    ));
                }
                let (nonce, sealed) = payload.split_at(AEAD_NONCE_LEN);
                aead.open(nonce, &context, sealed)
            }
            Operational::RsaOaep(rsa) => rsa.decrypt(ciphertext.as_bytes(), &context),
            Operational::Signing(_) | Operational::Hmac(_) => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Decrypt,
            }),
        }
    }

    fn sign(&self, message: &[u8]) -> Result<Signature, CryptoError> {
        let (version, key) = self.latest()?;
        match &key.operational {
            Operational::Signing(pair) => Ok(Signature::new(version, pair.sign(message)?)),
            _ => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Sign,
            }),
        }
    }

    fn verify(&self, message: &[u8], signature: &Signature) -> Result<bool, CryptoError> {
        let key = self.readable(signature.version())?;
        match (&key.operational, &key.public_key) {
            (Operational::Signing(pair), Some(public)) => Ok(verify_signature(
                pair.scheme(),
                public,
                message,
                signature.as_bytes(),
            )),
            _ => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Verify,
            }),
        }
    }

    fn hmac(&self, message: &[u8]) -> Result<Signature, CryptoError> {
        let (version, key) = self.latest()?;
        match &key.operational {
            Operational::Hmac(hmac) => Ok(Signature::new(version, hmac.sign(message).to_vec())),
            _ => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Hmac,
            }),
        }
    }

    fn verify_hmac(&self, message: &[u8], tag: &Signature) -> Result<bool, CryptoError> {
        let key = self.readable(tag.version())?;
        match &key.operational {
            Operational::Hmac(hmac) => Ok(hmac.verify(message, tag.as_bytes())),
            _ => Err(CryptoError::UsageNotSupported {
                key_type: self.record.key_type,
                usage: KeyUsage::Verify,
            }),
        }
    }
}

/// Named, versioned keys whose material is wrapped by a [`KekProvider`] at rest.
///
/// Every method takes `&self`; the ring is meant to be shared (`Arc<KeyRing>`) between request
/// handlers and background jobs. Reads take a short read lock to clone an `Arc` of the key and
/// run the cryptography outside it; lifecycle changes are serialised among themselves.
///
/// Changes are not persisted by the ring: after a lifecycle method returns, the caller stores
/// [`KeyRing::record`] (or all of [`KeyRing::records`]) in its database.
pub struct KeyRing {
    kek: Arc<dyn KekProvider>,
    clock: Arc<dyn Clock>,
    keys: RwLock<HashMap<String, Arc<KeyEntry>>>,
    changes: Mutex<()>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.keys.read().map(|keys| keys.len()).unwrap_or_default();
        f.debug_struct("KeyRing")
            .field("kek", &self.kek.describe())
            .field("keys", &count)
            .finish_non_exhaustive()
    }
}

fn poisoned() -> CryptoError {
    CryptoError::OperationFailed
}

impl KeyRing {
    /// An empty key ring.
    pub fn new(kek: Arc<dyn KekProvider>, clock: Arc<dyn Clock>) -> Self {
        Self {
            kek,
            clock,
            keys: RwLock::new(HashMap::new()),
            changes: Mutex::new(()),
        }
    }

    /// A key ring loaded from stored records; every version's material is unwrapped now, so a
    /// wrong KEK or a tampered record is reported at start-up.
    pub fn from_records(
        kek: Arc<dyn KekProvider>,
        clock: Arc<dyn Clock>,
        records: impl IntoIterator<Item = KeyRecord>,
    ) -> Result<Self, CryptoError> {
        let ring = Self::new(kek, clock);
        for record in records {
            ring.load_record(record)?;
        }
        Ok(ring)
    }

    /// Adds or replaces one key from its stored record (for example after another node changed
    /// it).
    pub fn load_record(&self, record: KeyRecord) -> Result<(), CryptoError> {
        let entry = self.entry_from_record(record)?;
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        keys.insert(entry.record.name.clone(), Arc::new(entry));
        Ok(())
    }

    fn entry_from_record(&self, mut record: KeyRecord) -> Result<KeyEntry, CryptoError> {
        validate_name(&record.name)?;
        let corrupt = |reason| CryptoError::CorruptRecord {
            name: record.name.clone(),
            reason,
        };
        let usages = normalize_usages(record.key_type, &record.usages)?;
        if usages != record.usages {
            return Err(corrupt(
                "usages are not sorted, unique and valid for the type",
            ));
        }
        let ascending = record
            .versions
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.version < b.version));
        if record.versions.is_empty()
            || !ascending
            || record.versions.first().is_some_and(|v| v.version == 0)
        {
            return Err(corrupt("versions are missing or out of order"));
        }
        let latest = record
            .versions
            .last()
            .map(|v| v.version)
            .unwrap_or_default();
        if record.min_decryption_version == 0 || record.min_decryption_version > latest {
            return Err(corrupt("minimum decryption version outside the versions"));
        }

        // A key whose deletion window passed while nobody ran the purge is destroyed on load.
        let now = self.now();
        if record.destroyed_at.is_none() && record.deletion_at.is_some_and(|at| at <= now) {
            record.destroyed_at = Some(now);
            for version in &mut record.versions {
                version.wrapped_material = None;
            }
        }

        let mut versions = BTreeMap::new();
        let live = record.destroyed_at.is_none() && record.revoked_at.is_none();
        for version in &record.versions {
            let (true, None, Some(wrapped)) = (live, version.revoked_at, &version.wrapped_material)
            else {
                if live && version.revoked_at.is_none() {
                    return Err(corrupt("a live version has no wrapped material"));
                }
                continue;
            };
            let wrapped = STANDARD
                .decode(wrapped)
                .map_err(|_| corrupt("wrapped material is not base64"))?;
            let material = self
                .kek
                .unwrap(&wrapped, &material_context(&record, version.version))?;
            let key = VersionKey::load(record.key_type, &record.usages, material)?;
            versions.insert(version.version, Arc::new(key));
        }
        Ok(KeyEntry { record, versions })
    }

    fn now(&self) -> u64 {
        self.clock
            .now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }

    fn snapshot(&self, name: &str) -> Result<Arc<KeyEntry>, CryptoError> {
        let keys = self.keys.read().map_err(|_| poisoned())?;
        keys.get(name)
            .cloned()
            .ok_or_else(|| CryptoError::KeyNotFound(name.to_owned()))
    }

    /// The key, if it is enabled and allows `usage`.
    fn usable(&self, name: &str, usage: KeyUsage) -> Result<Arc<KeyEntry>, CryptoError> {
        let entry = self.snapshot(name)?;
        entry.ensure_enabled(self.now())?;
        entry.ensure_usage(usage)?;
        Ok(entry)
    }

    fn lock_changes(&self) -> Result<MutexGuard<'_, ()>, CryptoError> {
        self.changes.lock().map_err(|_| poisoned())
    }

    fn replace(&self, entry: KeyEntry) -> Result<KeyMetadata, CryptoError> {
        let metadata = entry.metadata(self.now());
        let mut keys = self.keys.write().map_err(|_| poisoned())?;
        keys.insert(entry.record.name.clone(), Arc::new(entry));
        Ok(metadata)
    }

    /// Applies `change` to a copy of a changeable key and stores the copy.
    fn change(
        &self,
        name: &str,
        change: impl FnOnce(&mut KeyEntry, u64) -> Result<(), CryptoError>,
    ) -> Result<KeyMetadata, CryptoError> {
        let _guard = self.lock_changes()?;
        let now = self.now();
        let mut entry = KeyEntry::clone(&*self.snapshot(name)?);
        entry.ensure_changeable(now)?;
        change(&mut entry, now)?;
        self.replace(entry)
    }

    fn new_version(
        &self,
        record: &KeyRecord,
        version: u32,
        now: u64,
    ) -> Result<(VersionRecord, VersionKey), CryptoError> {
        let key = VersionKey::generate(record.key_type, &record.usages)?;
        let wrapped = self
            .kek
            .wrap(key.material.expose(), &material_context(record, version))?;
        let version_record = VersionRecord {
            version,
            created_at: now,
            revoked_at: None,
            public_key: key.public_key.as_deref().map(|p| STANDARD.encode(p)),
            wrapped_material: Some(STANDARD.encode(wrapped)),
        };
        Ok((version_record, key))
    }

    // -- keys and metadata ---------------------------------------------------------------------

    /// Creates key `name` with version 1.
    pub fn create(
        &self,
        name: &str,
        options: CreateKeyOptions,
    ) -> Result<KeyMetadata, CryptoError> {
        validate_name(name)?;
        let key_type = options.key_type;
        let usages = normalize_usages(
            key_type,
            options
                .usages
                .as_deref()
                .unwrap_or(key_type.default_usages()),
        )?;
        let rotation_period_secs = rotation_secs(options.rotation_period)?;

        let _guard = self.lock_changes()?;
        if self.snapshot(name).is_ok() {
            return Err(CryptoError::KeyExists(name.to_owned()));
        }
        let now = self.now();
        let mut record = KeyRecord {
            name: name.to_owned(),
            key_type,
            usages,
            created_at: now,
            exportable: options.exportable,
            enabled: true,
            min_decryption_version: 1,
            rotation_period_secs,
            deletion_at: None,
            revoked_at: None,
            destroyed_at: None,
            kek: self.kek.describe(),
            versions: Vec::new(),
        };
        let (version, key) = self.new_version(&record, 1, now)?;
        record.versions.push(version);
        let entry = KeyEntry {
            record,
            versions: BTreeMap::from([(1, Arc::new(key))]),
        };
        tracing::info!(key.name = %name, key.type = %key_type, "key created");
        self.replace(entry)
    }

    /// The metadata of one key.
    pub fn metadata(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        Ok(self.snapshot(name)?.metadata(self.now()))
    }

    /// The metadata of every key, by name.
    pub fn list(&self) -> Result<Vec<KeyMetadata>, CryptoError> {
        let now = self.now();
        let keys = self.keys.read().map_err(|_| poisoned())?;
        let mut all: Vec<KeyMetadata> = keys.values().map(|entry| entry.metadata(now)).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// The stored form of one key.
    pub fn record(&self, name: &str) -> Result<KeyRecord, CryptoError> {
        Ok(self.snapshot(name)?.record.clone())
    }

    /// The stored form of every key, by name.
    pub fn records(&self) -> Result<Vec<KeyRecord>, CryptoError> {
        let keys = self.keys.read().map_err(|_| poisoned())?;
        let mut all: Vec<KeyRecord> = keys.values().map(|entry| entry.record.clone()).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(all)
    }

    /// Every record with its live material wrapped again by `new_kek`, for moving to another
    /// root key (for example from a file to an HSM). The material goes from this ring's memory
    /// straight to `new_kek`; nothing is returned unwrapped. The caller stores the records and
    /// then loads them with [`KeyRing::from_records`] and the new provider.
    pub fn records_rewrapped_for(
        &self,
        new_kek: &dyn KekProvider,
    ) -> Result<Vec<KeyRecord>, CryptoError> {
        let _guard = self.lock_changes()?;
        let entries: Vec<Arc<KeyEntry>> = {
            let keys = self.keys.read().map_err(|_| poisoned())?;
            keys.values().cloned().collect()
        };
        let mut records = Vec::with_capacity(entries.len());
        for entry in entries {
            let mut record = entry.record.clone();
            record.kek = new_kek.describe();
            for version in &mut record.versions {
                if let Some(key) = entry.versions.get(&version.version) {
                    let context = material_context(&entry.record, version.version);
                    let wrapped = new_kek.wrap(key.material.expose(), &context)?;
                    version.wrapped_material = Some(STANDARD.encode(wrapped));
                }
            }
            records.push(record);
        }
        records.sort_by(|a, b| a.name.cmp(&b.name));
        tracing::info!(
            kek = %new_kek.describe(),
            keys = records.len(),
            "key material rewrapped for a new kek"
        );
        Ok(records)
    }

    // -- lifecycle ------------------------------------------------------------------------------

    /// Adds a new version; it encrypts and signs from now on, older versions still decrypt and
    /// verify (down to the minimum decryption version).
    pub fn rotate(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        let _guard = self.lock_changes()?;
        let now = self.now();
        let mut entry = KeyEntry::clone(&*self.snapshot(name)?);
        entry.ensure_changeable(now)?;
        let version = entry
            .latest_version()
            .checked_add(1)
            .ok_or(CryptoError::OperationFailed)?;
        let (version_record, key) = self.new_version(&entry.record, version, now)?;
        entry.record.versions.push(version_record);
        entry.versions.insert(version, Arc::new(key));
        tracing::info!(key.name = %name, key.version = version, "key rotated");
        self.replace(entry)
    }

    /// Names of the enabled keys whose automatic rotation is due.
    pub fn keys_due_for_rotation(&self) -> Result<Vec<String>, CryptoError> {
        let now = self.now();
        let mut due: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|m| m.next_rotation_at.is_some_and(|at| at <= now))
            .map(|m| m.name)
            .collect();
        due.sort();
        Ok(due)
    }

    /// Rotates every key whose rotation is due (for the server's periodic job); one outcome per
    /// key rotated or attempted.
    pub fn rotate_due(&self) -> Result<Vec<RotationOutcome>, CryptoError> {
        Ok(self
            .keys_due_for_rotation()?
            .into_iter()
            .map(|name| {
                let result = self.rotate(&name).map(|m| m.latest_version);
                RotationOutcome { name, result }
            })
            .collect())
    }

    /// Sets or clears the automatic rotation period (at least one hour).
    pub fn set_rotation_period(
        &self,
        name: &str,
        period: Option<Duration>,
    ) -> Result<KeyMetadata, CryptoError> {
        let seconds = rotation_secs(period)?;
        self.change(name, |entry, _| {
            entry.record.rotation_period_secs = seconds;
            Ok(())
        })
    }

    /// Refuses decryption and verification with versions below `version` (1..=latest).
    pub fn set_min_decryption_version(
        &self,
        name: &str,
        version: u32,
    ) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, _| {
            let latest = entry.latest_version();
            if version == 0 || version > latest {
                return Err(CryptoError::InvalidMinDecryptionVersion {
                    name: name.to_owned(),
                    requested: version,
                    latest,
                });
            }
            entry.record.min_decryption_version = version;
            Ok(())
        })
    }

    /// Refuses every cryptographic operation until [`KeyRing::enable`].
    pub fn disable(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, _| {
            entry.record.enabled = false;
            tracing::info!(key.name = %name, "key disabled");
            Ok(())
        })
    }

    pub fn enable(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, _| {
            entry.record.enabled = true;
            tracing::info!(key.name = %name, "key enabled");
            Ok(())
        })
    }

    /// Allows [`KeyRing::export`]. There is no way back.
    pub fn make_exportable(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, _| {
            entry.record.exportable = true;
            tracing::info!(key.name = %name, "key made exportable");
            Ok(())
        })
    }

    /// Schedules destruction after `window_days` (7..=30, default 30). Until then every
    /// operation on the key is refused and [`KeyRing::cancel_deletion`] restores it.
    pub fn schedule_deletion(
        &self,
        name: &str,
        window_days: Option<u32>,
    ) -> Result<KeyMetadata, CryptoError> {
        let days = window_days.unwrap_or(MAX_DELETION_WINDOW_DAYS);
        if !(MIN_DELETION_WINDOW_DAYS..=MAX_DELETION_WINDOW_DAYS).contains(&days) {
            return Err(CryptoError::InvalidDeletionWindow { days });
        }
        self.change(name, |entry, now| {
            let at = now.saturating_add(u64::from(days) * DAY_SECS);
            entry.record.deletion_at = Some(at);
            tracing::info!(key.name = %name, key.deletion_at = at, "key deletion scheduled");
            Ok(())
        })
    }

    /// Cancels a scheduled deletion whose window has not passed; the key returns to the state
    /// it had (enabled or disabled).
    pub fn cancel_deletion(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        let _guard = self.lock_changes()?;
        let now = self.now();
        let mut entry = KeyEntry::clone(&*self.snapshot(name)?);
        match status_of(&entry.record, now) {
            KeyStatus::PendingDeletion => {}
            KeyStatus::Destroyed => return Err(CryptoError::KeyDestroyed(name.to_owned())),
            KeyStatus::Revoked => return Err(CryptoError::KeyRevoked(name.to_owned())),
            KeyStatus::Enabled | KeyStatus::Disabled => {
                return Err(CryptoError::KeyNotPendingDeletion(name.to_owned()));
            }
        }
        entry.record.deletion_at = None;
        tracing::info!(key.name = %name, "key deletion cancelled");
        self.replace(entry)
    }

    /// Destroys the material of every key whose deletion window has passed and returns their
    /// names (for the server's periodic job, which then stores their records). The records stay
    /// as tombstones so the name is not reused by accident.
    pub fn destroy_due(&self) -> Result<Vec<String>, CryptoError> {
        let _guard = self.lock_changes()?;
        let now = self.now();
        let due: Vec<Arc<KeyEntry>> = {
            let keys = self.keys.read().map_err(|_| poisoned())?;
            keys.values()
                .filter(|e| {
                    e.record.destroyed_at.is_none()
                        && e.record.deletion_at.is_some_and(|at| at <= now)
                })
                .cloned()
                .collect()
        };
        let mut names = Vec::with_capacity(due.len());
        for entry in due {
            let mut record = entry.record.clone();
            record.destroyed_at = Some(now);
            for version in &mut record.versions {
                version.wrapped_material = None;
            }
            tracing::info!(key.name = %record.name, "key destroyed");
            names.push(record.name.clone());
            self.replace(KeyEntry {
                record,
                versions: BTreeMap::new(),
            })?;
        }
        names.sort();
        Ok(names)
    }

    /// Revokes the whole key for good: its material is destroyed and every operation refused.
    pub fn revoke(&self, name: &str) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, now| {
            entry.record.revoked_at = Some(now);
            for version in &mut entry.record.versions {
                version.wrapped_material = None;
            }
            entry.versions.clear();
            tracing::info!(key.name = %name, "key revoked");
            Ok(())
        })
    }

    /// Revokes one version for good (its material is destroyed). The latest version cannot be
    /// revoked: rotate first.
    pub fn revoke_version(&self, name: &str, version: u32) -> Result<KeyMetadata, CryptoError> {
        self.change(name, |entry, now| {
            if version == entry.latest_version() {
                return Err(CryptoError::CannotRevokeLatestVersion {
                    name: name.to_owned(),
                    version,
                });
            }
            let record = entry
                .record
                .versions
                .iter_mut()
                .find(|v| v.version == version)
                .ok_or_else(|| CryptoError::VersionNotFound {
                    name: name.to_owned(),
                    version,
                })?;
            if record.revoked_at.is_none() {
                record.revoked_at = Some(now);
            }
            record.wrapped_material = None;
            entry.versions.remove(&version);
            tracing::info!(key.name = %name, key.version = version, "key version revoked");
            Ok(())
        })
    }

    /// The material of an exportable key's version (latest if `None`): raw bytes for symmetric
    /// keys, PKCS#8 DER for asymmetric ones.
    pub fn export(&self, name: &str, version: Option<u32>) -> Result<ExportedKey, CryptoError> {
        let entry = self.snapshot(name)?;
        entry.ensure_enabled(self.now())?;
        if !entry.record.exportable {
            return Err(CryptoError::NotExportable(name.to_owned()));
        }
        let version = version.unwrap_or(entry.latest_version());
        let key = entry.readable(version)?;
        tracing::info!(key.name = %name, key.version = version, "key exported");
        Ok(ExportedKey {
            name: name.to_owned(),
            version,
            key_type: entry.record.key_type,
            material: key.material.clone(),
        })
    }

    // -- encryption ----------------------------------------------------------------------------

    /// Encrypts with the latest version. `aad` is bound into the ciphertext together with the
    /// key name, version and type; decryption must present the same `aad`.
    pub fn encrypt(
        &self,
        name: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Ciphertext, CryptoError> {
        self.usable(name, KeyUsage::Encrypt)?
            .encrypt(plaintext, aad)
    }

    /// Decrypts a ciphertext of any readable version of the key.
    pub fn decrypt(
        &self,
        name: &str,
        ciphertext: &Ciphertext,
        aad: &[u8],
    ) -> Result<SecretBytes, CryptoError> {
        self.usable(name, KeyUsage::Decrypt)?
            .decrypt(ciphertext, aad)
    }

    /// Re-encrypts a ciphertext under the latest version without returning the plaintext.
    pub fn rewrap(
        &self,
        name: &str,
        ciphertext: &Ciphertext,
        aad: &[u8],
    ) -> Result<Ciphertext, CryptoError> {
        let entry = self.usable(name, KeyUsage::Wrap)?;
        let plaintext = entry.decrypt(ciphertext, aad)?;
        entry.encrypt(plaintext.expose(), aad)
    }

    /// A fresh random data key of `len` bytes (16..=64) encrypted under the latest version, with
    /// its plaintext when `with_plaintext`. Unwrap it later with [`KeyRing::decrypt`] and the
    /// same `aad`.
    pub fn generate_data_key(
        &self,
        name: &str,
        len: usize,
        aad: &[u8],
        with_plaintext: bool,
    ) -> Result<DataKey, CryptoError> {
        if !KEY_LEN_RANGE.contains(&len) {
            return Err(CryptoError::InvalidLength {
                what: "data key",
                len,
                expected: "16..=64",
            });
        }
        let entry = self.usable(name, KeyUsage::Wrap)?;
        let plaintext = primitives::random_secret(len)?;
        let ciphertext = entry.encrypt(plaintext.expose(), aad)?;
        Ok(DataKey {
            version: ciphertext.version(),
            ciphertext,
            plaintext: with_plaintext.then_some(plaintext),
        })
    }

    /// Derives `len` bytes (16..=64) with HKDF-SHA256 from a version (latest if `None`) and the
    /// caller's `context`. The same key, version and context always give the same bytes.
    pub fn derive(
        &self,
        name: &str,
        version: Option<u32>,
        context: &[u8],
        len: usize,
    ) -> Result<DerivedKey, CryptoError> {
        if !KEY_LEN_RANGE.contains(&len) {
            return Err(CryptoError::InvalidLength {
                what: "derived key",
                len,
                expected: "16..=64",
            });
        }
        let entry = self.usable(name, KeyUsage::Derive)?;
        let version = version.unwrap_or(entry.latest_version());
        let key = entry.readable(version)?;
        let salt = binding(
            PURPOSE_DERIVE,
            entry.name(),
            version,
            entry.record.key_type,
            b"",
        );
        let derived = primitives::hkdf_sha256(key.material.expose(), &salt, context, len)?;
        Ok(DerivedKey {
            version,
            key: derived,
        })
    }

    // -- signatures and MACs -------------------------------------------------------------------

    /// Signs `message` with the latest version (Ed25519, ECDSA P-256 DER, RSA-PSS-SHA256).
    /// The message itself is signed, so anyone with the public key from the metadata can verify.
    pub fn sign(&self, name: &str, message: &[u8]) -> Result<Signature, CryptoError> {
        self.usable(name, KeyUsage::Sign)?.sign(message)
    }

    /// Whether `signature` is valid for `message` under the version it names.
    pub fn verify(
        &self,
        name: &str,
        message: &[u8],
        signature: &Signature,
    ) -> Result<bool, CryptoError> {
        self.usable(name, KeyUsage::Verify)?
            .verify(message, signature)
    }

    /// HMAC-SHA256 of `message` with the latest version.
    pub fn hmac(&self, name: &str, message: &[u8]) -> Result<Signature, CryptoError> {
        self.usable(name, KeyUsage::Hmac)?.hmac(message)
    }

    /// Whether `tag` is the HMAC of `message` under the version it names (constant time).
    pub fn verify_hmac(
        &self,
        name: &str,
        message: &[u8],
        tag: &Signature,
    ) -> Result<bool, CryptoError> {
        self.usable(name, KeyUsage::Verify)?
            .verify_hmac(message, tag)
    }

    // -- batches: the key is checked once, then one result per item ------------------------------

    pub fn encrypt_batch(
        &self,
        name: &str,
        items: &[EncryptItem<'_>],
    ) -> Result<Vec<Result<Ciphertext, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Encrypt)?;
        Ok(items
            .iter()
            .map(|item| entry.encrypt(item.plaintext, item.aad))
            .collect())
    }

    pub fn decrypt_batch(
        &self,
        name: &str,
        items: &[DecryptItem<'_>],
    ) -> Result<Vec<Result<SecretBytes, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Decrypt)?;
        Ok(items
            .iter()
            .map(|item| entry.decrypt(&Ciphertext::parse(item.ciphertext)?, item.aad))
            .collect())
    }

    pub fn rewrap_batch(
        &self,
        name: &str,
        items: &[DecryptItem<'_>],
    ) -> Result<Vec<Result<Ciphertext, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Wrap)?;
        Ok(items
            .iter()
            .map(|item| {
                let plaintext = entry.decrypt(&Ciphertext::parse(item.ciphertext)?, item.aad)?;
                entry.encrypt(plaintext.expose(), item.aad)
            })
            .collect())
    }

    pub fn sign_batch(
        &self,
        name: &str,
        messages: &[&[u8]],
    ) -> Result<Vec<Result<Signature, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Sign)?;
        Ok(messages.iter().map(|message| entry.sign(message)).collect())
    }

    pub fn verify_batch(
        &self,
        name: &str,
        items: &[VerifyItem<'_>],
    ) -> Result<Vec<Result<bool, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Verify)?;
        Ok(items
            .iter()
            .map(|item| entry.verify(item.message, &Signature::parse(item.signature)?))
            .collect())
    }

    pub fn hmac_batch(
        &self,
        name: &str,
        messages: &[&[u8]],
    ) -> Result<Vec<Result<Signature, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Hmac)?;
        Ok(messages.iter().map(|message| entry.hmac(message)).collect())
    }

    pub fn verify_hmac_batch(
        &self,
        name: &str,
        items: &[VerifyItem<'_>],
    ) -> Result<Vec<Result<bool, CryptoError>>, CryptoError> {
        let entry = self.usable(name, KeyUsage::Verify)?;
        Ok(items
            .iter()
            .map(|item| entry.verify_hmac(item.message, &Signature::parse(item.signature)?))
            .collect())
    }
}
