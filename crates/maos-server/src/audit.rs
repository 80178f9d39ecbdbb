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

use maos_audit::{AuditRedactor, REDACTED_PREFIX, RecordDraft, RedactionKey};

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

    /// Seals and stores several records, adjacent in the chain; resolves once all are
    /// durable (a batch of decisions).
    fn append_all(&self, drafts: Vec<RecordDraft>) -> AppendFuture<'_> {
        Box::pin(async move {
            for draft in drafts {
                self.append(draft).await?;
            }
            Ok(())
        })
    }

    /// The `hmac:<hex>` form under which a secret or token may appear in a record: HMAC-SHA256
    /// with the deployment's redaction key. This default uses a key made for this process, so
    /// forms from it cannot be looked up later; sinks that keep records use their stored key.
    fn redact(&self, secret: &str) -> String {
        static KEY: std::sync::OnceLock<Option<AuditRedactor>> = std::sync::OnceLock::new();
        KEY.get_or_init(|| {
            RedactionKey::generate()
                .ok()
                .map(|k| AuditRedactor::new(&k))
        })
        .as_ref()
        .map_or_else(
            || format!("{REDACTED_PREFIX}unavailable"),
            |r| r.redact(secret),
        )
    }

    /// Stores what is pending and stops taking records (server shutdown).
    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

/// A sink that writes each record to the structured log and keeps nothing. The server runs
/// with the persistent [`StoreAudit`](crate::audit_log::StoreAudit); this one is for tests and
/// tools that decide without a database.
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
