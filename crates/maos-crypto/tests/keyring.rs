#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The key ring's behaviour through its public API, with a real file KEK and a clock the tests
//! move.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use maos_core::Clock;
use maos_crypto::primitives::{self, SignatureScheme};
use maos_crypto::{
    Ciphertext, CreateKeyOptions, CryptoError, DecryptItem, EncryptItem, FileKek, KekMechanism,
    KeyRecord, KeyRing, KeyStatus, KeyType, KeyUsage, Signature, VerifyItem,
};

#[derive(Debug)]
struct ManualClock(Mutex<SystemTime>);

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )))
    }

    fn advance(&self, by: Duration) {
        *self.0.lock().unwrap() += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.lock().unwrap()
    }
}

const DAY: Duration = Duration::from_secs(24 * 3600);

struct Fixture {
    _dir: tempfile::TempDir,
    kek: Arc<FileKek>,
    clock: Arc<ManualClock>,
    ring: KeyRing,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let kek =
        Arc::new(FileKek::open_or_create(dir.path().join("kek"), KekMechanism::AesGcm).unwrap());
    let clock = ManualClock::new();
    let ring = KeyRing::new(kek.clone(), clock.clone());
    Fixture {
        _dir: dir,
        kek,
        clock,
        ring,
    }
}

fn relabel(ciphertext: &Ciphertext, version: u32) -> Ciphertext {
    Ciphertext::new(version, ciphertext.as_bytes().to_vec())
}

#[test]
fn encrypts_and_decrypts_with_associated_data() {
    let f = fixture();
    for (name, key_type) in [
        ("aes", KeyType::Aes256Gcm),
        ("chacha", KeyType::ChaCha20Poly1305),
    ] {
        let meta = f
            .ring
            .create(name, CreateKeyOptions::of_type(key_type))
            .unwrap();
        assert_eq!(meta.latest_version, 1);
        assert_eq!(
            meta.usages,
            vec![KeyUsage::Encrypt, KeyUsage::Decrypt, KeyUsage::Wrap]
        );

        let ct = f
            .ring
            .encrypt(name, b"attack at dawn", b"tenant=7")
            .unwrap();
        let text = ct.to_string();
        assert!(text.starts_with("maos:v1:"), "{text}");
        assert_eq!(ct.as_bytes().len(), 12 + 14 + 16);

        let parsed = Ciphertext::parse(&text).unwrap();
        assert_eq!(
            f.ring.decrypt(name, &parsed, b"tenant=7").unwrap().expose(),
            b"attack at dawn"
        );
        assert!(matches!(
            f.ring.decrypt(name, &parsed, b"tenant=8"),
            Err(CryptoError::DecryptionFailed)
        ));

        // A fresh nonce every time.
        let again = f
            .ring
            .encrypt(name, b"attack at dawn", b"tenant=7")
            .unwrap();
        assert_ne!(ct, again);
    }
}

#[test]
fn relabelled_version_fails_to_decrypt() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let v1 = f.ring.encrypt("k", b"one", b"").unwrap();
    f.ring.rotate("k").unwrap();
    let v2 = f.ring.encrypt("k", b"two", b"").unwrap();
    assert_eq!(v2.version(), 2);

    assert!(matches!(
        f.ring.decrypt("k", &relabel(&v2, 1), b""),
        Err(CryptoError::DecryptionFailed)
    ));
    assert!(matches!(
        f.ring.decrypt("k", &relabel(&v1, 2), b""),
        Err(CryptoError::DecryptionFailed)
    ));
    assert!(matches!(
        f.ring.decrypt("k", &relabel(&v1, 3), b""),
        Err(CryptoError::VersionNotFound { version: 3, .. })
    ));
    assert_eq!(f.ring.decrypt("k", &v1, b"").unwrap().expose(), b"one");
    assert_eq!(f.ring.decrypt("k", &v2, b"").unwrap().expose(), b"two");
}

#[test]
fn ciphertext_moved_to_another_key_fails() {
    let f = fixture();
    f.ring.create("a", CreateKeyOptions::default()).unwrap();
    f.ring.create("b", CreateKeyOptions::default()).unwrap();
    f.ring
        .create("c", CreateKeyOptions::of_type(KeyType::ChaCha20Poly1305))
        .unwrap();
    let ct = f.ring.encrypt("a", b"secret", b"").unwrap();
    assert!(matches!(
        f.ring.decrypt("b", &ct, b""),
        Err(CryptoError::DecryptionFailed)
    ));
    assert!(matches!(
        f.ring.decrypt("c", &ct, b""),
        Err(CryptoError::DecryptionFailed)
    ));
    assert!(matches!(
        f.ring.decrypt("missing", &ct, b""),
        Err(CryptoError::KeyNotFound(_))
    ));
}

#[test]
fn rotation_and_minimum_decryption_version() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let v1 = f.ring.encrypt("k", b"old", b"ctx").unwrap();
    let meta = f.ring.rotate("k").unwrap();
    assert_eq!(meta.latest_version, 2);
    assert_eq!(f.ring.encrypt("k", b"new", b"ctx").unwrap().version(), 2);
    assert_eq!(f.ring.decrypt("k", &v1, b"ctx").unwrap().expose(), b"old");

    // Rewrap moves the old ciphertext to the latest version without showing the plaintext.
    let rewrapped = f.ring.rewrap("k", &v1, b"ctx").unwrap();
    assert_eq!(rewrapped.version(), 2);

    assert!(matches!(
        f.ring.set_min_decryption_version("k", 3),
        Err(CryptoError::InvalidMinDecryptionVersion {
            requested: 3,
            latest: 2,
            ..
        })
    ));
    f.ring.set_min_decryption_version("k", 2).unwrap();
    assert!(matches!(
        f.ring.decrypt("k", &v1, b"ctx"),
        Err(CryptoError::VersionBelowMinimum {
            version: 1,
            minimum: 2,
            ..
        })
    ));
    assert!(matches!(
        f.ring.rewrap("k", &v1, b"ctx"),
        Err(CryptoError::VersionBelowMinimum { .. })
    ));
    assert_eq!(
        f.ring.decrypt("k", &rewrapped, b"ctx").unwrap().expose(),
        b"old"
    );
}

#[test]
fn automatic_rotation_is_due_after_the_period() {
    let f = fixture();
    let options = CreateKeyOptions {
        rotation_period: Some(DAY),
        ..CreateKeyOptions::default()
    };
    f.ring.create("auto", options).unwrap();
    f.ring
        .create("manual", CreateKeyOptions::default())
        .unwrap();
    assert!(matches!(
        f.ring
            .set_rotation_period("manual", Some(Duration::from_secs(60))),
        Err(CryptoError::InvalidRotationPeriod { seconds: 60 })
    ));

    f.clock.advance(DAY - Duration::from_secs(1));
    assert!(f.ring.keys_due_for_rotation().unwrap().is_empty());
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(
        f.ring.keys_due_for_rotation().unwrap(),
        vec!["auto".to_owned()]
    );

    let outcomes = f.ring.rotate_due().unwrap();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0].name, "auto");
    assert_eq!(*outcomes[0].result.as_ref().unwrap(), 2);
    assert!(f.ring.keys_due_for_rotation().unwrap().is_empty());
    let meta = f.ring.metadata("auto").unwrap();
    assert_eq!(
        meta.next_rotation_at,
        Some(meta.versions[1].created_at + DAY.as_secs())
    );

    // A disabled key is not rotated by the job.
    f.ring.disable("auto").unwrap();
    f.clock.advance(DAY * 2);
    assert!(f.ring.keys_due_for_rotation().unwrap().is_empty());
}

#[test]
fn usages_are_enforced() {
    let f = fixture();
    f.ring
        .create(
            "enc-only",
            CreateKeyOptions::default().with_usages(&[KeyUsage::Encrypt]),
        )
        .unwrap();
    let ct = f.ring.encrypt("enc-only", b"x", b"").unwrap();
    assert!(matches!(
        f.ring.decrypt("enc-only", &ct, b""),
        Err(CryptoError::UsageNotAllowed {
            usage: KeyUsage::Decrypt,
            ..
        })
    ));
    assert!(matches!(
        f.ring.generate_data_key("enc-only", 32, b"", true),
        Err(CryptoError::UsageNotAllowed {
            usage: KeyUsage::Wrap,
            ..
        })
    ));
    assert!(matches!(
        f.ring.derive("enc-only", None, b"ctx", 32),
        Err(CryptoError::UsageNotAllowed {
            usage: KeyUsage::Derive,
            ..
        })
    ));

    assert!(matches!(
        f.ring.create(
            "bad",
            CreateKeyOptions::default().with_usages(&[KeyUsage::Sign])
        ),
        Err(CryptoError::UsageNotSupported {
            key_type: KeyType::Aes256Gcm,
            usage: KeyUsage::Sign
        })
    ));
    assert!(matches!(
        f.ring.create(
            "rsa",
            CreateKeyOptions::of_type(KeyType::Rsa2048)
                .with_usages(&[KeyUsage::Sign, KeyUsage::Decrypt])
        ),
        Err(CryptoError::ConflictingUsages)
    ));
    assert!(matches!(
        f.ring
            .create("none", CreateKeyOptions::default().with_usages(&[])),
        Err(CryptoError::NoUsages)
    ));
    assert!(matches!(
        f.ring.create("bad name!", CreateKeyOptions::default()),
        Err(CryptoError::InvalidKeyName(_))
    ));

    f.ring
        .create("ed", CreateKeyOptions::of_type(KeyType::Ed25519))
        .unwrap();
    assert!(matches!(
        f.ring.encrypt("ed", b"x", b""),
        Err(CryptoError::UsageNotAllowed {
            usage: KeyUsage::Encrypt,
            ..
        })
    ));
    assert!(matches!(
        f.ring.create("ed", CreateKeyOptions::default()),
        Err(CryptoError::KeyExists(_))
    ));
}

#[test]
fn disable_and_enable() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let ct = f.ring.encrypt("k", b"x", b"").unwrap();
    assert_eq!(f.ring.disable("k").unwrap().status, KeyStatus::Disabled);
    assert!(matches!(
        f.ring.encrypt("k", b"x", b""),
        Err(CryptoError::KeyDisabled(_))
    ));
    assert!(matches!(
        f.ring.decrypt("k", &ct, b""),
        Err(CryptoError::KeyDisabled(_))
    ));
    assert_eq!(f.ring.enable("k").unwrap().status, KeyStatus::Enabled);
    assert_eq!(f.ring.decrypt("k", &ct, b"").unwrap().expose(), b"x");
}

#[test]
fn scheduled_deletion_window_cancellation_and_destruction() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let ct = f.ring.encrypt("k", b"x", b"").unwrap();

    for days in [0, 6, 31] {
        assert!(matches!(
            f.ring.schedule_deletion("k", Some(days)),
            Err(CryptoError::InvalidDeletionWindow { .. })
        ));
    }
    let meta = f.ring.schedule_deletion("k", None).unwrap();
    assert_eq!(meta.status, KeyStatus::PendingDeletion);
    assert_eq!(meta.deletion_at, Some(meta.created_at + 30 * DAY.as_secs()));

    // During the window every operation is refused, metadata still reads.
    let pending =
        |r: Result<_, CryptoError>| matches!(r, Err(CryptoError::KeyPendingDeletion { .. }));
    assert!(pending(f.ring.encrypt("k", b"x", b"").map(drop)));
    assert!(pending(f.ring.decrypt("k", &ct, b"").map(drop)));
    assert!(pending(f.ring.rotate("k").map(drop)));
    assert!(pending(f.ring.enable("k").map(drop)));
    assert!(pending(f.ring.revoke("k").map(drop)));
    assert!(pending(
        f.ring.generate_data_key("k", 32, b"", false).map(drop)
    ));

    f.clock.advance(DAY * 29);
    assert_eq!(
        f.ring.cancel_deletion("k").unwrap().status,
        KeyStatus::Enabled
    );
    assert_eq!(f.ring.decrypt("k", &ct, b"").unwrap().expose(), b"x");
    assert!(matches!(
        f.ring.cancel_deletion("k"),
        Err(CryptoError::KeyNotPendingDeletion(_))
    ));

    // A disabled key returns to disabled when the deletion is cancelled.
    f.ring.disable("k").unwrap();
    f.ring.schedule_deletion("k", Some(7)).unwrap();
    assert_eq!(
        f.ring.cancel_deletion("k").unwrap().status,
        KeyStatus::Disabled
    );
    f.ring.enable("k").unwrap();

    f.ring.schedule_deletion("k", Some(7)).unwrap();
    f.clock.advance(DAY * 7);
    assert!(matches!(
        f.ring.decrypt("k", &ct, b""),
        Err(CryptoError::KeyDestroyed(_))
    ));
    assert!(matches!(
        f.ring.cancel_deletion("k"),
        Err(CryptoError::KeyDestroyed(_))
    ));
    assert_eq!(f.ring.destroy_due().unwrap(), vec!["k".to_owned()]);
    assert!(f.ring.destroy_due().unwrap().is_empty());

    let record = f.ring.record("k").unwrap();
    assert!(record.destroyed_at.is_some());
    assert!(record.versions.iter().all(|v| v.wrapped_material.is_none()));
    assert_eq!(f.ring.metadata("k").unwrap().status, KeyStatus::Destroyed);

    // The tombstone loads, and the name stays taken.
    let ring = KeyRing::from_records(f.kek.clone(), f.clock.clone(), [record]).unwrap();
    assert!(matches!(
        ring.decrypt("k", &ct, b""),
        Err(CryptoError::KeyDestroyed(_))
    ));
    assert!(matches!(
        ring.create("k", CreateKeyOptions::default()),
        Err(CryptoError::KeyExists(_))
    ));
}

#[test]
fn a_record_past_its_window_is_destroyed_on_load() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    f.ring.schedule_deletion("k", Some(7)).unwrap();
    let record = f.ring.record("k").unwrap();
    f.clock.advance(DAY * 8);
    let ring = KeyRing::from_records(f.kek.clone(), f.clock.clone(), [record]).unwrap();
    let loaded = ring.record("k").unwrap();
    assert!(loaded.destroyed_at.is_some());
    assert!(loaded.versions.iter().all(|v| v.wrapped_material.is_none()));
}

#[test]
fn revocation_of_a_version_and_of_a_key_is_permanent() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let v1 = f.ring.encrypt("k", b"one", b"").unwrap();
    assert!(matches!(
        f.ring.revoke_version("k", 1),
        Err(CryptoError::CannotRevokeLatestVersion { version: 1, .. })
    ));
    f.ring.rotate("k").unwrap();
    let v2 = f.ring.encrypt("k", b"two", b"").unwrap();
    let meta = f.ring.revoke_version("k", 1).unwrap();
    assert!(meta.versions[0].revoked);
    assert!(matches!(
        f.ring.decrypt("k", &v1, b""),
        Err(CryptoError::VersionRevoked { version: 1, .. })
    ));
    assert!(
        f.ring.record("k").unwrap().versions[0]
            .wrapped_material
            .is_none()
    );
    f.ring.set_min_decryption_version("k", 1).unwrap();
    assert!(matches!(
        f.ring.decrypt("k", &v1, b""),
        Err(CryptoError::VersionRevoked { .. })
    ));
    assert_eq!(f.ring.decrypt("k", &v2, b"").unwrap().expose(), b"two");

    // Survives a reload.
    let ring =
        KeyRing::from_records(f.kek.clone(), f.clock.clone(), f.ring.records().unwrap()).unwrap();
    assert!(matches!(
        ring.decrypt("k", &v1, b""),
        Err(CryptoError::VersionRevoked { .. })
    ));

    assert_eq!(f.ring.revoke("k").unwrap().status, KeyStatus::Revoked);
    assert!(matches!(
        f.ring.decrypt("k", &v2, b""),
        Err(CryptoError::KeyRevoked(_))
    ));
    assert!(matches!(
        f.ring.enable("k"),
        Err(CryptoError::KeyRevoked(_))
    ));
    assert!(matches!(
        f.ring.rotate("k"),
        Err(CryptoError::KeyRevoked(_))
    ));
    assert!(
        f.ring
            .record("k")
            .unwrap()
            .versions
            .iter()
            .all(|v| v.wrapped_material.is_none())
    );
}

#[test]
fn exportable_turns_on_and_never_off() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    assert!(matches!(
        f.ring.export("k", None),
        Err(CryptoError::NotExportable(_))
    ));
    assert!(f.ring.make_exportable("k").unwrap().exportable);
    let exported = f.ring.export("k", None).unwrap();
    assert_eq!(exported.material.len(), 32);
    assert_eq!(format!("{:?}", exported.material), "[redacted]");

    // The exported bytes are the version's material: a ring ciphertext opens with them and the
    // associated data laid out as docs/keys.md describes.
    let ct = f.ring.encrypt("k", b"hello", b"aad").unwrap();
    let mut aad = b"maos/encrypt/v1".to_vec();
    aad.extend_from_slice(&1u16.to_be_bytes());
    aad.extend_from_slice(b"k");
    aad.extend_from_slice(&1u32.to_be_bytes());
    aad.push(10);
    aad.extend_from_slice(b"aes256-gcm");
    aad.extend_from_slice(b"aad");
    let (nonce, sealed) = ct.as_bytes().split_at(12);
    let opened = primitives::aead_open(
        primitives::AeadAlgorithm::Aes256Gcm,
        exported.material.expose(),
        nonce,
        &aad,
        sealed,
    )
    .unwrap();
    assert_eq!(opened.expose(), b"hello");

    // Later changes keep the flag on; the API has no way to turn it off.
    f.ring.rotate("k").unwrap();
    assert!(f.ring.metadata("k").unwrap().exportable);
}

#[test]
fn records_persist_only_wrapped_material_and_reload() {
    let f = fixture();
    f.ring.create("aes", CreateKeyOptions::default()).unwrap();
    f.ring
        .create("ed", CreateKeyOptions::of_type(KeyType::Ed25519))
        .unwrap();
    f.ring
        .create("mac", CreateKeyOptions::of_type(KeyType::Hmac))
        .unwrap();
    f.ring.make_exportable("aes").unwrap();
    f.ring.rotate("aes").unwrap();
    let ct = f.ring.encrypt("aes", b"persisted", b"").unwrap();
    let sig = f.ring.sign("ed", b"msg").unwrap();
    let tag = f.ring.hmac("mac", b"msg").unwrap();

    let json = serde_json::to_string(&f.ring.records().unwrap()).unwrap();
    for version in [1, 2] {
        let material = f.ring.export("aes", Some(version)).unwrap().material;
        let b64 = base64_of(material.expose());
        assert!(
            !json.contains(&b64),
            "plaintext material in the stored records"
        );
        assert!(!json.contains(&hex::encode(material.expose())));
    }

    let records: Vec<KeyRecord> = serde_json::from_str(&json).unwrap();
    let ring = KeyRing::from_records(f.kek.clone(), f.clock.clone(), records.clone()).unwrap();
    assert_eq!(
        ring.decrypt("aes", &ct, b"").unwrap().expose(),
        b"persisted"
    );
    assert!(ring.verify("ed", b"msg", &sig).unwrap());
    assert!(ring.verify_hmac("mac", b"msg", &tag).unwrap());
    assert_eq!(ring.records().unwrap(), records);

    // Another KEK cannot load them.
    let dir = tempfile::tempdir().unwrap();
    let other =
        Arc::new(FileKek::open_or_create(dir.path().join("kek"), KekMechanism::AesGcm).unwrap());
    assert!(matches!(
        KeyRing::from_records(other, f.clock.clone(), records.clone()),
        Err(CryptoError::Kek(_))
    ));

    // A record edited to widen its usages fails to load: the usages are bound into the wrap.
    let mut widened = records.iter().find(|r| r.name == "ed").unwrap().clone();
    widened.usages = vec![KeyUsage::Sign];
    assert!(KeyRing::from_records(f.kek.clone(), f.clock.clone(), [widened]).is_err());

    // Material moved from one record to another fails too.
    let mut swapped = records.iter().find(|r| r.name == "aes").unwrap().clone();
    swapped.versions[0].wrapped_material = swapped.versions[1].wrapped_material.clone();
    assert!(KeyRing::from_records(f.kek.clone(), f.clock.clone(), [swapped]).is_err());
}

fn base64_of(bytes: &[u8]) -> String {
    Ciphertext::new(1, bytes.to_vec())
        .to_string()
        .trim_start_matches("maos:v1:")
        .to_owned()
}

#[test]
fn data_keys_for_envelope_encryption() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let with = f
        .ring
        .generate_data_key("k", 32, b"object=1", true)
        .unwrap();
    let plaintext = with.plaintext.unwrap();
    assert_eq!(plaintext.len(), 32);
    assert_eq!(
        f.ring.decrypt("k", &with.ciphertext, b"object=1").unwrap(),
        plaintext
    );

    let wrapped_only = f.ring.generate_data_key("k", 16, b"", false).unwrap();
    assert!(wrapped_only.plaintext.is_none());
    assert_eq!(
        f.ring
            .decrypt("k", &wrapped_only.ciphertext, b"")
            .unwrap()
            .len(),
        16
    );

    for len in [0, 8, 65] {
        assert!(matches!(
            f.ring.generate_data_key("k", len, b"", true),
            Err(CryptoError::InvalidLength { .. })
        ));
    }
}

#[test]
fn derived_keys_are_deterministic_per_version_and_context() {
    let f = fixture();
    let usages = [KeyUsage::Encrypt, KeyUsage::Decrypt, KeyUsage::Derive];
    f.ring
        .create("k", CreateKeyOptions::default().with_usages(&usages))
        .unwrap();
    let a = f.ring.derive("k", None, b"tenant-1", 32).unwrap();
    let b = f.ring.derive("k", None, b"tenant-1", 32).unwrap();
    let c = f.ring.derive("k", None, b"tenant-2", 32).unwrap();
    assert_eq!(a.key, b.key);
    assert_ne!(a.key, c.key);
    f.ring.rotate("k").unwrap();
    let d = f.ring.derive("k", None, b"tenant-1", 32).unwrap();
    assert_eq!(d.version, 2);
    assert_ne!(a.key, d.key);
    assert_eq!(
        f.ring.derive("k", Some(1), b"tenant-1", 32).unwrap().key,
        a.key
    );

    f.ring
        .create(
            "mac",
            CreateKeyOptions::of_type(KeyType::Hmac).with_usages(&[KeyUsage::Derive]),
        )
        .unwrap();
    assert_eq!(f.ring.derive("mac", None, b"x", 64).unwrap().key.len(), 64);
}

#[test]
fn signatures_with_every_signing_type() {
    let f = fixture();
    for (name, key_type, scheme) in [
        ("ed", KeyType::Ed25519, SignatureScheme::Ed25519),
        (
            "ec",
            KeyType::EcdsaP256,
            SignatureScheme::EcdsaP256Sha256Der,
        ),
        ("rsa", KeyType::Rsa2048, SignatureScheme::RsaPssSha256),
    ] {
        f.ring
            .create(name, CreateKeyOptions::of_type(key_type))
            .unwrap();
        let sig = f.ring.sign(name, b"release 1.0").unwrap();
        assert!(sig.to_string().starts_with("maos:v1:"));
        assert!(f.ring.verify(name, b"release 1.0", &sig).unwrap());
        assert!(!f.ring.verify(name, b"release 1.1", &sig).unwrap());

        // The public key in the metadata verifies outside the ring.
        let meta = f.ring.metadata(name).unwrap();
        let public = base64_decode(meta.versions[0].public_key.as_ref().unwrap());
        assert!(primitives::verify_signature(
            scheme,
            &public,
            b"release 1.0",
            sig.as_bytes()
        ));

        // Old versions verify after rotation; relabelling the version does not.
        f.ring.rotate(name).unwrap();
        assert!(f.ring.verify(name, b"release 1.0", &sig).unwrap());
        let relabelled = Signature::new(2, sig.as_bytes().to_vec());
        assert!(!f.ring.verify(name, b"release 1.0", &relabelled).unwrap());
        assert_eq!(f.ring.sign(name, b"x").unwrap().version(), 2);
        assert!(matches!(
            f.ring.hmac(name, b"x"),
            Err(CryptoError::UsageNotAllowed {
                usage: KeyUsage::Hmac,
                ..
            })
        ));
    }
}

#[test]
fn larger_rsa_keys_sign_and_encrypt() {
    let f = fixture();
    f.ring
        .create("rsa3072", CreateKeyOptions::of_type(KeyType::Rsa3072))
        .unwrap();
    let sig = f.ring.sign("rsa3072", b"m").unwrap();
    assert_eq!(sig.as_bytes().len(), 384);
    assert!(f.ring.verify("rsa3072", b"m", &sig).unwrap());

    let usages = [KeyUsage::Encrypt, KeyUsage::Decrypt, KeyUsage::Wrap];
    f.ring
        .create(
            "rsa4096",
            CreateKeyOptions::of_type(KeyType::Rsa4096).with_usages(&usages),
        )
        .unwrap();
    let ct = f.ring.encrypt("rsa4096", b"short secret", b"aad").unwrap();
    assert_eq!(ct.as_bytes().len(), 512);
    assert_eq!(
        f.ring.decrypt("rsa4096", &ct, b"aad").unwrap().expose(),
        b"short secret"
    );
    assert!(matches!(
        f.ring.decrypt("rsa4096", &ct, b"other"),
        Err(CryptoError::DecryptionFailed)
    ));
    let dk = f.ring.generate_data_key("rsa4096", 32, b"", true).unwrap();
    assert_eq!(
        f.ring.decrypt("rsa4096", &dk.ciphertext, b"").unwrap(),
        dk.plaintext.unwrap()
    );
    assert!(matches!(
        f.ring.encrypt("rsa4096", &[0u8; 1000], b""),
        Err(CryptoError::InvalidLength { .. })
    ));
}

#[test]
fn rsa_oaep_binds_key_and_version() {
    let f = fixture();
    let usages = [KeyUsage::Encrypt, KeyUsage::Decrypt, KeyUsage::Wrap];
    f.ring
        .create(
            "r",
            CreateKeyOptions::of_type(KeyType::Rsa2048).with_usages(&usages),
        )
        .unwrap();
    let v1 = f.ring.encrypt("r", b"m", b"").unwrap();
    f.ring.rotate("r").unwrap();
    assert!(matches!(
        f.ring.decrypt("r", &relabel(&v1, 2), b""),
        Err(CryptoError::DecryptionFailed)
    ));
    let rewrapped = f.ring.rewrap("r", &v1, b"").unwrap();
    assert_eq!(rewrapped.version(), 2);
    assert_eq!(f.ring.decrypt("r", &rewrapped, b"").unwrap().expose(), b"m");
}

#[test]
fn hmac_and_verify() {
    let f = fixture();
    f.ring
        .create("mac", CreateKeyOptions::of_type(KeyType::Hmac))
        .unwrap();
    let tag = f.ring.hmac("mac", b"payload").unwrap();
    assert_eq!(tag.as_bytes().len(), 32);
    assert!(f.ring.verify_hmac("mac", b"payload", &tag).unwrap());
    assert!(!f.ring.verify_hmac("mac", b"payloaf", &tag).unwrap());
    let truncated = Signature::new(1, tag.as_bytes()[..16].to_vec());
    assert!(!f.ring.verify_hmac("mac", b"payload", &truncated).unwrap());
    f.ring.rotate("mac").unwrap();
    assert!(f.ring.verify_hmac("mac", b"payload", &tag).unwrap());
    assert_ne!(
        f.ring.hmac("mac", b"payload").unwrap().as_bytes(),
        tag.as_bytes()
    );
}

#[test]
fn batches_give_one_result_per_item() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    let items = [
        EncryptItem {
            plaintext: b"a",
            aad: b"1",
        },
        EncryptItem {
            plaintext: b"b",
            aad: b"2",
        },
    ];
    let cts: Vec<String> = f
        .ring
        .encrypt_batch("k", &items)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().to_string())
        .collect();

    let decrypt = [
        DecryptItem {
            ciphertext: &cts[0],
            aad: b"1",
        },
        DecryptItem {
            ciphertext: &cts[1],
            aad: b"wrong",
        },
        DecryptItem {
            ciphertext: "not a ciphertext",
            aad: b"",
        },
    ];
    let results = f.ring.decrypt_batch("k", &decrypt).unwrap();
    assert_eq!(results[0].as_ref().unwrap().expose(), b"a");
    assert!(matches!(results[1], Err(CryptoError::DecryptionFailed)));
    assert!(matches!(
        results[2],
        Err(CryptoError::MalformedCiphertext(_))
    ));

    f.ring.rotate("k").unwrap();
    let rewrapped = f.ring.rewrap_batch("k", &decrypt[..2]).unwrap();
    assert_eq!(rewrapped[0].as_ref().unwrap().version(), 2);
    assert!(rewrapped[1].is_err());

    // A key-level refusal is one error for the whole batch.
    f.ring.disable("k").unwrap();
    assert!(matches!(
        f.ring.encrypt_batch("k", &items),
        Err(CryptoError::KeyDisabled(_))
    ));

    f.ring
        .create("ed", CreateKeyOptions::of_type(KeyType::Ed25519))
        .unwrap();
    let messages: [&[u8]; 2] = [b"x", b"y"];
    let sigs: Vec<String> = f
        .ring
        .sign_batch("ed", &messages)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().to_string())
        .collect();
    let verify = [
        VerifyItem {
            message: b"x",
            signature: &sigs[0],
        },
        VerifyItem {
            message: b"x",
            signature: &sigs[1],
        },
        VerifyItem {
            message: b"x",
            signature: "maos:v9:AAAA",
        },
    ];
    let results = f.ring.verify_batch("ed", &verify).unwrap();
    assert!(*results[0].as_ref().unwrap());
    assert!(!*results[1].as_ref().unwrap());
    assert!(matches!(
        results[2],
        Err(CryptoError::VersionNotFound { version: 9, .. })
    ));

    f.ring
        .create("mac", CreateKeyOptions::of_type(KeyType::Hmac))
        .unwrap();
    let tags: Vec<String> = f
        .ring
        .hmac_batch("mac", &messages)
        .unwrap()
        .into_iter()
        .map(|r| r.unwrap().to_string())
        .collect();
    let verify = [VerifyItem {
        message: b"y",
        signature: &tags[1],
    }];
    assert!(
        *f.ring.verify_hmac_batch("mac", &verify).unwrap()[0]
            .as_ref()
            .unwrap()
    );
}

#[test]
fn nothing_secret_in_debug_output() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    f.ring.make_exportable("k").unwrap();
    let material = f.ring.export("k", None).unwrap().material;
    let hex_material = hex::encode(material.expose());
    let debug = format!(
        "{:?} {:?} {:?}",
        f.ring,
        f.kek,
        f.ring.export("k", None).unwrap()
    );
    assert!(!debug.contains(&hex_material));
    assert!(debug.contains("[redacted]"));
    let plaintext = f
        .ring
        .decrypt("k", &f.ring.encrypt("k", b"top secret", b"").unwrap(), b"")
        .unwrap();
    assert_eq!(format!("{plaintext:?}"), "[redacted]");
}

#[test]
fn kwp_file_kek_works_for_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let kek = Arc::new(
        FileKek::open_or_create(dir.path().join("kek"), KekMechanism::AesKeyWrapPad).unwrap(),
    );
    let clock = ManualClock::new();
    let ring = KeyRing::new(kek.clone(), clock.clone());
    ring.create("k", CreateKeyOptions::of_type(KeyType::EcdsaP256))
        .unwrap();
    let sig = ring.sign("k", b"m").unwrap();
    let reloaded = KeyRing::from_records(kek, clock, ring.records().unwrap()).unwrap();
    assert!(reloaded.verify("k", b"m", &sig).unwrap());
}

fn base64_decode(text: &str) -> Vec<u8> {
    Ciphertext::parse(&format!("maos:v1:{text}"))
        .unwrap()
        .into_bytes()
}

#[test]
fn records_move_to_a_new_kek() {
    let f = fixture();
    f.ring.create("aes", CreateKeyOptions::default()).unwrap();
    f.ring
        .create("ed", CreateKeyOptions::of_type(KeyType::Ed25519))
        .unwrap();
    f.ring.rotate("aes").unwrap();
    f.ring.revoke_version("aes", 1).unwrap();
    let ct = f.ring.encrypt("aes", b"moved", b"").unwrap();
    let sig = f.ring.sign("ed", b"m").unwrap();

    let dir = tempfile::tempdir().unwrap();
    let new_kek = Arc::new(
        FileKek::open_or_create(dir.path().join("kek2"), KekMechanism::AesKeyWrapPad).unwrap(),
    );
    let records = f.ring.records_rewrapped_for(new_kek.as_ref()).unwrap();
    assert!(
        records
            .iter()
            .all(|r| r.kek.starts_with("file:") && r.kek.ends_with("kek2"))
    );
    assert!(
        records[0].versions[0].wrapped_material.is_none(),
        "revoked material came back"
    );

    let ring = KeyRing::from_records(new_kek, f.clock.clone(), records.clone()).unwrap();
    assert_eq!(ring.decrypt("aes", &ct, b"").unwrap().expose(), b"moved");
    assert!(ring.verify("ed", b"m", &sig).unwrap());
    assert!(KeyRing::from_records(f.kek.clone(), f.clock.clone(), records).is_err());
}

#[test]
fn concurrent_use_during_rotation() {
    let f = fixture();
    f.ring.create("k", CreateKeyOptions::default()).unwrap();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|worker| {
                let ring = &f.ring;
                scope.spawn(move || {
                    let mut versions = std::collections::BTreeSet::new();
                    for i in 0..200 {
                        let message = format!("worker {worker} message {i}");
                        let ct = ring.encrypt("k", message.as_bytes(), b"").unwrap();
                        versions.insert(ct.version());
                        assert_eq!(
                            ring.decrypt("k", &ct, b"").unwrap().expose(),
                            message.as_bytes()
                        );
                    }
                    versions
                })
            })
            .collect();
        for _ in 0..5 {
            f.ring.rotate("k").unwrap();
        }
        for worker in workers {
            assert!(!worker.join().unwrap().is_empty());
        }
    });
    assert_eq!(f.ring.metadata("k").unwrap().latest_version, 6);
}
