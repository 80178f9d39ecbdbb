//! Static analysis of a bundle (rule 8): permit and deny rules that can overlap, rules that can
//! never apply (shadowed under first-applicable, contradictory conditions), role permissions
//! made redundant by inherited ones, roles bound to nobody, and obligations that never fire.
//!
//! Every finding is a warning: the bundle stays valid. The checks are conservative in the
//! direction of their claim: "can overlap" may over-report, "never applies" and "redundant"
//! are only reported when proven.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bundle::{Bundle, Combining, Condition, ConditionTree, Effect, Operator};
use crate::compile::{RoleId, closure_of};
use crate::error::LoadErrors;
use crate::locate::LineIndex;
use crate::pattern::Pattern;

/// Pairs of rules compared at most, so that huge bundles finish quickly.
const PAIR_BUDGET: usize = 5_000_000;
/// Overlapping rules named in one finding.
const NAMED: usize = 5;

/// What kind of problem a [`Finding`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A permit rule and a deny rule whose targets can overlap.
    Overlap,
    /// Under first-applicable, an earlier rule always applies first.
    Shadowed,
    /// The rule's conditions contradict each other: it never applies.
    Contradiction,
    /// A role permission already granted by the role itself or a role it inherits.
    Redundant,
    /// A role no binding gives, directly or through inheritance.
    Unbound,
    /// An obligation whose `on` differs from its policy's effect: it never fires.
    DeadObligation,
    /// The analysis stopped early on a very large bundle.
    Incomplete,
}

impl FindingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::Overlap => "overlap",
            FindingKind::Shadowed => "shadowed",
            FindingKind::Contradiction => "contradiction",
            FindingKind::Redundant => "redundant",
            FindingKind::Unbound => "unbound",
            FindingKind::DeadObligation => "dead_obligation",
            FindingKind::Incomplete => "incomplete",
        }
    }
}

/// Where in the bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

/// One warning of the analysis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub kind: FindingKind,
    pub location: Location,
    pub message: String,
}

/// Who a rule is about.
#[derive(Clone, Debug)]
enum Scope {
    /// Members of a role (and of every role inheriting it).
    Role(RoleId),
    /// One subject (`type:id`), or a role named by an ACL (`role:x`).
    Named(String),
    /// Decided by the policy's subject selectors (kept in `conditions`).
    Anyone,
}

/// A rule, as the analysis sees it.
#[derive(Debug)]
struct RuleView<'b> {
    path: String,
    label: String,
    effect: Effect,
    /// `None`: any resource.
    resource: Option<Pattern>,
    /// `None`: any action.
    actions: Option<BTreeSet<&'b str>>,
    scope: Scope,
    /// Conditions that must all hold for the rule to apply.
    conditions: Vec<&'b Condition>,
    /// Whether `conditions` is all there is (no `any`/`not` left out).
    complete: bool,
    /// The role permission's role, for redundancy.
    role: Option<RoleId>,
}

fn actions_of(list: &[String]) -> Option<BTreeSet<&str>> {
    if list.iter().any(|a| a == "*") {
        None
    } else {
        Some(list.iter().map(String::as_str).collect())
    }
}

/// Adds the leaves of an `all`-only tree; returns false when the tree has `any` or `not`.
fn conjuncts<'b>(tree: &'b ConditionTree, out: &mut Vec<&'b Condition>, depth: usize) -> bool {
    if depth > crate::condition::MAX_CONDITION_DEPTH {
        return false;
    }
    match tree {
        ConditionTree::Match(c) => {
            out.push(c);
            true
        }
        ConditionTree::All(items) => items.iter().all(|item| conjuncts(item, out, depth + 1)),
        ConditionTree::Any(_) | ConditionTree::Not(_) => false,
    }
}

fn rules_of<'b>(bundle: &'b Bundle, role_ids: &HashMap<&str, RoleId>) -> Vec<RuleView<'b>> {
    let mut rules = Vec::new();
    for (i, role) in bundle.roles.iter().enumerate() {
        for (j, p) in role.permissions.iter().enumerate() {
            rules.push(RuleView {
                path: format!("roles[{i}].permissions[{j}]"),
                label: format!("role `{}` permission {j} (`{}`)", role.name, p.resource),
                effect: Effect::Permit,
                resource: Pattern::new(&p.resource).ok(),
                actions: actions_of(&p.actions),
                scope: Scope::Role(RoleId::try_from(i).unwrap_or(RoleId::MAX)),
                conditions: p.conditions.iter().collect(),
                complete: true,
                role: RoleId::try_from(i).ok(),
            });
        }
    }
    for (a, acl) in bundle.acls.iter().enumerate() {
        for (e, entry) in acl.entries.iter().enumerate() {
            let scope = match entry
                .subject
                .strip_prefix("role:")
                .and_then(|n| role_ids.get(n))
            {
                Some(&id) => Scope::Role(id),
                None => Scope::Named(entry.subject.clone()),
            };
            rules.push(RuleView {
                path: format!("acls[{a}].entries[{e}]"),
                label: format!("ACL entry for `{}` on `{}`", entry.subject, acl.resource),
                effect: entry.effect,
                resource: Pattern::new(&acl.resource).ok(),
                actions: actions_of(&entry.actions),
                scope,
                conditions: Vec::new(),
                complete: true,
                role: None,
            });
        }
    }
    for (p, policy) in bundle.policies.iter().enumerate() {
        let mut conditions: Vec<&Condition> =
            policy.target.selectors().map(|(_, _, c)| c).collect();
        let complete = match &policy.condition {
            Some(tree) => conjuncts(tree, &mut conditions, 0),
            None => true,
        };
        let text = |attribute: &str| {
            policy.target.selectors().find_map(|(_, _, c)| {
                (c.attribute == attribute && c.operator == Operator::Eq)
                    .then(|| c.value.as_str())
                    .flatten()
            })
        };
        let resource = match (text("resource.type"), text("resource.id")) {
            (Some(t), Some(id)) => Pattern::new(&format!("{t}:{id}")).ok(),
            (Some(t), None) => Pattern::new(&format!("{t}:**")).ok(),
            _ => None,
        };
        let actions = policy.target.selectors().find_map(|(_, _, c)| {
            if c.attribute != "action.name" {
                return None;
            }
            match (&c.operator, &c.value) {
                (Operator::Eq, Value::String(s)) => Some(BTreeSet::from([s.as_str()])),
                (Operator::In, Value::Array(items)) => items.iter().map(Value::as_str).collect(),
                _ => None,
            }
        });
        rules.push(RuleView {
            path: format!("policies[{p}]"),
            label: format!("policy `{}`", policy.id),
            effect: policy.effect,
            resource,
            actions,
            scope: Scope::Anyone,
            conditions,
            complete,
            role: None,
        });
    }
    rules
}

fn resources_overlap(a: &Option<Pattern>, b: &Option<Pattern>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.may_overlap(b),
        _ => true,
    }
}

fn actions_overlap(a: &Option<BTreeSet<&str>>, b: &Option<BTreeSet<&str>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => !a.is_disjoint(b),
        _ => true,
    }
}

/// `a` grants every action `b` does.
fn actions_cover(a: &Option<BTreeSet<&str>>, b: &Option<BTreeSet<&str>>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => b.is_subset(a),
    }
}

/// `a` matches every resource `b` does.
fn resource_covers(a: &Option<Pattern>, b: &Option<Pattern>) -> bool {
    match (a, b) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(a), Some(b)) => a.covers(b),
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// Why a set of conditions that must all hold can never hold, if it provably cannot.
fn contradiction(conditions: &[&Condition]) -> Option<String> {
    let mut by_attribute: HashMap<&str, Vec<&Condition>> = HashMap::new();
    for c in conditions {
        by_attribute
            .entry(c.attribute.as_str())
            .or_default()
            .push(c);
    }
    let mut attributes: Vec<_> = by_attribute.into_iter().collect();
    attributes.sort_by(|a, b| a.0.cmp(b.0));
    for (attribute, list) in attributes {
        let equals: Vec<&Value> = list
            .iter()
            .filter(|c| c.operator == Operator::Eq)
            .map(|c| &c.value)
            .collect();
        if let Some((first, rest)) = equals.split_first()
            && let Some(other) = rest.iter().find(|v| !same_value(first, v))
        {
            return Some(format!(
                "`{attribute}` cannot equal both {first} and {other}"
            ));
        }
        for c in &list {
            let Some(eq) = equals.first() else { break };
            let members = |v: &Value| {
                v.as_array()
                    .is_some_and(|l| l.iter().any(|x| same_value(x, eq)))
            };
            let clash = match c.operator {
                Operator::Neq => same_value(&c.value, eq),
                Operator::In => !members(&c.value),
                Operator::NotIn => members(&c.value),
                _ => false,
            };
            if clash {
                return Some(format!(
                    "`{attribute}` eq {eq} contradicts `{attribute}` {} {}",
                    c.operator.as_str(),
                    c.value
                ));
            }
        }
        let lists: Vec<BTreeSet<String>> = list
            .iter()
            .filter(|c| c.operator == Operator::In)
            .filter_map(|c| c.value.as_array())
            .map(|l| l.iter().map(Value::to_string).collect())
            .collect();
        if let Some((first, rest)) = lists.split_first() {
            let common = rest.iter().fold(first.clone(), |acc, l| &acc & l);
            if common.is_empty() {
                return Some(format!(
                    "the `in` lists of `{attribute}` have no value in common"
                ));
            }
        }
        // Numeric bounds: (value, strict).
        let mut low: Option<(f64, bool)> = None;
        let mut high: Option<(f64, bool)> = None;
        for c in &list {
            let value = match (&c.operator, c.value.as_f64()) {
                (Operator::Eq, Some(v)) => {
                    tighten_low(&mut low, v, false);
                    tighten_high(&mut high, v, false);
                    continue;
                }
                (_, Some(v)) => v,
                _ => continue,
            };
            match c.operator {
                Operator::Gt => tighten_low(&mut low, value, true),
                Operator::Gte => tighten_low(&mut low, value, false),
                Operator::Lt => tighten_high(&mut high, value, true),
                Operator::Lte => tighten_high(&mut high, value, false),
                _ => {}
            }
        }
        if let (Some((l, ls)), Some((h, hs))) = (low, high)
            && (l > h || (l == h && (ls || hs)))
        {
            return Some(format!("no number satisfies every bound on `{attribute}`"));
        }
        let absent = list
            .iter()
            .any(|c| c.operator == Operator::Exists && c.value == Value::Bool(false));
        let present = list
            .iter()
            .any(|c| !(c.operator == Operator::Exists && c.value == Value::Bool(false)));
        if absent && present {
            return Some(format!("`{attribute}` must be absent and compared at once"));
        }
    }
    None
}

fn tighten_low(low: &mut Option<(f64, bool)>, v: f64, strict: bool) {
    match low {
        Some((l, s)) if *l > v || (*l == v && *s) => {}
        _ => *low = Some((v, strict)),
    }
}

fn tighten_high(high: &mut Option<(f64, bool)>, v: f64, strict: bool) {
    match high {
        Some((h, s)) if *h < v || (*h == v && *s) => {}
        _ => *high = Some((v, strict)),
    }
}

/// Every condition of `a` is among `b`'s: `b` is at least as restrictive.
fn conditions_subset(a: &[&Condition], b: &[&Condition]) -> bool {
    a.iter().all(|x| b.iter().any(|y| x == y))
}

/// Analyzes a bundle. Findings have paths; [`analyze_source`] adds lines. Works on bundles that
/// do not validate too (unknown names are skipped, cycles are harmless).
pub fn analyze(bundle: &Bundle) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut push = |kind, path: &str, message: String| {
        findings.push(Finding {
            kind,
            location: Location {
                path: path.to_string(),
                line: None,
            },
            message,
        });
    };

    let role_ids: HashMap<&str, RoleId> = bundle
        .roles
        .iter()
        .enumerate()
        .map(|(i, r)| (r.name.as_str(), RoleId::try_from(i).unwrap_or(RoleId::MAX)))
        .collect();
    let graph: Vec<Vec<RoleId>> = bundle
        .roles
        .iter()
        .map(|r| {
            r.inherits
                .iter()
                .filter_map(|n| role_ids.get(n.as_str()).copied())
                .collect()
        })
        .collect();
    let rules = rules_of(bundle, &role_ids);
    let mut budget = PAIR_BUDGET;

    // Contradictory conditions: the rule never applies.
    let mut never = vec![false; rules.len()];
    for (i, rule) in rules.iter().enumerate() {
        if let Some(why) = contradiction(&rule.conditions) {
            push(
                FindingKind::Contradiction,
                &rule.path,
                format!("{} can never apply: {why}", rule.label),
            );
            if let Some(flag) = never.get_mut(i) {
                *flag = true;
            }
        }
    }

    // Permit and deny rules that can overlap, reported once per deny rule.
    let live = |i: usize| !never.get(i).copied().unwrap_or(true);
    for (d, deny) in rules.iter().enumerate() {
        if deny.effect != Effect::Deny || !live(d) {
            continue;
        }
        let mut overlapping = Vec::new();
        for (p, permit) in rules.iter().enumerate() {
            if permit.effect != Effect::Permit || !live(p) {
                continue;
            }
            if budget == 0 {
                break;
            }
            budget -= 1;
            let mut both = deny.conditions.clone();
            both.extend(permit.conditions.iter().copied());
            if resources_overlap(&deny.resource, &permit.resource)
                && actions_overlap(&deny.actions, &permit.actions)
                && contradiction(&both).is_none()
            {
                overlapping.push(permit);
            }
        }
        if !overlapping.is_empty() {
            let mut named: Vec<String> = overlapping
                .iter()
                .take(NAMED)
                .map(|r| format!("{} ({})", r.label, r.path))
                .collect();
            if overlapping.len() > NAMED {
                named.push(format!("and {} more", overlapping.len() - NAMED));
            }
            let resolution = match bundle.combining {
                Combining::FirstApplicable => "the earlier rule wins (first-applicable)",
                Combining::PermitOverrides => "the permit wins (permit-overrides)",
                Combining::DenyUnlessPermit => "the permit wins (deny-unless-permit)",
                Combining::DenyOverrides | Combining::PermitUnlessDeny => "the deny wins",
            };
            push(
                FindingKind::Overlap,
                &deny.path,
                format!(
                    "{} (deny) can overlap with {}: {resolution}",
                    deny.label,
                    named.join(", ")
                ),
            );
        }
    }

    // Shadowed rules under first-applicable.
    if bundle.combining == Combining::FirstApplicable {
        for (later_i, later) in rules.iter().enumerate() {
            for earlier in rules.iter().take(later_i) {
                if budget == 0 {
                    break;
                }
                budget -= 1;
                if earlier.complete && shadows(earlier, later, &graph) {
                    push(
                        FindingKind::Shadowed,
                        &later.path,
                        format!(
                            "{} never applies under first-applicable: {} ({}) comes first and \
                             applies whenever it does",
                            later.label, earlier.label, earlier.path
                        ),
                    );
                    break;
                }
            }
        }
    }

    // Role permissions made redundant by the role's own or inherited permissions.
    let by_role: HashMap<RoleId, Vec<&RuleView<'_>>> =
        rules.iter().fold(HashMap::new(), |mut m, r| {
            if let Some(role) = r.role {
                m.entry(role).or_default().push(r);
            }
            m
        });
    for (i, _) in bundle.roles.iter().enumerate() {
        let me = RoleId::try_from(i).unwrap_or(RoleId::MAX);
        let Some(own) = by_role.get(&me) else {
            continue;
        };
        let closure = closure_of(&graph, [me]);
        for (k, perm) in own.iter().enumerate() {
            let mut found = None;
            'search: for &ancestor in &closure {
                for (q, other) in by_role
                    .get(&ancestor)
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .enumerate()
                {
                    if budget == 0 {
                        break 'search;
                    }
                    budget -= 1;
                    // Within the role itself only an earlier permission counts.
                    if ancestor == me && q >= k {
                        continue;
                    }
                    if resource_covers(&other.resource, &perm.resource)
                        && actions_cover(&other.actions, &perm.actions)
                        && conditions_subset(&other.conditions, &perm.conditions)
                    {
                        found = Some(*other);
                        break 'search;
                    }
                }
            }
            if let Some(other) = found {
                push(
                    FindingKind::Redundant,
                    &perm.path,
                    format!(
                        "{} is redundant: {} ({}) already grants it",
                        perm.label, other.label, other.path
                    ),
                );
            }
        }
    }

    // Roles bound to nobody.
    let bound = bundle
        .bindings
        .iter()
        .flat_map(|b| b.roles.iter())
        .filter_map(|name| role_ids.get(name.as_str()).copied());
    let reachable: BTreeSet<RoleId> = closure_of(&graph, bound).into_iter().collect();
    for (i, role) in bundle.roles.iter().enumerate() {
        let id = RoleId::try_from(i).unwrap_or(RoleId::MAX);
        if !reachable.contains(&id) {
            push(
                FindingKind::Unbound,
                &format!("roles[{i}]"),
                format!(
                    "role `{}` is bound to nobody in this bundle, directly or through inheritance \
                     (bindings the server stores still apply)",
                    role.name
                ),
            );
        }
    }

    // Obligations that never fire.
    for (p, policy) in bundle.policies.iter().enumerate() {
        for (o, obligation) in policy.obligations.iter().enumerate() {
            if obligation.on != policy.effect {
                push(
                    FindingKind::DeadObligation,
                    &format!("policies[{p}].obligations[{o}]"),
                    format!(
                        "obligation `{}` is on {} but policy `{}` only ever {}s",
                        obligation.id,
                        obligation.on.as_str(),
                        policy.id,
                        policy.effect.as_str()
                    ),
                );
            }
        }
    }

    if budget == 0 {
        push(
            FindingKind::Incomplete,
            "",
            format!("the bundle is large: analysis stopped after {PAIR_BUDGET} rule comparisons"),
        );
    }
    findings
}

/// Whether `earlier` applies whenever `later` does (so `later` never decides).
fn shadows(earlier: &RuleView<'_>, later: &RuleView<'_>, graph: &[Vec<RoleId>]) -> bool {
    let scope = match (&earlier.scope, &later.scope) {
        (Scope::Anyone, _) => true,
        // Members of `b` hold `a` when `b` is `a` or inherits it.
        (Scope::Role(a), Scope::Role(b)) => closure_of(graph, [*b]).binary_search(a).is_ok(),
        (Scope::Named(a), Scope::Named(b)) => a == b,
        _ => false,
    };
    scope
        && resource_covers(&earlier.resource, &later.resource)
        && actions_cover(&earlier.actions, &later.actions)
        && conditions_subset(&earlier.conditions, &later.conditions)
}

/// Parses `source` and analyzes it, with lines.
pub fn analyze_source(source: &str, origin: &str) -> Result<Vec<Finding>, LoadErrors> {
    let bundle = Bundle::parse(source, origin)?;
    let mut findings = analyze(&bundle);
    let index = LineIndex::new(source);
    for f in &mut findings {
        f.location.line = index.line_of(&f.location.path);
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(source: &str) -> Vec<Finding> {
        analyze_source(source, "t.yaml").unwrap()
    }

    fn kinds(source: &str) -> Vec<(FindingKind, String)> {
        findings(source)
            .into_iter()
            .map(|f| (f.kind, f.location.path))
            .collect()
    }

    #[test]
    fn overlapping_permit_and_deny_are_reported_with_lines() {
        let source = "version: 1\nroles:\n  - name: staff\n    permissions:\n      - { resource: \"doc:*\", actions: [read] }\nbindings:\n  - { subject: \"user:a\", roles: [staff] }\nacls:\n  - resource: \"doc:secret\"\n    entries:\n      - { subject: \"user:b\", actions: [read], effect: deny }\n";
        let f = findings(source);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::Overlap);
        assert_eq!(f[0].location.path, "acls[0].entries[0]");
        assert_eq!(f[0].location.line, Some(11));
        assert!(f[0].message.contains("roles[0].permissions[0]"));
    }

    #[test]
    fn disjoint_rules_do_not_overlap() {
        let source = r#"
version: 1
policies:
  - id: p
    effect: permit
    target: { resource: [ { attribute: resource.type, operator: eq, value: doc } ] }
  - id: d
    effect: deny
    target: { resource: [ { attribute: resource.type, operator: eq, value: secret } ] }
  - id: d2
    effect: deny
    target: { action: [ { attribute: action.name, operator: eq, value: delete } ] }
    condition: { attribute: resource.type, operator: eq, value: secret }
"#;
        let k = kinds(source);
        assert!(
            !k.iter().any(|(kind, _)| *kind == FindingKind::Overlap),
            "{k:?}"
        );
    }

    #[test]
    fn shadowed_and_contradictory_rules() {
        let source = r#"
version: 1
combining: first-applicable
policies:
  - id: broad
    effect: permit
    target: { resource: [ { attribute: resource.type, operator: eq, value: doc } ] }
  - id: narrow
    effect: deny
    target:
      resource: [ { attribute: resource.type, operator: eq, value: doc } ]
      subject: [ { attribute: subject.type, operator: eq, value: agent } ]
  - id: impossible
    effect: deny
    condition:
      all:
        - { attribute: context.hour, operator: gt, value: 18 }
        - { attribute: context.hour, operator: lt, value: 8 }
"#;
        let k = kinds(source);
        assert!(
            k.contains(&(FindingKind::Shadowed, "policies[1]".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&(FindingKind::Contradiction, "policies[2]".into())),
            "{k:?}"
        );
        assert!(
            !k.contains(&(FindingKind::Shadowed, "policies[2]".into())),
            "{k:?}"
        );
    }

    #[test]
    fn redundant_inherited_permission_and_unbound_role() {
        let source = r#"
version: 1
roles:
  - name: viewer
    permissions: [ { resource: "doc:**", actions: [read] } ]
  - name: editor
    inherits: [viewer]
    permissions:
      - { resource: "doc:a/*", actions: [read] }
      - { resource: "doc:a/*", actions: [read, write] }
  - name: orphan
bindings: [ { subject: "user:a", roles: [editor] } ]
"#;
        let k = kinds(source);
        assert!(
            k.contains(&(FindingKind::Redundant, "roles[1].permissions[0]".into())),
            "{k:?}"
        );
        assert!(
            !k.contains(&(FindingKind::Redundant, "roles[1].permissions[1]".into())),
            "{k:?}"
        );
        assert!(
            k.contains(&(FindingKind::Unbound, "roles[2]".into())),
            "{k:?}"
        );
        assert!(
            !k.contains(&(FindingKind::Unbound, "roles[0]".into())),
            "{k:?}"
        );
    }

    #[test]
    fn contradictions_of_each_kind() {
        let c = |attribute: &str, operator, value: Value| Condition {
            attribute: attribute.into(),
            operator,
            value,
        };
        use serde_json::json;
        let cases = [
            vec![
                c("context.a", Operator::Eq, json!("x")),
                c("context.a", Operator::Eq, json!("y")),
            ],
            vec![
                c("context.a", Operator::Eq, json!("x")),
                c("context.a", Operator::Neq, json!("x")),
            ],
            vec![
                c("context.a", Operator::Eq, json!("x")),
                c("context.a", Operator::In, json!(["y"])),
            ],
            vec![
                c("context.a", Operator::In, json!(["x"])),
                c("context.a", Operator::In, json!(["y"])),
            ],
            vec![
                c("context.a", Operator::Gte, json!(5)),
                c("context.a", Operator::Lt, json!(5)),
            ],
            vec![
                c("context.a", Operator::Exists, json!(false)),
                c("context.a", Operator::Eq, json!(1)),
            ],
        ];
        for case in &cases {
            let refs: Vec<&Condition> = case.iter().collect();
            assert!(contradiction(&refs).is_some(), "{case:?}");
        }
        let fine = [
            c("context.a", Operator::Gte, json!(5)),
            c("context.a", Operator::Lte, json!(5)),
        ];
        let refs: Vec<&Condition> = fine.iter().collect();
        assert!(contradiction(&refs).is_none());
    }

    #[test]
    fn dead_obligations() {
        let source = "version: 1\npolicies:\n  - id: p\n    effect: permit\n    obligations:\n      - { id: o, on: deny }\n";
        assert_eq!(
            kinds(source),
            vec![(
                FindingKind::DeadObligation,
                "policies[0].obligations[0]".into()
            )]
        );
    }

    #[test]
    fn analysis_of_cyclic_or_broken_bundles_terminates() {
        let source = "version: 1\nroles:\n  - { name: a, inherits: [b, ghost] }\n  - { name: b, inherits: [a] }\n";
        let k = kinds(source);
        assert_eq!(
            k.iter()
                .filter(|(kind, _)| *kind == FindingKind::Unbound)
                .count(),
            2
        );
    }
}
