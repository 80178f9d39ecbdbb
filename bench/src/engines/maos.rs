//! The workloads as MAOS policy bundles. The bundles are written as JSON source text in the
//! documented bundle format and loaded with `DecisionPoint::load`, as a deployment would.

use std::collections::BTreeMap;
use std::time::Instant;

use maos_core::{Action, Request, Resource, Subject};
use maos_policy::DecisionPoint;
use serde_json::{Map, Value, json};

use super::{Engine, Loaded};
use crate::workload::{AbacWorkload, RbacQuery, RbacWorkload};

/// A decision point with the prepared requests.
pub struct MaosEngine {
    decision_point: DecisionPoint,
    requests: Vec<Request>,
}

impl std::fmt::Debug for MaosEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaosEngine")
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl Engine for MaosEngine {
    fn label(&self) -> &str {
        "maos"
    }

    fn requests(&self) -> usize {
        self.requests.len()
    }

    fn decide(&self, index: usize) -> bool {
        self.decision_point.decide(&self.requests[index]).decision
    }
}

/// Splits `type:id`.
fn split(qualified: &str) -> (&str, &str) {
    qualified.split_once(':').unwrap_or(("", qualified))
}

/// The bundle of an RBAC workload: roles with their permissions (grouped by resource) and one
/// binding per user.
pub fn rbac_source(workload: &RbacWorkload) -> String {
    let roles: Vec<Value> = workload
        .roles
        .iter()
        .map(|role| {
            let mut by_resource: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for grant in &role.grants {
                by_resource
                    .entry(&grant.resource)
                    .or_default()
                    .push(&grant.action);
            }
            let permissions: Vec<Value> = by_resource
                .into_iter()
                .map(|(resource, actions)| json!({ "resource": resource, "actions": actions }))
                .collect();
            let mut object = json!({ "name": role.name, "permissions": permissions });
            if !role.inherits.is_empty() {
                object["inherits"] = json!(role.inherits);
            }
            object
        })
        .collect();

    let mut roles_of: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for binding in &workload.bindings {
        roles_of
            .entry(&binding.user)
            .or_default()
            .push(&binding.role);
    }
    let bindings: Vec<Value> = roles_of
        .into_iter()
        .map(|(user, roles)| json!({ "subject": format!("user:{user}"), "roles": roles }))
        .collect();

    json!({
        "version": 1,
        "combining": "deny-overrides",
        "roles": roles,
        "bindings": bindings,
    })
    .to_string()
}

fn load(source: &str, origin: &str) -> (DecisionPoint, std::time::Duration) {
    let started = Instant::now();
    let decision_point = match DecisionPoint::load(source, origin) {
        Ok(decision_point) => decision_point,
        Err(errors) => panic!("the generated bundle {origin} does not load: {errors}"),
    };
    (decision_point, started.elapsed())
}

/// Loads an RBAC workload with requests prepared for `queries`.
pub fn rbac(workload: &RbacWorkload, queries: &[RbacQuery]) -> Loaded {
    let source = rbac_source(workload);
    let (decision_point, load_time) = load(&source, "rbac.json");
    let requests = queries
        .iter()
        .map(|query| {
            let (kind, id) = split(&query.resource);
            Request {
                subject: Subject::new("user", query.user.clone()),
                resource: Resource::new(kind, id),
                action: Action::new(query.action.clone()),
                context: Map::new(),
            }
        })
        .collect();
    Loaded {
        engine: Box::new(MaosEngine {
            decision_point,
            requests,
        }),
        load: load_time,
    }
}

/// The bundle of the ABAC workload: one permit policy per ABAC policy, the action in the target
/// and the three comparisons in an `all` condition.
pub fn abac_source(workload: &AbacWorkload) -> String {
    let policies: Vec<Value> = workload
        .policies
        .iter()
        .map(|policy| {
            json!({
                "id": policy.id,
                "effect": "permit",
                "target": {
                    "action": [ { "attribute": "action.name", "operator": "eq", "value": policy.action } ]
                },
                "condition": { "all": [
                    { "attribute": "subject.properties.department", "operator": "eq",
                      "value": policy.department },
                    { "attribute": "resource.properties.sensitivity", "operator": "lte",
                      "value": policy.max_sensitivity },
                    { "attribute": "context.hour", "operator": "lt", "value": policy.before_hour },
                ] },
            })
        })
        .collect();
    json!({ "version": 1, "combining": "deny-overrides", "policies": policies }).to_string()
}

/// Loads the ABAC workload with its requests prepared; attributes travel in the request.
pub fn abac(workload: &AbacWorkload) -> Loaded {
    let source = abac_source(workload);
    let (decision_point, load_time) = load(&source, "abac.json");
    let requests = workload
        .queries
        .iter()
        .map(|query| {
            let user = &workload.users[query.user];
            let doc = &workload.docs[query.doc];
            let mut subject = Subject::new("user", user.id.clone());
            subject
                .properties
                .insert("department".to_owned(), json!(user.department));
            let mut resource = Resource::new("doc", doc.id.clone());
            resource
                .properties
                .insert("sensitivity".to_owned(), json!(doc.sensitivity));
            let mut context = Map::new();
            context.insert("hour".to_owned(), json!(query.hour));
            Request {
                subject,
                resource,
                action: Action::new(query.action.clone()),
                context,
            }
        })
        .collect();
    Loaded {
        engine: Box::new(MaosEngine {
            decision_point,
            requests,
        }),
        load: load_time,
    }
}
