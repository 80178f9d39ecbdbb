//! Automated response: the actions the SIEM (through playbooks) or an administrator (through
//! `/v1/response/actions`) takes against an attack, and their undoing.
//!
//! Five actions, each over the part of MAOS that enforces it:
//!
//! * `block_ip` writes the gateway's dynamic blocklist (the store's table, announced to every
//!   node), with bans that double for repeat offenders and IPv6 clients blocked by their /64;
//! * `disable_user` disables the stored principal (its access tokens and API keys are refused
//!   at once) and revokes its refresh tokens;
//! * `quarantine_resource` makes every decision about the resource a deny, whatever the
//!   policies say;
//! * `rotate_credentials` replaces or revokes a principal's API keys and revokes its refresh
//!   tokens, or rotates a key of the key service;
//! * `increase_monitoring` marks an address, principal or resource as watched: decisions about
//!   it carry a `monitor` obligation and the gateway logs its requests in full.
//!
//! Every action is a row of `response_actions`: at most one is active per action and target
//! (the same action twice is one effect), each expires and is undone by the expiry task, each
//! can be undone early, and each can be rehearsed as a dry run. Every step is an audit record,
//! written before the step takes effect.

mod actions;
pub mod playbook;
pub mod routes;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use ipnet::IpNet;
use maos_audit::Outcome;
use maos_core::event::{Severity, Timestamp};
use maos_gateway::firewall::{CidrTable, canonical_net, client_net};
use maos_identity::{PrincipalId, SecretString};
use maos_store::{ResponseActionRow, Store, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

use crate::error::ApiError;
use crate::state::AppState;

pub use playbook::{HumanDuration, Playbook, PlaybookAction, ResponseConfig};

/// What the SIEM hands over when a rule fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trigger {
    pub rule_id: String,
    pub rule_title: String,
    pub severity: Severity,
    /// The rule's tags (`attack.credential_access`, `attack.t1110`).
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub source_ip: Option<IpAddr>,
    /// `type:id` of the principal the alert is about.
    #[serde(default)]
    pub principal: Option<String>,
    /// `type:id` of the resource the alert is about.
    #[serde(default)]
    pub resource: Option<String>,
    #[serde(default)]
    pub alert_id: Option<String>,
    /// When the event behind the trigger arrived in MAOS; the enforcement latency is measured
    /// from here.
    pub detected_at: Timestamp,
    /// The event's own time (a log line's time stamp). A trigger whose event is older than
    /// `response.max_trigger_age` starts no action. `None`: not known, never too old.
    #[serde(default)]
    pub event_time: Option<Timestamp>,
}

impl Trigger {
    /// The trigger of a SIEM alert: its rule, severity and tags, and the address, principal and
    /// resource of its group; detected when the event that crossed the threshold happened.
    pub fn from_alert(alert: &maos_siem::alert::Alert) -> Trigger {
        Trigger {
            rule_id: alert.rule_id.clone(),
            rule_title: alert.rule_title.clone(),
            severity: alert.severity,
            tags: alert.tags.clone(),
            source_ip: alert
                .source_ip
                .as_deref()
                .and_then(|ip| ip.parse::<IpAddr>().ok()),
            principal: alert.principal.clone(),
            resource: alert.resource.clone(),
            alert_id: Some(alert.id.clone()),
            detected_at: alert.trigger_time,
            event_time: Some(alert.trigger_time),
        }
    }

    /// The trigger of a rule hit that raised or updated an alert: the alert's rule, severity,
    /// tags and group; detected when the hit's event arrived in MAOS.
    pub fn from_hit(hit: &crate::siem::AlertHit) -> Trigger {
        Trigger {
            detected_at: hit.received_at,
            event_time: Some(hit.event_time),
            ..Trigger::from_alert(&hit.alert)
        }
    }

    /// How much older than `now` the trigger's event is, in milliseconds (0 when unknown or in
    /// the future).
    fn age_millis(&self, now: Timestamp) -> i64 {
        self.event_time.map_or(0, |time| {
            now.unix_micros().saturating_sub(time.unix_micros()).max(0) / 1000
        })
    }
}

/// The five actions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    BlockIp,
    DisableUser,
    QuarantineResource,
    RotateCredentials,
    IncreaseMonitoring,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::BlockIp => "block_ip",
            ActionKind::DisableUser => "disable_user",
            ActionKind::QuarantineResource => "quarantine_resource",
            ActionKind::RotateCredentials => "rotate_credentials",
            ActionKind::IncreaseMonitoring => "increase_monitoring",
        }
    }

    /// The audit action of taking it.
    fn audit_action(self) -> &'static str {
        match self {
            ActionKind::BlockIp => "response.block_ip",
            ActionKind::DisableUser => "response.disable_user",
            ActionKind::QuarantineResource => "response.quarantine_resource",
            ActionKind::RotateCredentials => "response.rotate_credentials",
            ActionKind::IncreaseMonitoring => "response.increase_monitoring",
        }
    }

    fn parse(text: &str) -> Option<ActionKind> {
        [
            ActionKind::BlockIp,
            ActionKind::DisableUser,
            ActionKind::QuarantineResource,
            ActionKind::RotateCredentials,
            ActionKind::IncreaseMonitoring,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// What an action applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    /// An address is blocked or watched as its network: an IPv4 address alone, an IPv6
    /// address with its /64.
    Network(IpNet),
    Principal(PrincipalId),
    /// `type:id`.
    Resource {
        kind: String,
        id: String,
    },
    /// A key of the key service.
    Key(String),
}

/// The widest networks an action takes: a /8 of IPv4, a /32 of IPv6.
const WIDEST_V4: u8 = 8;
const WIDEST_V6: u8 = 32;

/// The longest target text accepted.
const MAX_TARGET: usize = 512;

fn bad_target(message: String) -> ApiError {
    ApiError::bad_request("invalid_target", message)
}

fn quoted(text: &str) -> String {
    text.chars().take(64).collect()
}

impl Target {
    /// Reads the target of `action` from its text form (see docs/response.md).
    pub fn parse(action: ActionKind, text: &str) -> Result<Target, ApiError> {
        let text = text.trim();
        if text.is_empty() || text.len() > MAX_TARGET {
            return Err(bad_target(format!("a target is 1 to {MAX_TARGET} bytes")));
        }
        match action {
            ActionKind::BlockIp => parse_network(text),
            ActionKind::DisableUser => parse_principal(text),
            ActionKind::QuarantineResource => parse_resource(strip_resource_prefix(text)),
            ActionKind::RotateCredentials => match text.strip_prefix("key:") {
                Some(name) if !name.is_empty() => Ok(Target::Key(name.to_owned())),
                Some(_) => Err(bad_target("`key:` names no key".into())),
                None => parse_principal(text),
            },
            ActionKind::IncreaseMonitoring => {
                if let Some(rest) = text.strip_prefix("ip:") {
                    parse_network(rest)
                } else if let Some(rest) = text.strip_prefix("principal:") {
                    parse_principal(rest)
                } else if let Some(rest) = text.strip_prefix("resource:") {
                    parse_resource(rest)
                } else if let Ok(target) = parse_network(text) {
                    Ok(target)
                } else if let Ok(target) = parse_principal(text) {
                    Ok(target)
                } else {
                    parse_resource(text)
                }
            }
        }
    }

    /// The stored, canonical text: one target has one form, so that the same action twice
    /// finds the first.
    pub fn canonical(&self) -> String {
        match self {
            Target::Network(net) => net.to_string(),
            Target::Principal(id) => id.to_string(),
            // Prefixed, so that a resource whose type is `user` is not read as a principal.
            Target::Resource { kind, id } => format!("resource:{kind}:{id}"),
            Target::Key(name) => format!("key:{name}"),
        }
    }

    /// Whether `action` applies to this kind of target.
    fn suits(&self, action: ActionKind) -> bool {
        matches!(
            (action, self),
            (ActionKind::BlockIp, Target::Network(_))
                | (ActionKind::DisableUser, Target::Principal(_))
                | (ActionKind::QuarantineResource, Target::Resource { .. })
                | (
                    ActionKind::RotateCredentials,
                    Target::Principal(_) | Target::Key(_)
                )
                | (
                    ActionKind::IncreaseMonitoring,
                    Target::Network(_) | Target::Principal(_) | Target::Resource { .. }
                )
        )
    }
}

fn strip_resource_prefix(text: &str) -> &str {
    match text.strip_prefix("resource:") {
        Some(rest) if rest.contains(':') => rest,
        _ => text,
    }
}

fn parse_network(text: &str) -> Result<Target, ApiError> {
    let net = if let Ok(ip) = text.parse::<IpAddr>() {
        client_net(ip)
    } else {
        canonical_net(text.parse::<IpNet>().map_err(|_| {
            bad_target(format!(
                "`{}` is not an IP address or network",
                quoted(text)
            ))
        })?)
    };
    let too_wide = match net {
        IpNet::V4(v4) => v4.prefix_len() < WIDEST_V4,
        IpNet::V6(v6) => v6.prefix_len() < WIDEST_V6,
    };
    if too_wide {
        return Err(bad_target(format!(
            "`{net}` is wider than a /{WIDEST_V4} (IPv4) or /{WIDEST_V6} (IPv6)"
        )));
    }
    Ok(Target::Network(net))
}

fn parse_principal(text: &str) -> Result<Target, ApiError> {
    text.parse::<PrincipalId>()
        .map(Target::Principal)
        .map_err(|e| bad_target(format!("{e}")))
}

fn parse_resource(text: &str) -> Result<Target, ApiError> {
    match text.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(Target::Resource {
            kind: kind.to_owned(),
            id: id.to_owned(),
        }),
        _ => Err(bad_target(format!(
            "`{}` is not a resource `type:id`",
            quoted(text)
        ))),
    }
}

/// Where an action stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionState {
    /// In force until `expires_at`.
    Active,
    /// Ran out and was undone.
    Expired,
    /// Undone before it ran out.
    Undone,
    /// Rehearsed: nothing was changed.
    DryRun,
    /// Could not be applied (or undone); `end_reason` says why.
    Failed,
}

impl ActionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionState::Active => "active",
            ActionState::Expired => "expired",
            ActionState::Undone => "undone",
            ActionState::DryRun => "dry_run",
            ActionState::Failed => "failed",
        }
    }
}

/// One action as stored and listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub id: String,
    pub action: ActionKind,
    /// The canonical target.
    pub target: String,
    pub state: ActionState,
    pub dry_run: bool,
    /// Milliseconds since the Unix epoch.
    pub created_at: i64,
    pub expires_at: i64,
    #[serde(default)]
    pub ended_at: Option<i64>,
    /// Why it ended early or failed.
    #[serde(default)]
    pub end_reason: Option<String>,
    /// `system` for playbooks, else the principal who asked.
    pub created_by: String,
    #[serde(default)]
    pub playbook: Option<String>,
    #[serde(default)]
    pub rule_id: Option<String>,
    #[serde(default)]
    pub alert_id: Option<String>,
    /// For `block_ip`: which ban of this network within `ban_memory` this is (1 = first).
    #[serde(default)]
    pub repeat: u32,
    /// Whether the effect is in place (set once it is enforced).
    #[serde(default)]
    pub applied: bool,
    /// From the trigger's detection (or the API request's arrival) to enforcement.
    #[serde(default)]
    pub enforcement_latency_ms: Option<f64>,
    /// What was done (or, in a dry run, would be done), and what undoing needs.
    #[serde(default)]
    pub effect: Map<String, Value>,
}

impl ActionRecord {
    fn to_row(&self) -> Result<ResponseActionRow, ApiError> {
        Ok(ResponseActionRow {
            id: self.id.clone(),
            action: self.action.as_str().to_owned(),
            target: self.target.clone(),
            state: self.state.as_str().to_owned(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            ended_at: self.ended_at,
            body: serde_json::to_string(self)
                .map_err(|e| ApiError::internal("response record", e))?,
        })
    }

    fn from_row(row: &ResponseActionRow) -> Result<ActionRecord, StoreError> {
        serde_json::from_str(&row.body).map_err(|e| StoreError::Corrupt {
            what: "response action",
            detail: format!("`{}`: {e}", row.id),
        })
    }
}

/// How a requested action turned out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// Taken and in force now.
    Applied,
    /// The same action on the same target was already in force: nothing more was done.
    AlreadyActive,
    /// Rehearsed; `record.effect` says what would have been done.
    DryRun,
    /// The trigger lacked what the action needs (no source address, no principal...).
    Skipped,
    Failed,
}

/// The answer for one action.
#[derive(Debug, Serialize)]
pub struct ActionOutcome {
    pub status: OutcomeStatus,
    pub action: ActionKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub playbook: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub record: Option<ActionRecord>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Replacement API keys of a rotation asked for through the API: `(key id, full key)`,
    /// shown once, never stored.
    #[serde(skip)]
    pub credentials: Vec<(String, SecretString)>,
}

impl ActionOutcome {
    fn new(status: OutcomeStatus, action: ActionKind) -> Self {
        ActionOutcome {
            status,
            action,
            playbook: None,
            record: None,
            message: None,
            credentials: Vec::new(),
        }
    }

    fn with_record(mut self, record: ActionRecord) -> Self {
        self.record = Some(record);
        self
    }

    fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }
}

/// Who asked for an action and why.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    /// `type:id` of the API caller; `None` for playbooks (the audit actor is `system`).
    pub caller: Option<String>,
    pub playbook: Option<String>,
    pub rule_id: Option<String>,
    pub rule_title: Option<String>,
    pub alert_id: Option<String>,
    pub request_id: Option<String>,
}

/// One action to take.
#[derive(Clone, Debug)]
pub struct ActionRequest {
    pub action: ActionKind,
    pub target: Target,
    pub duration: Duration,
    pub dry_run: bool,
    pub origin: Origin,
    /// Where the latency is measured from.
    pub started: Timestamp,
    /// Whether a rotation replaces API keys (and returns the new ones) or only revokes them:
    /// only an API caller can receive new key material.
    pub issue_credentials: bool,
}

/// How closely a target is watched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MonitoringLevel {
    Normal,
    /// Decisions carry a `monitor` obligation; the gateway logs every request in full.
    Elevated,
}

/// What the request path reads: quarantined resources and watched targets, each with the time
/// (milliseconds) its action runs out, rebuilt from the active actions in the store.
#[derive(Debug, Default)]
struct Registry {
    quarantined: HashMap<String, i64>,
    networks: CidrTable<i64>,
    principals: HashMap<String, i64>,
    resources: HashMap<String, i64>,
    /// The earliest expiry of any active action.
    next_expiry: Option<i64>,
}

impl Registry {
    fn build(rows: &[ResponseActionRow]) -> Registry {
        let mut registry = Registry::default();
        for row in rows {
            registry.next_expiry = Some(
                registry
                    .next_expiry
                    .map_or(row.expires_at, |t| t.min(row.expires_at)),
            );
            let Some(kind) = ActionKind::parse(&row.action) else {
                continue;
            };
            // A claimed action counts once its audit record is written and it is applied.
            let applied = ActionRecord::from_row(row).is_ok_and(|r| r.applied && !r.dry_run);
            if !applied {
                continue;
            }
            let until = row.expires_at;
            match (kind, Target::parse(kind, &row.target)) {
                (ActionKind::QuarantineResource, Ok(Target::Resource { kind, id })) => {
                    registry.quarantined.insert(format!("{kind}:{id}"), until);
                }
                (ActionKind::IncreaseMonitoring, Ok(Target::Network(net))) => {
                    registry.networks.insert(net, until);
                }
                (ActionKind::IncreaseMonitoring, Ok(Target::Principal(id))) => {
                    registry.principals.insert(id.to_string(), until);
                }
                (ActionKind::IncreaseMonitoring, Ok(Target::Resource { kind, id })) => {
                    registry.resources.insert(format!("{kind}:{id}"), until);
                }
                (ActionKind::QuarantineResource | ActionKind::IncreaseMonitoring, _) => {
                    tracing::warn!(response.id = %row.id, target = %row.target, "response.target_unreadable");
                }
                _ => {}
            }
        }
        registry
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    Timestamp::now().unix_micros().div_euclid(1000)
}

/// A new action id: `act_` and 16 hex digits.
fn new_id() -> Result<String, ApiError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| ApiError::internal("response id", e))?;
    Ok(format!("act_{}", hex::encode(bytes)))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A duration from JSON: `"15m"` (see [`playbook::parse_duration`]) or a number of seconds.
pub fn parse_duration_value(value: &Value) -> Result<Duration, ApiError> {
    let duration = match value {
        Value::String(text) => playbook::parse_duration(text),
        Value::Number(number) => number
            .as_u64()
            .map(Duration::from_secs)
            .ok_or_else(|| format!("`{number}` is not a whole number of seconds")),
        _ => Err("`duration` is a string such as `15m` or a number of seconds".into()),
    };
    duration.map_err(|message| ApiError::bad_request("invalid_duration", message))
}

/// Takes, lists and undoes response actions; see the module documentation.
pub struct Responder {
    config: ResponseConfig,
    state: OnceLock<Weak<AppState>>,
    registry: ArcSwap<Registry>,
    wake: Notify,
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Responder")
            .field("playbooks", &self.config.playbooks.len())
            .field("registry", &*self.registry.load())
            .finish_non_exhaustive()
    }
}

impl Responder {
    pub fn new(config: &ResponseConfig) -> Self {
        Responder {
            config: config.clone(),
            state: OnceLock::new(),
            registry: ArcSwap::from_pointee(Registry::default()),
            wake: Notify::new(),
        }
    }

    /// Gives the responder the state it acts on (once, at start).
    pub fn attach(&self, state: &Arc<AppState>) {
        let _ = self.state.set(Arc::downgrade(state));
    }

    fn state(&self) -> Result<Arc<AppState>, ApiError> {
        self.state
            .get()
            .and_then(Weak::upgrade)
            .ok_or_else(|| ApiError::internal("response", "the responder is not attached"))
    }

    pub fn config(&self) -> &ResponseConfig {
        &self.config
    }

    /// Rebuilds the quarantine and monitoring registries from the active actions. On error the
    /// registries in force stay (a quarantine is never lifted by a failed read).
    pub async fn reload(&self, store: &Store) -> Result<(), StoreError> {
        let rows = store.response_actions().active().await?;
        self.registry.store(Arc::new(Registry::build(&rows)));
        self.wake.notify_one();
        Ok(())
    }

    /// Why decisions about `resource` (`type:id`) are denied, when it is quarantined.
    pub fn quarantine_reason(&self, kind: &str, id: &str) -> Option<String> {
        let registry = self.registry.load();
        if registry.quarantined.is_empty() {
            return None;
        }
        let key = format!("{kind}:{id}");
        let until = *registry.quarantined.get(&key)?;
        (until > now_millis()).then(|| format!("resource `{key}` is quarantined"))
    }

    /// How closely `target` is watched now.
    pub fn monitoring_level(&self, target: &Target) -> MonitoringLevel {
        let registry = self.registry.load();
        let now = now_millis();
        let until = match target {
            Target::Network(net) => registry.networks.lookup(net.network()).map(|(_, u)| *u),
            Target::Principal(id) => registry.principals.get(&id.to_string()).copied(),
            Target::Resource { kind, id } => {
                registry.resources.get(&format!("{kind}:{id}")).copied()
            }
            Target::Key(_) => None,
        };
        if until.is_some_and(|u| u > now) {
            MonitoringLevel::Elevated
        } else {
            MonitoringLevel::Normal
        }
    }

    /// The watched targets among a request's client address, principal and resource (all
    /// `type:id`), as their canonical text; empty when none is watched.
    pub fn watched(
        &self,
        ip: Option<IpAddr>,
        principal: Option<&str>,
        resource: Option<&str>,
    ) -> Vec<String> {
        let registry = self.registry.load();
        if registry.networks.is_empty()
            && registry.principals.is_empty()
            && registry.resources.is_empty()
        {
            return Vec::new();
        }
        let now = now_millis();
        let mut watched = Vec::new();
        if let Some((net, until)) = ip.and_then(|ip| registry.networks.lookup(ip))
            && *until > now
        {
            watched.push(net.to_string());
        }
        if let Some(principal) = principal
            && registry.principals.get(principal).is_some_and(|u| *u > now)
        {
            watched.push(principal.to_owned());
        }
        if let Some(resource) = resource
            && registry.resources.get(resource).is_some_and(|u| *u > now)
        {
            watched.push(format!("resource:{resource}"));
        }
        watched
    }

    /// Runs every playbook the trigger matches, action by action, and answers what each did.
    /// A trigger whose event is older than `response.max_trigger_age` (a replayed or late log
    /// line) runs no action: each step is `skipped`.
    pub async fn handle(&self, trigger: &Trigger) -> Vec<ActionOutcome> {
        let mut outcomes = Vec::new();
        let age = trigger.age_millis(Timestamp::now());
        let stale = age > millis(self.config.max_trigger_age.0);
        for playbook in self.config.playbooks.iter().filter(|p| p.matches(trigger)) {
            if stale {
                tracing::warn!(
                    playbook = %playbook.name,
                    rule.id = %trigger.rule_id,
                    alert.id = trigger.alert_id.as_deref().unwrap_or(""),
                    age_ms = age,
                    "response.trigger.too_old"
                );
            }
            for step in &playbook.actions {
                let outcome = if stale {
                    metrics::counter!("maos_response_actions_total", "action" => step.action.as_str(), "status" => "skipped_too_old")
                        .increment(1);
                    ActionOutcome::new(OutcomeStatus::Skipped, step.action).with_message(format!(
                        "the trigger's event is {} s old, older than response.max_trigger_age ({})",
                        age / 1000,
                        String::from(self.config.max_trigger_age)
                    ))
                } else {
                    self.run_step(playbook, step, trigger).await
                };
                tracing::info!(
                    playbook = %playbook.name,
                    rule.id = %trigger.rule_id,
                    action = step.action.as_str(),
                    status = ?outcome.status,
                    "response.playbook.step"
                );
                outcomes.push(ActionOutcome {
                    playbook: Some(playbook.name.clone()),
                    ..outcome
                });
            }
        }
        outcomes
    }

    async fn run_step(
        &self,
        playbook: &Playbook,
        step: &PlaybookAction,
        trigger: &Trigger,
    ) -> ActionOutcome {
        let target = match step_target(step, trigger) {
            Ok(target) => target,
            Err(message) => {
                return ActionOutcome::new(OutcomeStatus::Skipped, step.action)
                    .with_message(message);
            }
        };
        let request = ActionRequest {
            action: step.action,
            target,
            duration: step
                .duration
                .map_or(self.config.default_duration.0, |d| d.0),
            dry_run: playbook.dry_run,
            origin: Origin {
                caller: None,
                playbook: Some(playbook.name.clone()),
                rule_id: Some(trigger.rule_id.clone()),
                rule_title: Some(trigger.rule_title.clone()),
                alert_id: trigger.alert_id.clone(),
                request_id: None,
            },
            started: trigger.detected_at,
            issue_credentials: false,
        };
        match self.execute(request).await {
            Ok(outcome) => outcome,
            Err(error) => {
                ActionOutcome::new(OutcomeStatus::Failed, step.action).with_message(error.message)
            }
        }
    }

    /// Takes one action (see the module documentation for the order of its steps).
    pub async fn execute(&self, request: ActionRequest) -> Result<ActionOutcome, ApiError> {
        let state = self.state()?;
        let kind = request.action;
        if !request.target.suits(kind) {
            return Err(bad_target(format!(
                "`{}` does not apply to `{}`",
                kind.as_str(),
                request.target.canonical()
            )));
        }
        if request.duration.is_zero() || request.duration > self.config.max_duration.0 {
            return Err(ApiError::bad_request(
                "invalid_duration",
                format!(
                    "the duration must be positive and at most {}",
                    String::from(self.config.max_duration)
                ),
            ));
        }
        let target = request.target.canonical();
        let actions = state.store.response_actions();

        // The same action in force answers for itself: one effect, however often asked.
        if let Some(row) = actions.active_for(kind.as_str(), &target).await? {
            if row.expires_at > now_millis() {
                return already_active(kind, &row);
            }
            self.end(&state, row, ActionState::Expired, None).await?;
        }

        // What it would do: checked against the current state, for real runs and rehearsals.
        let now = now_millis();
        let (duration, repeat) = self.duration_of(&state, &request, &target, now).await?;
        let plan = actions::plan(&state, &request, duration).await?;
        let mut record = ActionRecord {
            id: new_id()?,
            action: kind,
            target: target.clone(),
            state: if request.dry_run {
                ActionState::DryRun
            } else {
                ActionState::Active
            },
            dry_run: request.dry_run,
            created_at: now,
            expires_at: now.saturating_add(millis(duration)),
            ended_at: request.dry_run.then_some(now),
            end_reason: None,
            created_by: request
                .origin
                .caller
                .clone()
                .unwrap_or_else(|| "system".to_owned()),
            playbook: request.origin.playbook.clone(),
            rule_id: request.origin.rule_id.clone(),
            alert_id: request.origin.alert_id.clone(),
            repeat,
            applied: false,
            enforcement_latency_ms: None,
            effect: plan,
        };

        // Claim the slot: a concurrent trigger for the same target finds this row.
        match actions.insert(&record.to_row()?).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                if let Some(row) = actions.active_for(kind.as_str(), &target).await? {
                    return already_active(kind, &row);
                }
                return Err(ApiError::conflict(format!(
                    "`{}` on `{target}` changed concurrently; retry",
                    kind.as_str()
                )));
            }
            Err(error) => return Err(error.into()),
        }

        // Recorded before it takes effect: an action that cannot be audited is not taken.
        let draft = self.draft(
            &record,
            kind.audit_action(),
            &request.origin,
            Outcome::Success,
        )?;
        if let Err(error) = state.audit(draft).await {
            record.state = ActionState::Failed;
            record.ended_at = Some(now_millis());
            record.end_reason = Some("the audit log is unavailable".into());
            let _ = actions
                .update(&record.to_row()?, ActionState::Active.as_str())
                .await;
            return Err(error);
        }
        metrics::counter!("maos_response_actions_total", "action" => kind.as_str(),
            "status" => if request.dry_run { "dry_run" } else { "applied" })
        .increment(1);
        if request.dry_run {
            tracing::info!(response.id = %record.id, action = kind.as_str(), target = %target, "response.dry_run");
            return Ok(ActionOutcome::new(OutcomeStatus::DryRun, kind).with_record(record));
        }

        let credentials = match actions::apply(self, &state, &request, &mut record).await {
            Ok(credentials) => credentials,
            Err(error) => {
                tracing::error!(response.id = %record.id, action = kind.as_str(), target = %target, error = %error.message, "response.apply_failed");
                record.state = ActionState::Failed;
                record.ended_at = Some(now_millis());
                record.end_reason = Some(error.message.clone());
                let _ = actions
                    .update(&record.to_row()?, ActionState::Active.as_str())
                    .await;
                let failed = self.draft(
                    &record,
                    kind.audit_action(),
                    &request.origin,
                    Outcome::failure(error.code),
                )?;
                let _ = state.audit(failed).await;
                self.reload(&state.store).await?;
                return Err(error);
            }
        };

        // Enforced: record how long it took from the detection.
        let latency = latency_seconds(request.started);
        metrics::histogram!("maos_response_enforcement_seconds", "action" => kind.as_str())
            .record(latency);
        record.enforcement_latency_ms = Some(latency * 1000.0);
        if !actions
            .update(&record.to_row()?, ActionState::Active.as_str())
            .await?
        {
            // Already ended (a very short action met the expiry task): nothing more to keep.
            tracing::debug!(response.id = %record.id, "response.ended_before_recorded");
        }
        self.reload(&state.store).await?;
        tracing::info!(
            response.id = %record.id,
            action = kind.as_str(),
            target = %target,
            latency_ms = latency * 1000.0,
            "response.applied"
        );
        let mut outcome = ActionOutcome::new(OutcomeStatus::Applied, kind).with_record(record);
        outcome.credentials = credentials;
        Ok(outcome)
    }

    /// How long the action lasts and, for a ban, which repeat it is: the n-th ban of a network
    /// within `ban_memory` lasts `duration * 2^(n-1)`, at most `max_ban` (never shorter than
    /// asked).
    async fn duration_of(
        &self,
        state: &AppState,
        request: &ActionRequest,
        target: &str,
        now: i64,
    ) -> Result<(Duration, u32), ApiError> {
        if request.action != ActionKind::BlockIp {
            return Ok((request.duration, 0));
        }
        let since = now.saturating_sub(millis(self.config.ban_memory.0));
        let earlier = state
            .store
            .response_actions()
            .count_since(
                ActionKind::BlockIp.as_str(),
                target,
                since,
                &[ActionState::Active.as_str(), ActionState::Expired.as_str()],
            )
            .await?;
        let earlier = u32::try_from(earlier).unwrap_or(u32::MAX);
        let factor = 1u32 << earlier.min(30);
        let cap = self.config.max_ban.0.max(request.duration);
        let duration = request.duration.saturating_mul(factor).min(cap);
        Ok((duration, earlier.saturating_add(1)))
    }

    /// Undoes an active action at an administrator's request.
    pub async fn undo(
        &self,
        id: &str,
        caller: &str,
        request_id: Option<String>,
    ) -> Result<ActionRecord, ApiError> {
        let state = self.state()?;
        let row = state
            .store
            .response_actions()
            .get(id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(format!("response action `{}` not found", quoted(id)))
            })?;
        if row.state != ActionState::Active.as_str() {
            return Err(ApiError::conflict(format!(
                "response action `{id}` is {}, not active",
                row.state
            )));
        }
        let record = ActionRecord::from_row(&row)?;
        let origin = Origin {
            caller: Some(caller.to_owned()),
            request_id,
            ..Origin::default()
        };
        // Recorded first, like every admin change.
        state
            .audit(self.draft(&record, "response.undo", &origin, Outcome::Success)?)
            .await?;
        self.end(&state, row, ActionState::Undone, Some(caller))
            .await?
            .ok_or_else(|| ApiError::conflict(format!("response action `{id}` ended meanwhile")))
    }

    /// Ends an active action (expired or undone) and undoes its effect. `None` when another
    /// node or task ended it first.
    async fn end(
        &self,
        state: &AppState,
        row: ResponseActionRow,
        end: ActionState,
        caller: Option<&str>,
    ) -> Result<Option<ActionRecord>, ApiError> {
        let mut record = ActionRecord::from_row(&row)?;
        record.state = end;
        record.ended_at = Some(now_millis());
        if let Some(caller) = caller {
            record.end_reason = Some(format!("undone by {caller}"));
        }
        let actions = state.store.response_actions();
        if !actions
            .update(&record.to_row()?, ActionState::Active.as_str())
            .await?
        {
            return Ok(None);
        }
        if end == ActionState::Expired {
            // The expiry is the system's; a missing record is logged, the undo goes ahead (a
            // block must not outlive its time because the audit log is down).
            let origin = Origin::default();
            match self.draft(&record, "response.expire", &origin, Outcome::Success) {
                Ok(draft) => {
                    if let Err(error) = state.audit(draft).await {
                        tracing::error!(response.id = %record.id, error = %error.message, "response.expire_unrecorded");
                    }
                }
                Err(error) => tracing::error!(error = %error.message, "response.expire_unrecorded"),
            }
        }
        if record.applied
            && let Err(error) = actions::undo(state, &record).await
        {
            tracing::error!(response.id = %record.id, error = %error.message, "response.undo_failed");
            let expected = record.state.as_str();
            record.state = ActionState::Failed;
            record.end_reason = Some(format!("undo failed: {}", error.message));
            actions.update(&record.to_row()?, expected).await?;
        }
        self.reload(&state.store).await?;
        tracing::info!(response.id = %record.id, action = record.action.as_str(), target = %record.target, state = record.state.as_str(), "response.ended");
        Ok(Some(record))
    }

    /// An administrator disabled `principal` (`type:id`) by hand: an automatic `disable_user` in
    /// force on it ends now without being undone (the administrator's disable is for good, so
    /// neither its expiry nor an undo enables the principal again). Answers how many ended.
    pub async fn yield_disable_to(&self, principal: &str, caller: &str) -> Result<usize, ApiError> {
        let state = self.state()?;
        let actions = state.store.response_actions();
        let Some(row) = actions
            .active_for(ActionKind::DisableUser.as_str(), principal)
            .await?
        else {
            return Ok(0);
        };
        let mut record = ActionRecord::from_row(&row)?;
        record.state = ActionState::Undone;
        record.ended_at = Some(now_millis());
        record.end_reason = Some(format!(
            "superseded: {caller} disabled the principal; it stays disabled"
        ));
        // Nothing to undo any more: the disable is the administrator's now.
        record.effect.insert("was_active".into(), json!(false));
        let ended = actions
            .update(&record.to_row()?, ActionState::Active.as_str())
            .await?;
        self.reload(&state.store).await?;
        if ended {
            tracing::info!(response.id = %record.id, target = %record.target, "response.superseded");
        }
        Ok(usize::from(ended))
    }

    /// Ends every active action whose time has run out.
    pub async fn expire_due(&self) -> Result<usize, ApiError> {
        let state = self.state()?;
        let now = now_millis();
        let due: Vec<ResponseActionRow> = state
            .store
            .response_actions()
            .active()
            .await?
            .into_iter()
            .filter(|row| row.expires_at <= now)
            .collect();
        // One action that cannot be ended does not hold up the others; the task retries it
        // after a pause.
        let mut ended = 0;
        let mut failure = None;
        for row in due {
            let id = row.id.clone();
            match self.end(&state, row, ActionState::Expired, None).await {
                Ok(Some(_)) => ended += 1,
                Ok(None) => {}
                Err(error) => {
                    tracing::error!(response.id = %id, error = %error.message, "response.expiry_failed");
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(ended),
        }
    }

    /// The action records, newest first.
    pub async fn list(
        &self,
        limit: i64,
        before: Option<i64>,
    ) -> Result<Vec<ActionRecord>, ApiError> {
        let state = self.state()?;
        let rows = state.store.response_actions().list(limit, before).await?;
        rows.iter()
            .map(|row| ActionRecord::from_row(row).map_err(ApiError::from))
            .collect()
    }

    pub async fn get(&self, id: &str) -> Result<Option<ActionRecord>, ApiError> {
        let state = self.state()?;
        match state.store.response_actions().get(id).await? {
            Some(row) => Ok(Some(ActionRecord::from_row(&row)?)),
            None => Ok(None),
        }
    }

    fn draft(
        &self,
        record: &ActionRecord,
        audit_action: &'static str,
        origin: &Origin,
        result: Outcome,
    ) -> Result<maos_audit::RecordDraft, ApiError> {
        let mut details = Map::new();
        details.insert("response_id".into(), json!(record.id));
        details.insert("action".into(), json!(record.action.as_str()));
        details.insert("dry_run".into(), json!(record.dry_run));
        details.insert("expires_at".into(), json!(record.expires_at));
        for (key, value) in [
            ("playbook", &record.playbook),
            ("rule_id", &record.rule_id),
            ("alert_id", &record.alert_id),
        ] {
            if let Some(value) = value {
                details.insert(key.into(), json!(value));
            }
        }
        if record.repeat > 0 {
            details.insert("repeat".into(), json!(record.repeat));
        }
        if !record.effect.is_empty() {
            details.insert("effect".into(), Value::Object(record.effect.clone()));
        }
        crate::audit_log::draft(
            origin.caller.as_deref().unwrap_or("system"),
            audit_action,
            record.target.clone(),
            result,
            origin.request_id.as_deref(),
            details,
        )
        .map_err(|e| ApiError::internal("audit record", e))
    }
}

fn already_active(kind: ActionKind, row: &ResponseActionRow) -> Result<ActionOutcome, ApiError> {
    Ok(ActionOutcome::new(OutcomeStatus::AlreadyActive, kind)
        .with_record(ActionRecord::from_row(row)?)
        .with_message("the same action on this target is already in force"))
}

/// Seconds from `started` to now (never negative).
fn latency_seconds(started: Timestamp) -> f64 {
    let micros = Timestamp::now()
        .unix_micros()
        .saturating_sub(started.unix_micros())
        .max(0);
    Duration::from_micros(u64::try_from(micros).unwrap_or_default()).as_secs_f64()
}

/// The target of a playbook's action, from the trigger.
fn step_target(step: &PlaybookAction, trigger: &Trigger) -> Result<Target, String> {
    let missing = |what: &str| format!("the trigger names no {what}");
    let ip = || trigger.source_ip.ok_or_else(|| missing("source address"));
    let principal = || {
        trigger
            .principal
            .clone()
            .ok_or_else(|| missing("principal"))
    };
    let resource = || trigger.resource.clone().ok_or_else(|| missing("resource"));
    let kind = step.action;
    let parse = |text: &str| Target::parse(kind, text).map_err(|e| e.message);
    match (kind, step.target.as_deref()) {
        (ActionKind::BlockIp, _) => parse(&ip()?.to_string()),
        (ActionKind::DisableUser, _) => parse(&principal()?),
        (ActionKind::QuarantineResource, _) => parse(&resource()?),
        (ActionKind::RotateCredentials, Some(key)) if key.starts_with("key:") => parse(key),
        (ActionKind::RotateCredentials, _) => parse(&principal()?),
        (ActionKind::IncreaseMonitoring, Some("source_ip")) => parse(&format!("ip:{}", ip()?)),
        (ActionKind::IncreaseMonitoring, Some("principal")) => {
            parse(&format!("principal:{}", principal()?))
        }
        (ActionKind::IncreaseMonitoring, Some("resource")) => {
            parse(&format!("resource:{}", resource()?))
        }
        (ActionKind::IncreaseMonitoring, _) => {
            if let Some(ip) = trigger.source_ip {
                parse(&format!("ip:{ip}"))
            } else if let Some(principal) = &trigger.principal {
                parse(&format!("principal:{principal}"))
            } else {
                parse(&format!("resource:{}", resource()?))
            }
        }
    }
}

/// Ends actions as their time runs out, woken early when an action is taken; runs until the
/// server stops.
pub async fn run_expiry(state: Arc<AppState>) {
    let responder = &state.responder;
    loop {
        let wait = responder
            .registry
            .load()
            .next_expiry
            .map_or(Duration::from_secs(1), |at| {
                let ms = at.saturating_sub(now_millis()).clamp(0, 1000);
                Duration::from_millis(u64::try_from(ms).unwrap_or(1000))
            });
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = responder.wake.notified() => continue,
        }
        if responder.expire_due().await.is_err() {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests;
