//! The audit log tables, run once on SQLite (a temporary file) and once on PostgreSQL
//! (`MAOS_TEST_POSTGRES_URL`, a fresh schema per test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use maos_audit::{
    ActionName, Actor, AuditChain, CheckpointPolicy, CheckpointSigningKey, Outcome, OutcomeStatus,
    RecordDraft, Timestamp, verify,
};
use maos_store::testing::{PostgresTestSchema, TestDatabaseError, postgres_required};
use maos_store::{
    AuditAppend, AuditQuery, AuditWriteError, AuditWriter, AuditWriterOptions, Store, StoreError,
    StoreOptions,
};

/// Runs `test` with a URL and an opener, so that a test can open several stores ("nodes") on
/// one database.
async fn on_sqlite<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("maos.db").display());
    test(url).await;
}

async fn on_postgres<F, Fut>(test: F)
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = ()>,
{
    let schema = match PostgresTestSchema::create().await {
        Ok(schema) => schema,
        Err(TestDatabaseError::NotConfigured) if !postgres_required() => {
            eprintln!("skipping PostgreSQL audit test: MAOS_TEST_POSTGRES_URL is not set");
            return;
        }
        Err(e) => panic!("PostgreSQL store tests need a database (CI=true): {e}"),
    };
    test(schema.url.clone()).await;
    schema.drop_schema().await.unwrap();
}

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::on_sqlite(super::$name).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
              async fn $name() { super::on_postgres(super::$name).await })*
        }
    };
}

on_both!(
    appends_are_chained_and_verify,
    queries_filter_with_indexed_columns,
    a_failed_seal_writes_nothing,
    nodes_sharing_a_database_append_to_one_chain,
    concurrent_appends_share_transactions_and_are_acknowledged_after_commit,
    the_chain_continues_across_restarts,
    writers_on_several_nodes_append_to_one_chain,
    a_quiet_chain_is_checkpointed_by_the_timer,
    appends_fail_once_the_database_is_gone,
);

async fn open(url: &str) -> Store {
    Store::open(url, &StoreOptions::default()).await.unwrap()
}

fn policy() -> CheckpointPolicy {
    CheckpointPolicy {
        every_records: 5,
        every: Duration::from_secs(3600),
    }
}

fn draft(n: u64, actor: &str, action: &str, outcome: Outcome) -> RecordDraft {
    let (kind, id) = actor.split_once(':').unwrap();
    RecordDraft::new(
        Timestamp::from_unix_millis(1_800_000_000_000 + n).unwrap(),
        Actor::principal(kind, id).unwrap(),
        ActionName::parse(action).unwrap(),
        format!("doc:{n}"),
        outcome,
    )
    .with_request_id(format!("req-{n}"))
}

/// Seals `drafts` onto the stored chain in one transaction.
async fn append(
    store: &Store,
    key: &Arc<CheckpointSigningKey>,
    drafts: Vec<RecordDraft>,
) -> Result<AuditAppend, StoreError> {
    let key = key.clone();
    store
        .audit_log()
        .append(move |state| {
            let mut chain = AuditChain::resume(state, policy(), key)?;
            let mut records = Vec::new();
            let mut checkpoints = Vec::new();
            for draft in drafts {
                let sealed = chain.seal(draft)?;
                records.push(sealed.record);
                checkpoints.extend(sealed.checkpoint);
            }
            Ok::<_, maos_audit::ChainError>(AuditAppend {
                records,
                checkpoints,
                state: chain.state().clone(),
            })
        })
        .await
}

async fn verify_stored(store: &Store, key: &CheckpointSigningKey) -> maos_audit::VerifyReport {
    let rows = store.audit_log().raw_records(None, u32::MAX).await.unwrap();
    let records = rows
        .into_iter()
        .map(|(_, text)| Ok::<_, Infallible>(serde_json::from_str(&text).unwrap()));
    let checkpoints = store.audit_log().checkpoints().await.unwrap();
    verify(records, &checkpoints, &key.verifying_key(), |_| {}).unwrap()
}

async fn appends_are_chained_and_verify(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    assert_eq!(store.audit_log().count().await.unwrap(), 0);
    assert_eq!(
        store.audit_log().state().await.unwrap(),
        maos_audit::ChainState::genesis()
    );

    let first = append(
        &store,
        &key,
        (0..3)
            .map(|n| draft(n, "user:alice", "policy.version.create", Outcome::Success))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(first.records[0].seq, 0);
    assert!(first.checkpoints.is_empty());
    let second = append(
        &store,
        &key,
        (3..12)
            .map(|n| draft(n, "user:bob", "authz.decide", Outcome::denied("no rule")))
            .collect(),
    )
    .await
    .unwrap();
    assert_eq!(second.records[0].prev_hash, first.records[2].hash);
    assert_eq!(second.checkpoints.len(), 2, "every 5 records");

    // What was stored reads back byte for byte: the whole log verifies, and the state a
    // verifier reconstructs is the one the last transaction stored.
    let report = verify_stored(&store, &key).await;
    assert_eq!(report.records, 12);
    assert_eq!(report.checkpoints, 2);
    assert_eq!(report.covered, 10);
    assert_eq!(report.state, store.audit_log().state().await.unwrap());
    assert_eq!(store.audit_log().count().await.unwrap(), 12);
    store.close().await;
}

async fn queries_filter_with_indexed_columns(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let mut drafts = Vec::new();
    for n in 0..10 {
        let (actor, action, outcome) = match n % 3 {
            0 => ("user:alice", "policy.role.put", Outcome::Success),
            1 => ("user:bob", "token.create", Outcome::Success),
            _ => ("user:bob", "authz.decide", Outcome::denied("no rule")),
        };
        drafts.push(draft(n, actor, action, outcome));
    }
    append(&store, &key, drafts).await.unwrap();
    let log = store.audit_log();
    let seqs =
        |records: Vec<maos_audit::AuditRecord>| records.iter().map(|r| r.seq).collect::<Vec<_>>();
    let all = AuditQuery {
        limit: 100,
        ..AuditQuery::default()
    };

    assert_eq!(seqs(log.query(&all).await.unwrap()).len(), 10);
    let alice = AuditQuery {
        actor: Some("user:alice".into()),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&alice).await.unwrap()), [0, 3, 6, 9]);
    let family = AuditQuery {
        action: Some("policy.*".into()),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&family).await.unwrap()), [0, 3, 6, 9]);
    // A family is a prefix of whole segments: `polic.*` matches nothing.
    let partial = AuditQuery {
        action: Some("polic.*".into()),
        ..all.clone()
    };
    assert!(log.query(&partial).await.unwrap().is_empty());
    let denied = AuditQuery {
        status: Some(OutcomeStatus::Denied),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&denied).await.unwrap()), [2, 5, 8]);
    let by_resource = AuditQuery {
        resource: Some("doc:4".into()),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&by_resource).await.unwrap()), [4]);
    let by_request = AuditQuery {
        request_id: Some("req-7".into()),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&by_request).await.unwrap()), [7]);
    let window = AuditQuery {
        since_ms: Some(1_800_000_000_002),
        until_ms: Some(1_800_000_000_005),
        ..all.clone()
    };
    assert_eq!(seqs(log.query(&window).await.unwrap()), [2, 3, 4]);

    // Paging with the cursor.
    let page = AuditQuery {
        limit: 4,
        ..all.clone()
    };
    let first = seqs(log.query(&page).await.unwrap());
    assert_eq!(first, [0, 1, 2, 3]);
    let next = AuditQuery {
        after_seq: Some(3),
        ..page.clone()
    };
    assert_eq!(seqs(log.query(&next).await.unwrap()), [4, 5, 6, 7]);
    store.close().await;
}

async fn a_failed_seal_writes_nothing(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    append(
        &store,
        &key,
        vec![draft(0, "user:alice", "auth.login", Outcome::Success)],
    )
    .await
    .unwrap();
    let before = store.audit_log().state().await.unwrap();

    let failed = store
        .audit_log()
        .append(|_state| Err::<AuditAppend, _>("signing failed"))
        .await;
    assert!(
        matches!(failed, Err(StoreError::AuditChain(_))),
        "{failed:?}"
    );

    // A batch whose second record collides with a stored one is rolled back whole: the first
    // record and the state update do not survive.
    let stale = store
        .audit_log()
        .append(|state| {
            let mut chain = AuditChain::resume(state, policy(), key.clone())?;
            let good = chain.seal(draft(1, "user:alice", "auth.login", Outcome::Success))?;
            let mut duplicate = good.record.clone();
            duplicate.seq = 0;
            Ok::<_, maos_audit::ChainError>(AuditAppend {
                records: vec![good.record, duplicate],
                checkpoints: Vec::new(),
                state: chain.state().clone(),
            })
        })
        .await;
    assert!(stale.is_err());
    assert_eq!(store.audit_log().state().await.unwrap(), before);
    assert_eq!(store.audit_log().count().await.unwrap(), 1);
    verify_stored(&store, &key).await;
    store.close().await;
}

async fn nodes_sharing_a_database_append_to_one_chain(url: String) {
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let nodes = [open(&url).await, open(&url).await, open(&url).await];
    let mut tasks = Vec::new();
    for (node, store) in nodes.iter().enumerate() {
        for round in 0..10u64 {
            let store = store.clone();
            let key = key.clone();
            tasks.push(tokio::spawn(async move {
                let base = (node as u64) * 100 + round * 3;
                let drafts = (base..base + 3)
                    .map(|n| draft(n, "service:node", "authz.decide", Outcome::Success))
                    .collect();
                append(&store, &key, drafts).await.unwrap();
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    let report = verify_stored(&nodes[0], &key).await;
    assert_eq!(report.records, 90);
    assert_eq!(report.checkpoints, 18);
    for store in nodes {
        store.close().await;
    }
}

fn writer(store: &Store, key: &Arc<CheckpointSigningKey>) -> AuditWriter {
    AuditWriter::start(
        store.clone(),
        key.clone(),
        AuditWriterOptions {
            checkpoints: policy(),
            max_batch: 64,
            queue: 1024,
        },
    )
}

async fn concurrent_appends_share_transactions_and_are_acknowledged_after_commit(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let writer = Arc::new(writer(&store, &key));
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let writer = writer.clone();
            tokio::spawn(async move {
                writer
                    .append(draft(n, "service:pep", "authz.decide", Outcome::Success))
                    .await
            })
        })
        .collect();
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }

    // Every acknowledged record is stored, under the sequence number it was acknowledged with.
    seqs.sort_unstable();
    assert_eq!(seqs, (0..200).collect::<Vec<_>>());
    assert_eq!(store.audit_log().count().await.unwrap(), 200);
    for seq in [0u64, 57, 199] {
        let page = store
            .audit_log()
            .query(&AuditQuery {
                after_seq: seq.checked_sub(1),
                limit: 1,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page[0].seq, seq);
    }
    assert!(
        writer.transactions() < 200,
        "{} transactions for 200 concurrent appends: no group commit",
        writer.transactions()
    );

    // A group is stored adjacent.
    let group = writer
        .append_all(
            (200..205)
                .map(|n| draft(n, "user:alice", "authz.decide", Outcome::denied("no rule")))
                .collect(),
        )
        .await
        .unwrap();
    assert_eq!(group, 200..205);

    writer.close().await;
    let report = verify_stored(&store, &key).await;
    assert_eq!((report.records, report.covered), (205, 205));
    assert_eq!(
        writer
            .append(draft(0, "user:a", "auth.login", Outcome::Success))
            .await,
        Err(AuditWriteError::Stopped)
    );
    store.close().await;
}

async fn the_chain_continues_across_restarts(url: String) {
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    for run in 0..3u64 {
        let store = open(&url).await;
        let writer = writer(&store, &key);
        for n in 0..7 {
            let seq = writer
                .append(draft(
                    run * 10 + n,
                    "user:alice",
                    "token.create",
                    Outcome::Success,
                ))
                .await
                .unwrap();
            assert_eq!(seq, run * 7 + n);
        }
        // The first two runs stop without a final checkpoint, as after a crash.
        if run == 2 {
            writer.close().await;
        }
        store.close().await;
    }
    let store = open(&url).await;
    let report = verify_stored(&store, &key).await;
    assert_eq!((report.records, report.covered), (21, 21));
    store.close().await;
}

async fn writers_on_several_nodes_append_to_one_chain(url: String) {
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let store = open(&url).await;
        let writer = Arc::new(writer(&store, &key));
        nodes.push((store, writer));
    }
    let mut tasks = Vec::new();
    for (node, (_, writer)) in nodes.iter().enumerate() {
        for n in 0..40u64 {
            let writer = writer.clone();
            tasks.push(tokio::spawn(async move {
                let n = node as u64 * 1000 + n;
                writer
                    .append(draft(n, "service:node", "authz.decide", Outcome::Success))
                    .await
            }));
        }
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap().unwrap());
    }
    seqs.sort_unstable();
    assert_eq!(seqs, (0..120).collect::<Vec<_>>());
    for (_, writer) in &nodes {
        writer.close().await;
    }
    let report = verify_stored(&nodes[0].0, &key).await;
    assert_eq!((report.records, report.covered), (120, 120));
    for (store, _) in nodes {
        store.close().await;
    }
}

async fn a_quiet_chain_is_checkpointed_by_the_timer(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let writer = AuditWriter::start(
        store.clone(),
        key.clone(),
        AuditWriterOptions {
            checkpoints: CheckpointPolicy {
                every_records: 1000,
                every: Duration::from_millis(200),
            },
            ..AuditWriterOptions::default()
        },
    );
    let mut fresh = draft(0, "user:alice", "auth.login", Outcome::Success);
    fresh.time = Timestamp::now();
    writer.append(fresh).await.unwrap();
    // Poll (no timing assertion): the timer covers the record without further appends.
    let mut covered = 0;
    for _ in 0..200 {
        covered = store.audit_log().state().await.unwrap().covered;
        if covered == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(covered, 1);
    assert_eq!(store.audit_log().checkpoints().await.unwrap().len(), 1);
    writer.close().await;
    store.close().await;
}

async fn appends_fail_once_the_database_is_gone(url: String) {
    let store = open(&url).await;
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let writer = writer(&store, &key);
    writer
        .append(draft(0, "user:alice", "auth.login", Outcome::Success))
        .await
        .unwrap();
    assert!(writer.is_healthy());
    store.close().await;
    let failed = writer
        .append(draft(1, "user:alice", "auth.login", Outcome::Success))
        .await;
    assert!(
        matches!(failed, Err(AuditWriteError::Write(_))),
        "{failed:?}"
    );
    assert!(!writer.is_healthy());
}
