//! The server with its root key (KEK) inside a real SoftHSM2 token, over real HTTP on loopback.
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once per process, so each test runs again as a child process
//! of the test binary with `SOFTHSM2_CONF` naming a configuration whose token directory is a
//! fresh temporary directory. The parent initialises that token with `softhsm2-util`, exactly
//! as an operator would. SoftHSM2 missing is a failure, not a skip.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::TestServer;
use maos_server::config::KekProviderKind;
use serde_json::{Value, json};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const CHILD_FLAG: &str = "MAOS_SOFTHSM_SERVER_CHILD";
const DATA_DIR: &str = "MAOS_SOFTHSM_SERVER_DATA";
const TOKEN_LABEL: &str = "maos-server-test";
const USER_PIN: &str = "user-pin-2468";

/// Runs the test `name` in a child process with its own, freshly initialised token.
fn in_own_token(name: &str) -> bool {
    if std::env::var_os(CHILD_FLAG).is_some() {
        return true;
    }
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} is missing): apt-get install -y softhsm2"
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
    let init = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", TOKEN_LABEL])
        .args(["--so-pin", "so-pin-8642", "--pin", USER_PIN])
        .env("SOFTHSM2_CONF", &conf)
        .output()
        .expect("softhsm2-util runs (apt-get install -y softhsm2)");
    assert!(
        init.status.success(),
        "softhsm2-util --init-token failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );

    let data = dir.path().join("data");
    let output = Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("SOFTHSM2_CONF", &conf)
        .env(CHILD_FLAG, "1")
        .env(DATA_DIR, &data)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    print!("{stdout}");
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "the softhsm2 child `{name}` failed"
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the child did not run `{name}` exactly once"
    );
    false
}

async fn start(pin: &str) -> TestServer {
    let data = std::env::var_os(DATA_DIR).unwrap();
    let pin = pin.to_owned();
    TestServer::start_with(move |config| {
        config.server.data_dir = data.into();
        config.keys.kek_provider = KekProviderKind::Pkcs11;
        config.keys.pkcs11_module = MODULE.into();
        config.keys.pkcs11_token_label = TOKEN_LABEL.into();
        config.keys.pkcs11_pin = pin;
        config.keys.pkcs11_kek_label = "maos-kek".into();
    })
    .await
}

async fn post(server: &TestServer, path: &str, body: Value) -> Value {
    let response = server.post(path).json(&body).send().await.unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert!(status.is_success(), "{path}: {status} {value}");
    value
}

#[tokio::test]
async fn kek_in_softhsm_wraps_every_key() {
    if !in_own_token("kek_in_softhsm_wraps_every_key") {
        return;
    }
    let server = start(USER_PIN).await;
    let created = post(&server, "/v1/keys", json!({"name": "hsm-backed"})).await;
    assert!(
        created["kek"].as_str().unwrap().contains("pkcs11"),
        "{created}"
    );
    let plaintext = STANDARD.encode(b"card 4111");
    let v1 = post(
        &server,
        "/v1/keys/hsm-backed/encrypt",
        json!({"plaintext": plaintext, "aad": STANDARD.encode(b"order-1")}),
    )
    .await["ciphertext"]
        .clone();
    post(&server, "/v1/keys/hsm-backed/rotate", json!({})).await;
    let secret = server
        .put("/v1/secrets/app/token")
        .json(&json!({"value": "s3cr3t"}))
        .send()
        .await
        .unwrap();
    assert_eq!(secret.status(), 200);
    server.stop().await;

    // The stored records hold the material only as the token wrapped it.
    let data = std::path::PathBuf::from(std::env::var_os(DATA_DIR).unwrap());
    let url = format!("sqlite://{}", data.join("maos.db").display());
    let store = maos_store::Store::open(&url, &maos_store::StoreOptions::default())
        .await
        .unwrap();
    let stored = store
        .key_records()
        .get("hsm-backed")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.record.contains("wrapped_material"));
    store.close().await;
    assert!(
        !data.join("kek").exists(),
        "no KEK file next to the database"
    );

    // A restarted server unwraps everything again through the token.
    let server = start(USER_PIN).await;
    let opened = post(
        &server,
        "/v1/keys/hsm-backed/decrypt",
        json!({"ciphertext": v1, "aad": STANDARD.encode(b"order-1")}),
    )
    .await;
    assert_eq!(opened["plaintext"], plaintext);
    let value: Value = server
        .get("/v1/secrets/app/token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(value["value"], "s3cr3t");
    server.stop().await;
}

#[tokio::test]
async fn wrong_pin_does_not_start() {
    if !in_own_token("wrong_pin_does_not_start") {
        return;
    }
    let data = std::env::var_os(DATA_DIR).unwrap();
    let mut config = common::test_config(Path::new(&data));
    config.keys.kek_provider = KekProviderKind::Pkcs11;
    config.keys.pkcs11_module = MODULE.into();
    config.keys.pkcs11_token_label = TOKEN_LABEL.into();
    config.keys.pkcs11_pin = "not-the-pin".into();
    let started = maos_server::start(config, Some(common::ADMIN_TOKEN.into())).await;
    let Err(error) = started else {
        panic!("a server with the wrong PIN started");
    };
    let error = format!("{error:#}");
    assert!(error.contains("pkcs#11"), "{error}");
}
