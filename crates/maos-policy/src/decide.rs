//! The decision point: evaluation of requests against a compiled bundle, and combining.

use std::collections::{HashSet, VecDeque};
use std::fmt;

use maos_core::Request;

use crate::bundle::{Bundle, Combining, Effect, Obligation};
use crate::compile::{self, AclSubject, Compiled, RoleId};
use crate::condition::{EvaluatedCondition, Truth, eval_all};
use crate::error::LoadErrors;
use crate::response::{
    DecisionOptions, Determining, Outcome, Response, RuleKind, RuleResult, TestOutcome, Trace,
    TracedRole, TracedRule,
};

/// A compiled, immutable bundle that answers authorization requests. Cheap to share as
/// `Arc<DecisionPoint>`; deciding takes `&self` and never clones the bundle.
pub struct DecisionPoint {
    bundle: Bundle,
    compiled: Compiled,
}

impl fmt::Debug for DecisionPoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionPoint")
            .field("combining", &self.bundle.combining)
            .field("roles", &self.bundle.roles.len())
            .field("bindings", &self.bundle.bindings.len())
            .field("permissions", &self.compiled.permissions.len())
            .field("acl_entries", &self.compiled.acls.len())
            .field("policies", &self.compiled.policies.len())
            .finish()
    }
}

/// Which rule an evaluation refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RuleRef {
    Permission(u32),
    Acl(u32),
    Policy(u32),
}

/// A rule that applied (or could not be evaluated).
#[derive(Clone, Copy, Debug)]
struct Hit {
    seq: u32,
    rule: RuleRef,
    effect: Effect,
    indeterminate: bool,
}

fn hit(seq: u32, rule: RuleRef, effect: Effect, truth: Truth) -> Option<Hit> {
    match truth {
        Truth::True => Some(Hit {
            seq,
            rule,
            effect,
            indeterminate: false,
        }),
        Truth::Indeterminate => Some(Hit {
            seq,
            rule,
            effect,
            indeterminate: true,
        }),
        Truth::False => None,
    }
}

fn result_of(effect: Effect, truth: Truth) -> RuleResult {
    match (truth, effect) {
        (Truth::True, Effect::Permit) => RuleResult::Permit,
        (Truth::True, Effect::Deny) => RuleResult::Deny,
        (Truth::False, _) => RuleResult::NotApplicable,
        (Truth::Indeterminate, _) => RuleResult::Indeterminate,
    }
}

/// Which hits determine the outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pick {
    Nothing,
    /// The first hit in document order.
    First,
    Permits,
    /// Deny hits, including indeterminate ones.
    Denies,
    /// Deny hits that were evaluated.
    FirmDenies,
    Indeterminate,
}

impl Pick {
    fn takes(self, index: usize, h: &Hit) -> bool {
        match self {
            Pick::Nothing => false,
            Pick::First => index == 0,
            Pick::Permits => h.effect == Effect::Permit && !h.indeterminate,
            Pick::Denies => h.effect == Effect::Deny,
            Pick::FirmDenies => h.effect == Effect::Deny && !h.indeterminate,
            Pick::Indeterminate => h.indeterminate,
        }
    }
}

/// Combines the hits (sorted by document order) by the bundle's algorithm. Returns the
/// outcome, the decision and which hits determined it.
fn combine(algorithm: Combining, hits: &[Hit]) -> (Outcome, bool, Pick) {
    let any = |pick: Pick| hits.iter().enumerate().any(|(i, h)| pick.takes(i, h));
    // Under every algorithm but first-applicable an erroring deny rule still denies:
    // indeterminate never grants, and the bundle fails closed.
    let (permits, denies) = (any(Pick::Permits), any(Pick::Denies));
    let indeterminate = any(Pick::Indeterminate);

    match algorithm {
        Combining::DenyOverrides => {
            if denies {
                (Outcome::Deny, false, Pick::Denies)
            } else if permits {
                (Outcome::Permit, true, Pick::Permits)
            } else if indeterminate {
                (Outcome::Indeterminate, false, Pick::Indeterminate)
            } else {
                (Outcome::NotApplicable, false, Pick::Nothing)
            }
        }
        Combining::PermitOverrides => {
            if permits {
                (Outcome::Permit, true, Pick::Permits)
            } else if any(Pick::FirmDenies) {
                (Outcome::Deny, false, Pick::FirmDenies)
            } else if indeterminate {
                (Outcome::Indeterminate, false, Pick::Indeterminate)
            } else {
                (Outcome::NotApplicable, false, Pick::Nothing)
            }
        }
        Combining::FirstApplicable => match hits.first() {
            Some(h) if h.indeterminate => (Outcome::Indeterminate, false, Pick::First),
            Some(h) if h.effect == Effect::Permit => (Outcome::Permit, true, Pick::First),
            Some(_) => (Outcome::Deny, false, Pick::First),
            None => (Outcome::NotApplicable, false, Pick::Nothing),
        },
        Combining::DenyUnlessPermit => {
            if permits {
                (Outcome::Permit, true, Pick::Permits)
            } else if denies {
                (Outcome::Deny, false, Pick::Denies)
            } else if indeterminate {
                (Outcome::Indeterminate, false, Pick::Indeterminate)
            } else {
                (Outcome::NotApplicable, false, Pick::Nothing)
            }
        }
        Combining::PermitUnlessDeny => {
            if denies {
                (Outcome::Deny, false, Pick::Denies)
            } else if permits {
                (Outcome::Permit, true, Pick::Permits)
            } else if indeterminate {
                (Outcome::Indeterminate, true, Pick::Indeterminate)
            } else {
                (Outcome::NotApplicable, true, Pick::Nothing)
            }
        }
    }
}

/// `type:id`, built without the formatting machinery.
fn qualified(kind: &str, id: &str) -> String {
    let mut s = String::with_capacity(kind.len() + 1 + id.len());
    s.push_str(kind);
    s.push(':');
    s.push_str(id);
    s
}

impl DecisionPoint {
    /// Parses, validates and compiles a bundle from YAML or JSON text.
    pub fn load(source: &str, origin: &str) -> Result<DecisionPoint, LoadErrors> {
        let bundle = Bundle::parse(source, origin)?;
        let compiled = compile::compile(&bundle, origin, Some(source))?;
        Ok(DecisionPoint { bundle, compiled })
    }

    /// Validates and compiles a parsed bundle. Errors carry paths but no lines.
    pub fn compile(bundle: Bundle) -> Result<DecisionPoint, LoadErrors> {
        let compiled = compile::compile(&bundle, "bundle", None)?;
        Ok(DecisionPoint { bundle, compiled })
    }

    /// The bundle this decision point was compiled from.
    pub fn bundle(&self) -> &Bundle {
        &self.bundle
    }

    /// Decides a request with the bundle's bindings only.
    pub fn decide(&self, request: &Request) -> Response {
        self.decide_with(request, &DecisionOptions::default())
    }

    /// Decides a request, with roles from the caller's own bindings and optionally a trace.
    pub fn decide_with(&self, request: &Request, options: &DecisionOptions) -> Response {
        // Patterns see `type:id` while conditions see `type` and `id` apart; a `:` in a type
        // would let the two disagree (`secret:prod` + `db` matches `secret:**` but not
        // `resource.type eq secret`). Such a request names nothing unambiguously: deny it.
        if let Some(reason) = ambiguous_type(request) {
            return Response {
                decision: false,
                determining: Vec::new(),
                obligations: Vec::new(),
                reasons: vec![reason],
                trace: None,
            };
        }
        if options.explain {
            return self.explain(request, options);
        }
        let c = &self.compiled;
        let subject = qualified(&request.subject.kind, &request.subject.id);
        let resource = qualified(&request.resource.kind, &request.resource.id);
        let action = request.action.name.as_str();

        let bound = c.bindings.get(subject.as_str()).map(|b| &*b.effective);
        let owned;
        let roles: &[RoleId] = if options.extra_roles.is_empty() {
            bound.unwrap_or_default()
        } else {
            owned = self.with_extra_roles(bound, &options.extra_roles);
            &owned
        };

        let mut hits: Vec<Hit> = Vec::new();

        // Role permissions of the subject's roles.
        for &role in roles {
            let Some(compiled_role) = c.roles.get(role as usize) else {
                continue;
            };
            compiled_role.index.for_each(action, &resource, |id| {
                let Some(rule) = c.permissions.get(id as usize) else {
                    return;
                };
                if rule.actions.matches(action) && rule.pattern.matches(&resource) {
                    let truth = eval_all(&rule.conditions, request, None);
                    hits.extend(hit(
                        rule.seq,
                        RuleRef::Permission(id),
                        Effect::Permit,
                        truth,
                    ));
                }
            });
        }

        // ACL entries naming the subject or one of its roles.
        let mut acl_hit = |id: u32| {
            let Some(rule) = c.acls.get(id as usize) else {
                return;
            };
            if rule.actions.matches(action) && rule.pattern.matches(&resource) {
                hits.push(Hit {
                    seq: rule.seq,
                    rule: RuleRef::Acl(id),
                    effect: rule.effect,
                    indeterminate: false,
                });
            }
        };
        if let Some(index) = c.acl_by_subject.get(subject.as_str()) {
            index.for_each(&resource, &mut acl_hit);
        }
        if !c.acl_by_role.is_empty() {
            for role in roles {
                if let Some(index) = c.acl_by_role.get(role) {
                    index.for_each(&resource, &mut acl_hit);
                }
            }
        }

        // Policies the index cannot rule out.
        let mut policy_hit = |id: u32| {
            let Some(policy) = c.policies.get(id as usize) else {
                return;
            };
            let truth = self.eval_policy(id, request, None);
            hits.extend(hit(policy.seq, RuleRef::Policy(id), policy.effect, truth));
        };
        for indexed in &c.policy_index.paths {
            let candidates = match indexed.path.resolve_str(request) {
                Ok(value) => indexed
                    .by_value
                    .get(value)
                    .map(Vec::as_slice)
                    .unwrap_or_default(),
                Err(()) => &indexed.all,
            };
            candidates.iter().copied().for_each(&mut policy_hit);
        }
        c.policy_index
            .unindexed
            .iter()
            .copied()
            .for_each(&mut policy_hit);

        self.respond(request, hits, None)
    }

    /// Runs the bundle's own tests.
    pub fn run_tests(&self) -> Vec<TestOutcome> {
        self.bundle
            .tests
            .iter()
            .map(|test| {
                let actual = self.decide(&test.request);
                let expected = test.expect.as_bool();
                TestOutcome {
                    name: test.name.clone(),
                    passed: actual.decision == expected,
                    expected,
                    actual,
                }
            })
            .collect()
    }

    /// The subject's bound roles plus `extra` (by name) and everything they inherit, sorted.
    fn with_extra_roles(&self, bound: Option<&[RoleId]>, extra: &[String]) -> Vec<RoleId> {
        let c = &self.compiled;
        let mut all: Vec<RoleId> = bound.unwrap_or_default().to_vec();
        for name in extra {
            let Some(&id) = c.role_ids.get(name.as_str()) else {
                continue;
            };
            let Some(slot) = c.closures.get(id as usize) else {
                continue;
            };
            let closure = slot.get_or_init(|| self.closure(vec![id]).into());
            all.extend(closure.iter().copied());
        }
        all.sort_unstable();
        all.dedup();
        all
    }

    fn closure(&self, start: Vec<RoleId>) -> Vec<RoleId> {
        let roles = &self.compiled.roles;
        let mut seen: HashSet<RoleId> = start.iter().copied().collect();
        let mut queue: VecDeque<RoleId> = start.into_iter().collect();
        while let Some(r) = queue.pop_front() {
            for &next in roles
                .get(r as usize)
                .map(|r| r.inherits.as_slice())
                .unwrap_or_default()
            {
                if seen.insert(next) {
                    queue.push_back(next);
                }
            }
        }
        let mut out: Vec<RoleId> = seen.into_iter().collect();
        out.sort_unstable();
        out
    }

    /// Target, then condition: false anywhere is not applicable, an error is indeterminate.
    fn eval_policy(
        &self,
        id: u32,
        request: &Request,
        mut trace: Option<&mut Vec<EvaluatedCondition>>,
    ) -> Truth {
        let Some(policy) = self.compiled.policies.get(id as usize) else {
            return Truth::False;
        };
        let mut target = Truth::True;
        for (part, selector) in &policy.target {
            let truth = match trace.as_deref_mut() {
                Some(sink) => selector.eval_traced(request, part, sink),
                None => selector.eval(request),
            };
            match truth {
                Truth::False => return Truth::False,
                Truth::Indeterminate => target = Truth::Indeterminate,
                Truth::True => {}
            }
        }
        if target == Truth::Indeterminate {
            return Truth::Indeterminate;
        }
        match &policy.condition {
            Some(tree) => tree.eval(request, &mut trace),
            None => Truth::True,
        }
    }

    fn rule_info(&self, rule: RuleRef) -> (RuleKind, &str, &str) {
        let c = &self.compiled;
        match rule {
            RuleRef::Permission(i) => c
                .permissions
                .get(i as usize)
                .map_or((RuleKind::Permission, "", ""), |r| {
                    (RuleKind::Permission, &r.id, &r.reason)
                }),
            RuleRef::Acl(i) => c.acls.get(i as usize).map_or((RuleKind::Acl, "", ""), |r| {
                (RuleKind::Acl, &r.id, &r.reason)
            }),
            RuleRef::Policy(i) => c
                .policies
                .get(i as usize)
                .map_or((RuleKind::Policy, "", ""), |r| {
                    (RuleKind::Policy, &r.id, &r.reason)
                }),
        }
    }

    /// The attribute that made a rule indeterminate, for the reason text.
    fn indeterminate_attribute(&self, rule: RuleRef, request: &Request) -> Option<String> {
        let c = &self.compiled;
        match rule {
            RuleRef::Permission(i) => c.permissions.get(i as usize).and_then(|r| {
                r.conditions
                    .iter()
                    .find(|cond| cond.eval(request) == Truth::Indeterminate)
                    .map(|cond| cond.source.attribute.clone())
            }),
            RuleRef::Acl(_) => None,
            RuleRef::Policy(i) => {
                let mut sink = Vec::new();
                self.eval_policy(i, request, Some(&mut sink));
                sink.into_iter()
                    .find(|e| e.result == Truth::Indeterminate)
                    .map(|e| e.attribute)
            }
        }
    }

    fn respond(&self, request: &Request, mut hits: Vec<Hit>, trace: Option<Trace>) -> Response {
        if hits.len() > 1 {
            hits.sort_unstable_by_key(|h| h.seq);
        }
        let algorithm = self.bundle.combining;
        let (outcome, decision, pick) = combine(algorithm, &hits);
        let decided = if decision {
            Effect::Permit
        } else {
            Effect::Deny
        };

        let count = hits
            .iter()
            .enumerate()
            .filter(|(i, h)| pick.takes(*i, h))
            .count();
        let mut determining = Vec::with_capacity(count);
        let mut reasons = Vec::with_capacity(count.max(1));
        let mut obligations: Vec<Obligation> = Vec::new();
        for (_, h) in hits.iter().enumerate().filter(|(i, h)| pick.takes(*i, h)) {
            let (kind, id, reason) = self.rule_info(h.rule);
            determining.push(Determining {
                kind,
                id: id.to_string(),
                effect: h.effect,
                indeterminate: h.indeterminate,
            });
            if h.indeterminate {
                let what = match self.indeterminate_attribute(h.rule, request) {
                    Some(attribute) => {
                        format!("attribute `{attribute}` is missing or not comparable")
                    }
                    None => "an attribute is missing or not comparable".to_string(),
                };
                let consequence = match (h.effect, decision) {
                    (Effect::Deny, false) => "so it denies (fail closed)",
                    (_, false) => "and an indeterminate rule never grants",
                    (_, true) => "which does not stop the default permit",
                };
                reasons.push(format!(
                    "{} `{id}` could not be evaluated: {what}, {consequence}",
                    kind_name(kind)
                ));
            } else {
                reasons.push(reason.to_string());
            }
            if let (RuleRef::Policy(i), true) = (h.rule, h.effect == decided)
                && let Some(policy) = self.compiled.policies.get(i as usize)
            {
                obligations.extend(
                    policy
                        .obligations
                        .iter()
                        .filter(|o| o.on == decided)
                        .cloned(),
                );
            }
        }
        if count == 0 {
            reasons.push(
                match algorithm {
                    Combining::PermitUnlessDeny => {
                        "no rule denies: permitted by default (permit-unless-deny)"
                    }
                    Combining::DenyUnlessPermit => {
                        "no rule permits: denied by default (deny-unless-permit)"
                    }
                    _ => "no rule applies: denied by default",
                }
                .to_string(),
            );
        }

        let trace = trace.map(|mut t| {
            t.outcome = outcome;
            t
        });
        Response {
            decision,
            determining,
            obligations,
            reasons,
            trace,
        }
    }

    /// The slow path with a trace: every permission of the subject's roles, every ACL entry
    /// naming the subject or its roles, and every policy, in document order. The decision is
    /// the same as the indexed path's.
    fn explain(&self, request: &Request, options: &DecisionOptions) -> Response {
        let c = &self.compiled;
        let subject = qualified(&request.subject.kind, &request.subject.id);
        let resource = qualified(&request.resource.kind, &request.resource.id);
        let action = request.action.name.as_str();

        // Roles and how the subject got each.
        let mut traced_roles: Vec<TracedRole> = Vec::new();
        let mut seen: HashSet<RoleId> = HashSet::new();
        let mut queue: VecDeque<RoleId> = VecDeque::new();
        let direct: Vec<RoleId> = c
            .bindings
            .get(subject.as_str())
            .and_then(|b| self.bundle.bindings.get(b.binding as usize))
            .map(|b| {
                b.roles
                    .iter()
                    .filter_map(|n| c.role_ids.get(n.as_str()).copied())
                    .collect()
            })
            .unwrap_or_default();
        let mut unknown_extra = Vec::new();
        let extra = options.extra_roles.iter().filter_map(|name| {
            let id = c.role_ids.get(name.as_str()).copied();
            if id.is_none() {
                unknown_extra.push(name.clone());
            }
            id.map(|id| (id, "extra_roles"))
        });
        let starts: Vec<(RoleId, &str)> = direct
            .iter()
            .map(|&r| (r, "binding"))
            .chain(extra)
            .collect();
        for (id, via) in starts {
            if seen.insert(id) {
                queue.push_back(id);
                traced_roles.push(TracedRole {
                    name: self.role_name(id),
                    via: via.to_string(),
                });
            }
        }
        while let Some(r) = queue.pop_front() {
            let inherits = c
                .roles
                .get(r as usize)
                .map(|x| x.inherits.as_slice())
                .unwrap_or_default();
            for &next in inherits {
                if seen.insert(next) {
                    queue.push_back(next);
                    traced_roles.push(TracedRole {
                        name: self.role_name(next),
                        via: format!("inherited from `{}`", self.role_name(r)),
                    });
                }
            }
        }
        for name in unknown_extra {
            traced_roles.push(TracedRole {
                name,
                via: "extra_roles (unknown role: ignored)".into(),
            });
        }
        let mut roles: Vec<RoleId> = seen.into_iter().collect();
        roles.sort_unstable();

        let mut hits = Vec::new();
        let mut rules = Vec::new();

        for &role in &roles {
            let own = c
                .roles
                .get(role as usize)
                .map(|r| r.permissions.as_slice())
                .unwrap_or_default();
            for &id in own {
                let Some(rule) = c.permissions.get(id as usize) else {
                    continue;
                };
                let mut conditions = Vec::new();
                let note = scope_mismatch(&rule.actions, &rule.pattern, action, &resource);
                let truth = match note {
                    Some(_) => Truth::False,
                    None => eval_all(
                        &rule.conditions,
                        request,
                        Some(("conditions", &mut conditions)),
                    ),
                };
                hits.extend(hit(
                    rule.seq,
                    RuleRef::Permission(id),
                    Effect::Permit,
                    truth,
                ));
                rules.push(TracedRule {
                    kind: RuleKind::Permission,
                    id: rule.id.clone(),
                    effect: Effect::Permit,
                    result: result_of(Effect::Permit, truth),
                    note,
                    conditions,
                });
            }
        }

        for (i, rule) in c.acls.iter().enumerate() {
            let names_subject = match &rule.subject {
                AclSubject::Subject(s) => *s == subject,
                AclSubject::Role(r) => roles.binary_search(r).is_ok(),
            };
            if !names_subject {
                continue;
            }
            let note = scope_mismatch(&rule.actions, &rule.pattern, action, &resource);
            let truth = match note {
                Some(_) => Truth::False,
                None => Truth::True,
            };
            hits.extend(hit(
                rule.seq,
                RuleRef::Acl(compile_u32(i)),
                rule.effect,
                truth,
            ));
            rules.push(TracedRule {
                kind: RuleKind::Acl,
                id: rule.id.clone(),
                effect: rule.effect,
                result: result_of(rule.effect, truth),
                note,
                conditions: Vec::new(),
            });
        }

        for (i, policy) in c.policies.iter().enumerate() {
            let id = compile_u32(i);
            let mut conditions = Vec::new();
            let truth = self.eval_policy(id, request, Some(&mut conditions));
            hits.extend(hit(policy.seq, RuleRef::Policy(id), policy.effect, truth));
            rules.push(TracedRule {
                kind: RuleKind::Policy,
                id: policy.id.clone(),
                effect: policy.effect,
                result: result_of(policy.effect, truth),
                note: None,
                conditions,
            });
        }

        let trace = Trace {
            combining: self.bundle.combining,
            subject,
            resource,
            action: action.to_string(),
            roles: traced_roles,
            rules,
            outcome: Outcome::NotApplicable,
        };
        self.respond(request, hits, Some(trace))
    }

    fn role_name(&self, id: RoleId) -> String {
        self.compiled
            .roles
            .get(id as usize)
            .map(|r| r.name.clone())
            .unwrap_or_default()
    }
}

/// Why a rule's actions or resource pattern leave it out for this request, for the trace.
fn scope_mismatch(
    actions: &compile::Actions,
    pattern: &crate::pattern::Pattern,
    action: &str,
    resource: &str,
) -> Option<String> {
    if !actions.matches(action) {
        Some(format!(
            "action `{action}` is not one of {}",
            actions.describe()
        ))
    } else if !pattern.matches(resource) {
        Some(format!("resource `{resource}` does not match `{pattern}`"))
    } else {
        None
    }
}

/// Why a request's subject or resource type cannot be decided, if it cannot: an empty type,
/// or one containing `:`, which would make the `type:id` name ambiguous.
fn ambiguous_type(request: &Request) -> Option<String> {
    for (what, kind) in [
        ("subject", request.subject.kind.as_str()),
        ("resource", request.resource.kind.as_str()),
    ] {
        if kind.is_empty() {
            return Some(format!("{what} type is empty: denied"));
        }
        if kind.contains(':') {
            return Some(format!(
                "{what} type `{kind}` contains `:`, which makes its `type:id` name ambiguous: denied"
            ));
        }
    }
    None
}

fn compile_u32(i: usize) -> u32 {
    u32::try_from(i).unwrap_or(u32::MAX)
}

fn kind_name(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Permission => "permission",
        RuleKind::Acl => "ACL entry",
        RuleKind::Policy => "policy",
    }
}
