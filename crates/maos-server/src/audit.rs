//! Where the server's audit records and security events go.
//!
//! Every security-relevant operation calls [`AppState::audit`](crate::state::AppState::audit)
//! before it answers its client: an `Ok` means the record is durable, an `Err` means it is not
//! and the operation must be refused (fail closed). Security events
//! ([`maos_core::event::SecurityEvent`]) go out on a broadcast channel through
//! [`AppState::emit`](crate::state::AppState::emit) for the detection pipeline; they are
//! best-effort and never block a request.

use std::future::Future;
use std::pin::Pin;

use maos_audit::RecordDraft;

/// The audit could not take a record; the operation that produced it must not go ahead.
#[derive(Clone, Debug, thiserror::Error)]
#[error("the audit log is unavailable: {0}")]
pub struct AuditUnavailable(pub String);

/// A boxed future, so that the sink can be a trait object.
pub type AppendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), AuditUnavailable>> + Send + 'a>>;

/// Takes audit records durably, in the order appended.
pub trait AuditSink: Send + Sync + std::fmt::Debug {
    /// Seals and stores one record; resolves once it is durable.
    fn append(&self, draft: RecordDraft) -> AppendFuture<'_>;

    /// Queues one record without waiting for it to be stored (decisions). An `Err` means the
    /// record was not taken, or the audit is failing: the operation must be refused.
    fn enqueue(&self, draft: RecordDraft) -> Result<(), AuditUnavailable> {
        tracing::info!(
            audit.actor = %draft.actor,
            audit.action = %draft.action,
            audit.resource = %draft.resource,
            audit.result = ?draft.result,
            "audit.record"
        );
        Ok(())
    }

    /// Whether records are being written; `false` after a failed write until one succeeds.
    fn available(&self) -> bool {
        true
    }
}

/// A sink that writes each record to the structured log and keeps nothing. It is what the
/// server runs with until the persistent, hash-chained audit log is attached.
#[derive(Debug, Default)]
pub struct LogOnlyAudit;

impl AuditSink for LogOnlyAudit {
    fn append(&self, draft: RecordDraft) -> AppendFuture<'_> {
        Box::pin(async move {
            tracing::info!(
                audit.actor = %draft.actor,
                audit.action = %draft.action,
                audit.resource = %draft.resource,
                audit.result = ?draft.result,
                "audit.record"
            );
            Ok(())
        })
    }
}
