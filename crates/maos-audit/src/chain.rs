//! Appending to the chain: sealing records and making checkpoints when they are due.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointSigningKey, KeyError};
use crate::digest::Digest;
use crate::merkle::{FrontierError, MerkleFrontier, leaf_hash};
use crate::record::{AuditRecord, ChainHead, DetailsTooDeep, RecordDraft};
use crate::time::Timestamp;

/// When checkpoints are made: after `every_records` new records, or once the oldest record not
/// yet covered is `every` old, whichever comes first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPolicy {
    pub every_records: u64,
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    /// Every 1,000 records or 10 seconds.
    fn default() -> Self {
        CheckpointPolicy {
            every_records: 1000,
            every: Duration::from_secs(10),
        }
    }
}

/// Everything needed to go on appending to a chain, small enough to keep in one database row
/// and update in the same transaction as the records it describes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainState {
    pub head: ChainHead,
    /// Merkle tree over every record so far, as its right edge.
    pub tree: MerkleFrontier,
    /// Index the next checkpoint gets.
    pub next_checkpoint: u64,
    /// [`Checkpoint::digest`] of the latest checkpoint, zeros before the first.
    pub last_checkpoint: Digest,
    /// Records covered by the latest checkpoint.
    pub covered: u64,
    /// Time of the oldest record that no checkpoint covers yet.
    pub oldest_uncovered: Option<Timestamp>,
}

impl ChainState {
    /// The state of an empty chain.
    pub fn genesis() -> Self {
        ChainState {
            head: ChainHead::GENESIS,
            tree: MerkleFrontier::new(),
            next_checkpoint: 0,
            last_checkpoint: Digest::ZERO,
            covered: 0,
            oldest_uncovered: None,
        }
    }

    /// Checks that stored parts agree with each other.
    pub fn validate(&self) -> Result<(), ChainError> {
        self.tree.validate()?;
        let consistent = self.tree.size() == self.head.next_seq
            && self.covered <= self.head.next_seq
            && (self.next_checkpoint == 0) == (self.covered == 0)
            && (self.next_checkpoint == 0) == (self.last_checkpoint == Digest::ZERO)
            && (self.covered < self.head.next_seq) == self.oldest_uncovered.is_some()
            && (self.head.next_seq == 0) == (self.head.last_hash == Digest::ZERO);
        if !consistent {
            return Err(ChainError::InconsistentState);
        }
        Ok(())
    }

    /// Records not covered by any checkpoint yet.
    pub fn uncovered(&self) -> u64 {
        self.head.next_seq.saturating_sub(self.covered)
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error(transparent)]
    Details(#[from] DetailsTooDeep),
    #[error("checkpoint signing failed: {0}")]
    Sign(#[from] KeyError),
    #[error("stored chain state is damaged: {0}")]
    Frontier(#[from] FrontierError),
    #[error("stored chain state is damaged: head, tree size and checkpoint fields disagree")]
    InconsistentState,
    #[error("the chain is full: sequence numbers are exhausted")]
    Exhausted,
}

/// A newly sealed record, and the checkpoint that became due with it, if any. Store both, and
/// the chain's new [`ChainState`], in one transaction.
#[derive(Clone, Debug, PartialEq)]
pub struct Sealed {
    pub record: AuditRecord,
    pub checkpoint: Option<Checkpoint>,
}

/// The appending end of an audit chain.
///
/// It holds no records, only [`ChainState`]. A server that shares one chain between nodes takes
/// a lock (for example `SELECT ... FOR UPDATE` on the state row), resumes from the stored state,
/// appends, and writes records, checkpoints and the new state before releasing it. If that write
/// fails, drop this value and resume again from what is stored: nothing here is half-applied.
#[derive(Debug)]
pub struct AuditChain {
    state: ChainState,
    policy: CheckpointPolicy,
    key: Arc<CheckpointSigningKey>,
}

impl AuditChain {
    /// A new, empty chain.
    pub fn genesis(policy: CheckpointPolicy, key: Arc<CheckpointSigningKey>) -> Self {
        AuditChain {
            state: ChainState::genesis(),
            policy,
            key,
        }
    }

    /// Goes on from a stored state.
    pub fn resume(
        state: ChainState,
        policy: CheckpointPolicy,
        key: Arc<CheckpointSigningKey>,
    ) -> Result<Self, ChainError> {
        state.validate()?;
        Ok(AuditChain { state, policy, key })
    }

    pub fn state(&self) -> &ChainState {
        &self.state
    }

    pub fn head(&self) -> ChainHead {
        self.state.head
    }

    /// Seals `draft` as the next record. A checkpoint is made with it when `every_records`
    /// records are uncovered, or when the oldest uncovered record is `every` older than this one.
    pub fn seal(&mut self, draft: RecordDraft) -> Result<Sealed, ChainError> {
        if self.state.head.next_seq == u64::MAX {
            return Err(ChainError::Exhausted);
        }
        let now = draft.time;
        let record = AuditRecord::seal(&self.state.head, draft)?;

        // Work on a copy so that a failed signature leaves the chain as it was.
        let mut next = self.state.clone();
        next.head = record.head_after();
        next.tree.push_leaf_hash(leaf_hash(record.hash.as_bytes()));
        next.oldest_uncovered.get_or_insert(record.time);

        let checkpoint = if self.is_due(&next, now) {
            Some(checkpoint_of(&mut next, &self.key, now)?)
        } else {
            None
        };
        self.state = next;
        Ok(Sealed { record, checkpoint })
    }

    /// A checkpoint if the oldest uncovered record is at least `every` old at `now`, or
    /// `every_records` are uncovered. Call it from a timer so that a quiet chain is still
    /// covered within about `every`.
    pub fn tick(&mut self, now: Timestamp) -> Result<Option<Checkpoint>, ChainError> {
        if !self.is_due(&self.state, now) {
            return Ok(None);
        }
        self.checkpoint_now(now)
    }

    /// A checkpoint over every record so far, unless the latest one already covers them all.
    /// Call it on shutdown.
    pub fn checkpoint_now(&mut self, now: Timestamp) -> Result<Option<Checkpoint>, ChainError> {
        if self.state.uncovered() == 0 {
            return Ok(None);
        }
        let mut next = self.state.clone();
        let checkpoint = checkpoint_of(&mut next, &self.key, now)?;
        self.state = next;
        Ok(Some(checkpoint))
    }

    fn is_due(&self, state: &ChainState, now: Timestamp) -> bool {
        let uncovered = state.uncovered();
        if uncovered == 0 {
            return false;
        }
        let old_enough = state
            .oldest_uncovered
            .is_some_and(|oldest| now.since(oldest) >= self.policy.every);
        uncovered >= self.policy.every_records || old_enough
    }
}

/// Signs a checkpoint over everything in `state` and records it there.
fn checkpoint_of(
    state: &mut ChainState,
    key: &CheckpointSigningKey,
    now: Timestamp,
) -> Result<Checkpoint, ChainError> {
    let checkpoint = Checkpoint::sign(
        key,
        state.next_checkpoint,
        now,
        state.tree.size(),
        state.tree.root(),
        state.last_checkpoint,
    )?;
    state.next_checkpoint = state.next_checkpoint.saturating_add(1);
    state.last_checkpoint = checkpoint.digest();
    state.covered = checkpoint.tree_size;
    state.oldest_uncovered = None;
    Ok(checkpoint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ActionName, Actor, Outcome};

    fn key() -> Arc<CheckpointSigningKey> {
        Arc::new(CheckpointSigningKey::generate().unwrap())
    }

    fn draft_at(millis: u64) -> RecordDraft {
        RecordDraft::new(
            Timestamp::from_unix_millis(1_800_000_000_000 + millis).unwrap(),
            Actor::System,
            ActionName::parse("key.rotate").unwrap(),
            "key:payments",
            Outcome::Success,
        )
    }

    #[test]
    fn records_chain_and_checkpoints_follow_the_record_count() {
        let key = key();
        let policy = CheckpointPolicy {
            every_records: 3,
            every: Duration::from_secs(3600),
        };
        let mut chain = AuditChain::genesis(policy, key.clone());
        let mut records = Vec::new();
        let mut checkpoints = Vec::new();
        for at in 0..7 {
            let sealed = chain.seal(draft_at(at)).unwrap();
            records.push(sealed.record);
            checkpoints.extend(sealed.checkpoint);
        }
        for (at, record) in records.iter().enumerate() {
            assert_eq!(record.seq, at as u64);
            assert!(record.is_intact());
        }
        for pair in records.windows(2) {
            assert_eq!(pair[1].prev_hash, pair[0].hash);
        }
        let sizes: Vec<u64> = checkpoints.iter().map(|c| c.tree_size).collect();
        assert_eq!(sizes, [3, 6]);
        assert_eq!(checkpoints[0].prev_checkpoint, Digest::ZERO);
        assert_eq!(checkpoints[1].prev_checkpoint, checkpoints[0].digest());
        assert!(
            checkpoints
                .iter()
                .all(|c| c.signature_is_valid(&key.verifying_key()))
        );

        let mut tree = MerkleFrontier::new();
        for record in &records[..6] {
            tree.push(record.hash.as_bytes());
        }
        assert_eq!(checkpoints[1].root, tree.root());
        assert_eq!(chain.state().uncovered(), 1);
    }

    #[test]
    fn checkpoints_follow_time_too() {
        let policy = CheckpointPolicy {
            every_records: 1000,
            every: Duration::from_secs(5),
        };
        let mut chain = AuditChain::genesis(policy, key());
        assert!(chain.seal(draft_at(0)).unwrap().checkpoint.is_none());
        assert!(chain.seal(draft_at(4_999)).unwrap().checkpoint.is_none());
        // A record five seconds after the oldest uncovered one brings a checkpoint with it.
        let sealed = chain.seal(draft_at(5_000)).unwrap();
        assert_eq!(sealed.checkpoint.map(|c| c.tree_size), Some(3));

        // A quiet chain is checkpointed by the timer.
        chain.seal(draft_at(6_000)).unwrap();
        let base = Timestamp::from_unix_millis(1_800_000_000_000).unwrap();
        let at = |ms: u64| Timestamp::from_unix_millis(base.unix_millis() + ms).unwrap();
        assert_eq!(chain.tick(at(10_999)).unwrap(), None);
        let ticked = chain.tick(at(11_000)).unwrap().unwrap();
        assert_eq!((ticked.index, ticked.tree_size), (1, 4));
        // Nothing new: no checkpoint, even on shutdown.
        assert_eq!(chain.tick(at(60_000)).unwrap(), None);
        assert_eq!(chain.checkpoint_now(at(60_000)).unwrap(), None);
        chain.seal(draft_at(61_000)).unwrap();
        assert_eq!(
            chain
                .checkpoint_now(at(61_001))
                .unwrap()
                .map(|c| c.tree_size),
            Some(5)
        );
    }

    #[test]
    fn a_resumed_chain_continues_exactly() {
        let key = key();
        let policy = CheckpointPolicy {
            every_records: 4,
            every: Duration::from_secs(3600),
        };
        let mut straight = AuditChain::genesis(policy, key.clone());
        let mut split = AuditChain::genesis(policy, key.clone());
        for at in 0..5 {
            straight.seal(draft_at(at)).unwrap();
            split.seal(draft_at(at)).unwrap();
        }
        let stored = serde_json::to_string(split.state()).unwrap();
        let mut resumed =
            AuditChain::resume(serde_json::from_str(&stored).unwrap(), policy, key).unwrap();
        for at in 5..9 {
            assert_eq!(
                resumed.seal(draft_at(at)).unwrap(),
                straight.seal(draft_at(at)).unwrap()
            );
        }
        assert_eq!(resumed.state(), straight.state());
    }

    #[test]
    fn a_chain_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync>() {}
        shareable::<AuditChain>();
        shareable::<CheckpointSigningKey>();
    }

    #[test]
    fn damaged_state_is_refused() {
        let policy = CheckpointPolicy::default();
        let mut chain = AuditChain::genesis(policy, key());
        chain.seal(draft_at(0)).unwrap();
        chain.seal(draft_at(1)).unwrap();
        let mut state = chain.state().clone();
        state.head.next_seq = 3;
        assert!(AuditChain::resume(state, policy, key()).is_err());
        let mut state = chain.state().clone();
        state.oldest_uncovered = None;
        assert!(matches!(
            AuditChain::resume(state, policy, key()),
            Err(ChainError::InconsistentState)
        ));
        assert!(AuditChain::resume(chain.state().clone(), policy, key()).is_ok());
    }
}
