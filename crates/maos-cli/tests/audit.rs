//! `maos audit` run as a process on a real SQLite file: one test per way of tampering with the
//! stored log (done with SQL, as an attacker with database access would), `hash` and `export`,
//! and crash safety of `maos serve` under `kill -9`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use maos_audit::{
    ActionName, Actor, AuditRecord, CheckpointPolicy, Outcome, RecordDraft, Timestamp,
};
use maos_server::audit_log::{AuditConfig, load_or_create_keys};
use maos_store::{AuditWriter, AuditWriterOptions, Store, StoreOptions};
use sqlx::Connection;

const ADMIN_TOKEN: &str = "maos_audit_test_admin_token_0123456789";

fn maos(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_maos"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn db_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("maos.db").display())
}

fn draft(n: u64) -> RecordDraft {
    RecordDraft::new(
        Timestamp::from_unix_millis(1_800_000_000_000 + n * 1000).unwrap(),
        Actor::principal("user", &format!("u{}", n % 3)).unwrap(),
        ActionName::parse("authz.decide").unwrap(),
        format!("document:{n}"),
        Outcome::Success,
    )
    .with_request_id(format!("req-{n}"))
}

/// A data directory with keys and a log of 30 records, checkpointed every 10.
async fn stored_log() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let keys = load_or_create_keys(&AuditConfig::default(), dir.path()).unwrap();
    let store = Store::open(&db_url(dir.path()), &StoreOptions::default())
        .await
        .unwrap();
    let writer = AuditWriter::start(
        store.clone(),
        keys.signing.clone(),
        AuditWriterOptions {
            checkpoints: CheckpointPolicy {
                every_records: 10,
                every: Duration::from_secs(3600),
            },
            ..AuditWriterOptions::default()
        },
    );
    for n in 0..30 {
        writer.append(draft(n)).await.unwrap();
    }
    writer.close().await;
    store.close().await;
    dir
}

async fn sql(dir: &Path, statements: &[&str]) {
    let mut conn = sqlx::SqliteConnection::connect(&db_url(dir)).await.unwrap();
    for statement in statements {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_string()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
}

async fn stored_record(dir: &Path, seq: i64) -> AuditRecord {
    let mut conn = sqlx::SqliteConnection::connect(&db_url(dir)).await.unwrap();
    let text: String = sqlx::query_scalar("SELECT record FROM audit_records WHERE seq = $1")
        .bind(seq)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn verify(dir: &Path) -> Output {
    maos(&["audit", "verify", "--data-dir", dir.to_str().unwrap()])
}

/// `maos audit verify` fails with exit code 1 and says `finding`.
fn assert_tampered(dir: &Path, finding: &str) {
    let output = verify(dir);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("TAMPERED"), "{text}");
    assert!(text.contains(finding), "`{finding}` not in: {text}");
}

#[tokio::test]
async fn an_untouched_log_verifies() {
    let dir = stored_log().await;
    let output = verify(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("30 records, 3 checkpoints"));
}

#[tokio::test]
async fn a_modified_record_is_named() {
    let dir = stored_log().await;
    sql(
        dir.path(),
        &[
            "UPDATE audit_records SET record = replace(record, '\"user:u1\"', '\"user:u2\"') \
           WHERE seq = 7",
        ],
    )
    .await;
    assert_tampered(dir.path(), "record 7 was modified");
}

#[tokio::test]
async fn a_deleted_record_is_named() {
    let dir = stored_log().await;
    sql(dir.path(), &["DELETE FROM audit_records WHERE seq = 12"]).await;
    assert_tampered(dir.path(), "record 12 was deleted");
}

#[tokio::test]
async fn an_inserted_record_is_named() {
    let dir = stored_log().await;
    // A forger who can compute hashes but not sign: a well-formed record linked to record 4,
    // slipped in before the genuine record 5 (the index column is renumbered to make room).
    let before = stored_record(dir.path(), 4).await;
    let mut forged = draft(5);
    forged.actor = Actor::principal("user", "mallory").unwrap();
    let forged = AuditRecord::seal(&before.head_after(), forged).unwrap();
    let text = serde_json::to_string(&forged).unwrap().replace('\'', "''");
    sql(
        dir.path(),
        &[
            "UPDATE audit_records SET seq = -seq - 1",
            "UPDATE audit_records SET seq = (-seq - 1) * 10",
            &format!(
                "INSERT INTO audit_records (seq, time, actor, action, resource, status, record) \
                 VALUES (45, 0, 'user:mallory', 'authz.decide', 'document:5', 'success', '{text}')"
            ),
        ],
    )
    .await;
    assert_tampered(dir.path(), "a record was inserted at sequence number 5");
}

#[tokio::test]
async fn reordered_records_are_named() {
    let dir = stored_log().await;
    // Swap the stored texts of records 20 and 21.
    sql(
        dir.path(),
        &[
            "UPDATE audit_records SET seq = -1 WHERE seq = 20",
            "UPDATE audit_records SET seq = 20 WHERE seq = 21",
            "UPDATE audit_records SET seq = 21 WHERE seq = -1",
        ],
    )
    .await;
    // Record 21 now sits where 20 belongs, and its real predecessor follows it.
    assert_tampered(dir.path(), "record 21 is out of order");
}

#[tokio::test]
async fn a_truncated_tail_is_named() {
    let dir = stored_log().await;
    sql(dir.path(), &["DELETE FROM audit_records WHERE seq >= 26"]).await;
    assert_tampered(
        dir.path(),
        "the log was truncated: it ends before record 26",
    );
}

#[tokio::test]
async fn a_truncated_tail_past_the_last_checkpoint_is_named_by_the_chain_state() {
    let dir = stored_log().await;
    // Cut records and checkpoints back to a checkpoint boundary: only the stored chain state
    // still knows how far the log went.
    sql(
        dir.path(),
        &[
            "DELETE FROM audit_records WHERE seq >= 20",
            "DELETE FROM audit_checkpoints WHERE tree_size > 20",
        ],
    )
    .await;
    assert_tampered(dir.path(), "chain state says 30 records");
}

#[tokio::test]
async fn hash_finds_the_form_a_secret_is_recorded_under() {
    let dir = stored_log().await;
    let output = maos(&[
        "audit",
        "hash",
        "tok_live_123",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let form = stdout(&output).trim().to_owned();
    assert!(maos_audit::is_redacted(&form), "{form}");
    assert!(!form.contains("tok_live_123"));
    // The same value, the same form; another value, another form.
    let again = maos(&[
        "audit",
        "hash",
        "tok_live_123",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(stdout(&again).trim(), form);
    let other = maos(&[
        "audit",
        "hash",
        "tok_live_124",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_ne!(stdout(&other).trim(), form);
}

#[tokio::test]
async fn export_writes_json_lines_that_verify() {
    let dir = stored_log().await;
    let output = maos(&[
        "audit",
        "export",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    assert_eq!(text.lines().count(), 33, "30 records and 3 checkpoints");
    let public = std::fs::read_to_string(dir.path().join("audit-signing.pub")).unwrap();
    let key = maos_audit::VerifyingKey::from_hex(&public).unwrap();
    let report =
        maos_audit::jsonl::verify_export(text.as_bytes(), text.as_bytes(), &key, |_| {}).unwrap();
    assert_eq!(report.records, 30);
}

#[test]
fn verify_without_a_database_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("audit-signing.pub"), "00".repeat(32)).unwrap();
    let output = verify(dir.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("maos.db"));
}

// ---- crash safety

/// `maos serve` on `dir`, with its base URL.
fn serve(dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_maos"))
        .args([
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env("MAOS_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("MAOS_AUDIT_CHECKPOINT_EVERY_RECORDS", "50")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = loop {
        let line = lines.next().expect("maos serve exited").unwrap();
        if let Some(base) = line.strip_prefix("maos serve: listening on ") {
            break base.to_owned();
        }
    };
    // Keep reading so that the server never writes into a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

/// Sends decision and token requests from several tasks until `stop`; returns the request ids
/// of decisions and the ids of tokens whose success reached the client.
async fn stream(
    base: String,
    tag: &'static str,
    stop: Arc<tokio::sync::Notify>,
) -> (Vec<String>, Vec<(String, String)>) {
    let client = reqwest::Client::new();
    let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stopped = stopped.clone();
        tokio::spawn(async move {
            stop.notified().await;
            stopped.store(true, std::sync::atomic::Ordering::SeqCst);
        });
    }
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let client = client.clone();
        let base = base.clone();
        let stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let (mut decisions, mut tokens) = (Vec::new(), Vec::new());
            let mut n = 0u64;
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let id = format!("{tag}-{worker}-{n}");
                if n.is_multiple_of(10) {
                    let sent = client
                        .post(format!("{base}/v1/tokens"))
                        .bearer_auth(ADMIN_TOKEN)
                        .header("x-request-id", &id)
                        .json(&serde_json::json!({"principal": "service:pep"}))
                        .send()
                        .await;
                    if let Ok(response) = sent
                        && response.status() == 201
                        && let Ok(body) = response.json::<serde_json::Value>().await
                    {
                        let id = body["id"].as_str().unwrap().to_owned();
                        tokens.push((id, body["token"].as_str().unwrap().to_owned()));
                    }
                } else {
                    let sent = client
                        .post(format!("{base}/v1/authorize"))
                        .bearer_auth(ADMIN_TOKEN)
                        .header("x-request-id", &id)
                        .json(&serde_json::json!({
                            "subject": {"type": "user", "id": "admin"},
                            "resource": {"type": "maos", "id": "policy"},
                            "action": {"name": "read"}
                        }))
                        .send()
                        .await;
                    // Acknowledged means the whole answer arrived.
                    if let Ok(response) = sent
                        && response.status() == 200
                        && response.bytes().await.is_ok()
                    {
                        decisions.push(id);
                    }
                }
            }
            (decisions, tokens)
        }));
    }
    let (mut decisions, mut tokens) = (Vec::new(), Vec::new());
    for task in tasks {
        let (d, t) = task.await.unwrap();
        decisions.extend(d);
        tokens.extend(t);
    }
    (decisions, tokens)
}

/// Streams requests at a fresh server, kills it with SIGKILL while they run, and returns what
/// was acknowledged.
async fn run_and_kill(dir: &Path, tag: &'static str) -> (Vec<String>, Vec<(String, String)>) {
    let (mut child, base) = serve(dir);
    let stop = Arc::new(tokio::sync::Notify::new());
    let streaming = tokio::spawn(stream(base, tag, stop.clone()));
    // Let a few hundred requests through, then kill while they keep coming.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.notify_one();
    streaming.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_operation() {
    let dir = tempfile::tempdir().unwrap();
    let (mut decisions, mut tokens) = run_and_kill(dir.path(), "first").await;
    // The restarted server goes on with the same chain.
    let (more_decisions, more_tokens) = run_and_kill(dir.path(), "second").await;
    decisions.extend(more_decisions);
    tokens.extend(more_tokens);
    assert!(decisions.len() > 50, "only {} decisions", decisions.len());
    assert!(!tokens.is_empty());

    let output = verify(dir.path());
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));

    let export = maos(&[
        "audit",
        "export",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(export.status.code(), Some(0));
    let mut request_ids = HashSet::new();
    let mut token_records = std::collections::HashMap::new();
    for line in stdout(&export).lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        if value["type"] != "record" {
            continue;
        }
        match value["action"].as_str().unwrap() {
            "authz.decide" => {
                request_ids.insert(value["request_id"].as_str().unwrap_or("").to_owned());
            }
            "token.create" => {
                let resource = value["resource"].as_str().unwrap().to_owned();
                token_records.insert(resource, value["details"]["token"].clone());
            }
            _ => {}
        }
    }
    for id in &decisions {
        assert!(
            request_ids.contains(id),
            "acknowledged decision {id} is not in the log"
        );
    }
    for (id, _) in &tokens {
        assert!(
            token_records.contains_key(&format!("token:{id}")),
            "acknowledged token {id} is not in the log"
        );
    }

    // Tokens appear only as their HMAC, which `maos audit hash` reproduces.
    let text = stdout(&export);
    assert!(!text.contains(ADMIN_TOKEN));
    for (_, token) in &tokens {
        assert!(
            !text.contains(token.as_str()),
            "a token is in the log in plaintext"
        );
    }
    let (id, token) = &tokens[0];
    let hashed = maos(&[
        "audit",
        "hash",
        token,
        "--data-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(
        token_records[&format!("token:{id}")],
        serde_json::json!(stdout(&hashed).trim())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_beside_a_running_server_is_no_false_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, base) = serve(dir.path());
    let stop = Arc::new(tokio::sync::Notify::new());
    let streaming = tokio::spawn(stream(base, "live", stop.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Records keep arriving while the log is read.
    let path = dir.path().to_path_buf();
    let output = tokio::task::spawn_blocking(move || verify(&path))
        .await
        .unwrap();
    stop.notify_one();
    streaming.await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
}
