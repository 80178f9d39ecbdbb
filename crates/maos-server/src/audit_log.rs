//! The persistent audit log: [`StoreAudit`] seals records onto the hash chain of `maos-audit`
//! and stores them in the database with group commit.
//!
//! One writer task owns the appending end. Callers put records on a bounded queue; the writer
//! takes everything waiting (up to `audit.max_batch`), seals it onto the chain and commits it in
//! one transaction together with any checkpoint that became due and the new chain state. An
//! [`AuditSink::append`] resolves only after its batch committed, and with an error when the
//! batch failed, so the operation it records is refused (fail closed). Decisions are recorded
//! through the same queue without waiting ([`AuditSink::enqueue`]); while the queue is full or
//! the latest write failed, decisions are denied.
//!
//! The checkpoint signing key and the redaction key are files in the data directory, created on
//! first start with mode 0600 (or taken from configured paths).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use maos_audit::{
    ActionName, Actor, AuditChain, AuditRedactor, ChainState, CheckpointPolicy,
    CheckpointSigningKey, Outcome, RecordDraft, RedactionKey, Timestamp, VerifyingKey,
};
use maos_store::{AuditAppend, Store};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

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
    /// Decision records that may wait for the writer.
    pub decision_queue: usize,
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
            decision_queue: 65536,
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
        if self.decision_queue == 0 || self.max_batch == 0 {
            return Err("audit.decision_queue and audit.max_batch: must be positive".into());
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
    let signing = CheckpointSigningKey::from_pkcs8(&der)
        .map_err(|e| anyhow::anyhow!("{}: not an Ed25519 PKCS#8 key: {e}", signing_path.display()))?;
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

/// Reads a key file (the key must have been created by a previous start, or by another node).
pub fn read_key_file(path: &Path) -> anyhow::Result<zeroize::Zeroizing<Vec<u8>>> {
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
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
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

type Reply = oneshot::Sender<Result<(), AuditUnavailable>>;

enum Job {
    Record { draft: RecordDraft, done: Option<Reply> },
    Close(oneshot::Sender<()>),
}

/// The audit sink over the store (see the module documentation).
#[derive(Debug)]
pub struct StoreAudit {
    queue: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    redactor: AuditRedactor,
    verifying_key: VerifyingKey,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Job::Record { draft, .. } => write!(f, "Record({})", draft.action),
            Job::Close(_) => f.write_str("Close"),
        }
    }
}

impl StoreAudit {
    /// Starts the writer task on `store`.
    pub fn start(store: Store, config: &AuditConfig, keys: AuditKeys) -> StoreAudit {
        let (queue, jobs) = mpsc::channel(config.decision_queue);
        let healthy = Arc::new(AtomicBool::new(true));
        let writer = Writer {
            store,
            key: keys.signing.clone(),
            policy: config.checkpoint_policy(),
            max_batch: config.max_batch,
            healthy: healthy.clone(),
            uncovered_since: None,
        };
        let task = tokio::spawn(writer.run(jobs));
        StoreAudit {
            queue,
            healthy,
            redactor: AuditRedactor::new(&keys.redaction),
            verifying_key: keys.signing.verifying_key(),
            writer: std::sync::Mutex::new(Some(task)),
        }
    }

    pub fn redactor(&self) -> &AuditRedactor {
        &self.redactor
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    /// Writes what is queued, checkpoints every record so far and stops the writer.
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Job::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        let task = self.writer.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl AuditSink for StoreAudit {
    fn append(&self, draft: RecordDraft) -> AppendFuture<'_> {
        Box::pin(async move {
            let (done, committed) = oneshot::channel();
            let job = Job::Record {
                draft,
                done: Some(done),
            };
            self.queue
                .send(job)
                .await
                .map_err(|_| AuditUnavailable("the audit writer has stopped".into()))?;
            committed
                .await
                .map_err(|_| AuditUnavailable("the audit writer has stopped".into()))?
        })
    }

    fn enqueue(&self, draft: RecordDraft) -> Result<(), AuditUnavailable> {
        if !self.healthy.load(Ordering::Acquire) {
            // Still queue it: the writer's next batch tells whether the database is back.
            let _ = self.queue.try_send(Job::Record { draft, done: None });
            return Err(AuditUnavailable("the latest audit write failed".into()));
        }
        self.queue
            .try_send(Job::Record { draft, done: None })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!("maos_audit_queue_full_total").increment(1);
                    AuditUnavailable("the audit queue is full".into())
                }
                mpsc::error::TrySendError::Closed(_) => {
                    AuditUnavailable("the audit writer has stopped".into())
                }
            })
    }

    fn available(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }
}

/// The appending end, owned by one task.
struct Writer {
    store: Store,
    key: Arc<CheckpointSigningKey>,
    policy: CheckpointPolicy,
    max_batch: usize,
    healthy: Arc<AtomicBool>,
    /// Time of the oldest record this node wrote that no checkpoint covers yet, as far as it
    /// knows; drives the checkpoint timer.
    uncovered_since: Option<Timestamp>,
}

impl Writer {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let period = self.policy.every.clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Cover what an earlier run (or a crash) left uncovered once it is due.
        self.uncovered_since = match self.store.audit_log().state().await {
            Ok(state) => state.oldest_uncovered,
            Err(error) => {
                tracing::error!(%error, "audit.state_unreadable");
                None
            }
        };

        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { break };
                    let mut batch = Vec::new();
                    let mut close = None;
                    match job {
                        Job::Record { draft, done } => batch.push((draft, done)),
                        Job::Close(done) => close = Some(done),
                    }
                    while close.is_none() && batch.len() < self.max_batch {
                        match jobs.try_recv() {
                            Ok(Job::Record { draft, done }) => batch.push((draft, done)),
                            Ok(Job::Close(done)) => close = Some(done),
                            Err(_) => break,
                        }
                    }
                    if !batch.is_empty() {
                        self.commit(batch).await;
                    }
                    if let Some(done) = close {
                        self.checkpoint(true).await;
                        let _ = done.send(());
                        return;
                    }
                }
                _ = timer.tick() => {
                    let due = self
                        .uncovered_since
                        .is_some_and(|since| Timestamp::now().since(since) >= self.policy.every);
                    if due {
                        self.checkpoint(false).await;
                    }
                }
            }
        }
    }

    /// Seals and commits one batch, then answers everyone waiting for it.
    async fn commit(&mut self, batch: Vec<(RecordDraft, Option<Reply>)>) {
        let (drafts, replies): (Vec<_>, Vec<_>) = batch.into_iter().unzip();
        let count = drafts.len();
        let key = self.key.clone();
        let policy = self.policy;
        let result = self
            .store
            .audit_log()
            .append(move |state| {
                let mut chain = AuditChain::resume(state, policy, key)?;
                let mut records = Vec::with_capacity(drafts.len());
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
            .await;
        let outcome = match result {
            Ok(append) => {
                self.written(&append);
                metrics::counter!("maos_audit_records_total").increment(count as u64);
                Ok(())
            }
            Err(error) => {
                self.healthy.store(false, Ordering::Release);
                tracing::error!(%error, records = count, "audit.write_failed");
                Err(AuditUnavailable(error.to_string()))
            }
        };
        for reply in replies.into_iter().flatten() {
            let _ = reply.send(outcome.clone());
        }
    }

    /// A checkpoint when one is due (or, with `now`, whenever records are uncovered).
    async fn checkpoint(&mut self, now: bool) {
        let key = self.key.clone();
        let policy = self.policy;
        let result = self
            .store
            .audit_log()
            .append(move |state| {
                let mut chain = AuditChain::resume(state, policy, key)?;
                let checkpoint = if now {
                    chain.checkpoint_now(Timestamp::now())?
                } else {
                    chain.tick(Timestamp::now())?
                };
                Ok::<_, maos_audit::ChainError>(AuditAppend {
                    records: Vec::new(),
                    checkpoints: checkpoint.into_iter().collect(),
                    state: chain.state().clone(),
                })
            })
            .await;
        match result {
            Ok(append) => self.written(&append),
            Err(error) => {
                self.healthy.store(false, Ordering::Release);
                tracing::error!(%error, "audit.checkpoint_failed");
            }
        }
    }

    fn written(&mut self, append: &AuditAppend) {
        self.healthy.store(true, Ordering::Release);
        self.uncovered_since = append.state.oldest_uncovered;
        for checkpoint in &append.checkpoints {
            // Outside copies of each checkpoint let an operator notice newest checkpoints
            // being deleted (docs/audit.md, "What is not detected").
            tracing::info!(
                audit.checkpoint = checkpoint.index,
                audit.tree_size = checkpoint.tree_size,
                audit.root = %checkpoint.root.to_hex(),
                "audit.checkpoint"
            );
        }
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
