//! The workloads in casbin: RBAC with casbin's own `rbac_model.conf`, as in its published
//! benchmark, and ABAC with an `eval()` matcher over per-policy rule strings.

use std::time::Instant;

use ::casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi, StringAdapter};
use serde::Serialize;
use tokio::runtime::Runtime;

use super::{Engine, Loaded};
use crate::workload::{AbacWorkload, RbacQuery, RbacWorkload};

/// casbin's `examples/rbac_model.conf`.
pub const RBAC_MODEL: &str = "\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
";

/// ABAC: each policy is `(rule, action)`, the rule a boolean expression over the request's
/// subject, object and environment, evaluated by `eval()` only when the action matches.
pub const ABAC_MODEL: &str = "\
[request_definition]
r = sub, obj, act, env

[policy_definition]
p = rule, act

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.act == p.act && eval(p.rule)
";

/// casbin's enforcer is built by async code; the harness drives it with this runtime and then
/// calls the synchronous `enforce`.
pub fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio runtime")
}

/// An RBAC enforcer with the prepared `(subject, object, action)` requests.
pub struct CasbinRbac {
    enforcer: Enforcer,
    requests: Vec<(String, String, String)>,
}

impl std::fmt::Debug for CasbinRbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CasbinRbac")
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl Engine for CasbinRbac {
    fn label(&self) -> &str {
        "casbin"
    }

    fn requests(&self) -> usize {
        self.requests.len()
    }

    fn decide(&self, index: usize) -> bool {
        let (sub, obj, act) = &self.requests[index];
        self.enforcer
            .enforce((sub, obj, act))
            .expect("casbin enforce")
    }
}

fn user_subject(user: &str) -> String {
    format!("user:{user}")
}

/// The policy file (CSV) of an RBAC workload.
pub fn rbac_source(workload: &RbacWorkload) -> String {
    let mut csv = String::new();
    for role in &workload.roles {
        for grant in &role.grants {
            csv.push_str(&format!(
                "p, {}, {}, {}\n",
                role.name, grant.resource, grant.action
            ));
        }
        for parent in &role.inherits {
            csv.push_str(&format!("g, {}, {}\n", role.name, parent));
        }
    }
    for binding in &workload.bindings {
        csv.push_str(&format!(
            "g, {}, {}\n",
            user_subject(&binding.user),
            binding.role
        ));
    }
    csv
}

/// Loads an RBAC workload from its model and policy text (role links built), with requests
/// prepared for `queries`.
pub fn rbac(runtime: &Runtime, workload: &RbacWorkload, queries: &[RbacQuery]) -> Loaded {
    let csv = rbac_source(workload);
    let started = Instant::now();
    let enforcer = runtime.block_on(async {
        let model = DefaultModel::from_str(RBAC_MODEL)
            .await
            .expect("casbin model");
        Enforcer::new(model, StringAdapter::new(csv))
            .await
            .expect("casbin enforcer")
    });
    let load = started.elapsed();
    let requests = queries
        .iter()
        .map(|q| (user_subject(&q.user), q.resource.clone(), q.action.clone()))
        .collect();
    Loaded {
        engine: Box::new(CasbinRbac { enforcer, requests }),
        load,
    }
}

#[derive(Debug, Hash, Serialize)]
struct Subject {
    id: String,
    department: String,
}

#[derive(Debug, Hash, Serialize)]
struct Object {
    id: String,
    sensitivity: i64,
}

#[derive(Debug, Hash, Serialize)]
struct Environment {
    hour: i64,
}

/// An ABAC enforcer with the prepared requests.
pub struct CasbinAbac {
    enforcer: Enforcer,
    requests: Vec<(Subject, Object, String, Environment)>,
}

impl std::fmt::Debug for CasbinAbac {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CasbinAbac")
            .field("requests", &self.requests.len())
            .finish_non_exhaustive()
    }
}

impl Engine for CasbinAbac {
    fn label(&self) -> &str {
        "casbin"
    }

    fn requests(&self) -> usize {
        self.requests.len()
    }

    fn decide(&self, index: usize) -> bool {
        let (sub, obj, act, env) = &self.requests[index];
        self.enforcer
            .enforce((sub, obj, act, env))
            .expect("casbin enforce")
    }
}

/// The ABAC policies as `(rule, action)` rows.
pub fn abac_rows(workload: &AbacWorkload) -> Vec<Vec<String>> {
    workload
        .policies
        .iter()
        .map(|policy| {
            let rule = format!(
                "r.sub.department == \"{}\" && r.obj.sensitivity <= {} && r.env.hour < {}",
                policy.department, policy.max_sensitivity, policy.before_hour
            );
            vec![rule, policy.action.clone()]
        })
        .collect()
}

/// Loads the ABAC workload (policies added through the management API: the rules hold commas
/// and quotes, which a CSV policy line would have to escape).
pub fn abac(runtime: &Runtime, workload: &AbacWorkload) -> Loaded {
    let rows = abac_rows(workload);
    let started = Instant::now();
    let enforcer = runtime.block_on(async {
        let model = DefaultModel::from_str(ABAC_MODEL)
            .await
            .expect("casbin model");
        let mut enforcer = Enforcer::new(model, MemoryAdapter::default())
            .await
            .expect("casbin enforcer");
        enforcer.add_policies(rows).await.expect("casbin policies");
        enforcer
    });
    let load = started.elapsed();
    let requests = workload
        .queries
        .iter()
        .map(|query| {
            let user = &workload.users[query.user];
            let doc = &workload.docs[query.doc];
            (
                Subject {
                    id: user.id.clone(),
                    department: user.department.clone(),
                },
                Object {
                    id: doc.id.clone(),
                    sensitivity: doc.sensitivity,
                },
                query.action.clone(),
                Environment { hour: query.hour },
            )
        })
        .collect();
    Loaded {
        engine: Box::new(CasbinAbac { enforcer, requests }),
        load,
    }
}
