//! What a decision returns: the AuthZEN decision plus what decided it and, on request, a trace.

use serde::{Deserialize, Serialize};

use crate::bundle::{Combining, Effect, Obligation};
use crate::condition::EvaluatedCondition;

/// Options of one decision.
#[derive(Clone, Debug, Default)]
pub struct DecisionOptions {
    /// Roles the caller found for this subject in its own stored bindings; added to the
    /// bundle's bindings. Unknown names are ignored. Roles are never read from the request.
    pub extra_roles: Vec<String>,
    /// Record a [`Trace`] of every role, rule and condition considered.
    pub explain: bool,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// `true` allows, `false` denies (AuthZEN).
    pub decision: bool,
    /// The rules that decided, in document order.
    pub determining: Vec<Determining>,
    /// Obligations of the determining policies whose `on` matches the decision.
    pub obligations: Vec<Obligation>,
    /// Why, in words.
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace: Option<Trace>,
}

/// What kind of rule a [`Determining`] or [`TracedRule`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// A role permission: `id` is `role.permissions[i]`.
    Permission,
    /// An ACL entry: `id` is `acls[i].entries[j]`.
    Acl,
    /// An ABAC policy: `id` is the policy id.
    Policy,
}

/// A rule that decided.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Determining {
    pub kind: RuleKind,
    pub id: String,
    pub effect: Effect,
    /// The rule could not be evaluated (a missing attribute or a type mismatch).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub indeterminate: bool,
}

/// The result of one rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleResult {
    Permit,
    Deny,
    NotApplicable,
    Indeterminate,
}

/// The combined result, before the decision's default applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Permit,
    Deny,
    NotApplicable,
    Indeterminate,
}

/// How a decision was reached, step by step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trace {
    pub combining: Combining,
    pub subject: String,
    pub resource: String,
    pub action: String,
    /// The subject's roles and how it got each.
    pub roles: Vec<TracedRole>,
    /// Every rule considered, in document order.
    pub rules: Vec<TracedRule>,
    pub outcome: Outcome,
}

/// A role the subject holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TracedRole {
    pub name: String,
    /// `binding`, `extra_roles`, or `inherited from <role>`.
    pub via: String,
}

/// One rule as evaluated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TracedRule {
    pub kind: RuleKind,
    pub id: String,
    pub effect: Effect,
    pub result: RuleResult,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<EvaluatedCondition>,
}

/// The result of one of the bundle's tests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TestOutcome {
    pub name: String,
    pub passed: bool,
    /// The expected decision (`true` = allow).
    pub expected: bool,
    pub actual: Response,
}
