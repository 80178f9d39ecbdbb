use super::*;

fn trigger() -> Trigger {
    Trigger {
        rule_id: "maos-brute-force-source".into(),
        rule_title: "Brute force from one address".into(),
        severity: Severity::High,
        tags: vec!["attack.credential_access".into()],
        source_ip: "2001:db8:1:2::7".parse().ok(),
        principal: Some("user:alice".into()),
        resource: Some("document:plans".into()),
        alert_id: Some("alert-1".into()),
        detected_at: Timestamp::now(),
        event_time: None,
    }
}

fn target(action: ActionKind, text: &str) -> String {
    Target::parse(action, text).unwrap().canonical()
}

#[test]
fn targets_have_one_canonical_form() {
    assert_eq!(target(ActionKind::BlockIp, "203.0.113.7"), "203.0.113.7/32");
    assert_eq!(
        target(ActionKind::BlockIp, "::ffff:203.0.113.7"),
        "203.0.113.7/32"
    );
    assert_eq!(
        target(ActionKind::BlockIp, "2001:db8:1:2::7"),
        "2001:db8:1:2::/64"
    );
    assert_eq!(
        target(ActionKind::BlockIp, "198.51.100.9/24"),
        "198.51.100.0/24"
    );
    assert!(Target::parse(ActionKind::BlockIp, "0.0.0.0/0").is_err());
    assert!(Target::parse(ActionKind::BlockIp, "2001:db8::/16").is_err());
    assert!(Target::parse(ActionKind::BlockIp, "example.com").is_err());
    assert_eq!(target(ActionKind::DisableUser, "user:alice"), "user:alice");
    assert!(Target::parse(ActionKind::DisableUser, "document:x").is_err());
    assert_eq!(
        target(ActionKind::QuarantineResource, "document:a/b"),
        "resource:document:a/b"
    );
    assert_eq!(
        target(ActionKind::QuarantineResource, "resource:document:a/b"),
        "resource:document:a/b"
    );
    assert!(Target::parse(ActionKind::QuarantineResource, "document").is_err());
    assert_eq!(
        target(ActionKind::RotateCredentials, "key:payments"),
        "key:payments"
    );
    assert_eq!(
        target(ActionKind::RotateCredentials, "agent:etl"),
        "agent:etl"
    );
    assert_eq!(
        target(ActionKind::IncreaseMonitoring, "192.0.2.1"),
        "192.0.2.1/32"
    );
    assert_eq!(
        target(ActionKind::IncreaseMonitoring, "user:bob"),
        "user:bob"
    );
    assert_eq!(
        target(ActionKind::IncreaseMonitoring, "resource:user:bob"),
        "resource:user:bob"
    );
    assert_eq!(
        target(ActionKind::IncreaseMonitoring, "document:x"),
        "resource:document:x"
    );
    // Every canonical form reads back as itself.
    for (action, text) in [
        (ActionKind::BlockIp, "2001:db8:1:2::/64"),
        (ActionKind::QuarantineResource, "resource:document:a/b"),
        (ActionKind::IncreaseMonitoring, "resource:user:bob"),
        (ActionKind::IncreaseMonitoring, "2001:db8:1:2::/64"),
    ] {
        assert_eq!(target(action, text), text);
    }
}

#[test]
fn playbooks_match_on_every_criterion_they_set() {
    let playbook = |rules: &[&str], min: Option<Severity>, tags: &[&str]| Playbook {
        name: "p".into(),
        rules: rules.iter().map(|s| (*s).to_owned()).collect(),
        min_severity: min,
        tags: tags.iter().map(|s| (*s).to_owned()).collect(),
        dry_run: false,
        actions: Vec::new(),
    };
    let hit = trigger();
    assert!(playbook(&["maos-brute-force-source"], None, &[]).matches(&hit));
    assert!(!playbook(&["other"], None, &[]).matches(&hit));
    assert!(playbook(&[], Some(Severity::Medium), &[]).matches(&hit));
    assert!(playbook(&[], Some(Severity::High), &[]).matches(&hit));
    assert!(!playbook(&[], Some(Severity::Critical), &[]).matches(&hit));
    assert!(playbook(&[], None, &["attack.credential_access"]).matches(&hit));
    assert!(!playbook(&[], None, &["attack.exfiltration"]).matches(&hit));
    assert!(!playbook(&["maos-brute-force-source"], Some(Severity::Critical), &[]).matches(&hit));
}

#[test]
fn steps_take_their_target_from_the_trigger() {
    let step = |action, target: Option<&str>| PlaybookAction {
        action,
        duration: None,
        target: target.map(str::to_owned),
    };
    let hit = trigger();
    let of = |s: &PlaybookAction| step_target(s, &hit).map(|t| t.canonical());
    assert_eq!(
        of(&step(ActionKind::BlockIp, None)).unwrap(),
        "2001:db8:1:2::/64"
    );
    assert_eq!(
        of(&step(ActionKind::DisableUser, None)).unwrap(),
        "user:alice"
    );
    assert_eq!(
        of(&step(ActionKind::QuarantineResource, None)).unwrap(),
        "resource:document:plans"
    );
    assert_eq!(
        of(&step(ActionKind::RotateCredentials, Some("key:payments"))).unwrap(),
        "key:payments"
    );
    assert_eq!(
        of(&step(ActionKind::IncreaseMonitoring, Some("principal"))).unwrap(),
        "user:alice"
    );
    assert_eq!(
        of(&step(ActionKind::IncreaseMonitoring, None)).unwrap(),
        "2001:db8:1:2::/64"
    );
    let bare = Trigger {
        source_ip: None,
        principal: None,
        ..trigger()
    };
    assert!(step_target(&step(ActionKind::BlockIp, None), &bare).is_err());
    assert!(step_target(&step(ActionKind::DisableUser, None), &bare).is_err());
}

#[test]
fn the_registry_holds_applied_actions_until_they_expire() {
    let row = |action: ActionKind, target: &str, applied: bool, expires_at: i64| {
        let record = ActionRecord {
            id: format!("act_{target}"),
            action,
            target: target.into(),
            state: ActionState::Active,
            dry_run: false,
            created_at: 0,
            expires_at,
            ended_at: None,
            end_reason: None,
            created_by: "system".into(),
            playbook: None,
            rule_id: None,
            alert_id: None,
            repeat: 0,
            applied,
            enforcement_latency_ms: None,
            effect: Map::new(),
        };
        record.to_row().unwrap()
    };
    let far = now_millis() + 60_000;
    let rows = vec![
        row(
            ActionKind::QuarantineResource,
            "resource:document:a",
            true,
            far,
        ),
        row(
            ActionKind::QuarantineResource,
            "resource:document:b",
            false,
            far,
        ),
        row(ActionKind::IncreaseMonitoring, "2001:db8::/64", true, far),
        row(ActionKind::IncreaseMonitoring, "user:bob", true, 1),
    ];
    let responder = Responder::new(&ResponseConfig::default());
    responder.registry.store(Arc::new(Registry::build(&rows)));
    assert!(responder.quarantine_reason("document", "a").is_some());
    assert!(responder.quarantine_reason("document", "b").is_none());
    assert_eq!(responder.registry.load().next_expiry, Some(1));
    let watched = responder.watched("2001:db8::99".parse().ok(), Some("user:bob"), None);
    assert_eq!(watched, vec!["2001:db8::/64".to_owned()]);
    assert_eq!(
        responder
            .monitoring_level(&Target::parse(ActionKind::IncreaseMonitoring, "user:bob").unwrap()),
        MonitoringLevel::Normal
    );
}

proptest::proptest! {
    /// Any text is a target or a 400, never a panic, and a target's canonical form reads back
    /// as the same target.
    #[test]
    fn target_text_never_panics_and_round_trips(text in "\\PC{0,80}", pick in 0usize..5) {
        let action = [
            ActionKind::BlockIp,
            ActionKind::DisableUser,
            ActionKind::QuarantineResource,
            ActionKind::RotateCredentials,
            ActionKind::IncreaseMonitoring,
        ][pick];
        if let Ok(target) = Target::parse(action, &text) {
            let again = Target::parse(action, &target.canonical()).unwrap();
            proptest::prop_assert_eq!(again, target);
        }
    }

    #[test]
    fn durations_never_panic(text in "\\PC{0,24}") {
        let _ = playbook::parse_duration(&text);
    }

    #[test]
    fn addresses_round_trip(bytes in proptest::prelude::any::<[u8; 16]>(), v4 in proptest::prelude::any::<bool>()) {
        let ip: IpAddr = if v4 {
            IpAddr::from([bytes[0], bytes[1], bytes[2], bytes[3]])
        } else {
            IpAddr::from(bytes)
        };
        let target = Target::parse(ActionKind::BlockIp, &ip.to_string()).unwrap();
        let Target::Network(net) = &target else { panic!("not a network") };
        proptest::prop_assert!(net.contains(&maos_gateway::firewall::canonical_ip(ip)));
        proptest::prop_assert_eq!(Target::parse(ActionKind::BlockIp, &target.canonical()).unwrap(), target);
    }
}
