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

/// A bundle that adds a token manager: `maos:tokens` read and write, nothing else.
fn bundle_with_token_manager() -> String {
    APP_BUNDLE.replacen(
        "roles:\n",
        "roles:\n  - name: tokenmgr\n    permissions: [{ resource: \"maos:tokens\", actions: [\"read\", \"write\"] }]\n",
        1,
    )
    .replacen(
        "bindings:\n",
        "bindings:\n  - { subject: \"user:tm\", roles: [\"tokenmgr\"] }\n",
        1,
    )
}

/// A caller allowed only to manage tokens minted itself a `maos-admin` token, and tokens for
/// `user:admin`: `maos:tokens` write was a path to every role and every principal.
#[tokio::test]
async fn token_manager_cannot_mint_roles_or_principals_it_does_not_hold() {
    let server = TestServer::start().await;
    server.upload(&bundle_with_token_manager()).await;
    let manager = server.token_for("user:tm", &[]).await;
    let mint = |body: Value| {
        server
            .client
            .post(server.url("/v1/tokens"))
            .bearer_auth(&manager)
            .json(&body)
            .send()
    };

    let escalation = mint(json!({"principal": "user:tm", "roles": ["maos-admin"]}))
        .await
        .unwrap();
    assert_eq!(escalation.status(), 403);
    let body: Value = escalation.json().await.unwrap();
    assert_eq!(body["error"]["code"], "forbidden");

    let impersonation = mint(json!({"principal": "user:admin"})).await.unwrap();
    assert_eq!(impersonation.status(), 403);

    // What it holds itself it may pass on to its own tokens.
    let own = mint(json!({"principal": "user:tm", "roles": ["tokenmgr"]}))
        .await
        .unwrap();
    assert_eq!(own.status(), 201);

    // A policy administrator may still issue any role to anyone.
    let by_admin = server
        .post("/v1/tokens")
        .json(&json!({"principal": "service:nginx", "roles": ["maos-pep"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(by_admin.status(), 201);
    server.stop().await;
}

/// `DELETE /v1/tokens/bootstrap` succeeded and locked every administrator out; a token
/// manager could also revoke other principals' tokens.
#[tokio::test]
async fn revoking_the_last_admin_token_is_refused() {
    let server = TestServer::start().await;
    server.upload(&bundle_with_token_manager()).await;

    let manager = server.token_for("user:tm", &[]).await;
    let by_manager = server
        .client
        .delete(server.url("/v1/tokens/bootstrap"))
        .bearer_auth(&manager)
        .send()
        .await
        .unwrap();
    assert_eq!(by_manager.status(), 403);

    let last = server.delete("/v1/tokens/bootstrap").send().await.unwrap();
    assert_eq!(last.status(), 422);
    let body: Value = last.json().await.unwrap();
    assert_eq!(body["error"]["code"], "admin_lockout");
    assert_eq!(server.get("/v1/policy").send().await.unwrap().status(), 200);

    // With a second admin token in place the bootstrap token may go.
    let second = server.token_for("user:admin", &["maos-admin"]).await;
    assert_eq!(
        server
            .delete("/v1/tokens/bootstrap")
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let still_admin = server
        .client
        .get(server.url("/v1/policy"))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(still_admin.status(), 200);
    server.stop().await;
}

/// Without credentials, `POST /v1/authorize` and `POST /v1/tokens` answered 400 or 415 about
/// the body: the server parsed bodies for anybody.
#[tokio::test]
async fn credentials_are_checked_before_the_body_is_read() {
    let server = TestServer::start().await;
    for (path, content_type, body) in [
        ("/v1/authorize", "application/json", "{}"),
        ("/v1/authorize", "text/plain", "x"),
        ("/v1/tokens", "application/json", "{}"),
        ("/access/v1/evaluation", "application/json", "not json"),
    ] {
        let anonymous = server
            .client
            .post(server.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
        let bad_token = server
            .client
            .post(server.url(path))
            .bearer_auth("not-a-token")
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(bad_token.status(), 401, "{path}");
        let answer: Value = bad_token.json().await.unwrap();
        assert_eq!(answer["error"]["code"], "unauthenticated", "{path}");
    }
    server.stop().await;
}

/// `PUT /v1/resources/doc:x/a` was stored although `doc:x` + `a` and `doc` + `x:a` are the same
/// `type:id`; listing with `after=doc:x:a` then returned the same page forever.
#[tokio::test]
async fn colon_in_resource_type_is_refused() {
    let server = TestServer::start().await;
    let response = server
        .put("/v1/resources/doc:x/a")
        .json(&json!({"attributes": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    server.stop().await;
}

/// Two `X-Original-Method` (or `X-Original-URI`) headers: the first was used, so a proxy and
/// MAOS could act on different requests.
#[tokio::test]
async fn duplicate_forwarded_headers_are_refused() {
    let server = TestServer::start().await;
    server.upload(APP_BUNDLE).await;
    let reader = server.token_for("user:bob", &[]).await;
    let ask = |extra: &[(&str, &str)]| {
        let mut builder = server
            .client
            .get(server.url("/v1/forward-auth/nginx"))
            .bearer_auth(&reader);
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.send()
    };
    let single = ask(&[("x-original-method", "GET"), ("x-original-uri", "/docs/a")])
        .await
        .unwrap();
    assert_eq!(single.status(), 200);
    for extra in [
        vec![
            ("x-original-method", "GET"),
            ("x-original-method", "PUT"),
            ("x-original-uri", "/docs/a"),
        ],
        vec![
            ("x-original-method", "GET"),
            ("x-original-uri", "/docs/a"),
            ("x-original-uri", "/docs/b"),
        ],
    ] {
        let response = ask(&extra).await.unwrap();
        assert_eq!(response.status(), 403, "{extra:?}");
    }
    server.stop().await;
}
