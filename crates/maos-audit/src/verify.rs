//! Offline verification of a whole log: the hash chain, every checkpoint signature and every
//! checkpoint root.

use std::iter::Peekable;

use crate::chain::ChainState;
use crate::checkpoint::{Checkpoint, VerifyingKey};
use crate::digest::Digest;
use crate::merkle::{MerkleFrontier, leaf_hash};
use crate::record::{AuditRecord, ChainHead};

/// How often `progress` hears from [`verify`], in records.
const PROGRESS_EVERY: u64 = 4096;

/// The first thing found wrong with a log. Sequence numbers are those the chain expects at the
/// place of the damage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Tamper {
    /// The record's content does not match its own hash, or (when the hash was recomputed too)
    /// the hash the next record links to.
    #[error(
        "record {seq} was modified: its content does not match the hash the chain holds for it"
    )]
    Modified { seq: u64 },
    /// Records `seq .. seq + count` are missing and appear nowhere later in the log.
    #[error("record {seq} was deleted ({count} missing record(s) from sequence number {seq} on)")]
    Deleted { seq: u64, count: u64 },
    /// A record that the chain did not produce sits where record `seq` belongs, or a second
    /// record claims sequence number `seq`.
    #[error("a record was inserted at sequence number {seq}")]
    Inserted { seq: u64 },
    /// Record `seq` is genuine but not in its place.
    #[error("record {seq} is out of order")]
    Reordered { seq: u64 },
    /// The log ends before record `seq` although a checkpoint covers `tree_size` records.
    #[error(
        "the log was truncated: it ends before record {seq}, but checkpoint covers {tree_size} records"
    )]
    TruncatedTail { seq: u64, tree_size: u64 },
    /// The signature of the checkpoint at position `checkpoint` (counted from 0) does not verify
    /// with the given key.
    #[error("checkpoint {checkpoint} over records 0 to {} has a bad signature", tree_size.saturating_sub(1))]
    BadCheckpointSignature { checkpoint: u64, tree_size: u64 },
    /// The Merkle root over records `0..tree_size` differs from the one checkpoint `checkpoint`
    /// signed; the difference lies in records `from_seq..tree_size`, which earlier checkpoints do
    /// not cover.
    #[error(
        "records {from_seq} to {} do not match checkpoint {checkpoint}: the merkle root differs",
        tree_size.saturating_sub(1)
    )]
    CheckpointRootMismatch {
        checkpoint: u64,
        tree_size: u64,
        from_seq: u64,
    },
    /// The checkpoint at position `checkpoint` does not follow the one before: a checkpoint was
    /// deleted, inserted, or reordered, or its tree size does not grow.
    #[error(
        "checkpoint {checkpoint} over records 0 to {} does not follow the checkpoint before it \
         (a checkpoint was deleted, inserted or reordered)",
        tree_size.saturating_sub(1)
    )]
    CheckpointOutOfSequence { checkpoint: u64, tree_size: u64 },
}

/// The kind of a [`Tamper`], without its numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TamperKind {
    Modified,
    Deleted,
    Inserted,
    Reordered,
    TruncatedTail,
    BadCheckpointSignature,
    CheckpointRootMismatch,
    CheckpointOutOfSequence,
}

impl Tamper {
    pub fn kind(&self) -> TamperKind {
        match self {
            Tamper::Modified { .. } => TamperKind::Modified,
            Tamper::Deleted { .. } => TamperKind::Deleted,
            Tamper::Inserted { .. } => TamperKind::Inserted,
            Tamper::Reordered { .. } => TamperKind::Reordered,
            Tamper::TruncatedTail { .. } => TamperKind::TruncatedTail,
            Tamper::BadCheckpointSignature { .. } => TamperKind::BadCheckpointSignature,
            Tamper::CheckpointRootMismatch { .. } => TamperKind::CheckpointRootMismatch,
            Tamper::CheckpointOutOfSequence { .. } => TamperKind::CheckpointOutOfSequence,
        }
    }

    /// The first record sequence number concerned, where there is one.
    pub fn seq(&self) -> Option<u64> {
        match *self {
            Tamper::Modified { seq }
            | Tamper::Deleted { seq, .. }
            | Tamper::Inserted { seq }
            | Tamper::Reordered { seq }
            | Tamper::TruncatedTail { seq, .. } => Some(seq),
            Tamper::CheckpointRootMismatch { from_seq, .. } => Some(from_seq),
            Tamper::BadCheckpointSignature { .. } | Tamper::CheckpointOutOfSequence { .. } => None,
        }
    }
}

/// Why verification stopped.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError<E: std::error::Error + 'static> {
    #[error(transparent)]
    Tampered(#[from] Tamper),
    /// The record source failed; `position` counts the items read, from 1.
    #[error("reading item {position} of the log failed: {error}")]
    Source {
        position: u64,
        #[source]
        error: E,
    },
}

impl<E: std::error::Error + 'static> VerifyError<E> {
    pub fn tamper(&self) -> Option<&Tamper> {
        match self {
            VerifyError::Tampered(tamper) => Some(tamper),
            VerifyError::Source { .. } => None,
        }
    }
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Records read and found consistent.
    pub records: u64,
    /// Checkpoints whose signature, sequence and root were checked.
    pub checkpoints: u64,
    pub head: ChainHead,
    /// Merkle root over all records.
    pub root: Digest,
    /// Records covered by the latest checkpoint. Records after it are chained but no signature
    /// vouches for them: deleting them from the end would not be noticed.
    pub covered: u64,
    /// The state an [`AuditChain`](crate::AuditChain) resumes from to append after this log.
    pub state: ChainState,
}

impl VerifyReport {
    /// Records after the latest checkpoint.
    pub fn unsigned_tail(&self) -> u64 {
        self.records.saturating_sub(self.covered)
    }
}

/// Checks a whole log offline: records in stored order from the genesis record on, and all
/// checkpoints in order. Returns the first problem found, or a report.
///
/// Checkpoints are checked first (signature, then link to the previous one and growing tree
/// size), since record checks rely on them. Then each record: its hash, its sequence number and
/// its link to the record before; each checkpoint's Merkle root is compared once the record after
/// its tree has passed these checks (or at the end). At the end the log must be at least as long
/// as the latest checkpoint says. `progress` receives the number of
/// records checked so far every 4,096 records and once at the end.
pub fn verify<I, E>(
    records: I,
    checkpoints: &[Checkpoint],
    key: &VerifyingKey,
    mut progress: impl FnMut(u64),
) -> Result<VerifyReport, VerifyError<E>>
where
    I: IntoIterator<Item = Result<AuditRecord, E>>,
    E: std::error::Error + 'static,
{
    check_checkpoints(checkpoints, key)?;
    let covered = checkpoints.last().map_or(0, |c| c.tree_size);

    let mut stream = records.into_iter().peekable();
    let mut position = 0u64;
    let mut head = ChainHead::GENESIS;
    let mut tree = MerkleFrontier::new();
    let mut pending = checkpoints.iter().zip(0u64..).peekable();
    let mut confirmed = 0u64;
    let mut oldest_uncovered = None;
    // A checkpoint whose tree is complete, with the root computed there. It is compared only
    // after the next record has been checked: if the last record of the tree was altered and
    // rehashed, or one was slipped in just before the checkpoint, the next record names that
    // precisely, while a root mismatch could only name a range.
    let mut unconfirmed: Option<(&Checkpoint, u64, Digest)> = None;

    while let Some(item) = stream.next() {
        position += 1;
        let record = item.map_err(|error| VerifyError::Source { position, error })?;
        check_record(&record, &head, &mut stream)?;
        if let Some((checkpoint, index, root)) = unconfirmed.take() {
            confirmed = confirm(checkpoint, index, root, confirmed)?;
        }

        head = record.head_after();
        tree.push_leaf_hash(leaf_hash(record.hash.as_bytes()));
        if record.seq == covered {
            oldest_uncovered = Some(record.time);
        }

        // Tree sizes grow strictly, so at most one checkpoint ends at this record.
        if let Some((checkpoint, index)) = pending.next_if(|(c, _)| c.tree_size == tree.size()) {
            unconfirmed = Some((checkpoint, index, tree.root()));
        }

        if tree.size().is_multiple_of(PROGRESS_EVERY) {
            progress(tree.size());
        }
    }
    if let Some((checkpoint, index, root)) = unconfirmed.take() {
        confirm(checkpoint, index, root, confirmed)?;
    }
    progress(tree.size());

    if tree.size() < covered {
        return Err(Tamper::TruncatedTail {
            seq: tree.size(),
            tree_size: covered,
        }
        .into());
    }

    let state = ChainState {
        head,
        tree: tree.clone(),
        next_checkpoint: checkpoints.len() as u64,
        last_checkpoint: checkpoints.last().map_or(Digest::ZERO, Checkpoint::digest),
        covered,
        oldest_uncovered,
    };
    Ok(VerifyReport {
        records: tree.size(),
        checkpoints: checkpoints.len() as u64,
        head,
        root: tree.root(),
        covered,
        state,
    })
}

/// Compares a checkpoint's root with the one computed over the records; returns the new count of
/// confirmed records.
fn confirm(
    checkpoint: &Checkpoint,
    index: u64,
    root: Digest,
    confirmed: u64,
) -> Result<u64, Tamper> {
    if checkpoint.root != root {
        return Err(Tamper::CheckpointRootMismatch {
            checkpoint: index,
            tree_size: checkpoint.tree_size,
            from_seq: confirmed,
        });
    }
    Ok(checkpoint.tree_size)
}

fn check_checkpoints(checkpoints: &[Checkpoint], key: &VerifyingKey) -> Result<(), Tamper> {
    let mut previous = Digest::ZERO;
    let mut size = 0u64;
    for (checkpoint, position) in checkpoints.iter().zip(0u64..) {
        if !checkpoint.signature_is_valid(key) {
            return Err(Tamper::BadCheckpointSignature {
                checkpoint: position,
                tree_size: checkpoint.tree_size,
            });
        }
        if checkpoint.index != position
            || checkpoint.prev_checkpoint != previous
            || checkpoint.tree_size <= size
        {
            return Err(Tamper::CheckpointOutOfSequence {
                checkpoint: position,
                tree_size: checkpoint.tree_size,
            });
        }
        previous = checkpoint.digest();
        size = checkpoint.tree_size;
    }
    Ok(())
}

/// Checks one record against the chain so far; on failure, looks ahead to tell the kind of
/// damage apart.
fn check_record<I, E>(
    record: &AuditRecord,
    head: &ChainHead,
    rest: &mut Peekable<I>,
) -> Result<(), Tamper>
where
    I: Iterator<Item = Result<AuditRecord, E>>,
{
    let expected = head.next_seq;
    // Whether `next` is the record the chain expects here, linked to the record before.
    let continues_chain =
        |next: &AuditRecord| next.seq == expected && next.prev_hash == head.last_hash;
    let next_continues = |rest: &mut Peekable<I>| {
        rest.peek()
            .and_then(|r| r.as_ref().ok())
            .is_some_and(continues_chain)
    };

    if !record.is_intact() {
        // A broken record followed by the one expected here was slipped in; otherwise it is the
        // expected record, altered.
        if next_continues(rest) {
            return Err(Tamper::Inserted { seq: expected });
        }
        return Err(Tamper::Modified { seq: expected });
    }

    if record.seq == expected {
        if record.prev_hash == head.last_hash {
            return Ok(());
        }
        // An intact record that does not link back: either it was slipped in before the real
        // one, or the record before it was altered and rehashed.
        if next_continues(rest) {
            return Err(Tamper::Inserted { seq: expected });
        }
        return Err(Tamper::Modified {
            seq: expected.saturating_sub(1),
        });
    }

    if record.seq < expected {
        // That sequence number is already taken by a record in the chain.
        return Err(Tamper::Inserted { seq: record.seq });
    }

    // record.seq > expected: a gap.
    if next_continues(rest) {
        // The chain goes on right after this record without it. If it is the genuine record it
        // claims to be (nothing else claims its number and its predecessor links to it), it was
        // moved forward; otherwise it does not belong to the chain.
        let (claimed_again, predecessor) = scan_for_place(rest, record.seq);
        if !claimed_again && predecessor == Some(record.prev_hash) {
            return Err(Tamper::Reordered { seq: record.seq });
        }
        return Err(Tamper::Inserted { seq: expected });
    }
    if appears_later(rest, expected) {
        return Err(Tamper::Reordered { seq: expected });
    }
    Err(Tamper::Deleted {
        seq: expected,
        count: record.seq - expected,
    })
}

/// Reads the rest of the log: whether another record claims `seq`, and the hash of the record
/// claiming `seq - 1`.
fn scan_for_place<I, E>(rest: &mut I, seq: u64) -> (bool, Option<Digest>)
where
    I: Iterator<Item = Result<AuditRecord, E>>,
{
    let mut claimed_again = false;
    let mut predecessor = None;
    for record in rest.flatten() {
        if record.seq == seq {
            claimed_again = true;
        } else if Some(record.seq) == seq.checked_sub(1) {
            predecessor = Some(record.hash);
        }
    }
    (claimed_again, predecessor)
}

/// Reads on until a record claims `seq`.
fn appears_later<I, E>(rest: &mut I, seq: u64) -> bool
where
    I: Iterator<Item = Result<AuditRecord, E>>,
{
    rest.flatten().any(|record| record.seq == seq)
}
