//! Fixtures shared by the fuzz targets: fixed keys, so that the seed corpus holds real tokens,
//! ciphertexts and signed audit logs that the targets can verify.

pub mod fixtures {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    use std::path::PathBuf;
    use std::sync::{Arc, OnceLock};

    use maos_core::SystemClock;
    use maos_crypto::{FileKek, KekMechanism, KeyRecord, KeyRing};

    /// The root key the key records under `fixtures/` are wrapped with.
    const KEK: &[u8] = include_bytes!("../fixtures/kek.bin");
    /// An AES-256-GCM key with two versions, named `fuzz`.
    const AEAD_RECORD: &str = include_str!("../fixtures/key-record.json");
    /// An Ed25519 key, named `fuzz-sign`.
    const SIGNING_RECORD: &str = include_str!("../fixtures/sign-key-record.json");
    /// The Ed25519 key (PKCS#8) that signed the seed tokens and audit checkpoints.
    pub const ED25519_PKCS8: &[u8] = include_bytes!("../fixtures/ed25519.pk8");

    /// The file KEK over [`KEK`], written once per process to a private temporary file.
    ///
    /// Fixtures that do not load are a broken harness, not a finding: they panic with the
    /// reason, so that a target never skips its checks silently.
    pub fn kek() -> Arc<FileKek> {
        static KEK_FILE: OnceLock<Arc<FileKek>> = OnceLock::new();
        KEK_FILE
            .get_or_init(|| {
                let dir = std::env::temp_dir().join(format!("maos-fuzz-{}", std::process::id()));
                std::fs::create_dir_all(&dir).expect("create the temporary directory");
                let path: PathBuf = dir.join("kek");
                let _ = std::fs::remove_file(&path);
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .expect("create the KEK file");
                file.write_all(KEK).expect("write the KEK file");
                drop(file);
                let kek = FileKek::open_or_create(&path, KekMechanism::AesGcm);
                let _ = std::fs::remove_dir_all(&dir);
                Arc::new(kek.expect("open the fixture KEK"))
            })
            .clone()
    }

    /// A fresh key ring holding the two fixture keys.
    pub fn fresh_key_ring() -> KeyRing {
        let records = [AEAD_RECORD, SIGNING_RECORD].map(|text| {
            serde_json::from_str::<KeyRecord>(text).expect("decode a fixture key record")
        });
        KeyRing::from_records(kek(), Arc::new(SystemClock), records)
            .expect("load the fixture key records")
    }

    /// One key ring for the whole process, for targets that only read it.
    pub fn key_ring() -> &'static KeyRing {
        static RING: OnceLock<KeyRing> = OnceLock::new();
        RING.get_or_init(fresh_key_ring)
    }
}
