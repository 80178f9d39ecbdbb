//! The decision semantics of docs/policy.md, rule by rule, through the public API.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use maos_core::Request;
use maos_policy::{
    Bundle, Combining, DecisionOptions, DecisionPoint, Effect, Outcome, Response, RuleKind,
    RuleResult, Truth,
};
use serde_json::json;

fn point(yaml: &str) -> DecisionPoint {
    DecisionPoint::load(yaml, "test.yaml").unwrap_or_else(|e| panic!("{e}"))
}

fn req(subject: &str, resource: &str, action: &str) -> Request {
    let (st, sid) = subject.split_once(':').unwrap();
    let (rt, rid) = resource.split_once(':').unwrap();
    serde_json::from_value(json!({
        "subject": {"type": st, "id": sid},
        "resource": {"type": rt, "id": rid},
        "action": {"name": action}
    }))
    .unwrap()
}

fn with(mut request: Request, context: serde_json::Value) -> Request {
    request.context = context.as_object().unwrap().clone();
    request
}

fn with_subject(mut request: Request, properties: serde_json::Value) -> Request {
    request.subject.properties = properties.as_object().unwrap().clone();
    request
}

fn allowed(p: &DecisionPoint, r: &Request) -> bool {
    let fast = p.decide(r);
    let explained = p.decide_with(
        r,
        &DecisionOptions {
            explain: true,
            ..Default::default()
        },
    );
    assert_eq!(
        fast.decision, explained.decision,
        "indexed and explained paths disagree"
    );
    assert_eq!(fast.determining, explained.determining);
    fast.decision
}

// Rule 1: default deny, grants, inheritance, bindings, ACLs.

#[test]
fn default_deny_without_any_rule() {
    let p = point("version: 1\n");
    let r = p.decide(&req("user:a", "doc:x", "read"));
    assert!(!r.decision);
    assert!(r.determining.is_empty());
    assert_eq!(r.reasons, vec!["no rule applies: denied by default"]);
}

#[test]
fn role_permission_grants_when_pattern_action_and_conditions_match() {
    let p = point(
        r#"
version: 1
roles:
  - name: editor
    permissions:
      - resource: "doc:*"
        actions: [write]
        conditions: [ { attribute: subject.properties.dept, operator: eq, value: eng } ]
bindings: [ { subject: "user:a", roles: [editor] } ]
"#,
    );
    let ok = with_subject(req("user:a", "doc:x", "write"), json!({"dept": "eng"}));
    assert!(allowed(&p, &ok));
    let r = p.decide(&ok);
    assert_eq!(r.determining[0].kind, RuleKind::Permission);
    assert_eq!(r.determining[0].id, "editor.permissions[0]");
    assert!(!allowed(
        &p,
        &with_subject(req("user:a", "doc:x", "write"), json!({"dept": "ops"}))
    ));
    assert!(!allowed(
        &p,
        &with_subject(req("user:a", "doc:x", "read"), json!({"dept": "eng"}))
    ));
    assert!(!allowed(
        &p,
        &with_subject(req("user:b", "doc:x", "write"), json!({"dept": "eng"}))
    ));
}

#[test]
fn inheritance_is_transitive() {
    let p = point(
        r#"
version: 1
roles:
  - { name: base, permissions: [ { resource: "doc:**", actions: [read] } ] }
  - { name: middle, inherits: [base] }
  - { name: top, inherits: [middle] }
bindings: [ { subject: "user:a", roles: [top] } ]
"#,
    );
    assert!(allowed(&p, &req("user:a", "doc:x/y", "read")));
    assert!(!allowed(&p, &req("user:a", "doc:x/y", "write")));
}

#[test]
fn long_inheritance_chains() {
    // 10,000 roles in a chain, the permission at the far end: no depth cap.
    let n = 10_000;
    let mut yaml = String::from("version: 1\nroles:\n");
    for i in 0..n {
        if i + 1 < n {
            yaml.push_str(&format!("  - {{ name: r{i}, inherits: [r{}] }}\n", i + 1));
        } else {
            yaml.push_str(&format!(
                "  - {{ name: r{i}, permissions: [ {{ resource: \"doc:*\", actions: [read] }} ] }}\n"
            ));
        }
    }
    yaml.push_str("bindings: [ { subject: \"user:a\", roles: [r0] } ]\n");
    let p = point(&yaml);
    assert!(p.decide(&req("user:a", "doc:x", "read")).decision);
    // The same through the server's extra roles.
    let extra = DecisionOptions {
        extra_roles: vec!["r0".into()],
        explain: false,
    };
    assert!(
        p.decide_with(&req("user:b", "doc:x", "read"), &extra)
            .decision
    );
}

#[test]
fn two_inherited_paths_one_condition_fails_other_holds() {
    let p = point(
        r#"
version: 1
roles:
  - name: by-dept
    permissions:
      - { resource: "doc:*", actions: [write],
          conditions: [ { attribute: subject.properties.dept, operator: eq, value: eng } ] }
  - name: by-level
    permissions:
      - { resource: "doc:*", actions: [write],
          conditions: [ { attribute: subject.properties.level, operator: gte, value: 3 } ] }
  - { name: lead, inherits: [by-dept, by-level] }
bindings: [ { subject: "user:a", roles: [lead] } ]
"#,
    );
    let r = with_subject(
        req("user:a", "doc:x", "write"),
        json!({"dept": "sales", "level": 4}),
    );
    assert!(allowed(&p, &r));
    let r = with_subject(req("user:a", "doc:x", "write"), json!({"dept": "eng"}));
    // One path holds, the other is indeterminate (no level): the permit stands.
    assert!(allowed(&p, &r));
    let r = with_subject(
        req("user:a", "doc:x", "write"),
        json!({"dept": "sales", "level": 1}),
    );
    assert!(!allowed(&p, &r));
}

#[test]
fn acl_entries_apply_to_subject_and_roles_including_inherited() {
    let p = point(
        r#"
version: 1
roles:
  - { name: staff }
  - { name: contractor, inherits: [staff] }
bindings:
  - { subject: "user:c", roles: [contractor] }
acls:
  - resource: "doc:plan"
    entries:
      - { subject: "user:b", actions: [read] }
      - { subject: "role:staff", actions: [comment] }
      - { subject: "role:contractor", actions: ["*"], effect: deny }
"#,
    );
    assert!(allowed(&p, &req("user:b", "doc:plan", "read")));
    assert!(!allowed(&p, &req("user:b", "doc:plan", "comment")));
    assert!(!allowed(&p, &req("user:b", "doc:plan2", "read")));
    // A contractor is staff, but the deny entry wins under deny-overrides.
    let r = p.decide(&req("user:c", "doc:plan", "comment"));
    assert!(!r.decision);
    assert_eq!(r.determining[0].id, "acls[0].entries[2]");
}

#[test]
fn request_subject_of_type_role_does_not_match_role_acl() {
    let p = point(
        r#"
version: 1
roles: [ { name: admin } ]
acls: [ { resource: "doc:**", entries: [ { subject: "role:admin", actions: ["*"] } ] } ]
"#,
    );
    assert!(!allowed(&p, &req("role:admin", "doc:x", "read")));
    let extra = DecisionOptions {
        extra_roles: vec!["admin".into()],
        explain: false,
    };
    assert!(
        p.decide_with(&req("user:z", "doc:x", "read"), &extra)
            .decision
    );
}

#[test]
fn roles_are_never_read_from_the_request() {
    let p = point(
        r#"
version: 1
roles: [ { name: admin, permissions: [ { resource: "**", actions: ["*"] } ] } ]
"#,
    );
    let r = with_subject(
        req("user:x", "doc:x", "read"),
        json!({"roles": ["admin"], "role": "admin"}),
    );
    assert!(!allowed(&p, &r));
}

#[test]
fn extra_roles_add_to_bindings_and_unknown_ones_are_ignored() {
    let p = point(
        r#"
version: 1
roles:
  - { name: reader, permissions: [ { resource: "doc:*", actions: [read] } ] }
  - { name: writer, permissions: [ { resource: "doc:*", actions: [write] } ] }
bindings: [ { subject: "user:a", roles: [reader] } ]
"#,
    );
    let opts = DecisionOptions {
        extra_roles: vec!["writer".into(), "ghost".into()],
        explain: false,
    };
    assert!(
        p.decide_with(&req("user:a", "doc:x", "write"), &opts)
            .decision
    );
    assert!(
        p.decide_with(&req("user:a", "doc:x", "read"), &opts)
            .decision
    );
    let explain = DecisionOptions {
        explain: true,
        ..opts
    };
    let trace = p
        .decide_with(&req("user:a", "doc:x", "write"), &explain)
        .trace
        .unwrap();
    let vias: Vec<(&str, &str)> = trace
        .roles
        .iter()
        .map(|r| (r.name.as_str(), r.via.as_str()))
        .collect();
    assert!(vias.contains(&("reader", "binding")));
    assert!(vias.contains(&("writer", "extra_roles")));
    assert!(
        vias.iter()
            .any(|(n, v)| *n == "ghost" && v.contains("unknown"))
    );
}

// Rule 2: patterns and actions.

#[test]
fn pattern_does_not_match_longer_path() {
    let p = point(
        r#"
version: 1
roles: [ { name: r, permissions: [ { resource: "project:1", actions: [read] } ] } ]
bindings: [ { subject: "user:a", roles: [r] } ]
"#,
    );
    assert!(allowed(&p, &req("user:a", "project:1", "read")));
    assert!(!allowed(&p, &req("user:a", "project:1/member", "read")));
    assert!(!allowed(&p, &req("user:a", "project:10", "read")));
}

#[test]
fn middle_star_does_not_cross_slash() {
    let p = point(
        r#"
version: 1
roles: [ { name: r, permissions: [ { resource: "project:*/member", actions: [read] } ] } ]
bindings: [ { subject: "user:a", roles: [r] } ]
"#,
    );
    assert!(allowed(&p, &req("user:a", "project:1/member", "read")));
    assert!(!allowed(&p, &req("user:a", "project:1/2/member", "read")));
}

#[test]
fn literal_dots_and_braces_in_patterns() {
    let p = point(
        r#"
version: 1
roles: [ { name: r, permissions: [ { resource: "file:a.txt", actions: [read] },
                                    { resource: "api:/users/{id}", actions: [read] } ] } ]
bindings: [ { subject: "user:a", roles: [r] } ]
"#,
    );
    assert!(allowed(&p, &req("user:a", "file:a.txt", "read")));
    assert!(!allowed(&p, &req("user:a", "file:aXtxt", "read")));
    assert!(!allowed(&p, &req("user:a", "api:/users/7", "read")));
}

#[test]
fn actions_are_exact_names_or_star() {
    let p = point(
        r#"
version: 1
roles:
  - { name: r, permissions: [ { resource: "doc:*", actions: [read] } ] }
  - { name: all, permissions: [ { resource: "doc:*", actions: ["*"] } ] }
bindings: [ { subject: "user:a", roles: [r] }, { subject: "user:b", roles: [all] } ]
"#,
    );
    assert!(!allowed(&p, &req("user:a", "doc:x", "read_all")));
    assert!(!allowed(&p, &req("user:a", "doc:x", "Read")));
    assert!(allowed(&p, &req("user:b", "doc:x", "anything")));
}

// Rules 3 and 4: indeterminate and not applicable.

const ABAC: &str = r#"
version: 1
combining: COMBINING
policies:
  - id: permit-office-hours
    effect: permit
    target: { resource: [ { attribute: resource.type, operator: eq, value: doc } ] }
    condition:
      all:
        - { attribute: context.hour, operator: gte, value: 8 }
        - { attribute: context.hour, operator: lt, value: 18 }
  - id: deny-external
    effect: deny
    target: { resource: [ { attribute: resource.type, operator: eq, value: doc } ] }
    condition: { attribute: context.network, operator: eq, value: external }
    obligations:
      - { id: notify, on: deny, params: { channel: soc } }
      - { id: never, on: permit }
"#;

fn abac(combining: &str) -> DecisionPoint {
    point(&ABAC.replace("COMBINING", combining))
}

#[test]
fn false_condition_is_not_applicable_not_the_opposite_effect() {
    let p = abac("deny-overrides");
    // Hour 20: the permit policy's condition is false. The seed turned this into a deny;
    // here it is not applicable, and the internal network makes the deny not applicable too.
    let r = p.decide(&with(
        req("user:a", "doc:x", "read"),
        json!({"hour": 20, "network": "internal"}),
    ));
    assert!(!r.decision);
    assert!(r.determining.is_empty(), "{r:?}");
    // And a deny policy whose condition is false must not permit.
    let p = point(
        r#"
version: 1
combining: deny-unless-permit
policies:
  - id: d
    effect: deny
    condition: { attribute: context.network, operator: eq, value: external }
"#,
    );
    assert!(
        !p.decide(&with(
            req("user:a", "doc:x", "read"),
            json!({"network": "internal"})
        ))
        .decision
    );
}

#[test]
fn erroring_permit_does_not_grant() {
    let p = abac("permit-overrides");
    let r = p.decide(&with(
        req("user:a", "doc:x", "read"),
        json!({"network": "internal"}),
    ));
    assert!(!r.decision);
    assert!(r.determining[0].indeterminate);
    assert!(r.reasons[0].contains("context.hour"), "{:?}", r.reasons);
}

#[test]
fn type_mismatch_is_indeterminate() {
    let p = abac("permit-overrides");
    let r = p.decide(&with(
        req("user:a", "doc:x", "read"),
        json!({"hour": "nine", "network": "internal"}),
    ));
    assert!(!r.decision);
    assert!(r.determining[0].indeterminate);
}

#[test]
fn erroring_deny_policy_denies_under_deny_overrides() {
    let p = abac("deny-overrides");
    // The network is missing: the deny policy errs, so the bundle fails closed even though the
    // permit policy applies.
    let r = p.decide(&with(req("user:a", "doc:x", "read"), json!({"hour": 10})));
    assert!(!r.decision);
    assert_eq!(r.determining[0].id, "deny-external");
    assert!(r.determining[0].indeterminate);
    assert!(r.reasons[0].contains("fail closed"), "{:?}", r.reasons);
    // The same under permit-unless-deny: indeterminate never grants.
    let p = abac("permit-unless-deny");
    assert!(
        !p.decide(&with(req("user:a", "doc:x", "read"), json!({"hour": 10})))
            .decision
    );
}

// Rule 5: combining.

#[test]
fn the_five_combining_algorithms() {
    let both = json!({"hour": 10, "network": "external"}); // permit and deny apply
    let permit_only = json!({"hour": 10, "network": "internal"});
    let deny_only = json!({"hour": 20, "network": "external"});
    let neither = json!({"hour": 20, "network": "internal"});
    let cases = [
        ("deny-overrides", [false, true, false, false]),
        ("permit-overrides", [true, true, false, false]),
        ("first-applicable", [true, true, false, false]),
        ("deny-unless-permit", [true, true, false, false]),
        ("permit-unless-deny", [false, true, false, true]),
    ];
    for (combining, expected) in cases {
        let p = abac(combining);
        for (context, want) in [&both, &permit_only, &deny_only, &neither]
            .iter()
            .zip(expected)
        {
            let r = with(req("user:a", "doc:x", "read"), (*context).clone());
            assert_eq!(allowed(&p, &r), want, "{combining} with {context}");
        }
    }
}

#[test]
fn first_applicable_follows_document_order() {
    let yaml = r#"
version: 1
combining: first-applicable
roles: [ { name: r, permissions: [ { resource: "doc:*", actions: [read] } ] } ]
bindings: [ { subject: "user:a", roles: [r] } ]
acls: [ { resource: "doc:x", entries: [ { subject: "user:a", actions: [read], effect: deny } ] } ]
policies:
  - { id: deny-all, effect: deny }
"#;
    let p = point(yaml);
    // Role permissions come first, then ACL entries, then policies.
    let r = p.decide(&req("user:a", "doc:x", "read"));
    assert!(r.decision);
    assert_eq!(r.determining[0].id, "r.permissions[0]");
    let r = p.decide(&req("user:b", "doc:x", "read"));
    assert_eq!(r.determining[0].id, "deny-all");
    let r = p.decide(&req("user:a", "doc:x/y", "read"));
    assert_eq!(r.determining[0].id, "deny-all");
}

#[test]
fn obligations_follow_the_decision() {
    let p = abac("deny-overrides");
    let r = p.decide(&with(
        req("user:a", "doc:x", "read"),
        json!({"hour": 10, "network": "external"}),
    ));
    assert!(!r.decision);
    assert_eq!(r.obligations.len(), 1);
    assert_eq!(r.obligations[0].id, "notify");
    assert_eq!(r.obligations[0].params["channel"], "soc");
    let r = p.decide(&with(
        req("user:a", "doc:x", "read"),
        json!({"hour": 10, "network": "internal"}),
    ));
    assert!(r.decision);
    assert!(r.obligations.is_empty());
}

// Rule 6: explanations.

#[test]
fn explain_traces_roles_rules_and_conditions() {
    let p = point(
        r#"
version: 1
roles:
  - { name: viewer, permissions: [ { resource: "doc:*", actions: [read] } ] }
  - name: editor
    inherits: [viewer]
    permissions:
      - { resource: "doc:*", actions: [write],
          conditions: [ { attribute: subject.properties.dept, operator: eq, value: eng } ] }
bindings: [ { subject: "user:a", roles: [editor] } ]
policies:
  - id: p
    effect: deny
    target: { subject: [ { attribute: subject.type, operator: eq, value: agent } ] }
"#,
    );
    let r = with_subject(req("user:a", "doc:x", "write"), json!({"dept": "ops"}));
    let response = p.decide_with(
        &r,
        &DecisionOptions {
            explain: true,
            ..Default::default()
        },
    );
    assert!(!response.decision);
    let trace = response.trace.as_ref().unwrap();
    assert_eq!(trace.outcome, Outcome::NotApplicable);
    assert_eq!(trace.roles[0].name, "editor");
    assert_eq!(trace.roles[1].via, "inherited from `editor`");
    let write = trace
        .rules
        .iter()
        .find(|r| r.id == "editor.permissions[0]")
        .unwrap();
    assert_eq!(write.result, RuleResult::NotApplicable);
    assert_eq!(write.conditions[0].actual, Some(json!("ops")));
    assert_eq!(write.conditions[0].expected, json!("eng"));
    assert_eq!(write.conditions[0].result, Truth::False);
    let read = trace
        .rules
        .iter()
        .find(|r| r.id == "viewer.permissions[0]")
        .unwrap();
    assert!(read.note.as_ref().unwrap().contains("action `write`"));
    let policy = trace
        .rules
        .iter()
        .find(|r| r.kind == RuleKind::Policy)
        .unwrap();
    assert_eq!(policy.conditions[0].part, "target.subject");
    // The JSON form round-trips, and has no trace without explain.
    let text = serde_json::to_string(&response).unwrap();
    let back: Response = serde_json::from_str(&text).unwrap();
    assert_eq!(back, response);
    let plain = serde_json::to_value(p.decide(&r)).unwrap();
    assert!(plain.get("trace").is_none());
}

// Rule 9: the index gives the same answers as the full scan, also for big roles and ACLs.

#[test]
fn indexed_roles_and_acls_agree_with_the_full_scan() {
    let mut yaml = String::from("version: 1\nroles:\n  - name: big\n    permissions:\n");
    for i in 0..50 {
        yaml.push_str(&format!(
            "      - {{ resource: \"doc:{i}\", actions: [read] }}\n"
        ));
        yaml.push_str(&format!(
            "      - {{ resource: \"doc:{i}/*\", actions: [write, read] }}\n"
        ));
        yaml.push_str(&format!(
            "      - {{ resource: \"proj:{i}/**\", actions: [\"*\"] }}\n"
        ));
    }
    yaml.push_str("bindings: [ { subject: \"user:a\", roles: [big] } ]\nacls:\n");
    yaml.push_str("  - resource: \"doc:7\"\n    entries:\n");
    for i in 0..20 {
        yaml.push_str(&format!(
            "      - {{ subject: \"user:u{i}\", actions: [read] }}\n"
        ));
    }
    yaml.push_str("      - { subject: \"user:a\", actions: [read], effect: deny }\n");
    let p = point(&yaml);
    for (resource, action, want) in [
        ("doc:3", "read", true),
        ("doc:3", "write", false),
        ("doc:3/x", "write", true),
        ("doc:3/x/y", "write", false),
        ("proj:49/a/b", "delete", true),
        ("proj:50/a", "delete", false),
        ("doc:7", "read", false),
        ("doc:", "read", false),
    ] {
        assert_eq!(
            allowed(&p, &req("user:a", resource, action)),
            want,
            "{resource} {action}"
        );
    }
    assert!(allowed(&p, &req("user:u3", "doc:7", "read")));
}

// The bundle's own tests.

#[test]
fn run_tests_reports_each_test() {
    let p = point(
        r#"
version: 1
tests:
  - { name: denied, expect: deny,
      request: { subject: { type: user, id: a }, resource: { type: d, id: x }, action: { name: r } } }
  - { name: wrong, expect: allow,
      request: { subject: { type: user, id: a }, resource: { type: d, id: x }, action: { name: r } } }
"#,
    );
    let outcomes = p.run_tests();
    assert!(outcomes[0].passed);
    assert!(!outcomes[1].passed);
    assert!(outcomes[1].expected);
    assert!(!outcomes[1].actual.decision);
}

#[test]
fn json_bundles_load_like_yaml() {
    let p = abac("deny-overrides");
    let json = p.bundle().to_json();
    let again = DecisionPoint::load(&json, "b.json").unwrap();
    assert_eq!(again.bundle(), p.bundle());
    let compiled = DecisionPoint::compile(Bundle::parse(&json, "b.json").unwrap()).unwrap();
    assert_eq!(compiled.bundle().combining, Combining::DenyOverrides);
    assert_eq!(compiled.bundle().policies[1].effect, Effect::Deny);
}

#[test]
fn decision_point_is_shareable() {
    fn check<T: Send + Sync + std::fmt::Debug>() {}
    check::<DecisionPoint>();
    let p = std::sync::Arc::new(abac("deny-overrides"));
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let p = p.clone();
            std::thread::spawn(move || {
                p.decide(&with(
                    req("user:a", "doc:x", "read"),
                    json!({"hour": 8 + i, "network": "internal"}),
                ))
                .decision
            })
        })
        .collect();
    assert!(handles.into_iter().all(|h| h.join().unwrap()));
}

// No input may overflow the stack: the parsers stop at 128 levels, the compiler at 32, and
// what is accepted is shallow enough for small thread stacks (server worker threads).
#[test]
fn deep_documents_are_refused_on_a_small_stack() {
    let run = |depth: usize| {
        let yaml = format!(
            "version: 1\npolicies:\n  - id: p\n    effect: deny\n    condition: {}{{ attribute: context.a, operator: exists }}{}\n",
            "{ not: ".repeat(depth),
            " }".repeat(depth)
        );
        let json = format!(
            "{{\"version\": 1, \"policies\": [{{\"id\": \"p\", \"effect\": \"deny\", \"condition\": {}{{\"attribute\": \"context.a\", \"operator\": \"exists\"}}{}}}]}}",
            "{\"not\": ".repeat(depth),
            "}".repeat(depth)
        );
        std::thread::Builder::new()
            .stack_size(1 << 20)
            .spawn(move || {
                let yaml = DecisionPoint::load(&yaml, "deep.yaml").map(|_| ());
                let json = DecisionPoint::load(&json, "deep.json").map(|_| ());
                (yaml.is_ok(), json.is_ok())
            })
            .unwrap()
            .join()
            .unwrap()
    };
    assert_eq!(run(20), (true, true));
    assert_eq!(run(40), (false, false));
    assert_eq!(run(120), (false, false));
    assert_eq!(run(100_000), (false, false));
}

/// A `:` inside a type made the pattern (which sees `type:id`) and the conditions (which see
/// `type` alone) disagree: `secret:prod` + `db` matched the grant on `secret:**` but slipped
/// past a deny on `resource.type eq secret`.
#[test]
fn colon_in_type_cannot_split_pattern_from_conditions() {
    let p = point(
        r#"
version: 1
roles:
  - name: r
    permissions:
      - { resource: "secret:**", actions: ["read"] }
bindings:
  - { subject: "user:u", roles: ["r"] }
policies:
  - id: no-secrets
    effect: deny
    target:
      resource: [ { attribute: resource.type, operator: eq, value: secret } ]
"#,
    );
    let sneaky: Request = serde_json::from_value(json!({
        "subject": {"type": "user", "id": "u"},
        "resource": {"type": "secret:prod", "id": "db"},
        "action": {"name": "read"}
    }))
    .unwrap();
    let response = p.decide(&sneaky);
    assert!(!response.decision, "{response:?}");
    assert!(response.reasons[0].contains("ambiguous"), "{response:?}");
    let explained = p.decide_with(
        &sneaky,
        &DecisionOptions {
            extra_roles: Vec::new(),
            explain: true,
        },
    );
    assert!(!explained.decision);

    let sneaky_subject: Request = serde_json::from_value(json!({
        "subject": {"type": "user:u", "id": ""},
        "resource": {"type": "document", "id": "x"},
        "action": {"name": "read"}
    }))
    .unwrap();
    assert!(!p.decide(&sneaky_subject).decision);
}
