//! The SIEM in the server, over real HTTP, UDP and TCP on loopback and real files: ingestion,
//! storage and search, detection of a brute force through the real login endpoint, syslog
//! listeners fed with fail2ban's sshd sample, file tailing through rotation and truncation,
//! retention, signed webhooks, and refusals of bad input.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::TestServer;
use maos_server::siem::config::{FileConfig, FileFormat, StartAt, WebhookConfig};
use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

const BRUTE_SOURCE: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a10";
const BRUTE_USER: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a11";
const INTRUSION_HIT: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a60";

/// fail2ban's sshd sample (`../shared` next to the repository).
fn sshd_sample() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/logs/fail2ban/sshd");
    assert!(
        path.exists(),
        "shared test data `{}` is missing: the repository must sit next to `shared/`",
        path.display()
    );
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The first sample line containing `needle`.
fn sample_line(needle: &str) -> String {
    sshd_sample()
        .into_iter()
        .find(|l| !l.starts_with('#') && l.contains(needle))
        .unwrap_or_else(|| panic!("no sample line with {needle}"))
}

/// Polls `check` until it gives `Some`, for at most 10 seconds.
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get_json(server: &TestServer, path: &str) -> Value {
    let response = server.get(path).send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{path}: {body}");
    body
}

async fn events(server: &TestServer, query: &str) -> Vec<Value> {
    let body = get_json(server, &format!("/v1/events?{query}")).await;
    body["events"].as_array().unwrap().clone()
}

async fn alerts(server: &TestServer, query: &str) -> Vec<Value> {
    let body = get_json(server, &format!("/v1/alerts?{query}")).await;
    body["alerts"].as_array().unwrap().clone()
}

/// Waits until exactly `n` events match `query`.
async fn wait_events(server: &TestServer, query: &str, n: usize) -> Vec<Value> {
    eventually(&format!("{n} events for {query}"), || async {
        let found = events(server, query).await;
        (found.len() == n).then_some(found)
    })
    .await
}

async fn wait_alert(server: &TestServer, query: &str) -> Value {
    eventually(&format!("an alert for {query}"), || async {
        alerts(server, query).await.into_iter().next()
    })
    .await
}

fn failure(id: &str, ip: &str, user: &str) -> Value {
    json!({"id": id, "source": "test", "type": "authentication_failure", "severity": "low",
           "principal": user, "source_ip": ip, "details": {"note": format!("try {id}")}})
}

#[tokio::test]
async fn posted_events_are_stored_and_found_by_search_and_export() {
    let server = TestServer::start().await;

    let response = server
        .post("/v1/events")
        .json(&failure("single-1", "192.0.2.10", "user:carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ids"], json!(["single-1"]));

    let batch: Vec<Value> = (0..5)
        .map(|i| failure(&format!("batch-{i}"), "2001:db8::5", "user:dave"))
        .collect();
    let response = server.post("/v1/events").json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 202);
    // Without id, time and source: completed by the server.
    let response = server
        .post("/v1/events")
        .json(&json!({"type": "data_access", "severity": "info", "resource": "doc:7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);

    let found = wait_events(&server, "source_ip=2001:db8::5", 5).await;
    assert_eq!(found[0]["id"], "batch-0");
    assert_eq!(found[0]["principal"], "user:dave");
    // Related events share a correlation id, given by the server.
    let correlation = found[0]["correlation_id"].as_str().unwrap().to_owned();
    assert!(found.iter().all(|e| e["correlation_id"] == correlation));

    let found = wait_events(&server, "principal=user:carol", 1).await;
    assert_eq!(found[0]["source_ip"], "192.0.2.10");
    let found = wait_events(&server, "resource=doc:7", 1).await;
    assert_eq!(found[0]["source"], "api");
    assert_eq!(events(&server, "type=data_access").await.len(), 1);
    assert_eq!(events(&server, "q=try%20batch-3").await.len(), 1);
    assert_eq!(
        events(&server, &format!("correlation_id={correlation}"))
            .await
            .len(),
        5
    );
    assert!(events(&server, "severity=high").await.is_empty());
    assert!(
        events(&server, "since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );

    // Pages.
    let page = get_json(&server, "/v1/events?source=test&limit=4").await;
    assert_eq!(page["events"].as_array().unwrap().len(), 4);
    let next = page["next"].as_i64().unwrap();
    let rest = get_json(&server, &format!("/v1/events?source=test&after={next}")).await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 2);
    assert!(rest["next"].is_null());

    // Export: JSON lines.
    let response = server
        .get("/v1/events/export?source=test")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let text = response.text().await.unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 6);

    let metrics = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("maos_siem_events_total"), "{metrics}");

    let openapi = get_json(&server, "/v1/openapi.json").await;
    for (path, method) in [
        ("/v1/events", "post"),
        ("/v1/events", "get"),
        ("/v1/events/export", "get"),
        ("/v1/alerts", "get"),
        ("/v1/alerts/{id}", "get"),
        ("/v1/alerts/{id}/acknowledge", "post"),
    ] {
        assert!(
            openapi["paths"][path][method].is_object(),
            "{method} {path}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_with_4xx() {
    let server = TestServer::start_with(|c| c.siem.max_batch = 5).await;
    let post = |body: Value| server.post("/v1/events").json(&body).send();

    let cases = [
        (
            json!({"type": "nope", "severity": "low"}),
            400,
            "invalid_event",
        ),
        (json!({"severity": "low"}), 400, "invalid_event"),
        (
            json!({"type": "data_access", "severity": "low", "extra": 1}),
            400,
            "invalid_event",
        ),
        (
            json!({"type": "data_access", "severity": "low", "source_ip": "999.1.1.1"}),
            400,
            "invalid_event",
        ),
        (
            json!({"type": "data_access", "severity": "low", "time": "2999-01-01T00:00:00Z"}),
            400,
            "invalid_event",
        ),
        (
            json!({"type": "data_access", "severity": "low", "id": ""}),
            400,
            "invalid_event",
        ),
        (json!([]), 400, "empty_batch"),
        (json!("text"), 400, "invalid_event"),
        (
            json!(
                (0..6)
                    .map(|i| failure(&format!("x{i}"), "192.0.2.1", "u"))
                    .collect::<Vec<_>>()
            ),
            413,
            "batch_too_large",
        ),
    ];
    for (body, status, code) in cases {
        let response = post(body.clone()).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
    }
    // The index of the bad event is named.
    let response = post(json!([
        failure("ok-1", "192.0.2.1", "u"),
        {"type": "data_access"}
    ]))
    .await
    .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("events[1]"),
        "{answer}"
    );

    let response = server
        .post("/v1/events")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    for path in [
        "/v1/events?limit=0",
        "/v1/events?since=yesterday",
        "/v1/events?severity=extreme",
        "/v1/events?color=red",
        "/v1/alerts?status=closed",
    ] {
        let response = server.get(path).send().await.unwrap();
        assert_eq!(response.status(), 400, "{path}");
    }
    let response = server.get("/v1/alerts/nope").send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = server
        .post("/v1/alerts/nope/acknowledge")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);

    // Unauthenticated, and authenticated without the permission.
    let response = server
        .client
        .get(server.url("/v1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let token = server.token_for("user:mallory", &[]).await;
    for (method, path) in [
        ("GET", "/v1/events"),
        ("POST", "/v1/events"),
        ("GET", "/v1/alerts"),
    ] {
        let request = match method {
            "GET" => server.client.get(server.url(path)),
            _ => server
                .client
                .post(server.url(path))
                .json(&failure("m", "192.0.2.1", "u")),
        };
        let response = request.bearer_auth(&token).send().await.unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }

    // Nothing refused was stored.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(events(&server, "").await.is_empty());
    server.stop().await;
}

async fn login(server: &TestServer, user: &str) -> u16 {
    server
        .client
        .post(server.url("/v1/login"))
        .json(&json!({"username": user, "password": "wrong password"}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_brute_force_through_login_raises_one_alert_with_its_events() {
    let server = TestServer::start().await;
    let mut raised = server
        .server
        .as_ref()
        .unwrap()
        .state
        .siem
        .subscribe_alerts();

    // Ten failures from one address, over two user names: the per-address rule's threshold,
    // below the per-user and spraying thresholds.
    for i in 0..10u32 {
        let user = if i.is_multiple_of(2) { "alice" } else { "bob" };
        let status = login(&server, user).await;
        assert!(status == 401 || status == 429, "{status}");
    }
    let alert = wait_alert(&server, &format!("rule_id={BRUTE_SOURCE}")).await;
    assert_eq!(alert["source_ip"], "127.0.0.1");
    assert_eq!(alert["count"], 1);
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["status"], "open");
    let mitre = alert["mitre_attack"].as_array().unwrap();
    assert!(mitre.contains(&json!("attack.t1110.001")), "{alert}");
    assert_eq!(alert["event_ids"].as_array().unwrap().len(), 10);

    // The alert with its related events, which share its correlation id.
    let id = alert["id"].as_str().unwrap();
    let detail = get_json(&server, &format!("/v1/alerts/{id}")).await;
    let related = detail["events"].as_array().unwrap();
    assert_eq!(related.len(), 10, "{detail}");
    assert!(
        related
            .iter()
            .all(|e| e["type"] == "authentication_failure")
    );
    assert!(
        related
            .iter()
            .all(|e| e["correlation_id"] == alert["correlation_id"]),
        "{detail}"
    );
    // Published in process once, with the time of the event that crossed the threshold.
    let published = tokio::time::timeout(Duration::from_secs(2), raised.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(published.id, id, "{published:?}");
    assert_eq!(
        published.trigger_time.to_string(),
        related[9]["time"].as_str().unwrap()
    );

    // More failures: the same alert counts them; no new alert.
    for user in ["alice", "bob", "alice"] {
        login(&server, user).await;
    }
    let counted = eventually("the alert to count more hits", || async {
        let found = alerts(&server, "").await;
        let a = found.first()?;
        (a["count"].as_u64()? >= 4).then(|| found.clone())
    })
    .await;
    assert_eq!(counted.len(), 1, "{counted:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), raised.recv())
            .await
            .is_err(),
        "a second alert was published"
    );

    // Acknowledged, and the acknowledgement survives later hits.
    let response = server
        .post(&format!("/v1/alerts/{id}/acknowledge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let acked: Value = response.json().await.unwrap();
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "user:admin");
    login(&server, "bob").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let open = alerts(&server, "status=open").await;
    assert!(open.is_empty(), "{open:?}");
    server.stop().await;
}

#[tokio::test]
async fn syslog_over_udp_and_tcp_raises_sshd_brute_force_alerts() {
    let server = TestServer::start_with(|c| {
        c.siem.syslog.udp = Some("127.0.0.1:0".parse().unwrap());
        c.siem.syslog.tcp = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let state = &server.server.as_ref().unwrap().state;
    let udp_addr = *state.siem.addrs.udp.get().unwrap();
    let tcp_addr = *state.siem.addrs.tcp.get().unwrap();

    // UDP: one sample line per datagram, ten times, with a syslog priority in front.
    let line = sample_line("Failed password for invalid user ROOT from 194.117.26.69 port 50273");
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for _ in 0..10 {
        socket
            .send_to(format!("<38>{line}").as_bytes(), udp_addr)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let alert = wait_alert(
        &server,
        &format!("rule_id={BRUTE_SOURCE}&source_ip=194.117.26.69"),
    )
    .await;
    assert_eq!(alert["event_ids"].as_array().unwrap().len(), 10);
    let found = events(&server, "source_ip=194.117.26.69&source=sshd").await;
    assert_eq!(found.len(), 10);
    assert_eq!(found[0]["principal"], "ROOT");
    assert_eq!(found[0]["details"]["source.port"], 50273);

    // TCP: octet-counted frames and newline-delimited ones on one connection.
    let line = sample_line("Failed password for invalid user ROOT from 194.117.26.70 port 12345");
    let mut stream = tokio::net::TcpStream::connect(tcp_addr).await.unwrap();
    let mut wire = Vec::new();
    for i in 0..10u32 {
        let message = format!("<38>{line}");
        if i.is_multiple_of(2) {
            wire.extend_from_slice(format!("{} {message}", message.len()).as_bytes());
        } else {
            wire.extend_from_slice(format!("{message}\n").as_bytes());
        }
    }
    stream.write_all(&wire).await.unwrap();
    stream.flush().await.unwrap();
    let alert = wait_alert(
        &server,
        &format!("rule_id={BRUTE_SOURCE}&source_ip=194.117.26.70"),
    )
    .await;
    assert_eq!(alert["event_ids"].as_array().unwrap().len(), 10);
    // RFC 5424 framing (sshd by its APP-NAME) and CEF over UDP.
    let now = maos_core::Timestamp::now();
    let rfc5424 = format!(
        "<38>1 {now} web1 sshd 4242 - - Failed password for invalid user admin from \
         198.51.100.77 port 2222 ssh2"
    );
    let cef = "<134>Dec  1 10:00:00 fw1 CEF:0|Acme|Firewall|2.1|100|Port scan|8|src=198.51.100.88 \
               suser=eve request=/admin";
    for message in [rfc5424.as_str(), cef] {
        socket.send_to(message.as_bytes(), udp_addr).await.unwrap();
    }
    let found = wait_events(&server, "source_ip=198.51.100.77", 1).await;
    assert_eq!(found[0]["source"], "sshd");
    assert_eq!(found[0]["principal"], "admin");
    assert_eq!(found[0]["time"], now.to_string());
    let found = wait_events(&server, "source_ip=198.51.100.88", 1).await;
    assert_eq!(found[0]["severity"], "high");
    assert_eq!(found[0]["principal"], "eve");
    assert_eq!(found[0]["resource"], "/admin");
    assert_eq!(found[0]["details"]["observer.vendor"], "Acme");

    // The user name was tried 20 times over both.
    let user_alert = wait_alert(&server, &format!("rule_id={BRUTE_USER}&principal=ROOT")).await;
    assert!(user_alert["count"].as_u64().unwrap() >= 1);
    drop(stream);
    server.stop().await;
}

fn append(path: &std::path::Path, lines: &[String]) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    for line in lines {
        writeln!(file, "{line}").unwrap();
    }
}

#[tokio::test]
async fn a_tailed_file_survives_rotation_and_truncation() {
    let logs = tempfile::tempdir().unwrap();
    let path = logs.path().join("auth.log");
    let line = sample_line("Failed password for root from 192.0.2.1 port 56502");
    // Written before the start: not read (start_at = end).
    append(&path, &[line.clone(), line.clone()]);

    let file_path = path.clone();
    let server = TestServer::start_with(move |c| {
        c.siem.file_poll_milliseconds = 50;
        c.siem.files = vec![FileConfig {
            path: file_path,
            format: FileFormat::Sshd,
            start_at: StartAt::End,
        }];
    })
    .await;
    let query = "source_ip=192.0.2.1";
    tokio::time::sleep(Duration::from_millis(200)).await;

    append(&path, &vec![line.clone(); 4]);
    wait_events(&server, query, 4).await;

    // Rotation: a last line into the old file, renamed, a new file in its place.
    append(&path, std::slice::from_ref(&line));
    std::fs::rename(&path, logs.path().join("auth.log.1")).unwrap();
    append(&path, &vec![line.clone(); 2]);
    wait_events(&server, query, 7).await;

    // Truncation (copytruncate), then new lines from the start.
    std::fs::write(&path, "").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    append(&path, &vec![line.clone(); 3]);
    wait_events(&server, query, 10).await;

    let alert = wait_alert(&server, &format!("rule_id={BRUTE_SOURCE}&{query}")).await;
    assert_eq!(alert["principal"], "root");
    server.stop().await;
}

#[tokio::test]
async fn retention_deletes_old_events() {
    let server = TestServer::start_with(|c| {
        c.siem.retention_days = 1;
        c.siem.retention_check_seconds = 1;
    })
    .await;
    let state = server.server.as_ref().unwrap().state.clone();
    let mut old = maos_core::SecurityEvent::new(
        "old-event",
        maos_core::Timestamp::now(),
        "test",
        maos_core::SecurityEventType::DataAccess,
        maos_core::Severity::Info,
    );
    old.resource = Some("doc:old".into());
    let two_days_ago = maos_core::Timestamp::now()
        .add_seconds(-2 * 86_400)
        .unix_micros()
        / 1000;
    let row = maos_server::siem::event_row(&old).unwrap();
    state
        .store
        .siem_events()
        .insert(&[row], two_days_ago)
        .await
        .unwrap();
    server
        .post("/v1/events")
        .json(&json!({"id": "new-event", "type": "data_access", "severity": "info"}))
        .send()
        .await
        .unwrap();
    // The periodic run deletes the old event; the new one stays.
    eventually("retention to delete the old event", || async {
        let ids: Vec<Value> = events(&server, "")
            .await
            .iter()
            .map(|e| e["id"].clone())
            .collect();
        (ids == [json!("new-event")]).then_some(())
    })
    .await;
    assert_eq!(
        maos_server::siem::apply_retention(&state).await.unwrap(),
        (0, 0)
    );
    server.stop().await;
}

/// What the webhook receiver saw: verified bodies and refused requests.
#[derive(Default)]
struct Received {
    verified: Vec<Value>,
    refused: usize,
    failed_once: bool,
}

/// The receiver's state: the webhook secret and what it saw.
type ReceiverState = (Arc<Vec<u8>>, Arc<std::sync::Mutex<Received>>);

async fn receive(
    axum::extract::State((secret, seen)): axum::extract::State<ReceiverState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> axum::http::StatusCode {
    use aws_lc_rs::hmac;
    let timestamp = headers
        .get(maos_server::siem::TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let signature = headers
        .get(maos_server::siem::SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .and_then(|v| hex::decode(v).ok())
        .unwrap_or_default();
    let mut signed = format!("{timestamp}.").into_bytes();
    signed.extend_from_slice(&body);
    let key = hmac::Key::new(hmac::HMAC_SHA256, &secret);
    let fresh = timestamp
        .parse::<i64>()
        .is_ok_and(|t| (t - maos_core::Timestamp::now().unix_seconds()).abs() < 300);
    let mut seen = seen.lock().unwrap();
    if !fresh || hmac::verify(&key, &signed, &signature).is_err() {
        seen.refused += 1;
        return axum::http::StatusCode::UNAUTHORIZED;
    }
    // The first delivery fails, to be retried.
    if !seen.failed_once {
        seen.failed_once = true;
        return axum::http::StatusCode::SERVICE_UNAVAILABLE;
    }
    seen.verified.push(serde_json::from_slice(&body).unwrap());
    axum::http::StatusCode::NO_CONTENT
}

#[tokio::test]
async fn webhooks_are_signed_and_retried() {
    let secret = b"webhook secret 0123456789".to_vec();
    let seen = Arc::new(std::sync::Mutex::new(Received::default()));
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state((Arc::new(secret.clone()), seen.clone()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_addr = listener.local_addr().unwrap();
    let receiver = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let secrets = tempfile::tempdir().unwrap();
    let secret_file = secrets.path().join("hook.key");
    std::fs::write(
        &secret_file,
        format!("{}\n", String::from_utf8_lossy(&secret)),
    )
    .unwrap();
    let server = TestServer::start_with(move |c| {
        c.siem.webhooks = vec![WebhookConfig {
            url: format!("http://{hook_addr}/hook"),
            secret: String::new(),
            secret_file,
            min_severity: maos_core::Severity::Medium,
            max_attempts: 3,
            timeout_seconds: 5,
        }];
    })
    .await;

    // A low-severity alert is not sent; an intrusion hit (medium) is.
    let response = server
        .post("/v1/events")
        .json(
            &json!({"id": "ids-1", "type": "intrusion_attempt", "severity": "high",
                      "source_ip": "203.0.113.66", "resource": "/etc/passwd"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let delivered = eventually("a verified webhook delivery", || async {
        let seen = seen.lock().unwrap();
        seen.verified.first().cloned()
    })
    .await;
    assert_eq!(delivered["rule_id"], INTRUSION_HIT);
    assert_eq!(delivered["source_ip"], "203.0.113.66");
    assert_eq!(delivered["event_ids"], json!(["ids-1"]));
    {
        let seen = seen.lock().unwrap();
        assert!(seen.failed_once);
        assert_eq!(seen.refused, 0);
        assert_eq!(seen.verified.len(), 1);
    }
    server.stop().await;
    receiver.abort();
}

#[tokio::test]
async fn events_and_alerts_on_postgres() {
    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping the PostgreSQL SIEM test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("the PostgreSQL SIEM test needs a database (CI=true): {e}"),
    };
    let url = schema.url.clone();
    let server = TestServer::start_with(move |c| c.storage.url = url).await;
    let batch: Vec<Value> = (0..10)
        .map(|i| failure(&format!("pg-{i}"), "198.51.100.20", "user:erin"))
        .collect();
    let response = server.post("/v1/events").json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 202);
    wait_events(&server, "source_ip=198.51.100.20", 10).await;
    let alert = wait_alert(&server, &format!("rule_id={BRUTE_SOURCE}")).await;
    let detail = get_json(
        &server,
        &format!("/v1/alerts/{}", alert["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(detail["events"].as_array().unwrap().len(), 10);
    server.stop().await;
    schema.drop_schema().await.unwrap();
}

#[tokio::test]
async fn accepted_events_are_stored_before_shutdown() {
    let mut server = TestServer::start().await;
    let batch: Vec<Value> = (0..50)
        .map(|i| failure(&format!("late-{i}"), "192.0.2.50", "user:frank"))
        .collect();
    let response = server.post("/v1/events").json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 202);
    server.server.take().unwrap().shutdown().await;

    let url = format!("sqlite://{}", server.dir.path().join("maos.db").display());
    let store = maos_store::Store::open(&url, &maos_store::StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(store.siem_events().count().await.unwrap(), 50);
    store.close().await;
}
