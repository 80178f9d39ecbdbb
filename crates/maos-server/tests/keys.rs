//! The key service over real HTTP on loopback: `/v1/keys/...` against a server with a file KEK
//! and SQLite storage.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{APP_BUNDLE, TestServer};
use serde_json::{Value, json};

fn b64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// POSTs `body` and returns the status and the JSON answer.
async fn call(server: &TestServer, path: &str, body: Value) -> (u16, Value) {
    let response = server.post(path).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// Expects a 2xx answer and returns it.
async fn ok(server: &TestServer, path: &str, body: Value) -> Value {
    let (status, value) = call(server, path, body).await;
    assert!((200..300).contains(&status), "{path}: {status} {value}");
    value
}

/// Expects an error answer with `status` and `code`.
async fn refused(server: &TestServer, path: &str, body: Value, status: u16, code: &str) {
    let (got, value) = call(server, path, body).await;
    assert_eq!(got, status, "{path}: {value}");
    assert_eq!(value["error"]["code"], code, "{path}: {value}");
    assert!(value["error"]["message"].is_string(), "{value}");
}

async fn create(server: &TestServer, body: Value) -> Value {
    let response = server.post("/v1/keys").json(&body).send().await.unwrap();
    let status = response.status();
    let value: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "{value}");
    value
}

async fn encrypt(server: &TestServer, key: &str, plaintext: &[u8], aad: &[u8]) -> String {
    let answer = ok(
        server,
        &format!("/v1/keys/{key}/encrypt"),
        json!({"plaintext": b64(plaintext), "aad": b64(aad)}),
    )
    .await;
    answer["ciphertext"].as_str().unwrap().to_owned()
}

async fn decrypt(server: &TestServer, key: &str, ciphertext: &str, aad: &[u8]) -> (u16, Value) {
    call(
        server,
        &format!("/v1/keys/{key}/decrypt"),
        json!({"ciphertext": ciphertext, "aad": b64(aad)}),
    )
    .await
}

/// Replaces the version label of `maos:v<n>:<payload>`.
fn relabel(ciphertext: &str, version: u32) -> String {
    let payload = ciphertext.splitn(3, ':').nth(2).unwrap();
    format!("maos:v{version}:{payload}")
}

#[tokio::test]
async fn encrypt_and_decrypt_with_associated_data() {
    let server = TestServer::start().await;
    let created = create(&server, json!({"name": "payments"})).await;
    assert_eq!(created["key_type"], "aes256-gcm", "{created}");
    assert_eq!(created["latest_version"], 1);
    assert_eq!(created["exportable"], false);

    let ciphertext = encrypt(&server, "payments", b"4111 1111", b"customer=42").await;
    assert!(ciphertext.starts_with("maos:v1:"), "{ciphertext}");
    let (status, answer) = decrypt(&server, "payments", &ciphertext, b"customer=42").await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["plaintext"], b64(b"4111 1111"));

    // Each encryption uses a fresh nonce.
    let again = encrypt(&server, "payments", b"4111 1111", b"customer=42").await;
    assert_ne!(again, ciphertext);

    let (status, answer) = decrypt(&server, "payments", &ciphertext, b"customer=43").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("decryption_failed"))
    );
    let (status, _) = decrypt(&server, "payments", &ciphertext, b"").await;
    assert_eq!(status, 400);

    // ChaCha20-Poly1305 keys work the same way.
    create(
        &server,
        json!({"name": "chacha", "type": "chacha20-poly1305"}),
    )
    .await;
    let ciphertext = encrypt(&server, "chacha", b"x", b"").await;
    let (status, answer) = decrypt(&server, "chacha", &ciphertext, b"").await;
    assert_eq!((status, &answer["plaintext"]), (200, &json!(b64(b"x"))));
    server.stop().await;
}

#[tokio::test]
async fn relabelled_or_moved_ciphertext_fails() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "alpha"})).await;
    create(&server, json!({"name": "beta"})).await;
    let v1 = encrypt(&server, "alpha", b"secret", b"ctx").await;
    ok(&server, "/v1/keys/alpha/rotate", json!({})).await;
    let v2 = encrypt(&server, "alpha", b"secret", b"ctx").await;
    assert!(v2.starts_with("maos:v2:"), "{v2}");

    // Relabelled with another version of the same key.
    let (status, answer) = decrypt(&server, "alpha", &relabel(&v1, 2), b"ctx").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("decryption_failed"))
    );
    let (status, _) = decrypt(&server, "alpha", &relabel(&v2, 1), b"ctx").await;
    assert_eq!(status, 400);
    let (status, answer) = decrypt(&server, "alpha", &relabel(&v1, 9), b"ctx").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (404, &json!("version_not_found"))
    );

    // Moved to another key (same version number, same type).
    let (status, answer) = decrypt(&server, "beta", &v1, b"ctx").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("decryption_failed"))
    );

    // The untouched ciphertexts still decrypt.
    for ciphertext in [&v1, &v2] {
        let (status, _) = decrypt(&server, "alpha", ciphertext, b"ctx").await;
        assert_eq!(status, 200);
    }
    server.stop().await;
}

#[tokio::test]
async fn rotation_and_minimum_decryption_version() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "orders"})).await;
    let v1 = encrypt(&server, "orders", b"one", b"").await;
    let rotated = ok(&server, "/v1/keys/orders/rotate", json!({})).await;
    assert_eq!(rotated["latest_version"], 2);
    let v2 = encrypt(&server, "orders", b"two", b"").await;
    assert!(v2.starts_with("maos:v2:"));

    // Old versions still decrypt; rewrap moves a ciphertext to the latest version without
    // showing the plaintext.
    assert_eq!(decrypt(&server, "orders", &v1, b"").await.0, 200);
    let rewrapped = ok(
        &server,
        "/v1/keys/orders/rewrap",
        json!({"ciphertext": v1, "aad": ""}),
    )
    .await;
    assert_eq!(rewrapped["version"], 2);
    assert!(rewrapped.get("plaintext").is_none());
    let moved = rewrapped["ciphertext"].as_str().unwrap().to_owned();

    // Versions below the minimum are refused; the rewrapped copy still decrypts.
    let configured = ok(
        &server,
        "/v1/keys/orders/config",
        json!({"min_decryption_version": 2}),
    )
    .await;
    assert_eq!(configured["min_decryption_version"], 2);
    let (status, answer) = decrypt(&server, "orders", &v1, b"").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("version_below_minimum"))
    );
    let (status, answer) = decrypt(&server, "orders", &moved, b"").await;
    assert_eq!((status, &answer["plaintext"]), (200, &json!(b64(b"one"))));

    // The minimum cannot exceed the latest version; a failed change leaves the key as it was.
    refused(
        &server,
        "/v1/keys/orders/config",
        json!({"rotation_period_secs": 7200, "min_decryption_version": 3}),
        400,
        "invalid_min_decryption_version",
    )
    .await;
    let metadata: Value = server
        .get("/v1/keys/orders")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(metadata["rotation_period_secs"].is_null(), "{metadata}");

    // Automatic rotation period: at least an hour; shown with the next rotation time.
    refused(
        &server,
        "/v1/keys/orders/config",
        json!({"rotation_period_secs": 60}),
        400,
        "invalid_rotation_period",
    )
    .await;
    let configured = ok(
        &server,
        "/v1/keys/orders/config",
        json!({"rotation_period_secs": 86400}),
    )
    .await;
    assert_eq!(configured["rotation_period_secs"], 86400);
    assert!(configured["next_rotation_at"].is_u64(), "{configured}");
    server.stop().await;
}

#[tokio::test]
async fn deletion_window_and_cancellation() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "old"})).await;
    let ciphertext = encrypt(&server, "old", b"x", b"").await;

    for days in [0, 6, 31] {
        refused(
            &server,
            "/v1/keys/old/schedule-deletion",
            json!({"days": days}),
            400,
            "invalid_deletion_window",
        )
        .await;
    }

    // Default window: 30 days.
    let scheduled = ok(&server, "/v1/keys/old/schedule-deletion", json!({})).await;
    assert_eq!(scheduled["status"], "pending-deletion", "{scheduled}");
    let delete_at = scheduled["deletion_at"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(delete_at.abs_diff(now + 30 * 86400) < 120, "{scheduled}");

    // Every operation is refused meanwhile.
    let (status, answer) = decrypt(&server, "old", &ciphertext, b"").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("key_pending_deletion"))
    );
    refused(
        &server,
        "/v1/keys/old/encrypt",
        json!({"plaintext": ""}),
        409,
        "key_pending_deletion",
    )
    .await;
    refused(
        &server,
        "/v1/keys/old/rotate",
        json!({}),
        409,
        "key_pending_deletion",
    )
    .await;

    // Cancelled: the key is back, the old ciphertext decrypts.
    let cancelled = ok(&server, "/v1/keys/old/cancel-deletion", json!({})).await;
    assert_eq!(cancelled["status"], "enabled");
    assert!(cancelled["deletion_at"].is_null());
    assert_eq!(decrypt(&server, "old", &ciphertext, b"").await.0, 200);
    refused(
        &server,
        "/v1/keys/old/cancel-deletion",
        json!({}),
        409,
        "key_not_pending_deletion",
    )
    .await;

    // The shortest window is seven days.
    let scheduled = ok(
        &server,
        "/v1/keys/old/schedule-deletion",
        json!({"days": 7}),
    )
    .await;
    let delete_at = scheduled["deletion_at"].as_u64().unwrap();
    assert!(delete_at.abs_diff(now + 7 * 86400) < 120, "{scheduled}");
    server.stop().await;
}

#[tokio::test]
async fn usages_are_fixed_at_creation() {
    let server = TestServer::start().await;
    create(
        &server,
        json!({"name": "encrypt-only", "usages": ["encrypt"]}),
    )
    .await;
    let ciphertext = encrypt(&server, "encrypt-only", b"x", b"").await;
    let (status, answer) = decrypt(&server, "encrypt-only", &ciphertext, b"").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("usage_not_allowed"))
    );
    refused(
        &server,
        "/v1/keys/encrypt-only/datakey",
        json!({}),
        403,
        "usage_not_allowed",
    )
    .await;
    refused(
        &server,
        "/v1/keys/encrypt-only/rewrap",
        json!({"ciphertext": ciphertext}),
        403,
        "usage_not_allowed",
    )
    .await;

    // Usages cannot be changed afterwards: the configuration has no such field.
    refused(
        &server,
        "/v1/keys/encrypt-only/config",
        json!({"usages": ["encrypt", "decrypt"]}),
        400,
        "invalid_request",
    )
    .await;

    // A usage the type cannot have is refused at creation; so is an unknown one.
    let (status, answer) = call(
        &server,
        "/v1/keys",
        json!({"name": "aes-sign", "usages": ["sign"]}),
    )
    .await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (400, &json!("invalid_usages"))
    );
    let (status, _) = call(
        &server,
        "/v1/keys",
        json!({"name": "aes-fly", "usages": ["fly"]}),
    )
    .await;
    assert_eq!(status, 400);

    // A signing key does not encrypt.
    create(&server, json!({"name": "signer", "type": "ed25519"})).await;
    let (status, _) = call(&server, "/v1/keys/signer/encrypt", json!({"plaintext": ""})).await;
    assert_eq!(status, 403);
    server.stop().await;
}

#[tokio::test]
async fn signatures_macs_derived_and_data_keys() {
    let server = TestServer::start().await;
    let message = b64(b"pay 10 EUR to bob");
    let tampered = b64(b"pay 99 EUR to bob");

    for key_type in ["ed25519", "ecdsa-p256", "rsa-2048"] {
        let name = format!("sign-{key_type}");
        let created = create(&server, json!({"name": name, "type": key_type})).await;
        assert!(
            created["versions"][0]["public_key"].is_string(),
            "{created}"
        );
        let signed = ok(
            &server,
            &format!("/v1/keys/{name}/sign"),
            json!({ "message": message }),
        )
        .await;
        let signature = signed["signature"].as_str().unwrap();
        assert!(signature.starts_with("maos:v1:"));
        let verify = format!("/v1/keys/{name}/verify");
        let good = ok(
            &server,
            &verify,
            json!({"message": message, "signature": signature}),
        )
        .await;
        assert_eq!(good["valid"], true, "{key_type}");
        let bad = ok(
            &server,
            &verify,
            json!({"message": tampered, "signature": signature}),
        )
        .await;
        assert_eq!(bad["valid"], false, "{key_type}");
    }

    create(&server, json!({"name": "mac", "type": "hmac"})).await;
    let tag = ok(&server, "/v1/keys/mac/hmac", json!({ "message": message })).await;
    let tag = tag["hmac"].as_str().unwrap();
    let good = ok(
        &server,
        "/v1/keys/mac/verify-hmac",
        json!({"message": message, "hmac": tag}),
    )
    .await;
    assert_eq!(good["valid"], true);
    let bad = ok(
        &server,
        "/v1/keys/mac/verify-hmac",
        json!({"message": tampered, "hmac": tag}),
    )
    .await;
    assert_eq!(bad["valid"], false);

    // Derived keys: the same context gives the same key, another context another key.
    create(&server, json!({"name": "kdf", "usages": ["derive"]})).await;
    let derive = |context: &'static [u8]| {
        ok(
            &server,
            "/v1/keys/kdf/derive",
            json!({"context": b64(context), "bytes": 32}),
        )
    };
    let first = derive(b"tenant=1").await;
    let second = derive(b"tenant=1").await;
    let other = derive(b"tenant=2").await;
    assert_eq!(first["key"], second["key"]);
    assert_ne!(first["key"], other["key"]);
    assert_eq!(
        STANDARD
            .decode(first["key"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );

    // Data keys: plaintext + wrapped, or wrapped only; the wrapped one decrypts to the
    // plaintext one.
    create(&server, json!({"name": "envelope"})).await;
    let data_key = ok(
        &server,
        "/v1/keys/envelope/datakey",
        json!({"bytes": 32, "aad": b64(b"file-7")}),
    )
    .await;
    let (status, opened) = decrypt(
        &server,
        "envelope",
        data_key["ciphertext"].as_str().unwrap(),
        b"file-7",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(opened["plaintext"], data_key["plaintext"]);
    let wrapped_only = ok(
        &server,
        "/v1/keys/envelope/datakey",
        json!({"plaintext": false}),
    )
    .await;
    assert!(wrapped_only.get("plaintext").is_none(), "{wrapped_only}");
    assert!(wrapped_only["ciphertext"].is_string());
    refused(
        &server,
        "/v1/keys/envelope/datakey",
        json!({"bytes": 8}),
        400,
        "invalid_length",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn batches_answer_each_item() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "bulk"})).await;
    let encrypted = ok(
        &server,
        "/v1/keys/bulk/encrypt/batch",
        json!({"items": [
            {"plaintext": b64(b"a"), "aad": b64(b"1")},
            {"plaintext": "not base64!"},
            {"plaintext": b64(b"c")},
        ]}),
    )
    .await;
    let results = encrypted["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert!(results[0]["ciphertext"].is_string());
    assert_eq!(results[1]["error"]["code"], "invalid_base64");
    assert!(results[2]["ciphertext"].is_string());

    let decrypted = ok(
        &server,
        "/v1/keys/bulk/decrypt/batch",
        json!({"items": [
            {"ciphertext": results[0]["ciphertext"], "aad": b64(b"1")},
            {"ciphertext": results[0]["ciphertext"], "aad": b64(b"2")},
            {"ciphertext": "maos:garbage"},
            {"ciphertext": results[2]["ciphertext"]},
        ]}),
    )
    .await;
    let results = decrypted["results"].as_array().unwrap();
    assert_eq!(results[0]["plaintext"], b64(b"a"));
    assert_eq!(results[1]["error"]["code"], "decryption_failed");
    assert_eq!(results[2]["error"]["code"], "malformed_ciphertext");
    assert_eq!(results[3]["plaintext"], b64(b"c"));

    // Too many items: the whole batch is refused (the test server allows 100).
    let items: Vec<Value> = (0..101).map(|_| json!({"plaintext": ""})).collect();
    refused(
        &server,
        "/v1/keys/bulk/encrypt/batch",
        json!({ "items": items }),
        400,
        "batch_too_large",
    )
    .await;
    // A key that refuses the operation refuses the batch.
    refused(
        &server,
        "/v1/keys/nothing/encrypt/batch",
        json!({"items": []}),
        404,
        "key_not_found",
    )
    .await;

    create(&server, json!({"name": "bulk-sign", "type": "ed25519"})).await;
    let signed = ok(
        &server,
        "/v1/keys/bulk-sign/sign/batch",
        json!({"items": [{"message": b64(b"m1")}, {"message": "%%"}]}),
    )
    .await;
    let signature = signed["results"][0]["signature"].clone();
    assert_eq!(signed["results"][1]["error"]["code"], "invalid_base64");
    let verified = ok(
        &server,
        "/v1/keys/bulk-sign/verify/batch",
        json!({"items": [
            {"message": b64(b"m1"), "signature": signature},
            {"message": b64(b"m2"), "signature": signature},
            {"message": b64(b"m1"), "signature": "maos:v7:AAAA"},
        ]}),
    )
    .await;
    assert_eq!(verified["results"][0]["valid"], true);
    assert_eq!(verified["results"][1]["valid"], false);
    assert_eq!(verified["results"][2]["error"]["code"], "version_not_found");
    server.stop().await;
}

#[tokio::test]
async fn lifecycle_disable_revoke_and_export_flag() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "life"})).await;
    let v1 = encrypt(&server, "life", b"x", b"").await;

    let disabled = ok(&server, "/v1/keys/life/disable", json!({})).await;
    assert_eq!(disabled["status"], "disabled");
    let (status, answer) = decrypt(&server, "life", &v1, b"").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("key_disabled"))
    );
    ok(&server, "/v1/keys/life/enable", json!({})).await;
    assert_eq!(decrypt(&server, "life", &v1, b"").await.0, 200);

    // Revoking one version: not the latest; then that version is gone for good.
    refused(
        &server,
        "/v1/keys/life/versions/1/revoke",
        json!({}),
        409,
        "latest_version",
    )
    .await;
    ok(&server, "/v1/keys/life/rotate", json!({})).await;
    let revoked = ok(&server, "/v1/keys/life/versions/1/revoke", json!({})).await;
    assert_eq!(revoked["versions"][0]["revoked"], true, "{revoked}");
    let (status, answer) = decrypt(&server, "life", &v1, b"").await;
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("version_revoked"))
    );

    // Exportable: only ever turned on.
    refused(
        &server,
        "/v1/keys/life/config",
        json!({"exportable": false}),
        400,
        "exportable_is_permanent",
    )
    .await;
    let exportable = ok(&server, "/v1/keys/life/config", json!({"exportable": true})).await;
    assert_eq!(exportable["exportable"], true);

    // Revoking the key: permanent, every operation refused, no way back.
    let revoked = ok(&server, "/v1/keys/life/revoke", json!({})).await;
    assert_eq!(revoked["status"], "revoked");
    refused(
        &server,
        "/v1/keys/life/encrypt",
        json!({"plaintext": ""}),
        409,
        "key_revoked",
    )
    .await;
    refused(
        &server,
        "/v1/keys/life/enable",
        json!({}),
        409,
        "key_revoked",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn bad_input_gets_json_errors() {
    let server = TestServer::start().await;
    create(&server, json!({"name": "k"})).await;
    refused(&server, "/v1/keys", json!({"name": "k"}), 409, "key_exists").await;
    refused(
        &server,
        "/v1/keys",
        json!({"name": "a b"}),
        400,
        "invalid_key_name",
    )
    .await;
    refused(
        &server,
        "/v1/keys",
        json!({"name": ""}),
        400,
        "invalid_key_name",
    )
    .await;
    refused(
        &server,
        "/v1/keys",
        json!({"name": "x", "type": "des"}),
        400,
        "invalid_request",
    )
    .await;
    refused(
        &server,
        "/v1/keys",
        json!({"name": "x", "colour": 1}),
        400,
        "invalid_request",
    )
    .await;
    refused(
        &server,
        "/v1/keys/k/encrypt",
        json!({"plaintext": "***"}),
        400,
        "invalid_base64",
    )
    .await;
    refused(
        &server,
        "/v1/keys/k/decrypt",
        json!({"ciphertext": "vault:v1:abc"}),
        400,
        "malformed_ciphertext",
    )
    .await;
    refused(
        &server,
        "/v1/keys/k/decrypt",
        json!({"ciphertext": "maos:v1:AAAA"}),
        400,
        "malformed_ciphertext",
    )
    .await;
    refused(
        &server,
        "/v1/keys/missing/encrypt",
        json!({"plaintext": ""}),
        404,
        "key_not_found",
    )
    .await;
    let response = server
        .post("/v1/keys/k/encrypt")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "malformed_json");
    let response = server
        .post("/v1/keys/k/versions/x/revoke")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn key_operations_need_permission() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    create(&server, json!({"name": "guarded"})).await;
    let token = server.token_for("user:bob", &[]).await;
    let response = server
        .client
        .post(server.url("/v1/keys/guarded/encrypt"))
        .bearer_auth(&token)
        .json(&json!({"plaintext": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .client
        .get(server.url("/v1/keys/guarded"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    // A role with `encrypt` on one key may encrypt with it and nothing more.
    let bundle = APP_BUNDLE.replace(
        "  - name: reader\n",
        "  - name: encrypter\n    permissions: [{ resource: \"maos:keys/guarded\", actions: [\"encrypt\"] }]\n  - name: reader\n",
    );
    server.upload(&bundle).await;
    let token = server.token_for("service:app", &["encrypter"]).await;
    let as_app = |path: &str| {
        server
            .client
            .post(server.url(path))
            .bearer_auth(&token)
            .json(&json!({"plaintext": ""}))
    };
    assert_eq!(
        as_app("/v1/keys/guarded/encrypt")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        as_app("/v1/keys/guarded/rotate")
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    server.stop().await;
}

#[tokio::test]
async fn tampered_key_record_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| c.server.data_dir = data.clone()).await;
    create(&server, json!({"name": "edited"})).await;
    create(&server, json!({"name": "intact"})).await;
    ok(&server, "/v1/keys/edited/rotate", json!({})).await;
    ok(
        &server,
        "/v1/keys/edited/config",
        json!({"min_decryption_version": 2}),
    )
    .await;
    let old = encrypt(&server, "intact", b"x", b"").await;
    server.stop().await;

    // Someone with write access to the database lowers the minimum decryption version.
    let url = format!("sqlite://{}", data.join("maos.db").display());
    let store = maos_store::Store::open(&url, &maos_store::StoreOptions::default())
        .await
        .unwrap();
    let stored = store.key_records().get("edited").await.unwrap().unwrap();
    let record = stored.record.replace(
        "\"min_decryption_version\":2",
        "\"min_decryption_version\":1",
    );
    assert_ne!(record, stored.record);
    store
        .key_records()
        .save("edited", stored.revision + 1, &record, &stored.mac)
        .await
        .unwrap();
    store.close().await;

    let server = TestServer::start_with(|c| c.server.data_dir = data.clone()).await;
    refused(
        &server,
        "/v1/keys/edited/encrypt",
        json!({"plaintext": ""}),
        409,
        "key_record_invalid",
    )
    .await;
    let (status, _) = decrypt(&server, "intact", &old, b"").await;
    assert_eq!(status, 200, "other keys are unaffected");
    server.stop().await;
}
