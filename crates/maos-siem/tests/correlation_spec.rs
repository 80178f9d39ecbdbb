#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The Sigma specification's correlation examples: each parses, and each of the four
//! correlation types fires on a synthetic stream exactly at its threshold.

mod common;

use maos_siem::{Detector, DetectorConfig, HitKind, RuleFiles};
use serde_json::{Value, json};

fn spec(name: &str) -> String {
    std::fs::read_to_string(
        common::shared("sigma/specification/tests/schema/correlation").join(name),
    )
    .unwrap()
}

#[test]
fn every_specification_correlation_rule_parses() {
    let files = RuleFiles::load_dir(&common::shared(
        "sigma/specification/tests/schema/correlation",
    ))
    .unwrap();
    assert!(files.errors.is_empty(), "{:?}", files.errors);
    let correlations: usize = files
        .files
        .iter()
        .map(|f| f.collection.correlations.len())
        .sum();
    assert_eq!(correlations, 8, "every file holds one correlation");
}

const FAILED_LOGIN: &str = "
title: Failed logon
id: 5638f7c0-ac70-491d-8465-2a65075e0d86
logsource: {product: windows, service: security}
detection:
    selection: {EventID: 4625}
    condition: selection
";

const RECON: &str = "
title: Recon A
name: recon_cmd_a
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine: whoami}
    condition: selection
---
title: Recon B
name: recon_cmd_b
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine: ipconfig}
    condition: selection
---
title: Recon C
name: recon_cmd_c
logsource: {product: windows, category: process_creation}
detection:
    selection: {CommandLine: net user}
    condition: selection
";

fn detector(base: &str, correlation: &str) -> Detector {
    let mut d = Detector::new(&DetectorConfig::default());
    let errors = d.add_yaml("test.yml", &format!("{base}\n---\n{correlation}"));
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(d.correlation_count(), 1);
    d
}

fn event(t: i64, fields: Value) -> Value {
    let mut v = fields;
    v["@timestamp"] = json!(maos_core::Timestamp::from_unix_seconds(t).to_string());
    v
}

fn correlations(d: &mut Detector, e: &Value) -> usize {
    d.process_json(e)
        .iter()
        .filter(|h| matches!(h.kind, HitKind::Correlation(_)))
        .count()
}

#[test]
fn event_count_fires_at_100_not_99() {
    let mut d = detector(FAILED_LOGIN, &spec("event_count.yml"));
    let base = 1_700_000_000;
    // Other hosts and other events do not count toward the group.
    assert_eq!(
        correlations(
            &mut d,
            &event(base, json!({"EventID": 4625, "ComputerName": "other"}))
        ),
        0
    );
    assert_eq!(
        correlations(
            &mut d,
            &event(base, json!({"EventID": 4624, "ComputerName": "dc1"}))
        ),
        0
    );
    for i in 0..99 {
        let e = event(base + i, json!({"EventID": 4625, "ComputerName": "dc1"}));
        assert_eq!(
            correlations(&mut d, &e),
            0,
            "fired early at event {}",
            i + 1
        );
    }
    let e = event(base + 99, json!({"EventID": 4625, "ComputerName": "dc1"}));
    let hits = d.process_json(&e);
    let hit = hits
        .iter()
        .find(|h| matches!(h.kind, HitKind::Correlation(_)))
        .expect("no hit at 100");
    assert_eq!(hit.kind, HitKind::Correlation("event_count".into()));
    assert_eq!(
        hit.group_key,
        vec![("ComputerName".to_owned(), "dc1".to_owned())]
    );
    assert_eq!(hit.value, Some(100.0));
}

#[test]
fn event_count_window_slides() {
    let mut d = detector(FAILED_LOGIN, &spec("event_count.yml"));
    let base = 1_700_000_000;
    // 99 events, then the 100th more than an hour after the first: the first has left.
    for i in 0..99 {
        let e = event(base + i, json!({"EventID": 4625, "ComputerName": "dc1"}));
        assert_eq!(correlations(&mut d, &e), 0);
    }
    let e = event(base + 3700, json!({"EventID": 4625, "ComputerName": "dc1"}));
    assert_eq!(correlations(&mut d, &e), 0);
}

#[test]
fn value_count_fires_at_100_distinct_users() {
    let mut d = detector(FAILED_LOGIN, &spec("value_count.yml"));
    let base = 1_700_000_000;
    let ev = |i: i64, user: String| {
        event(
            base + i,
            json!({"EventID": 4625, "ComputerName": "dc1", "WorkstationName": "ws1", "User": user}),
        )
    };
    for i in 0..99 {
        assert_eq!(correlations(&mut d, &ev(i, format!("user{i}"))), 0);
        // Repeating a user adds no distinct value.
        assert_eq!(correlations(&mut d, &ev(i, "user0".to_owned())), 0);
    }
    let hits = d.process_json(&ev(100, "user99".to_owned()));
    let hit = hits
        .iter()
        .find(|h| matches!(h.kind, HitKind::Correlation(_)))
        .expect("no hit at 100");
    assert_eq!(hit.kind, HitKind::Correlation("value_count".into()));
    assert_eq!(hit.group_key.len(), 2);
}

fn recon(t: i64, cmd: &str, user: &str) -> Value {
    event(
        1_700_000_000 + t,
        json!({"CommandLine": cmd, "ComputerName": "ws1", "User": user}),
    )
}

#[test]
fn temporal_fires_when_the_last_rule_arrives_in_any_order() {
    let mut d = detector(RECON, &spec("temporal.yml"));
    assert_eq!(correlations(&mut d, &recon(0, "net user", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(1, "whoami", "alice")), 0);
    // The same commands by another user are another group.
    assert_eq!(correlations(&mut d, &recon(2, "ipconfig", "bob")), 0);
    assert_eq!(correlations(&mut d, &recon(3, "ipconfig", "alice")), 1);
}

#[test]
fn temporal_respects_the_timespan() {
    let mut d = detector(RECON, &spec("temporal.yml"));
    assert_eq!(correlations(&mut d, &recon(0, "whoami", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(1, "ipconfig", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(400, "net user", "alice")), 0);
}

#[test]
fn temporal_ordered_needs_the_order() {
    let mut d = detector(RECON, &spec("temporal_ordered.yml"));
    assert_eq!(correlations(&mut d, &recon(0, "net user", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(1, "ipconfig", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(2, "whoami", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(3, "ipconfig", "alice")), 0);
    assert_eq!(correlations(&mut d, &recon(4, "net user", "alice")), 1);
}

#[test]
fn aliases_join_differently_named_fields() {
    let yaml = "
title: Login failed
name: login_failed
logsource: {product: test}
detection:
    selection: {action: login_failed}
    condition: selection
---
title: Firewall drop
name: firewall_drop
logsource: {product: test}
detection:
    selection: {verdict: drop}
    condition: selection
---
title: Same address fails login and hits the firewall
correlation:
    type: temporal
    rules: [login_failed, firewall_drop]
    group-by: [addr]
    timespan: 1m
    aliases:
        addr:
            login_failed: client.ip
            firewall_drop: src_ip
";
    let mut d = Detector::new(&DetectorConfig::default());
    assert!(d.add_yaml("alias.yml", yaml).is_empty());
    let t = 1_700_000_000;
    assert_eq!(
        correlations(
            &mut d,
            &event(
                t,
                json!({"action": "login_failed", "client.ip": "192.0.2.1"})
            )
        ),
        0
    );
    assert_eq!(
        correlations(
            &mut d,
            &event(t + 1, json!({"verdict": "drop", "src_ip": "192.0.2.2"}))
        ),
        0
    );
    let hits = d.process_json(&event(
        t + 2,
        json!({"verdict": "drop", "src_ip": "192.0.2.1"}),
    ));
    let hit = hits
        .iter()
        .find(|h| matches!(h.kind, HitKind::Correlation(_)))
        .expect("alias group");
    assert_eq!(
        hit.group_key,
        vec![("addr".to_owned(), "192.0.2.1".to_owned())]
    );
}

#[test]
fn correlation_state_is_bounded() {
    let config = DetectorConfig {
        max_groups: 50,
        ..DetectorConfig::default()
    };
    let mut d = Detector::new(&config);
    assert!(
        d.add_yaml(
            "t.yml",
            &format!("{FAILED_LOGIN}\n---\n{}", spec("event_count.yml"))
        )
        .is_empty()
    );
    for i in 0..1000 {
        let e = event(
            1_700_000_000 + i,
            json!({"EventID": 4625, "ComputerName": format!("host{i}")}),
        );
        d.process_json(&e);
        assert!(d.state_count() <= 50, "state grew to {}", d.state_count());
    }
}
