//! The tamper-evident audit log of MAOS Security.
//!
//! Every security-relevant operation becomes an [`AuditRecord`]. Records form a hash chain: each
//! carries the SHA-256 hash of the one before and its own hash over canonical bytes. At intervals
//! an [`AuditChain`] adds a [`Checkpoint`]: the RFC 6962 Merkle tree head over every record so far,
//! linked to the previous checkpoint and signed with Ed25519. [`verify`] checks a whole log
//! offline and names the first record that was modified, deleted, inserted, reordered or cut off.
//! [`AuditRedactor`] keeps secrets out of records, and [`jsonl`] exports and imports logs.
//!
//! The crate does no I/O of its own: the server stores records, checkpoints and [`ChainState`].
//! docs/audit.md describes the formats and what is and is not detected.
//!
//! ```
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! use maos_audit::{
//!     ActionName, Actor, AuditChain, AuditRedactor, CheckpointPolicy, CheckpointSigningKey,
//!     Outcome, RecordDraft, RedactionKey, Timestamp, verify,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let key = Arc::new(CheckpointSigningKey::generate()?);
//! let redactor = AuditRedactor::new(&RedactionKey::generate()?);
//! let mut chain = AuditChain::genesis(CheckpointPolicy::default(), key.clone());
//!
//! let draft = RecordDraft::new(
//!     Timestamp::now(),
//!     Actor::principal("user", "alice")?,
//!     ActionName::parse("auth.login")?,
//!     "session:s-1",
//!     Outcome::Success,
//! )
//! .with_request_id("req-1")
//! .with_detail("token", redactor.redact("tok_live_123"));
//! let sealed = chain.seal(draft)?;
//! // Store sealed.record, sealed.checkpoint and chain.state() in one transaction.
//!
//! let shutdown = chain.checkpoint_now(Timestamp::now())?;
//! let checkpoints: Vec<_> = sealed.checkpoint.into_iter().chain(shutdown).collect();
//! let records = [Ok::<_, Infallible>(sealed.record)];
//! let report = verify(records, &checkpoints, &key.verifying_key(), |_| {})?;
//! assert_eq!((report.records, report.unsigned_tail()), (1, 0));
//! # Ok(())
//! # }
//! ```

mod chain;
mod checkpoint;
mod digest;
pub mod jsonl;
pub mod merkle;
mod query;
mod record;
mod redact;
mod time;
mod verify;

pub use chain::{AuditChain, ChainError, ChainState, CheckpointPolicy, Sealed};
pub use checkpoint::{
    Checkpoint, CheckpointSignature, CheckpointSigningKey, KeyError, VerifyingKey,
};
pub use digest::{Digest, DigestParseError};
pub use query::RecordFilter;
pub use record::{
    ActionName, ActionParseError, Actor, ActorParseError, AuditRecord, ChainHead, DetailsTooDeep,
    MAX_DETAILS_DEPTH, Outcome, OutcomeStatus, RecordDraft,
};
pub use redact::{AuditRedactor, REDACTED_PREFIX, RedactionKey, RedactionKeyError, is_redacted};
pub use time::{Timestamp, TimestampError};
pub use verify::{Tamper, TamperKind, VerifyError, VerifyReport, verify};
