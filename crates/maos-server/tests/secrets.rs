//! The secrets store over real HTTP on loopback: versions, encryption by the key service, and
//! the re-encryption job after a rotation, including its resumption by a restarted server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::{Value, json};

async fn put(server: &TestServer, path: &str, value: &str) -> Value {
    let response = server
        .put(&format!("/v1/secrets/{path}"))
        .json(&json!({ "value": value }))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

async fn get(server: &TestServer, path: &str) -> (u16, Value) {
    let response = server
        .get(&format!("/v1/secrets/{path}"))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

/// Waits until the latest re-encryption job is done and returns it with its items.
async fn finished_job(server: &TestServer) -> Value {
    for _ in 0..200 {
        let progress: Value = server
            .get("/v1/secrets-rewrap?items=true")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if progress["job"]["state"] == "done" {
            return progress;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the re-encryption job did not finish");
}

#[tokio::test]
async fn secrets_have_versions() {
    let server = TestServer::start().await;
    assert_eq!(
        put(&server, "app/db/password", "hunter2").await["version"],
        1
    );
    assert_eq!(
        put(&server, "app/db/password", "hunter3").await["version"],
        2
    );

    let (status, latest) = get(&server, "app/db/password").await;
    assert_eq!(status, 200, "{latest}");
    assert_eq!(latest["value"], "hunter3");
    assert_eq!(latest["version"], 2);
    assert_eq!(latest["versions"], json!([1, 2]));
    let (_, first) = get(&server, "app/db/password?version=1").await;
    assert_eq!(first["value"], "hunter2");

    // Deleting one version, then all.
    let response = server
        .delete("/v1/secrets/app/db/password?version=2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, latest) = get(&server, "app/db/password").await;
    assert_eq!(latest["value"], "hunter2");
    let response = server
        .delete("/v1/secrets/app/db/password")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, missing) = get(&server, "app/db/password").await;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("not_found"))
    );

    // Bad paths and bodies are 4xx JSON errors.
    // (`..` and `.` segments are normalised away by the HTTP client; unit tests cover them.)
    for path in ["a//b", "x%20y", "caf%C3%A9"] {
        let response = server
            .put(&format!("/v1/secrets/{path}"))
            .json(&json!({"value": "v"}))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{path}: {status}");
    }
    let response = server
        .put("/v1/secrets/ok")
        .json(&json!({"value": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (status, _) = get(&server, "app?version=zero").await;
    assert_eq!(status, 400);
    server.stop().await;
}

#[tokio::test]
async fn stored_values_are_ciphertexts_bound_to_path_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| c.server.data_dir = data.clone()).await;
    put(&server, "a", "value-of-a").await;
    put(&server, "b", "value-of-b").await;
    server.stop().await;

    let url = format!("sqlite://{}", data.join("maos.db").display());
    let store = maos_store::Store::open(&url, &maos_store::StoreOptions::default())
        .await
        .unwrap();
    let a = store.secrets().get("a", None).await.unwrap().unwrap();
    let b = store.secrets().get("b", None).await.unwrap().unwrap();
    assert!(a.ciphertext.starts_with("maos:v1:"), "{}", a.ciphertext);
    assert!(!a.ciphertext.contains("value-of-a"));
    // Copy b's ciphertext over a's row: it must not decrypt as a.
    store.secrets().delete("a", None).await.unwrap();
    let mut moved = b.clone();
    moved.path = "a".into();
    store.secrets().insert(&moved).await.unwrap();
    store.close().await;

    let server = TestServer::start_with(|c| c.server.data_dir = data.clone()).await;
    let (status, answer) = get(&server, "a").await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["code"], "decryption_failed");
    let (status, answer) = get(&server, "b").await;
    assert_eq!((status, &answer["value"]), (200, &json!("value-of-b")));
    server.stop().await;
}

#[tokio::test]
async fn rotation_rewraps_every_secret() {
    let server = TestServer::start_with(|c| c.secrets.rewrap_chunk = 3).await;
    for n in 0..10 {
        put(&server, &format!("svc/{n}"), &format!("value {n}")).await;
    }
    let rotated: Value = server
        .post("/v1/keys/maos-secrets/rotate")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["latest_version"], 2, "{rotated}");

    let progress = finished_job(&server).await;
    let job = &progress["job"];
    assert_eq!(
        (job["total"].as_i64(), job["done"].as_i64()),
        (Some(10), Some(10))
    );
    assert_eq!(job["failed"], 0);
    let items = progress["items"].as_array().unwrap();
    assert_eq!(items.len(), 10);
    assert!(
        items
            .iter()
            .all(|i| i["result"] == "rewrapped" && i["to_version"] == 2)
    );
    for item in items {
        assert!(
            item.get("ciphertext").is_none(),
            "no ciphertext in results: {item}"
        );
    }

    for n in 0..10 {
        let (status, secret) = get(&server, &format!("svc/{n}")).await;
        assert_eq!(status, 200);
        assert_eq!(secret["value"], format!("value {n}"));
        assert_eq!(secret["key_version"], 2);
    }

    // Version 1 can now be retired without losing a secret.
    let response = server
        .post("/v1/keys/maos-secrets/config")
        .json(&json!({"min_decryption_version": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, _) = get(&server, "svc/3").await;
    assert_eq!(status, 200);

    // A manual start while nothing is left to do finishes at once.
    let response = server.post("/v1/secrets-rewrap").send().await.unwrap();
    assert_eq!(response.status(), 202);
    let progress = finished_job(&server).await;
    assert!(
        progress["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["result"] == "current")
    );
    server.stop().await;
}

#[tokio::test]
async fn rewrap_resumes_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let server = TestServer::start_with(|c| {
        c.server.data_dir = data.clone();
        c.secrets.rewrap_chunk = 1;
    })
    .await;
    let count = 150;
    for n in 0..count {
        put(&server, &format!("bulk/{n:03}"), &format!("v{n}")).await;
    }
    server
        .post("/v1/keys/maos-secrets/rotate")
        .send()
        .await
        .unwrap();
    // Stop while the job runs (one transaction per secret), once it has committed something.
    for _ in 0..400 {
        let progress: Value = server
            .get("/v1/secrets-rewrap")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if progress["job"]["done"].as_i64().unwrap_or(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop().await;

    let url = format!("sqlite://{}", data.join("maos.db").display());
    let store = maos_store::Store::open(&url, &maos_store::StoreOptions::default())
        .await
        .unwrap();
    let stopped = store.secrets().latest_job().await.unwrap().unwrap();
    store.close().await;
    assert_eq!(stopped.total, count);
    eprintln!("stopped after {} of {count}", stopped.done);

    let server = TestServer::start_with(|c| {
        c.server.data_dir = data.clone();
        c.secrets.rewrap_chunk = 10;
    })
    .await;
    let progress = finished_job(&server).await;
    assert_eq!(progress["job"]["done"], count);
    assert_eq!(progress["job"]["failed"], 0);
    let items = progress["items"].as_array().unwrap();
    assert_eq!(
        items.len() as i64,
        count,
        "one result per secret, none twice"
    );
    for n in [0, 75, count - 1] {
        let (status, secret) = get(&server, &format!("bulk/{n:03}")).await;
        assert_eq!(status, 200);
        assert_eq!(secret["value"], format!("v{n}"));
        assert_eq!(secret["key_version"], 2);
    }
    server.stop().await;
}
