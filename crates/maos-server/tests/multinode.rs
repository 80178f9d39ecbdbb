//! Two servers on one PostgreSQL database act as one system: a change made through one is
//! enforced by the other within a second.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::time::{Duration, Instant};

use common::{ADMIN_TOKEN, APP_BUNDLE, request};
use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};
use serde_json::{Value, json};

async fn decide(client: &reqwest::Client, base: &str, body: &Value) -> bool {
    let response: Value = client
        .post(format!("{base}/v1/authorize"))
        .bearer_auth(ADMIN_TOKEN)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    response["decision"].as_bool().unwrap()
}

/// Polls node `base` until `body` gets `want`, returning how long it took.
async fn converge(client: &reqwest::Client, base: &str, body: &Value, want: bool) -> Duration {
    let started = Instant::now();
    while decide(client, base, body).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "not enforced on the other node within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

#[tokio::test]
async fn a_change_on_one_node_is_enforced_by_the_other() {
    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping the two-node test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("the two-node test needs PostgreSQL (CI=true): {e}"),
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = Vec::new();
    for dir in &dirs {
        let mut config = common::test_config(dir.path());
        config.storage.url = schema.url.clone();
        // Nodes on one database share the root key of the key service.
        config.keys.kek_file = dirs[0].path().join("kek");
        nodes.push(
            maos_server::start(config, Some(ADMIN_TOKEN.into()))
                .await
                .unwrap(),
        );
    }
    let a = format!("http://{}", nodes[0].http_addr);
    let b = format!("http://{}", nodes[1].http_addr);
    let client = reqwest::Client::new();
    let bob_reads = request("user:bob", "document:a", "read");
    assert!(!decide(&client, &b, &bob_reads).await);

    // A bundle uploaded on A is enforced on B.
    let uploaded = client
        .post(format!("{a}/v1/policy/versions"))
        .bearer_auth(ADMIN_TOKEN)
        .body(APP_BUNDLE)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let took = converge(&client, &b, &bob_reads, true).await;
    eprintln!("policy upload enforced on the other node after {took:?}");

    // A resource quarantined on B is enforced on A.
    let put = client
        .put(format!("{b}/v1/resources/document/a"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"attributes": {"quarantined": true}}))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let took = converge(&client, &a, &bob_reads, false).await;
    eprintln!("resource attributes enforced on the other node after {took:?}");

    // A token created on A authenticates on B; revoked on B, it fails on A.
    let created: Value = client
        .post(format!("{a}/v1/tokens"))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"principal": "service:proxy", "roles": ["maos-pep"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap();
    let started = Instant::now();
    loop {
        let status = client
            .post(format!("{b}/v1/authorize"))
            .bearer_auth(token)
            .json(&bob_reads)
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "token not known on B within 1 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Rollback on B restores the default bundle on A.
    let rolled = client
        .post(format!("{b}/v1/policy/rollback"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(rolled.status(), 200);
    let unquarantined = request("user:bob", "document:other", "read");
    converge(&client, &a, &unquarantined, false).await;

    for node in nodes {
        node.shutdown().await;
    }
    schema.drop_schema().await.unwrap();
}
