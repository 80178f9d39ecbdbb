//! The appending end of the stored audit chain, with group commit.
//!
//! One task per process owns the writes. Callers queue drafts; the task takes everything
//! waiting (up to `max_batch` records), and in one transaction locks the chain state row, seals
//! the drafts onto the stored chain, adds any checkpoint that became due and stores the new
//! state. Each caller hears back only after that transaction committed, so an acknowledged
//! record is durable; when the transaction fails, every caller of the batch gets the error.
//!
//! The task resumes from the stored state for every batch instead of keeping the chain in
//! memory. That makes it correct across restarts (even after `kill -9`) and across several
//! nodes appending to one PostgreSQL database: the row lock lets one writer in at a time and
//! each goes on from what the one before committed. A timer makes a checkpoint once the oldest
//! uncovered record is `every` old, and [`AuditWriter::close`] covers every record before it
//! stops.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use maos_audit::{AuditChain, CheckpointPolicy, CheckpointSigningKey, RecordDraft, Timestamp};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::{AuditAppend, Store};

/// Why a record was not stored. The operation it describes must be refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditWriteError {
    #[error("the audit writer has stopped")]
    Stopped,
    #[error("the audit queue is full")]
    QueueFull,
    #[error("writing the audit records failed: {0}")]
    Write(String),
}

/// How the writer batches and checkpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditWriterOptions {
    pub checkpoints: CheckpointPolicy,
    /// Most records in one transaction.
    pub max_batch: usize,
    /// Requests (single records or groups) that may wait for the writer.
    pub queue: usize,
}

impl Default for AuditWriterOptions {
    fn default() -> Self {
        Self {
            checkpoints: CheckpointPolicy::default(),
            max_batch: 4096,
            queue: 65536,
        }
    }
}

/// What one committed request got: the sequence numbers of its records.
pub type Receipt = std::ops::Range<u64>;

type Reply = oneshot::Sender<Result<Receipt, AuditWriteError>>;

enum Job {
    Records {
        drafts: Vec<RecordDraft>,
        done: Reply,
    },
    Close(oneshot::Sender<()>),
}

/// The group-committing writer (see the module documentation).
#[derive(Debug)]
pub struct AuditWriter {
    queue: mpsc::Sender<Job>,
    healthy: Arc<AtomicBool>,
    transactions: Arc<AtomicU64>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl AuditWriter {
    /// Starts the writer task on `store`; checkpoints are signed with `key`.
    pub fn start(
        store: Store,
        key: Arc<CheckpointSigningKey>,
        options: AuditWriterOptions,
    ) -> AuditWriter {
        let (queue, jobs) = mpsc::channel(options.queue.max(1));
        let healthy = Arc::new(AtomicBool::new(true));
        let transactions = Arc::new(AtomicU64::new(0));
        let task = Task {
            transactions: transactions.clone(),
            store,
            key,
            policy: options.checkpoints,
            max_batch: options.max_batch.max(1),
            healthy: healthy.clone(),
            oldest_uncovered: None,
        };
        AuditWriter {
            queue,
            healthy,
            transactions,
            task: std::sync::Mutex::new(Some(tokio::spawn(task.run(jobs)))),
        }
    }

    /// Stores one record; resolves with its sequence number once it is committed.
    pub async fn append(&self, draft: RecordDraft) -> Result<u64, AuditWriteError> {
        self.append_all(vec![draft]).await.map(|seqs| seqs.start)
    }

    /// Stores several records, adjacent in the chain and in one transaction.
    pub async fn append_all(&self, drafts: Vec<RecordDraft>) -> Result<Receipt, AuditWriteError> {
        let (done, committed) = oneshot::channel();
        // A full queue refuses instead of waiting: under overload the operation fails closed
        // at once rather than piling up behind the writer.
        self.queue
            .try_send(Job::Records { drafts, done })
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => AuditWriteError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => AuditWriteError::Stopped,
            })?;
        committed.await.map_err(|_| AuditWriteError::Stopped)?
    }

    /// Transactions that stored records so far (for metrics and tests: group commit makes
    /// this smaller than the number of appends under concurrency).
    pub fn transactions(&self) -> u64 {
        self.transactions.load(Ordering::Relaxed)
    }

    /// Whether the latest transaction succeeded.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Acquire)
    }

    /// Writes what is queued, checkpoints every record so far and stops the task. Appends
    /// after this fail with [`AuditWriteError::Stopped`].
    pub async fn close(&self) {
        let (done, closed) = oneshot::channel();
        if self.queue.send(Job::Close(done)).await.is_ok() {
            let _ = closed.await;
        }
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

/// The task that owns the writes.
struct Task {
    store: Store,
    key: Arc<CheckpointSigningKey>,
    policy: CheckpointPolicy,
    max_batch: usize,
    healthy: Arc<AtomicBool>,
    transactions: Arc<AtomicU64>,
    /// Time of the oldest record no checkpoint covers, as of this task's latest transaction;
    /// drives the checkpoint timer.
    oldest_uncovered: Option<Timestamp>,
}

impl Task {
    async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        // Cover what an earlier run (or a crash) left uncovered once it is due.
        self.oldest_uncovered = match self.store.audit_log().state().await {
            Ok(state) => state.oldest_uncovered,
            Err(error) => {
                tracing::error!(%error, "audit.state_unreadable");
                None
            }
        };
        let period = self
            .policy
            .every
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        let mut timer = tokio::time::interval(period);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                job = jobs.recv() => {
                    let Some(job) = job else { break };
                    let mut batch = Vec::new();
                    let mut records = 0;
                    let mut close = None;
                    let mut next = Some(job);
                    while let Some(job) = next.take() {
                        match job {
                            Job::Records { drafts, done } => {
                                records += drafts.len();
                                batch.push((drafts, done));
                            }
                            Job::Close(done) => {
                                close = Some(done);
                                break;
                            }
                        }
                        if records < self.max_batch {
                            next = jobs.try_recv().ok();
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
                        .oldest_uncovered
                        .is_some_and(|oldest| Timestamp::now().since(oldest) >= self.policy.every);
                    if due {
                        self.checkpoint(false).await;
                    }
                }
            }
        }
    }

    /// Seals and commits one batch, then answers everyone waiting for it.
    async fn commit(&mut self, batch: Vec<(Vec<RecordDraft>, Reply)>) {
        let mut sizes = Vec::with_capacity(batch.len());
        let mut drafts = Vec::new();
        let mut replies = Vec::with_capacity(batch.len());
        for (group, reply) in batch {
            sizes.push(group.len() as u64);
            drafts.extend(group);
            replies.push(reply);
        }
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
        match result {
            Ok(append) => {
                self.transactions.fetch_add(1, Ordering::Relaxed);
                let mut next = append.records.first().map_or(0, |r| r.seq);
                self.written(&append);
                for (reply, size) in replies.into_iter().zip(sizes) {
                    let _ = reply.send(Ok(next..next + size));
                    next += size;
                }
            }
            Err(error) => {
                self.healthy.store(false, Ordering::Release);
                tracing::error!(%error, records = count, "audit.write_failed");
                let error = AuditWriteError::Write(error.to_string());
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }

    /// A checkpoint when one is due, or with `now` whenever records are uncovered.
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
        self.oldest_uncovered = append.state.oldest_uncovered;
        for checkpoint in &append.checkpoints {
            // Copies of the checkpoints outside the database let an operator notice when the
            // newest ones are deleted together with the records they cover (docs/audit.md).
            tracing::info!(
                audit.checkpoint = checkpoint.index,
                audit.tree_size = checkpoint.tree_size,
                audit.root = %checkpoint.root,
                "audit.checkpoint"
            );
        }
    }
}
