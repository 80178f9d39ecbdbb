//! Automated response end to end: each action through `/v1/response/actions` against a real
//! server, its effect observed where it is enforced (a gateway route in front of a real
//! upstream, the identity provider's credentials, `/v1/authorize`, the key service), then its
//! expiry, undo, dry run, idempotence and audit records; and playbooks run through
//! `Responder::handle`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{APP_BUNDLE, TestServer, request};
use http_body_util::Full;
use maos_core::event::{Severity, Timestamp};
use maos_server::response::{OutcomeStatus, Trigger};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A hyper upstream answering 200 `ok` to everything.
async fn start_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|_: hyper::Request<hyper::body::Incoming>| async {
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

const PLAYBOOKS: &str = r#"
[[playbooks]]
name = "block brute force"
rules = ["maos-brute-force-source"]
[[playbooks.actions]]
action = "block_ip"
duration = "10m"
[[playbooks.actions]]
action = "increase_monitoring"
target = "principal"
duration = "10m"

[[playbooks]]
name = "rehearse on critical"
min_severity = "critical"
dry_run = true
[[playbooks.actions]]
action = "disable_user"

[[playbooks]]
name = "quarantine exfiltration"
tags = ["attack.exfiltration"]
[[playbooks.actions]]
action = "quarantine_resource"
duration = "1h"
"#;

struct Setup {
    server: TestServer,
    /// A token of `user:alice` (reader through APP_BUNDLE).
    alice: String,
}

impl Setup {
    async fn start() -> Setup {
        Setup::start_with_playbooks(PLAYBOOKS).await
    }

    async fn start_with_playbooks(playbooks: &str) -> Setup {
        let upstream = start_upstream().await;
        let gateway: maos_server::gateway::config::GatewayConfig = toml::from_str(&format!(
            r#"
trusted_proxies = ["127.0.0.2/32"]
[[routes]]
name = "app"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
[[routes.rules]]
method = "GET"
path = "/docs/{{*path}}"
resource = "document:{{path}}"
action = "read"
"#
        ))
        .unwrap();
        let response: maos_server::response::ResponseConfig = toml::from_str(playbooks).unwrap();
        let server = TestServer::start_with(move |config| {
            config.gateway = gateway;
            config.response = response;
        })
        .await;
        server.upload(APP_BUNDLE).await;
        let alice = server.token_for("user:alice", &[]).await;
        Setup { server, alice }
    }

    fn state(&self) -> &maos_server::state::AppState {
        &self.server.server.as_ref().unwrap().state
    }

    /// The status of `GET /docs/a` through the gateway for a client at `client` (forwarded by
    /// the trusted proxy 127.0.0.2).
    async fn fetch_as(&self, client: &str) -> u16 {
        self.fetch_path_as(client, "/docs/a").await
    }

    async fn fetch_path_as(&self, client: &str, path: &str) -> u16 {
        let addr = self.server.server.as_ref().unwrap().gateway_addrs[0];
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let head = format!(
            "GET {path} HTTP/1.1\r\nHost: app.test\r\nAuthorization: Bearer {}\r\n\
             X-Forwarded-For: {client}\r\nConnection: close\r\n\r\n",
            self.alice
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
        let text = String::from_utf8_lossy(&raw);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    /// Waits (up to 5 s) until the gateway answers `client` with `status`: an expiry is
    /// recorded before its effect is undone.
    async fn fetch_becomes(&self, client: &str, status: u16) {
        for _ in 0..50 {
            if self.fetch_as(client).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{client} never got {status}");
    }

    async fn credential_becomes(&self, credential: &str, status: u16) {
        for _ in 0..50 {
            if self.credential_status(credential).await == status {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the credential never got {status}");
    }

    async fn act(&self, body: Value) -> (u16, Value) {
        let response = self
            .server
            .post("/v1/response/actions")
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Takes an action and expects it applied; answers its record.
    async fn applied(&self, body: Value) -> Value {
        let (status, answer) = self.act(body).await;
        assert_eq!(status, 201, "{answer}");
        assert_eq!(answer["status"], "applied", "{answer}");
        answer
    }

    async fn undo(&self, id: &str) -> (u16, Value) {
        let response = self
            .server
            .delete(&format!("/v1/response/actions/{id}"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn record(&self, id: &str) -> Value {
        let response = self
            .server
            .get(&format!("/v1/response/actions/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Waits until the action has left the `active` state.
    async fn ended(&self, id: &str) -> Value {
        for _ in 0..100 {
            let record = self.record(id).await;
            if record["state"] != "active" {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("action {id} never ended");
    }

    async fn audit(&self, action: &str) -> Vec<Value> {
        let response = self
            .server
            .get(&format!("/v1/audit?action={action}"))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let page: Value = response.json().await.unwrap();
        assert_eq!(status, 200, "{page}");
        page["records"].as_array().unwrap().clone()
    }

    async fn create_principal(&self, body: Value) {
        let response = self
            .server
            .post("/v1/principals")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }

    async fn api_key(&self, principal: &str) -> String {
        let response = self
            .server
            .post(&format!("/v1/principals/{principal}/apikeys"))
            .json(&json!({"scopes": []}))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        body["key"].as_str().unwrap().to_owned()
    }

    /// The status `/v1/authorize` answers a credential: 401 when it does not authenticate,
    /// 403 when it does (these principals may not ask for decisions).
    async fn credential_status(&self, credential: &str) -> u16 {
        self.server
            .client
            .post(self.server.url("/v1/authorize"))
            .bearer_auth(credential)
            .json(&request("user:bob", "document:a", "read"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn oauth(&self, form: &str) -> (u16, Value) {
        let response = self
            .server
            .client
            .post(self.server.url("/v1/oauth/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn decision(&self, subject: &str, resource: &str) -> Value {
        let response = self
            .server
            .post("/v1/authorize")
            .json(&request(subject, resource, "read"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

fn id_of(answer: &Value) -> String {
    answer["record"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn block_ip_refuses_the_client_at_the_gateway_until_undone() {
    let setup = Setup::start().await;
    assert_eq!(setup.fetch_as("203.0.113.9").await, 200);

    let answer = setup
        .applied(json!({"action": "block_ip", "target": "203.0.113.9", "duration": "10m"}))
        .await;
    let record = &answer["record"];
    assert_eq!(record["target"], "203.0.113.9/32");
    assert_eq!(record["state"], "active");
    assert_eq!(record["repeat"], 1);
    // Recorded (its distribution is measured by enforcement_latency_distribution, not here).
    assert!(
        record["enforcement_latency_ms"].as_f64().is_some(),
        "{record}"
    );
    assert_eq!(setup.fetch_as("203.0.113.9").await, 403);
    assert_eq!(setup.fetch_as("203.0.113.10").await, 200);
    // The gateway's blocklist API shows it, written by this action.
    let blocks: Value = setup
        .server
        .get("/v1/blocklist")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = id_of(&answer);
    assert_eq!(blocks["blocks"][0]["network"], "203.0.113.9/32");
    assert_eq!(blocks["blocks"][0]["created_by"], format!("response:{id}"));

    let (status, undone) = setup.undo(&id).await;
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["state"], "undone");
    assert_eq!(setup.fetch_as("203.0.113.9").await, 200);
    // Undoing twice is a conflict; an unknown id is not found.
    assert_eq!(setup.undo(&id).await.0, 409);
    assert_eq!(setup.undo("act_0000000000000000").await.0, 404);

    // Both steps are in the audit log, the actor the admin.
    let taken = setup.audit("response.block_ip").await;
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0]["resource"], "203.0.113.9/32");
    assert_eq!(taken[0]["details"]["response_id"], id.as_str());
    let undos = setup.audit("response.undo").await;
    assert_eq!(undos.len(), 1);
    assert_eq!(undos[0]["actor"], "user:admin");
    setup.stop().await;
}

#[tokio::test]
async fn a_block_expires_and_a_repeat_offender_is_banned_twice_as_long() {
    let setup = Setup::start().await;
    let first = setup
        .applied(json!({"action": "block_ip", "target": "198.51.100.4", "duration": "1s"}))
        .await;
    assert_eq!(setup.fetch_as("198.51.100.4").await, 403);
    let ended = setup.ended(&id_of(&first)).await;
    assert_eq!(ended["state"], "expired");
    setup.fetch_becomes("198.51.100.4", 200).await;
    assert_eq!(setup.audit("response.expire").await.len(), 1);

    let second = setup
        .applied(json!({"action": "block_ip", "target": "198.51.100.4", "duration": 1}))
        .await;
    let record = &second["record"];
    assert_eq!(record["repeat"], 2);
    let length = record["expires_at"].as_i64().unwrap() - record["created_at"].as_i64().unwrap();
    assert_eq!(length, 2000, "{record}");
    assert_eq!(setup.fetch_as("198.51.100.4").await, 403);
    // An undone ban is not held against the address.
    let (status, _) = setup.undo(&id_of(&second)).await;
    assert_eq!(status, 200);
    let third = setup
        .applied(json!({"action": "block_ip", "target": "198.51.100.4", "duration": 1}))
        .await;
    assert_eq!(third["record"]["repeat"], 2);
    setup.stop().await;
}

#[tokio::test]
async fn ipv6_clients_are_blocked_by_their_64() {
    let setup = Setup::start().await;
    let answer = setup
        .applied(json!({"action": "block_ip", "target": "2001:db8:1:2::7"}))
        .await;
    assert_eq!(answer["record"]["target"], "2001:db8:1:2::/64");
    assert_eq!(setup.fetch_as("2001:db8:1:2:ffff::1").await, 403);
    assert_eq!(setup.fetch_as("2001:db8:1:3::1").await, 200);
    // A CIDR is taken as written.
    setup
        .applied(json!({"action": "block_ip", "target": "192.0.2.0/24"}))
        .await;
    assert_eq!(setup.fetch_as("192.0.2.200").await, 403);
    assert_eq!(setup.fetch_as("::ffff:192.0.2.201").await, 403);
    setup.stop().await;
}

#[tokio::test]
async fn the_same_action_twice_is_one_effect() {
    let setup = Setup::start().await;
    let body = json!({"action": "block_ip", "target": "203.0.113.77"});
    let first = setup.applied(body.clone()).await;
    let (status, second) = setup.act(body).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["status"], "already_active");
    assert_eq!(second["record"]["id"], first["record"]["id"]);
    // The same network written another way is the same target.
    let (_, third) = setup
        .act(json!({"action": "block_ip", "target": "::ffff:203.0.113.77"}))
        .await;
    assert_eq!(third["status"], "already_active");

    let listed: Value = setup
        .server
        .get("/v1/response/actions?state=active")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["actions"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(setup.audit("response.block_ip").await.len(), 1);
    setup.stop().await;
}

#[tokio::test]
async fn a_dry_run_reports_and_changes_nothing() {
    let setup = Setup::start().await;
    setup
        .create_principal(json!({"id": "user:dana", "password": "dana's passphrase"}))
        .await;
    let key = setup.api_key("user:dana").await;

    let (status, block) = setup
        .act(json!({"action": "block_ip", "target": "203.0.113.50", "dry_run": true}))
        .await;
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["status"], "dry_run");
    assert_eq!(block["record"]["state"], "dry_run");
    assert_eq!(block["record"]["effect"]["network"], "203.0.113.50/32");
    assert_eq!(setup.fetch_as("203.0.113.50").await, 200);

    let (_, disable) = setup
        .act(json!({"action": "disable_user", "target": "user:dana", "dry_run": true}))
        .await;
    assert_eq!(disable["status"], "dry_run", "{disable}");
    assert_eq!(disable["record"]["effect"]["was_active"], true);
    assert_eq!(setup.credential_status(&key).await, 403);

    let (_, rotate) = setup
        .act(json!({"action": "rotate_credentials", "target": "user:dana", "dry_run": true}))
        .await;
    assert_eq!(rotate["status"], "dry_run");
    assert!(rotate.get("credentials").is_none());
    assert_eq!(setup.credential_status(&key).await, 403);

    // A rehearsal is audited as one, and leaves nothing active.
    let records = setup.audit("response.block_ip").await;
    assert_eq!(records[0]["details"]["dry_run"], true);
    let listed: Value = setup
        .server
        .get("/v1/response/actions?state=active")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(listed["actions"].as_array().unwrap().is_empty(), "{listed}");
    setup.stop().await;
}

#[tokio::test]
async fn disable_user_stops_its_tokens_and_api_keys_until_undone() {
    let setup = Setup::start().await;
    setup
        .create_principal(json!({"id": "user:erin", "password": "erin's passphrase"}))
        .await;
    let key = setup.api_key("user:erin").await;
    let (status, tokens) = setup
        .oauth("grant_type=password&username=erin&password=erin%27s+passphrase")
        .await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(setup.credential_status(&key).await, 403);
    assert_eq!(setup.credential_status(&access).await, 403);

    let answer = setup
        .applied(json!({"action": "disable_user", "target": "user:erin", "duration": "10m"}))
        .await;
    assert_eq!(setup.credential_status(&key).await, 401);
    assert_eq!(setup.credential_status(&access).await, 401);
    let (status, _) = setup
        .oauth(&format!("grant_type=refresh_token&refresh_token={refresh}"))
        .await;
    assert_eq!(status, 400);
    let (status, _) = setup
        .oauth("grant_type=password&username=erin&password=erin%27s+passphrase")
        .await;
    assert!(status >= 400, "a disabled principal logged in");

    // Undo re-enables: the API key works again (the revoked refresh token does not).
    let (status, _) = setup.undo(&id_of(&answer)).await;
    assert_eq!(status, 200);
    assert_eq!(setup.credential_status(&key).await, 403);
    assert_eq!(setup.audit("response.disable_user").await.len(), 1);

    // The configured admin is never disabled; an unknown principal is not found.
    let (status, refused) = setup
        .act(json!({"action": "disable_user", "target": "user:admin"}))
        .await;
    assert_eq!(status, 422, "{refused}");
    let (status, missing) = setup
        .act(json!({"action": "disable_user", "target": "user:nobody"}))
        .await;
    assert_eq!(status, 404, "{missing}");
    setup.stop().await;
}

#[tokio::test]
async fn a_disabled_user_is_enabled_again_when_the_action_expires() {
    let setup = Setup::start().await;
    setup
        .create_principal(json!({"id": "agent:sync", "roles": []}))
        .await;
    let key = setup.api_key("agent:sync").await;
    let answer = setup
        .applied(json!({"action": "disable_user", "target": "agent:sync", "duration": "1s"}))
        .await;
    assert_eq!(setup.credential_status(&key).await, 401);
    assert_eq!(setup.ended(&id_of(&answer)).await["state"], "expired");
    setup.credential_becomes(&key, 403).await;
    setup.stop().await;
}

#[tokio::test]
async fn a_quarantined_resource_is_denied_whatever_the_policies_say() {
    let setup = Setup::start().await;
    assert_eq!(
        setup.decision("user:bob", "document:plans").await["decision"],
        true
    );

    let answer = setup
        .applied(json!({"action": "quarantine_resource", "target": "document:plans"}))
        .await;
    let denied = setup.decision("user:bob", "document:plans").await;
    assert_eq!(denied["decision"], false);
    assert!(
        denied["reasons"][0]
            .as_str()
            .unwrap()
            .contains("quarantined"),
        "{denied}"
    );
    assert_eq!(
        setup.decision("user:bob", "document:other").await["decision"],
        true
    );
    // The gateway decides through the same engine.
    let addr = setup.server.server.as_ref().unwrap().gateway_addrs[0];
    let through_gateway = setup
        .server
        .client
        .get(format!("http://{addr}/docs/plans"))
        .bearer_auth(&setup.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(through_gateway.status(), 403);

    let (status, _) = setup.undo(&id_of(&answer)).await;
    assert_eq!(status, 200);
    assert_eq!(
        setup.decision("user:bob", "document:plans").await["decision"],
        true
    );
    setup.stop().await;
}

#[tokio::test]
async fn rotation_replaces_api_keys_and_rotates_service_keys() {
    let setup = Setup::start().await;
    setup
        .create_principal(json!({"id": "agent:etl", "roles": []}))
        .await;
    let old = setup.api_key("agent:etl").await;
    assert_eq!(setup.credential_status(&old).await, 403);

    let answer = setup
        .applied(json!({"action": "rotate_credentials", "target": "agent:etl"}))
        .await;
    let new = answer["credentials"][0]["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(setup.credential_status(&old).await, 401);
    assert_eq!(setup.credential_status(&new).await, 403);
    // The record names the keys, never their secrets.
    let record = setup.record(&id_of(&answer)).await;
    assert_eq!(
        record["effect"]["revoked_api_keys"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert!(!record.to_string().contains(&new[22..]));
    // Rotating again within the window is the same action.
    let (_, again) = setup
        .act(json!({"action": "rotate_credentials", "target": "agent:etl"}))
        .await;
    assert_eq!(again["status"], "already_active");
    assert_eq!(setup.credential_status(&new).await, 403);

    // A key of the key service gets a new version.
    let created = setup
        .server
        .post("/v1/keys")
        .json(&json!({"name": "payments"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let rotated = setup
        .applied(json!({"action": "rotate_credentials", "target": "key:payments"}))
        .await;
    assert_eq!(rotated["record"]["effect"]["version"], 2);
    let key: Value = setup
        .server
        .get("/v1/keys/payments")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(key["latest_version"], 2, "{key}");
    let (status, _) = setup
        .act(json!({"action": "rotate_credentials", "target": "key:missing"}))
        .await;
    assert_eq!(status, 404);
    setup.stop().await;
}

#[tokio::test]
async fn increased_monitoring_marks_decisions_and_gateway_requests() {
    let setup = Setup::start().await;
    assert!(
        setup.decision("user:bob", "document:a").await["obligations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let answer = setup
        .applied(json!({"action": "increase_monitoring", "target": "user:bob", "duration": "1s"}))
        .await;
    let decision = setup.decision("user:bob", "document:a").await;
    assert_eq!(decision["obligations"][0]["id"], "monitor", "{decision}");
    assert_eq!(
        decision["obligations"][0]["params"]["targets"][0],
        "user:bob"
    );
    assert!(
        setup.decision("user:alice", "document:a").await["obligations"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // A watched client address: the gateway logs the request in full as an event.
    let mut events = setup.state().events.subscribe();
    setup
        .applied(json!({"action": "increase_monitoring", "target": "ip:203.0.113.60"}))
        .await;
    assert_eq!(setup.fetch_as("203.0.113.60").await, 200);
    let event = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let event = events.recv().await.unwrap();
            if event.details.get("gateway.outcome") == Some(&json!("monitored")) {
                return event;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(event.source_ip, Some("203.0.113.60".parse().unwrap()));
    let headers = &event.details["http.request.headers"];
    assert!(
        headers["authorization"]
            .as_str()
            .unwrap()
            .starts_with("[redacted")
    );
    assert_eq!(headers["host"], "app.test");

    // Policies see `context.monitoring` and can be stricter with a watched client.
    let stricter = APP_BUNDLE.replace(
        "tests:\n",
        "  - id: watched-clients-keep-out-of-secrets\n    effect: deny\n    target:\n      \
         environment: [{ attribute: context.monitoring.level, operator: exists }]\n    \
         condition: { attribute: resource.id, operator: starts_with, value: \"secret/\" }\ntests:\n",
    );
    setup.server.upload(&stricter).await;
    assert_eq!(
        setup.fetch_path_as("203.0.113.60", "/docs/secret/x").await,
        403
    );
    assert_eq!(
        setup.fetch_path_as("203.0.113.61", "/docs/secret/x").await,
        200
    );

    // It runs out.
    assert_eq!(setup.ended(&id_of(&answer)).await["state"], "expired");
    assert!(
        setup.decision("user:bob", "document:a").await["obligations"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    setup.stop().await;
}

fn trigger(rule: &str, severity: Severity, tags: &[&str]) -> Trigger {
    Trigger {
        rule_id: rule.into(),
        rule_title: "test rule".into(),
        severity,
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
        source_ip: Some("203.0.113.99".parse().unwrap()),
        principal: Some("user:bob".into()),
        resource: Some("document:leak".into()),
        alert_id: Some("alert-7".into()),
        detected_at: Timestamp::now(),
        event_time: None,
    }
}

#[tokio::test]
async fn playbooks_run_the_actions_of_matching_triggers() {
    let setup = Setup::start().await;
    let responder = &setup.state().responder;

    // Nothing matches a medium hit of another rule.
    let none = responder
        .handle(&trigger("other-rule", Severity::Medium, &[]))
        .await;
    assert!(none.is_empty());

    let outcomes = responder
        .handle(&trigger("maos-brute-force-source", Severity::High, &[]))
        .await;
    let statuses: Vec<_> = outcomes.iter().map(|o| (o.action, o.status)).collect();
    assert_eq!(outcomes.len(), 2, "{outcomes:?}");
    assert!(
        outcomes.iter().all(|o| o.status == OutcomeStatus::Applied),
        "{statuses:?}"
    );
    let block = outcomes[0].record.as_ref().unwrap();
    assert_eq!(block.target, "203.0.113.99/32");
    assert_eq!(block.playbook.as_deref(), Some("block brute force"));
    assert_eq!(block.alert_id.as_deref(), Some("alert-7"));
    assert!(block.enforcement_latency_ms.is_some(), "{block:?}");
    assert_eq!(setup.fetch_as("203.0.113.99").await, 403);
    assert_eq!(
        setup.decision("user:bob", "document:a").await["obligations"][0]["id"],
        "monitor"
    );
    // The same alert again: one effect.
    let again = responder
        .handle(&trigger("maos-brute-force-source", Severity::High, &[]))
        .await;
    assert!(
        again
            .iter()
            .all(|o| o.status == OutcomeStatus::AlreadyActive)
    );

    // A critical hit matches the dry-run playbook: reported, nothing changed.
    setup
        .create_principal(json!({"id": "user:bob", "password": "bob's passphrase"}))
        .await;
    let key = setup.api_key("user:bob").await;
    let rehearsed = responder
        .handle(&trigger("other-rule", Severity::Critical, &[]))
        .await;
    assert_eq!(rehearsed.len(), 1);
    assert_eq!(rehearsed[0].status, OutcomeStatus::DryRun);
    assert_eq!(setup.credential_status(&key).await, 403);

    // Tags: the resource is quarantined.
    let quarantine = responder
        .handle(&trigger("exfil", Severity::Low, &["attack.exfiltration"]))
        .await;
    assert_eq!(quarantine[0].status, OutcomeStatus::Applied);
    assert_eq!(
        setup.decision("user:alice", "document:leak").await["decision"],
        false
    );

    // A trigger without the field an action needs skips that action.
    let bare = Trigger {
        source_ip: None,
        ..trigger("maos-brute-force-source", Severity::High, &[])
    };
    let skipped = responder.handle(&bare).await;
    assert_eq!(skipped[0].status, OutcomeStatus::Skipped);

    // Playbook actions are audited as the system's, with the rule and alert.
    let records = setup.audit("response.block_ip").await;
    assert_eq!(records[0]["actor"], "system");
    assert_eq!(records[0]["details"]["rule_id"], "maos-brute-force-source");
    assert_eq!(records[0]["details"]["playbook"], "block brute force");

    // The enforcement latency is in /metrics.
    let metrics = setup
        .server
        .client
        .get(setup.server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("maos_response_enforcement_seconds"),
        "no latency histogram"
    );
    setup.stop().await;
}

#[tokio::test]
async fn bad_requests_are_refused_with_an_error_body() {
    let setup = Setup::start().await;
    for (body, code) in [
        (json!({"action": "nuke", "target": "x"}), "invalid_action"),
        (
            json!({"action": "block_ip", "target": "not-an-ip"}),
            "invalid_target",
        ),
        (
            json!({"action": "block_ip", "target": "0.0.0.0/0"}),
            "invalid_target",
        ),
        (
            json!({"action": "disable_user", "target": "document:x"}),
            "invalid_target",
        ),
        (
            json!({"action": "block_ip", "target": "192.0.2.1", "duration": "soon"}),
            "invalid_duration",
        ),
        (
            json!({"action": "block_ip", "target": "192.0.2.1", "duration": "400d"}),
            "invalid_duration",
        ),
        (
            json!({"action": "block_ip", "target": "192.0.2.1", "duration": 0}),
            "invalid_duration",
        ),
    ] {
        let (status, answer) = setup.act(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    let (status, _) = setup
        .act(json!({"action": "block_ip", "target": "192.0.2.1", "extra": 1}))
        .await;
    assert_eq!(status, 400);

    let listing = setup
        .server
        .get("/v1/response/actions?limit=0")
        .send()
        .await
        .unwrap();
    assert_eq!(listing.status(), 400);
    let unknown = setup
        .server
        .get("/v1/response/actions/act_0000000000000000")
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    let openapi: Value = setup
        .server
        .client
        .get(setup.server.url("/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["paths"]["/v1/response/actions"]["post"].is_object());
    assert!(openapi["paths"]["/v1/response/actions/{id}"]["delete"].is_object());

    // Only callers allowed on `maos:response`.
    let anonymous = setup
        .server
        .client
        .get(setup.server.url("/v1/response/actions"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let bob = setup.server.token_for("user:bob", &[]).await;
    let stranger = setup
        .server
        .client
        .post(setup.server.url("/v1/response/actions"))
        .bearer_auth(&bob)
        .json(&json!({"action": "block_ip", "target": "192.0.2.1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 403);
    setup.stop().await;
}

/// Two nodes on one PostgreSQL database: an action taken through one is enforced by the other
/// (blocklist, quarantine), and an expiring action is undone once between them.
#[tokio::test]
async fn actions_on_one_node_are_enforced_by_the_other() {
    use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};

    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping the two-node response test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("the two-node response test needs PostgreSQL (CI=true): {e}"),
    };
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut nodes = Vec::new();
    for dir in &dirs {
        let mut config = common::test_config(dir.path());
        config.storage.url = schema.url.clone();
        config.keys.kek_file = dirs[0].path().join("kek");
        nodes.push(
            maos_server::start(config, Some(common::ADMIN_TOKEN.into()))
                .await
                .unwrap(),
        );
    }
    let a = format!("http://{}", nodes[0].http_addr);
    let b = format!("http://{}", nodes[1].http_addr);
    let client = reqwest::Client::new();
    let uploaded = client
        .post(format!("{a}/v1/policy/versions"))
        .bearer_auth(common::ADMIN_TOKEN)
        .body(APP_BUNDLE)
        .send()
        .await
        .unwrap();
    assert_eq!(uploaded.status(), 201);
    let act = |body: Value| {
        client
            .post(format!("{a}/v1/response/actions"))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&body)
            .send()
    };
    let decide_on_b = || async {
        let answer: Value = client
            .post(format!("{b}/v1/authorize"))
            .bearer_auth(common::ADMIN_TOKEN)
            .json(&request("user:bob", "document:plans", "read"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["decision"].as_bool().unwrap()
    };
    let within_a_second = |what: &str| {
        let started = std::time::Instant::now();
        let what = what.to_owned();
        move || {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "{what} not enforced on the other node within 1 s"
            );
        }
    };

    // Quarantined through A: B denies (once it has the bundle that lets bob read).
    let check = within_a_second("the bundle");
    while !decide_on_b().await {
        check();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let quarantined =
        act(json!({"action": "quarantine_resource", "target": "document:plans", "duration": "2s"}))
            .await
            .unwrap();
    assert_eq!(quarantined.status(), 201);
    let check = within_a_second("the quarantine");
    while decide_on_b().await {
        check();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Blocked through A: B's gateway blocklist refuses the address.
    let blocked = act(json!({"action": "block_ip", "target": "203.0.113.40"}))
        .await
        .unwrap();
    assert_eq!(blocked.status(), 201);
    let check = within_a_second("the block");
    let ip: std::net::IpAddr = "203.0.113.40".parse().unwrap();
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        if nodes[1].state.blocklist.load().check(ip, now).is_err() {
            break;
        }
        check();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The quarantine runs out: B allows again, and one node recorded the expiry.
    let started = std::time::Instant::now();
    while !decide_on_b().await {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the quarantine never ended"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let expiries: Value = client
        .get(format!("{b}/v1/audit?action=response.expire"))
        .bearer_auth(common::ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        expiries["records"].as_array().unwrap().len(),
        1,
        "{expiries}"
    );

    for node in nodes {
        node.shutdown().await;
    }
    schema.drop_schema().await.unwrap();
}

/// Prints the distribution of the enforcement latency of `block_ip` from playbooks over 200
/// triggers (a measurement, not a check: `cargo test --test response -- --ignored
/// --nocapture`; docs/response.md quotes it).
#[tokio::test]
#[ignore = "a measurement; run by hand"]
async fn enforcement_latency_distribution() {
    let setup = Setup::start().await;
    let responder = &setup.state().responder;
    let mut latencies = Vec::new();
    for i in 0..200u32 {
        let hit = Trigger {
            source_ip: Some(format!("10.{}.{}.1", i / 250, i % 250).parse().unwrap()),
            principal: None,
            detected_at: Timestamp::now(),
            event_time: None,
            ..trigger("maos-brute-force-source", Severity::High, &[])
        };
        let outcomes = responder.handle(&hit).await;
        let record = outcomes[0].record.as_ref().unwrap();
        latencies.push(record.enforcement_latency_ms.unwrap());
    }
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "block_ip enforcement latency over {} triggers: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    setup.stop().await;
}

/// The whole loop in one process: failed logins raise the bundled brute-force alert, the alert
/// runs the playbook that names the rule, and the gateway refuses the address.
#[tokio::test]
async fn a_brute_force_alert_blocks_the_address_through_its_playbook() {
    let setup = Setup::start_with_playbooks(
        r#"
[[playbooks]]
name = "block brute force"
rules = ["Brute force from one source address"]
[[playbooks.actions]]
action = "block_ip"
duration = "10m"
"#,
    )
    .await;
    assert_eq!(setup.fetch_as("127.0.0.1").await, 200);
    // The test client logs in from 127.0.0.1: ten failures, under different names.
    for i in 0..10 {
        let failed = setup
            .server
            .client
            .post(setup.server.url("/v1/login"))
            .json(&json!({"username": format!("nobody{i}"), "password": "wrong"}))
            .send()
            .await
            .unwrap();
        assert_eq!(failed.status(), 401);
    }
    setup.fetch_becomes("127.0.0.1", 403).await;
    assert_eq!(setup.fetch_as("127.0.0.9").await, 200);

    let actions = setup
        .server
        .get("/v1/response/actions?state=active")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let text = actions;
    assert!(
        text.contains("block_ip") && text.contains("127.0.0.1"),
        "{text}"
    );
    setup.server.stop().await;
}

const BLOCK_BRIEFLY: &str = r#"
[[playbooks]]
name = "block brute force"
rules = ["Brute force from one source address"]
[[playbooks.actions]]
action = "block_ip"
duration = "1s"
"#;

impl Setup {
    /// Posts failed authentications from `ip` (new ids, one principal each) at `time`.
    async fn post_failures(&self, ip: &str, count: usize, time: Option<String>) {
        let events: Vec<Value> = (0..count)
            .map(|i| {
                let mut event = json!({"type": "authentication_failure", "severity": "low",
                    "source_ip": ip, "principal": format!("user:u{i}")});
                if let Some(time) = &time {
                    event["time"] = json!(time);
                }
                event
            })
            .collect();
        let response = self
            .server
            .post("/v1/events")
            .json(&Value::Array(events))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }

    async fn block_records(&self, target: &str) -> Vec<Value> {
        let page: Value = self
            .server
            .get("/v1/response/actions?limit=50")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["actions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["action"] == "block_ip" && a["target"] == target)
            .cloned()
            .collect()
    }

    /// The alerts about `ip`, once stored (waits up to 5 s for at least one).
    async fn alerts_of(&self, ip: &str) -> Vec<Value> {
        for _ in 0..50 {
            let page: Value = self
                .server
                .get(&format!("/v1/alerts?source_ip={ip}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let alerts = page["alerts"].as_array().cloned().unwrap_or_default();
            if !alerts.is_empty() {
                return alerts;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Vec::new()
    }
}

/// A hit counted into the open alert reaches the playbooks: once the first ban has run out, the
/// next failure bans the address again, twice as long.
#[tokio::test]
async fn a_repeat_offender_is_banned_again_while_its_alert_is_open() {
    let setup = Setup::start_with_playbooks(BLOCK_BRIEFLY).await;
    setup.post_failures("198.51.100.61", 10, None).await;
    setup.fetch_becomes("198.51.100.61", 403).await;
    let first = setup.block_records("198.51.100.61/32").await;
    assert_eq!(first.len(), 1, "{first:?}");
    let id = first[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(setup.ended(&id).await["state"], "expired");
    setup.fetch_becomes("198.51.100.61", 200).await;

    // One more failure, counted into the same open alert.
    setup.post_failures("198.51.100.61", 1, None).await;
    setup.fetch_becomes("198.51.100.61", 403).await;
    let blocks = setup.block_records("198.51.100.61/32").await;
    let second = blocks.iter().find(|b| b["id"] != id.as_str()).unwrap();
    assert_eq!(second["repeat"], 2, "{second}");
    let length = second["expires_at"].as_i64().unwrap() - second["created_at"].as_i64().unwrap();
    assert_eq!(length, 2000, "{second}");
    let alerts = setup.alerts_of("198.51.100.61").await;
    let brute: Vec<&Value> = alerts
        .iter()
        .filter(|a| a["rule_title"] == "Brute force from one source address")
        .collect();
    assert_eq!(brute.len(), 1, "{alerts:?}");
    setup.stop().await;
}

/// An administrator's disable wins over an automatic one: the action ends (not undone) and its
/// expiry does not enable the principal again.
#[tokio::test]
async fn an_administrator_disable_is_not_undone_by_an_automatic_disable_user() {
    let setup = Setup::start().await;
    setup
        .create_principal(json!({"id": "agent:etl", "roles": []}))
        .await;
    let key = setup.api_key("agent:etl").await;
    let answer = setup
        .applied(json!({"action": "disable_user", "target": "agent:etl", "duration": "1s"}))
        .await;
    let disabled = setup
        .server
        .post("/v1/principals/agent:etl/disable")
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    let record = setup.ended(&id_of(&answer)).await;
    assert_eq!(record["state"], "undone", "{record}");
    assert!(
        record["end_reason"]
            .as_str()
            .unwrap()
            .contains("superseded"),
        "{record}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(setup.credential_status(&key).await, 401);
    let principal: Value = setup
        .server
        .get("/v1/principals/agent:etl")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(principal["status"], "disabled", "{principal}");
    let (status, _) = setup.undo(&id_of(&answer)).await;
    assert_eq!(status, 409);
    setup.stop().await;
}

/// Days-old failures are stored and alerted on, but ban nobody now; a recent one does.
#[tokio::test]
async fn old_log_lines_raise_alerts_but_start_no_action() {
    let setup = Setup::start_with_playbooks(BLOCK_BRIEFLY).await;
    let old = Timestamp::from_unix_micros(Timestamp::now().unix_micros() - 3 * 86_400_000_000);
    let old_text = serde_json::to_value(old).unwrap();
    setup
        .post_failures(
            "198.51.100.62",
            10,
            Some(old_text.as_str().unwrap().to_owned()),
        )
        .await;
    let alerts = setup.alerts_of("198.51.100.62").await;
    assert!(
        alerts
            .iter()
            .any(|a| a["rule_title"] == "Brute force from one source address"),
        "{alerts:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(setup.block_records("198.51.100.62/32").await.is_empty());
    assert_eq!(setup.fetch_as("198.51.100.62").await, 200);

    let stale = Trigger {
        event_time: Some(old),
        ..trigger("Brute force from one source address", Severity::High, &[])
    };
    let outcomes = setup.state().responder.handle(&stale).await;
    assert!(!outcomes.is_empty());
    for outcome in &outcomes {
        assert_eq!(outcome.status, OutcomeStatus::Skipped);
        assert!(
            outcome
                .message
                .as_deref()
                .unwrap()
                .contains("max_trigger_age"),
            "{outcome:?}"
        );
    }
    setup.stop().await;
}

/// The latency is measured from the event's arrival, not from its own (older) time stamp.
#[tokio::test]
async fn the_enforcement_latency_counts_from_the_events_arrival() {
    let setup = Setup::start_with_playbooks(BLOCK_BRIEFLY).await;
    let earlier = Timestamp::from_unix_micros(Timestamp::now().unix_micros() - 120_000_000);
    let text = serde_json::to_value(earlier).unwrap();
    setup
        .post_failures("198.51.100.63", 10, Some(text.as_str().unwrap().to_owned()))
        .await;
    setup.fetch_becomes("198.51.100.63", 403).await;
    let blocks = setup.block_records("198.51.100.63/32").await;
    let latency = blocks[0]["enforcement_latency_ms"].as_f64().unwrap();
    assert!(latency < 60_000.0, "{latency}");
    setup.stop().await;
}

/// `::ffff:a.b.c.d` posted to `/v1/events` is stored as a.b.c.d: found by either form and
/// counted with the plain address.
#[tokio::test]
async fn ipv4_mapped_addresses_are_stored_as_ipv4() {
    let setup = Setup::start_with_playbooks(BLOCK_BRIEFLY).await;
    setup.post_failures("192.0.2.35", 5, None).await;
    setup.post_failures("::ffff:192.0.2.35", 5, None).await;
    let alerts = setup.alerts_of("192.0.2.35").await;
    assert!(
        alerts
            .iter()
            .any(|a| a["rule_title"] == "Brute force from one source address"),
        "{alerts:?}"
    );
    let page: Value = setup
        .server
        .get("/v1/events?source_ip=192.0.2.35")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let events = page["events"].as_array().unwrap();
    assert_eq!(events.len(), 10, "{page}");
    assert!(events.iter().all(|e| e["source_ip"] == "192.0.2.35"));
    setup.stop().await;
}

/// The same event id posted again is stored once and counted once.
#[tokio::test]
async fn an_event_sent_again_is_counted_once() {
    let setup = Setup::start_with_playbooks(BLOCK_BRIEFLY).await;
    for _ in 0..12 {
        let response = setup
            .server
            .post("/v1/events")
            .json(&json!({"id": "same-1", "type": "authentication_failure",
                "severity": "medium", "source_ip": "192.0.2.77", "principal": "user:u1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
    }
    // A marker event through the same queue: once it is stored, the others were handled.
    setup.post_failures("192.0.2.78", 1, None).await;
    for _ in 0..50 {
        let page: Value = setup
            .server
            .get("/v1/events?source_ip=192.0.2.78")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if page["events"].as_array().is_some_and(|e| !e.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page: Value = setup
        .server
        .get("/v1/alerts?source_ip=192.0.2.77")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let brute = page["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| {
            a["rule_title"]
                .as_str()
                .unwrap_or("")
                .starts_with("Brute force")
        })
        .count();
    assert_eq!(brute, 0, "{page}");
    assert!(setup.block_records("192.0.2.77/32").await.is_empty());
    assert_eq!(setup.fetch_as("192.0.2.77").await, 200);
    setup.stop().await;
}

/// A tailed JSON-lines file takes the events `POST /v1/events` takes: without `id`, `time` or
/// `source` they get the same defaults.
#[tokio::test]
async fn tailed_json_lines_without_id_or_source_are_taken() {
    use maos_server::siem::config::{FileConfig, FileFormat, StartAt};
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("events.jsonl");
    let now = serde_json::to_value(Timestamp::now()).unwrap();
    std::fs::write(
        &path,
        format!(
            "{}\n{}\n",
            json!({"type": "intrusion_attempt", "severity": "high",
                "source_ip": "198.51.100.65", "resource": "document:x"}),
            json!({"time": now, "type": "intrusion_attempt", "severity": "high",
                "source_ip": "198.51.100.72"}),
        ),
    )
    .unwrap();
    let file_path = path.clone();
    let server = TestServer::start_with(move |c| {
        c.siem.file_poll_milliseconds = 50;
        c.siem.files = vec![FileConfig {
            path: file_path,
            format: FileFormat::Json,
            start_at: StartAt::Beginning,
        }];
    })
    .await;
    for ip in ["198.51.100.65", "198.51.100.72"] {
        let mut found = Vec::new();
        for _ in 0..50 {
            let page: Value = server
                .get(&format!("/v1/events?source_ip={ip}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            found = page["events"].as_array().cloned().unwrap_or_default();
            if !found.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(found.len(), 1, "{ip}");
        assert_eq!(found[0]["source"], "json");
        assert!(!found[0]["id"].as_str().unwrap().is_empty());
    }
    server.stop().await;
}

/// Playbooks naming a rule or tag no loaded rule has are reported (they would never fire).
#[tokio::test]
async fn playbooks_that_match_no_rule_are_warned_about() {
    let response: maos_server::response::ResponseConfig = toml::from_str(
        r#"
[[playbooks]]
name = "typo"
rules = ["Brute force from one source adress", "maos_brute_force_user"]
tags = ["attack.credential_access"]
[[playbooks.actions]]
action = "block_ip"

[[playbooks]]
name = "fine"
rules = ["Brute force from one source address"]
tags = ["attack.credential-access"]
[[playbooks.actions]]
action = "block_ip"
"#,
    )
    .unwrap();
    let siem = maos_server::siem::config::SiemConfig::default();
    let (_, catalog) = maos_server::siem::load_rules(&siem).unwrap();
    let warnings = catalog.check_playbooks(&response.playbooks);
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.contains("`typo`")),
        "{warnings:?}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("attack.credential_access"))
    );
}
