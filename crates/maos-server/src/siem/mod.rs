//! The SIEM in the server: one task receives every security event (emitted in process on
//! [`AppState::events`], posted to `POST /v1/events`, read from syslog listeners and tailed
//! files), gives it a correlation id, runs the Sigma detector over it, turns rule hits into
//! deduplicated alerts, and stores events and alerts in batches.
//!
//! New alerts are published on [`SiemHub::alerts`] as soon as they are raised, before they are
//! stored, so that in-process consumers (automated responses, webhooks) act without waiting for
//! the database.

pub mod config;
mod listen;
mod tail;
mod webhook;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use maos_core::{SecurityEvent, Timestamp};
use maos_siem::alert::{Alert, dedup_key};
use maos_siem::rules::RuleFiles;
use maos_siem::{Correlator, Detector, DetectorConfig, RuleHit};
use maos_store::{AlertRow, EventRow, StoreError};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

use crate::state::AppState;

pub use listen::ListenerAddrs;
pub use webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, signature};

/// MAOS's own rules, built into the binary.
const BUNDLED_RULES: &[(&str, &str)] = &[
    (
        "rules/maos/auth_events.yml",
        include_str!("../../../../rules/maos/auth_events.yml"),
    ),
    (
        "rules/maos/brute_force.yml",
        include_str!("../../../../rules/maos/brute_force.yml"),
    ),
    (
        "rules/maos/password_spraying.yml",
        include_str!("../../../../rules/maos/password_spraying.yml"),
    ),
    (
        "rules/maos/credential_stuffing.yml",
        include_str!("../../../../rules/maos/credential_stuffing.yml"),
    ),
    (
        "rules/maos/admin_denied.yml",
        include_str!("../../../../rules/maos/admin_denied.yml"),
    ),
    (
        "rules/maos/secret_enumeration.yml",
        include_str!("../../../../rules/maos/secret_enumeration.yml"),
    ),
    (
        "rules/maos/intrusion.yml",
        include_str!("../../../../rules/maos/intrusion.yml"),
    ),
];

/// How many alerts may wait for a slow subscriber before it misses some.
const ALERT_BUFFER: usize = 1024;

/// Events are stored at least this often, and as soon as this many wait.
const FLUSH_INTERVAL: Duration = Duration::from_millis(100);
const FLUSH_EVENTS: usize = 500;

/// Most alerts held open for deduplication; beyond it those outside the suppression window are
/// forgotten first.
const MAX_OPEN_ALERTS: usize = 100_000;

/// Most keys the correlator remembers.
const MAX_CORRELATION_KEYS: usize = 200_000;

/// How many recent event ids are remembered so that an event sent again is not evaluated again.
const MAX_SEEN_IDS: usize = 100_000;

/// How many rule hits may wait for the automated responses before they miss some.
const HIT_BUFFER: usize = 4096;

/// Events as they are queued for the SIEM task, with the time they arrived in MAOS.
#[derive(Debug)]
pub struct Batch {
    pub events: Vec<SecurityEvent>,
    pub received_at: Timestamp,
}

/// A rule hit that raised an alert or was counted into an open one, as the automated responses
/// receive it.
#[derive(Clone, Debug)]
pub struct AlertHit {
    /// The alert as it stands after the hit.
    pub alert: Arc<Alert>,
    /// The hit's event's own time (a log line's time stamp, or `time` of a posted event).
    pub event_time: Timestamp,
    /// When the hit's event arrived in MAOS (queued for the SIEM, or emitted in process).
    pub received_at: Timestamp,
    /// Whether the hit raised the alert (else it was counted into an open one).
    pub new: bool,
}

/// The SIEM's channels, reachable from [`AppState`]: the ingestion queue and the alerts.
#[derive(Debug)]
pub struct SiemHub {
    /// Every new alert, as it is raised. Subscribe with [`SiemHub::subscribe_alerts`].
    pub alerts: broadcast::Sender<Arc<Alert>>,
    /// Every rule hit that raised or updated an alert. Subscribe with [`SiemHub::subscribe_hits`].
    pub hits: broadcast::Sender<AlertHit>,
    /// The syslog listeners' bound addresses.
    pub addrs: ListenerAddrs,
    ingest: mpsc::Sender<Batch>,
    ingest_rx: Mutex<Option<mpsc::Receiver<Batch>>>,
}

/// The ingestion queue is full.
#[derive(Debug, thiserror::Error)]
#[error("the SIEM's ingestion queue is full")]
pub struct QueueFull;

impl SiemHub {
    /// Channels with room for `queue` batches of events.
    pub fn new(queue: usize) -> Self {
        let (ingest, rx) = mpsc::channel(queue.max(1));
        Self {
            alerts: broadcast::channel(ALERT_BUFFER).0,
            hits: broadcast::channel(HIT_BUFFER).0,
            addrs: ListenerAddrs::default(),
            ingest,
            ingest_rx: Mutex::new(Some(rx)),
        }
    }

    /// New alerts from now on.
    pub fn subscribe_alerts(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.alerts.subscribe()
    }

    /// Rule hits that raise or update alerts, from now on.
    pub fn subscribe_hits(&self) -> broadcast::Receiver<AlertHit> {
        self.hits.subscribe()
    }

    /// Queues events without waiting; `Err` when the queue is full (counted).
    pub fn try_submit(
        &self,
        events: Vec<SecurityEvent>,
        input: &'static str,
    ) -> Result<(), QueueFull> {
        let batch = Batch {
            events,
            received_at: Timestamp::now(),
        };
        match self.ingest.try_send(batch) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(batch)) => {
                metrics::counter!("maos_siem_events_dropped_total", "input" => input, "reason" => "queue_full")
                    .increment(batch.events.len() as u64);
                Err(QueueFull)
            }
            Err(mpsc::error::TrySendError::Closed(batch)) => {
                metrics::counter!("maos_siem_events_dropped_total", "input" => input, "reason" => "closed")
                    .increment(batch.events.len() as u64);
                Err(QueueFull)
            }
        }
    }

    /// Queues events, waiting while the queue is full (counted as back-pressure).
    pub async fn submit(&self, events: Vec<SecurityEvent>, input: &'static str) {
        submit_to(&self.ingest, events, input).await;
    }

    fn sender(&self) -> mpsc::Sender<Batch> {
        self.ingest.clone()
    }

    fn take_receiver(&self) -> Option<mpsc::Receiver<Batch>> {
        self.ingest_rx.lock().ok()?.take()
    }
}

/// Queues events, stamped with their arrival now, waiting while the queue is full; each wait is
/// counted in `maos_siem_backpressure_total`.
async fn submit_to(queue: &mpsc::Sender<Batch>, events: Vec<SecurityEvent>, input: &'static str) {
    if events.is_empty() {
        return;
    }
    let batch = Batch {
        events,
        received_at: Timestamp::now(),
    };
    let batch = match queue.try_send(batch) {
        Ok(()) => return,
        Err(mpsc::error::TrySendError::Full(batch)) => {
            metrics::counter!("maos_siem_backpressure_total", "input" => input).increment(1);
            batch
        }
        Err(mpsc::error::TrySendError::Closed(batch)) => batch,
    };
    let count = batch.events.len() as u64;
    if queue.send(batch).await.is_err() {
        metrics::counter!("maos_siem_events_dropped_total", "input" => input, "reason" => "closed")
            .increment(count);
    }
}

/// Why the SIEM did not start.
#[derive(Debug, thiserror::Error)]
pub enum SiemStartError {
    #[error("bundled rule {path}: {reason}")]
    BundledRule { path: String, reason: String },
    #[error("siem.rules_dir {dir}: {reason}")]
    RulesDir { dir: PathBuf, reason: String },
    #[error("cannot listen on {addr} ({what}): {source}")]
    Listen {
        addr: std::net::SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
    #[error("siem.webhooks[{index}]: {reason}")]
    Webhook { index: usize, reason: String },
}

/// The Sigma detector with the bundled rules and those of `siem.rules_dir`. A bundled rule that
/// does not load stops the start; a broken file in `rules_dir` is logged and skipped.
pub fn load_detector(config: &config::SiemConfig) -> Result<Detector, SiemStartError> {
    load_rules(config).map(|(detector, _)| detector)
}

/// What playbooks can name: every loaded rule's id and title, and the tags they carry.
#[derive(Debug, Default)]
pub struct RuleCatalog {
    pub names: HashSet<String>,
    pub tags: HashSet<String>,
}

impl RuleCatalog {
    fn of(files: &RuleFiles) -> RuleCatalog {
        let mut catalog = RuleCatalog::default();
        for file in &files.files {
            let rules = file
                .collection
                .rules
                .iter()
                .map(|r| (&r.title, &r.id, &r.tags));
            let correlations = file
                .collection
                .correlations
                .iter()
                .map(|r| (&r.title, &r.id, &r.tags));
            for (title, id, tags) in rules.chain(correlations) {
                catalog.names.insert(title.clone());
                catalog.names.extend(id.iter().cloned());
                catalog.tags.extend(tags.iter().cloned());
            }
        }
        catalog
    }

    /// Logs a warning for each playbook `rules` entry that names no loaded rule by id or title
    /// (a Sigma `name` is not matched), and each tag no loaded rule carries: such a playbook
    /// never fires. Answers the warnings.
    pub fn check_playbooks(&self, playbooks: &[crate::response::Playbook]) -> Vec<String> {
        let mut warnings = Vec::new();
        for playbook in playbooks {
            for rule in &playbook.rules {
                if !self.names.contains(rule) {
                    warnings.push(format!(
                        "playbook `{}`: no loaded rule has the id or title `{rule}` \
                         (a rule's Sigma `name` is not matched)",
                        playbook.name
                    ));
                }
            }
            for tag in &playbook.tags {
                if !self.tags.contains(tag) {
                    warnings.push(format!(
                        "playbook `{}`: no loaded rule carries the tag `{tag}`",
                        playbook.name
                    ));
                }
            }
        }
        for warning in &warnings {
            tracing::warn!(warning = %warning, "response.playbook.matches_nothing");
        }
        warnings
    }
}

/// The detector and the catalog of what it loaded.
pub fn load_rules(config: &config::SiemConfig) -> Result<(Detector, RuleCatalog), SiemStartError> {
    let mut files = RuleFiles::default();
    for (path, yaml) in BUNDLED_RULES {
        files.add_yaml(PathBuf::from(path), yaml);
    }
    if let Some(error) = files.errors.first() {
        return Err(SiemStartError::BundledRule {
            path: error.path.display().to_string(),
            reason: error.reason.clone(),
        });
    }
    let bundled = files.files.len();
    if !config.rules_dir.as_os_str().is_empty() {
        let extra =
            RuleFiles::load_dir(&config.rules_dir).map_err(|e| SiemStartError::RulesDir {
                dir: config.rules_dir.clone(),
                reason: e.to_string(),
            })?;
        for error in &extra.errors {
            tracing::warn!(path = %error.path.display(), reason = %error.reason, "siem.rule.not_loaded");
        }
        files.files.extend(extra.files);
    }
    let mut detector = Detector::new(&DetectorConfig::default());
    for error in detector.add_files(&files) {
        let is_bundled = BUNDLED_RULES
            .iter()
            .any(|(path, _)| error.path == std::path::Path::new(path));
        if is_bundled {
            return Err(SiemStartError::BundledRule {
                path: error.path.display().to_string(),
                reason: error.reason,
            });
        }
        tracing::warn!(path = %error.path.display(), reason = %error.reason, "siem.rule.not_loaded");
    }
    tracing::info!(
        bundled_files = bundled,
        rules = detector.rule_count(),
        correlations = detector.correlation_count(),
        "siem.rules.loaded"
    );
    Ok((detector, RuleCatalog::of(&files)))
}

/// The SIEM's running tasks.
#[derive(Debug)]
pub struct SiemTasks {
    /// The SIEM task: on `stop` it stores what it holds and ends, so the server waits for it.
    pub pipeline: Option<JoinHandle<()>>,
    /// Retention, listeners, tailed files and webhooks, aborted at shutdown.
    pub background: Vec<JoinHandle<()>>,
}

/// Starts the SIEM task, retention, listeners, tailed files and webhooks.
pub async fn start(
    state: &Arc<AppState>,
    stop: watch::Receiver<bool>,
) -> Result<SiemTasks, SiemStartError> {
    let config = &state.config.siem;
    let (detector, catalog) = load_rules(config)?;
    catalog.check_playbooks(&state.config.response.playbooks);
    let mut tasks = Vec::new();

    // Webhooks subscribe before the first alert can be raised.
    for (index, hook) in config.webhooks.iter().enumerate() {
        let sender = webhook::WebhookSender::new(hook)
            .map_err(|reason| SiemStartError::Webhook { index, reason })?;
        tasks.push(tokio::spawn(sender.run(state.siem.subscribe_alerts())));
    }

    let pipeline = state.siem.take_receiver().map(|ingest| {
        let pipeline = Pipeline::new(state.clone(), detector);
        tokio::spawn(pipeline.run(state.events.subscribe(), ingest, stop))
    });
    tasks.push(tokio::spawn(run_retention(state.clone())));

    tasks.extend(listen::start(state, state.siem.sender()).await?);
    for file in &config.files {
        tasks.push(tokio::spawn(tail::tail_file(
            file.clone(),
            tail::TailOptions::from_config(config),
            state.siem.sender(),
        )));
    }
    Ok(SiemTasks {
        pipeline,
        background: tasks,
    })
}

/// The stored form of an event.
pub fn event_row(event: &SecurityEvent) -> Result<EventRow, serde_json::Error> {
    Ok(EventRow {
        id: event.id.clone(),
        time: event.time.unix_micros(),
        source: event.source.clone(),
        event_type: event.event_type.as_str().to_owned(),
        severity: i64::from(event.severity.number()),
        principal: event.principal.clone(),
        source_address: event.source_address(),
        resource: event.resource.clone(),
        correlation_id: event.correlation_id.clone(),
        body: serde_json::to_string(event)?,
    })
}

/// The stored form of an alert; its acknowledgement has columns of its own.
pub fn alert_row(alert: &Alert) -> Result<AlertRow, serde_json::Error> {
    let mut body = alert.clone();
    body.status = maos_siem::AlertStatus::Open;
    body.acknowledged_by = None;
    body.acknowledged_at = None;
    Ok(AlertRow {
        id: alert.id.clone(),
        rule_id: alert.rule_id.clone(),
        severity: i64::from(alert.severity.number()),
        first_seen: alert.first_seen.unix_micros(),
        last_seen: alert.last_seen.unix_micros(),
        hits: i64::try_from(alert.count).unwrap_or(i64::MAX),
        source_address: alert.source_ip.clone(),
        principal: alert.principal.clone(),
        resource: alert.resource.clone(),
        correlation_id: alert.correlation_id.clone(),
        body: serde_json::to_string(&body)?,
    })
}

/// A stored alert with its acknowledgement put back.
pub fn alert_from_stored(stored: &maos_store::StoredAlert) -> Result<Alert, StoreError> {
    let mut alert: Alert = serde_json::from_str(&stored.body).map_err(|e| StoreError::Corrupt {
        what: "alert",
        detail: e.to_string(),
    })?;
    if stored.status == "acknowledged" {
        alert.status = maos_siem::AlertStatus::Acknowledged;
        alert.acknowledged_by = stored.acknowledged_by.clone();
        alert.acknowledged_at = stored
            .acknowledged_at
            .map(|ms| Timestamp::from_unix_micros(ms.saturating_mul(1000)));
    }
    Ok(alert)
}

/// A new random id (128 bits, hex).
pub fn new_id() -> String {
    let mut id = [0u8; 16];
    let _ = getrandom::fill(&mut id);
    hex::encode(id)
}

fn now_millis() -> i64 {
    Timestamp::now().unix_micros() / 1000
}

/// The SIEM task's state.
struct Pipeline {
    state: Arc<AppState>,
    detector: Detector,
    correlator: Correlator,
    suppression_secs: i64,
    /// Alerts within their suppression window, by dedup key.
    open: HashMap<String, Alert>,
    /// Dedup keys of alerts changed since the last flush.
    dirty: HashSet<String>,
    pending: Vec<EventRow>,
    /// Recently seen event ids, and the order they were seen in (oldest first).
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
}

impl Pipeline {
    fn new(state: Arc<AppState>, detector: Detector) -> Self {
        let config = &state.config.siem;
        let window = i64::try_from(config.correlation_window_seconds).unwrap_or(i64::MAX);
        let suppression_secs = i64::try_from(config.suppression_seconds).unwrap_or(i64::MAX);
        Self {
            state,
            detector,
            correlator: Correlator::new(window, MAX_CORRELATION_KEYS),
            suppression_secs,
            open: HashMap::new(),
            dirty: HashSet::new(),
            pending: Vec::new(),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
        }
    }

    async fn run(
        mut self,
        mut emitted: broadcast::Receiver<Arc<SecurityEvent>>,
        mut ingest: mpsc::Receiver<Batch>,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut flush = tokio::time::interval(FLUSH_INTERVAL);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut emitted_open = true;
        let mut ingest_open = true;
        while emitted_open || ingest_open {
            tokio::select! {
                received = emitted.recv(), if emitted_open => match received {
                    Ok(event) => self.handle(SecurityEvent::clone(&event), "emitted", Timestamp::now()),
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "siem.events.lagged");
                        metrics::counter!("maos_siem_events_dropped_total", "input" => "emitted", "reason" => "lagged")
                            .increment(missed);
                    }
                    Err(broadcast::error::RecvError::Closed) => emitted_open = false,
                },
                batch = ingest.recv(), if ingest_open => match batch {
                    Some(batch) => {
                        for event in batch.events {
                            self.handle(event, "ingested", batch.received_at);
                        }
                    }
                    None => ingest_open = false,
                },
                _ = flush.tick() => self.flush().await,
                changed = stop.changed() => {
                    let stopping = changed.is_err() || *stop.borrow_and_update();
                    if !stopping {
                        continue;
                    }
                    // Shutting down: what was accepted is stored before the store closes.
                    while let Ok(batch) = ingest.try_recv() {
                        for event in batch.events {
                            self.handle(event, "ingested", batch.received_at);
                        }
                    }
                    break;
                }
            }
            if self.pending.len() >= FLUSH_EVENTS {
                self.flush().await;
            }
        }
        self.flush().await;
    }

    fn handle(&mut self, mut event: SecurityEvent, origin: &'static str, received_at: Timestamp) {
        metrics::counter!("maos_siem_events_total", "origin" => origin).increment(1);
        if !self.first_sighting(&event.id) {
            // Sent again (a retried batch): stored once already, and counted once.
            metrics::counter!("maos_siem_events_duplicate_total", "origin" => origin).increment(1);
            return;
        }
        // `::ffff:a.b.c.d` is the IPv4 address a.b.c.d: stored, searched and grouped as such.
        if let Some(std::net::IpAddr::V6(v6)) = event.source_ip
            && let Some(v4) = v6.to_ipv4_mapped()
        {
            event.source_ip = Some(std::net::IpAddr::V4(v4));
        }
        if event.correlation_id.is_none() {
            event.correlation_id = Some(self.correlator.assign(&event));
        }
        for hit in self.detector.process(&event) {
            self.raise(&hit, &event, received_at);
        }
        match event_row(&event) {
            Ok(row) => self.pending.push(row),
            Err(error) => {
                tracing::error!(%error, event.id = %event.id, "siem.event.unserializable")
            }
        }
    }

    /// Whether `id` was not among the recently seen event ids; remembers it.
    fn first_sighting(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.seen_order.len() >= MAX_SEEN_IDS
            && let Some(oldest) = self.seen_order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(id.to_owned());
        self.seen_order.push_back(id.to_owned());
        true
    }

    fn raise(&mut self, hit: &RuleHit, event: &SecurityEvent, received_at: Timestamp) {
        let key = dedup_key(hit, event);
        if let Some(alert) = self.open.get_mut(&key) {
            let gap = event
                .time
                .unix_seconds()
                .saturating_sub(alert.last_seen.unix_seconds())
                .saturating_abs();
            if gap <= self.suppression_secs {
                alert.absorb(hit, event);
                metrics::counter!("maos_siem_alerts_suppressed_total").increment(1);
                // The responses see every hit: a repeat offender is acted on again once an
                // earlier action has ended.
                let _ = self.state.siem.hits.send(AlertHit {
                    alert: Arc::new(alert.clone()),
                    event_time: event.time,
                    received_at,
                    new: false,
                });
                self.dirty.insert(key);
                return;
            }
        }
        let alert = Alert::from_hit(new_id(), hit, event, Timestamp::now());
        tracing::info!(
            alert.id = %alert.id,
            rule.id = %alert.rule_id,
            severity = alert.severity.as_str(),
            source.address = alert.source_ip.as_deref().unwrap_or(""),
            principal.id = alert.principal.as_deref().unwrap_or(""),
            "siem.alert.raised"
        );
        metrics::counter!("maos_siem_alerts_total", "severity" => alert.severity.as_str())
            .increment(1);
        let shared = Arc::new(alert.clone());
        let _ = self.state.siem.alerts.send(shared.clone());
        let _ = self.state.siem.hits.send(AlertHit {
            alert: shared,
            event_time: event.time,
            received_at,
            new: true,
        });
        self.open.insert(key.clone(), alert);
        self.dirty.insert(key);
    }

    /// Stores waiting events, then changed alerts (so an alert's events are there when it is),
    /// then forgets alerts whose window has passed when too many are held.
    async fn flush(&mut self) {
        let now = now_millis();
        if !self.pending.is_empty() {
            let rows = std::mem::take(&mut self.pending);
            match self.state.store.siem_events().insert(&rows, now).await {
                Ok(_) => {
                    metrics::counter!("maos_siem_events_stored_total").increment(rows.len() as u64);
                }
                Err(error) => {
                    tracing::error!(%error, events = rows.len(), "siem.events.store_failed");
                    metrics::counter!("maos_siem_events_dropped_total", "input" => "store", "reason" => "store_failed")
                        .increment(rows.len() as u64);
                }
            }
        }
        if !self.dirty.is_empty() {
            let mut rows = Vec::with_capacity(self.dirty.len());
            for key in self.dirty.drain() {
                if let Some(alert) = self.open.get(&key) {
                    match alert_row(alert) {
                        Ok(row) => rows.push(row),
                        Err(error) => tracing::error!(%error, "siem.alert.unserializable"),
                    }
                }
            }
            if let Err(error) = self.state.store.siem_alerts().upsert(&rows, now).await {
                tracing::error!(%error, alerts = rows.len(), "siem.alerts.store_failed");
            }
        }
        if self.open.len() > MAX_OPEN_ALERTS {
            let latest = self
                .open
                .values()
                .map(|a| a.last_seen.unix_seconds())
                .max()
                .unwrap_or(0);
            let horizon = latest.saturating_sub(self.suppression_secs);
            self.open
                .retain(|_, a| a.last_seen.unix_seconds() >= horizon);
            if self.open.len() > MAX_OPEN_ALERTS {
                self.open.clear();
            }
        }
        let capacity = self.state.siem.ingest.max_capacity();
        let waiting = capacity.saturating_sub(self.state.siem.ingest.capacity());
        metrics::gauge!("maos_siem_queue_batches").set(waiting as f64);
    }
}

/// Deletes events and alerts older than `siem.retention_days`; answers how many of each.
pub async fn apply_retention(state: &AppState) -> Result<(u64, u64), StoreError> {
    let days = i64::try_from(state.config.siem.retention_days).unwrap_or(i64::MAX);
    let cutoff = now_millis().saturating_sub(days.saturating_mul(86_400_000));
    let events = state
        .store
        .siem_events()
        .delete_received_before(cutoff)
        .await?;
    let alerts = state
        .store
        .siem_alerts()
        .delete_updated_before(cutoff)
        .await?;
    if events > 0 || alerts > 0 {
        tracing::info!(events, alerts, "siem.retention.deleted");
    }
    Ok((events, alerts))
}

async fn run_retention(state: Arc<AppState>) {
    let every = Duration::from_secs(state.config.siem.retention_check_seconds.max(1));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(error) = apply_retention(&state).await {
            tracing::error!(%error, "siem.retention.failed");
        }
    }
}
