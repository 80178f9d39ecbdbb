//! `[response]` in the configuration: limits of the actions and the playbooks that map rule
//! hits to actions.

use std::time::Duration;

use maos_core::event::Severity;
use serde::{Deserialize, Serialize};

use super::{ActionKind, Trigger};

/// The `[response]` section.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResponseConfig {
    /// How long an action lasts when neither its playbook nor its API request says.
    pub default_duration: HumanDuration,
    /// The longest an action may last (an escalated ban included).
    pub max_duration: HumanDuration,
    /// Bans of the same network within this window count as repeats: each one lasts twice as
    /// long as the one before.
    pub ban_memory: HumanDuration,
    /// The longest an escalated ban lasts.
    pub max_ban: HumanDuration,
    /// A trigger whose event (by its own time stamp) is older than this starts no action: old
    /// or replayed log lines are stored and alerted on, but ban nobody now.
    pub max_trigger_age: HumanDuration,
    pub playbooks: Vec<Playbook>,
}

impl Default for ResponseConfig {
    fn default() -> Self {
        Self {
            default_duration: HumanDuration(Duration::from_secs(15 * 60)),
            max_duration: HumanDuration(Duration::from_secs(30 * 86_400)),
            ban_memory: HumanDuration(Duration::from_secs(86_400)),
            max_ban: HumanDuration(Duration::from_secs(7 * 86_400)),
            max_trigger_age: HumanDuration(Duration::from_secs(10 * 60)),
            playbooks: Vec::new(),
        }
    }
}

/// One playbook: when a trigger matches, its actions run in order.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Playbook {
    pub name: String,
    /// Rule ids; the trigger's rule must be one of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
    /// The trigger's severity must be at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_severity: Option<Severity>,
    /// The trigger must carry one of these tags (`attack.credential_access`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Report what the actions would do and change nothing.
    #[serde(default)]
    pub dry_run: bool,
    pub actions: Vec<PlaybookAction>,
}

/// One action of a playbook.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookAction {
    pub action: ActionKind,
    /// How long the action lasts; `[response] default_duration` when absent. For `block_ip`
    /// the first ban's length (repeats double it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<HumanDuration>,
    /// What the action applies to, when not the obvious field of the trigger:
    /// `increase_monitoring`: `source_ip`, `principal` or `resource` (default: the first the
    /// trigger has, in that order); `rotate_credentials`: `principal` (default) or
    /// `key:<name>`, a key of the key service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Playbook {
    /// Whether the trigger meets every criterion the playbook sets.
    pub fn matches(&self, trigger: &Trigger) -> bool {
        let rule = self.rules.is_empty()
            || self.rules.contains(&trigger.rule_id)
            || self.rules.contains(&trigger.rule_title);
        let severity = self.min_severity.is_none_or(|min| trigger.severity >= min);
        let tags = self.tags.is_empty() || self.tags.iter().any(|t| trigger.tags.contains(t));
        rule && severity && tags
    }
}

impl ResponseConfig {
    /// Checks the playbooks: named uniquely, each with a criterion and an action, durations
    /// within `max_duration`, targets the action understands.
    pub fn validate(&self) -> Result<(), String> {
        let max = self.max_duration.0;
        if max.is_zero() || self.default_duration.0.is_zero() || self.default_duration.0 > max {
            return Err(
                "response.default_duration must be positive and at most response.max_duration"
                    .into(),
            );
        }
        if self.max_ban.0.is_zero() || self.max_ban.0 > max {
            return Err(
                "response.max_ban must be positive and at most response.max_duration".into(),
            );
        }
        if self.max_trigger_age.0.is_zero() {
            return Err("response.max_trigger_age must be positive".into());
        }
        let mut names = std::collections::HashSet::new();
        for playbook in &self.playbooks {
            let name = &playbook.name;
            if name.trim().is_empty() {
                return Err("response.playbooks: a playbook has an empty `name`".into());
            }
            if !names.insert(name.as_str()) {
                return Err(format!("response.playbooks: `{name}` is defined twice"));
            }
            if playbook.rules.is_empty()
                && playbook.min_severity.is_none()
                && playbook.tags.is_empty()
            {
                return Err(format!(
                    "response.playbooks `{name}`: give `rules`, `min_severity` or `tags` \
                     (a playbook without any would act on every alert)"
                ));
            }
            if playbook.actions.is_empty() {
                return Err(format!("response.playbooks `{name}`: no `actions`"));
            }
            for action in &playbook.actions {
                if let Some(duration) = action.duration
                    && (duration.0.is_zero() || duration.0 > max)
                {
                    return Err(format!(
                        "response.playbooks `{name}`: `{}` duration must be positive and at most \
                         response.max_duration",
                        action.action.as_str()
                    ));
                }
                check_target(action).map_err(|e| format!("response.playbooks `{name}`: {e}"))?;
            }
        }
        Ok(())
    }
}

fn check_target(action: &PlaybookAction) -> Result<(), String> {
    let Some(target) = action.target.as_deref() else {
        return Ok(());
    };
    let ok = match action.action {
        ActionKind::IncreaseMonitoring => matches!(target, "source_ip" | "principal" | "resource"),
        ActionKind::RotateCredentials => {
            target == "principal" || target.strip_prefix("key:").is_some_and(|k| !k.is_empty())
        }
        ActionKind::BlockIp => target == "source_ip",
        ActionKind::DisableUser => target == "principal",
        ActionKind::QuarantineResource => target == "resource",
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` cannot take `target = \"{target}\"`",
            action.action.as_str()
        ))
    }
}

/// A length of time written `90s`, `15m`, `2h`, `7d`, `500ms`, or a number of seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(try_from = "DurationText", into = "String")]
pub struct HumanDuration(pub Duration);

#[derive(Deserialize)]
#[serde(untagged)]
enum DurationText {
    Seconds(u64),
    Text(String),
}

impl TryFrom<DurationText> for HumanDuration {
    type Error = String;

    fn try_from(value: DurationText) -> Result<Self, String> {
        match value {
            DurationText::Seconds(seconds) => Ok(HumanDuration(Duration::from_secs(seconds))),
            DurationText::Text(text) => parse_duration(&text).map(HumanDuration),
        }
    }
}

impl From<HumanDuration> for String {
    fn from(value: HumanDuration) -> String {
        let millis = value.0.as_millis();
        if !millis.is_multiple_of(1000) {
            return format!("{millis}ms");
        }
        let seconds = value.0.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if seconds >= size && seconds.is_multiple_of(size) {
                return format!("{}{unit}", seconds / size);
            }
        }
        format!("{seconds}s")
    }
}

/// The longest duration written as text: 100 years.
const MAX_TEXT_SECONDS: u64 = 100 * 366 * 86_400;

/// Parses `500ms`, `90s`, `15m`, `2h`, `7d` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let bad = || {
        format!(
            "`{}` is not a duration such as `90s`, `15m`, `2h` or `7d`",
            text.chars().take(32).collect::<String>()
        )
    };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let duration = match unit.trim() {
        "ms" => Duration::from_millis(number),
        "" | "s" => Duration::from_secs(number),
        "m" => Duration::from_secs(number.saturating_mul(60)),
        "h" => Duration::from_secs(number.saturating_mul(3600)),
        "d" => Duration::from_secs(number.saturating_mul(86_400)),
        _ => return Err(bad()),
    };
    if duration.as_secs() > MAX_TEXT_SECONDS {
        return Err(format!("`{text}` is longer than 100 years"));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("30"), Ok(Duration::from_secs(30)));
        for bad in ["", "m", "15x", "-5s", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(String::from(HumanDuration(Duration::from_secs(900))), "15m");
        assert_eq!(String::from(HumanDuration(Duration::from_secs(90))), "90s");
        assert_eq!(
            String::from(HumanDuration(Duration::from_millis(1500))),
            "1500ms"
        );
    }

    fn config(text: &str) -> Result<ResponseConfig, String> {
        let config: ResponseConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        config.validate().map(|()| config)
    }

    #[test]
    fn playbooks_are_validated() {
        let ok = config(
            r#"
[[playbooks]]
name = "brute force"
rules = ["maos-brute-force-source"]
[[playbooks.actions]]
action = "block_ip"
duration = "15m"
[[playbooks.actions]]
action = "rotate_credentials"
target = "key:payments"
"#,
        );
        assert!(ok.is_ok(), "{ok:?}");
        let everything =
            config("[[playbooks]]\nname = \"x\"\n[[playbooks.actions]]\naction = \"block_ip\"\n");
        assert!(everything.unwrap_err().contains("every alert"));
        let bad_target = config(
            "[[playbooks]]\nname = \"x\"\nmin_severity = \"high\"\n[[playbooks.actions]]\n\
             action = \"increase_monitoring\"\ntarget = \"everyone\"\n",
        );
        assert!(bad_target.unwrap_err().contains("everyone"));
        let too_long = config(
            "[[playbooks]]\nname = \"x\"\ntags = [\"a\"]\n[[playbooks.actions]]\n\
             action = \"block_ip\"\nduration = \"400d\"\n",
        );
        assert!(too_long.is_err());
        let unknown = config(
            "[[playbooks]]\nname = \"x\"\ntags = [\"a\"]\n[[playbooks.actions]]\naction = \"nuke\"\n",
        );
        assert!(unknown.is_err());
    }
}
