//! The MAOS policy decision point. Pure: no I/O, no async.
//!
//! A [`Bundle`] (YAML or JSON) holds roles with inheritance and conditional permissions,
//! bindings of subjects to roles, ACLs attached to resources, and ABAC policies with targets,
//! condition trees and obligations. [`DecisionPoint::load`] parses, validates and compiles it;
//! [`DecisionPoint::decide`] answers an OpenID AuthZEN request with XACML 3.0 semantics.
//! [`analyze`] reports conflicts and dead rules. The semantics are written down in
//! `docs/policy.md`.

pub mod analysis;
pub mod bundle;
mod compile;
pub mod condition;
mod decide;
pub mod error;
mod locate;
pub mod pattern;
pub mod response;

pub use analysis::{Finding, FindingKind, Location, analyze, analyze_source};
pub use bundle::{
    Acl, AclEntry, Binding, Bundle, BundleTest, Combining, Condition, ConditionTree, Constraint,
    Effect, Expect, Obligation, Operator, Permission, Policy, Role, Target,
};
pub use condition::{EvaluatedCondition, Truth};
pub use decide::DecisionPoint;
pub use error::{LoadError, LoadErrors};
pub use pattern::Pattern;
pub use response::{
    DecisionOptions, Determining, Outcome, Response, RuleKind, RuleResult, TestOutcome, Trace,
    TracedRole, TracedRule,
};
