#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The PKCS#11 KEK provider against a real SoftHSM2 token.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` when the module initialises, and that variable is process
//! wide. So each test re-runs the test binary for itself as a child process, with
//! `SOFTHSM2_CONF` pointing at a configuration whose token directory is a fresh temporary
//! directory: every test initialises its own token, none touches the machine's tokens, and the
//! tests cannot disturb each other. The parent checks the child ran exactly that one test.
//!
//! SoftHSM2 missing is a failure, not a skip: CI installs it (`.ci/setup`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, KeyType as Pkcs11KeyType, ObjectClass};
use cryptoki::session::UserType;
use cryptoki::types::{AuthPin, Ulong};
use maos_core::SystemClock;
use maos_crypto::{
    CreateKeyOptions, CryptoError, KekError, KekMechanism, KekProvider, KeyRing, KeyType,
    Pkcs11Config, Pkcs11Kek, SecretBytes,
};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD_FLAG: &str = "MAOS_SOFTHSM_TEST_CHILD";
const TOKEN_LABEL: &str = "maos-test";
const SO_PIN: &str = "so-pin-4321";
const USER_PIN: &str = "user-pin-1234";

/// Runs `body` in a child process that has its own SoftHSM2 token.
fn with_own_token(test_name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_FLAG).is_some() {
        initialise_token();
        body();
        return;
    }

    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} is missing). Install it with \
         `apt-get install -y softhsm2` (the CI does this in .ci/setup)."
    );
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::create_dir(&tokens).unwrap();
    let conf = dir.path().join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();

    let output = Command::new(std::env::current_exe().unwrap())
        .args([test_name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_FLAG, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    print!("{stdout}");
    eprint!("{stderr}");
    assert!(
        output.status.success(),
        "the softhsm2 child test `{test_name}` failed"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run `{test_name}` exactly once"
    );
}

/// Initialises the (empty) token directory's first slot and sets the user PIN.
fn initialise_token() {
    let context = Pkcs11::new(MODULE).unwrap();
    context
        .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
        .unwrap();
    let slot = context.get_all_slots().unwrap()[0];
    context
        .init_token(slot, &AuthPin::from(SO_PIN.to_owned()), TOKEN_LABEL)
        .unwrap();

    // SoftHSM2 moves an initialised token to a new slot id; find it by label.
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == TOKEN_LABEL)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(UserType::So, Some(&AuthPin::from(SO_PIN.to_owned())))
        .unwrap();
    session
        .init_pin(&AuthPin::from(USER_PIN.to_owned()))
        .unwrap();
    session.logout().unwrap();
    drop(session);
    context.finalize().unwrap();
}

fn config(kek_label: &str, mechanism: KekMechanism) -> Pkcs11Config {
    Pkcs11Config {
        module: PathBuf::from(MODULE),
        token_label: TOKEN_LABEL.to_owned(),
        user_pin: SecretBytes::copy_from(USER_PIN.as_bytes()),
        kek_label: kek_label.to_owned(),
        mechanism,
    }
}

#[test]
fn kek_is_generated_in_the_token_and_never_leaves_it() {
    with_own_token("kek_is_generated_in_the_token_and_never_leaves_it", || {
        let kek = Pkcs11Kek::connect(&config("maos-root", KekMechanism::AesGcm)).unwrap();
        assert!(kek.kek_is_protected().unwrap());
        assert!(
            kek.try_read_kek_value().is_err(),
            "the token handed out the kek value"
        );
        assert_eq!(kek.describe(), "pkcs11:maos-test/maos-root");
        let debug = format!("{kek:?} {:?}", config("x", KekMechanism::AesGcm));
        assert!(!debug.contains(USER_PIN));
    });
}

#[test]
fn key_ring_survives_a_restart_with_the_token_kek() {
    with_own_token("key_ring_survives_a_restart_with_the_token_kek", || {
        for mechanism in [KekMechanism::AesGcm, KekMechanism::AesKeyWrapPad] {
            let label = format!("root-{mechanism:?}");
            let (records, ciphertext, signature) = {
                let kek = Arc::new(Pkcs11Kek::connect(&config(&label, mechanism)).unwrap());
                let ring = KeyRing::new(kek, Arc::new(SystemClock));
                ring.create("data", CreateKeyOptions::default()).unwrap();
                ring.create("signer", CreateKeyOptions::of_type(KeyType::Rsa2048))
                    .unwrap();
                ring.rotate("data").unwrap();
                let ciphertext = ring.encrypt("data", b"in the token", b"aad").unwrap();
                let signature = ring.sign("signer", b"statement").unwrap();
                (ring.records().unwrap(), ciphertext, signature)
            };
            for record in &records {
                assert_eq!(record.kek, format!("pkcs11:{TOKEN_LABEL}/{label}"));
            }

            // A new connection finds the same KEK by its label and reads the records.
            let kek = Arc::new(Pkcs11Kek::connect(&config(&label, mechanism)).unwrap());
            let ring = KeyRing::from_records(kek, Arc::new(SystemClock), records.clone()).unwrap();
            assert_eq!(
                ring.decrypt("data", &ciphertext, b"aad").unwrap().expose(),
                b"in the token"
            );
            assert!(ring.verify("signer", b"statement", &signature).unwrap());

            // Another KEK in the same token cannot.
            let other = Arc::new(Pkcs11Kek::connect(&config("someone-else", mechanism)).unwrap());
            assert!(matches!(
                KeyRing::from_records(other, Arc::new(SystemClock), records),
                Err(CryptoError::Kek(KekError::UnwrapFailed))
            ));
        }
    });
}

#[test]
fn wraps_bind_their_context_and_read_either_mechanism() {
    with_own_token("wraps_bind_their_context_and_read_either_mechanism", || {
        let gcm = Pkcs11Kek::connect(&config("shared", KekMechanism::AesGcm)).unwrap();
        let kwp = Pkcs11Kek::connect(&config("shared", KekMechanism::AesKeyWrapPad)).unwrap();
        let material = [42u8; 45];
        for (writer, reader) in [(&gcm, &kwp), (&kwp, &gcm)] {
            let blob = writer.wrap(&material, b"key a v1").unwrap();
            assert!(!blob.windows(material.len()).any(|w| w == material));
            assert_eq!(
                reader.unwrap(&blob, b"key a v1").unwrap().expose(),
                material
            );
            assert!(matches!(
                reader.unwrap(&blob, b"key b v1"),
                Err(KekError::UnwrapFailed)
            ));
            let mut tampered = blob.clone();
            *tampered.last_mut().unwrap() ^= 0x80;
            assert!(reader.unwrap(&tampered, b"key a v1").is_err());
        }
        assert!(matches!(
            gcm.unwrap(&[9, 1, 2], b""),
            Err(KekError::UnknownMechanism(9))
        ));
    });
}

#[test]
fn refuses_a_wrong_pin_token_or_module() {
    with_own_token("refuses_a_wrong_pin_token_or_module", || {
        let mut wrong_pin = config("k", KekMechanism::AesGcm);
        wrong_pin.user_pin = SecretBytes::copy_from(b"0000");
        assert!(matches!(
            Pkcs11Kek::connect(&wrong_pin),
            Err(KekError::Pkcs11(_))
        ));

        let mut wrong_token = config("k", KekMechanism::AesGcm);
        wrong_token.token_label = "no-such-token".to_owned();
        assert!(matches!(
            Pkcs11Kek::connect(&wrong_token),
            Err(KekError::TokenNotFound(_))
        ));

        let mut wrong_module = config("k", KekMechanism::AesGcm);
        wrong_module.module = PathBuf::from("/nonexistent/libpkcs11.so");
        assert!(matches!(
            Pkcs11Kek::connect(&wrong_module),
            Err(KekError::ModuleMissing { .. })
        ));
    });
}

/// Puts an AES key with `label` into the token that the provider would be able to export.
fn plant_extractable_key(label: &str) {
    let context = Pkcs11::new(MODULE).unwrap();
    let _ = context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = context
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|slot| context.get_token_info(*slot).unwrap().label().trim_end() == TOKEN_LABEL)
        .unwrap();
    let session = context.open_rw_session(slot).unwrap();
    session
        .login(UserType::User, Some(&AuthPin::from(USER_PIN.to_owned())))
        .unwrap();
    session
        .generate_key(
            &Mechanism::AesKeyGen,
            &[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(Pkcs11KeyType::AES),
                Attribute::ValueLen(Ulong::from(32)),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Token(true),
                Attribute::Sensitive(false),
                Attribute::Extractable(true),
                Attribute::Encrypt(true),
                Attribute::Decrypt(true),
            ],
        )
        .unwrap();
    session.logout().unwrap();
}

#[test]
fn refuses_a_kek_object_that_could_leave_the_token() {
    with_own_token("refuses_a_kek_object_that_could_leave_the_token", || {
        plant_extractable_key("weak");
        assert!(matches!(
            Pkcs11Kek::connect(&config("weak", KekMechanism::AesGcm)),
            Err(KekError::WeakKek(_))
        ));

        // Two objects with one label: refuse rather than guess.
        Pkcs11Kek::connect(&config("twice", KekMechanism::AesGcm)).unwrap();
        plant_extractable_key("twice");
        assert!(matches!(
            Pkcs11Kek::connect(&config("twice", KekMechanism::AesGcm)),
            Err(KekError::AmbiguousKek(_))
        ));
    });
}
