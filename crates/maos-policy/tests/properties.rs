//! Property tests of the decision point's invariants over generated bundles and requests.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use maos_core::Request;
use maos_policy::{
    Acl, AclEntry, Binding, Bundle, Combining, Condition, ConditionTree, DecisionOptions,
    DecisionPoint, Effect, Operator, Permission, Policy, Role, Target,
};
use proptest::prelude::*;
use serde_json::{Value, json};

const RESOURCES: &[&str] = &["doc:a", "doc:a/b", "doc:b", "secret:x", "secret:x/y"];
const PATTERNS: &[&str] = &[
    "doc:*", "doc:**", "doc:a", "doc:a/*", "secret:*", "**", "*:x",
];
const ACTIONS: &[&str] = &["read", "write", "delete"];
const SUBJECTS: &[&str] = &["user:u0", "user:u1", "agent:a0"];

fn condition() -> impl Strategy<Value = Condition> {
    prop_oneof![
        (0i64..24, prop::bool::ANY).prop_map(|(h, lt)| Condition {
            attribute: "context.hour".into(),
            operator: if lt { Operator::Lt } else { Operator::Gte },
            value: json!(h),
        }),
        prop::sample::select(vec!["user", "agent"]).prop_map(|t| Condition {
            attribute: "subject.type".into(),
            operator: Operator::Eq,
            value: json!(t),
        }),
        prop::sample::select(vec!["doc", "secret"]).prop_map(|t| Condition {
            attribute: "resource.type".into(),
            operator: Operator::Eq,
            value: json!(t),
        }),
        prop::sample::subsequence(ACTIONS.to_vec(), 1..3).prop_map(|a| Condition {
            attribute: "action.name".into(),
            operator: Operator::In,
            value: json!(a),
        }),
        // Sometimes missing: makes rules indeterminate.
        Just(Condition {
            attribute: "context.network".into(),
            operator: Operator::Eq,
            value: json!("external"),
        }),
    ]
}

fn tree() -> impl Strategy<Value = ConditionTree> {
    let leaf = condition().prop_map(ConditionTree::Match);
    leaf.prop_recursive(3, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(ConditionTree::All),
            prop::collection::vec(inner.clone(), 0..3).prop_map(ConditionTree::Any),
            inner.prop_map(|t| ConditionTree::Not(Box::new(t))),
        ]
    })
}

fn effect() -> impl Strategy<Value = Effect> {
    prop_oneof![Just(Effect::Permit), Just(Effect::Deny)]
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        effect(),
        prop::collection::vec(condition(), 0..3),
        prop::option::of(tree()),
    )
        .prop_map(|(effect, selectors, condition)| Policy {
            id: String::new(),
            description: String::new(),
            effect,
            target: Target {
                subject: selectors,
                ..Default::default()
            },
            condition,
            obligations: Vec::new(),
        })
}

fn actions() -> impl Strategy<Value = Vec<String>> {
    prop_oneof![
        prop::sample::subsequence(ACTIONS.to_vec(), 1..3)
            .prop_map(|v| v.into_iter().map(String::from).collect()),
        Just(vec!["*".to_string()]),
    ]
}

fn permission() -> impl Strategy<Value = Permission> {
    (
        prop::sample::select(PATTERNS.to_vec()),
        actions(),
        prop::collection::vec(condition(), 0..2),
    )
        .prop_map(|(resource, actions, conditions)| Permission {
            resource: resource.into(),
            actions,
            conditions,
        })
}

fn acl_entry() -> impl Strategy<Value = (usize, AclEntry)> {
    (
        0..PATTERNS.len(),
        prop_oneof![
            prop::sample::select(SUBJECTS.to_vec()).prop_map(String::from),
            (0usize..4).prop_map(|r| format!("role:r{r}")),
        ],
        actions(),
        effect(),
    )
        .prop_map(|(p, subject, actions, effect)| {
            (
                p,
                AclEntry {
                    subject,
                    actions,
                    effect,
                },
            )
        })
}

fn combining() -> impl Strategy<Value = Combining> {
    prop_oneof![
        Just(Combining::DenyOverrides),
        Just(Combining::PermitOverrides),
        Just(Combining::FirstApplicable),
        Just(Combining::DenyUnlessPermit),
        Just(Combining::PermitUnlessDeny),
    ]
}

/// Four roles `r0..r3`; `r{i}` may inherit only from higher-numbered roles (no cycles).
fn bundle() -> impl Strategy<Value = Bundle> {
    (
        combining(),
        prop::collection::vec(prop::collection::vec(permission(), 0..3), 4),
        prop::collection::vec(prop::bool::ANY, 6),
        prop::collection::vec(prop::collection::vec(0usize..4, 0..3), SUBJECTS.len()),
        prop::collection::vec(acl_entry(), 0..4),
        prop::collection::vec(policy(), 0..5),
    )
        .prop_map(
            |(combining, perms, edges, bound, acl_entries, mut policies)| {
                let pairs = [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (0, 3)];
                let roles = perms
                    .into_iter()
                    .enumerate()
                    .map(|(i, permissions)| Role {
                        name: format!("r{i}"),
                        description: String::new(),
                        inherits: pairs
                            .iter()
                            .zip(&edges)
                            .filter(|((from, _), on)| *from == i && **on)
                            .map(|((_, to), _)| format!("r{to}"))
                            .collect(),
                        permissions,
                        constraints: Vec::new(),
                    })
                    .collect();
                let bindings = SUBJECTS
                    .iter()
                    .zip(bound)
                    .map(|(s, roles)| Binding {
                        subject: s.to_string(),
                        roles: roles.into_iter().map(|r| format!("r{r}")).collect(),
                    })
                    .collect();
                let acls = acl_entries
                    .into_iter()
                    .map(|(p, entry)| Acl {
                        resource: PATTERNS[p].into(),
                        entries: vec![entry],
                    })
                    .collect();
                for (i, p) in policies.iter_mut().enumerate() {
                    p.id = format!("p{i}");
                }
                Bundle {
                    version: 1,
                    combining,
                    roles,
                    bindings,
                    acls,
                    policies,
                    tests: Vec::new(),
                }
            },
        )
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(SUBJECTS.to_vec()),
        prop::sample::select(RESOURCES.to_vec()),
        prop::sample::select(ACTIONS.to_vec()),
        prop::option::of(0i64..24),
        prop::option::of(prop::sample::select(vec!["external", "internal"])),
    )
        .prop_map(|(s, r, a, hour, network)| {
            let (st, sid) = s.split_once(':').unwrap();
            let (rt, rid) = r.split_once(':').unwrap();
            let mut context = serde_json::Map::new();
            if let Some(h) = hour {
                context.insert("hour".into(), json!(h));
            }
            if let Some(n) = network {
                context.insert("network".into(), Value::from(n));
            }
            serde_json::from_value(json!({
                "subject": {"type": st, "id": sid},
                "resource": {"type": rt, "id": rid},
                "action": {"name": a},
                "context": context
            }))
            .unwrap()
        })
}

fn decide(bundle: &Bundle, request: &Request) -> bool {
    DecisionPoint::compile(bundle.clone())
        .unwrap()
        .decide(request)
        .decision
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// The indexed path and the full scan behind `explain` agree on everything but the trace.
    #[test]
    fn index_agrees_with_full_scan(bundle in bundle(), requests in prop::collection::vec(request(), 1..8)) {
        let point = DecisionPoint::compile(bundle).unwrap();
        let explain = DecisionOptions { explain: true, ..Default::default() };
        for r in &requests {
            let fast = point.decide(r);
            let mut slow = point.decide_with(r, &explain);
            slow.trace = None;
            prop_assert_eq!(fast, slow);
        }
    }

    /// Under deny-overrides, adding a deny policy never turns a deny into an allow.
    #[test]
    fn adding_a_deny_never_allows(mut bundle in bundle(), extra in policy(), r in request()) {
        bundle.combining = Combining::DenyOverrides;
        let before = decide(&bundle, &r);
        let mut extra = extra;
        extra.effect = Effect::Deny;
        extra.id = "added".into();
        bundle.policies.push(extra);
        let after = decide(&bundle, &r);
        prop_assert!(before || !after, "a deny policy turned deny into allow");
    }

    /// Under permit-overrides, adding a permit policy never turns an allow into a deny.
    #[test]
    fn adding_a_permit_never_denies(mut bundle in bundle(), extra in policy(), r in request()) {
        bundle.combining = Combining::PermitOverrides;
        let before = decide(&bundle, &r);
        let mut extra = extra;
        extra.effect = Effect::Permit;
        extra.id = "added".into();
        bundle.policies.push(extra);
        prop_assert!(!before || decide(&bundle, &r), "a permit policy turned allow into deny");
    }

    /// Every algorithm but first-applicable ignores the order of roles, permissions, ACL
    /// entries and policies.
    #[test]
    fn order_independence(bundle in bundle(), seed in any::<u64>(), r in request()) {
        prop_assume!(bundle.combining != Combining::FirstApplicable);
        let before = decide(&bundle, &r);
        let mut shuffled = bundle.clone();
        let mut state = seed | 1;
        let mut next = move |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n.max(1) as u64) as usize
        };
        fn shuffle<T>(v: &mut [T], next: &mut impl FnMut(usize) -> usize) {
            for i in (1..v.len()).rev() {
                v.swap(i, next(i + 1));
            }
        }
        shuffle(&mut shuffled.roles, &mut next);
        for role in &mut shuffled.roles {
            shuffle(&mut role.permissions, &mut next);
        }
        shuffle(&mut shuffled.acls, &mut next);
        shuffle(&mut shuffled.policies, &mut next);
        shuffle(&mut shuffled.bindings, &mut next);
        prop_assert_eq!(decide(&shuffled, &r), before);
    }

    /// Extra roles from the caller mean the same as bindings in the bundle.
    #[test]
    fn extra_roles_equal_bindings(bundle in bundle(), r in request()) {
        let subject = r.subject.qualified();
        let roles: Vec<String> = bundle
            .bindings
            .iter()
            .find(|b| b.subject == subject)
            .map(|b| b.roles.clone())
            .unwrap_or_default();
        let bound = decide(&bundle, &r);
        let mut unbound = bundle.clone();
        unbound.bindings.retain(|b| b.subject != subject);
        let point = DecisionPoint::compile(unbound).unwrap();
        let options = DecisionOptions { extra_roles: roles, explain: false };
        prop_assert_eq!(point.decide_with(&r, &options).decision, bound);
    }

    /// The canonical JSON form parses back to the same bundle.
    #[test]
    fn json_round_trip(bundle in bundle()) {
        let again = Bundle::parse(&bundle.to_json(), "b.json").unwrap();
        prop_assert_eq!(again, bundle);
    }

    /// Nor text made of YAML's structural characters (quotes, brackets, comments, block
    /// scalars, indentation).
    #[test]
    fn loading_yaml_like_text_never_panics(text in "[\\[\\]{}'\"#:|>\n -a1]{0,300}") {
        let _ = DecisionPoint::load(&text, "fuzz.yaml");
        let _ = maos_policy::analyze_source(&text, "fuzz.yaml");
    }

    /// No input makes loading panic.
    #[test]
    fn loading_arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = DecisionPoint::load(&text, "fuzz.yaml");
    }
}
