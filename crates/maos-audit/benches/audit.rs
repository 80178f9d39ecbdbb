//! Throughput of sealing records and of verifying a log, in memory and from JSON lines.
//!
//! `cargo bench -p maos-audit`; `MAOS_AUDIT_BENCH_RECORDS` sets the size of the verified log
//! (default 100,000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use maos_audit::{
    ActionName, Actor, AuditChain, AuditRecord, Checkpoint, CheckpointPolicy, CheckpointSigningKey,
    Outcome, RecordDraft, Timestamp, jsonl, verify,
};
use serde_json::json;

/// A record of typical size: an authorization decision with a few details.
fn draft(at: u64) -> RecordDraft {
    RecordDraft::new(
        Timestamp::from_unix_millis(1_800_000_000_000 + at).unwrap(),
        Actor::principal("user", "alice").unwrap(),
        ActionName::parse("authz.decide").unwrap(),
        "document:design/api",
        Outcome::denied("no policy permits read"),
    )
    .with_request_id("01JF8Q3ZK7W9X2V5B6N4M1C0D8")
    .with_detail("policy", "p-17")
    .with_detail("ip", "192.0.2.7")
    .with_detail("latency_us", 41)
    .with_detail("roles", json!(["reader", "eng"]))
}

fn policy() -> CheckpointPolicy {
    CheckpointPolicy {
        every_records: 1000,
        every: Duration::from_secs(3600),
    }
}

fn build(records: u64, key: &Arc<CheckpointSigningKey>) -> (Vec<AuditRecord>, Vec<Checkpoint>) {
    let mut chain = AuditChain::genesis(policy(), key.clone());
    let mut log = Vec::with_capacity(records as usize);
    let mut checkpoints = Vec::new();
    for at in 0..records {
        let sealed = chain.seal(draft(at)).unwrap();
        log.push(sealed.record);
        checkpoints.extend(sealed.checkpoint);
    }
    checkpoints.extend(chain.checkpoint_now(Timestamp::now()).unwrap());
    (log, checkpoints)
}

fn seal(c: &mut Criterion) {
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let mut group = c.benchmark_group("seal");
    group.throughput(Throughput::Elements(1));

    // One record, including its share of the checkpoint signatures (one per 1,000 records).
    let mut chain = AuditChain::genesis(policy(), key.clone());
    let mut at = 0u64;
    group.bench_function("record", |b| {
        b.iter_batched(
            || {
                at += 1;
                draft(at)
            },
            |draft| black_box(chain.seal(draft).unwrap()),
            BatchSize::SmallInput,
        )
    });

    // Where a seal's time goes: the canonical bytes, and SHA-256 over them.
    let record = build(1, &key).0.remove(0);
    let bytes = record.canonical_bytes().unwrap();
    group.bench_function("canonical_bytes", |b| {
        b.iter(|| black_box(&record).canonical_bytes())
    });
    group.bench_function("sha256_of_canonical_bytes", |b| {
        b.iter(|| maos_audit::Digest::of(black_box(&bytes)))
    });
    group.finish();
}

fn verify_log(c: &mut Criterion) {
    let records: u64 = std::env::var("MAOS_AUDIT_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let public = key.verifying_key();
    let (log, checkpoints) = build(records, &key);
    let mut export = Vec::new();
    jsonl::write_log(&mut export, &log, &checkpoints).unwrap();

    let mut group = c.benchmark_group("verify");
    group.sample_size(10);
    group.throughput(Throughput::Elements(records));
    group.bench_function("in_memory", |b| {
        b.iter(|| {
            let stream = log.iter().cloned().map(Ok::<_, Infallible>);
            let report = verify(stream, &checkpoints, &public, |_| {}).unwrap();
            assert_eq!(report.records, records);
        })
    });
    group.bench_function("json_lines", |b| {
        b.iter(|| {
            let bytes = export.as_slice();
            let report = jsonl::verify_export(bytes, bytes, &public, |_| {}).unwrap();
            assert_eq!(report.records, records);
        })
    });
    group.finish();
}

criterion_group!(benches, seal, verify_log);
criterion_main!(benches);
