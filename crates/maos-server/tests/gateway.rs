//! The security gateway end to end: `maos serve` listeners from `[[gateway.routes]]` in front of
//! a real hyper upstream on loopback, one test per known bypass, TLS and mTLS with rcgen
//! certificates, the blocklist admin API, and the verification context acting through policy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use common::{ADMIN_TOKEN, TestServer};
use http_body_util::{BodyExt, Full};
use maos_core::event::SecurityEvent;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::broadcast;

/// The policy the gateway tests run under: alice reads documents and places orders; nobody
/// but the admin sees `admin:panel`; a risky request needs a step-up; a blocklisted client
/// that a route lets through is denied.
const GATEWAY_BUNDLE: &str = r#"
version: 1
roles:
  - name: reader
    permissions:
      - { resource: "document:**", actions: ["read"] }
      - { resource: "order:**", actions: ["create"] }
bindings:
  - { subject: "user:alice", roles: ["reader"] }
policies:
  - id: step-up-when-risky
    effect: deny
    target:
      environment: [{ attribute: context.risk.score, operator: exists }]
    condition: { attribute: context.risk.score, operator: gte, value: 50 }
    obligations: [{ id: step_up, on: deny }]
  - id: secret-documents-only-internally
    effect: deny
    target:
      resource: [{ attribute: resource.properties.path, operator: exists }]
      environment: [{ attribute: context.network.zone, operator: exists }]
    condition:
      all:
        - { attribute: resource.properties.path, operator: starts_with, value: "/docs/secret/" }
        - { attribute: context.network.zone, operator: neq, value: internal }
"#;

/// A hyper upstream that answers what it received as JSON and counts requests.
struct Upstream {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
}

async fn start_upstream() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |request: hyper::Request<hyper::body::Incoming>| {
                        let counter = counter.clone();
                        async move {
                            counter.fetch_add(1, Ordering::SeqCst);
                            let (parts, body) = request.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            let headers: serde_json::Map<String, Value> = parts
                                .headers
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_owned(), json!(v.to_str().unwrap_or("?")))
                                })
                                .collect();
                            let answer = json!({
                                "method": parts.method.as_str(),
                                "target": parts.uri.to_string(),
                                "headers": headers,
                                "body_length": body.len(),
                                "user": {"name": "alice", "ssn": "078-05-1120"},
                            });
                            let response = hyper::Response::builder()
                                .header("content-type", "application/json")
                                .header("server", "upstream/1.0")
                                .header("x-powered-by", "hopes")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap();
                            Ok::<_, std::convert::Infallible>(response)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Upstream { addr, hits }
}

/// The gateway section of the tests' configuration: route 0 `app` (detection blocks), 1
/// `fenced` (static deny rules), 2 `limited` (2 requests a minute per client), 3 `watch`
/// (detection reports only; blocklisted clients go on to the policy).
fn gateway_toml(upstream: SocketAddr, extra: &str) -> String {
    format!(
        r#"
trusted_proxies = ["127.0.0.2/32"]
zones = {{ internal = ["10.0.0.0/8"] }}

[[routes]]
name = "app"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
max_body_bytes = 1024
redact = ["ssn"]
detection = {{ mode = "block" }}
{extra}
[[routes.rules]]
method = "GET"
path = "/docs/{{*path}}"
resource = "document:{{path}}"
action = "read"
[[routes.rules]]
method = "GET"
path = "/admin"
resource = "admin:panel"
action = "read"
[[routes.rules]]
method = "POST"
path = "/orders"
resource = "order:new"
action = "create"
content_types = ["application/json"]
schema = {{ type = "object", required = ["item", "count"], additionalProperties = false, properties = {{ item = {{ type = "string" }}, count = {{ type = "integer", minimum = 1 }} }} }}

[[routes]]
name = "fenced"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
deny = ["127.0.0.1/32", "198.51.100.0/24"]
[[routes.rules]]
path = "/docs/{{*path}}"
resource = "document:{{path}}"
action = "read"

[[routes]]
name = "limited"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
limits = {{ per_client = {{ requests = 2, per_seconds = 60 }} }}
[[routes.rules]]
path = "/docs/{{*path}}"
resource = "document:{{path}}"
action = "read"

[[routes]]
name = "watch"
listen = "127.0.0.1:0"
upstream = "http://{upstream}"
blocklisted = "score"
detection = {{ mode = "detect" }}
[[routes.rules]]
path = "/docs/{{*path}}"
resource = "document:{{path}}"
action = "read"
"#
    )
}

struct Gateway {
    server: TestServer,
    upstream: Upstream,
    alice: String,
    events: broadcast::Receiver<Arc<SecurityEvent>>,
}

impl Gateway {
    async fn start() -> Gateway {
        Self::start_with("").await
    }

    async fn start_with(extra: &str) -> Gateway {
        let upstream = start_upstream().await;
        let text = gateway_toml(upstream.addr, extra);
        let gateway: maos_server::gateway::config::GatewayConfig = toml::from_str(&text).unwrap();
        gateway.validate().unwrap();
        let server = TestServer::start_with(move |config| config.gateway = gateway).await;
        server.upload(GATEWAY_BUNDLE).await;
        let alice = server.token_for("user:alice", &[]).await;
        let events = server.server.as_ref().unwrap().state.events.subscribe();
        Gateway {
            server,
            upstream,
            alice,
            events,
        }
    }

    fn addr(&self, route: usize) -> SocketAddr {
        self.server.server.as_ref().unwrap().gateway_addrs[route]
    }

    fn hits(&self) -> usize {
        self.upstream.hits.load(Ordering::SeqCst)
    }

    /// A request on route `route` with alice's token; `rest` adds headers and the body.
    async fn send(&self, route: usize, method: &str, target: &str, rest: &str) -> Answer {
        let head = format!(
            "{method} {target} HTTP/1.1\r\nHost: app.test\r\nAuthorization: Bearer {}\r\n\
             Connection: close\r\n{rest}",
            self.alice
        );
        let head = if rest.is_empty() {
            format!("{head}\r\n")
        } else {
            head
        };
        let stream = tokio::net::TcpStream::connect(self.addr(route))
            .await
            .unwrap();
        exchange(stream, head.as_bytes()).await
    }

    /// The next security event about a refusal with this reason.
    async fn event(&mut self, reason: &str) -> Arc<SecurityEvent> {
        let wait = async {
            loop {
                let event = self.events.recv().await.unwrap();
                if event.details.get("reason") == Some(&json!(reason)) {
                    return event;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(5), wait)
            .await
            .unwrap_or_else(|_| panic!("no `{reason}` event"))
    }

    async fn stop(self) {
        self.server.stop().await;
    }
}

/// A response read off the wire.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {self:?}"))
    }

    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Writes `bytes` (ignoring a connection the server already closed) and reads the answer.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) -> Answer {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
    read_answer(&mut stream).await
}

async fn read_answer<S: AsyncRead + Unpin>(stream: &mut S) -> Answer {
    let mut raw = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Answer {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

#[tokio::test]
async fn allowed_requests_reach_the_upstream_with_identity_and_security_headers() {
    let gw = Gateway::start().await;
    let answer = gw
        .send(
            0,
            "GET",
            "/docs/guide%20v2?page=1",
            "X-Maos-Subject: user:admin\r\nX-Maos-Roles: maos-admin\r\n\r\n",
        )
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    let seen = answer.json();
    // The path that was authorized is the path that was sent, and the query went along.
    assert_eq!(seen["target"], "/docs/guide%20v2?page=1");
    assert_eq!(seen["headers"]["x-maos-subject"], "user:alice");
    assert!(seen["headers"].get("x-maos-roles").is_none(), "{seen}");
    assert_eq!(seen["headers"]["x-forwarded-for"], "127.0.0.1");
    // Redacted, and the upstream's software hidden.
    assert_eq!(seen["user"]["ssn"], "[redacted]");
    assert_eq!(seen["user"]["name"], "alice");
    assert!(answer.header("server").is_none(), "{}", answer.head);
    assert!(answer.header("x-powered-by").is_none(), "{}", answer.head);
    assert_eq!(
        answer.header("x-content-type-options").as_deref(),
        Some("nosniff")
    );
    assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"));
    assert!(answer.header("content-security-policy").is_some());
    assert!(answer.header("referrer-policy").is_some());
    assert!(answer.header("permissions-policy").is_some());
    // HSTS only over TLS.
    assert!(answer.header("strict-transport-security").is_none());
    gw.stop().await;
}

#[tokio::test]
async fn unauthenticated_and_unauthorized_requests_are_refused_with_events() {
    let mut gw = Gateway::start().await;
    let stream = tokio::net::TcpStream::connect(gw.addr(0)).await.unwrap();
    let answer = exchange(
        stream,
        b"GET /docs/a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(answer.status, 401);
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .starts_with("Bearer")
    );
    gw.event("unauthenticated").await;

    let answer = gw.send(0, "GET", "/admin", "").await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "forbidden"));
    let event = gw.event("forbidden").await;
    assert_eq!(event.principal.as_deref(), Some("user:alice"));
    assert_eq!(event.resource.as_deref(), Some("admin:panel"));

    let answer = gw.send(0, "GET", "/nowhere", "").await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "no_route"));
    assert_eq!(gw.hits(), 0);
    gw.stop().await;
}

/// Path parameters are resource properties: a policy denies `secret/` documents outside the
/// internal zone.
#[tokio::test]
async fn path_parameters_reach_the_policy_as_resource_properties() {
    let gw = Gateway::start().await;
    assert_eq!(gw.send(0, "GET", "/docs/public/a", "").await.status, 200);
    let answer = gw.send(0, "GET", "/docs/secret/plans", "").await;
    assert_eq!((answer.status, answer.code().as_str()), (403, "forbidden"));
    gw.stop().await;
}

// One test per known bypass. Each must neither reach the upstream nor be allowed.

async fn assert_refused_bypass(target: &str, expected: &[u16]) {
    let mut gw = Gateway::start().await;
    let answer = gw.send(0, "GET", target, "").await;
    assert!(expected.contains(&answer.status), "{target}: {answer:?}");
    assert_eq!(gw.hits(), 0, "{target} reached the upstream");
    if answer.status != 400 || !answer.body.is_empty() {
        let reason = answer.code();
        gw.event(&reason).await;
    }
    gw.stop().await;
}

#[tokio::test]
async fn bypass_encoded_dot_segments_are_refused() {
    assert_refused_bypass("/docs/%2e%2e/admin", &[400]).await;
    assert_refused_bypass("/docs/%2E%2E%2fadmin", &[400]).await;
}

#[tokio::test]
async fn bypass_double_slash_is_refused() {
    assert_refused_bypass("//admin", &[400]).await;
}

#[tokio::test]
async fn bypass_semicolon_parameter_is_refused() {
    assert_refused_bypass("/admin;x", &[400]).await;
}

#[tokio::test]
async fn bypass_fragment_is_matched_without_it() {
    // `/admin#x` is `/admin`, and `/admin` is forbidden to alice.
    assert_refused_bypass("/admin#x", &[400, 403]).await;
}

#[tokio::test]
async fn bypass_encoded_slash_is_refused() {
    assert_refused_bypass("/admin%2f", &[400]).await;
    assert_refused_bypass("/docs/..%2fadmin", &[400]).await;
}

#[tokio::test]
async fn bypass_backslash_is_refused() {
    assert_refused_bypass("\\admin", &[400]).await;
    assert_refused_bypass("/docs/..%5cadmin", &[400]).await;
}

#[tokio::test]
async fn bypass_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let mut gw = Gateway::start().await;
    // The peer 127.0.0.1 is denied on `fenced`; naming another client does not help.
    let answer = gw
        .send(1, "GET", "/docs/a", "X-Forwarded-For: 203.0.113.50\r\n\r\n")
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "firewall_denied")
    );
    let event = gw.event("firewall_denied").await;
    assert_eq!(event.source_ip, Some("127.0.0.1".parse().unwrap()));
    // On an open route the upstream hears the peer, not the claim.
    let answer = gw
        .send(0, "GET", "/docs/a", "X-Forwarded-For: 10.1.2.3\r\n\r\n")
        .await;
    assert_eq!(answer.json()["headers"]["x-forwarded-for"], "127.0.0.1");
    gw.stop().await;
}

#[tokio::test]
async fn bypass_ipv4_mapped_ipv6_matches_an_ipv4_deny_rule() {
    let mut gw = Gateway::start().await;
    // From the trusted proxy 127.0.0.2, a client written as `::ffff:198.51.100.7`.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let stream = socket.connect(gw.addr(1)).await.unwrap();
    let request = format!(
        "GET /docs/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         X-Forwarded-For: ::ffff:198.51.100.7\r\nConnection: close\r\n\r\n",
        gw.alice
    );
    let answer = exchange(stream, request.as_bytes()).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "firewall_denied")
    );
    let event = gw.event("firewall_denied").await;
    assert_eq!(event.source_ip, Some("198.51.100.7".parse().unwrap()));
    assert_eq!(gw.hits(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn bypass_over_limit_chunked_body_is_refused_with_413() {
    let mut gw = Gateway::start().await;
    let chunk = format!("200\r\n{}\r\n", "a".repeat(0x200));
    let body = format!("{}0\r\n\r\n", chunk.repeat(4));
    let rest =
        format!("Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{body}");
    let answer = gw.send(0, "POST", "/orders", &rest).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (413, "payload_too_large")
    );
    gw.event("payload_too_large").await;
    // A declared length over the limit is refused before the body is sent.
    let answer = gw
        .send(0, "POST", "/orders", "Content-Type: application/json\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
        .await;
    assert_eq!(answer.status, 413);
    assert!(!answer.head.contains("100 Continue"), "{}", answer.head);
    assert_eq!(gw.hits(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn bypass_mismatched_content_type_is_refused_with_415() {
    let mut gw = Gateway::start().await;
    let body = r#"{"item":"book","count":1}"#;
    let rest = format!(
        "Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = gw.send(0, "POST", "/orders", &rest).await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (415, "unsupported_media_type")
    );
    gw.event("unsupported_media_type").await;
    assert_eq!(gw.hits(), 0);
    gw.stop().await;
}

#[tokio::test]
async fn bypass_body_violating_the_schema_is_refused_with_400() {
    let mut gw = Gateway::start().await;
    for body in [
        r#"{"item":"book","count":0}"#,
        r#"{"item":"book"}"#,
        r#"{"item":"b","count":1,"admin":true}"#,
    ] {
        let rest = format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let answer = gw.send(0, "POST", "/orders", &rest).await;
        assert_eq!(
            (answer.status, answer.code().as_str()),
            (400, "schema_violation"),
            "{body}"
        );
        gw.event("schema_violation").await;
    }
    assert_eq!(gw.hits(), 0);
    let body = r#"{"item":"book","count":2}"#;
    let rest = format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let answer = gw.send(0, "POST", "/orders", &rest).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["body_length"], body.len());
    gw.stop().await;
}

#[tokio::test]
async fn client_rate_limit_answers_429_with_retry_after() {
    let mut gw = Gateway::start().await;
    assert_eq!(gw.send(2, "GET", "/docs/a", "").await.status, 200);
    assert_eq!(gw.send(2, "GET", "/docs/a", "").await.status, 200);
    let answer = gw.send(2, "GET", "/docs/a", "").await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (429, "rate_limited")
    );
    let retry: u64 = answer.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    gw.event("rate_limited").await;
    // Other routes keep their own limits, but the client is now `suspicious`: that signal
    // (30) with the external network (10) and no device certificate (10) reaches the policy's
    // step-up threshold of 50.
    let answer = gw.send(0, "GET", "/docs/a", "").await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "step_up_required")
    );
    let event = gw.event("step_up_required").await;
    let signals = event.details["risk"]["signals"].as_array().unwrap();
    assert!(signals.contains(&json!("suspicious")), "{signals:?}");
    gw.stop().await;
}

#[tokio::test]
async fn intrusions_are_blocked_or_reported_by_mode() {
    let mut gw = Gateway::start().await;
    let answer = gw
        .send(0, "GET", "/docs/a?id=1%27%20OR%20%271%27%3D%271", "")
        .await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "intrusion_detected")
    );
    let event = gw.event("intrusion_detected").await;
    assert!(event.details["anomaly_score"].as_u64().unwrap() >= 5);
    let answer = gw
        .send(0, "GET", "/docs/a", "User-Agent: sqlmap/1.7\r\n\r\n")
        .await;
    assert_eq!(answer.status, 403);
    let event = gw.event("intrusion_detected").await;
    assert!(
        event.details["message"]
            .as_str()
            .unwrap()
            .contains("Scanner"),
        "{event:?}"
    );
    assert_eq!(gw.hits(), 0);

    // Detect-only: reported, and the risk it adds (intrusion 40 + external 10 + untrusted
    // device 10 + suspicious 30 after the refusals above) makes the policy ask for a step-up.
    let answer = gw
        .send(
            3,
            "GET",
            "/docs/a?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            "",
        )
        .await;
    let event = gw.event("intrusion_detected").await;
    assert_eq!(event.details["gateway.outcome"], "detected");
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "step_up_required")
    );
    assert!(
        answer
            .header("www-authenticate")
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    gw.stop().await;
}

/// Each verification signal the integration can produce moves the score the upstream sees,
/// and the policy acts on it.
#[tokio::test]
async fn risk_signals_move_the_score_and_the_policy_acts_on_it() {
    let mut gw = Gateway::start().await;
    // External network and no device certificate.
    let answer = gw.send(3, "GET", "/docs/a", "").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["headers"]["x-maos-risk-score"], "20");

    // A blocklisted client: refused where the route refuses, scored where it lets through.
    let response = gw
        .server
        .post("/v1/blocklist")
        .json(&json!({"network": "127.0.0.1", "seconds": 600, "reason": "test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let answer = gw.send(0, "GET", "/docs/a", "").await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (403, "firewall_denied")
    );
    gw.event("firewall_denied").await;
    let answer = gw.send(3, "GET", "/docs/a", "").await;
    assert_eq!(
        (answer.status, answer.code().as_str()),
        (401, "step_up_required")
    );
    let event = gw.event("step_up_required").await;
    let signals = event.details["risk"]["signals"].as_array().unwrap();
    assert!(signals.contains(&json!("blocklisted")), "{signals:?}");
    gw.stop().await;
}

#[tokio::test]
async fn blocklist_admin_api_adds_lists_and_removes() {
    let gw = Gateway::start().await;
    let server = &gw.server;
    let response = server
        .post("/v1/blocklist")
        .json(&json!({"network": "::ffff:127.0.0.1", "seconds": 60, "reason": "drill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let entry: Value = response.json().await.unwrap();
    assert_eq!(entry["network"], "127.0.0.1/32");
    assert_eq!(entry["created_by"], "user:admin");
    assert_eq!(gw.send(0, "GET", "/docs/a", "").await.status, 403);

    let list: Value = server
        .get("/v1/blocklist")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["blocks"].as_array().unwrap().len(), 1);
    assert_eq!(list["blocks"][0]["reason"], "drill");

    let response = server
        .delete("/v1/blocklist/127.0.0.1/32")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(gw.send(0, "GET", "/docs/a", "").await.status, 200);
    let response = server
        .delete("/v1/blocklist/127.0.0.1/32")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Bad input and callers without the permission.
    for bad in [
        json!({"network": "nonsense", "seconds": 60}),
        json!({"network": "10.0.0.0/8", "seconds": 0}),
        json!({"network": "10.0.0.0/8"}),
    ] {
        let response = server
            .post("/v1/blocklist")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{bad}");
    }
    let response = server
        .client
        .get(server.url("/v1/blocklist"))
        .bearer_auth(&gw.alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let response = server
        .client
        .get(server.url("/v1/blocklist"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_ne!(ADMIN_TOKEN, gw.alice);
    gw.stop().await;
}

// TLS with rcgen certificates.

struct Pki {
    dir: tempfile::TempDir,
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "maos test ca");
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let ca = params.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca.pem()).unwrap();
        Pki { dir, ca, ca_key }
    }

    /// A certificate for `name` signed by the CA, written as `<file>.pem` and `<file>.key`.
    fn issue(&self, file: &str, name: &str, client: bool) -> (rcgen::Certificate, rcgen::KeyPair) {
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        if name.parse::<std::net::IpAddr>().is_ok() {
            params.subject_alt_names = vec![rcgen::SanType::IpAddress(name.parse().unwrap())];
        }
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        let key = rcgen::KeyPair::generate().unwrap();
        let issuer = rcgen::Issuer::from_ca_cert_der(self.ca.der(), &self.ca_key).unwrap();
        let cert = params.signed_by(&key, &issuer).unwrap();
        std::fs::write(self.path(&format!("{file}.pem")), cert.pem()).unwrap();
        std::fs::write(self.path(&format!("{file}.key")), key.serialize_pem()).unwrap();
        (cert, key)
    }

    fn path(&self, file: &str) -> String {
        self.dir.path().join(file).display().to_string()
    }

    fn client_config(
        &self,
        identity: Option<(&rcgen::Certificate, &rcgen::KeyPair)>,
    ) -> rustls::ClientConfig {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots);
        match identity {
            Some((cert, key)) => builder
                .with_client_auth_cert(
                    vec![cert.der().clone()],
                    rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        }
    }
}

async fn tls_exchange(
    addr: SocketAddr,
    config: rustls::ClientConfig,
    request: &str,
) -> std::io::Result<Answer> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut stream = connector.connect(name, tcp).await?;
    stream.write_all(request.as_bytes()).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let mut cursor: &[u8] = &raw;
    Ok(read_answer(&mut cursor).await)
}

fn tls_route(pki: &Pki, client_auth: &str) -> String {
    format!(
        "tls = {{ cert = \"{}\", key = \"{}\", client_ca = \"{}\", client_auth = \"{client_auth}\" }}\n",
        pki.path("server.pem"),
        pki.path("server.key"),
        pki.path("ca.pem"),
    )
}

#[tokio::test]
async fn tls_terminates_and_sends_hsts() {
    let pki = Pki::new();
    pki.issue("server", "127.0.0.1", false);
    let gw = Gateway::start_with(&tls_route(&pki, "optional")).await;
    let request = format!(
        "GET /docs/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        gw.alice
    );
    let answer = tls_exchange(gw.addr(0), pki.client_config(None), &request)
        .await
        .unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.header("strict-transport-security").is_some());
    assert_eq!(answer.json()["headers"]["x-forwarded-proto"], "https");
    // Plain HTTP to a TLS listener gets nowhere.
    let stream = tokio::net::TcpStream::connect(gw.addr(0)).await.unwrap();
    let plain = exchange(stream, request.as_bytes()).await;
    assert_eq!(plain.status, 0);
    assert_eq!(gw.hits(), 1);
    gw.stop().await;
}

#[tokio::test]
async fn mtls_accepts_known_client_certificates_and_refuses_others() {
    let pki = Pki::new();
    pki.issue("server", "127.0.0.1", false);
    let (client_cert, client_key) = pki.issue("client", "device-1", true);
    let gw = Gateway::start_with(&tls_route(&pki, "required")).await;
    let request = format!(
        "GET /docs/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        gw.alice
    );
    let config = pki.client_config(Some((&client_cert, &client_key)));
    let answer = tls_exchange(gw.addr(0), config, &request).await.unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    // A trusted device: only the external network adds risk.
    assert_eq!(answer.json()["headers"]["x-maos-risk-score"], "10");

    // No certificate: the handshake (or the first read after it) fails.
    let refused = tls_exchange(gw.addr(0), pki.client_config(None), &request).await;
    assert!(
        refused.is_err() || refused.as_ref().unwrap().status == 0,
        "{refused:?}"
    );

    // A certificate from another CA.
    let other = Pki::new();
    let (cert, key) = other.issue("client", "intruder", true);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
    )
    .unwrap();
    drop(other);
    let refused = tls_exchange(gw.addr(0), config, &request).await;
    assert!(
        refused.is_err() || refused.as_ref().unwrap().status == 0,
        "{refused:?}"
    );
    assert_eq!(gw.hits(), 1);
    gw.stop().await;
}
