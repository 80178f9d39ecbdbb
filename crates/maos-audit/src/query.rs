//! Choosing records: the filters of `maos audit` queries, applied to records in memory (an
//! export, or rows the server has already narrowed down with its own indexes).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::record::{AuditRecord, OutcomeStatus};
use crate::time::Timestamp;

/// Conditions a record must all meet; an empty filter matches every record.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordFilter {
    /// Actor text form, exactly: `user:alice` or `system`.
    pub actor: Option<String>,
    /// Action name exactly, or a family ending in `.*`: `key.*` matches `key.encrypt` and
    /// `key.rotate`, not `keys.list`.
    pub action: Option<String>,
    /// Resource exactly.
    pub resource: Option<String>,
    pub status: Option<OutcomeStatus>,
    pub request_id: Option<String>,
    /// Records at or after this time.
    pub since: Option<Timestamp>,
    /// Records before this time.
    pub until: Option<Timestamp>,
    /// A string that must equal the resource, the result's reason, the request id or some string
    /// anywhere in the details. Made for redacted values: pass the `hmac:` form of a known secret
    /// to find the records that mention it.
    pub mentions: Option<String>,
}

impl RecordFilter {
    pub fn matches(&self, record: &AuditRecord) -> bool {
        let equal =
            |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);

        equal(&self.resource, &record.resource)
            && self
                .actor
                .as_deref()
                .is_none_or(|actor| record.actor.to_string() == actor)
            && self
                .action
                .as_deref()
                .is_none_or(|pattern| action_matches(pattern, record.action.as_str()))
            && self
                .status
                .is_none_or(|status| record.result.status() == status)
            && self
                .request_id
                .as_deref()
                .is_none_or(|id| record.request_id.as_deref() == Some(id))
            && self.since.is_none_or(|since| record.time >= since)
            && self.until.is_none_or(|until| record.time < until)
            && self
                .mentions
                .as_deref()
                .is_none_or(|text| mentions(record, text))
    }
}

fn action_matches(pattern: &str, action: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(family) => action
            .strip_prefix(family)
            .is_some_and(|rest| rest.starts_with('.')),
        None => pattern == action,
    }
}

fn mentions(record: &AuditRecord, text: &str) -> bool {
    record.resource == text
        || record.result.reason() == Some(text)
        || record.request_id.as_deref() == Some(text)
        || record
            .details
            .values()
            .any(|value| value_mentions(value, text))
}

fn value_mentions(value: &Value, text: &str) -> bool {
    match value {
        Value::String(found) => found == text,
        Value::Array(items) => items.iter().any(|item| value_mentions(item, text)),
        Value::Object(members) => members.values().any(|member| value_mentions(member, text)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{ActionName, Actor, ChainHead, Outcome, RecordDraft};
    use crate::redact::{AuditRedactor, RedactionKey};
    use serde_json::json;

    fn record(action: &str, actor: Actor, result: Outcome, millis: u64) -> AuditRecord {
        let draft = RecordDraft::new(
            Timestamp::from_unix_millis(millis).unwrap(),
            actor,
            ActionName::parse(action).unwrap(),
            "key:payments",
            result,
        );
        AuditRecord::seal(&ChainHead::GENESIS, draft).unwrap()
    }

    #[test]
    fn each_condition_narrows() {
        let alice = Actor::principal("user", "alice").unwrap();
        let encrypt = record("key.encrypt", alice.clone(), Outcome::Success, 1000);
        let denied = record("key.rotate", alice, Outcome::denied("not an admin"), 2000);
        let listing = record("keys.list", Actor::System, Outcome::Success, 3000);
        let all = [&encrypt, &denied, &listing];
        let chosen = |filter: &RecordFilter| -> Vec<u64> {
            all.iter()
                .filter(|r| filter.matches(r))
                .map(|r| r.time.unix_millis())
                .collect()
        };

        assert_eq!(chosen(&RecordFilter::default()), [1000, 2000, 3000]);
        let family = RecordFilter {
            action: Some("key.*".into()),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&family), [1000, 2000]);
        let exact = RecordFilter {
            action: Some("key.rotate".into()),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&exact), [2000]);
        let system = RecordFilter {
            actor: Some("system".into()),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&system), [3000]);
        let refused = RecordFilter {
            status: Some(OutcomeStatus::Denied),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&refused), [2000]);
        let window = RecordFilter {
            since: Some(Timestamp::from_unix_millis(1000).unwrap()),
            until: Some(Timestamp::from_unix_millis(3000).unwrap()),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&window), [1000, 2000]);
        let reason = RecordFilter {
            mentions: Some("not an admin".into()),
            ..RecordFilter::default()
        };
        assert_eq!(chosen(&reason), [2000]);
    }

    #[test]
    fn a_redacted_secret_is_found_by_its_form() {
        let redactor = AuditRedactor::new(&RedactionKey::generate().unwrap());
        let mut login = record("auth.login", Actor::System, Outcome::Success, 1);
        login.details.insert(
            "session".into(),
            json!({"tokens": [redactor.redact("tok_1")]}),
        );
        let other = record("auth.login", Actor::System, Outcome::Success, 2);
        let filter = RecordFilter {
            mentions: Some(redactor.redact("tok_1")),
            ..RecordFilter::default()
        };
        assert!(filter.matches(&login));
        assert!(!filter.matches(&other));
        let wrong = RecordFilter {
            mentions: Some(redactor.redact("tok_2")),
            ..RecordFilter::default()
        };
        assert!(!wrong.matches(&login));
    }

    #[test]
    fn filters_read_from_json() {
        let filter: RecordFilter = serde_json::from_str(
            r#"{"action":"key.*","status":"denied","since":"2026-01-01T00:00:00.000Z"}"#,
        )
        .unwrap();
        assert_eq!(filter.status, Some(OutcomeStatus::Denied));
        assert!(serde_json::from_str::<RecordFilter>(r#"{"who":"x"}"#).is_err());
    }
}
