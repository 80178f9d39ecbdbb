//! The per-event detection engine the server calls: Sigma detection rules and correlations
//! (event_count, value_count, temporal, temporal_ordered, and rsigma's value aggregations)
//! evaluated in process, with bounded correlation state.

use std::path::PathBuf;

use maos_core::SecurityEvent;
use rsigma_eval::{
    CorrelationAction, CorrelationConfig, CorrelationEngine, CorrelationEventMode,
    EvaluationResult, JsonEvent, ResultBody, TimestampFallback,
};
use serde::Serialize;
use serde_json::Value;

use crate::correlate::correlation_id_for;
use crate::rules::{RuleFiles, RuleLoadError};

/// Limits and behaviour of a [`Detector`].
#[derive(Clone, Debug)]
pub struct DetectorConfig {
    /// Most correlation groups held at once, across all correlation rules; the stalest are
    /// evicted beyond it.
    pub max_groups: usize,
    /// Most events remembered per group window (for the related event ids of a hit).
    pub max_events_per_group: usize,
    /// After a correlation fires, how long (seconds) the same group stays quiet.
    pub suppress_secs: Option<u64>,
    /// Whether a group's window restarts after it fires.
    pub reset_on_fire: bool,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            max_groups: 100_000,
            max_events_per_group: 32,
            suppress_secs: None,
            reset_on_fire: false,
        }
    }
}

/// What fired.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HitKind {
    Detection,
    /// A correlation of the named type (`event_count`, `value_count`, `temporal`...).
    Correlation(String),
}

/// One rule that fired on an event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleHit {
    pub rule_id: Option<String>,
    pub title: String,
    pub level: Option<String>,
    pub tags: Vec<String>,
    pub kind: HitKind,
    /// For correlations: the group-by fields and their values.
    pub group_key: Vec<(String, String)>,
    /// For correlations: the aggregate that crossed the threshold.
    pub value: Option<f64>,
    /// Ids of the events behind the hit (the current one for a detection; the window's for
    /// a correlation, at most `max_events_per_group`).
    pub event_ids: Vec<String>,
    /// Shared by hits about the same group (source address, principal...) and rule.
    pub correlation_id: String,
}

/// Sigma rules compiled for evaluation.
pub struct Detector {
    engine: CorrelationEngine,
    /// Detection rules and correlations referenced by a correlation without
    /// `generate: true`: building blocks whose own matches are not reported (by rule id).
    quiet: std::collections::HashSet<String>,
    /// (id, name) of every detection rule and correlation added.
    identities: Vec<(String, Option<String>)>,
    rules: usize,
    correlations: usize,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("rules", &self.rules)
            .field("correlations", &self.correlations)
            .field("groups", &self.engine.state_count())
            .finish()
    }
}

impl Detector {
    pub fn new(config: &DetectorConfig) -> Self {
        let cfg = CorrelationConfig {
            timestamp_fields: vec!["@timestamp".into(), "time".into(), "timestamp".into()],
            timestamp_fallback: TimestampFallback::WallClock,
            max_state_entries: config.max_groups.max(1),
            max_group_entries: Some(config.max_events_per_group.max(1) * 64),
            suppress: config.suppress_secs,
            action_on_match: if config.reset_on_fire {
                CorrelationAction::Reset
            } else {
                CorrelationAction::Alert
            },
            correlation_event_mode: CorrelationEventMode::Refs,
            max_correlation_events: config.max_events_per_group.max(1),
            ..CorrelationConfig::default()
        };
        Self {
            engine: CorrelationEngine::new(cfg),
            quiet: std::collections::HashSet::new(),
            identities: Vec::new(),
            rules: 0,
            correlations: 0,
        }
    }

    /// Add every parsed file's rules; returns the files whose rules did not compile. A file
    /// fails as a whole: when one of its documents does not compile, none of them is added.
    pub fn add_files(&mut self, files: &RuleFiles) -> Vec<RuleLoadError> {
        let mut errors = Vec::new();
        for file in &files.files {
            if let Some(reason) = check_compiles(&file.collection) {
                errors.push(RuleLoadError {
                    path: file.path.clone(),
                    reason,
                });
                continue;
            }
            for rule in &file.collection.rules {
                // rsigma links a detection to the correlations that reference it through
                // the rule's id only; a rule known by `name` alone gets its name as id.
                let named;
                let rule = if rule.id.is_none() && rule.name.is_some() {
                    let mut r = rule.clone();
                    r.id = r.name.clone();
                    named = r;
                    &named
                } else {
                    rule
                };
                if let Err(e) = self.engine.add_rule(rule) {
                    errors.push(RuleLoadError {
                        path: file.path.clone(),
                        reason: e.to_string(),
                    });
                } else {
                    self.rules += 1;
                    let id = rule.id.clone().unwrap_or_else(|| rule.title.clone());
                    self.identities.push((id, rule.name.clone()));
                }
            }
        }
        // Correlations after all detection rules, since they reference rules by id or name.
        for file in &files.files {
            for corr in &file.collection.correlations {
                if let Err(e) = self.engine.add_correlation(corr) {
                    errors.push(RuleLoadError {
                        path: file.path.clone(),
                        reason: e.to_string(),
                    });
                } else {
                    self.correlations += 1;
                    // A correlation may build on another (credential stuffing on a failure
                    // burst): the inner one is then quiet like a detection building block.
                    let id = corr.id.clone().unwrap_or_else(|| corr.title.clone());
                    self.identities.push((id, corr.name.clone()));
                    if !corr.generate {
                        self.quiet_rules(&corr.rules);
                    }
                }
            }
        }
        errors
    }

    /// Load a rules directory: parse and compile; returns the detector and every failure.
    pub fn from_dir(
        dir: &std::path::Path,
        config: &DetectorConfig,
    ) -> Result<(Self, Vec<RuleLoadError>), crate::rules::RuleDirError> {
        let files = RuleFiles::load_dir(dir)?;
        let mut detector = Self::new(config);
        let mut errors = files.errors.clone();
        errors.extend(detector.add_files(&files));
        errors.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((detector, errors))
    }

    /// Add rules from YAML text (tests, built-in rules).
    pub fn add_yaml(&mut self, name: &str, yaml: &str) -> Vec<RuleLoadError> {
        let mut files = RuleFiles::default();
        files.add_yaml(PathBuf::from(name), yaml);
        let mut errors = files.errors.clone();
        errors.extend(self.add_files(&files));
        errors
    }

    // rsigma 0.23 withholds the matches of correlation-only detection rules only when the
    // correlation names them by id, and reports chained correlations; this covers references
    // by name and correlations referenced by others too.
    fn quiet_rules(&mut self, refs: &[String]) {
        for (id, name) in &self.identities {
            if refs.iter().any(|r| r == id || Some(r) == name.as_ref()) {
                self.quiet.insert(id.clone());
            }
        }
    }

    fn keep(&self, hit: &RuleHit) -> bool {
        hit.rule_id
            .as_ref()
            .is_none_or(|id| !self.quiet.contains(id))
    }

    /// Whether a detection or correlation rule with this id or name is loaded.
    pub fn has_rule(&self, id: &str) -> bool {
        !matches!(
            self.engine.rule_metadata(id),
            rsigma_eval::RuleMetadataLookup::Missing
        )
    }

    pub fn rule_count(&self) -> usize {
        self.rules
    }

    pub fn correlation_count(&self) -> usize {
        self.correlations
    }

    /// Correlation groups currently held.
    pub fn state_count(&self) -> usize {
        self.engine.state_count()
    }

    /// Evaluate one security event: detections and correlation updates at the event's time.
    pub fn process(&mut self, event: &SecurityEvent) -> Vec<RuleHit> {
        let doc = event.to_ecs();
        let results = self
            .engine
            .process_event_at(&JsonEvent::borrow(&doc), event.time.unix_seconds());
        results
            .iter()
            .map(|r| hit(r, Some(&event.id)))
            .filter(|h| self.keep(h))
            .collect()
    }

    /// Evaluate any JSON event (ECS, Windows event JSON...). Its time comes from `@timestamp`,
    /// `time` or `timestamp`, else the wall clock.
    pub fn process_json(&mut self, event: &Value) -> Vec<RuleHit> {
        let results = self.engine.process_event(&JsonEvent::borrow(event));
        let id = event_id_of(event);
        results
            .iter()
            .map(|r| hit(r, id.as_deref()))
            .filter(|h| self.keep(h))
            .collect()
    }

    /// Detection only, no correlation state: for read-only checks.
    pub fn evaluate_json(&self, event: &Value) -> Vec<RuleHit> {
        let id = event_id_of(event);
        self.engine
            .evaluate(&JsonEvent::borrow(event))
            .iter()
            .map(|r| hit(r, id.as_deref()))
            .collect()
    }

    /// Drop correlation state that can no longer contribute at `now_secs`.
    pub fn evict_expired(&mut self, now_secs: i64) {
        self.engine.evict_expired(now_secs);
    }
}

fn event_id_of(event: &Value) -> Option<String> {
    ["id", "event.id", "event_id", "_id"]
        .iter()
        .find_map(|k| match event.get(*k) {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
}

fn check_compiles(collection: &rsigma_parser::SigmaCollection) -> Option<String> {
    for rule in &collection.rules {
        if let Err(e) = rsigma_eval::compile_rule(rule) {
            return Some(format!("rule `{}`: {e}", rule.title));
        }
    }
    None
}

fn hit(result: &EvaluationResult, event_id: Option<&str>) -> RuleHit {
    let header = &result.header;
    let rule_key = header
        .rule_id
        .clone()
        .unwrap_or_else(|| header.rule_title.clone());
    let (kind, group_key, value, event_ids) = match &result.body {
        ResultBody::Detection(_) => (
            HitKind::Detection,
            Vec::new(),
            None,
            event_id.map(str::to_owned).into_iter().collect(),
        ),
        ResultBody::Correlation(body) => {
            let ids: Vec<String> = body
                .event_refs
                .iter()
                .flatten()
                .filter_map(|r| r.id.clone())
                .collect();
            (
                HitKind::Correlation(body.correlation_type.as_str().to_owned()),
                body.group_key.clone(),
                Some(body.aggregated_value),
                ids,
            )
        }
    };
    let group_text: Vec<String> = group_key.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let correlation_id = if group_text.is_empty() {
        correlation_id_for("rule", &format!("{rule_key}/{}", event_id.unwrap_or("")))
    } else {
        correlation_id_for("group", &format!("{rule_key}/{}", group_text.join(",")))
    };
    RuleHit {
        rule_id: header.rule_id.clone(),
        title: header.rule_title.clone(),
        level: header.level.map(|l| l.as_str().to_owned()),
        tags: header.tags.clone(),
        kind,
        group_key,
        value,
        event_ids,
        correlation_id,
    }
}
