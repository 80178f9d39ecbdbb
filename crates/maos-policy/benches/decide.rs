//! Decision and load cost of MAOS alone: `cargo bench -p maos-policy`.
//! (The comparison with Cedar and Casbin lives in the `bench` crate.)

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use maos_core::Request;
use maos_policy::DecisionPoint;
use serde_json::json;

fn request(subject: &str, resource: &str, action: &str, context: serde_json::Value) -> Request {
    let (st, sid) = subject.split_once(':').unwrap_or(("user", subject));
    let (rt, rid) = resource.split_once(':').unwrap_or(("data", resource));
    serde_json::from_value(json!({
        "subject": {"type": st, "id": sid},
        "resource": {"type": rt, "id": rid},
        "action": {"name": action},
        "context": context
    }))
    .unwrap_or_default()
}

/// Casbin's RBAC benchmark shape: `users` users, each bound to role `u / 10`, and one grant
/// per role. 100,000 users and 10,000 roles make 110,000 rules.
fn rbac_yaml(users: usize, roles: usize) -> String {
    let mut yaml = String::with_capacity(users * 60 + roles * 120);
    yaml.push_str("version: 1\nroles:\n");
    for r in 0..roles {
        yaml.push_str(&format!(
            "  - {{ name: role{r}, permissions: [ {{ resource: \"data:{r}\", actions: [read] }} ] }}\n"
        ));
    }
    yaml.push_str("bindings:\n");
    for u in 0..users {
        yaml.push_str(&format!(
            "  - {{ subject: \"user:user{u}\", roles: [role{}] }}\n",
            u * roles / users
        ));
    }
    yaml
}

fn small_rbac_yaml() -> &'static str {
    r#"
version: 1
roles:
  - name: viewer
    permissions: [ { resource: "document:*", actions: [read] } ]
  - name: editor
    inherits: [viewer]
    permissions:
      - { resource: "document:**", actions: [write],
          conditions: [ { attribute: subject.properties.department, operator: eq, value: eng } ] }
      - { resource: "document:drafts/*", actions: [delete] }
  - name: admin
    inherits: [editor]
    permissions:
      - { resource: "**", actions: ["*"] }
      - { resource: "audit:*", actions: [read] }
bindings:
  - { subject: "user:alice", roles: [editor] }
  - { subject: "user:bob", roles: [viewer] }
"#
}

/// 100 policies with three conditions each; only the last one permits the benched request.
fn abac_yaml() -> String {
    let mut yaml = String::from("version: 1\npolicies:\n");
    for i in 0..100 {
        yaml.push_str(&format!(
            "  - id: p{i}\n    effect: permit\n    condition:\n      all:\n        \
             - {{ attribute: subject.properties.department, operator: eq, value: dept{i} }}\n        \
             - {{ attribute: resource.properties.level, operator: lte, value: {i} }}\n        \
             - {{ attribute: context.hour, operator: lt, value: 18 }}\n"
        ));
    }
    yaml
}

fn load(yaml: &str) -> DecisionPoint {
    match DecisionPoint::load(yaml, "bench.yaml") {
        Ok(point) => point,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}

fn decisions(c: &mut Criterion) {
    let small = load(small_rbac_yaml());
    let mut alice = request("user:alice", "document:design/api", "write", json!({}));
    alice
        .subject
        .properties
        .insert("department".into(), json!("eng"));
    c.bench_function("small_rbac/allow", |b| {
        b.iter(|| black_box(small.decide(black_box(&alice))))
    });

    let abac = load(&abac_yaml());
    let mut r = request("user:u", "doc:x", "read", json!({"hour": 10}));
    r.subject
        .properties
        .insert("department".into(), json!("dept99"));
    r.resource.properties.insert("level".into(), json!(5));
    c.bench_function("abac_100x3/allow", |b| {
        b.iter(|| black_box(abac.decide(black_box(&r))))
    });

    for (name, users, roles) in [
        ("rbac_1.1k", 1_000, 100),
        ("rbac_large_110k", 100_000, 10_000),
    ] {
        let point = load(&rbac_yaml(users, roles));
        let last = users - 1;
        let role = last * roles / users;
        let allow = request(
            &format!("user:user{last}"),
            &format!("data:{role}"),
            "read",
            json!({}),
        );
        let deny = request(&format!("user:user{last}"), "data:0", "read", json!({}));
        c.bench_function(&format!("{name}/allow"), |b| {
            b.iter(|| black_box(point.decide(black_box(&allow))))
        });
        c.bench_function(&format!("{name}/deny"), |b| {
            b.iter(|| black_box(point.decide(black_box(&deny))))
        });
    }
}

fn loading(c: &mut Criterion) {
    let large = rbac_yaml(100_000, 10_000);
    let mut group = c.benchmark_group("load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("rbac_large_110k_yaml", |b| {
        b.iter(|| black_box(load(black_box(&large))))
    });
    group.finish();
}

criterion_group!(benches, decisions, loading);
criterion_main!(benches);
