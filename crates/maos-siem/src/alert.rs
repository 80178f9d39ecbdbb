//! Alerts: what a rule hit becomes once the server has deduplicated it. Pure data, shared by
//! the server's SIEM task, its API, webhooks and automated responses.

use std::collections::BTreeMap;

use maos_core::{SecurityEvent, Severity, Timestamp};
use serde::{Deserialize, Serialize};

use crate::detector::{HitKind, RuleHit};

/// Most related event ids an alert keeps (the first ones and then the latest ones).
pub const MAX_ALERT_EVENTS: usize = 256;

/// Where an alert stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    #[default]
    Open,
    Acknowledged,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
        }
    }
}

/// A deduplicated rule hit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    /// The rule's id, or its title when it has none.
    pub rule_id: String,
    pub rule_title: String,
    /// `detection`, or the correlation type (`event_count`, `value_count`, `temporal`...).
    pub kind: String,
    pub severity: Severity,
    /// The rule's tags.
    pub tags: Vec<String>,
    /// The MITRE ATT&CK tags among them (`attack.t1110.001`, `attack.credential-access`).
    pub mitre_attack: Vec<String>,
    /// Time of the first and the latest event behind the alert.
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// How many times the rule fired for this group within the suppression window.
    pub count: u64,
    /// The event that crossed the threshold first, and its time.
    pub trigger_event_id: String,
    pub trigger_time: Timestamp,
    /// Wall-clock time the alert was raised.
    pub raised_at: Timestamp,
    /// Ids of the related events (at most [`MAX_ALERT_EVENTS`]).
    pub event_ids: Vec<String>,
    /// The correlation group: field name to value (`source.address`, `user.name`...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub group: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// The correlation id of the triggering event, shared by the related events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default)]
    pub status: AlertStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<Timestamp>,
}

/// The severity of a Sigma `level`; an unknown or missing level is `medium`.
pub fn severity_of_level(level: Option<&str>) -> Severity {
    match level {
        Some("informational") => Severity::Info,
        Some("low") => Severity::Low,
        Some("high") => Severity::High,
        Some("critical") => Severity::Critical,
        _ => Severity::Medium,
    }
}

/// The key alerts are deduplicated by: the rule and its group (or, for a detection without
/// group, the event's source address and principal).
pub fn dedup_key(hit: &RuleHit, event: &SecurityEvent) -> String {
    let rule = hit.rule_id.as_deref().unwrap_or(&hit.title);
    if hit.group_key.is_empty() {
        format!(
            "{rule}\n{}\n{}",
            event.source_address().unwrap_or_default(),
            event.principal.as_deref().unwrap_or_default()
        )
    } else {
        let group: Vec<String> = hit
            .group_key
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{rule}\n{}", group.join("\n"))
    }
}

impl Alert {
    /// A new alert for `hit`, raised by `event` at `raised_at`.
    pub fn from_hit(
        id: String,
        hit: &RuleHit,
        event: &SecurityEvent,
        raised_at: Timestamp,
    ) -> Self {
        let group: BTreeMap<String, String> = hit.group_key.iter().cloned().collect();
        let pick = |fields: &[&str], fallback: Option<String>| {
            fields
                .iter()
                .find_map(|f| group.get(*f).cloned())
                .or(fallback)
        };
        let source_ip = pick(
            &["source.ip", "source.address", "source.domain"],
            event.source_address(),
        );
        let principal = pick(&["user.name"], event.principal.clone());
        let resource = pick(&["resource.name"], event.resource.clone());
        let mut event_ids = hit.event_ids.clone();
        if !event_ids.contains(&event.id) {
            event_ids.push(event.id.clone());
        }
        event_ids.truncate(MAX_ALERT_EVENTS);
        let kind = match &hit.kind {
            HitKind::Detection => "detection".to_owned(),
            HitKind::Correlation(kind) => kind.clone(),
        };
        Alert {
            id,
            rule_id: hit.rule_id.clone().unwrap_or_else(|| hit.title.clone()),
            rule_title: hit.title.clone(),
            kind,
            severity: severity_of_level(hit.level.as_deref()),
            mitre_attack: hit
                .tags
                .iter()
                .filter(|t| t.starts_with("attack."))
                .cloned()
                .collect(),
            tags: hit.tags.clone(),
            first_seen: event.time,
            last_seen: event.time,
            count: 1,
            trigger_event_id: event.id.clone(),
            trigger_time: event.time,
            raised_at,
            event_ids,
            group,
            source_ip,
            principal,
            resource,
            correlation_id: event.correlation_id.clone(),
            status: AlertStatus::Open,
            acknowledged_by: None,
            acknowledged_at: None,
        }
    }

    /// Counts a repeated hit of the same rule and group: one more, later `last_seen`, its
    /// events added (bounded).
    pub fn absorb(&mut self, hit: &RuleHit, event: &SecurityEvent) {
        self.count = self.count.saturating_add(1);
        self.first_seen = self.first_seen.min(event.time);
        self.last_seen = self.last_seen.max(event.time);
        for id in hit.event_ids.iter().chain(std::iter::once(&event.id)) {
            if self.event_ids.len() >= MAX_ALERT_EVENTS {
                break;
            }
            if !self.event_ids.contains(id) {
                self.event_ids.push(id.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use maos_core::SecurityEventType;

    fn hit(group: &[(&str, &str)], ids: &[&str]) -> RuleHit {
        RuleHit {
            rule_id: Some("r1".into()),
            title: "Brute force".into(),
            level: Some("high".into()),
            tags: vec![
                "attack.credential-access".into(),
                "attack.t1110".into(),
                "x".into(),
            ],
            kind: HitKind::Correlation("event_count".into()),
            group_key: group
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            value: Some(10.0),
            event_ids: ids.iter().map(|s| (*s).to_owned()).collect(),
            correlation_id: "corr-x".into(),
        }
    }

    fn event(id: &str, t: i64) -> SecurityEvent {
        let mut e = SecurityEvent::new(
            id,
            Timestamp::from_unix_seconds(t),
            "identity",
            SecurityEventType::AuthenticationFailure,
            Severity::Low,
        );
        e.source_ip = Some("192.0.2.9".parse().unwrap());
        e.principal = Some("user:bob".into());
        e.correlation_id = Some("corr-ev".into());
        e
    }

    #[test]
    fn an_alert_carries_the_rule_group_and_trigger() {
        let h = hit(&[("source.address", "192.0.2.9")], &["e1", "e2"]);
        let a = Alert::from_hit(
            "a1".into(),
            &h,
            &event("e2", 100),
            Timestamp::from_unix_seconds(5),
        );
        assert_eq!(a.severity, Severity::High);
        assert_eq!(a.mitre_attack, ["attack.credential-access", "attack.t1110"]);
        assert_eq!(a.kind, "event_count");
        assert_eq!(a.source_ip.as_deref(), Some("192.0.2.9"));
        assert_eq!(a.principal.as_deref(), Some("user:bob"));
        assert_eq!(a.event_ids, ["e1", "e2"]);
        assert_eq!(a.trigger_time, Timestamp::from_unix_seconds(100));
        assert_eq!(a.correlation_id.as_deref(), Some("corr-ev"));

        let json = serde_json::to_value(&a).unwrap();
        let back: Alert = serde_json::from_value(json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn repeated_hits_count_and_stay_bounded() {
        let h = hit(&[("source.address", "192.0.2.9")], &["e0"]);
        let first = event("e0", 100);
        let mut a = Alert::from_hit("a1".into(), &h, &first, Timestamp::from_unix_seconds(5));
        for i in 1..1000 {
            let e = event(&format!("e{i}"), 100 + i);
            a.absorb(&hit(&[("source.address", "192.0.2.9")], &[]), &e);
        }
        assert_eq!(a.count, 1000);
        assert_eq!(a.last_seen, Timestamp::from_unix_seconds(1099));
        assert_eq!(a.event_ids.len(), MAX_ALERT_EVENTS);
        assert_eq!(
            dedup_key(&h, &first),
            dedup_key(
                &hit(&[("source.address", "192.0.2.9")], &["z"]),
                &event("z", 1)
            )
        );
    }
}
