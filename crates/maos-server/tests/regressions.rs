//! Regression tests for bugs found in the server, each named after the bug.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::{ADMIN_TOKEN, APP_BUNDLE, TestServer, request, test_config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends raw bytes and returns what the server answers before closing or 5 s pass.
async fn raw_exchange(server: &TestServer, bytes: &[u8]) -> String {
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut answer))
        .await
        .expect("no answer within 5 s")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// A client announcing an oversized body with `Expect: 100-continue` was told to go ahead
/// (`100 Continue`) and only refused once it had sent the body.
#[tokio::test]
async fn oversized_body_is_refused_before_100_continue() {
    let server = TestServer::start().await;
    let head = format!(
        "POST /v1/authorize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        64 * 1024 + 1
    );
    let answer = raw_exchange(&server, head.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    assert!(answer.contains("payload_too_large"), "{answer}");

    // At the limit the request goes through as before.
    let small = serde_json::to_vec(&request("user:a", "d:b", "read")).unwrap();
    let response = server
        .post("/v1/authorize")
        .header("content-type", "application/json")
        .body(small)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}

/// `POST /v1/tokens` created tokens for `role:` principals, with roles no policy defines, and
/// already expired (`expires_in_seconds: 0`).
#[tokio::test]
async fn token_creation_refuses_odd_principals_unknown_roles_and_zero_lifetime() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let create = |body: Value| server.post("/v1/tokens").json(&body).send();

    for (body, status, code) in [
        (
            json!({"principal": "role:maos-admin"}),
            400,
            "invalid_request",
        ),
        (json!({"principal": "user:"}), 400, "invalid_request"),
        (json!({"principal": "user:a b"}), 400, "invalid_request"),
        (
            json!({"principal": "agent:x", "roles": ["root"]}),
            422,
            "unknown_role",
        ),
        (
            json!({"principal": "agent:x", "expires_in_seconds": 0}),
            400,
            "invalid_request",
        ),
    ] {
        let response = create(body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let tokens: Value = server
        .get("/v1/tokens")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        tokens["tokens"].as_array().map(Vec::len),
        Some(1),
        "{tokens}"
    );

    for body in [
        json!({"principal": "agent:x", "roles": ["reader"], "expires_in_seconds": 60}),
        json!({"principal": "service:proxy", "roles": ["maos-pep"]}),
        json!({"principal": "user:alice"}),
    ] {
        let response = create(body.clone()).await.unwrap();
        assert_eq!(response.status(), 201, "{body}");
    }
    server.stop().await;
}

/// A rollback skipped the lockout check that activating a version by id makes, so it could
/// restore a version that denies the configured administrator.
#[tokio::test]
async fn rollback_that_would_lock_out_the_admin_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();

    // Version 2 denies `user:root` everything under `maos:`; it passes while the admin is
    // `user:admin`. Version 3 is the plain application bundle.
    let bundle_v2 = APP_BUNDLE.replace(
        "policies:\n",
        "policies:\n  - id: no-root\n    effect: deny\n    target:\n      subject: [{ attribute: subject.id, operator: eq, value: root }]\n",
    );
    {
        let server = maos_server::start(test_config(dir.path()), Some(ADMIN_TOKEN.into()))
            .await
            .unwrap();
        let base = format!("http://{}", server.http_addr);
        for bundle in [bundle_v2.as_str(), APP_BUNDLE] {
            let response = client
                .post(format!("{base}/v1/policy/versions"))
                .bearer_auth(ADMIN_TOKEN)
                .body(bundle.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        }
        server.shutdown().await;
    }

    // The operator makes `user:root` the administrator; rolling back to version 2 now would
    // lock them out.
    let mut config = test_config(dir.path());
    config.admin.principal = "user:root".into();
    let server = maos_server::start(config, Some(ADMIN_TOKEN.into()))
        .await
        .unwrap();
    let base = format!("http://{}", server.http_addr);
    let response = client
        .post(format!("{base}/v1/policy/rollback"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "admin_lockout", "{answer}");
    let active: Value = client
        .get(format!("{base}/v1/policy"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(active["version"]["id"], 3, "{active}");
    server.shutdown().await;
}

/// With `server.public_url` unset, the AuthZEN metadata named whatever host the client put in
/// its `Host` header.
#[tokio::test]
async fn authzen_metadata_does_not_echo_the_host_header() {
    let server = TestServer::start().await;
    let config: Value = server
        .client
        .get(server.url("/.well-known/authzen-configuration"))
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["policy_decision_point"], server.base, "{config}");
    server.stop().await;

    let server = TestServer::start_with(|config| {
        config.server.public_url = "https://pdp.example/".into();
    })
    .await;
    let config: Value = server
        .client
        .get(server.url("/.well-known/authzen-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        config["access_evaluation_endpoint"],
        "https://pdp.example/access/v1/evaluation"
    );
    server.stop().await;
}

/// With two `Authorization` headers the first one was used; a proxy that appends its own
/// credentials after the client's would let the client's win.
#[tokio::test]
async fn duplicate_authorization_headers_are_refused() {
    let server = TestServer::start().await;
    let body = serde_json::to_string(&request("user:a", "d:b", "read")).unwrap();
    let raw = format!(
        "POST /v1/authorize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\n\
         Authorization: Bearer other\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = raw_exchange(&server, raw.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(answer.contains("invalid_token"), "{answer}");

    // One header still works.
    let response = server
        .post("/v1/authorize")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    server.stop().await;
}
