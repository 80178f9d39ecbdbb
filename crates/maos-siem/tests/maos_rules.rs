#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! MAOS's own rules (rules/maos): each fires exactly at its threshold on a synthetic stream.

use std::path::PathBuf;

use maos_core::{SecurityEvent, SecurityEventType as T, Severity, Timestamp};
use maos_siem::{Detector, DetectorConfig, RuleHit};

fn detector() -> Detector {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../rules/maos");
    let (d, errors) = Detector::from_dir(&dir, &DetectorConfig::default()).unwrap();
    assert!(errors.is_empty(), "{errors:?}");
    d
}

struct Stream {
    n: u64,
    t: i64,
}

impl Stream {
    fn new() -> Self {
        Self {
            n: 0,
            t: 1_800_000_000,
        }
    }

    fn event(&mut self, ty: T, ip: &str, user: &str, resource: Option<&str>) -> SecurityEvent {
        self.n += 1;
        self.t += 2;
        let mut e = SecurityEvent::new(
            format!("ev{}", self.n),
            Timestamp::from_unix_seconds(self.t),
            "test",
            ty,
            Severity::Medium,
        );
        e.source_ip = Some(ip.parse().unwrap());
        e.principal = Some(user.to_owned());
        e.resource = resource.map(str::to_owned);
        e
    }
}

fn fired<'a>(hits: &'a [RuleHit], name_id: &str) -> Option<&'a RuleHit> {
    hits.iter().find(|h| h.rule_id.as_deref() == Some(name_id))
}

const BRUTE_SOURCE: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a10";
const BRUTE_USER: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a11";
const SPRAYING: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a20";
const STUFFING: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a31";
const ADMIN: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a41";
const SECRETS: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a51";
const INTRUSION: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a60";
const INTRUSION_CAMPAIGN: &str = "6f1f3c0e-7a51-4c55-9a3e-0d1b2b6f0a61";

#[test]
fn all_own_rules_load() {
    let d = detector();
    assert_eq!(d.rule_count(), 5);
    assert_eq!(d.correlation_count(), 8);
}

#[test]
fn brute_force_per_source_fires_at_ten() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 1..10 {
        let hits = d.process(&s.event(
            T::AuthenticationFailure,
            "192.0.2.10",
            &format!("u{}", i % 2),
            None,
        ));
        assert!(fired(&hits, BRUTE_SOURCE).is_none(), "fired at {i}");
    }
    let hits = d.process(&s.event(T::AuthenticationFailure, "192.0.2.10", "u0", None));
    let hit = fired(&hits, BRUTE_SOURCE).expect("fires at 10");
    assert_eq!(hit.level.as_deref(), Some("high"));
    assert!(hit.tags.iter().any(|t| t == "attack.t1110.001"));
    assert_eq!(
        hit.group_key,
        vec![("source.address".to_owned(), "192.0.2.10".to_owned())]
    );
    assert_eq!(hit.event_ids.len(), 10);
    assert!(hit.event_ids.contains(&"ev1".to_owned()));
}

#[test]
fn brute_force_per_user_fires_at_ten_across_addresses() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 1..10 {
        let ip = format!("198.51.100.{i}");
        let hits = d.process(&s.event(T::AuthenticationFailure, &ip, "alice", None));
        assert!(fired(&hits, BRUTE_USER).is_none(), "fired at {i}");
        assert!(fired(&hits, BRUTE_SOURCE).is_none());
    }
    let hits = d.process(&s.event(T::AuthenticationFailure, "198.51.100.77", "alice", None));
    assert!(fired(&hits, BRUTE_USER).is_some());
}

#[test]
fn password_spraying_fires_at_five_distinct_users() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 1..5 {
        let user = format!("user{i}");
        for _ in 0..2 {
            let hits = d.process(&s.event(T::AuthenticationFailure, "203.0.113.5", &user, None));
            assert!(fired(&hits, SPRAYING).is_none(), "fired at {i} users");
        }
    }
    let hits = d.process(&s.event(T::AuthenticationFailure, "203.0.113.5", "user5", None));
    assert!(
        fired(&hits, SPRAYING)
            .expect("fires at 5 users")
            .tags
            .contains(&"attack.t1110.003".into())
    );
}

#[test]
fn credential_stuffing_needs_five_failures_then_a_success() {
    let mut d = detector();
    let mut s = Stream::new();
    // A success after four failures is a user who mistyped.
    for i in 0..4 {
        d.process(&s.event(
            T::AuthenticationFailure,
            "192.0.2.77",
            &format!("v{i}"),
            None,
        ));
    }
    let hits = d.process(&s.event(T::AuthenticationSuccess, "192.0.2.77", "v1", None));
    assert!(fired(&hits, STUFFING).is_none());

    let mut d = detector();
    let mut s = Stream::new();
    for i in 0..5 {
        let hits = d.process(&s.event(
            T::AuthenticationFailure,
            "192.0.2.78",
            &format!("v{i}"),
            None,
        ));
        assert!(fired(&hits, STUFFING).is_none());
    }
    // A success elsewhere does not count.
    let hits = d.process(&s.event(T::AuthenticationSuccess, "192.0.2.99", "v1", None));
    assert!(fired(&hits, STUFFING).is_none());
    let hits = d.process(&s.event(T::AuthenticationSuccess, "192.0.2.78", "v3", None));
    assert_eq!(
        fired(&hits, STUFFING).expect("stuffing").level.as_deref(),
        Some("critical")
    );
}

#[test]
fn repeated_denied_admin_actions_fire_at_five() {
    let mut d = detector();
    let mut s = Stream::new();
    // Denials of non-admin resources do not count.
    for _ in 0..10 {
        let hits = d.process(&s.event(
            T::AuthorizationFailure,
            "192.0.2.1",
            "agent-7",
            Some("doc:1"),
        ));
        assert!(fired(&hits, ADMIN).is_none());
    }
    for i in 1..5 {
        let hits = d.process(&s.event(
            T::AuthorizationFailure,
            "192.0.2.1",
            "agent-7",
            Some("/v1/admin/users"),
        ));
        assert!(fired(&hits, ADMIN).is_none(), "fired at {i}");
    }
    let hits = d.process(&s.event(
        T::PrivilegeEscalation,
        "192.0.2.1",
        "agent-7",
        Some("role:admin"),
    ));
    assert!(
        fired(&hits, ADMIN)
            .expect("fires at 5")
            .tags
            .contains(&"attack.t1068".into())
    );
}

#[test]
fn secret_enumeration_fires_at_twenty_distinct_secrets() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 1..20 {
        let secret = format!("secret:db/{i}");
        let hits = d.process(&s.event(T::DataAccess, "10.0.0.5", "agent-1", Some(&secret)));
        assert!(fired(&hits, SECRETS).is_none(), "fired at {i}");
        // Reading the same secret again adds nothing.
        let hits = d.process(&s.event(T::DataAccess, "10.0.0.5", "agent-1", Some("secret:db/1")));
        assert!(fired(&hits, SECRETS).is_none());
    }
    // Non-secret resources do not count.
    let hits = d.process(&s.event(T::DataAccess, "10.0.0.5", "agent-1", Some("doc:20")));
    assert!(fired(&hits, SECRETS).is_none());
    let hits = d.process(&s.event(T::DataAccess, "10.0.0.5", "agent-1", Some("secret:db/20")));
    assert!(fired(&hits, SECRETS).is_some());
}

#[test]
fn intrusion_hits_alert_each_and_as_a_campaign_at_three() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 1..3 {
        let hits = d.process(&s.event(T::IntrusionAttempt, "192.0.2.66", "-", Some("/login")));
        assert!(fired(&hits, INTRUSION).is_some(), "each hit is reported");
        assert!(
            fired(&hits, INTRUSION_CAMPAIGN).is_none(),
            "campaign at {i}"
        );
    }
    let hits = d.process(&s.event(T::IntrusionAttempt, "192.0.2.66", "-", Some("/login")));
    assert!(fired(&hits, INTRUSION_CAMPAIGN).is_some());
}

#[test]
fn building_blocks_alone_raise_nothing() {
    let mut d = detector();
    let mut s = Stream::new();
    let hits = d.process(&s.event(T::AuthenticationFailure, "192.0.2.1", "x", None));
    assert!(hits.is_empty(), "{hits:?}");
}

/// The failure burst (the first step of credential stuffing) is a correlation another
/// correlation builds on: it alerted on its own as soon as five failures came from one address.
#[test]
fn a_failure_burst_alone_raises_nothing() {
    let mut d = detector();
    let mut s = Stream::new();
    for i in 0..9 {
        let user = format!("u{}", i % 2);
        let hits = d.process(&s.event(T::AuthenticationFailure, "192.0.2.1", &user, None));
        assert!(hits.is_empty(), "failure {}: {hits:?}", i + 1);
    }
}
