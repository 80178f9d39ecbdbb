//! The workloads, stated once and engine-neutral: what is granted to whom and which questions are
//! asked. Each engine adapter translates them into its own language, and the expected decision of
//! every query is computed here by a plain reference evaluation, so all engines are checked against
//! the same answers before any of them is timed.

use std::collections::{HashMap, HashSet};

/// A role of an RBAC workload: what it grants directly and which roles it inherits from.
#[derive(Clone, Debug)]
pub struct Role {
    pub name: String,
    pub inherits: Vec<String>,
    pub grants: Vec<Grant>,
}

/// One permission: an action on one resource, named `type:id`.
#[derive(Clone, Debug)]
pub struct Grant {
    pub resource: String,
    pub action: String,
}

/// A user (type `user`) bound to a role.
#[derive(Clone, Debug)]
pub struct Binding {
    pub user: String,
    pub role: String,
}

/// One authorization question of an RBAC workload, with the answer every engine must give.
#[derive(Clone, Debug)]
pub struct RbacQuery {
    pub user: String,
    pub resource: String,
    pub action: String,
    pub expect: bool,
}

/// Roles, grants and bindings. Users are of type `user`; resources are `type:id` strings.
#[derive(Clone, Debug)]
pub struct RbacWorkload {
    pub name: String,
    pub roles: Vec<Role>,
    pub bindings: Vec<Binding>,
}

impl RbacWorkload {
    /// Grants plus bindings: the number casbin's benchmark calls "rules".
    pub fn rules(&self) -> usize {
        self.roles
            .iter()
            .map(|role| role.grants.len())
            .sum::<usize>()
            + self.bindings.len()
    }

    /// Every resource some role grants something on, sorted.
    pub fn resources(&self) -> Vec<String> {
        let set: HashSet<&str> = self
            .roles
            .iter()
            .flat_map(|role| role.grants.iter().map(|grant| grant.resource.as_str()))
            .collect();
        let mut resources: Vec<String> = set.into_iter().map(str::to_owned).collect();
        resources.sort();
        resources
    }

    /// Every action some role grants, sorted.
    pub fn actions(&self) -> Vec<String> {
        let set: HashSet<&str> = self
            .roles
            .iter()
            .flat_map(|role| role.grants.iter().map(|grant| grant.action.as_str()))
            .collect();
        let mut actions: Vec<String> = set.into_iter().map(str::to_owned).collect();
        actions.sort();
        actions
    }

    /// Builds queries with their expected decisions from `(user, resource, action)` triples.
    pub fn queries(
        &self,
        asked: impl IntoIterator<Item = (String, String, String)>,
    ) -> Vec<RbacQuery> {
        let reference = RbacReference::new(self);
        asked
            .into_iter()
            .map(|(user, resource, action)| {
                let expect = reference.allows(&user, &resource, &action);
                RbacQuery {
                    user,
                    resource,
                    action,
                    expect,
                }
            })
            .collect()
    }
}

/// The obvious evaluation of an RBAC workload: the user's roles, closed over inheritance, and a
/// set of granted `(role, resource, action)`.
struct RbacReference<'a> {
    roles_of: HashMap<&'a str, Vec<&'a str>>,
    inherits: HashMap<&'a str, Vec<&'a str>>,
    granted: HashSet<(&'a str, &'a str, &'a str)>,
}

impl<'a> RbacReference<'a> {
    fn new(workload: &'a RbacWorkload) -> Self {
        let mut roles_of: HashMap<&str, Vec<&str>> = HashMap::new();
        for binding in &workload.bindings {
            roles_of
                .entry(binding.user.as_str())
                .or_default()
                .push(binding.role.as_str());
        }
        let mut inherits = HashMap::new();
        let mut granted = HashSet::new();
        for role in &workload.roles {
            inherits.insert(
                role.name.as_str(),
                role.inherits.iter().map(String::as_str).collect(),
            );
            for grant in &role.grants {
                granted.insert((
                    role.name.as_str(),
                    grant.resource.as_str(),
                    grant.action.as_str(),
                ));
            }
        }
        Self {
            roles_of,
            inherits,
            granted,
        }
    }

    fn allows(&self, user: &str, resource: &str, action: &str) -> bool {
        let mut pending: Vec<&str> = self.roles_of.get(user).cloned().unwrap_or_default();
        let mut seen = HashSet::new();
        while let Some(role) = pending.pop() {
            if !seen.insert(role) {
                continue;
            }
            if self.granted.contains(&(role, resource, action)) {
                return true;
            }
            if let Some(parents) = self.inherits.get(role) {
                pending.extend(parents.iter().copied());
            }
        }
        false
    }
}

/// A deterministic pseudo-random sequence (splitmix64), so every run asks the same questions.
#[derive(Clone, Debug)]
pub struct Sequence(u64);

impl Sequence {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number below `bound` (slightly biased; irrelevant here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next_u64() % bound.max(1)
    }
}

/// Workload 1: five role permissions, one inheritance, four bound users and one unbound.
pub fn small_rbac() -> (RbacWorkload, Vec<RbacQuery>) {
    let grant = |resource: &str, action: &str| Grant {
        resource: resource.to_owned(),
        action: action.to_owned(),
    };
    let role = |name: &str, inherits: &[&str], grants: Vec<Grant>| Role {
        name: name.to_owned(),
        inherits: inherits.iter().map(|s| (*s).to_owned()).collect(),
        grants,
    };
    let roles = vec![
        role("viewer", &[], vec![grant("doc:readme", "read")]),
        role(
            "editor",
            &["viewer"],
            vec![grant("doc:readme", "write"), grant("doc:design", "write")],
        ),
        role("admin", &[], vec![grant("doc:secrets", "read")]),
        role("auditor", &[], vec![grant("log:audit", "read")]),
    ];
    let bindings = [
        ("alice", "editor"),
        ("bob", "viewer"),
        ("carol", "admin"),
        ("dave", "auditor"),
    ]
    .iter()
    .map(|(user, role)| Binding {
        user: (*user).to_owned(),
        role: (*role).to_owned(),
    })
    .collect();
    let workload = RbacWorkload {
        name: "small RBAC".to_owned(),
        roles,
        bindings,
    };

    // Every user (one unbound) against every resource and action: 6 allows among 40.
    let mut asked = Vec::new();
    for user in ["alice", "bob", "carol", "dave", "erin"] {
        for resource in ["doc:readme", "doc:design", "doc:secrets", "log:audit"] {
            for action in ["read", "write"] {
                asked.push((user.to_owned(), resource.to_owned(), action.to_owned()));
            }
        }
    }
    let queries = workload.queries(asked);
    (workload, queries)
}

/// Casbin's published RBAC benchmark shape, scaled by `roles`: role `group{i}` may `read`
/// `data:{i / 10}`, and user `{k}` (for `k < 10 * roles`) is bound to `group{k / 10}`.
/// `roles = 10_000` is "RBAC large" (110,000 rules), `roles = 100` is "small" (1,100 rules).
pub fn casbin_shape(roles: u64) -> RbacWorkload {
    let roles_list = (0..roles)
        .map(|i| Role {
            name: format!("group{i}"),
            inherits: Vec::new(),
            grants: vec![Grant {
                resource: format!("data:{}", i / 10),
                action: "read".to_owned(),
            }],
        })
        .collect();
    let bindings = (0..roles * 10)
        .map(|k| Binding {
            user: k.to_string(),
            role: format!("group{}", k / 10),
        })
        .collect();
    RbacWorkload {
        name: format!("casbin shape, {} rules", roles * 11),
        roles: roles_list,
        bindings,
    }
}

/// A query mix over users `0..users` of a casbin-shape workload: half allowed; the denials are
/// another resource, an action nobody has (`write`) and casbin's own benchmark question
/// (`user 50001`, `data:1500`, a resource no role grants). Every subject exists (as in casbin's
/// benchmark); [`unknown_subject_queries`] asks about subjects that do not.
pub fn casbin_shape_queries(users: u64, count: usize, seed: u64) -> Vec<(String, String, String)> {
    let mut sequence = Sequence::new(seed);
    let resources = (users / 100).max(1);
    (0..count)
        .map(|_| {
            let user = sequence.below(users);
            let own = format!("data:{}", user / 100);
            match sequence.below(20) {
                0..=9 => (user.to_string(), own, "read".to_owned()),
                10..=13 => (
                    user.to_string(),
                    format!("data:{}", sequence.below(resources)),
                    "read".to_owned(),
                ),
                14..=16 => (user.to_string(), own, "write".to_owned()),
                _ => (
                    "50001".to_owned(),
                    "data:1500".to_owned(),
                    "read".to_owned(),
                ),
            }
        })
        .collect()
}

/// Questions about subjects no binding names (all denied).
pub fn unknown_subject_queries(count: usize) -> Vec<(String, String, String)> {
    (0..count)
        .map(|i| {
            (
                format!("guest{i}"),
                format!("data:{}", i % 10),
                "read".to_owned(),
            )
        })
        .collect()
}

/// One ABAC policy of workload 2: permit `action` when the subject's department is `department`,
/// the resource's sensitivity is at most `max_sensitivity` and the hour is before `before_hour`.
#[derive(Clone, Debug)]
pub struct AbacPolicy {
    pub id: String,
    pub action: String,
    pub department: String,
    pub max_sensitivity: i64,
    pub before_hour: i64,
}

#[derive(Clone, Debug)]
pub struct AbacUser {
    pub id: String,
    pub department: String,
}

#[derive(Clone, Debug)]
pub struct AbacDoc {
    pub id: String,
    pub sensitivity: i64,
}

/// One ABAC question: indexes into the workload's users and docs.
#[derive(Clone, Debug)]
pub struct AbacQuery {
    pub user: usize,
    pub doc: usize,
    pub action: String,
    pub hour: i64,
    pub expect: bool,
}

#[derive(Clone, Debug)]
pub struct AbacWorkload {
    pub policies: Vec<AbacPolicy>,
    pub users: Vec<AbacUser>,
    pub docs: Vec<AbacDoc>,
    pub queries: Vec<AbacQuery>,
}

pub const ABAC_ACTIONS: [&str; 4] = ["read", "write", "delete", "share"];

/// Workload 2: 100 permit policies of three conditions each (plus the action), 26 departments
/// (one that no policy names), and a query mix in which about a third is allowed.
pub fn abac(queries: usize, seed: u64) -> AbacWorkload {
    let policies: Vec<AbacPolicy> = (0..100_usize)
        .map(|i| AbacPolicy {
            id: format!("abac-{i}"),
            action: ABAC_ACTIONS
                .get(i % 4)
                .copied()
                .unwrap_or("read")
                .to_owned(),
            department: format!("dept{}", i % 25),
            max_sensitivity: ((i / 4) % 5) as i64,
            before_hour: 12 + (i % 7) as i64,
        })
        .collect();
    let users: Vec<AbacUser> = (0..260)
        .map(|u| AbacUser {
            id: format!("u{u}"),
            department: format!("dept{}", u % 26),
        })
        .collect();
    let docs: Vec<AbacDoc> = (0..60)
        .map(|d| AbacDoc {
            id: format!("d{d}"),
            sensitivity: (d % 6) as i64,
        })
        .collect();

    let mut sequence = Sequence::new(seed);
    let queries = (0..queries)
        .map(|_| {
            let user = sequence.below(users.len() as u64) as usize;
            let doc = sequence.below(docs.len() as u64) as usize;
            // Mostly the four granted actions, sometimes one no policy names.
            let action = match sequence.below(9) {
                8 => "purge".to_owned(),
                n => ABAC_ACTIONS
                    .get((n % 4) as usize)
                    .copied()
                    .unwrap_or("read")
                    .to_owned(),
            };
            let hour = 6 + sequence.below(14) as i64;
            let mut query = AbacQuery {
                user,
                doc,
                action,
                hour,
                expect: false,
            };
            query.expect = abac_reference(&policies, &users, &docs, &query);
            query
        })
        .collect();
    AbacWorkload {
        policies,
        users,
        docs,
        queries,
    }
}

fn abac_reference(
    policies: &[AbacPolicy],
    users: &[AbacUser],
    docs: &[AbacDoc],
    query: &AbacQuery,
) -> bool {
    let (Some(user), Some(doc)) = (users.get(query.user), docs.get(query.doc)) else {
        return false;
    };
    policies.iter().any(|policy| {
        policy.action == query.action
            && policy.department == user.department
            && doc.sensitivity <= policy.max_sensitivity
            && query.hour < policy.before_hour
    })
}
