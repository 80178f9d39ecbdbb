//! The persistent audit log of the server: [`StoreAudit`] puts records on the hash chain stored
//! in the database through the group-committing [`AuditWriter`] of `maos-store`, plus the
//! `[audit]` configuration and the deployment's audit keys.
//!
//! An [`AuditSink::append`] resolves only after the transaction holding its record committed,
//! and with an error when it failed, so the operation it records is refused (fail closed).
//!
//! The checkpoint signing key (Ed25519, PKCS#8) and the redaction key (32 bytes for
//! HMAC-SHA256) are files in the data directory, created on first start with mode 0600, or
//! taken from configured paths. A key file that group or others may read is refused. The
//! signing key's public half is written beside it (`audit-signing.pub`) for `maos audit verify`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use std::future::Future;
use std::pin::Pin;

use maos_audit::{
    ActionName, Actor, AuditRedactor, ChainState, CheckpointPolicy, CheckpointSigningKey, Outcome,
    RecordDraft, RedactionKey, Timestamp, VerifyingKey,
};
use maos_store::{AuditWriteError, AuditWriter, AuditWriterOptions, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::audit::{AppendFuture, AuditSink, AuditUnavailable};

/// File names in the data directory.
pub const SIGNING_KEY_FILE: &str = "audit-signing.key";
pub const VERIFYING_KEY_FILE: &str = "audit-signing.pub";
pub const REDACTION_KEY_FILE: &str = "audit-redaction.key";

/// Which decisions become audit records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecisionAudit {
    #[default]
    All,
    Deny,
    None,
}

/// The `[audit]` section of the configuration.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub checkpoint_every_records: u64,
    pub checkpoint_every_seconds: u64,
    pub decisions: DecisionAudit,
    /// Appends that may wait for the writer; when it is full, operations are refused.
    pub queue: usize,
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Empty: `audit-signing.key` in the data directory.
    pub signing_key_file: PathBuf,
    /// Empty: `audit-redaction.key` in the data directory.
    pub redaction_key_file: PathBuf,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every_records: 1000,
            checkpoint_every_seconds: 10,
            decisions: DecisionAudit::All,
            queue: 65536,
            max_batch: 4096,
            signing_key_file: PathBuf::new(),
            redaction_key_file: PathBuf::new(),
        }
    }
}

impl AuditConfig {
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.checkpoint_every_records == 0 {
            return Err("audit.checkpoint_every_records: must be positive".into());
        }
        if self.checkpoint_every_seconds == 0 {
            return Err("audit.checkpoint_every_seconds: must be positive".into());
        }
        if self.queue == 0 || self.max_batch == 0 {
            return Err("audit.queue and audit.max_batch: must be positive".into());
        }
        Ok(())
    }

    pub fn checkpoint_policy(&self) -> CheckpointPolicy {
        CheckpointPolicy {
            every_records: self.checkpoint_every_records,
            every: Duration::from_secs(self.checkpoint_every_seconds),
        }
    }

    /// Where the signing key lives.
    pub fn signing_key_path(&self, data_dir: &Path) -> PathBuf {
        if self.signing_key_file.as_os_str().is_empty() {
            data_dir.join(SIGNING_KEY_FILE)
        } else {
            self.signing_key_file.clone()
        }
    }

    /// Where the redaction key lives.
    pub fn redaction_key_path(&self, data_dir: &Path) -> PathBuf {
        if self.redaction_key_file.as_os_str().is_empty() {
            data_dir.join(REDACTION_KEY_FILE)
        } else {
            self.redaction_key_file.clone()
        }
    }
}

/// The audit log's keys.
#[derive(Debug)]
pub struct AuditKeys {
    pub signing: Arc<CheckpointSigningKey>,
    pub redaction: RedactionKey,
}

/// Reads the keys, creating missing ones (mode 0600). The verifying key is written beside the
/// signing key as hex, for `maos audit verify`.
pub fn load_or_create_keys(config: &AuditConfig, data_dir: &Path) -> anyhow::Result<AuditKeys> {
    let signing_path = config.signing_key_path(data_dir);
    let der = read_or_create(&signing_path, || {
        let key = CheckpointSigningKey::generate()?;
        Ok(key.to_pkcs8()?.to_vec())
    })?;
    let signing = CheckpointSigningKey::from_pkcs8(&der).map_err(|e| {
        anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", signing_path.display())
    })?;
    let public = signing_path.with_file_name(VERIFYING_KEY_FILE);
    let hex = format!("{}\n", signing.verifying_key().to_hex());
    if std::fs::read_to_string(&public).ok().as_deref() != Some(hex.as_str()) {
        std::fs::write(&public, hex)
            .with_context(|| format!("cannot write {}", public.display()))?;
    }

    let redaction_path = config.redaction_key_path(data_dir);
    let bytes = read_or_create(&redaction_path, || {
        Ok(RedactionKey::generate()?.as_bytes().to_vec())
    })?;
    let redaction = RedactionKey::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", redaction_path.display()))?;
    Ok(AuditKeys {
        signing: Arc::new(signing),
        redaction,
    })
}

/// Reads a key file (created by a previous start, or copied from another node). A file that
/// group or others may access is refused: the key would not be secret.
pub fn read_key_file(path: &Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read the audit key {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the audit key {} is accessible to group or others (mode {:o}); run `chmod 600` on it",
                path.display(),
                mode & 0o777
            );
        }
    }
    std::fs::read(path)
        .map(zeroize::Zeroizing::new)
        .with_context(|| format!("cannot read the audit key {}", path.display()))
}

fn read_or_create(
    path: &Path,
    generate: impl FnOnce() -> anyhow::Result<Vec<u8>>,
) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
    use std::io::Write;
    if path.exists() {
        return read_key_file(path);
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let bytes = zeroize::Zeroizing::new(generate()?);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&bytes)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), "audit.key_created");
            Ok(bytes)
        }
        // Another process created it first.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read_key_file(path),
        Err(e) => Err(e).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The audit sink over the store (see the module documentation).
#[derive(Debug)]
pub struct StoreAudit {
    writer: AuditWriter,
    redactor: AuditRedactor,
    verifying_key: VerifyingKey,
}

impl StoreAudit {
    /// Starts the writer task on `store`.
    pub fn start(store: Store, config: &AuditConfig, keys: AuditKeys) -> StoreAudit {
        let writer = AuditWriter::start(
            store,
            keys.signing.clone(),
            AuditWriterOptions {
                checkpoints: config.checkpoint_policy(),
                max_batch: config.max_batch,
                queue: config.queue,
            },
        );
        StoreAudit {
            writer,
            redactor: AuditRedactor::new(&keys.redaction),
            verifying_key: keys.signing.verifying_key(),
        }
    }

    pub fn redactor(&self) -> &AuditRedactor {
        &self.redactor
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }
}

fn unavailable(error: AuditWriteError) -> AuditUnavailable {
    if matches!(error, AuditWriteError::QueueFull) {
        metrics::counter!("maos_audit_queue_full_total").increment(1);
    }
    AuditUnavailable(error.to_string())
}

impl AuditSink for StoreAudit {
    fn append(&self, draft: RecordDraft) -> AppendFuture<'_> {
        Box::pin(async move {
            self.writer.append(draft).await.map_err(unavailable)?;
            metrics::counter!("maos_audit_records_total").increment(1);
            Ok(())
        })
    }

    fn append_all(&self, drafts: Vec<RecordDraft>) -> AppendFuture<'_> {
        Box::pin(async move {
            let seqs = self.writer.append_all(drafts).await.map_err(unavailable)?;
            metrics::counter!("maos_audit_records_total").increment(seqs.end - seqs.start);
            Ok(())
        })
    }

    fn redact(&self, secret: &str) -> String {
        self.redactor.redact(secret)
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.writer.close())
    }
}

/// The actor of a record for a principal in `type:id` form; principals whose form the audit
/// log does not accept are recorded as `system` with the form in `details.principal`.
pub fn actor_of(qualified: &str, details: &mut Map<String, Value>) -> Actor {
    match Actor::parse(qualified) {
        Ok(actor) => actor,
        Err(_) => {
            details.insert("principal".into(), Value::String(qualified.to_owned()));
            Actor::System
        }
    }
}

/// A record draft for an operation by `principal` (`type:id`).
pub fn draft(
    principal: &str,
    action: &'static str,
    resource: impl Into<String>,
    result: Outcome,
    request_id: Option<&str>,
    mut details: Map<String, Value>,
) -> Result<RecordDraft, AuditUnavailable> {
    let action = ActionName::parse(action)
        .map_err(|e| AuditUnavailable(format!("invalid audit action: {e}")))?;
    let actor = actor_of(principal, &mut details);
    let mut draft = RecordDraft::new(Timestamp::now(), actor, action, resource, result);
    draft.details = details;
    if let Some(id) = request_id {
        draft = draft.with_request_id(id);
    }
    Ok(draft)
}

/// The chain state stored now (for start-up checks and tests).
pub async fn stored_state(store: &Store) -> Result<ChainState, maos_store::StoreError> {
    store.audit_log().state().await
}
