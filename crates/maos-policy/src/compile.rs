//! Validation and compilation of a bundle into the indexed form a decision reads.
//!
//! Roles are flattened once (the transitive closure of `inherits`), role permissions are
//! indexed per declaring role by action and by literal resource prefix, ACL entries by subject
//! and resource, and policies by the action names their targets name. A decision then looks
//! only at the requester's roles and at the rules its action and resource can reach.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::{Arc, OnceLock};

use foldhash::HashMap;

use crate::bundle::{Bundle, Condition, Effect, Obligation};
use crate::condition::{AttributePath, CompiledCondition, CompiledTree};
use crate::error::{LoadError, LoadErrors};
use crate::locate::LineIndex;
use crate::pattern::Pattern;

/// A resource index with at most this many rules is scanned instead of hashed.
const SMALL_INDEX: usize = 8;
/// At most this many errors are reported for one bundle.
const MAX_ERRORS: usize = 500;

pub(crate) type RoleId = u32;

/// The actions a rule names: a list of exact names, or `*`.
#[derive(Clone, Debug)]
pub(crate) struct Actions {
    pub(crate) any: bool,
    pub(crate) names: Box<[Box<str>]>,
}

impl Actions {
    pub(crate) fn matches(&self, action: &str) -> bool {
        self.any || self.names.iter().any(|n| &**n == action)
    }

    pub(crate) fn describe(&self) -> String {
        if self.any {
            return "*".to_string();
        }
        self.names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug)]
pub(crate) struct PermissionRule {
    pub(crate) seq: u32,
    pub(crate) id: String,
    pub(crate) pattern: Pattern,
    pub(crate) actions: Actions,
    pub(crate) conditions: Vec<CompiledCondition>,
    pub(crate) reason: String,
}

#[derive(Debug)]
pub(crate) enum AclSubject {
    /// `type:id`: one subject.
    Subject(String),
    /// `role:name`: everyone holding the role.
    Role(RoleId),
}

#[derive(Debug)]
pub(crate) struct AclRule {
    pub(crate) seq: u32,
    pub(crate) id: String,
    pub(crate) pattern: Pattern,
    pub(crate) subject: AclSubject,
    pub(crate) actions: Actions,
    pub(crate) effect: Effect,
    pub(crate) reason: String,
}

#[derive(Debug)]
pub(crate) struct PolicyRule {
    pub(crate) seq: u32,
    pub(crate) id: String,
    pub(crate) effect: Effect,
    /// Target selectors with their part name (`target.subject`...).
    pub(crate) target: Vec<(&'static str, CompiledCondition)>,
    pub(crate) condition: Option<CompiledTree>,
    pub(crate) obligations: Vec<Obligation>,
    pub(crate) reason: String,
}

#[derive(Debug)]
pub(crate) struct CompiledRole {
    pub(crate) name: String,
    pub(crate) inherits: Vec<RoleId>,
    /// The permission rules this role declares (not inherited ones), in order.
    pub(crate) permissions: Vec<u32>,
    pub(crate) index: RoleIndex,
}

/// Rules found by the literal part of their resource pattern.
#[derive(Debug)]
pub(crate) enum ResourceIndex {
    Small(Vec<u32>),
    Large {
        exact: HashMap<Box<str>, Vec<u32>>,
        /// Wildcard patterns by their literal prefix.
        prefixed: HashMap<Box<str>, Vec<u32>>,
        /// The distinct prefix lengths in `prefixed`, ascending.
        lengths: Vec<usize>,
    },
}

impl ResourceIndex {
    fn build(items: Vec<(u32, &Pattern)>) -> ResourceIndex {
        if items.len() <= SMALL_INDEX {
            return ResourceIndex::Small(items.into_iter().map(|(id, _)| id).collect());
        }
        let mut exact: HashMap<Box<str>, Vec<u32>> = HashMap::default();
        let mut prefixed: HashMap<Box<str>, Vec<u32>> = HashMap::default();
        for (id, pattern) in items {
            let map = if pattern.is_exact() {
                &mut exact
            } else {
                &mut prefixed
            };
            map.entry(pattern.literal_prefix().into())
                .or_default()
                .push(id);
        }
        let lengths: BTreeSet<usize> = prefixed.keys().map(|k| k.len()).collect();
        ResourceIndex::Large {
            exact,
            prefixed,
            lengths: lengths.into_iter().collect(),
        }
    }

    /// Calls `f` with every rule whose pattern may match `resource`. Callers still match the
    /// pattern: the index narrows, it does not decide.
    pub(crate) fn for_each(&self, resource: &str, mut f: impl FnMut(u32)) {
        match self {
            ResourceIndex::Small(ids) => ids.iter().copied().for_each(f),
            ResourceIndex::Large {
                exact,
                prefixed,
                lengths,
            } => {
                if let Some(ids) = exact.get(resource) {
                    ids.iter().copied().for_each(&mut f);
                }
                for &len in lengths {
                    let Some(prefix) = resource.get(..len) else {
                        if len > resource.len() {
                            break;
                        }
                        continue;
                    };
                    if let Some(ids) = prefixed.get(prefix) {
                        ids.iter().copied().for_each(&mut f);
                    }
                }
            }
        }
    }
}

/// A role's own permissions, by action and resource.
#[derive(Debug)]
pub(crate) enum RoleIndex {
    Small(Vec<u32>),
    Large {
        by_action: HashMap<Box<str>, ResourceIndex>,
        any_action: ResourceIndex,
    },
}

impl RoleIndex {
    fn build(ids: &[u32], rules: &[PermissionRule]) -> RoleIndex {
        if ids.len() <= SMALL_INDEX {
            return RoleIndex::Small(ids.to_vec());
        }
        let mut by_action: HashMap<Box<str>, Vec<(u32, &Pattern)>> = HashMap::default();
        let mut any = Vec::new();
        for &id in ids {
            let Some(rule) = rules.get(id as usize) else {
                continue;
            };
            if rule.actions.any {
                any.push((id, &rule.pattern));
            } else {
                let unique: BTreeSet<&str> = rule.actions.names.iter().map(|n| &**n).collect();
                for name in unique {
                    by_action
                        .entry(name.into())
                        .or_default()
                        .push((id, &rule.pattern));
                }
            }
        }
        RoleIndex::Large {
            by_action: by_action
                .into_iter()
                .map(|(k, v)| (k, ResourceIndex::build(v)))
                .collect(),
            any_action: ResourceIndex::build(any),
        }
    }

    /// Calls `f` with every permission of this role that may apply to the action and resource.
    pub(crate) fn for_each(&self, action: &str, resource: &str, mut f: impl FnMut(u32)) {
        match self {
            RoleIndex::Small(ids) => ids.iter().copied().for_each(f),
            RoleIndex::Large {
                by_action,
                any_action,
            } => {
                if let Some(index) = by_action.get(action) {
                    index.for_each(resource, &mut f);
                }
                any_action.for_each(resource, f);
            }
        }
    }
}

/// Policies by the string value one of their conditions requires.
///
/// A policy is indexed by a target selector `eq`/`in` on string values, or by such a
/// condition at the top of its condition when its target is empty: when the request's
/// attribute is a string outside those values the policy is not applicable, so it is skipped.
/// When the attribute is missing or not a string, every policy indexed on it is evaluated
/// (it may be indeterminate).
#[derive(Debug, Default)]
pub(crate) struct PolicyIndex {
    pub(crate) paths: Vec<IndexedPath>,
    pub(crate) unindexed: Vec<u32>,
}

#[derive(Debug)]
pub(crate) struct IndexedPath {
    pub(crate) path: AttributePath,
    pub(crate) by_value: HashMap<Box<str>, Vec<u32>>,
    pub(crate) all: Vec<u32>,
}

impl PolicyIndex {
    fn build(policies: &[PolicyRule]) -> PolicyIndex {
        // The candidate keys of each policy.
        let keys: Vec<Vec<(&AttributePath, Vec<&str>)>> = policies
            .iter()
            .map(|policy| {
                let mut keys: Vec<(&AttributePath, Vec<&str>)> = policy
                    .target
                    .iter()
                    .filter_map(|(_, c)| c.required_strings().map(|v| (&c.path, v)))
                    .collect();
                if policy.target.is_empty() {
                    let top: Vec<&CompiledCondition> = match &policy.condition {
                        Some(CompiledTree::Leaf(c)) => vec![c],
                        Some(CompiledTree::All(items)) => items
                            .iter()
                            .filter_map(|t| match t {
                                CompiledTree::Leaf(c) => Some(c),
                                _ => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    keys.extend(
                        top.into_iter()
                            .filter_map(|c| c.required_strings().map(|v| (&c.path, v))),
                    );
                }
                keys
            })
            .collect();

        // Prefer the attribute with the most distinct values across the bundle.
        let mut distinct: std::collections::HashMap<&AttributePath, HashSet<&str>> =
            std::collections::HashMap::new();
        for (path, values) in keys.iter().flatten() {
            distinct
                .entry(path)
                .or_default()
                .extend(values.iter().copied());
        }

        let mut index = PolicyIndex::default();
        for (i, policy_keys) in keys.iter().enumerate() {
            let id = to_u32(i);
            let best = policy_keys
                .iter()
                .max_by_key(|(path, _)| distinct.get(path).map_or(0, HashSet::len));
            let Some((path, values)) = best else {
                index.unindexed.push(id);
                continue;
            };
            let slot = match index.paths.iter().position(|p| &p.path == *path) {
                Some(slot) => slot,
                None => {
                    index.paths.push(IndexedPath {
                        path: (*path).clone(),
                        by_value: HashMap::default(),
                        all: Vec::new(),
                    });
                    index.paths.len() - 1
                }
            };
            if let Some(entry) = index.paths.get_mut(slot) {
                entry.all.push(id);
                let unique: BTreeSet<&str> = values.iter().copied().collect();
                for value in unique {
                    entry.by_value.entry(value.into()).or_default().push(id);
                }
            }
        }
        index
    }
}

/// A bound subject.
#[derive(Debug)]
pub(crate) struct Bound {
    /// Its roles and everything they inherit, sorted.
    pub(crate) effective: Arc<[RoleId]>,
    /// Its entry in the bundle's `bindings`.
    pub(crate) binding: u32,
}

/// The compiled bundle.
pub(crate) struct Compiled {
    pub(crate) role_ids: HashMap<Box<str>, RoleId>,
    pub(crate) roles: Vec<CompiledRole>,
    /// Per role, its closure (itself and everything it inherits), sorted; filled on first use.
    pub(crate) closures: Vec<OnceLock<Arc<[RoleId]>>>,
    /// Subject (`type:id`) to its effective roles.
    pub(crate) bindings: HashMap<Box<str>, Bound>,
    pub(crate) permissions: Vec<PermissionRule>,
    pub(crate) acls: Vec<AclRule>,
    pub(crate) acl_by_subject: HashMap<Box<str>, ResourceIndex>,
    pub(crate) acl_by_role: HashMap<RoleId, ResourceIndex>,
    pub(crate) policies: Vec<PolicyRule>,
    pub(crate) policy_index: PolicyIndex,
}

/// Collects errors as (path, message) while compiling.
struct Errors(Vec<(String, String)>);

impl Errors {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        if self.0.len() < MAX_ERRORS {
            self.0.push((path.into(), message.into()));
        }
    }
}

/// `type:id` with both parts non-empty.
fn check_subject(subject: &str) -> Result<(), String> {
    match subject.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Ok(()),
        _ => Err(format!("subject `{subject}` is not of the form `type:id`")),
    }
}

fn compile_actions(actions: &[String], path: &str, errors: &mut Errors) -> Actions {
    if actions.is_empty() {
        errors.push(path, "`actions` is empty: name at least one action or `*`");
    }
    for (i, a) in actions.iter().enumerate() {
        if a.is_empty() {
            errors.push(format!("{path}[{i}]"), "empty action name");
        } else if a.contains('*') && a != "*" {
            errors.push(
                format!("{path}[{i}]"),
                format!("action `{a}`: actions are exact names or `*`, not patterns"),
            );
        }
    }
    let any = actions.iter().any(|a| a == "*");
    let names = if any {
        Box::default()
    } else {
        actions.iter().map(|a| a.as_str().into()).collect()
    };
    Actions { any, names }
}

fn compile_conditions(
    list: &[Condition],
    path: &str,
    errors: &mut Errors,
) -> Vec<CompiledCondition> {
    let mut out = Vec::with_capacity(list.len());
    for (i, c) in list.iter().enumerate() {
        match CompiledCondition::compile(c) {
            Ok(c) => out.push(c),
            Err(message) => errors.push(format!("{path}[{i}]"), message),
        }
    }
    out
}

fn compile_pattern(text: &str, path: &str, errors: &mut Errors) -> Pattern {
    match Pattern::new(text) {
        Ok(p) => p,
        Err(e) => {
            errors.push(path, e.to_string());
            // Never used: a bundle with errors is rejected.
            Pattern::placeholder()
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Finds the inheritance cycles, each as the list of roles on it (first role repeated at the
/// end). Iterative, so long chains cannot overflow the stack.
pub(crate) fn find_cycles(graph: &[Vec<RoleId>]) -> Vec<Vec<RoleId>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Color {
        White,
        Grey,
        Black,
    }
    let mut color = vec![Color::White; graph.len()];
    let mut cycles = Vec::new();
    let mut seen_cycles: HashSet<Vec<RoleId>> = HashSet::new();
    for start in 0..graph.len() {
        if color.get(start) != Some(&Color::White) {
            continue;
        }
        // Stack of (node, next edge to follow).
        let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
        if let Some(c) = color.get_mut(start) {
            *c = Color::Grey;
        }
        while let Some(&mut (node, ref mut edge)) = stack.last_mut() {
            let next = graph.get(node).and_then(|edges| edges.get(*edge)).copied();
            *edge += 1;
            match next {
                None => {
                    if let Some(c) = color.get_mut(node) {
                        *c = Color::Black;
                    }
                    stack.pop();
                }
                Some(next) => {
                    let next = next as usize;
                    match color.get(next) {
                        Some(Color::White) => {
                            if let Some(c) = color.get_mut(next) {
                                *c = Color::Grey;
                            }
                            stack.push((next, 0));
                        }
                        Some(Color::Grey) => {
                            let from = stack.iter().position(|&(n, _)| n == next).unwrap_or(0);
                            let mut cycle: Vec<RoleId> = stack
                                .get(from..)
                                .unwrap_or_default()
                                .iter()
                                .map(|&(n, _)| to_u32(n))
                                .collect();
                            let mut key = cycle.clone();
                            key.sort_unstable();
                            if seen_cycles.insert(key) {
                                cycle.push(to_u32(next));
                                cycles.push(cycle);
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
    cycles
}

/// The closure of `start` over `inherits`, sorted. Cycle-safe.
pub(crate) fn closure_of(
    graph: &[Vec<RoleId>],
    start: impl IntoIterator<Item = RoleId>,
) -> Vec<RoleId> {
    let mut seen: HashSet<RoleId> = HashSet::new();
    let mut queue: VecDeque<RoleId> = VecDeque::new();
    for r in start {
        if seen.insert(r) {
            queue.push_back(r);
        }
    }
    while let Some(r) = queue.pop_front() {
        for &next in graph.get(r as usize).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(next) {
                queue.push_back(next);
            }
        }
    }
    let mut out: Vec<RoleId> = seen.into_iter().collect();
    out.sort_unstable();
    out
}

/// Validates and compiles. `source` (when known) gives errors their lines.
pub(crate) fn compile(
    bundle: &Bundle,
    origin: &str,
    source: Option<&str>,
) -> Result<Compiled, LoadErrors> {
    let mut errors = Errors(Vec::new());

    if bundle.version != 1 {
        errors.push(
            "version",
            format!(
                "unsupported bundle version {}: this engine reads version 1",
                bundle.version
            ),
        );
    }

    // Roles: names, inheritance, cycles.
    let mut role_ids: HashMap<Box<str>, RoleId> = HashMap::default();
    for (i, role) in bundle.roles.iter().enumerate() {
        if role.name.is_empty() {
            errors.push(format!("roles[{i}].name"), "role name is empty");
        }
        if let Some(&first) = role_ids.get(role.name.as_str()) {
            errors.push(
                format!("roles[{i}].name"),
                format!(
                    "duplicate role name `{}` (first defined at roles[{first}])",
                    role.name
                ),
            );
        } else {
            role_ids.insert(role.name.as_str().into(), to_u32(i));
        }
    }
    let lookup_role = |name: &str| role_ids.get(name).copied();

    let mut graph: Vec<Vec<RoleId>> = Vec::with_capacity(bundle.roles.len());
    for (i, role) in bundle.roles.iter().enumerate() {
        let mut edges = Vec::new();
        for (k, parent) in role.inherits.iter().enumerate() {
            match lookup_role(parent) {
                Some(id) => edges.push(id),
                None => errors.push(
                    format!("roles[{i}].inherits[{k}]"),
                    format!("role `{}` inherits unknown role `{parent}`", role.name),
                ),
            }
        }
        graph.push(edges);
    }
    let name_of = |id: RoleId| {
        bundle
            .roles
            .get(id as usize)
            .map_or("?", |r| r.name.as_str())
    };
    for cycle in find_cycles(&graph) {
        let first = cycle.first().copied().unwrap_or(0);
        let text: Vec<&str> = cycle.iter().map(|&r| name_of(r)).collect();
        errors.push(
            format!("roles[{first}].inherits"),
            format!("inheritance cycle: {}", text.join(" -> ")),
        );
    }

    // Role permissions, in document order: they come first in the rule order.
    let mut seq: u32 = 0;
    let mut next_seq = || {
        let s = seq;
        seq = seq.saturating_add(1);
        s
    };
    let mut permissions = Vec::new();
    let mut role_permissions: Vec<Vec<u32>> = Vec::with_capacity(bundle.roles.len());
    for (i, role) in bundle.roles.iter().enumerate() {
        let mut own = Vec::with_capacity(role.permissions.len());
        for (j, permission) in role.permissions.iter().enumerate() {
            let path = format!("roles[{i}].permissions[{j}]");
            let pattern = compile_pattern(
                &permission.resource,
                &format!("{path}.resource"),
                &mut errors,
            );
            let actions =
                compile_actions(&permission.actions, &format!("{path}.actions"), &mut errors);
            let conditions = compile_conditions(
                &permission.conditions,
                &format!("{path}.conditions"),
                &mut errors,
            );
            let id = format!("{}.permissions[{j}]", role.name);
            let reason = format!(
                "role `{}` grants {} on `{}` ({id})",
                role.name,
                actions.describe(),
                pattern
            );
            own.push(to_u32(permissions.len()));
            permissions.push(PermissionRule {
                seq: next_seq(),
                id,
                pattern,
                actions,
                conditions,
                reason,
            });
        }
        role_permissions.push(own);
    }

    // Bindings. Effective roles per bound subject; subjects with the same roles share one list.
    let mut bindings: HashMap<Box<str>, Bound> = HashMap::default();
    bindings.reserve(bundle.bindings.len());
    let mut shared: HashMap<Vec<RoleId>, Arc<[RoleId]>> = HashMap::default();
    for (b, binding) in bundle.bindings.iter().enumerate() {
        let path = || format!("bindings[{b}]");
        if let Err(message) = check_subject(&binding.subject) {
            errors.push(format!("{}.subject", path()), message);
        } else if binding.subject.starts_with("role:") {
            errors.push(
                format!("{}.subject", path()),
                format!(
                    "`{}` names a role; bind subjects, and use `inherits` between roles",
                    binding.subject
                ),
            );
        }
        if let Some(first) = bindings.get(binding.subject.as_str()) {
            errors.push(
                format!("{}.subject", path()),
                format!(
                    "subject `{}` is bound twice (also at bindings[{}])",
                    binding.subject, first.binding
                ),
            );
            continue;
        }
        let mut ids = Vec::with_capacity(binding.roles.len());
        for (k, name) in binding.roles.iter().enumerate() {
            match lookup_role(name) {
                Some(id) => ids.push(id),
                None => errors.push(
                    format!("{}.roles[{k}]", path()),
                    format!(
                        "subject `{}` is bound to unknown role `{name}`",
                        binding.subject
                    ),
                ),
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let effective = match shared.get(&ids) {
            Some(effective) => effective.clone(),
            None => {
                let effective: Arc<[RoleId]> = closure_of(&graph, ids.iter().copied()).into();
                shared.insert(ids, effective.clone());
                effective
            }
        };
        bindings.insert(
            binding.subject.as_str().into(),
            Bound {
                effective,
                binding: to_u32(b),
            },
        );
    }

    // Constraints.
    for (i, role) in bundle.roles.iter().enumerate() {
        let me = to_u32(i);
        for (c, constraint) in role.constraints.iter().enumerate() {
            let path = format!("roles[{i}].constraints[{c}]");
            match constraint {
                crate::bundle::Constraint::MutuallyExclusive { roles } => {
                    for (k, other) in roles.iter().enumerate() {
                        let Some(other_id) = lookup_role(other) else {
                            errors.push(
                                format!("{path}.roles[{k}]"),
                                format!("constraint names unknown role `{other}`"),
                            );
                            continue;
                        };
                        if other_id == me {
                            errors.push(
                                format!("{path}.roles[{k}]"),
                                format!("role `{other}` cannot exclude itself"),
                            );
                            continue;
                        }
                        for (b, binding) in bundle.bindings.iter().enumerate() {
                            let Some(Bound { effective, .. }) =
                                bindings.get(binding.subject.as_str())
                            else {
                                continue;
                            };
                            if effective.binary_search(&me).is_ok()
                                && effective.binary_search(&other_id).is_ok()
                            {
                                errors.push(
                                    format!("bindings[{b}]"),
                                    format!(
                                        "subject `{}` holds mutually exclusive roles `{}` and \
                                         `{other}` ({path})",
                                        binding.subject, role.name
                                    ),
                                );
                            }
                        }
                    }
                }
                crate::bundle::Constraint::MaxMembers { value } => {
                    let members: Vec<&str> = bundle
                        .bindings
                        .iter()
                        .filter(|b| b.roles.iter().any(|r| r == &role.name))
                        .map(|b| b.subject.as_str())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect();
                    if members.len() as u64 > *value {
                        let shown: Vec<String> =
                            members.iter().take(5).map(|s| format!("`{s}`")).collect();
                        let more = if members.len() > 5 { ", ..." } else { "" };
                        errors.push(
                            path,
                            format!(
                                "role `{}` has {} members ({}{more}), more than max_members {value}",
                                role.name,
                                members.len(),
                                shown.join(", ")
                            ),
                        );
                    }
                }
            }
        }
    }

    // ACL entries come after role permissions in the rule order.
    let mut acls = Vec::new();
    for (a, acl) in bundle.acls.iter().enumerate() {
        let pattern_path = format!("acls[{a}].resource");
        let pattern = compile_pattern(&acl.resource, &pattern_path, &mut errors);
        if acl.entries.is_empty() {
            errors.push(format!("acls[{a}].entries"), "ACL has no entries");
        }
        for (e, entry) in acl.entries.iter().enumerate() {
            let path = format!("acls[{a}].entries[{e}]");
            let subject = match entry.subject.strip_prefix("role:") {
                Some(name) => match lookup_role(name) {
                    Some(id) => AclSubject::Role(id),
                    None => {
                        errors.push(
                            format!("{path}.subject"),
                            format!("ACL entry names unknown role `{name}`"),
                        );
                        AclSubject::Role(RoleId::MAX)
                    }
                },
                None => {
                    if let Err(message) = check_subject(&entry.subject) {
                        errors.push(format!("{path}.subject"), message);
                    }
                    AclSubject::Subject(entry.subject.clone())
                }
            };
            let actions = compile_actions(&entry.actions, &format!("{path}.actions"), &mut errors);
            let id = format!("acls[{a}].entries[{e}]");
            let verb = match entry.effect {
                Effect::Permit => "permits",
                Effect::Deny => "denies",
            };
            let reason = format!(
                "ACL of `{}` {verb} {} to `{}` ({id})",
                acl.resource,
                actions.describe(),
                entry.subject
            );
            acls.push(AclRule {
                seq: next_seq(),
                id,
                pattern: pattern.clone(),
                subject,
                actions,
                effect: entry.effect,
                reason,
            });
        }
    }

    // Policies come last in the rule order.
    let mut policies = Vec::new();
    let mut policy_at: HashMap<&str, usize> = HashMap::default();
    for (p, policy) in bundle.policies.iter().enumerate() {
        let path = format!("policies[{p}]");
        if policy.id.is_empty() {
            errors.push(format!("{path}.id"), "policy id is empty");
        }
        if let Some(first) = policy_at.insert(policy.id.as_str(), p) {
            errors.push(
                format!("{path}.id"),
                format!(
                    "duplicate policy id `{}` (also at policies[{first}])",
                    policy.id
                ),
            );
        }
        let mut target = Vec::new();
        for (category, i, condition) in policy.target.selectors() {
            match CompiledCondition::compile(condition) {
                Ok(c) => target.push((target_part(category), c)),
                Err(message) => errors.push(format!("{path}.target.{category}[{i}]"), message),
            }
        }
        let condition = policy.condition.as_ref().and_then(|tree| {
            let mut tree_errors = Vec::new();
            let compiled =
                CompiledTree::compile(tree, &format!("{path}.condition"), 0, &mut tree_errors);
            for (at, message) in tree_errors {
                errors.push(at, message);
            }
            compiled
        });
        let mut obligation_ids = HashSet::new();
        for (o, obligation) in policy.obligations.iter().enumerate() {
            if obligation.id.is_empty() {
                errors.push(
                    format!("{path}.obligations[{o}].id"),
                    "obligation id is empty",
                );
            } else if !obligation_ids.insert((obligation.id.as_str(), obligation.on)) {
                errors.push(
                    format!("{path}.obligations[{o}].id"),
                    format!(
                        "duplicate obligation `{}` in policy `{}`",
                        obligation.id, policy.id
                    ),
                );
            }
        }
        let verb = match policy.effect {
            Effect::Permit => "permitted",
            Effect::Deny => "denied",
        };
        policies.push(PolicyRule {
            seq: next_seq(),
            id: policy.id.clone(),
            effect: policy.effect,
            target,
            condition,
            obligations: policy.obligations.clone(),
            reason: format!("{verb} by policy `{}`", policy.id),
        });
    }

    // Tests: unique names.
    let mut test_at: HashMap<&str, usize> = HashMap::default();
    for (t, test) in bundle.tests.iter().enumerate() {
        if let Some(first) = test_at.insert(test.name.as_str(), t) {
            errors.push(
                format!("tests[{t}].name"),
                format!(
                    "duplicate test name `{}` (also at tests[{first}])",
                    test.name
                ),
            );
        }
    }

    if !errors.0.is_empty() {
        let index = source.map(LineIndex::new);
        let errors = errors
            .0
            .into_iter()
            .map(|(path, message)| {
                let line = index.as_ref().and_then(|ix| ix.line_of(&path));
                LoadError::new(origin, &path, line, &message)
            })
            .collect();
        return Err(LoadErrors { errors });
    }

    // Indexes. Closures of single roles (for the caller's extra roles) are computed on first
    // use: a long inheritance chain costs nothing until it is needed.
    let closures = (0..graph.len()).map(|_| OnceLock::new()).collect();
    let roles = bundle
        .roles
        .iter()
        .zip(role_permissions)
        .zip(graph)
        .map(|((role, own), inherits)| CompiledRole {
            name: role.name.clone(),
            index: RoleIndex::build(&own, &permissions),
            permissions: own,
            inherits,
        })
        .collect();

    let mut acl_subject_items: HashMap<Box<str>, Vec<(u32, &Pattern)>> = HashMap::default();
    let mut acl_role_items: HashMap<RoleId, Vec<(u32, &Pattern)>> = HashMap::default();
    for (i, rule) in acls.iter().enumerate() {
        let item = (to_u32(i), &rule.pattern);
        match &rule.subject {
            AclSubject::Subject(s) => acl_subject_items
                .entry(s.as_str().into())
                .or_default()
                .push(item),
            AclSubject::Role(r) => acl_role_items.entry(*r).or_default().push(item),
        }
    }
    let acl_by_subject = acl_subject_items
        .into_iter()
        .map(|(k, v)| (k, ResourceIndex::build(v)))
        .collect();
    let acl_by_role = acl_role_items
        .into_iter()
        .map(|(k, v)| (k, ResourceIndex::build(v)))
        .collect();

    let policy_index = PolicyIndex::build(&policies);
    Ok(Compiled {
        role_ids,
        roles,
        closures,
        bindings,
        permissions,
        acls,
        acl_by_subject,
        acl_by_role,
        policies,
        policy_index,
    })
}

fn target_part(category: &str) -> &'static str {
    match category {
        "subject" => "target.subject",
        "resource" => "target.resource",
        "action" => "target.action",
        _ => "target.environment",
    }
}
