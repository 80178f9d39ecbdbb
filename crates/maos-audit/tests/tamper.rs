//! Each way of tampering with a real signed log, and the exact finding `verify` reports for it.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use maos_audit::{
    ActionName, Actor, AuditChain, AuditRecord, ChainHead, Checkpoint, CheckpointPolicy,
    CheckpointSigningKey, Digest, Outcome, RecordDraft, Tamper, TamperKind, Timestamp,
    VerifyReport, VerifyingKey, verify,
};
use serde_json::json;

/// 50 records; a checkpoint every 10 records, so at tree sizes 10, 20, 30, 40 and 50.
struct Log {
    records: Vec<AuditRecord>,
    checkpoints: Vec<Checkpoint>,
    key: Arc<CheckpointSigningKey>,
    public: VerifyingKey,
}

fn draft(at: u64) -> RecordDraft {
    let actions = [
        "auth.login",
        "authz.decide",
        "key.encrypt",
        "policy.activate",
    ];
    let result = match at % 3 {
        0 => Outcome::Success,
        1 => Outcome::denied(format!("policy p-{at}")),
        _ => Outcome::failure("upstream timeout"),
    };
    RecordDraft::new(
        Timestamp::from_unix_millis(1_800_000_000_000 + at * 250).unwrap(),
        Actor::principal("user", &format!("u{}", at % 5)).unwrap(),
        ActionName::parse(actions[at as usize % actions.len()]).unwrap(),
        format!("key:k{at}"),
        result,
    )
    .with_request_id(format!("req-{at}"))
    .with_detail("n", at)
    .with_detail("score", at as f64 / 7.0)
}

fn build(records: u64) -> Log {
    let key = Arc::new(CheckpointSigningKey::generate().unwrap());
    let policy = CheckpointPolicy {
        every_records: 10,
        every: Duration::from_secs(3600),
    };
    let mut chain = AuditChain::genesis(policy, key.clone());
    let mut log = Log {
        records: Vec::new(),
        checkpoints: Vec::new(),
        public: key.verifying_key(),
        key,
    };
    for at in 0..records {
        let sealed = chain.seal(draft(at)).unwrap();
        log.records.push(sealed.record);
        log.checkpoints.extend(sealed.checkpoint);
    }
    log
}

fn check_parts(
    records: &[AuditRecord],
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
) -> Result<VerifyReport, Tamper> {
    let stream = records.iter().cloned().map(Ok::<_, Infallible>);
    verify(stream, checkpoints, key, |_| {}).map_err(|error| *error.tamper().unwrap())
}

fn check(log: &Log) -> Result<VerifyReport, Tamper> {
    check_parts(&log.records, &log.checkpoints, &log.public)
}

/// Re-hashes records from `from` on so that each links to the one before.
fn rehash_from(records: &mut [AuditRecord], from: usize) {
    for at in from..records.len() {
        if at > 0 {
            records[at].prev_hash = records[at - 1].hash;
        }
        records[at].hash = records[at].compute_hash().unwrap();
    }
}

fn forged(seq: u64, prev_hash: Digest) -> AuditRecord {
    let mut draft = draft(seq);
    draft.actor = Actor::principal("user", "mallory").unwrap();
    AuditRecord::seal(
        &ChainHead {
            next_seq: seq,
            last_hash: prev_hash,
        },
        draft,
    )
    .unwrap()
}

fn assert_finding(found: Result<VerifyReport, Tamper>, expected: Tamper) {
    let tamper = found.expect_err("tampering was not detected");
    assert_eq!(tamper, expected);
    if let Some(seq) = tamper.seq() {
        assert!(
            tamper.to_string().contains(&seq.to_string()),
            "message `{tamper}` lacks {seq}"
        );
    }
}

#[test]
fn an_untouched_log_verifies() {
    let log = build(50);
    assert_eq!(log.checkpoints.len(), 5);
    let mut seen = Vec::new();
    let stream = log.records.iter().cloned().map(Ok::<_, Infallible>);
    let report = verify(stream, &log.checkpoints, &log.public, |n| seen.push(n)).unwrap();
    assert_eq!(report.records, 50);
    assert_eq!(report.checkpoints, 5);
    assert_eq!(report.covered, 50);
    assert_eq!(report.unsigned_tail(), 0);
    assert_eq!(report.root, log.checkpoints[4].root);
    assert_eq!(report.head, log.records[49].head_after());
    assert_eq!(seen.last(), Some(&50));
}

#[test]
fn verification_hands_back_a_state_to_go_on_from() {
    let mut log = build(45);
    let report = check(&log).unwrap();
    assert_eq!(report.unsigned_tail(), 5);
    let policy = CheckpointPolicy {
        every_records: 10,
        every: Duration::from_secs(3600),
    };
    let mut chain = AuditChain::resume(report.state, policy, log.key.clone()).unwrap();
    for at in 45..62 {
        let sealed = chain.seal(draft(at)).unwrap();
        log.records.push(sealed.record);
        log.checkpoints.extend(sealed.checkpoint);
    }
    assert_eq!(log.checkpoints.last().map(|c| c.tree_size), Some(60));
    assert_eq!(check(&log).unwrap().records, 62);
}

#[test]
fn a_modified_record_is_named() {
    let mut log = build(50);
    log.records[17].actor = Actor::principal("user", "someone-else").unwrap();
    assert_finding(check(&log), Tamper::Modified { seq: 17 });

    let mut log = build(50);
    log.records[17].details.insert("n".into(), json!(18));
    assert_finding(check(&log), Tamper::Modified { seq: 17 });
}

#[test]
fn a_modified_and_rehashed_record_is_named() {
    let mut log = build(50);
    log.records[17].result = Outcome::Success;
    log.records[17].hash = log.records[17].compute_hash().unwrap();
    assert_finding(check(&log), Tamper::Modified { seq: 17 });
}

#[test]
fn a_changed_hash_field_is_a_modification() {
    let mut log = build(50);
    log.records[33].prev_hash = Digest::of(b"elsewhere");
    assert_finding(check(&log), Tamper::Modified { seq: 33 });
}

#[test]
fn a_rewritten_tail_is_caught_by_the_checkpoint_root() {
    // Modify record 17 and rehash everything after it: the chain is consistent again, but the
    // checkpoint over records 0..20 no longer matches.
    let mut log = build(50);
    log.records[17].resource = "key:other".into();
    rehash_from(&mut log.records, 17);
    assert_finding(
        check(&log),
        Tamper::CheckpointRootMismatch {
            checkpoint: 1,
            tree_size: 20,
            from_seq: 10,
        },
    );
}

#[test]
fn a_deleted_record_is_named() {
    let mut log = build(50);
    log.records.remove(23);
    assert_finding(check(&log), Tamper::Deleted { seq: 23, count: 1 });

    let mut log = build(50);
    log.records.drain(23..26);
    assert_finding(check(&log), Tamper::Deleted { seq: 23, count: 3 });

    let mut log = build(50);
    log.records.remove(0);
    assert_finding(check(&log), Tamper::Deleted { seq: 0, count: 1 });
}

#[test]
fn a_deletion_hidden_by_renumbering_is_caught_by_the_checkpoint_root() {
    let mut log = build(50);
    log.records.remove(23);
    for record in &mut log.records[23..] {
        record.seq -= 1;
    }
    rehash_from(&mut log.records, 23);
    assert_finding(
        check(&log),
        Tamper::CheckpointRootMismatch {
            checkpoint: 2,
            tree_size: 30,
            from_seq: 20,
        },
    );
}

#[test]
fn an_inserted_record_is_named() {
    // A well-formed record that links to record 29 and takes sequence number 30.
    let mut log = build(50);
    let extra = forged(30, log.records[29].hash);
    log.records.insert(30, extra);
    assert_finding(check(&log), Tamper::Inserted { seq: 30 });

    // One that does not link to anything.
    let mut log = build(50);
    log.records.insert(30, forged(30, Digest::of(b"nothing")));
    assert_finding(check(&log), Tamper::Inserted { seq: 30 });

    // One whose hash does not even match its content.
    let mut log = build(50);
    let mut broken = forged(30, log.records[29].hash);
    broken.hash = Digest::ZERO;
    log.records.insert(30, broken);
    assert_finding(check(&log), Tamper::Inserted { seq: 30 });

    // One with a sequence number far ahead.
    let mut log = build(50);
    log.records.insert(30, forged(4000, Digest::of(b"nothing")));
    assert_finding(check(&log), Tamper::Inserted { seq: 30 });

    // A replayed copy of record 12.
    let mut log = build(50);
    let copy = log.records[12].clone();
    log.records.insert(13, copy);
    assert_finding(check(&log), Tamper::Inserted { seq: 12 });
}

#[test]
fn a_reordering_is_named() {
    // Two neighbours swapped: record 32 comes before record 31.
    let mut log = build(50);
    log.records.swap(31, 32);
    assert_finding(check(&log), Tamper::Reordered { seq: 32 });

    // Record 5 moved back behind record 9.
    let mut log = build(50);
    let moved = log.records.remove(5);
    log.records.insert(9, moved);
    assert_finding(check(&log), Tamper::Reordered { seq: 5 });

    // Record 40 moved forward in front of record 36.
    let mut log = build(50);
    let moved = log.records.remove(40);
    log.records.insert(36, moved);
    assert_finding(check(&log), Tamper::Reordered { seq: 40 });
}

#[test]
fn a_truncated_tail_is_named() {
    let mut log = build(50);
    log.records.truncate(45);
    assert_finding(
        check(&log),
        Tamper::TruncatedTail {
            seq: 45,
            tree_size: 50,
        },
    );

    let mut log = build(50);
    log.records.clear();
    assert_finding(
        check(&log),
        Tamper::TruncatedTail {
            seq: 0,
            tree_size: 50,
        },
    );
}

#[test]
fn a_truncated_tail_after_the_last_checkpoint_goes_unnoticed_but_is_reported_unsigned() {
    // The documented limit: records after the last checkpoint have no signature behind them.
    let log = build(47);
    let full = check(&log).unwrap();
    assert_eq!((full.covered, full.unsigned_tail()), (40, 7));
    let shortened = check_parts(&log.records[..42], &log.checkpoints, &log.public).unwrap();
    assert_eq!(shortened.unsigned_tail(), 2);
}

#[test]
fn a_bad_checkpoint_signature_is_named() {
    let mut log = build(50);
    log.checkpoints[2].root = Digest::of(b"another root");
    assert_finding(
        check(&log),
        Tamper::BadCheckpointSignature {
            checkpoint: 2,
            tree_size: 30,
        },
    );

    // A checkpoint made with another key, over the genuine records.
    let mut log = build(50);
    let intruder = CheckpointSigningKey::generate().unwrap();
    let genuine = log.checkpoints[3].clone();
    log.checkpoints[3] = Checkpoint::sign(
        &intruder,
        genuine.index,
        genuine.time,
        genuine.tree_size,
        genuine.root,
        genuine.prev_checkpoint,
    )
    .unwrap();
    let tamper = check(&log).unwrap_err();
    assert_eq!(
        tamper,
        Tamper::BadCheckpointSignature {
            checkpoint: 3,
            tree_size: 40
        }
    );
    assert_eq!(tamper.kind(), TamperKind::BadCheckpointSignature);
    assert!(tamper.to_string().contains("39"), "{tamper}");

    // Verifying with the wrong key fails on the first checkpoint.
    let log = build(20);
    let other = CheckpointSigningKey::generate().unwrap().verifying_key();
    let tamper = check_parts(&log.records, &log.checkpoints, &other).unwrap_err();
    assert_eq!(tamper.kind(), TamperKind::BadCheckpointSignature);
}

#[test]
fn a_checkpoint_root_mismatch_is_named() {
    // A genuinely signed checkpoint over a different history: records from another chain made
    // with the same key (for example a restored old backup spliced in).
    let log = build(50);
    let policy = CheckpointPolicy {
        every_records: 10,
        every: Duration::from_secs(3600),
    };
    let mut chain = AuditChain::genesis(policy, log.key.clone());
    let mut records = Vec::new();
    for at in 0..50 {
        let mut draft = draft(at);
        if at == 14 {
            draft.resource = "key:spliced".into();
        }
        records.push(chain.seal(draft).unwrap().record);
    }
    assert_finding(
        check_parts(&records, &log.checkpoints, &log.public),
        Tamper::CheckpointRootMismatch {
            checkpoint: 1,
            tree_size: 20,
            from_seq: 10,
        },
    );
    let tamper = check_parts(&records, &log.checkpoints, &log.public).unwrap_err();
    assert!(tamper.to_string().contains("records 10 to 19"), "{tamper}");
}

#[test]
fn a_missing_or_reordered_checkpoint_is_named() {
    let mut log = build(50);
    log.checkpoints.remove(1);
    assert_finding(
        check(&log),
        Tamper::CheckpointOutOfSequence {
            checkpoint: 1,
            tree_size: 30,
        },
    );
    let tamper = check(&log).unwrap_err();
    assert!(tamper.to_string().contains("records 0 to 29"), "{tamper}");

    let mut log = build(50);
    log.checkpoints.swap(2, 3);
    assert_finding(
        check(&log),
        Tamper::CheckpointOutOfSequence {
            checkpoint: 2,
            tree_size: 40,
        },
    );

    let mut log = build(50);
    let copy = log.checkpoints[0].clone();
    log.checkpoints.insert(1, copy);
    assert_finding(
        check(&log),
        Tamper::CheckpointOutOfSequence {
            checkpoint: 1,
            tree_size: 10,
        },
    );
}

#[test]
fn messages_name_the_sequence_number() {
    let cases = [
        (Tamper::Modified { seq: 17 }, "record 17 was modified"),
        (
            Tamper::Deleted { seq: 23, count: 1 },
            "record 23 was deleted",
        ),
        (
            Tamper::Inserted { seq: 30 },
            "inserted at sequence number 30",
        ),
        (Tamper::Reordered { seq: 32 }, "record 32 is out of order"),
        (
            Tamper::TruncatedTail {
                seq: 45,
                tree_size: 50,
            },
            "ends before record 45",
        ),
    ];
    for (tamper, text) in cases {
        assert!(
            tamper.to_string().contains(text),
            "`{tamper}` lacks `{text}`"
        );
    }
}

mod random_tampering {
    //! The same kinds, at random places, on one shared log whose last checkpoint covers every
    //! record.
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    const SIZE: usize = 37;

    fn log() -> &'static Log {
        static LOG: OnceLock<Log> = OnceLock::new();
        LOG.get_or_init(|| {
            let mut log = build(SIZE as u64);
            let policy = CheckpointPolicy {
                every_records: 10,
                every: Duration::from_secs(3600),
            };
            let state = check(&log).unwrap().state;
            let mut chain = AuditChain::resume(state, policy, log.key.clone()).unwrap();
            let shutdown = Timestamp::from_unix_millis(1_900_000_000_000).unwrap();
            log.checkpoints
                .extend(chain.checkpoint_now(shutdown).unwrap());
            assert_eq!(log.checkpoints.last().unwrap().tree_size, SIZE as u64);
            log
        })
    }

    fn found(records: &[AuditRecord]) -> Tamper {
        let log = log();
        check_parts(records, &log.checkpoints, &log.public).expect_err("not detected")
    }

    proptest! {
        #[test]
        fn modification(at in 0..SIZE, resource in "[a-z]{1,8}") {
            let mut records = log().records.clone();
            records[at].resource = resource;
            prop_assert_eq!(found(&records), Tamper::Modified { seq: at as u64 });
        }

        #[test]
        fn modification_with_rehash(at in 0..SIZE - 1) {
            let mut records = log().records.clone();
            records[at].request_id = None;
            records[at].hash = records[at].compute_hash().unwrap();
            prop_assert_eq!(found(&records), Tamper::Modified { seq: at as u64 });
        }

        #[test]
        fn deletion(at in 0..SIZE) {
            let mut records = log().records.clone();
            records.remove(at);
            let expected = if at == SIZE - 1 {
                Tamper::TruncatedTail { seq: at as u64, tree_size: SIZE as u64 }
            } else {
                Tamper::Deleted { seq: at as u64, count: 1 }
            };
            prop_assert_eq!(found(&records), expected);
        }

        #[test]
        fn insertion(at in 1..SIZE, linked in any::<bool>()) {
            let mut records = log().records.clone();
            let prev = if linked { records[at - 1].hash } else { Digest::of(b"x") };
            records.insert(at, forged(at as u64, prev));
            prop_assert_eq!(found(&records), Tamper::Inserted { seq: at as u64 });
        }

        #[test]
        fn swap(a in 0..SIZE, b in 0..SIZE) {
            prop_assume!(a != b);
            let (low, high) = (a.min(b), a.max(b));
            let mut records = log().records.clone();
            records.swap(low, high);
            let tamper = found(&records);
            prop_assert_eq!(tamper.kind(), TamperKind::Reordered);
            let seq = tamper.seq().unwrap();
            prop_assert!(seq == low as u64 || seq == high as u64, "{}", tamper);
        }

        #[test]
        fn move_elsewhere(from in 0..SIZE, to in 0..SIZE) {
            prop_assume!(from != to);
            let mut records = log().records.clone();
            let moved = records.remove(from);
            records.insert(to, moved);
            let tamper = found(&records);
            prop_assert_eq!(tamper.kind(), TamperKind::Reordered);
            // The moved record is named, or, when it only swapped places with a neighbour, that
            // neighbour.
            let seq = tamper.seq().unwrap();
            prop_assert!(seq == from as u64 || seq == to as u64, "{} for {} -> {}", tamper, from, to);
        }
    }
}
