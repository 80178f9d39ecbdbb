//! The workloads in Cedar. Cedar evaluates every policy of the set on every request, so RBAC is
//! modeled two ways: a policy per role permission, and a few generic policies that read the roles
//! allowed on a resource from the resource's own data (`principal in resource.read`), which the
//! entity store answers with a lookup in the principal's precomputed ancestors.

use std::str::FromStr;
use std::time::{Duration, Instant};

use ::cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityUid, PolicySet, Request, RestrictedExpression,
};
use serde_json::{Value, json};

use super::{Engine, Loaded};
use crate::workload::{AbacWorkload, RbacQuery, RbacWorkload};

/// How an RBAC workload is written in Cedar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RbacModeling {
    /// `permit(principal in Role::"r", action == Action::"a", resource == Resource::"x");` for
    /// every permission of every role: as many policies as grants.
    PolicyPerRole,
    /// One policy per action, `permit(principal, action == Action::"a", resource) when
    /// { resource has a && principal in resource.a };`, each resource listing its roles per action.
    ResourceRoles,
    /// The same policies, but `resource.a` is one group entity per resource and action, and the
    /// roles granted it are its members: `in` is then a single ancestor lookup, not one per role.
    GrantGroups,
}

impl RbacModeling {
    pub fn label(self) -> &'static str {
        match self {
            RbacModeling::PolicyPerRole => "cedar (policy per role)",
            RbacModeling::ResourceRoles => "cedar (principal in resource.<action>)",
            RbacModeling::GrantGroups => "cedar (principal in resource.<action> group)",
        }
    }
}

/// An authorizer, a policy set, an entity store and the prepared requests.
pub struct CedarEngine {
    label: String,
    authorizer: Authorizer,
    policies: PolicySet,
    entities: Entities,
    requests: Vec<Request>,
}

impl std::fmt::Debug for CedarEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CedarEngine")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

impl Engine for CedarEngine {
    fn label(&self) -> &str {
        &self.label
    }

    fn requests(&self) -> usize {
        self.requests.len()
    }

    fn decide(&self, index: usize) -> bool {
        let request = &self.requests[index];
        let response = self
            .authorizer
            .is_authorized(request, &self.policies, &self.entities);
        response.decision() == Decision::Allow
    }
}

fn uid(kind: &str, id: &str) -> EntityUid {
    let escaped = id.replace('\\', "\\\\").replace('"', "\\\"");
    EntityUid::from_str(&format!("{kind}::\"{escaped}\"")).expect("valid entity uid")
}

fn json_uid(kind: &str, id: &str) -> Value {
    json!({ "type": kind, "id": id })
}

/// Parses the policy text and the entity JSON, which is what loading a Cedar deployment costs.
fn load(policies: &str, entities: &str) -> (PolicySet, Entities, Duration) {
    let started = Instant::now();
    let policy_set = PolicySet::from_str(policies).expect("generated policies parse");
    let entity_store = Entities::from_json_str(entities, None).expect("generated entities parse");
    (policy_set, entity_store, started.elapsed())
}

/// Cedar source text for an RBAC workload: policies and entities (JSON).
pub fn rbac_source(workload: &RbacWorkload, modeling: RbacModeling) -> (String, String) {
    let mut entities: Vec<Value> = Vec::new();

    // Users are members of their roles, roles of the roles they inherit from; Cedar computes
    // the transitive closure when the store is built.
    let mut parents_of: std::collections::HashMap<&str, Vec<Value>> =
        std::collections::HashMap::new();
    for binding in &workload.bindings {
        parents_of
            .entry(&binding.user)
            .or_default()
            .push(json_uid("Role", &binding.role));
    }
    let mut users: Vec<&str> = parents_of.keys().copied().collect();
    users.sort_unstable();
    for user in users {
        let parents = parents_of.remove(user).unwrap_or_default();
        entities.push(json!({ "uid": json_uid("User", user), "attrs": {}, "parents": parents }));
    }
    let grant_group =
        |resource: &str, action: &str| json_uid("Grant", &format!("{resource}#{action}"));
    for role in &workload.roles {
        let mut parents: Vec<Value> = role.inherits.iter().map(|r| json_uid("Role", r)).collect();
        if modeling == RbacModeling::GrantGroups {
            parents.extend(
                role.grants
                    .iter()
                    .map(|g| grant_group(&g.resource, &g.action)),
            );
        }
        entities
            .push(json!({ "uid": json_uid("Role", &role.name), "attrs": {}, "parents": parents }));
    }

    let mut policies = String::new();
    match modeling {
        RbacModeling::PolicyPerRole => {
            for role in &workload.roles {
                for grant in &role.grants {
                    policies.push_str(&format!(
                        "permit(principal in Role::\"{}\", action == Action::\"{}\", \
                         resource == Resource::\"{}\");\n",
                        role.name, grant.action, grant.resource
                    ));
                }
            }
        }
        RbacModeling::ResourceRoles | RbacModeling::GrantGroups => {
            let actions = workload.actions();
            // Each resource names, per action, the roles granted it (or their group).
            let mut granted: std::collections::BTreeMap<&str, serde_json::Map<String, Value>> =
                std::collections::BTreeMap::new();
            for role in &workload.roles {
                for grant in &role.grants {
                    let attrs = granted.entry(&grant.resource).or_default();
                    if modeling == RbacModeling::GrantGroups {
                        let group = grant_group(&grant.resource, &grant.action);
                        attrs.insert(grant.action.clone(), json!({ "__entity": group }));
                    } else {
                        let roles = attrs
                            .entry(grant.action.clone())
                            .or_insert_with(|| json!([]));
                        if let Value::Array(roles) = roles {
                            roles.push(json!({ "__entity": json_uid("Role", &role.name) }));
                        }
                    }
                }
            }
            for (resource, attrs) in granted {
                if modeling == RbacModeling::GrantGroups {
                    for action in attrs.keys() {
                        entities.push(json!({
                            "uid": grant_group(resource, action), "attrs": {}, "parents": []
                        }));
                    }
                }
                entities.push(json!({
                    "uid": json_uid("Resource", resource), "attrs": attrs, "parents": []
                }));
            }
            for action in &actions {
                policies.push_str(&format!(
                    "permit(principal, action == Action::\"{action}\", resource) \
                     when {{ resource has {action} && principal in resource.{action} }};\n"
                ));
            }
        }
    }
    (policies, Value::Array(entities).to_string())
}

/// Loads an RBAC workload in the given modeling, with requests prepared for `queries`.
pub fn rbac(workload: &RbacWorkload, modeling: RbacModeling, queries: &[RbacQuery]) -> Loaded {
    let (policy_text, entity_text) = rbac_source(workload, modeling);
    let (policies, entities, load_time) = load(&policy_text, &entity_text);
    let requests = queries
        .iter()
        .map(|query| {
            Request::new(
                uid("User", &query.user),
                uid("Action", &query.action),
                uid("Resource", &query.resource),
                Context::empty(),
                None,
            )
            .expect("request without schema")
        })
        .collect();
    let engine = CedarEngine {
        label: modeling.label().to_owned(),
        authorizer: Authorizer::new(),
        policies,
        entities,
        requests,
    };
    Loaded {
        engine: Box::new(engine),
        load: load_time,
    }
}

/// Cedar source text for the ABAC workload: one policy per ABAC policy, users and documents with
/// their attributes as entities.
pub fn abac_source(workload: &AbacWorkload) -> (String, String) {
    let mut policies = String::new();
    for policy in &workload.policies {
        policies.push_str(&format!(
            "@id(\"{}\")\npermit(principal, action == Action::\"{}\", resource) when {{ \
             principal.department == \"{}\" && resource.sensitivity <= {} && context.hour < {} }};\n",
            policy.id, policy.action, policy.department, policy.max_sensitivity, policy.before_hour
        ));
    }
    let mut entities: Vec<Value> = Vec::new();
    for user in &workload.users {
        entities.push(json!({
            "uid": json_uid("User", &user.id), "attrs": { "department": user.department },
            "parents": []
        }));
    }
    for doc in &workload.docs {
        entities.push(json!({
            "uid": json_uid("Doc", &doc.id), "attrs": { "sensitivity": doc.sensitivity },
            "parents": []
        }));
    }
    (policies, Value::Array(entities).to_string())
}

/// Loads the ABAC workload with its requests prepared.
pub fn abac(workload: &AbacWorkload) -> Loaded {
    let (policy_text, entity_text) = abac_source(workload);
    let (policies, entities, load_time) = load(&policy_text, &entity_text);
    let requests = workload
        .queries
        .iter()
        .map(|query| {
            let user = &workload.users[query.user];
            let doc = &workload.docs[query.doc];
            let context = Context::from_pairs([(
                "hour".to_owned(),
                RestrictedExpression::new_long(query.hour),
            )])
            .expect("context");
            Request::new(
                uid("User", &user.id),
                uid("Action", &query.action),
                uid("Doc", &doc.id),
                context,
                None,
            )
            .expect("request without schema")
        })
        .collect();
    let engine = CedarEngine {
        label: "cedar".to_owned(),
        authorizer: Authorizer::new(),
        policies,
        entities,
        requests,
    };
    Loaded {
        engine: Box::new(engine),
        load: load_time,
    }
}
