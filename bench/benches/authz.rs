//! The authorization workloads under criterion: one group per workload, one function per engine
//! (and Cedar modeling). `authz-report` prints the same comparison with p50/p99 and ratios.
//!
//! `cargo bench -p maos-bench --bench authz [-- FILTER]`, e.g. `-- rbac-large`.

// Measurement code, not the product: see the crate root.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use maos_bench::engines::cedar::RbacModeling;
use maos_bench::engines::{Loaded, casbin, cedar, maos};
use maos_bench::workload::{self, RbacQuery};

/// Benchmarks each engine cycling through its prepared requests, after checking that it agrees
/// with the reference on a sample of them.
fn bench_engines(c: &mut Criterion, group_name: &str, engines: &[Loaded], expect: &[bool]) {
    let mut group = c.benchmark_group(group_name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for loaded in engines {
        let engine = loaded.engine.as_ref();
        for (index, expected) in expect.iter().enumerate().take(32) {
            assert_eq!(
                engine.decide(index),
                *expected,
                "{} request {index}",
                engine.label()
            );
        }
        let mut index = 0;
        group.bench_function(engine.label(), |b| {
            b.iter(|| {
                let allowed = engine.decide(index);
                index += 1;
                if index == expect.len() {
                    index = 0;
                }
                black_box(allowed)
            });
        });
    }
    group.finish();
}

fn expected(queries: &[RbacQuery]) -> Vec<bool> {
    queries.iter().map(|q| q.expect).collect()
}

fn rbac_engines(workload: &workload::RbacWorkload, queries: &[RbacQuery]) -> Vec<Loaded> {
    let runtime = casbin::runtime();
    vec![
        maos::rbac(workload, queries),
        cedar::rbac(workload, RbacModeling::PolicyPerRole, queries),
        cedar::rbac(workload, RbacModeling::ResourceRoles, queries),
        cedar::rbac(workload, RbacModeling::GrantGroups, queries),
        casbin::rbac(&runtime, workload, queries),
    ]
}

fn small_rbac(c: &mut Criterion) {
    let (small, queries) = workload::small_rbac();
    bench_engines(
        c,
        "small-rbac",
        &rbac_engines(&small, &queries),
        &expected(&queries),
    );
}

fn abac(c: &mut Criterion) {
    let abac = workload::abac(4096, 2);
    let runtime = casbin::runtime();
    let engines = vec![
        maos::abac(&abac),
        cedar::abac(&abac),
        casbin::abac(&runtime, &abac),
    ];
    let expect: Vec<bool> = abac.queries.iter().map(|q| q.expect).collect();
    bench_engines(c, "abac-100", &engines, &expect);
}

fn rbac_large(c: &mut Criterion) {
    let large = workload::casbin_shape(10_000);
    let queries = large.queries(workload::casbin_shape_queries(100_000, 4096, 3));
    bench_engines(
        c,
        "rbac-large-110k",
        &rbac_engines(&large, &queries),
        &expected(&queries),
    );
}

fn growth(c: &mut Criterion) {
    let asked = workload::casbin_shape_queries(1_000, 4096, 4);
    for (name, roles) in [("growth-1.1k", 100), ("growth-110k", 10_000)] {
        let rules = workload::casbin_shape(roles);
        let queries = rules.queries(asked.clone());
        bench_engines(
            c,
            name,
            &rbac_engines(&rules, &queries),
            &expected(&queries),
        );
    }
}

criterion_group!(benches, small_rbac, abac, rbac_large, growth);
criterion_main!(benches);
